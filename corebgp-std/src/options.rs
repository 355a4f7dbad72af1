//! Per-peer options: CoreBGP's `PeerOption`s with its defaults, plus the
//! socket options CoreBGP left to the user (TCP MD5, GTSM, TCP_NODELAY).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use corebgp_core::session::{BGP_PORT, PeerConfig, SessionConfig};
use corebgp_core::wire::Role;

use crate::UpdateQueue;
use crate::error::OptionError;

/// Which socket a [`SocketHook`] is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketKind {
    /// A socket we are about to dial from (before `bind` and `connect`).
    Outbound,
    /// A connection the peer opened, just accepted and matched to it.
    Inbound,
}

/// CoreBGP's dialer control: called with each socket of the peer before it
/// is used, to set options the server does not know about (`SO_MARK`,
/// `SO_BINDTODEVICE`, …). Wrap the descriptor with
/// `socket2::SockRef::from(&fd)` for a safe API. An error abandons the
/// dial (or closes the inbound connection).
pub type SocketHook = Arc<dyn Fn(BorrowedFd<'_>, SocketKind) -> io::Result<()> + Send + Sync>;

/// Longest TCP MD5 key (Linux `TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Options for one peer, with CoreBGP's defaults: active, hold time 90 s,
/// idle hold 5 s, ConnectRetry 5 s, port 179, loose local address, no
/// socket hook; plus TCP_NODELAY on, no TCP MD5, no GTSM, peer oscillation
/// damping on, no UPDATE queue (the plugin only receives).
///
/// ```
/// use std::time::Duration;
/// use corebgp_std::PeerOptions;
/// let opts = PeerOptions::new()
///     .passive(true)
///     .hold_time(9)
///     .idle_hold_time(Duration::from_secs(1))
///     .port(1179)
///     .local_address("127.0.0.1".parse().unwrap())
///     .md5_key(b"secret")
///     .ttl_security(true);
/// assert_eq!(opts.port_number(), 1179);
/// ```
#[derive(Clone)]
pub struct PeerOptions {
    pub(crate) session: SessionConfig,
    pub(crate) port: u16,
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) socket_hook: Option<SocketHook>,
    pub(crate) md5_key: Option<Arc<[u8]>>,
    pub(crate) ttl_security: bool,
    pub(crate) nodelay: bool,
    pub(crate) updates: Option<Arc<UpdateQueue>>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The MD5 key is a secret: only whether one is set.
        f.debug_struct("PeerOptions")
            .field("session", &self.session)
            .field("port", &self.port)
            .field("local_address", &self.local_address)
            .field("socket_hook", &self.socket_hook.is_some())
            .field("md5", &self.md5_key.is_some())
            .field("ttl_security", &self.ttl_security)
            .field("nodelay", &self.nodelay)
            .field("update_queue", &self.updates.is_some())
            .finish()
    }
}

fn placeholder_peer() -> PeerConfig {
    PeerConfig {
        remote_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        local_as: 0,
        remote_as: 0,
    }
}

impl PeerOptions {
    /// CoreBGP's defaults.
    pub fn new() -> Self {
        Self {
            session: SessionConfig::new(placeholder_peer(), Ipv4Addr::UNSPECIFIED),
            port: BGP_PORT,
            local_address: None,
            socket_hook: None,
            md5_key: None,
            ttl_security: false,
            nodelay: true,
            updates: None,
        }
    }

    /// Passive: never dial, only accept (CoreBGP's `WithPassive`).
    pub fn passive(mut self, on: bool) -> Self {
        self.session = self.session.with_passive(on);
        self
    }

    /// The hold time we propose, in seconds: 0 (no keepalives) or ≥ 3
    /// (CoreBGP's `WithHoldTime`; RFC 4271 §4.2).
    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.session = self.session.with_hold_time(seconds);
        self
    }

    /// Wait between the end of one attempt and the next (CoreBGP's
    /// `WithIdleHoldTime`).
    pub fn idle_hold_time(mut self, d: Duration) -> Self {
        self.session = self.session.with_idle_hold_time(d);
        self
    }

    /// ConnectRetry time: between dials, and the bound of one dial
    /// (CoreBGP's `WithConnectRetryTime`; must be > 0).
    pub fn connect_retry_time(mut self, d: Duration) -> Self {
        self.session = self.session.with_connect_retry_time(d);
        self
    }

    /// The port we dial (CoreBGP's `WithPort`; 1..=65535).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Strict local address (CoreBGP's `WithLocalAddress`): the source of
    /// our dials, and the address inbound connections must be made to.
    /// Unset, the OS picks the source and any destination is accepted.
    pub fn local_address(mut self, addr: IpAddr) -> Self {
        self.local_address = Some(addr);
        self
    }

    /// A hook for socket options of our own (CoreBGP's `WithDialerControl`).
    pub fn socket_hook(mut self, hook: SocketHook) -> Self {
        self.socket_hook = Some(hook);
        self
    }

    /// TCP MD5 signatures (RFC 2385) with this key, on our dials and, for
    /// this peer's address, on every listener the server serves (Linux).
    pub fn md5_key(mut self, key: &[u8]) -> Self {
        self.md5_key = Some(Arc::from(key));
        self
    }

    /// GTSM (RFC 5082 §3): send with TTL (hop limit) 255 and drop what
    /// arrives with less than 254 (`IP_MINTTL`, `IPV6_MINHOPCOUNT`).
    pub fn ttl_security(mut self, on: bool) -> Self {
        self.ttl_security = on;
        self
    }

    /// TCP_NODELAY (default on: BGP writes whole messages).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// The queue this peer's UPDATEs are written to: keep a clone in the
    /// plugin and make a writer from it when the session is Established
    /// (see [`crate::update_queue`]). Without one the peer only receives.
    pub fn update_queue(mut self, queue: Arc<UpdateQueue>) -> Self {
        self.updates = Some(queue);
        self
    }

    /// Peer oscillation damping (RFC 4271 §8.1.1; on by default).
    pub fn damping(mut self, on: bool) -> Self {
        self.session = self.session.with_damping(on);
        self
    }

    /// DelayOpen (RFC 4271 §8.1.1).
    pub fn delay_open(mut self, d: Option<Duration>) -> Self {
        self.session = self.session.with_delay_open(d);
        self
    }

    /// RFC 9687 send hold time (`None`: the RFC's default).
    pub fn send_hold_time(mut self, d: Option<Duration>) -> Self {
        self.session = self.session.with_send_hold_time(d);
        self
    }

    /// Advertise RFC 8654 Extended Messages (buffers grow to 65535 bytes).
    pub fn extended_messages(mut self, on: bool) -> Self {
        self.session = self.session.with_extended_messages(on);
        self
    }

    /// Our BGP Role (RFC 9234) and whether the peer must advertise one.
    pub fn role(mut self, role: Option<Role>, strict: bool) -> Self {
        self.session = self.session.with_role(role, strict);
        self
    }

    /// Any other session setting of corebgp-core.
    pub fn map_session(mut self, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Self {
        self.session = f(self.session);
        self
    }

    /// The port we dial.
    pub fn port_number(&self) -> u16 {
        self.port
    }

    /// The strict local address, if set.
    pub fn local_addr(&self) -> Option<IpAddr> {
        self.local_address
    }

    /// Whether a TCP MD5 key is set.
    pub fn has_md5(&self) -> bool {
        self.md5_key.is_some()
    }

    /// Whether GTSM is on.
    pub fn has_ttl_security(&self) -> bool {
        self.ttl_security
    }

    /// The session configuration these options give `peer` under `router_id`,
    /// validated (what [`crate::Server::add_peer`] checks).
    pub fn session_config(
        &self,
        peer: PeerConfig,
        router_id: Ipv4Addr,
    ) -> Result<SessionConfig, OptionError> {
        let mut s = self.session;
        s.peer = peer;
        s.router_id = router_id;
        s.validate().map_err(OptionError::Session)?;
        if self.port == 0 {
            return Err(OptionError::Port);
        }
        let ra = peer.remote_address;
        let bad_remote = ra.is_unspecified()
            || ra.is_multicast()
            || matches!(ra, IpAddr::V4(a) if a.is_broadcast());
        if bad_remote {
            return Err(OptionError::RemoteAddress);
        }
        if let Some(l) = self.local_address
            && l.to_canonical().is_ipv4() != ra.is_ipv4()
        {
            return Err(OptionError::AddressFamily);
        }
        if let Some(k) = &self.md5_key {
            if k.is_empty() || k.len() > MD5_MAX_KEY_LEN {
                return Err(OptionError::Md5KeyLength);
            }
            if !cfg!(target_os = "linux") {
                return Err(OptionError::Md5Unsupported);
            }
        }
        Ok(s)
    }
}
