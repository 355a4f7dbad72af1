//! corebgp on an emulated Cortex-M7 peering with BIRD 2 over a real Ethernet
//! path: the `bgp` firmware of `examples/firmware-qemu-mps2` (the same
//! `no_std` BGP application as the NUCLEO-H743ZI firmware, built for
//! thumbv7em-none-eabihf) boots in `qemu-system-arm -M mps2-an500`, whose
//! emulated LAN9118 is attached to a TAP device in a network namespace this
//! test creates; BIRD listens on the TAP's host side.
//!
//! Checked from BIRD's CLI and the firmware's serial log: the session comes
//! up; BIRD has the firmware's prefix (AS path 65001); the firmware logs
//! BIRD's routes and End-of-RIB; after BIRD is killed and restarted the
//! firmware re-establishes by itself; BIRD's `disable` (Cease 6/2) is logged
//! and the firmware reconnects after `enable`; with BIRD frozen (SIGSTOP) the
//! firmware's hold timer (9 s, BIRD's proposal) expires and it sends 4/0,
//! which BIRD reports after SIGCONT.
//!
//! Needs root (network namespace, TAP), `ip` (iproute2), `bird`/`birdc`
//! (bird2), `qemu-system-arm`, /dev/net/tun and the thumbv7em-none-eabihf
//! target; a missing one fails the test with the way to get it. QEMU, BIRD
//! and the namespace are removed whatever happens (drop guards; the
//! processes also die with the test process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use corebgp_tests::process::{DaemonProcess, Launch, find_binary, require_binary, run_cli};
use corebgp_tests::wait::wait_for;

/// BIRD's hold time: the session's (the smaller of the two proposals; the
/// firmware proposes 90 s). KEEPALIVEs every 3 s.
const HOLD_S: u64 = 9;
/// Bound on each step: boot, ARP, TCP and OPEN under QEMU's TCG on a busy
/// host take a few seconds; a reconnection waits for the firmware's
/// ConnectRetry/IdleHold timers (5 s, growing after repeated failures).
const STEP: Duration = Duration::from_secs(45);
/// Building the firmware from scratch (release, fat LTO) on a busy machine.
const BUILD: Duration = Duration::from_secs(900);

const TAP: &str = "tapfw0";
const FIRMWARE_ESTABLISHED: &str = "session established: AS 65000 id 192.168.1.1";

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn sh(program: &str, args: &[&str]) {
    if let Err(e) = run_cli(program, args, Duration::from_secs(30)) {
        panic!("{e}");
    }
}

/// A network namespace with a TAP device (192.168.1.1/24 on the host side),
/// deleted on drop (with the TAP in it).
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Self {
        let ns = Netns {
            name: format!("corebgp-qemu-{}", std::process::id()),
        };
        let n = ns.name.as_str();
        sh("ip", &["netns", "add", n]);
        sh("ip", &["netns", "exec", n, "ip", "link", "set", "lo", "up"]);
        sh(
            "ip",
            &[
                "netns", "exec", n, "ip", "tuntap", "add", "name", TAP, "mode", "tap",
            ],
        );
        sh(
            "ip",
            &[
                "netns",
                "exec",
                n,
                "ip",
                "addr",
                "add",
                "192.168.1.1/24",
                "dev",
                TAP,
            ],
        );
        sh("ip", &["netns", "exec", n, "ip", "link", "set", TAP, "up"]);
        ns
    }

    /// `program args` inside the namespace, as a daemon killed on drop.
    fn spawn(&self, program: &Path, args: &[&str], dir: &Path, log: &str) -> DaemonProcess {
        let mut all: Vec<String> = ["netns", "exec", &self.name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.push(program.display().to_string());
        all.extend(args.iter().map(|s| s.to_string()));
        // `ip netns exec` execs the program: the pid is the daemon's.
        DaemonProcess::spawn(Launch {
            program: "ip".into(),
            args: all,
            env: vec![],
            cwd: dir.to_path_buf(),
            log: dir.join(log),
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Builds the firmware (release) and returns the ELF's path.
fn build_firmware() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/firmware-qemu-mps2");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    // The firmware's own workspace and .cargo/config.toml (target, linker
    // script); its own target directory, whatever this build uses.
    let log = std::env::temp_dir().join(format!("corebgp-qemu-build-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).expect("build log");
    let mut child = Command::new(&cargo)
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .args(["build", "--release", "--bin", "bgp", "--manifest-path"])
        .arg(&manifest)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().expect("build log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    let status = wait_for(
        "the QEMU firmware to build",
        BUILD,
        || child.try_wait().expect("wait for cargo"),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        status.success(),
        "building the QEMU firmware failed (needs `rustup target add thumbv7em-none-eabihf`):\n{output}"
    );
    let elf = dir.join("target/thumbv7em-none-eabihf/release/bgp");
    assert!(elf.is_file(), "no firmware image at {}", elf.display());
    elf
}

fn birdc(ctl: &Path, cmd: &str) -> String {
    let mut args = vec!["-s", ctl.to_str().expect("utf-8 path")];
    args.extend(cmd.split_whitespace());
    run_cli("birdc", &args, Duration::from_secs(10)).unwrap_or_else(|e| e)
}

struct Rig {
    qemu: DaemonProcess,
    bird: DaemonProcess,
    ctl: PathBuf,
}

impl Rig {
    fn firmware_log(&self) -> String {
        self.qemu.output()
    }

    fn context(&self) -> String {
        format!(
            "--- firmware log:\n{}\n--- birdc show protocols all fw:\n{}\n--- BIRD log:\n{}",
            self.firmware_log(),
            birdc(&self.ctl, "show protocols all fw"),
            self.bird.output()
        )
    }

    /// Waits until the firmware log contains `needle` `count` times.
    fn wait_log(&self, what: &str, needle: &str, count: usize) {
        wait_for(
            what,
            STEP,
            || (self.firmware_log().matches(needle).count() >= count).then_some(()),
            || self.context(),
        );
    }

    /// Waits until `birdc cmd` shows `needle`; returns the output.
    fn wait_bird(&self, what: &str, cmd: &str, needle: &str) -> String {
        wait_for(
            what,
            STEP,
            || {
                let out = birdc(&self.ctl, cmd);
                out.contains(needle).then_some(out)
            },
            || self.context(),
        )
    }

    /// Session number `n` (counted in the firmware log) is up on both sides.
    fn wait_established(&self, n: usize) {
        self.wait_log(
            &format!("the firmware's session #{n} to reach Established"),
            FIRMWARE_ESTABLISHED,
            n,
        );
        self.wait_bird(
            &format!("BIRD to show session #{n} Established"),
            "show protocols fw",
            "Established",
        );
    }
}

#[test]
fn firmware_in_qemu_peers_with_bird() {
    assert_eq!(
        effective_uid(),
        Some(0),
        "this test must run as root (it creates a network namespace with a TAP device); \
         locally: sudo -E cargo test -p corebgp-tests --test qemu_bird"
    );
    for (cmd, pkg) in [
        ("ip", "iproute2"),
        ("bird", "bird2"),
        ("birdc", "bird2"),
        ("qemu-system-arm", "qemu-system-arm"),
    ] {
        assert!(
            find_binary(cmd).is_some(),
            "`{cmd}` not found: install it with `apt-get install -y {pkg}`"
        );
    }
    assert!(
        Path::new("/dev/net/tun").exists(),
        "/dev/net/tun missing: load the tun module (`modprobe tun`) or give the container the device"
    );
    let elf = build_firmware();
    let start = Instant::now();

    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("bird.conf");
    let ctl = dir.path().join("bird.ctl");
    // Passive: the firmware dials. A short error wait, so that BIRD takes
    // the firmware's next connection soon after a NOTIFICATION.
    std::fs::write(
        &conf,
        format!(
            "router id 192.168.1.1;
log stderr all;
protocol device {{ scan time 1; }}
ipv4 table master4;
protocol static s4 {{ ipv4; route 203.0.113.0/24 blackhole; route 203.0.114.0/24 blackhole; }}
protocol bgp fw {{
  local 192.168.1.1 as 65000;
  neighbor 192.168.1.2 as 65001;
  hold time {HOLD_S};
  passive on;
  error wait time 1, 2;
  ipv4 {{ import all; export all; }};
}}
"
        ),
    )
    .expect("write bird.conf");

    // Declared first, dropped last: the namespace outlives the processes.
    let ns = Netns::create();
    let bird_bin = require_binary("bird");
    let conf_s = conf.to_str().expect("utf-8 path");
    let ctl_s = ctl.to_str().expect("utf-8 path");
    let bird_args = ["-f", "-c", conf_s, "-s", ctl_s];
    let bird = ns.spawn(&bird_bin, &bird_args, dir.path(), "bird.log");
    let nic = format!("tap,ifname={TAP},script=no,downscript=no");
    let qemu_args = [
        "-M",
        "mps2-an500",
        "-nographic",
        "-nic",
        &nic,
        "-kernel",
        elf.to_str().expect("utf-8 path"),
    ];
    let qemu = ns.spawn(
        &require_binary("qemu-system-arm"),
        &qemu_args,
        dir.path(),
        "firmware.log",
    );
    let mut rig = Rig { qemu, bird, ctl };

    // 1. Established; our prefix in BIRD; BIRD's routes and End-of-RIB logged.
    rig.wait_established(1);
    let routes = rig.wait_bird(
        "BIRD to have the firmware's prefix",
        "show route protocol fw",
        "198.51.100.0/24",
    );
    assert!(routes.contains("AS65001"), "AS path 65001 in:\n{routes}");
    for line in [
        "route 203.0.113.0/24 next hop Some(192.168.1.1)",
        "route 203.0.114.0/24 next hop Some(192.168.1.1)",
        "End-of-RIB AfiSafi { afi: Ipv4, safi: Unicast }",
    ] {
        rig.wait_log(&format!("the firmware to log `{line}`"), line, 1);
    }

    // 2. BIRD killed and started again: the firmware re-establishes alone.
    rig.bird.restart();
    rig.wait_log("the firmware to see the session end", "session down:", 1);
    rig.wait_established(2);

    // 3. BIRD disables the protocol (Cease, Administrative Shutdown): logged;
    //    after `enable` the firmware reconnects.
    birdc(&rig.ctl, "disable fw");
    rig.wait_log(
        "the firmware to log BIRD's Cease",
        "NOTIFICATION from peer: Cease (6/2)",
        1,
    );
    birdc(&rig.ctl, "enable fw");
    rig.wait_established(3);

    // 4. Hold timer: BIRD frozen, the firmware's hold timer expires after at
    //    most HOLD_S since BIRD's last KEEPALIVE (sent every HOLD_S / 3).
    let downs_before = rig.firmware_log().matches("session down:").count();
    rig.bird.pause();
    let paused = Instant::now();
    let expired = "session down: NOTIFICATION sent: Hold Timer Expired (4/0)";
    wait_for(
        "the firmware's hold timer to expire",
        Duration::from_secs(HOLD_S * 4),
        || (rig.firmware_log().matches(expired).count() >= 1).then_some(()),
        || rig.firmware_log(),
    );
    let after = paused.elapsed();
    eprintln!("hold timer expired {after:?} after BIRD froze");
    assert_eq!(
        rig.firmware_log().matches("session down:").count(),
        downs_before + 1,
        "one session end, the hold timer's:\n{}",
        rig.firmware_log()
    );
    // Not before the last KEEPALIVE's hold time could run out, not much
    // after the hold time (slack: QEMU and the log poll on a busy host).
    let earliest = Duration::from_secs(HOLD_S - HOLD_S / 3 - 1);
    let latest = Duration::from_secs(HOLD_S + 5);
    assert!(
        after >= earliest && after <= latest,
        "hold timer expired {after:?} after BIRD froze; expected {earliest:?}..={latest:?}"
    );
    rig.bird.resume();
    rig.wait_bird(
        "BIRD to report the firmware's 4/0",
        "show protocols all fw",
        "Received: Hold timer expired",
    );
    // No fourth session: after an error NOTIFICATION the firmware holds the
    // peer down for 60 s (RFC 4271 §8.1.1 DampPeerOscillations, BIRD's
    // constants), which is why this step comes last.

    let took = start.elapsed();
    eprintln!("QEMU firmware test: all steps in {took:?}");
    drop(rig);
    drop(ns);
}
