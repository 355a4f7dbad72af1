//! FRR 8 bgpd without zebra (`bgpd -Z`, queried with `vtysh --vty_socket DIR`).

use std::fmt::Write as _;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib, NotificationReport, RibRoute, write_file,
};
use crate::process::{DaemonProcess, Launch, run_cli};
use crate::wait::wait_for;

/// A standalone FRR bgpd with one neighbour: us.
///
/// Quirks handled here: bgpd runs without zebra (`-Z`), as user `frr`, so its
/// temporary directory is chowned to `frr`; eBGP needs `no bgp
/// ebgp-requires-policy` (else nothing is accepted or sent) and `no bgp
/// network import-check` (to originate with `network` without a RIB); the
/// neighbour needs `ebgp-multihop` on loopback.
pub struct Frr {
    cfg: DaemonConfig,
    dir: TempDir,
    proc: DaemonProcess,
}

const BGPD: &str = "/usr/lib/frr/bgpd";

impl Frr {
    pub fn start(cfg: DaemonConfig) -> Self {
        crate::process::require_binary(BGPD);
        crate::process::require_binary("vtysh");
        let dir = tempfile::Builder::new()
            .prefix("corebgp-frr-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_string_lossy().into_owned();
        let conf = write_file(
            dir.path(),
            "bgpd.conf",
            &config(&cfg, &format!("{d}/bgpd.log")),
        );
        chown_frr(dir.path());
        let launch = Launch {
            program: BGPD.into(),
            args: vec![
                "-f".into(),
                conf,
                "-p".into(),
                cfg.port.to_string(),
                "-l".into(),
                cfg.address.to_string(),
                "-Z".into(),
                "-i".into(),
                format!("{d}/bgpd.pid"),
                "--vty_socket".into(),
                d.clone(),
                "-P".into(),
                "0".into(),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
            ],
            env: vec![],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("stdout.log"),
        };
        let proc = DaemonProcess::spawn(launch);
        let f = Self { cfg, dir, proc };
        f.wait_ready(Duration::from_secs(20));
        f
    }

    /// Runs one vtysh command against this bgpd.
    pub fn vtysh(&self, cmd: &str) -> Result<String, String> {
        let d = self.dir.path().to_string_lossy().into_owned();
        run_cli(
            "vtysh",
            &["--vty_socket", &d, "-c", cmd],
            Duration::from_secs(10),
        )
    }

    /// `show bgp neighbors ADDR json`, the neighbour's object.
    pub fn neighbor_json(&self) -> Option<serde_json::Value> {
        let out = self
            .vtysh(&format!(
                "show bgp neighbors {} json",
                self.cfg.peer_address
            ))
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        v.get(self.cfg.peer_address.to_string()).cloned()
    }
}

fn chown_frr(path: &std::path::Path) {
    let out = std::process::Command::new("chown")
        .args(["-R", "frr:frr"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("chown: {e}"));
    assert!(
        out.status.success(),
        "chown -R frr:frr {} failed (is the `frr` user there? {}): {}",
        path.display(),
        crate::process::INSTALL_HINT,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(c: &DaemonConfig, log: &str) -> String {
    let p = c.peer_address;
    let mut s = String::new();
    s.push_str("frr defaults traditional\nhostname corebgp-test\n");
    let _ = writeln!(s, "log file {log} debugging");
    // Each received UPDATE's prefixes, announced or withdrawn, in order with
    // the NOTIFICATIONs (the announcer's SIGTERM test reads that order).
    s.push_str("debug bgp updates in\n");
    s.push_str("!\n");
    let _ = writeln!(s, "router bgp {}", c.asn);
    let _ = writeln!(s, " bgp router-id {}", c.router_id);
    s.push_str(
        " bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n no bgp network import-check\n",
    );
    let _ = writeln!(s, " neighbor {p} remote-as {}", c.peer_asn);
    let _ = writeln!(s, " neighbor {p} port {}", c.peer_port);
    let _ = writeln!(s, " neighbor {p} update-source {}", c.address);
    let _ = writeln!(s, " neighbor {p} ebgp-multihop 2");
    let _ = writeln!(
        s,
        " neighbor {p} timers {} {}",
        (c.hold_time / 3).max(1),
        c.hold_time
    );
    let _ = writeln!(s, " neighbor {p} timers connect 1");
    if c.passive {
        let _ = writeln!(s, " neighbor {p} passive");
    }
    if let Some(pw) = &c.md5_password {
        let _ = writeln!(s, " neighbor {p} password {pw}");
    }
    s.push_str(" address-family ipv4 unicast\n");
    for r in &c.ipv4_routes {
        let _ = writeln!(s, "  network {r}");
    }
    let _ = writeln!(s, "  neighbor {p} activate");
    s.push_str(" exit-address-family\n address-family ipv6 unicast\n");
    for r in &c.ipv6_routes {
        let _ = writeln!(s, "  network {r}");
    }
    let _ = writeln!(s, "  neighbor {p} activate");
    s.push_str(" exit-address-family\n!\n");
    s
}

impl Daemon for Frr {
    fn kind(&self) -> DaemonKind {
        DaemonKind::Frr
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
            "bgpd's vty socket to answer",
            timeout,
            || self.neighbor_json().map(|_| ()),
            || self.diagnostics(),
        )
    }

    fn session_state(&self) -> String {
        match self.neighbor_json() {
            Some(n) => n
                .get("bgpState")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned(),
            None => "unknown (no answer from vtysh)".into(),
        }
    }

    fn is_established(&self) -> bool {
        self.session_state() == "Established"
    }

    fn received_routes(&self, ipv6: bool) -> Vec<RibRoute> {
        let fam = if ipv6 { "ipv6" } else { "ipv4" };
        let Ok(out) = self.vtysh(&format!("show bgp {fam} unicast json")) else {
            return Vec::new();
        };
        parse_rib_json(&out, &self.cfg.peer_address.to_string())
    }

    /// bgpd's log: `bgp_update_receive: rcvd End-of-RIB for IPv4 Unicast
    /// from ADDR`.
    fn end_of_rib_received(&self) -> Vec<EndOfRib> {
        let log = std::fs::read_to_string(self.dir.path().join("bgpd.log")).unwrap_or_default();
        let from = format!(" from {} ", self.cfg.peer_address);
        log.lines()
            .filter(|l| l.contains("rcvd End-of-RIB for ") && l.contains(&from))
            .filter_map(|l| {
                if l.contains("for IPv4 Unicast") {
                    Some(EndOfRib::Ipv4Unicast)
                } else if l.contains("for IPv6 Unicast") {
                    Some(EndOfRib::Ipv6Unicast)
                } else {
                    None
                }
            })
            .collect()
    }

    fn last_notification(&self) -> Option<NotificationReport> {
        let log = std::fs::read_to_string(self.dir.path().join("bgpd.log")).unwrap_or_default();
        let mut last = log.lines().rev().find_map(parse_notification_line)?;
        if last.direction == Direction::Received && last.message.is_none() {
            // The shutdown communication is in the neighbour's JSON.
            last.message = self.neighbor_json().and_then(|n| {
                n.get("lastShutdownDescription")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
        }
        Some(last)
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("bgpd.log")).unwrap_or_default();
        format!("{log}{}", self.proc.output())
    }
}

/// `show bgp FAM unicast json`: `{"routes": {"prefix": [path, …]}}`.
fn parse_rib_json(out: &str, peer: &str) -> Vec<RibRoute> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(out) else {
        return Vec::new();
    };
    let Some(routes) = v.get("routes").and_then(|r| r.as_object()) else {
        return Vec::new();
    };
    let mut res = Vec::new();
    for (prefix, paths) in routes {
        for p in paths.as_array().into_iter().flatten() {
            if p.get("peerId").and_then(|v| v.as_str()) != Some(peer) {
                continue;
            }
            let next_hop = p
                .get("nexthops")
                .and_then(|n| n.as_array())
                .and_then(|n| n.first())
                .and_then(|n| n.get("ip"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            let as_path = p
                .get("path")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            res.push(RibRoute {
                prefix: prefix.clone(),
                next_hop,
                as_path,
            });
        }
    }
    res
}

/// bgpd's log lines: `%NOTIFICATION: received from neighbor X 6/2 (Cease/Administrative Shutdown) 0 bytes`
/// and `%NOTIFICATION: sent to neighbor X 1/1 (...) 0 bytes`.
fn parse_notification_line(line: &str) -> Option<NotificationReport> {
    let (_, rest) = line.split_once("%NOTIFICATION")?;
    let direction = if rest.contains("received from neighbor") {
        Direction::Received
    } else if rest.contains("sent to neighbor") {
        Direction::Sent
    } else {
        return None;
    };
    let cs = rest.split_whitespace().find(|w| {
        w.split_once('/')
            .is_some_and(|(a, b)| a.parse::<u8>().is_ok() && b.parse::<u8>().is_ok())
    })?;
    let (c, s) = cs.split_once('/')?;
    // The shutdown communication is taken from `show bgp neighbors json` instead.
    Some(NotificationReport {
        direction,
        code: c.parse().ok()?,
        subcode: s.parse().ok()?,
        message: None,
    })
}
