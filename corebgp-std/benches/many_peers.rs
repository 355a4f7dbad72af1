//! Many passive peers on one server over loopback (10,000 by default):
//! resident memory per configured peer before any connection, time until
//! all are Established, resident memory per Established peer, CPU while
//! idle, then 100 prefixes from each peer. The speakers run in a child
//! process (corebgp-core's driver), so the figures are the server's alone.
//! Both processes raise their open-file limit to the hard limit (10,000
//! sockets on each side).
//!
//! `cargo bench -p corebgp-std --bench many_peers` (env: PEERS=10000,
//! IDLE_SECS=60, PREFIXES=100).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use corebgp_core::session::PeerConfig;
use corebgp_std::{PeerOptions, Server};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wait(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_micros(500));
    }
    t.elapsed()
}

fn main() {
    raise_nofile();
    if is_generator() {
        return generator_main();
    }
    let peers = env("PEERS", 10_000) as u32;
    let idle = env("IDLE_SECS", 60);
    let per = env("PREFIXES", 100) as u32;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ip = Ipv4Addr::new(127, 1, 0, 1);
    // A backlog of 4,096 (the kernel's somaxconn here) rather than tokio's
    // 1,024: 10,000 peers connecting at once overflow a short accept queue,
    // and the kernel retries a dropped SYN only after a second.
    let listener = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind((ip, 0).into())?;
            s.listen(4096)
        })
        .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = Server::new(ip).unwrap();
    let counter = Counter::default();
    let (rss0, _) = rss_kib();
    for i in 0..peers {
        server
            .add_peer(
                PeerConfig {
                    remote_address: IpAddr::V4(speaker_addr(i)),
                    local_as: SERVER_AS,
                    remote_as: SPEAKER_AS + i,
                },
                counter.clone(),
                PeerOptions::new().passive(true),
            )
            .unwrap();
    }
    let s = server.clone();
    rt.spawn(async move { s.serve(vec![listener]).await });
    // Serving, nothing connected: what a configured peer costs.
    wait("serving", Duration::from_secs(30), || {
        server
            .get_peer(IpAddr::V4(speaker_addr(0)))
            .is_ok_and(|p| p.state == corebgp_core::session::StateKind::Active)
    });
    std::thread::sleep(Duration::from_millis(300));
    let (rss_conf, _) = rss_kib();
    let cpu_est = cpu_time();
    let started = Instant::now();
    let mut generator = Generator::start(addr, peers, per, 90);
    // When half, 90 % and all are up: a long tail means retried sessions.
    let mut marks = Vec::new();
    for pct in [50, 90, 100] {
        let want = u64::from(peers) * pct / 100;
        wait("all Established", Duration::from_secs(120), || {
            counter.established.load(Ordering::Relaxed) >= want
        });
        marks.push(format!(
            "{pct} % at {:.3} s",
            started.elapsed().as_secs_f64()
        ));
    }
    let t_est = started.elapsed();
    let cpu_est = cpu_time() - cpu_est;
    std::thread::sleep(Duration::from_millis(500));
    let (rss1, _) = rss_kib();
    let n = f64::from(peers);
    println!("peers: {peers} (passive)");
    println!(
        "configured, serving, none connected: {rss0} KiB before the peers, {rss_conf} KiB after: {:.2} KiB per configured peer",
        (rss_conf - rss0) as f64 / n
    );
    println!(
        "all Established in {:.3} s (from the generator's start, including its process start; {}); the server's CPU meanwhile: {:.3} s",
        t_est.as_secs_f64(),
        marks.join(", "),
        cpu_est.as_secs_f64()
    );
    println!(
        "resident memory with all Established: {rss1} KiB in all; {:.2} KiB per Established peer ({:.2} KiB more than configured)",
        (rss1 - rss0) as f64 / n,
        (rss1 - rss_conf) as f64 / n
    );
    let c0 = cpu_time();
    std::thread::sleep(Duration::from_secs(idle));
    let c1 = cpu_time();
    let still = counter.established.load(Ordering::Relaxed);
    let (rss2, _) = rss_kib();
    println!(
        "resident memory after the idle time (keepalives exchanged): {rss2} KiB: {:.2} KiB per peer",
        (rss2 - rss0) as f64 / n
    );
    println!(
        "CPU while idle for {idle} s: {:.3} s ({:.3} s per idle minute); {still} still Established",
        (c1 - c0).as_secs_f64(),
        (c1 - c0).as_secs_f64() * 60.0 / idle as f64
    );
    let want = u64::from(peers) * u64::from(per);
    let t = Instant::now();
    generator.go();
    wait("all prefixes", Duration::from_secs(300), || {
        counter.prefixes.load(Ordering::Relaxed) >= want
    });
    println!(
        "{want} prefixes ({per} from each peer) at the handlers in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    drop(generator);
    rt.block_on(server.close());
}
