//! corebgp-embassy: corebgp on microcontrollers over `embassy-net`.
//!
//! This crate is an **adapter**: it supplies TCP sockets (from `embassy-net`)
//! and time (from `embassy-time`) to the session machinery of
//! [`corebgp_core`], and nothing else. It holds no BGP state machine, parses no
//! BGP message and decides no protocol behaviour: all of that lives in
//! `corebgp-core`.
//!
//! * `#![no_std]`, no `alloc`, no `unsafe`.
//! * All memory is caller-provided: one [`Slot`] per peer holds the socket's
//!   receive and transmit buffers and the message (framer) buffer, sized by
//!   const generics (see [`Slot::RAM`]). Put slots in a `static` (for example
//!   with `static_cell`) on a microcontroller.
//! * No tasks are spawned (embassy tasks cannot be generic): call
//!   [`connect`], [`accept`] or [`serve_passive`] from your own
//!   `#[embassy_executor::task]`.
//! * Logging through `defmt` behind the `defmt` feature.
//!
//! # Where the session runs
//!
//! Each entry point takes a `run` closure that receives a connected [`Link`]
//! (reader and writer halves of the TCP socket, the slot's message buffer,
//! the endpoints). **Today that closure is a placeholder**: corebgp-core's
//! shared async driver (sans-IO typestate session + plugin) is being written,
//! and once it lands `run` is where `corebgp_core::driver::run(..)` is called
//! with `link.reader`, `link.writer`, `link.msg_buf` and an [`EmbassyClock`].
//! Until then tests pass a stand-in speaker.
//!
//! # Per-peer RAM
//!
//! | what | RFC 4271 messages (4096 B) | RFC 8654 Extended Messages (65535 B) |
//! |---|---|---|
//! | socket RX buffer | 4096 | 4096 (TCP window; need not hold a whole message) |
//! | socket TX buffer | 4096 | 4096 (`write_all` streams a message through it) |
//! | message (framer) buffer | 4096 | 65535 |
//! | [`Slot`] total | 12,288 | 73,727 |
//!
//! plus one `embassy_net::StackResources` socket entry per peer and the
//! session state of the driver (not yet measured: the driver does not exist).
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
mod error;
mod fmt;
mod socket;

pub use clock::{Clock, EmbassyClock};
pub use error::Error;
pub use socket::{
    ActivePeer, BGP_PORT, CLOSE_LINGER, ExtendedSlot, Link, PassivePeer, Slot, SocketTuning,
    StandardSlot, accept, connect, serve_passive,
};

/// The core, re-exported so that firmware can depend on one crate.
pub use corebgp_core;
/// The network stack types that appear in this crate's API.
pub use embassy_net;
