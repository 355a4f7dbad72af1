//! corebgp-embassy: corebgp on microcontrollers over `embassy-net`.
//!
//! This crate is an **adapter**: it supplies TCP connections (from
//! `embassy-net`) and time (from `embassy-time`) to corebgp-core's shared
//! driver ([`corebgp_core::driver::run`]), and nothing else. It holds no BGP
//! state machine, parses no BGP message and decides no protocol behaviour.
//!
//! * `#![no_std]`, no `alloc`, no `unsafe`.
//! * [`EmbassyClock`] is the driver's `Clock`; [`EmbassyConnector`] its
//!   `Connector`: a [`Socket`] (one embassy-net TCP socket over
//!   caller-provided [`SocketBuffers`]) lends itself to one
//!   [`Connection`] at a time — the owned transport the driver reads and
//!   writes — and gets it back, closed gracefully, when the driver drops it.
//!   Passive peers take connections from a [`Listener`] that listens on
//!   port 179 with a few sockets shared by all peers.
//! * [`run_peer`] runs one peer with its [`SessionBuffers`]; several peers
//!   and the listener run in one task with `embassy_futures::join` (no
//!   tasks are spawned: embassy tasks cannot be generic).
//! * All memory is caller-provided and sized by const generics; put it in
//!   `static`s (e.g. `StaticCell`) on a microcontroller.
//! * Logging through `defmt` behind the `defmt` feature.
//!
//! ```text
//! let sock = Socket::new(stack, SOCK_BUFS.init(SocketBuffers::<2048, 2048>::new()));
//! let connector = EmbassyConnector::active(&sock, ActivePeer::new(router, 90));
//! let mut peer = Peer::new(session_config);
//! run_peer(&mut peer, &connector, &mut plugin, &OUTBOX, bufs, core::future::pending()).await;
//! ```
//!
//! # Per-peer RAM
//!
//! [`SessionBuffers`] (one or two × largest message received + largest UPDATE
//! sent; [`CompactBuffers`] for one connection at a time),
//! one or two [`SocketBuffers`] (the TCP windows; they need not hold a
//! message), the driver's future and the [`corebgp_core::session::Peer`];
//! the README has measured figures.
//!
//! # Limitations of embassy-net (smoltcp 0.13)
//!
//! No TCP-MD5 (RFC 2385) or TCP-AO (RFC 5925); the received TTL is not
//! exposed, so GTSM (RFC 5082) is only possible on the send side
//! ([`SocketTuning::hop_limit`] = 255).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod clock;
mod connector;
mod error;
mod fmt;
mod listener;
mod socket;

pub use clock::EmbassyClock;
pub use connector::{
    Accept, CompactBuffers, EmbassyConnector, ExtendedBuffers, SessionBuffers, StandardBuffers,
    run_peer,
};
/// The marker of a peer (and a connector) that only dials; see
/// [`EmbassyConnector::active`] and [`corebgp_core::session::Peer::dial_only`].
pub use corebgp_core::session::DialOnly;
pub use error::Error;
pub use listener::{Inbound, Listener};
pub use socket::{
    ActivePeer, BGP_PORT, CLOSE_LINGER, Connection, PassivePeer, Socket, SocketBuffers,
    SocketTuning,
};

/// The core, re-exported so that firmware can depend on one crate.
pub use corebgp_core;
/// The network stack types that appear in this crate's API.
pub use embassy_net;
