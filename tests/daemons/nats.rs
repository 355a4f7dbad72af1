//! `nats-server` with JetStream on loopback: one node, or a cluster of
//! nodes on one machine (/work/shared/reference/peers.md, "NATS
//! JetStream"), each with a store directory of its own, killed on drop.
//!
//! Readiness is the monitoring port's `/healthz` answering `ok` (and, in
//! a cluster, `/jsz` naming a metadata leader); the same port's `/jsz` and
//! `/connz` tell the tests what the stream holds and who is connected.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::net;
use crate::process::{DaemonProcess, Launch};
use crate::wait::wait_for;

/// How long a node may take to be ready (a busy machine, a cluster
/// electing its metadata leader).
pub const NATS_READY: Duration = Duration::from_secs(60);

/// One `nats-server -js` process.
pub struct Nats {
    /// The client address.
    pub addr: SocketAddrV4,
    /// The monitoring port (on the same address).
    pub monitor: u16,
    /// The cluster port, in a cluster.
    pub cluster_port: Option<u16>,
    pub name: String,
    proc: DaemonProcess,
    _dir: tempfile::TempDir,
}

/// Client credentials a node requires.
#[derive(Clone, Debug)]
pub struct NatsAuth {
    pub user: String,
    pub password: String,
}

impl Nats {
    /// One node, ready.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// One node requiring `auth`, ready.
    pub fn start_with(auth: Option<NatsAuth>) -> Self {
        let addr = net::unique_loopback();
        let n = Self::spawn(addr, "n1", None, &[], auth);
        n.wait_ready(NATS_READY);
        n
    }

    /// A cluster of `size` nodes, each ready and agreeing on a metadata
    /// leader.
    pub fn cluster(size: usize) -> Vec<Self> {
        let addr = net::unique_loopback();
        let cports: Vec<u16> = (0..size).map(|_| net::free_port(addr)).collect();
        let nodes: Vec<Self> = (0..size)
            .map(|i| {
                let routes: Vec<String> = cports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats://{addr}:{p}"))
                    .collect();
                Self::spawn(addr, &format!("n{}", i + 1), Some(cports[i]), &routes, None)
            })
            .collect();
        for n in &nodes {
            n.wait_ready(NATS_READY);
        }
        for n in &nodes {
            n.wait_meta_leader(NATS_READY);
        }
        nodes
    }

    fn spawn(
        addr: Ipv4Addr,
        name: &str,
        cluster_port: Option<u16>,
        routes: &[String],
        auth: Option<NatsAuth>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = net::free_port(addr);
        let monitor = net::free_port(addr);
        let store: PathBuf = dir.path().join("store");
        let mut args: Vec<String> = [
            "-a",
            &addr.to_string(),
            "-p",
            &port.to_string(),
            "-m",
            &monitor.to_string(),
            "-js",
            "-sd",
            &store.display().to_string(),
            "--server_name",
            name,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(cp) = cluster_port {
            args.extend([
                "--cluster".into(),
                format!("nats://{addr}:{cp}"),
                "--cluster_name".into(),
                "corebgp".into(),
                "--routes".into(),
                routes.join(","),
            ]);
        }
        if let Some(a) = auth {
            args.extend(["--user".into(), a.user, "--pass".into(), a.password]);
        }
        let launch = Launch {
            program: "nats-server".into(),
            args,
            env: vec![],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("nats.log"),
        };
        Self {
            addr: SocketAddrV4::new(addr, port),
            monitor,
            cluster_port,
            name: name.to_owned(),
            proc: DaemonProcess::spawn(launch),
            _dir: dir,
        }
    }

    /// `nats://ADDR:PORT`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        crate::daemons::tail(&self.proc.output(), 8_000).to_owned()
    }

    /// GET `path` on the monitoring port: the body, or None.
    pub fn monitor_get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(
            &SocketAddrV4::new(*self.addr.ip(), self.monitor).into(),
            Duration::from_secs(2),
        )
        .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr.ip()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.").then(|| body.to_owned())
    }

    /// A monitoring endpoint's JSON.
    pub fn monitor_json(&self, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.monitor_get(path)?).ok()
    }

    /// Waits for `/healthz` to say ok.
    pub fn wait_ready(&self, timeout: Duration) {
        wait_for(
            &format!("nats-server {} ready (/healthz)", self.name),
            timeout,
            || {
                self.monitor_json("/healthz")
                    .filter(|v| v["status"] == "ok")
                    .map(|_| ())
            },
            || self.log(),
        );
    }

    /// Waits for this node to know the cluster's metadata leader.
    pub fn wait_meta_leader(&self, timeout: Duration) {
        wait_for(
            &format!("nats-server {} to know a metadata leader", self.name),
            timeout,
            || {
                let v = self.monitor_json("/jsz")?;
                let l = v["meta_cluster"]["leader"].as_str()?;
                (!l.is_empty()).then_some(())
            },
            || self.log(),
        );
    }

    /// The state of stream `name` on this node (`/jsz?streams=true`):
    /// `(messages, bytes)`.
    pub fn stream_state(&self, name: &str) -> Option<(u64, u64)> {
        let v = self.monitor_json("/jsz?streams=true")?;
        for acc in v["account_details"].as_array()? {
            for s in acc["stream_detail"].as_array().into_iter().flatten() {
                if s["name"] == name {
                    let st = &s["state"];
                    return Some((st["messages"].as_u64()?, st["bytes"].as_u64()?));
                }
            }
        }
        None
    }

    /// Whether a client named `client_name` is connected to this node.
    pub fn has_client(&self, client_name: &str) -> bool {
        self.monitor_json("/connz")
            .and_then(|v| {
                v["connections"]
                    .as_array()
                    .map(|c| c.iter().any(|c| c["name"] == client_name))
            })
            .unwrap_or(false)
    }

    /// SIGKILL: the node is gone (its store stays).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the node again on the same ports and store, and waits for it.
    pub fn restart(&mut self) {
        self.proc.start();
        self.wait_ready(NATS_READY);
    }
}
