//! Per-peer session configuration, with CoreBGP's defaults.

use core::net::{IpAddr, Ipv4Addr};

use super::time::Duration;
use crate::wire::Role;

/// Hold time proposed by default, in seconds (CoreBGP's and RFC 4271's 90).
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default idle hold time between connection attempts (CoreBGP: 5 s).
pub const DEFAULT_IDLE_HOLD_TIME: Duration = Duration::from_secs(5);
/// Default ConnectRetry time (CoreBGP: 5 s; also bounds one dial attempt).
pub const DEFAULT_CONNECT_RETRY_TIME: Duration = Duration::from_secs(5);
/// The "large value" the hold timer has in OpenSent (RFC 4271 §8.2.2: 4 min).
pub const OPEN_SENT_HOLD_TIME: Duration = Duration::from_secs(240);
/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// Who the peer is: CoreBGP's `PeerConfig`, handed to every plugin hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerConfig {
    /// The peer's address (IPv4 or IPv6).
    pub remote_address: IpAddr,
    /// Our AS.
    pub local_as: u32,
    /// The peer's AS.
    pub remote_as: u32,
}

impl PeerConfig {
    /// Whether the peer is internal (same AS).
    pub const fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

/// Everything the FSM needs to know about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct SessionConfig {
    /// The peer.
    pub peer: PeerConfig,
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Hold time we propose, in seconds: 0 (no keepalives, no hold timer) or ≥ 3.
    pub hold_time: u16,
    /// Hold times below this (other than 0) are refused with 2/6 (policy; RFC
    /// 4271 §6.2 always refuses 1 and 2).
    pub min_hold_time: u16,
    /// Only accept connections; never dial.
    pub passive: bool,
    /// Wait between the end of one attempt and the next.
    pub idle_hold_time: Duration,
    /// ConnectRetry timer (RFC 4271 §10): time between dials, and the bound
    /// of one dial.
    pub connect_retry_time: Duration,
    /// DelayOpen (RFC 4271 §8.1.1): wait this long after the TCP connection
    /// comes up before sending our OPEN, unless the peer's arrives first.
    pub delay_open: Option<Duration>,
    /// RFC 9687 Send Hold Timer; `None` picks the RFC's default,
    /// max(8 minutes, 2 × the negotiated hold time).
    pub send_hold_time: Option<Duration>,
    /// Peer oscillation damping (RFC 4271 §8.1.1 DampPeerOscillations):
    /// after a NOTIFICATION other than Cease, wait 60 s, doubling to 300 s,
    /// forgotten after 300 s without errors (BIRD's and CoreBGP's scheme).
    pub damp_peer_oscillations: bool,
    /// Advertise RFC 8654 Extended Messages (only if the adapter's buffers
    /// hold 65535-byte messages).
    pub extended_messages: bool,
    /// Our BGP Role (RFC 9234), advertised and checked against the peer's.
    pub role: Option<Role>,
    /// Refuse peers that do not advertise a role (RFC 9234 §4.2 strict mode).
    pub strict_role: bool,
}

/// A configuration value out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// Hold time must be 0 or at least 3 seconds (RFC 4271 §4.2).
    HoldTime,
    /// AS numbers must not be 0 (RFC 7607).
    ZeroAs,
    /// The BGP Identifier must not be 0.0.0.0 (RFC 6286 §2.1).
    RouterId,
    /// ConnectRetry time must be positive.
    ConnectRetryTime,
    /// Strict role mode needs a role.
    StrictRoleWithoutRole,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::HoldTime => "hold time must be 0 or >= 3 seconds",
            Self::ZeroAs => "AS must be > 0",
            Self::RouterId => "router ID must not be 0.0.0.0",
            Self::ConnectRetryTime => "connect retry time must be > 0",
            Self::StrictRoleWithoutRole => "strict role mode needs a role",
        })
    }
}

impl core::error::Error for ConfigError {}

impl SessionConfig {
    /// A configuration with CoreBGP's defaults.
    pub const fn new(peer: PeerConfig, router_id: Ipv4Addr) -> Self {
        Self {
            peer,
            router_id,
            hold_time: DEFAULT_HOLD_TIME,
            min_hold_time: 3,
            passive: false,
            idle_hold_time: DEFAULT_IDLE_HOLD_TIME,
            connect_retry_time: DEFAULT_CONNECT_RETRY_TIME,
            delay_open: None,
            send_hold_time: None,
            damp_peer_oscillations: true,
            extended_messages: false,
            role: None,
            strict_role: false,
        }
    }

    /// Checks the values (CoreBGP's checks plus RFC 7607 and RFC 6286).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hold_time != 0 && self.hold_time < 3 {
            return Err(ConfigError::HoldTime);
        }
        if self.peer.local_as == 0 || self.peer.remote_as == 0 {
            return Err(ConfigError::ZeroAs);
        }
        if self.router_id.is_unspecified() {
            return Err(ConfigError::RouterId);
        }
        if self.connect_retry_time.is_zero() {
            return Err(ConfigError::ConnectRetryTime);
        }
        if self.strict_role && self.role.is_none() {
            return Err(ConfigError::StrictRoleWithoutRole);
        }
        Ok(())
    }

    /// Sets the proposed hold time.
    pub const fn with_hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }
    /// Sets passive mode.
    pub const fn with_passive(mut self, passive: bool) -> Self {
        self.passive = passive;
        self
    }
    /// Sets the idle hold time.
    pub const fn with_idle_hold_time(mut self, d: Duration) -> Self {
        self.idle_hold_time = d;
        self
    }
    /// Sets the ConnectRetry time.
    pub const fn with_connect_retry_time(mut self, d: Duration) -> Self {
        self.connect_retry_time = d;
        self
    }
    /// Enables DelayOpen.
    pub const fn with_delay_open(mut self, d: Option<Duration>) -> Self {
        self.delay_open = d;
        self
    }
    /// Sets the RFC 9687 send hold time.
    pub const fn with_send_hold_time(mut self, d: Option<Duration>) -> Self {
        self.send_hold_time = d;
        self
    }
    /// Enables or disables peer oscillation damping.
    pub const fn with_damping(mut self, on: bool) -> Self {
        self.damp_peer_oscillations = on;
        self
    }
    /// Advertises RFC 8654 Extended Messages.
    pub const fn with_extended_messages(mut self, on: bool) -> Self {
        self.extended_messages = on;
        self
    }
    /// Sets our BGP Role and whether the peer must advertise one.
    pub const fn with_role(mut self, role: Option<Role>, strict: bool) -> Self {
        self.role = role;
        self.strict_role = strict;
        self
    }
    /// Sets the smallest acceptable non-zero hold time.
    pub const fn with_min_hold_time(mut self, seconds: u16) -> Self {
        self.min_hold_time = seconds;
        self
    }
}
