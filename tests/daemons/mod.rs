//! Real BGP daemons as test peers on loopback.
//!
//! Each daemon type ([`Bird`], [`GoBgp`], [`Frr`], [`ExaBgp`]) writes its
//! configuration into a temporary directory of its own, starts the daemon as
//! a child process listening on (or dialling from) the loopback address in
//! [`DaemonConfig::address`], and kills it when dropped (also when the test
//! panics). All of them implement [`Daemon`], whose queries are what the
//! tests assert on.
//!
//! ```no_run
//! use corebgp_tests::daemons::{self, Daemon, DaemonConfig, DaemonKind};
//! use std::time::Duration;
//!
//! // The daemon (AS 4200000002) waits for us (AS 65001) to connect.
//! let cfg = DaemonConfig::new(4_200_000_002, 65001)
//!     .passive(true)
//!     .ipv4_route("203.0.113.0/24")
//!     .ipv6_route("2001:db8:1::/48");
//! let d = daemons::start(DaemonKind::Bird, cfg);
//! // ... connect to d.config().endpoint() from d.config().peer_address ...
//! d.wait_established(Duration::from_secs(10));
//! let route = d.wait_route("198.51.100.0/24", Duration::from_secs(10));
//! assert_eq!(route.next_hop, "192.0.2.1");
//! ```

mod bird;
mod exabgp;
mod frr;
mod gobgp;
mod nats;

pub use bird::Bird;
pub use exabgp::ExaBgp;
pub use frr::Frr;
pub use gobgp::GoBgp;
pub use nats::{NATS_READY, Nats, NatsAuth};

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::net;
use crate::process::DaemonProcess;
use crate::wait::wait_for;

/// The next hop daemons put on the IPv4 routes they originate (where they
/// let us choose).
pub const DAEMON_NEXT_HOP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The next hop daemons put on the IPv6 routes they originate (where they
/// let us choose).
pub const DAEMON_NEXT_HOP_V6: &str = "2001:db8::2";

/// The four daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonKind {
    Bird,
    GoBgp,
    Frr,
    ExaBgp,
}

impl DaemonKind {
    pub const ALL: [DaemonKind; 4] = [Self::Bird, Self::GoBgp, Self::Frr, Self::ExaBgp];

    pub fn name(self) -> &'static str {
        match self {
            Self::Bird => "BIRD",
            Self::GoBgp => "GoBGP",
            Self::Frr => "FRR",
            Self::ExaBgp => "ExaBGP",
        }
    }
}

/// Starts a daemon of `kind` with `cfg`.
pub fn start(kind: DaemonKind, cfg: DaemonConfig) -> Box<dyn Daemon> {
    match kind {
        DaemonKind::Bird => Box::new(Bird::start(cfg)),
        DaemonKind::GoBgp => Box::new(GoBgp::start(cfg)),
        DaemonKind::Frr => Box::new(Frr::start(cfg)),
        DaemonKind::ExaBgp => Box::new(ExaBgp::start(cfg)),
    }
}

/// One daemon with one BGP neighbour: us.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The daemon's own address (its listening address and the source of its dials).
    pub address: Ipv4Addr,
    /// The port the daemon listens on.
    pub port: u16,
    /// The daemon's AS number (4-octet numbers are fine).
    pub asn: u32,
    /// The daemon's BGP identifier.
    pub router_id: Ipv4Addr,
    /// Our address: the daemon's neighbour.
    pub peer_address: Ipv4Addr,
    /// The port the daemon dials when active (where our side listens).
    pub peer_port: u16,
    /// Our AS number.
    pub peer_asn: u32,
    /// Passive: the daemon never dials and waits for us. Active: it dials
    /// `peer_address:peer_port` (it also accepts incoming connections where
    /// the daemon does so; ExaBGP in active mode does not listen).
    pub passive: bool,
    /// The hold time the daemon proposes.
    pub hold_time: u16,
    /// IPv4 unicast prefixes the daemon originates, like "203.0.113.0/24".
    pub ipv4_routes: Vec<String>,
    /// IPv6 unicast prefixes the daemon originates, like "2001:db8:1::/48".
    pub ipv6_routes: Vec<String>,
    /// TCP MD5 (RFC 2385) password; supported by [`Bird`] only.
    pub md5_password: Option<String>,
    /// Communities (RFC 1997, "65001:1") put on every route the daemon
    /// originates; supported by [`Bird`] and [`GoBgp`].
    pub communities: Vec<String>,
    /// Large communities (RFC 8092, "65001:1:2") put on every route the
    /// daemon originates; supported by [`Bird`] and [`GoBgp`].
    pub large_communities: Vec<String>,
}

impl DaemonConfig {
    /// A configuration with fresh unique loopback addresses and free ports
    /// for both sides, router id 10.255.0.X derived from the daemon's
    /// address, passive, hold time 90 and no routes.
    pub fn new(asn: u32, peer_asn: u32) -> Self {
        let daemon = net::unique_endpoint();
        let ours = net::unique_endpoint();
        let [_, a, b, c] = daemon.ip().octets();
        Self {
            address: *daemon.ip(),
            port: daemon.port(),
            asn,
            router_id: Ipv4Addr::new(10, a, b, c),
            peer_address: *ours.ip(),
            peer_port: ours.port(),
            peer_asn,
            passive: true,
            hold_time: 90,
            ipv4_routes: Vec::new(),
            ipv6_routes: Vec::new(),
            md5_password: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    pub fn passive(mut self, passive: bool) -> Self {
        self.passive = passive;
        self
    }

    pub fn hold_time(mut self, secs: u16) -> Self {
        self.hold_time = secs;
        self
    }

    pub fn ipv4_route(mut self, prefix: &str) -> Self {
        self.ipv4_routes.push(prefix.to_owned());
        self
    }

    pub fn ipv6_route(mut self, prefix: &str) -> Self {
        self.ipv6_routes.push(prefix.to_owned());
        self
    }

    pub fn md5_password(mut self, password: &str) -> Self {
        self.md5_password = Some(password.to_owned());
        self
    }

    /// Adds communities ("ASN:VALUE", both 16-bit) to every originated route.
    pub fn communities(mut self, communities: &[&str]) -> Self {
        self.communities
            .extend(communities.iter().map(|c| (*c).to_owned()));
        self
    }

    /// Adds large communities ("GLOBAL:LOCAL1:LOCAL2", each 32-bit) to every
    /// originated route.
    pub fn large_communities(mut self, communities: &[&str]) -> Self {
        self.large_communities
            .extend(communities.iter().map(|c| (*c).to_owned()));
        self
    }

    /// Where the daemon listens.
    pub fn endpoint(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.address, self.port)
    }

    /// Where the daemon dials to when active (our listening socket).
    pub fn peer_endpoint(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.peer_address, self.peer_port)
    }
}

/// A route in the daemon's RIB that it learned from us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibRoute {
    /// "198.51.100.0/24", "2001:db8:100::/48" (as the daemon prints it).
    pub prefix: String,
    /// The BGP next hop as the daemon reports it.
    pub next_hop: String,
    /// The AS path as the daemon prints it (e.g. "65001").
    pub as_path: String,
}

/// Who sent a NOTIFICATION, from the daemon's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The daemon received it (from us).
    Received,
    /// The daemon sent it (to us).
    Sent,
}

/// The last NOTIFICATION a daemon reports (from its CLI or its log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationReport {
    pub direction: Direction,
    pub code: u8,
    pub subcode: u8,
    /// The RFC 9003 shutdown communication, where the daemon shows it.
    pub message: Option<String>,
}

/// An End-of-RIB marker (RFC 4724 §2) a daemon reports having received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfRib {
    Ipv4Unicast,
    Ipv6Unicast,
    /// The daemon does not say for which family: BIRD 2 traces only
    /// "Got END-OF-RIB".
    Unnamed,
}

/// What every daemon offers to tests.
pub trait Daemon: Send {
    fn kind(&self) -> DaemonKind;
    fn config(&self) -> &DaemonConfig;
    fn process(&self) -> &DaemonProcess;
    fn process_mut(&mut self) -> &mut DaemonProcess;

    /// The session state as the daemon names it ("Established", "Active", …).
    fn session_state(&self) -> String;
    /// Whether the daemon considers the session Established.
    fn is_established(&self) -> bool;
    /// The IPv4 (`ipv6 == false`) or IPv6 unicast routes the daemon learned from us.
    fn received_routes(&self, ipv6: bool) -> Vec<RibRoute>;
    /// The End-of-RIB markers the daemon reports having received from us,
    /// oldest first (from its log or API output; see [`EndOfRib`]).
    fn end_of_rib_received(&self) -> Vec<EndOfRib>;
    /// The last NOTIFICATION the daemon sent or received, if any.
    fn last_notification(&self) -> Option<NotificationReport>;
    /// The daemon's log (its own log file and its standard output/error).
    fn log(&self) -> String;
    /// Waits until the daemon is ready for connections / CLI queries.
    fn wait_ready(&self, timeout: Duration);

    /// Name, addresses, state and log: attached to every failure message.
    fn diagnostics(&self) -> String {
        let c = self.config();
        format!(
            "--- {} at {} (AS {}), neighbour {} (AS {}), state {:?}\n--- log:\n{}\n--- end of {} log",
            self.kind().name(),
            c.endpoint(),
            c.asn,
            c.peer_endpoint(),
            c.peer_asn,
            self.session_state(),
            tail(&self.log(), 12_000),
            self.kind().name(),
        )
    }

    /// Waits for the session to be Established, or panics with diagnostics.
    fn wait_established(&self, timeout: Duration) {
        wait_for(
            &format!("{} to report the session Established", self.kind().name()),
            timeout,
            || self.is_established().then_some(()),
            || self.diagnostics(),
        )
    }

    /// Waits for the session to leave Established, or panics with diagnostics.
    fn wait_not_established(&self, timeout: Duration) {
        wait_for(
            &format!("{} to report the session down", self.kind().name()),
            timeout,
            || (!self.is_established()).then_some(()),
            || self.diagnostics(),
        )
    }

    /// Waits for `prefix` (IPv6 if it contains ':') to be in the routes
    /// learned from us and returns it, or panics with diagnostics.
    fn wait_route(&self, prefix: &str, timeout: Duration) -> RibRoute {
        let ipv6 = prefix.contains(':');
        wait_for(
            &format!(
                "{} to list {prefix} as received from us",
                self.kind().name()
            ),
            timeout,
            || {
                self.received_routes(ipv6)
                    .into_iter()
                    .find(|r| r.prefix == prefix)
            },
            || self.diagnostics(),
        )
    }

    /// Waits for a reported NOTIFICATION matching `pred`, or panics with diagnostics.
    fn wait_notification(
        &self,
        timeout: Duration,
        pred: &dyn Fn(&NotificationReport) -> bool,
    ) -> NotificationReport {
        wait_for(
            &format!("{} to report a matching NOTIFICATION", self.kind().name()),
            timeout,
            || self.last_notification().filter(|n| pred(n)),
            || {
                format!(
                    "last reported: {:?}\n{}",
                    self.last_notification(),
                    self.diagnostics()
                )
            },
        )
    }

    /// SIGSTOP the daemon.
    fn pause(&self) {
        self.process().pause();
    }
    /// SIGCONT the daemon.
    fn resume(&self) {
        self.process().resume();
    }
    /// Kill the daemon (SIGKILL); [`Daemon::restart`] brings it back.
    fn kill(&mut self) {
        self.process_mut().kill();
    }
    /// Kill and start again with the same configuration, then wait until ready.
    fn restart(&mut self) {
        self.process_mut().restart();
        self.wait_ready(Duration::from_secs(20));
    }
}

/// The last `max` bytes of `s` (on a char boundary).
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// BIRD's (and commonly used) names of NOTIFICATION codes/subcodes.
pub(crate) const NOTIFICATION_NAMES: &[(u8, u8, &str)] = &[
    (1, 0, "Invalid message header"),
    (1, 1, "Connection not synchronized"),
    (1, 2, "Bad message length"),
    (1, 3, "Bad message type"),
    (2, 0, "Invalid OPEN message"),
    (2, 1, "Unsupported version number"),
    (2, 2, "Bad peer AS"),
    (2, 3, "Bad BGP identifier"),
    (2, 4, "Unsupported optional parameter"),
    (2, 5, "Authentication failure"),
    (2, 6, "Unacceptable hold time"),
    (2, 7, "Required capability missing"),
    (2, 8, "No supported AFI/SAFI"),
    (2, 11, "Role mismatch"),
    (3, 0, "Invalid UPDATE message"),
    (3, 1, "Malformed attribute list"),
    (3, 2, "Unrecognized well-known attribute"),
    (3, 3, "Missing mandatory attribute"),
    (3, 4, "Invalid attribute flags"),
    (3, 5, "Invalid attribute length"),
    (3, 6, "Invalid ORIGIN attribute"),
    (3, 7, "AS routing loop"),
    (3, 8, "Invalid NEXT_HOP attribute"),
    (3, 9, "Optional attribute error"),
    (3, 10, "Invalid network field"),
    (3, 11, "Malformed AS_PATH"),
    (4, 0, "Hold timer expired"),
    (5, 0, "Finite state machine error"),
    (5, 1, "Unexpected message in OpenSent state"),
    (5, 2, "Unexpected message in OpenConfirm state"),
    (5, 3, "Unexpected message in Established state"),
    (6, 0, "Cease"),
    (6, 1, "Maximum number of prefixes reached"),
    (6, 2, "Administrative shutdown"),
    (6, 3, "Peer de-configured"),
    (6, 4, "Administrative reset"),
    (6, 5, "Connection rejected"),
    (6, 6, "Other configuration change"),
    (6, 7, "Connection collision resolution"),
    (6, 8, "Out of Resources"),
    (7, 0, "Invalid ROUTE-REFRESH message"),
    (7, 1, "Invalid ROUTE-REFRESH message length"),
];

/// Looks a BIRD error description up: the longest matching name at the start of `text`.
pub(crate) fn code_for_name(text: &str) -> Option<(u8, u8)> {
    if let Some(rest) = text.strip_prefix("Unknown error ") {
        let (c, s) = rest.split_once('.')?;
        let s: String = s.chars().take_while(char::is_ascii_digit).collect();
        return Some((c.parse().ok()?, s.parse().ok()?));
    }
    NOTIFICATION_NAMES
        .iter()
        .filter(|(_, _, n)| text.starts_with(n))
        .max_by_key(|(_, _, n)| n.len())
        .map(|&(c, s, _)| (c, s))
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub(crate) fn write_file(dir: &std::path::Path, name: &str, contents: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    p.to_string_lossy().into_owned()
}
