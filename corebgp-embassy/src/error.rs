//! The adapter's error type.

use embassy_net::tcp::{AcceptError, ConnectError};

/// Why the adapter could not give the session a connection.
///
/// Errors of an established session (I/O errors, NOTIFICATIONs, timer
/// expiry) are the driver's: they reach the plugin as events, not this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The active open failed: the peer refused (RST), no route, or the
    /// socket was in the wrong state. embassy-net reports a SYN timeout as
    /// `ConnectionReset` too; [`Error::ConnectTimeout`] is the adapter's own
    /// bound.
    Connect(ConnectError),
    /// No answer within [`ActivePeer::connect_timeout`](crate::ActivePeer);
    /// the half-open socket was aborted.
    ConnectTimeout,
    /// The passive open failed (a listening port of 0, or a socket in the
    /// wrong state): a configuration error, not a network event.
    Accept(AcceptError),
    /// The socket is lent to a connection that is still open.
    SocketBusy,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "TCP connect failed: {e:?}"),
            Self::ConnectTimeout => f.write_str("TCP connect timed out"),
            Self::Accept(e) => write!(f, "TCP accept failed: {e:?}"),
            Self::SocketBusy => f.write_str("socket in use by an open connection"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        Self::Connect(e)
    }
}

impl From<AcceptError> for Error {
    fn from(e: AcceptError) -> Self {
        Self::Accept(e)
    }
}
