//! What `collector` and `announcer` share: the session flags, the `--config`
//! file, logging, exit codes, listeners, signals and the local address of
//! a session.
//!
//! Exit codes follow the usual CLI convention (and `gobgp`'s): 0 done, 1 a
//! runtime failure (a port in use, an unreadable file, a refused MD5 key),
//! 2 a usage error (a bad flag value, a missing flag). Errors are one line
//! on stderr, `collector: error: …`; never a panic or a backtrace.

#![allow(dead_code)] // each tool uses its own subset

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use corebgp_std::core::session::PeerConfig;
use corebgp_std::{PeerOptions, Server, SocketKind};
use serde::Deserialize;
use tokio::net::TcpListener;

/// Exit code for a usage error (bad or missing flag, bad config value).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a failure at run time.
pub const EXIT_RUNTIME: i32 = 1;

/// The program's name for error lines (set once by [`parse_args`]).
static PROGRAM: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("corebgp")
}

/// Prints `PROGRAM: error: MSG` on stderr and exits with `code`.
pub fn exit_with(code: i32, msg: impl std::fmt::Display) -> ! {
    // One line, whatever the message holds.
    let msg = msg.to_string().replace('\n', " ");
    eprintln!("{}: error: {}", program(), msg.trim());
    std::process::exit(code)
}

/// A usage error: exit 2.
pub fn usage_error(msg: impl std::fmt::Display) -> ! {
    exit_with(EXIT_USAGE, msg)
}

/// A runtime error: exit 1.
pub fn runtime_error(msg: impl std::fmt::Display) -> ! {
    exit_with(EXIT_RUNTIME, msg)
}

/// Parses the command line; `--help`/`--version` print and exit 0, a bad
/// flag prints clap's first line (which names the flag and the value) and
/// exits 2.
pub fn parse_args<T: Parser>(name: &'static str) -> T {
    let _ = PROGRAM.set(name);
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(0)
                }
                _ => {
                    // clap's message up to its usage line, on one line (a
                    // missing argument is named on the line after "not
                    // provided:").
                    let text = e.render().to_string();
                    let msg: Vec<&str> = text
                        .lines()
                        .map(str::trim)
                        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                        .filter(|l| !l.is_empty())
                        .collect();
                    let msg = msg.join(" ");
                    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
                    usage_error(if msg.is_empty() { "bad arguments" } else { msg })
                }
            }
        }
    }
}

/// An AS number: plain (`65001`, `4200000001`) or asdot (`64086.59904`,
/// RFC 5396). AS 0 is refused (RFC 7607).
pub fn parse_asn(s: &str) -> Result<u32, String> {
    let n = match s.split_once('.') {
        Some((hi, lo)) => {
            let hi: u16 = hi
                .parse()
                .map_err(|_| format!("'{s}' is not an AS number"))?;
            let lo: u16 = lo
                .parse()
                .map_err(|_| format!("'{s}' is not an AS number"))?;
            (u32::from(hi) << 16) | u32::from(lo)
        }
        None => s
            .parse::<u32>()
            .map_err(|_| format!("'{s}' is not an AS number (1 to 4294967295, or asdot)"))?,
    };
    if n == 0 {
        return Err("AS 0 is reserved (RFC 7607)".into());
    }
    Ok(n)
}

/// The session flags both tools take.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Our BGP identifier (an IPv4 address, unique among the peer's neighbours).
    #[arg(long, value_name = "A.B.C.D")]
    pub router_id: Option<Ipv4Addr>,

    /// Our AS number (plain or asdot, 4-octet numbers welcome).
    #[arg(long, value_name = "ASN", value_parser = parse_asn)]
    pub local_as: Option<u32>,

    /// The peers' AS number (for every --peer; a --config file may set one per peer).
    #[arg(long, value_name = "ASN", value_parser = parse_asn)]
    pub remote_as: Option<u32>,

    /// A peer's address, IPv4 or IPv6 (repeatable).
    #[arg(long = "peer", value_name = "ADDRESS")]
    pub peers: Vec<IpAddr>,

    /// The TCP port we dial on the peers.
    #[arg(long, value_name = "PORT", default_value_t = 179,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Accept connections on this address and port (repeatable), e.g. 0.0.0.0:179 or [::]:179.
    #[arg(long = "listen", value_name = "ADDRESS:PORT")]
    pub listen: Vec<SocketAddr>,

    /// Never dial: wait for the peers to connect (needs --listen).
    #[arg(long)]
    pub passive: bool,

    /// Dial from this address (and only accept connections the peer makes to it).
    #[arg(long, value_name = "ADDRESS")]
    pub local_address: Option<IpAddr>,

    /// The hold time we propose, in seconds: 0 (no keepalives) or 3 to 65535.
    #[arg(long, value_name = "SECONDS")]
    pub hold_time: Option<u16>,

    /// TCP MD5 signature key (RFC 2385), on the dialling socket and the listeners.
    #[arg(long, value_name = "KEY")]
    pub md5_key: Option<String>,

    /// GTSM (RFC 5082): send with TTL 255 and accept only TTL 255.
    #[arg(long)]
    pub ttl_security: bool,

    /// Peers in a TOML file: one [[peer]] table each, with the keys of these
    /// flags (address, remote-as, local-as, port, passive, local-address,
    /// hold-time, md5-key, ttl-security); top-level keys are defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log level on stderr (error, warn, info, debug, trace); RUST_LOG, if
    /// set, takes precedence and may filter per module.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// One peer, with everything resolved.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub address: IpAddr,
    pub local_as: u32,
    pub remote_as: u32,
    pub port: u16,
    pub passive: bool,
    pub local_address: Option<IpAddr>,
    pub hold_time: Option<u16>,
    pub md5_key: Option<String>,
    pub ttl_security: bool,
}

impl PeerSpec {
    /// CoreBGP's `PeerConfig`.
    pub fn config(&self) -> PeerConfig {
        PeerConfig {
            remote_address: self.address,
            local_as: self.local_as,
            remote_as: self.remote_as,
        }
    }

    /// The server's options for this peer (the caller adds its own queue
    /// and socket hook).
    pub fn options(&self) -> PeerOptions {
        let mut o = PeerOptions::new()
            .port(self.port)
            .passive(self.passive)
            .ttl_security(self.ttl_security);
        if let Some(a) = self.local_address {
            o = o.local_address(a);
        }
        if let Some(h) = self.hold_time {
            o = o.hold_time(h);
        }
        if let Some(k) = &self.md5_key {
            o = o.md5_key(k.as_bytes());
        }
        o
    }
}

/// What both tools start from: the identifier, the peers, the listeners.
#[derive(Debug, Clone)]
pub struct Setup {
    pub router_id: Ipv4Addr,
    pub peers: Vec<PeerSpec>,
    pub listen: Vec<SocketAddr>,
}

/// A `--config` file: top-level keys are defaults for every `[[peer]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    router_id: Option<Ipv4Addr>,
    #[serde(default, deserialize_with = "de_asn_opt")]
    local_as: Option<u32>,
    #[serde(default, deserialize_with = "de_asn_opt")]
    remote_as: Option<u32>,
    port: Option<u16>,
    passive: Option<bool>,
    local_address: Option<IpAddr>,
    hold_time: Option<u16>,
    md5_key: Option<String>,
    ttl_security: Option<bool>,
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    peer: Vec<ConfigPeer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigPeer {
    address: IpAddr,
    #[serde(default, deserialize_with = "de_asn_opt")]
    local_as: Option<u32>,
    #[serde(default, deserialize_with = "de_asn_opt")]
    remote_as: Option<u32>,
    port: Option<u16>,
    passive: Option<bool>,
    local_address: Option<IpAddr>,
    hold_time: Option<u16>,
    md5_key: Option<String>,
    ttl_security: Option<bool>,
}

/// AS numbers in the file: an integer or a string (plain or asdot).
fn de_asn_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(i64),
        S(String),
    }
    let raw = Option::<Raw>::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(Raw::N(n)) => u32::try_from(n)
            .ok()
            .filter(|&n| n != 0)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an AS number"))),
        Some(Raw::S(s)) => parse_asn(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

impl SessionArgs {
    /// Merges the flags with the `--config` file (a `[[peer]]` table's keys,
    /// then the file's top-level keys, then the flags); usage errors exit 2,
    /// an unreadable file exits 1.
    pub fn resolve(&self) -> Setup {
        let file = match &self.config {
            Some(path) => read_config(path),
            None => ConfigFile::default(),
        };
        let router_id = file
            .router_id
            .or(self.router_id)
            .unwrap_or_else(|| usage_error("--router-id is required (or router-id in --config)"));
        if router_id.is_unspecified() {
            usage_error("--router-id 0.0.0.0 is not a valid BGP identifier");
        }
        let local_as = file.local_as.or(self.local_as);
        let remote_as = file.remote_as.or(self.remote_as);
        let d = |f: Option<bool>, flag: bool| f.unwrap_or(flag);
        let mut peers = Vec::new();
        let mut seen = HashMap::new();
        for addr in &self.peers {
            peers.push(PeerSpec {
                address: addr.to_canonical(),
                local_as: local_as.unwrap_or_else(|| {
                    usage_error("--local-as is required (or local-as in --config)")
                }),
                remote_as: remote_as.unwrap_or_else(|| {
                    usage_error(format!("--remote-as is required for --peer {addr}"))
                }),
                port: file.port.unwrap_or(self.port),
                passive: d(file.passive, self.passive),
                local_address: file.local_address.or(self.local_address),
                hold_time: file.hold_time.or(self.hold_time),
                md5_key: file.md5_key.clone().or_else(|| self.md5_key.clone()),
                ttl_security: d(file.ttl_security, self.ttl_security),
            });
        }
        for p in &file.peer {
            let addr = p.address;
            peers.push(PeerSpec {
                address: addr.to_canonical(),
                local_as: p.local_as.or(local_as).unwrap_or_else(|| {
                    usage_error(format!(
                        "peer {addr}: local-as is not set (in the table, the file or --local-as)"
                    ))
                }),
                remote_as: p.remote_as.or(remote_as).unwrap_or_else(|| {
                    usage_error(format!(
                        "peer {addr}: remote-as is not set (in the table, the file or --remote-as)"
                    ))
                }),
                port: p.port.or(file.port).unwrap_or(self.port),
                passive: p.passive.or(file.passive).unwrap_or(self.passive),
                local_address: p
                    .local_address
                    .or(file.local_address)
                    .or(self.local_address),
                hold_time: p.hold_time.or(file.hold_time).or(self.hold_time),
                md5_key: p
                    .md5_key
                    .clone()
                    .or_else(|| file.md5_key.clone())
                    .or_else(|| self.md5_key.clone()),
                ttl_security: p
                    .ttl_security
                    .or(file.ttl_security)
                    .unwrap_or(self.ttl_security),
            });
        }
        if peers.is_empty() {
            usage_error(
                "no peer: give --peer ADDRESS (repeatable) or --config FILE with [[peer]] tables",
            );
        }
        for p in &peers {
            if seen.insert(p.address, ()).is_some() {
                usage_error(format!("peer {} is given twice", p.address));
            }
            if p.port == 0 {
                usage_error(format!("peer {}: port 0 is not a port", p.address));
            }
            if let Some(h) = p.hold_time
                && (h == 1 || h == 2)
            {
                usage_error(format!(
                    "peer {}: hold time {h} is not allowed: 0 or 3 to 65535 (RFC 4271 §4.2)",
                    p.address
                ));
            }
            if let Some(l) = p.local_address
                && l.is_ipv4() != p.address.is_ipv4()
            {
                usage_error(format!(
                    "peer {}: local address {l} is not of the peer's address family",
                    p.address
                ));
            }
            if p.md5_key
                .as_ref()
                .is_some_and(|k| k.is_empty() || k.len() > corebgp_std::MD5_MAX_KEY_LEN)
            {
                usage_error(format!(
                    "peer {}: an MD5 key holds 1 to {} bytes",
                    p.address,
                    corebgp_std::MD5_MAX_KEY_LEN
                ));
            }
        }
        let mut listen = self.listen.clone();
        listen.extend(file.listen.iter().copied());
        if listen.is_empty() && peers.iter().any(|p| p.passive) {
            usage_error("a passive peer needs --listen ADDRESS:PORT to be reachable");
        }
        Setup {
            router_id,
            peers,
            listen,
        }
    }
}

fn read_config(path: &Path) -> ConfigFile {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| runtime_error(format!("cannot read {}: {e}", path.display())));
    toml::from_str(&text).unwrap_or_else(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| {
                format!(
                    " line {}",
                    text[..s.start.min(text.len())].matches('\n').count() + 1
                )
            })
            .unwrap_or_default();
        usage_error(format!("{}{at}: {}", path.display(), e.message()))
    })
}

/// Logging to stderr: `RUST_LOG` if set, else `--log-level`.
pub fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    // --log-level is checked even when RUST_LOG overrides it: a typo in a
    // service file should not wait for the day RUST_LOG is unset.
    let l = level.to_ascii_lowercase();
    if !["error", "warn", "info", "debug", "trace", "off"].contains(&l.as_str()) {
        usage_error(format!(
            "--log-level '{level}': use error, warn, info, debug, trace or off"
        ));
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).unwrap_or_else(|e| usage_error(format!("RUST_LOG='{v}': {e}")))
        }
        _ => EnvFilter::new(l),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Binds every `--listen` address, or exits 1 naming the one that failed.
pub async fn bind_listeners(addrs: &[SocketAddr]) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for a in addrs {
        match TcpListener::bind(a).await {
            Ok(l) => out.push(l),
            Err(e) => runtime_error(format!("cannot listen on {a}: {e}")),
        }
    }
    out
}

/// Adds a peer or exits 1 with the server's reason (an MD5 key the kernel
/// refuses, a bad option).
pub fn add_peer_or_exit<P: corebgp_std::core::plugin::Plugin + 'static>(
    server: &Server,
    spec: &PeerSpec,
    plugin: P,
    options: PeerOptions,
) {
    if let Err(e) = server.add_peer(spec.config(), plugin, options) {
        let hint = if spec.md5_key.is_some() {
            " (TCP MD5 needs a Linux kernel with CONFIG_TCP_MD5SIG)"
        } else {
            ""
        };
        runtime_error(format!("peer {}: {e}{hint}", spec.address))
    }
}

/// The local address of a peer's sessions: the inbound connection's own
/// address (recorded by a socket hook), else `--local-address`, else the
/// address the kernel would use to reach the peer.
#[derive(Clone, Default)]
pub struct LocalAddress {
    inbound: Arc<Mutex<Option<IpAddr>>>,
}

impl LocalAddress {
    /// A socket hook for [`PeerOptions::socket_hook`] that records the
    /// local address of accepted connections.
    pub fn hook(&self) -> corebgp_std::SocketHook {
        let slot = self.inbound.clone();
        Arc::new(move |fd, kind| {
            if kind == SocketKind::Inbound
                && let Ok(addr) = socket2::SockRef::from(&fd).local_addr()
                && let Some(a) = addr.as_socket()
                && let Ok(mut s) = slot.lock()
            {
                *s = Some(a.ip().to_canonical());
            }
            Ok(())
        })
    }

    /// Our address on the connection that reached Established.
    pub fn get(&self, spec: &PeerSpec, inbound: bool) -> Option<IpAddr> {
        if inbound && let Some(a) = self.inbound.lock().ok().and_then(|s| *s) {
            return Some(a);
        }
        spec.local_address
            .or_else(|| source_address_for(spec.address))
    }
}

/// The source address the kernel picks to reach `peer` (a UDP socket
/// "connected" to it sends nothing).
pub fn source_address_for(peer: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect((peer, 179)).ok()?;
    s.local_addr().ok().map(|a| a.ip().to_canonical())
}

/// Seconds since the Unix epoch, with microseconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Which signal asked us to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Int,
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this
/// is called, not when the future is first polled: call it early, so that
/// a signal during start-up is not the default (fatal) action.
pub fn stop_signal() -> impl std::future::Future<Output = StopSignal> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        runtime_error("cannot install the SIGTERM/SIGINT handlers")
    };
    async move {
        tokio::select! {
            _ = term.recv() => StopSignal::Term,
            _ = int.recv() => StopSignal::Int,
        }
    }
}

/// What both tools advertise: IPv4 and IPv6 unicast, Route Refresh, and
/// Graceful Restart without families (RFC 4724 §3), which asks the peer
/// for End-of-RIB markers with no restart semantics (route collectors
/// advertise it for this).
pub fn push_capabilities(caps: &mut corebgp_std::core::session::CapabilitySet) {
    use corebgp_std::core::wire::{AfiSafi, Capability, GracefulRestart, List};
    for c in [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 0,
            families: List::Items(&[]),
        }),
    ] {
        let _ = caps.push(&c);
    }
}

/// The RFC 4271 §8.2.2 state names as the tools print them.
pub fn state_name(s: corebgp_std::core::session::StateKind) -> &'static str {
    use corebgp_std::core::session::StateKind as S;
    match s {
        S::Idle => "idle",
        S::Connect => "connect",
        S::Active => "active",
        S::OpenSent => "opensent",
        S::OpenConfirm => "openconfirm",
        S::Established => "established",
    }
}
