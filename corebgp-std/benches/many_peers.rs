//! 1,000 peers on one server over loopback: time until all are
//! Established, resident memory per peer, CPU while idle, then 100 prefixes
//! from each peer. The 1,000 speakers run in a child process (corebgp-core's
//! driver), so the figures are the server's alone.
//!
//! `cargo bench -p corebgp-std --bench many_peers` (env: PEERS=1000,
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
    let peers = env("PEERS", 1000) as u32;
    let idle = env("IDLE_SECS", 60);
    let per = env("PREFIXES", 100) as u32;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ip = Ipv4Addr::new(127, 1, 0, 1);
    let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
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
    let mut generator = Generator::start(addr, peers, per, 90);
    let t_est = wait("all Established", Duration::from_secs(120), || {
        counter.established.load(Ordering::Relaxed) == u64::from(peers)
    });
    std::thread::sleep(Duration::from_millis(500));
    let (rss1, _) = rss_kib();
    println!("peers: {peers}");
    println!(
        "all Established in {:.3} s (from the generator's start, including its process start)",
        t_est.as_secs_f64()
    );
    println!(
        "resident memory: {rss0} KiB before the peers, {rss1} KiB with all Established: {:.2} KiB per peer",
        (rss1 - rss0) as f64 / f64::from(peers)
    );
    let c0 = cpu_time();
    std::thread::sleep(Duration::from_secs(idle));
    let c1 = cpu_time();
    let still = counter.established.load(Ordering::Relaxed);
    let (rss2, _) = rss_kib();
    println!(
        "resident memory after the idle time (keepalives exchanged): {rss2} KiB: {:.2} KiB per peer",
        (rss2 - rss0) as f64 / f64::from(peers)
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
