//! Shared helpers for the cross-crate and interoperability tests.
//!
//! * [`net`]: unique loopback addresses and ports per test (tests run in
//!   parallel threads and test binaries may run in parallel processes).
//! * [`wait`]: polling with timeouts and failure messages that carry context
//!   (typically the daemon's state and log).
//! * [`daemons`]: BIRD 2, GoBGP 3, FRR 8 (bgpd without zebra) and ExaBGP 4
//!   started as child processes on loopback with a temporary configuration,
//!   killed on drop, with queries for session state, the routes they
//!   received from us and the last NOTIFICATION they sent or received.
//! * [`speaker`]: a deliberately small *blocking* BGP speaker over
//!   `std::net::TcpStream`, built on corebgp-core's wire codec. It is a test
//!   stand-in for wire-level interop tests, not a session FSM.
//! * [`update`]: minimal UPDATE attribute walking and building in test code.
//! * [`tools`]: the `collector` and `announcer` examples run as child
//!   processes, their JSON lines and stderr captured.

pub mod daemons;
pub mod net;
pub mod process;
pub mod speaker;
pub mod tools;
pub mod update;
pub mod wait;

pub use daemons::{
    Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib, NotificationReport, RibRoute,
};
