//! corebgp-embassy: corebgp on microcontrollers over `embassy-net`.
//!
//! The adapter arrives with its own issue; for now this crate re-exports the
//! core so that firmware can depend on one crate.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use corebgp_core as core;
