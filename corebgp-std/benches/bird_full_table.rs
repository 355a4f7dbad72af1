//! BIRD 2 on the input of `full_table`: the same pre-encoded sender (a
//! child process) sends the same 1,000,000 IPv4 /24s in the same UPDATEs
//! and End-of-RIB to a BIRD started here (Debian's `bird2`, on loopback, its
//! own port and temporary directory, killed at the end), for both
//! workloads: friendly (~1,000 prefixes per UPDATE) and realistic (3).
//! As in `full_table`, the speaker sends nothing until BIRD reports the
//! session Established; the clock starts then ("go") and stops when
//! `birdc show protocols all corebgp` reports all prefixes imported (the
//! cheap counter; `show route count` walks the table and stalls BIRD).
//! Polled every few milliseconds through `birdc`, so the figure is late by
//! up to one poll (a few ms). BIRD's peak resident memory is read from
//! /proc.
//!
//! `cargo bench -p corebgp-std --bench bird_full_table` (env:
//! PREFIXES=1000000, RUNS=3, WORKLOAD=both|friendly|realistic).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PROTOCOL: &str = "corebgp";
const BIRD_ADDR: Ipv4Addr = Ipv4Addr::new(127, 1, 9, 1);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A BIRD process with its directory; killed and removed on drop.
struct Bird {
    child: Child,
    dir: PathBuf,
}

impl Bird {
    fn start(run: u64) -> (Self, SocketAddr) {
        for bin in ["bird", "birdc"] {
            let found = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
                || PathBuf::from("/usr/sbin").join(bin).is_file();
            assert!(
                found,
                "`{bin}` not found: install BIRD 2 with `apt-get install -y bird2`"
            );
        }
        let dir =
            std::env::temp_dir().join(format!("corebgp-bench-bird-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A free port on BIRD's address (released just before BIRD binds it).
        let port = std::net::TcpListener::bind((BIRD_ADDR, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let speaker = speaker_addr(0);
        let conf = format!(
            "log \"{log}\" {{ warning, error, fatal }};\n\
             router id 10.255.9.1;\n\
             protocol device {{}}\n\
             ipv4 table master4;\n\
             protocol bgp {PROTOCOL} {{\n\
             \x20 local {BIRD_ADDR} port {port} as {SERVER_AS};\n\
             \x20 neighbor {speaker} as {SPEAKER_AS};\n\
             \x20 multihop; strict bind on; passive on;\n\
             \x20 ipv4 {{ import all; export none; }};\n\
             }}\n",
            log = dir.join("bird.log").display(),
        );
        std::fs::write(dir.join("bird.conf"), conf).unwrap();
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(dir.join("bird.conf"))
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start bird");
        let b = Self { child, dir };
        let t = Instant::now();
        while !b.birdc("show status").contains("Daemon is up") {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "BIRD did not come up: {}",
                std::fs::read_to_string(b.dir.join("stdout.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (b, SocketAddr::from((BIRD_ADDR, port)))
    }

    fn birdc(&self, cmd: &str) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(cmd.split_whitespace())
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// (BGP state, routes imported) from `show protocols all`.
    fn protocol(&self) -> (String, u64) {
        let out = self.birdc(&format!("show protocols all {PROTOCOL}"));
        let mut state = String::new();
        let mut imported = 0;
        for l in out.lines().map(str::trim) {
            if let Some(s) = l.strip_prefix("BGP state:") {
                state = s.trim().to_owned();
            } else if let Some(r) = l.strip_prefix("Routes:") {
                imported = r
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
        }
        (state, imported)
    }

    /// BIRD's VmRSS and VmHWM in KiB.
    fn rss_kib(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    raise_nofile();
    if is_generator() {
        return generator_main();
    }
    if is_raw() {
        return raw_main();
    }
    let per = env("PREFIXES", 1_000_000);
    let runs = env("RUNS", 3);
    let all = [("friendly", usize::MAX), ("realistic", 3)];
    let loads = match std::env::var("WORKLOAD").as_deref() {
        Ok("friendly") => &all[..1],
        Ok("realistic") => &all[1..],
        _ => &all[..],
    };
    for run in 0..runs {
        for &(label, per_update) in loads {
            let (bird, addr) = Bird::start(run);
            let mut generator = Generator::start_raw(addr, per as u32, per_update, true);
            let t = Instant::now();
            loop {
                let (state, _) = bird.protocol();
                if state == "Established" {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "BIRD not Established (state {state:?})"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let (_, rss_before) = bird.rss_kib();
            let go = Instant::now();
            generator.go();
            let mut polls = 0;
            let imported = loop {
                let (state, n) = bird.protocol();
                polls += 1;
                if n >= per {
                    break n;
                }
                assert!(
                    state == "Established" && go.elapsed() < Duration::from_secs(300),
                    "BIRD: state {state}, {n} imported"
                );
                std::thread::sleep(Duration::from_millis(2));
            };
            let took = go.elapsed();
            let (rss, hwm) = bird.rss_kib();
            println!(
                "run {run} {label}: BIRD imported {imported} prefixes; go → all imported {:.3} s ({polls} polls); BIRD RSS {rss} KiB (peak {hwm} KiB, {rss_before} KiB before the table)",
                took.as_secs_f64()
            );
            drop(generator);
            drop(bird);
        }
    }
}
