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
//! BGP traffic on the embassy side comes from the test-only stand-in speaker
//! until corebgp-core's driver lands. Both directions: embassy active to a
//! passive BIRD, then BIRD active to a passive embassy; each time the
//! session comes up, a route goes each way and the embassy side ends it with
//! a Cease that BIRD must report.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use corebgp_embassy::embassy_net::{
    Config, IpAddress, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4,
};
use corebgp_embassy::{ActivePeer, BGP_PORT, Link, PassivePeer, StandardSlot, accept, connect};
use embassy_futures::select::{Either, select};
use embassy_net_tuntap::TunTapDevice;
use support::speaker::{Identity, StandIn};

const INNER_ENV: &str = "COREBGP_EMBASSY_TAP_INNER";
const TEST_NAME: &str = "embassy_on_tap_peers_with_bird_both_directions";
const TAP: &str = "tapbgp0";
const OUTER_LIMIT: StdDuration = StdDuration::from_secs(120);

const EMBASSY: Identity = Identity {
    asn: 65001,
    bgp_id: Ipv4Addr::new(192, 168, 69, 2),
    hold_time: 30,
};
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
    assert!(
        status.success(),
        "the in-namespace test failed ({status}); its output is above"
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
            asn = EMBASSY.asn
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

/// The stand-in's part of one session with BIRD; `bird` is polled while the
/// session is up to check the route BIRD learnt from us.
async fn session_with_bird(link: Link<'_>, bird: &Bird) -> Result<(), String> {
    assert_eq!(link.remote.addr, IpAddress::v4(192, 168, 69, 1));
    let mut s = StandIn::new(link.reader, link.writer, link.msg_buf, EMBASSY);
    let open = s.establish().await?;
    assert_eq!(open.asn, BIRD_AS, "BIRD's AS");
    assert_eq!(
        open.four_octet_as,
        Some(BIRD_AS),
        "BIRD announces 4-octet AS"
    );
    assert_eq!(open.bgp_id, BIRD_ID, "BIRD's router id");
    assert_eq!(open.hold_time, 60, "BIRD's hold time");
    bird.wait_for("show protocols embassy", "Established").await;
    // A route from us to BIRD.
    s.announce_v4([198, 51, 100, 0], 24, Ipv4Addr::new(192, 168, 69, 2))
        .await?;
    // BIRD's static route to us (NLRI: length 24, 203.0.113).
    let nlri = s.next_announcement().await?;
    assert_eq!(nlri, vec![24, 203, 0, 113], "BIRD exports 203.0.113.0/24");
    let routes = bird
        .wait_for("show route protocol embassy", "198.51.100.0/24")
        .await;
    assert!(routes.contains("65001"), "AS path via 65001 in:\n{routes}");
    s.cease("corebgp tap test").await?;
    bird.wait_for("show protocols all embassy", "Administrative shutdown")
        .await;
    Ok(())
}

/// Runs inside the fresh namespace.
fn inner() {
    sh("ip", &["link", "set", "lo", "up"]);
    sh("ip", &["tuntap", "add", "name", TAP, "mode", "tap"]);
    sh("ip", &["addr", "add", "192.168.69.1/24", "dev", TAP]);
    sh("ip", &["link", "set", TAP, "up"]);
    let mut device = TunTapDevice::new(TAP).expect("open the TAP device");
    device.set_hardware_address([0x02, 0, 0, 0, 0x69, 0x02]);
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let mut resources = StackResources::<4>::new();
    let (stack, mut runner) = embassy_net::new(device, config, &mut resources, 0x7a9);
    let mut slot = StandardSlot::new();

    support::run(StdDuration::from_secs(90), async {
        let app = async {
            stack.wait_config_up().await;
            // 1. embassy active -> BIRD passive.
            {
                let bird = Bird::start("active", false);
                bird.wait_for("show protocols embassy", "embassy").await;
                let mut peer = ActivePeer::new(IpAddress::v4(192, 168, 69, 1), EMBASSY.hold_time);
                peer.tuning = peer.tuning.with_hop_limit(1);
                // BIRD may need a moment to open its listening socket.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match connect(stack, &mut slot, &peer, async |l| {
                        session_with_bird(l, &bird).await
                    })
                    .await
                    {
                        Ok(r) => break r.expect("session embassy -> BIRD"),
                        Err(e) if attempts < 20 => {
                            eprintln!("connect attempt {attempts}: {e}");
                            tokio::time::sleep(StdDuration::from_millis(250)).await;
                        }
                        Err(e) => panic!("could not connect to BIRD: {e}"),
                    }
                }
            }
            // 2. BIRD active -> embassy passive.
            {
                let bird = Bird::start("passive", true);
                let peer = PassivePeer::new(IpAddress::v4(192, 168, 69, 1), EMBASSY.hold_time);
                accept(stack, &mut slot, BGP_PORT, &peer, async |l| {
                    session_with_bird(l, &bird).await
                })
                .await
                .expect("accept")
                .expect("session BIRD -> embassy");
            }
        };
        match select(runner.run(), app).await {
            Either::First(never) => match never {},
            Either::Second(()) => {}
        }
    });
}
