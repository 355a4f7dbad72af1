//! corebgp-core: the `no_std`, allocation-free heart of corebgp.
//!
//! * [`wire`]: zero-copy views over BGP messages and encoders that write into
//!   caller-provided buffers (RFC 4271 and its extensions), plus a stream
//!   [`wire::Framer`] that turns TCP bytes into whole messages.
//! * [`update`]: zero-copy UPDATE decoding with RFC 7606 verdicts, and an
//!   UPDATE builder.
//! * [`session`]: the RFC 4271 state machine as one type per state, a
//!   runtime peer over two connections with collision resolution, all
//!   sans-IO (time in, bytes and deadlines out).
//! * [`plugin`]: CoreBGP's plugin hooks, in a `Send` and a local flavour.
//! * [`outbox`]: the allocation-free channel UPDATE writers feed.
//! * [`driver`]: the one async loop both adapters run: it pumps a session
//!   over `embedded-io-async` transports with a clock and a plugin.
//!
//! Nothing in this crate allocates, reads a clock or touches a socket; every
//! decoder is total (no panics on any input) and every protocol error maps to
//! the exact NOTIFICATION the RFCs name.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(test)]
extern crate std;

pub mod driver;
pub mod outbox;
pub mod plugin;
pub mod session;
pub mod update;
pub mod wire;
