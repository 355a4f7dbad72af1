//! The server's errors: typed, never strings alone.

use std::net::IpAddr;

use corebgp_core::session::ConfigError;

/// What [`crate::Server`] methods can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A peer with this remote address is already configured (CoreBGP's
    /// `ErrPeerAlreadyExists`).
    PeerExists(IpAddr),
    /// No peer with this remote address (CoreBGP's `ErrPeerNotExist`).
    NoSuchPeer(IpAddr),
    /// [`crate::Server::close`] ran: the server takes no more peers and
    /// serves no more (CoreBGP's `ErrServerClosed`).
    ServerClosed,
    /// [`crate::Server::serve`] is already running (CoreBGP does not guard
    /// against a second `Serve`, which starts every peer twice).
    AlreadyServing,
    /// A peer option (or the router ID) is out of range.
    InvalidOption(OptionError),
    /// A socket operation failed (setting a listener's TCP MD5 key).
    Io(std::io::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PeerExists(a) => write!(f, "peer {a} already exists"),
            Self::NoSuchPeer(a) => write!(f, "peer {a} does not exist"),
            Self::ServerClosed => f.write_str("server closed"),
            Self::AlreadyServing => f.write_str("server is already serving"),
            Self::InvalidOption(e) => write!(f, "invalid peer options: {e}"),
            Self::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidOption(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<OptionError> for Error {
    fn from(e: OptionError) -> Self {
        Self::InvalidOption(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::InvalidOption(OptionError::Session(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Why a [`crate::PeerOptions`] / [`corebgp_core::session::PeerConfig`]
/// pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionError {
    /// The session configuration (hold time 0 or ≥ 3, AS ≠ 0, router ID ≠
    /// 0.0.0.0, ConnectRetry > 0, role), checked by corebgp-core.
    Session(ConfigError),
    /// The port must be 1..=65535 (CoreBGP's `WithPort` check).
    Port,
    /// The remote address must be a unicast address (not unspecified, not
    /// multicast, not broadcast).
    RemoteAddress,
    /// The local address is not of the remote address's family (CoreBGP's
    /// "mixed address family peer address pair").
    AddressFamily,
    /// A TCP MD5 key holds 1 to 80 bytes (`TCP_MD5SIG_MAXKEYLEN`).
    Md5KeyLength,
    /// TCP MD5 signatures need Linux.
    Md5Unsupported,
}

impl core::fmt::Display for OptionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Session(e) => write!(f, "{e}"),
            Self::Port => f.write_str("port must be between 1 and 65535"),
            Self::RemoteAddress => f.write_str("remote address must be unicast"),
            Self::AddressFamily => f.write_str("mixed address family peer address pair"),
            Self::Md5KeyLength => f.write_str("TCP MD5 key must be 1 to 80 bytes"),
            Self::Md5Unsupported => f.write_str("TCP MD5 signatures are supported on Linux only"),
        }
    }
}

impl std::error::Error for OptionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Session(e) => Some(e),
            _ => None,
        }
    }
}
