//! ExaBGP 4 (`exabgp CONFIG`), observed through its JSON API output.

use std::fmt::Write as _;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib, NotificationReport, RibRoute, write_file,
};
use crate::process::{DaemonProcess, Launch};
use crate::wait::wait_for;

/// An ExaBGP instance with one neighbour: us.
///
/// ExaBGP has no RIB and no query CLI worth the name: an API process (a
/// shell script that appends its standard input to `received.json`) gets
/// every state change, UPDATE and NOTIFICATION as JSON, one object a line,
/// and the queries replay that file. Quirks handled here: ExaBGP refuses to
/// run as root unless `exabgp.daemon.user=root`; its CLI pipes are disabled
/// (`exabgp.api.cli=false`) so that instances do not share them; passive
/// mode is `passive true; listen PORT;` per neighbour; the API process must
/// keep its standard output open (ExaBGP takes EOF on it for the process's
/// death: `exec cat > FILE` makes it respawn the process and then give up); and an active
/// ExaBGP (`connect PORT;`) does not listen at all.
///
/// Two bugs of ExaBGP 4.2.21 (Debian 12, Python 3.11) shape what is
/// observable: (1) subscribing the API to received NOTIFICATIONs makes any
/// header error crash the peer handler (`Processes.notification() takes 8
/// positional arguments but 9 were given`), which then resets the connection
/// without sending a NOTIFICATION — so received NOTIFICATIONs are read from
/// the `state: down` event's reason instead; (2) a Cease 6/2 or 6/4 carrying
/// an RFC 9003 shutdown communication cannot be decoded (`%b requires a
/// bytes-like object`) and is answered with NOTIFICATION 1/0 "can not decode
/// update message of type "3"" — only a Cease without data is understood.
pub struct ExaBgp {
    cfg: DaemonConfig,
    dir: TempDir,
    proc: DaemonProcess,
}

impl ExaBgp {
    pub fn start(cfg: DaemonConfig) -> Self {
        crate::process::require_binary("exabgp");
        let dir = tempfile::Builder::new()
            .prefix("corebgp-exabgp-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_string_lossy().into_owned();
        let script = write_file(
            dir.path(),
            "recv.sh",
            &format!(
                "#!/bin/sh\n# keeps its stdout (a pipe ExaBGP watches) open\ncat >> {d}/received.json\n"
            ),
        );
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod recv.sh");
        }
        let conf = write_file(dir.path(), "exabgp.conf", &config(&cfg, &script));
        let env = [
            ("exabgp.daemon.user", "root"),
            ("exabgp.daemon.daemonize", "false"),
            ("exabgp.api.cli", "false"),
            ("exabgp.log.destination", "stdout"),
            ("exabgp.log.level", "INFO"),
            ("exabgp.tcp.bind", ""),
        ];
        let launch = Launch {
            program: "exabgp".into(),
            args: vec![conf],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("exabgp.log"),
        };
        let proc = DaemonProcess::spawn(launch);
        let e = Self { cfg, dir, proc };
        e.wait_ready(Duration::from_secs(30));
        e
    }

    /// Every JSON object the API process received so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let s = std::fs::read_to_string(self.dir.path().join("received.json")).unwrap_or_default();
        s.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn config(c: &DaemonConfig, script: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "process recv {{\n  run {script};\n  encoder json;\n}}");
    let _ = writeln!(s, "neighbor {} {{", c.peer_address);
    let _ = writeln!(s, "  router-id {};", c.router_id);
    let _ = writeln!(s, "  local-address {};", c.address);
    let _ = writeln!(s, "  local-as {};", c.asn);
    let _ = writeln!(s, "  peer-as {};", c.peer_asn);
    let _ = writeln!(s, "  hold-time {};", c.hold_time);
    if c.passive {
        let _ = writeln!(s, "  passive true;\n  listen {};", c.port);
    } else {
        let _ = writeln!(s, "  connect {};", c.peer_port);
    }
    if let Some(pw) = &c.md5_password {
        let _ = writeln!(s, "  md5-password \"{pw}\";");
    }
    s.push_str("  capability {\n    route-refresh;\n  }\n");
    s.push_str("  family {\n    ipv4 unicast;\n    ipv6 unicast;\n  }\n");
    s.push_str("  static {\n");
    for r in &c.ipv4_routes {
        let _ = writeln!(s, "    route {r} next-hop {};", super::DAEMON_NEXT_HOP_V4);
    }
    for r in &c.ipv6_routes {
        let _ = writeln!(s, "    route {r} next-hop {};", super::DAEMON_NEXT_HOP_V6);
    }
    s.push_str("  }\n");
    s.push_str(
        "  api {\n    processes [ recv ];\n    neighbor-changes;\n    receive { parsed; update; }\n    send { parsed; notification; }\n  }\n}\n",
    );
    s
}

fn neighbor(v: &serde_json::Value) -> Option<&serde_json::Value> {
    v.get("neighbor")
}

impl Daemon for ExaBgp {
    fn kind(&self) -> DaemonKind {
        DaemonKind::ExaBgp
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
        // ExaBGP is ready once it has parsed its configuration and started
        // the API process (which creates received.json).
        wait_for(
            "ExaBGP to start its API process",
            timeout,
            || self.dir.path().join("received.json").exists().then_some(()),
            || self.diagnostics(),
        );
        if self.cfg.passive {
            let ep = self.cfg.endpoint();
            wait_for(
                &format!("ExaBGP to listen on {ep}"),
                timeout,
                || listening(ep).then_some(()),
                || self.diagnostics(),
            );
        }
    }

    fn session_state(&self) -> String {
        self.events()
            .iter()
            .rev()
            .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some("state"))
            .find_map(|e| neighbor(e)?.get("state")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "no state event yet".into())
    }

    fn is_established(&self) -> bool {
        self.session_state() == "up"
    }

    /// The API's `"message": { "eor": { "afi": "ipv4", "safi": "unicast" } }`.
    fn end_of_rib_received(&self) -> Vec<EndOfRib> {
        self.events()
            .iter()
            .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some("update"))
            .filter_map(|e| {
                let n = neighbor(e)?;
                if n.get("direction").and_then(|d| d.as_str()) != Some("receive") {
                    return None;
                }
                let eor = n.get("message")?.get("eor")?;
                let afi = eor.get("afi")?.as_str()?;
                let safi = eor.get("safi")?.as_str()?;
                match (afi, safi) {
                    ("ipv4", "unicast") => Some(EndOfRib::Ipv4Unicast),
                    ("ipv6", "unicast") => Some(EndOfRib::Ipv6Unicast),
                    _ => None,
                }
            })
            .collect()
    }

    fn received_routes(&self, ipv6: bool) -> Vec<RibRoute> {
        let fam = if ipv6 { "ipv6 unicast" } else { "ipv4 unicast" };
        let mut rib: Vec<RibRoute> = Vec::new();
        for e in self.events() {
            let ty = e.get("type").and_then(|t| t.as_str());
            if ty == Some("state")
                && neighbor(&e)
                    .and_then(|n| n.get("state"))
                    .and_then(|s| s.as_str())
                    == Some("down")
            {
                rib.clear();
                continue;
            }
            if ty != Some("update") {
                continue;
            }
            let Some(u) = neighbor(&e)
                .and_then(|n| n.get("message"))
                .and_then(|m| m.get("update"))
            else {
                continue;
            };
            let as_path = u
                .get("attribute")
                .and_then(|a| a.get("as-path"))
                .and_then(|p| p.as_array())
                .map(|p| {
                    p.iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if let Some(w) = u
                .get("withdraw")
                .and_then(|w| w.get(fam))
                .and_then(|w| w.as_array())
            {
                for n in w {
                    if let Some(p) = n.get("nlri").and_then(|p| p.as_str()) {
                        rib.retain(|r| r.prefix != p);
                    }
                }
            }
            if let Some(a) = u
                .get("announce")
                .and_then(|a| a.get(fam))
                .and_then(|a| a.as_object())
            {
                for (nh, nlris) in a {
                    for n in nlris.as_array().into_iter().flatten() {
                        if let Some(p) = n.get("nlri").and_then(|p| p.as_str()) {
                            rib.retain(|r| r.prefix != p);
                            rib.push(RibRoute {
                                prefix: p.to_owned(),
                                next_hop: nh.clone(),
                                as_path: as_path.clone(),
                            });
                        }
                    }
                }
            }
        }
        rib
    }

    fn last_notification(&self) -> Option<NotificationReport> {
        self.events().iter().rev().find_map(|e| {
            let n = neighbor(e)?;
            match e.get("type").and_then(|t| t.as_str())? {
                // A NOTIFICATION ExaBGP sent (API `send { notification; }`).
                "notification" => {
                    if n.get("direction").and_then(|d| d.as_str())? != "send" {
                        return None;
                    }
                    let body = n.get("notification")?;
                    let code = u8::try_from(body.get("code")?.as_u64()?).ok()?;
                    let subcode = u8::try_from(body.get("subcode")?.as_u64()?).ok()?;
                    Some(NotificationReport {
                        direction: Direction::Sent,
                        code,
                        subcode,
                        message: None,
                    })
                }
                // "peer reset, message (notification received (6,2)) error(Cease / ... / Shutdown Communication: "text")"
                "state" => parse_down_reason(n.get("reason")?.as_str()?),
                _ => None,
            }
        })
    }

    fn log(&self) -> String {
        let json =
            std::fs::read_to_string(self.dir.path().join("received.json")).unwrap_or_default();
        format!("{}\n--- API output:\n{json}", self.proc.output())
    }
}

fn listening(ep: std::net::SocketAddrV4) -> bool {
    // /proc/net/tcp lists "ADDR:PORT" in host-order hex for each socket; state 0A = LISTEN.
    let want = format!("{:08X}:{:04X}", u32::from(*ep.ip()).swap_bytes(), ep.port());
    std::fs::read_to_string("/proc/net/tcp")
        .map(|s| {
            s.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A")
            })
        })
        .unwrap_or(false)
}

fn parse_down_reason(reason: &str) -> Option<NotificationReport> {
    let (direction, rest) = if let Some((_, r)) = reason.split_once("notification received (") {
        (Direction::Received, r)
    } else if let Some((_, r)) = reason.split_once("notification sent (") {
        (Direction::Sent, r)
    } else {
        return None;
    };
    let (cs, _) = rest.split_once(')')?;
    let (c, s) = cs.split_once(',')?;
    let message = reason
        .split_once("Shutdown Communication: \"")
        .and_then(|(_, m)| m.rsplit_once('"'))
        .map(|(m, _)| m.to_owned());
    Some(NotificationReport {
        direction,
        code: c.trim().parse().ok()?,
        subcode: s.trim().parse().ok()?,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_reasons() {
        let n = parse_down_reason("peer reset, message (notification received (6,2)) error(Cease / Administrative Shutdown / )").unwrap();
        assert_eq!(
            (n.direction, n.code, n.subcode, n.message),
            (Direction::Received, 6, 2, None)
        );
        let n = parse_down_reason(
            "peer reset, message (notification sent (1,0)) error(Message header error / x)",
        )
        .unwrap();
        assert_eq!((n.direction, n.code, n.subcode), (Direction::Sent, 1, 0));
        assert!(parse_down_reason("peer reset, message () error()").is_none());
    }
}
