//! corebgp-std: the tokio BGP server built on [`corebgp_core`].
//!
//! The server itself arrives with its own issue; for now this crate
//! re-exports the core so that users can depend on one crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use corebgp_core as core;
