//! BIRD 2 (`bird -f`, queried with `birdc -s SOCKET`).

use std::fmt::Write as _;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib, NotificationReport, RibRoute,
    code_for_name, write_file,
};
use crate::process::{DaemonProcess, Launch, run_cli};
use crate::wait::wait_for;

/// The name of the BGP protocol (the session with us) in BIRD's config.
pub const PROTOCOL: &str = "corebgp";

/// A BIRD 2 instance with one BGP protocol, [`PROTOCOL`], towards us.
///
/// Quirks handled here: BIRD listens on the wildcard address unless
/// `strict bind` is on (it is, here); sessions on loopback need `multihop` (else "Invalid
/// next hop"); `start delay`/`error wait` timers are shortened so that
/// restarts and reconnects take about a second instead of a minute. BIRD
/// reports NOTIFICATIONs by name only ("Received: Administrative shutdown"),
/// which [`Daemon::last_notification`] maps back to code/subcode; a received
/// RFC 9003 shutdown communication is logged as `: "text"` after the name.
pub struct Bird {
    cfg: DaemonConfig,
    dir: TempDir,
    proc: DaemonProcess,
}

impl Bird {
    pub fn start(cfg: DaemonConfig) -> Self {
        crate::process::require_binary("bird");
        crate::process::require_binary("birdc");
        let dir = tempfile::Builder::new()
            .prefix("corebgp-bird-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("bird.log");
        let conf = write_file(
            dir.path(),
            "bird.conf",
            &config(&cfg, &log.to_string_lossy()),
        );
        let sock = dir.path().join("bird.ctl").to_string_lossy().into_owned();
        let pid = dir.path().join("bird.pid").to_string_lossy().into_owned();
        let launch = Launch {
            program: "bird".into(),
            args: vec![
                "-f".into(),
                "-c".into(),
                conf,
                "-s".into(),
                sock,
                "-P".into(),
                pid,
            ],
            env: vec![],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("stdout.log"),
        };
        let proc = DaemonProcess::spawn(launch);
        let b = Self { cfg, dir, proc };
        b.wait_ready(Duration::from_secs(20));
        b
    }

    fn socket(&self) -> String {
        self.dir
            .path()
            .join("bird.ctl")
            .to_string_lossy()
            .into_owned()
    }

    /// Runs one `birdc` command and returns its output.
    pub fn birdc(&self, cmd: &str) -> Result<String, String> {
        let sock = self.socket();
        let mut args = vec!["-s", sock.as_str()];
        args.extend(cmd.split_whitespace());
        run_cli("birdc", &args, Duration::from_secs(10))
    }

    /// `show protocols all corebgp`.
    pub fn protocol_info(&self) -> String {
        self.birdc(&format!("show protocols all {PROTOCOL}"))
            .unwrap_or_else(|e| e)
    }
}

fn config(c: &DaemonConfig, log: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "log \"{log}\" all;");
    let _ = writeln!(s, "router id {};", c.router_id);
    s.push_str("protocol device {}\nipv4 table master4;\nipv6 table master6;\n");
    if !c.ipv4_routes.is_empty() {
        s.push_str("protocol static s4 {\n  ipv4;\n");
        for r in &c.ipv4_routes {
            let _ = writeln!(s, "  route {r} blackhole{};", route_attributes(c));
        }
        s.push_str("}\n");
    }
    if !c.ipv6_routes.is_empty() {
        s.push_str("protocol static s6 {\n  ipv6;\n");
        for r in &c.ipv6_routes {
            let _ = writeln!(s, "  route {r} blackhole{};", route_attributes(c));
        }
        s.push_str("}\n");
    }
    let _ = writeln!(s, "protocol bgp {PROTOCOL} {{");
    let _ = writeln!(s, "  local {} port {} as {};", c.address, c.port, c.asn);
    let _ = writeln!(
        s,
        "  neighbor {} port {} as {};",
        c.peer_address, c.peer_port, c.peer_asn
    );
    // Without strict bind BIRD listens on the wildcard address.
    s.push_str("  multihop;\n  strict bind on;\n");
    // Packet tracing: BIRD reports a received End-of-RIB nowhere else;
    // route tracing logs each import and removal in order, with the
    // NOTIFICATIONs (the announcer's SIGTERM test reads that order).
    s.push_str("  debug { packets, routes };\n");
    if c.passive {
        s.push_str("  passive on;\n");
    }
    let _ = writeln!(s, "  hold time {};", c.hold_time);
    s.push_str("  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 2;\n");
    if let Some(pw) = &c.md5_password {
        let _ = writeln!(s, "  password \"{pw}\";");
    }
    let _ = writeln!(
        s,
        "  ipv4 {{ import all; export all; next hop address {}; }};",
        super::DAEMON_NEXT_HOP_V4
    );
    let _ = writeln!(
        s,
        "  ipv6 {{ import all; export all; next hop address {}; }};",
        super::DAEMON_NEXT_HOP_V6
    );
    s.push_str("}\n");
    s
}

/// The attribute block of a static route: `{ bgp_community.add((a,b)); … }`
/// for the configured communities, empty without any.
fn route_attributes(c: &DaemonConfig) -> String {
    let tuple = |v: &str| v.split(':').collect::<Vec<_>>().join(",");
    let mut s = String::new();
    for v in &c.communities {
        let _ = write!(s, " bgp_community.add(({}));", tuple(v));
    }
    for v in &c.large_communities {
        let _ = write!(s, " bgp_large_community.add(({}));", tuple(v));
    }
    if s.is_empty() {
        s
    } else {
        format!(" {{{s} }}")
    }
}

impl Daemon for Bird {
    fn kind(&self) -> DaemonKind {
        DaemonKind::Bird
    }
    fn config(&self) -> &DaemonConfig {
        &self.cfg
    }
    fn process(&self) -> &DaemonProcess {
        &self.proc
    }
    fn process_mut(&mut self) -> &mut DaemonProcess {
        &mut self.proc
    }

    fn wait_ready(&self, timeout: Duration) {
        wait_for(
            "BIRD's control socket to answer",
            timeout,
            || {
                self.birdc("show status")
                    .ok()
                    .filter(|o| o.contains("Daemon is up"))
                    .map(|_| ())
            },
            || self.diagnostics(),
        )
    }

    fn session_state(&self) -> String {
        let info = self.protocol_info();
        info.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("BGP state:")
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_else(|| format!("unknown ({})", info.trim()))
    }

    fn is_established(&self) -> bool {
        self.session_state() == "Established"
    }

    fn received_routes(&self, ipv6: bool) -> Vec<RibRoute> {
        let table = if ipv6 { "master6" } else { "master4" };
        let out = self
            .birdc(&format!("show route all protocol {PROTOCOL} table {table}"))
            .unwrap_or_default();
        parse_routes(&out)
    }

    /// From the packet trace (`debug { packets }`): `corebgp: Got
    /// END-OF-RIB`, without the family.
    fn end_of_rib_received(&self) -> Vec<EndOfRib> {
        let log = std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default();
        let mark = format!("{PROTOCOL}: Got END-OF-RIB");
        log.lines()
            .filter(|l| l.contains(&mark))
            .map(|_| EndOfRib::Unnamed)
            .collect()
    }

    fn last_notification(&self) -> Option<NotificationReport> {
        let log = std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default();
        log.lines().rev().find_map(parse_notification_line)
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default();
        format!(
            "{log}{}\n--- birdc show protocols all:\n{}",
            self.proc.output(),
            self.protocol_info()
        )
    }
}

/// Parses `show route all` output into routes.
fn parse_routes(out: &str) -> Vec<RibRoute> {
    let mut routes: Vec<RibRoute> = Vec::new();
    for line in out.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !line.starts_with(char::is_whitespace) && first.contains('/') {
            routes.push(RibRoute {
                prefix: first.to_owned(),
                next_hop: String::new(),
                as_path: String::new(),
            });
        } else if let Some(r) = routes.last_mut() {
            let t = line.trim();
            if let Some(nh) = t.strip_prefix("BGP.next_hop:") {
                r.next_hop = nh.split_whitespace().next().unwrap_or("").to_owned();
            } else if let Some(p) = t.strip_prefix("BGP.as_path:") {
                r.as_path = p.trim().to_owned();
            }
        }
    }
    routes
}

/// `corebgp: Received: Administrative shutdown: "text"` / `corebgp: Error: Bad message type`.
fn parse_notification_line(line: &str) -> Option<NotificationReport> {
    let (_, rest) = line.split_once(&format!("{PROTOCOL}: "))?;
    let (direction, rest) = if let Some(r) = rest.strip_prefix("Received: ") {
        (Direction::Received, r)
    } else if let Some(r) = rest.strip_prefix("Error: ") {
        (Direction::Sent, r)
    } else {
        return None;
    };
    let (code, subcode) = code_for_name(rest)?;
    let message = rest
        .split_once(": \"")
        .and_then(|(_, m)| m.rsplit_once('"'))
        .map(|(m, _)| m.to_owned());
    Some(NotificationReport {
        direction,
        code,
        subcode,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_lines() {
        let n = parse_notification_line(
            "2024-01-01 00:00:00.000 <RMT> corebgp: Received: Administrative shutdown: \"bye now\"",
        )
        .unwrap();
        assert_eq!(
            (n.direction, n.code, n.subcode),
            (Direction::Received, 6, 2)
        );
        assert_eq!(n.message.as_deref(), Some("bye now"));
        let n =
            parse_notification_line("x <RMT> corebgp: Error: Connection not synchronized").unwrap();
        assert_eq!(
            (n.direction, n.code, n.subcode, n.message),
            (Direction::Sent, 1, 1, None)
        );
        assert!(parse_notification_line("x <INFO> corebgp: Connected").is_none());
    }
}
