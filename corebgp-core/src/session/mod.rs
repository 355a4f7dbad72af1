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
pub use peer::{Conn, DAMPING_AMNESIA, DAMPING_MAX, DAMPING_MIN, Peer, Rejected};
pub use state::{
    Active, Connect, ConnectFailed, Connected, Cx, DelayedOpen, Delivery, Established,
    EstablishedNext, Idle, OpenConfirm, OpenReceived, OpenSent, SendError, State, UpdateWriter,
};
pub use time::{Duration, Instant};
