//! GoBGP 3 (`gobgpd`, queried with `gobgp -u ADDR -p PORT`).

use std::fmt::Write as _;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib, NotificationReport, RibRoute, write_file,
};
use crate::net::free_port;
use crate::process::{DaemonProcess, Launch, run_cli};
use crate::wait::wait_for;

/// A gobgpd instance with one neighbour: us.
///
/// Quirks handled here: the gRPC API listens on the daemon's own loopback
/// address with a free port (the default `:50051` would collide between
/// parallel tests) and pprof is disabled (its default `localhost:6060` would
/// collide too). Routes are originated through the API (`gobgp global rib
/// add`), which needs a running daemon, so gobgpd starts with the global
/// section only, the routes are added, and the neighbour is then added by
/// rewriting the configuration and sending SIGHUP (gobgpd reloads it). The
/// routes are therefore in the RIB before the session can come up. GoBGP
/// treats a route whose NEXT_HOP is a loopback address as withdrawn: send it
/// routes with next hop e.g. 192.0.2.1. GoBGP sends End-of-RIB only when
/// graceful restart is enabled, so it is (restart time 120, both families).
/// GoBGP does not check the header marker (a broken marker is accepted). An
/// active gobgpd makes its first connection attempt after a random 5–10 s.
pub struct GoBgp {
    cfg: DaemonConfig,
    dir: TempDir,
    api_port: u16,
    proc: DaemonProcess,
}

impl GoBgp {
    pub fn start(cfg: DaemonConfig) -> Self {
        crate::process::require_binary("gobgpd");
        crate::process::require_binary("gobgp");
        let dir = tempfile::Builder::new()
            .prefix("corebgp-gobgp-")
            .tempdir()
            .expect("temp dir");
        let api_port = free_port(cfg.address);
        let conf = write_file(dir.path(), "gobgpd.toml", &global_config(&cfg));
        let launch = Launch {
            program: "gobgpd".into(),
            args: vec![
                "-f".into(),
                conf,
                "--api-hosts".into(),
                format!("{}:{api_port}", cfg.address),
                "-l".into(),
                "debug".into(),
                "-p".into(),
                "--pprof-disable".into(),
            ],
            env: vec![],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("gobgpd.log"),
        };
        let proc = DaemonProcess::spawn(launch);
        let g = Self {
            cfg,
            dir,
            api_port,
            proc,
        };
        g.wait_ready(Duration::from_secs(20));
        g
    }

    /// Runs one `gobgp` CLI command against this daemon.
    pub fn gobgp(&self, args: &[&str]) -> Result<String, String> {
        let host = self.cfg.address.to_string();
        let port = self.api_port.to_string();
        let mut a = vec!["-u", host.as_str(), "-p", port.as_str()];
        a.extend_from_slice(args);
        run_cli("gobgp", &a, Duration::from_secs(10))
    }

    /// `gobgp neighbor ADDR`.
    pub fn neighbor_info(&self) -> String {
        self.gobgp(&["neighbor", &self.cfg.peer_address.to_string()])
            .unwrap_or_else(|e| e)
    }

    fn originate_and_add_neighbor(&self) {
        for (routes, family, nh) in [
            (
                &self.cfg.ipv4_routes,
                "ipv4",
                super::DAEMON_NEXT_HOP_V4.to_string(),
            ),
            (
                &self.cfg.ipv6_routes,
                "ipv6",
                super::DAEMON_NEXT_HOP_V6.to_string(),
            ),
        ] {
            for r in routes {
                let communities = self.cfg.communities.join(",");
                let large = self.cfg.large_communities.join(",");
                let mut args = vec!["global", "rib", "add", r, "nexthop", &nh];
                if !communities.is_empty() {
                    args.extend(["community", &communities]);
                }
                if !large.is_empty() {
                    args.extend(["large-community", &large]);
                }
                args.extend(["-a", family]);
                if let Err(e) = self.gobgp(&args) {
                    panic!("gobgp global rib add {r}: {e}\n{}", self.diagnostics());
                }
            }
        }
        let mut conf = global_config(&self.cfg);
        conf.push_str(&neighbor_config(&self.cfg));
        write_file(self.dir.path(), "gobgpd.toml", &conf);
        self.proc.signal(libc::SIGHUP);
        wait_for(
            "gobgpd to load the neighbour after SIGHUP",
            Duration::from_secs(10),
            || self.neighbor_info().contains("BGP state").then_some(()),
            || self.diagnostics(),
        );
    }
}

fn global_config(c: &DaemonConfig) -> String {
    let mut s = String::new();
    s.push_str("[global.config]\n");
    let _ = writeln!(s, "  as = {}", c.asn);
    let _ = writeln!(s, "  router-id = \"{}\"", c.router_id);
    let _ = writeln!(s, "  port = {}", c.port);
    let _ = writeln!(s, "  local-address-list = [\"{}\"]", c.address);
    s
}

fn neighbor_config(c: &DaemonConfig) -> String {
    let mut s = String::new();
    s.push_str("[[neighbors]]\n  [neighbors.config]\n");
    let _ = writeln!(s, "    neighbor-address = \"{}\"", c.peer_address);
    let _ = writeln!(s, "    peer-as = {}", c.peer_asn);
    s.push_str("  [neighbors.transport.config]\n");
    let _ = writeln!(s, "    local-address = \"{}\"", c.address);
    let _ = writeln!(s, "    passive-mode = {}", c.passive);
    let _ = writeln!(s, "    remote-port = {}", c.peer_port);
    s.push_str("  [neighbors.timers.config]\n");
    let _ = writeln!(s, "    hold-time = {}", c.hold_time);
    let _ = writeln!(s, "    keepalive-interval = {}", (c.hold_time / 3).max(1));
    s.push_str("    connect-retry = 1\n");
    // GoBGP sends End-of-RIB only with graceful restart enabled.
    s.push_str(
        "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n",
    );
    for fam in ["ipv4-unicast", "ipv6-unicast"] {
        s.push_str("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n");
        let _ = writeln!(s, "      afi-safi-name = \"{fam}\"");
        s.push_str("    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n");
    }
    s
}

impl Daemon for GoBgp {
    fn kind(&self) -> DaemonKind {
        DaemonKind::GoBgp
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
            "gobgpd's API to answer",
            timeout,
            || self.gobgp(&["global"]).ok().map(|_| ()),
            || self.diagnostics(),
        );
        // After a restart the configuration already has the neighbour; adding
        // the routes again and reloading is harmless.
        self.originate_and_add_neighbor();
    }

    fn session_state(&self) -> String {
        let info = self.neighbor_info();
        info.lines()
            .find_map(|l| {
                let (_, rest) = l.split_once("BGP state =")?;
                Some(
                    rest.trim()
                        .split([',', ' '])
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .unwrap_or_else(|| format!("unknown ({})", info.trim()))
    }

    fn is_established(&self) -> bool {
        self.session_state().eq_ignore_ascii_case("ESTABLISHED")
    }

    fn received_routes(&self, ipv6: bool) -> Vec<RibRoute> {
        let fam = if ipv6 { "ipv6" } else { "ipv4" };
        let Ok(out) = self.gobgp(&["global", "rib", "-a", fam, "-j"]) else {
            return Vec::new();
        };
        parse_rib_json(&out, &self.cfg.peer_address.to_string())
    }

    /// gobgpd's debug log: `msg="EOR received" AddressFamily=ipv4-unicast`.
    fn end_of_rib_received(&self) -> Vec<EndOfRib> {
        self.proc
            .output()
            .lines()
            .filter(|l| l.contains("msg=\"EOR received\""))
            .filter_map(|l| {
                if l.contains("AddressFamily=ipv4-unicast") {
                    Some(EndOfRib::Ipv4Unicast)
                } else if l.contains("AddressFamily=ipv6-unicast") {
                    Some(EndOfRib::Ipv6Unicast)
                } else {
                    None
                }
            })
            .collect()
    }

    fn last_notification(&self) -> Option<NotificationReport> {
        self.proc
            .output()
            .lines()
            .rev()
            .find_map(parse_notification_line)
    }

    fn log(&self) -> String {
        format!(
            "{}\n--- gobgp neighbor:\n{}",
            self.proc.output(),
            self.neighbor_info()
        )
    }
}

/// Parses `gobgp global rib -a FAM -j`: `{"prefix": [path, …], …}`, keeping
/// the paths learned from `peer`.
fn parse_rib_json(out: &str, peer: &str) -> Vec<RibRoute> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(out) else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (prefix, paths) in map {
        for p in paths.as_array().into_iter().flatten() {
            if p.get("neighbor-ip").and_then(|v| v.as_str()) != Some(peer) {
                continue;
            }
            let mut next_hop = String::new();
            let mut as_path = String::new();
            for a in p
                .get("attrs")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                match a.get("type").and_then(|t| t.as_u64()) {
                    Some(3) | Some(14) => {
                        if let Some(nh) = a.get("nexthop").and_then(|v| v.as_str()) {
                            next_hop = nh.to_owned();
                        }
                    }
                    Some(2) => {
                        let asns: Vec<String> = a
                            .get("as_paths")
                            .and_then(|v| v.as_array())
                            .into_iter()
                            .flatten()
                            .flat_map(|seg| {
                                seg.get("asns")
                                    .and_then(|v| v.as_array())
                                    .cloned()
                                    .unwrap_or_default()
                            })
                            .map(|v| v.to_string())
                            .collect();
                        as_path = asns.join(" ");
                    }
                    _ => {}
                }
            }
            routes.push(RibRoute {
                prefix: prefix.clone(),
                next_hop,
                as_path,
            });
        }
    }
    routes
}

/// gobgpd's plain-format log lines about NOTIFICATIONs.
fn parse_notification_line(line: &str) -> Option<NotificationReport> {
    let direction = if line.contains("msg=\"received notification\"") {
        Direction::Received
    } else if line.contains("msg=\"sent notification\"") {
        Direction::Sent
    } else {
        return None;
    };
    let field = |name: &str| -> Option<String> {
        let (_, rest) = line.split_once(&format!(" {name}="))?;
        if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => break,
                    c => out.push(c),
                }
            }
            Some(out)
        } else {
            Some(rest.split_whitespace().next().unwrap_or("").to_owned())
        }
    };
    Some(NotificationReport {
        direction,
        code: field("Code")?.parse().ok()?,
        subcode: field("Subcode")?.parse().ok()?,
        message: field("Communicated-Reason").filter(|m| !m.is_empty()),
    })
}
