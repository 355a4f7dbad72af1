//! embassy-net on a TAP device against BIRD 2 on the kernel side, inside a
//! network namespace this test creates: nothing of the host's network
//! configuration is touched.
//!
//! `cargo test` runs it: the test re-executes its own binary inside
//! `unshare -n` (a fresh, empty network namespace that vanishes with the
//! process), where it creates `tapbgp0` (192.168.69.1/24, kernel + BIRD) and
//! puts an embassy-net stack on it (192.168.69.2/24). Needs root (CI runs as
//! root), `unshare` (util-linux), `ip` (iproute2), `bird`/`birdc` (bird2)
//! and /dev/net/tun; a missing one fails the test with the command to
//! install it.
//!
//! The embassy side runs corebgp-core's shared driver through the adapter
//! ([`run_peer`]). Both directions: embassy active to a passive BIRD, then
//! BIRD active to a passive embassy (behind a [`Listener`]); each time the
//! session comes up, a route goes each way (ours built with `UpdateBuilder`,
//! BIRD's decoded with `Update`) and the embassy side ends it with a Cease
//! that BIRD must report.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use corebgp_core::session::Peer;
use corebgp_core::wire::{AfiSafi, CeaseSubcode};
use corebgp_embassy::embassy_net::{
    Config, IpAddress, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4,
};
use corebgp_embassy::{
    Accept, ActivePeer, BGP_PORT, EmbassyConnector, Listener, PassivePeer, SessionBuffers, Socket,
    SocketBuffers, StandardBuffers, run_peer,
};
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use support::bgp::{Announce, Outbox, Recorder, Route, session, until};

const INNER_ENV: &str = "COREBGP_EMBASSY_TAP_INNER";
const TEST_NAME: &str = "embassy_on_tap_peers_with_bird_both_directions";
const TAP: &str = "tapbgp0";
const OUTER_LIMIT: StdDuration = StdDuration::from_secs(120);

const EMBASSY_AS: u32 = 65001;
const EMBASSY_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 2);
const BIRD_AS: u32 = 65000;
const BIRD_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);

#[test]
fn embassy_on_tap_peers_with_bird_both_directions() {
    if std::env::var_os(INNER_ENV).is_some() {
        inner();
    } else {
        outer();
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Checks prerequisites, then runs this test again inside `unshare -n`.
fn outer() {
    assert_eq!(
        effective_uid(),
        Some(0),
        "this test must run as root (it creates a network namespace and a TAP device inside it); \
         CI runs as root; locally: sudo -E cargo test -p corebgp-embassy --test tap_bird"
    );
    for (cmd, pkg) in [
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("bird", "bird2"),
        ("birdc", "bird2"),
    ] {
        assert!(
            which(cmd).is_some(),
            "`{cmd}` not found: install it with `apt-get install -y {pkg}`"
        );
    }
    assert!(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun missing: load the tun module (`modprobe tun`) or give the container the device"
    );
    let exe = std::env::current_exe().expect("test binary path");
    // The inner run's output goes to a file, shown (through the harness's
    // capture) when this test fails.
    let log_path =
        std::env::temp_dir().join(format!("corebgp-embassy-tap-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(which("unshare").expect("unshare"))
        .arg("-n")
        .arg("--")
        .arg(&exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        // Own process group: on timeout, everything this test started
        // (the inner test and its BIRD) is killed and nothing else.
        .process_group(0)
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("spawn unshare -n");
    let start = StdInstant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > OUTER_LIMIT {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.wait();
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "the in-namespace test did not finish within {OUTER_LIMIT:?}; its output:\n{output}"
            );
        }
        std::thread::sleep(StdDuration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        status.success(),
        "the in-namespace test failed ({status}); its output:\n{output}"
    );
}

use std::os::unix::process::CommandExt as _;

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A BIRD started by this test, killed on drop.
struct Bird {
    child: Child,
    ctl: PathBuf,
    dir: PathBuf,
}

impl Bird {
    fn start(name: &str, embassy_passive: bool) -> Bird {
        let dir =
            std::env::temp_dir().join(format!("corebgp-embassy-tap-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // BIRD passive when embassy connects; otherwise BIRD dials after 1 s.
        let mode = if embassy_passive {
            "connect delay time 1; connect retry time 2;"
        } else {
            "passive on;"
        };
        let conf = format!(
            "router id {BIRD_ID};
log stderr all;
protocol device {{ scan time 1; }}
ipv4 table master4;
protocol static s4 {{ ipv4; route 203.0.113.0/24 blackhole; }}
protocol bgp embassy {{
  local 192.168.69.1 as {BIRD_AS};
  neighbor 192.168.69.2 as {asn};
  hold time 60;
  {mode}
  ipv4 {{ import all; export all; }};
}}
",
            asn = EMBASSY_AS
        );
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, conf).expect("write bird.conf");
        let ctl = dir.join("bird.ctl");
        let child = Command::new(which("bird").expect("bird"))
            .arg("-f")
            .arg("-c")
            .arg(&conf_path)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bird");
        Bird { child, ctl, dir }
    }

    async fn birdc(&self, cmd: &str) -> String {
        let out = tokio::process::Command::new(which("birdc").expect("birdc"))
            .arg("-s")
            .arg(&self.ctl)
            .args(cmd.split_whitespace())
            .output()
            .await
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `cmd` until its output contains `needle` (or fails after 15 s).
    async fn wait_for(&self, cmd: &str, needle: &str) -> String {
        let start = StdInstant::now();
        loop {
            let out = self.birdc(cmd).await;
            if out.contains(needle) {
                return out;
            }
            assert!(
                start.elapsed() < StdDuration::from_secs(15),
                "`birdc {cmd}` never showed {needle:?}; last:\n{out}"
            );
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our part of one session with BIRD, run by corebgp-core's driver through
/// `connector`; `bird` is polled to check what BIRD learnt from us.
async fn session_with_bird<'s, 'a: 's, I: Accept<'s, 'a>>(
    connector: &EmbassyConnector<'s, 'a, I>,
    passive: bool,
    bird: &Bird,
) {
    let mut peer = Peer::new(session(
        IpAddr::V4(BIRD_ID),
        EMBASSY_AS,
        BIRD_AS,
        EMBASSY_ID,
        passive,
        30,
    ));
    let outbox = Outbox::new();
    let announce = Announce {
        v4: vec![(Ipv4Addr::new(198, 51, 100, 0), 24)],
        next_hop_v4: Some(EMBASSY_ID),
        ..Announce::default()
    };
    let mut plugin = Recorder::new(&outbox, announce, false);
    let log = plugin.log.clone();
    let stop = Signal::<NoopRawMutex, CeaseSubcode>::new();
    let mut bufs: Box<StandardBuffers> = Box::new(SessionBuffers::new());
    let script = async {
        until(|| log.borrow().established == 1).await;
        bird.wait_for("show protocols embassy", "Established").await;
        // BIRD's static route to us, then its End-of-RIB.
        until(|| {
            let l = log.borrow();
            !l.routes.is_empty() && !l.end_of_rib.is_empty()
        })
        .await;
        // Our route in BIRD's table, via AS 65001.
        let routes = bird
            .wait_for("show route protocol embassy", "198.51.100.0/24")
            .await;
        assert!(routes.contains("65001"), "AS path via 65001 in:\n{routes}");
        stop.signal(CeaseSubcode::AdministrativeShutdown);
    };
    join(
        run_peer(
            &mut peer,
            connector,
            &mut plugin,
            &outbox,
            &mut bufs,
            stop.wait(),
        ),
        script,
    )
    .await;
    bird.wait_for("show protocols all embassy", "Administrative shutdown")
        .await;
    let log = log.borrow();
    assert_eq!(
        log.routes,
        [Route {
            family: AfiSafi::IPV4_UNICAST,
            prefix: "203.0.113.0/24".into(),
            as_path: vec![BIRD_AS],
            next_hop: BIRD_ID.to_string(),
        }],
        "BIRD exports 203.0.113.0/24"
    );
    assert_eq!(log.decode_errors, 0);
    assert_eq!(log.end_of_rib, [AfiSafi::IPV4_UNICAST], "BIRD's End-of-RIB");
}

/// Runs inside the fresh namespace.
fn inner() {
    sh("ip", &["link", "set", "lo", "up"]);
    sh("ip", &["tuntap", "add", "name", TAP, "mode", "tap"]);
    sh("ip", &["addr", "add", "192.168.69.1/24", "dev", TAP]);
    sh("ip", &["link", "set", TAP, "up"]);
    support::run(StdDuration::from_secs(90), || async {
        let mut device = TunTapDevice::new(TAP).expect("open the TAP device");
        device.set_hardware_address([0x02, 0, 0, 0, 0x69, 0x02]);
        let config = Config::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
            gateway: None,
            dns_servers: Default::default(),
        });
        let mut resources = StackResources::<4>::new();
        let (stack, mut runner) = embassy_net::new(device, config, &mut resources, 0x7a9);
        let (mut dial_mem, mut listen_mem) = (
            SocketBuffers::<2048, 2048>::new(),
            SocketBuffers::<2048, 2048>::new(),
        );
        let dial_socket = Socket::new(stack, &mut dial_mem);
        let listen_sockets = [Socket::new(stack, &mut listen_mem)];
        let passive_peers = [PassivePeer::new(IpAddress::Ipv4(BIRD_ID), 30)];
        let listener = Listener::new(&listen_sockets, BGP_PORT, &passive_peers);

        let app = async {
            stack.wait_config_up().await;
            // 1. embassy active -> BIRD passive.
            {
                let bird = Bird::start("active", false);
                bird.wait_for("show protocols embassy", "embassy").await;
                let mut peer = ActivePeer::new(IpAddress::Ipv4(BIRD_ID), 30);
                peer.tuning = peer.tuning.with_hop_limit(1);
                let connector = EmbassyConnector::active(&dial_socket, peer);
                session_with_bird(&connector, false, &bird).await;
            }
            // 2. BIRD active -> embassy passive.
            {
                let bird = Bird::start("passive", true);
                let connector = EmbassyConnector::passive(listener.inbound(0));
                match select(listener.run(), session_with_bird(&connector, true, &bird)).await {
                    Either::First(e) => panic!("listener: {e}"),
                    Either::Second(()) => {}
                }
            }
        };
        match select(runner.run(), app).await {
            Either::First(never) => match never {},
            Either::Second(()) => {}
        }
    });
}
