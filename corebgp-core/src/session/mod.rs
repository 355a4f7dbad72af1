//! The BGP session: the RFC 4271 finite state machine, sans-IO.
//!
//! Two levels, both public:
//! * **Typestate** ([`Idle`], [`Connect`], [`Active`], [`OpenSent`],
//!   [`OpenConfirm`], [`Established`]): one type per state, holding only that
//!   state's data; transitions consume the state. An UPDATE can only be
//!   written through an [`Established`]; there is no way from [`OpenSent`]
//!   to [`Established`] but through [`OpenConfirm`].
//! * **Runtime** ([`State`] over one connection, [`Peer`] over a configured
//!   peer's two connections with collision resolution and damping): what an
//!   event loop drives when inputs arrive in an order only known at run time.
//!
//! Nothing here reads a clock or touches a socket: every input carries the
//! current [`Instant`], outputs are bytes in a [`Link`], [`Event`]s, and the
//! next deadline ([`Peer::poll_timeout`]).
//!
//! # What the types rule out
//!
//! An UPDATE is written through an Established session:
//! ```
//! use corebgp_core::session::{Cx, Established, SendError};
//! fn send(s: &mut Established, cx: &mut Cx<'_>, msg: &[u8]) -> Result<(), SendError> {
//!     s.send_update(cx, msg)
//! }
//! ```
//! and through nothing earlier: sending an UPDATE before Established does
//! not compile.
//! ```compile_fail,E0599
//! use corebgp_core::session::{Cx, OpenConfirm, SendError};
//! fn send(s: &mut OpenConfirm, cx: &mut Cx<'_>, msg: &[u8]) -> Result<(), SendError> {
//!     s.send_update(cx, msg)
//! }
//! ```
//! OpenConfirm becomes Established on the peer's KEEPALIVE:
//! ```
//! use corebgp_core::session::{Cx, Established, OpenConfirm};
//! fn confirm(s: OpenConfirm, cx: &mut Cx<'_>) -> Established {
//!     s.receive_keepalive(cx)
//! }
//! ```
//! but OpenSent cannot skip OpenConfirm:
//! ```compile_fail,E0599
//! use corebgp_core::session::{Cx, Established, OpenSent};
//! fn skip(s: OpenSent, cx: &mut Cx<'_>) -> Established {
//!     s.receive_keepalive(cx)
//! }
//! ```
//! An update writer borrows the Established state, so it is usable while
//! the session is up:
//! ```
//! use corebgp_core::session::{Cx, Established, Idle};
//! use corebgp_core::wire::CeaseSubcode;
//! fn write_then_close(mut s: Established, cx: &mut Cx<'_>, msg: &[u8]) -> Idle {
//!     let mut w = s.update_writer(cx);
//!     let _ = w.write(msg);
//!     s.stop(cx, CeaseSubcode::AdministrativeShutdown)
//! }
//! ```
//! and using it after the session closed does not compile:
//! ```compile_fail,E0505
//! use corebgp_core::session::{Cx, Established, Idle};
//! use corebgp_core::wire::CeaseSubcode;
//! fn close_then_write(mut s: Established, cx: &mut Cx<'_>, msg: &[u8]) -> Idle {
//!     let mut w = s.update_writer(cx);
//!     let idle = s.stop(cx, CeaseSubcode::AdministrativeShutdown);
//!     let _ = w.write(msg);
//!     idle
//! }
//! ```

mod config;
mod link;
mod negotiate;
mod peer;
mod state;
mod time;

pub use config::{
    BGP_PORT, ConfigError, DEFAULT_CONNECT_RETRY_TIME, DEFAULT_HOLD_TIME, DEFAULT_IDLE_HOLD_TIME,
    OPEN_SENT_HOLD_TIME, PeerConfig, SessionConfig,
};
pub use link::{
    Direction, DownReason, EVENT_CAPACITY, Event, Events, Link, StateKind, TX_CAPACITY,
};
pub use negotiate::{
    Advertised, CapabilitySet, CapabilitySetFull, DefaultHooks, MAX_CAPABILITIES_LEN, MAX_FAMILIES,
    Negotiated, OpenHooks, check_open, our_capabilities,
};
pub use peer::{
    AcceptOnly, Accepting, Conn, DAMPING_AMNESIA, DAMPING_MAX, DAMPING_MIN, DialOnly, Peer,
    PeerMode, Rejected,
};
pub use state::{
    Active, Connect, ConnectFailed, Connected, Cx, DelayedOpen, Delivery, Established,
    EstablishedNext, Idle, OpenConfirm, OpenReceived, OpenSent, SendError, State, UpdateWriter,
};
pub use time::{Duration, Instant};
