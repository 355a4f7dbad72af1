//! One peer sends 1,000,000 IPv4 /24s (about 1,000 UPDATEs of up to 4096
//! bytes, one path) and End-of-RIB; the handler decodes every
//! UPDATE and walks every prefix. The speaker runs in a child process and
//! sends nothing until told to, which happens once the server reports the
//! session Established: no byte of the table can wait in the socket
//! before the clock starts. Reported: from that moment ("go") to
//! End-of-RIB at the handler, which includes waking the speaker and the
//! first UPDATE's trip; from the first UPDATE at the handler to End-of-RIB;
//! and the server process's peak resident memory.
//!
//! `cargo bench -p corebgp-std --bench full_table` (env: PREFIXES=1000000,
//! RUNS=5). BIRD on the same input: `--bench bird_full_table`.

mod common;

use std::net::{IpAddr, Ipv4Addr};
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

fn main() {
    raise_nofile();
    if is_generator() {
        return generator_main();
    }
    let per = env("PREFIXES", 1_000_000) as u32;
    let runs = env("RUNS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (rss0, _) = rss_kib();
    for run in 0..runs {
        let ip = Ipv4Addr::new(127, 1, 1, 1 + run as u8);
        let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(ip).unwrap();
        let counter = Counter::default();
        server
            .add_peer(
                PeerConfig {
                    remote_address: IpAddr::V4(speaker_addr(0)),
                    local_as: SERVER_AS,
                    remote_as: SPEAKER_AS,
                },
                counter.clone(),
                PeerOptions::new().passive(true),
            )
            .unwrap();
        let s = server.clone();
        rt.spawn(async move { s.serve(vec![listener]).await });
        let mut generator = Generator::start(addr, 1, per, 90);
        let t = Instant::now();
        while counter.established.load(Ordering::Relaxed) == 0 {
            assert!(t.elapsed() < Duration::from_secs(30), "not Established");
            std::thread::sleep(Duration::from_micros(200));
        }
        let go = Instant::now();
        generator.go();
        while counter.eor.load(Ordering::Relaxed) == 0 {
            assert!(go.elapsed() < Duration::from_secs(300), "no End-of-RIB");
            std::thread::sleep(Duration::from_micros(200));
        }
        let first = counter.first_update_at.lock().unwrap().unwrap();
        let eor = counter.eor_at.lock().unwrap().unwrap();
        let (rss, hwm) = rss_kib();
        println!(
            "run {run}: {} prefixes at the handler; go → End-of-RIB {:.3} s, first UPDATE → End-of-RIB {:.3} s; RSS {rss} KiB (peak {hwm} KiB, {rss0} KiB before the first session)",
            counter.prefixes.load(Ordering::Relaxed),
            (eor - go).as_secs_f64(),
            (eor - first).as_secs_f64(),
        );
        drop(generator);
        rt.block_on(server.close());
    }
}
