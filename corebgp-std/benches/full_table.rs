//! One peer sends 1,000,000 IPv4 /24s and End-of-RIB; the handler decodes
//! every UPDATE through the public path (`Update::from_sections`, then
//! `announced()`) and walks every prefix. Two workloads, each printed:
//!
//! * friendly: as many prefixes per UPDATE as 4096 bytes hold (~1,000;
//!   1,000 UPDATEs);
//! * realistic: 3 prefixes per UPDATE (333,334 UPDATEs, 23 MB), the shape of
//!   a real full table (many paths, few prefixes sharing each).
//!
//! The sender, in a child process, pre-encodes the table, opens the
//! session by hand and writes nothing until told to, which happens once the
//! server reports the session Established: no byte of the table can wait
//! in the socket before the clock starts. It then writes the whole table
//! with one `write_all`, as fast as loopback takes it. Reported: from that
//! moment ("go") to End-of-RIB at the handler, which includes waking the
//! sender; from the first UPDATE at the handler to End-of-RIB; the server
//! process's peak resident memory; and the loopback floor measured just
//! before: the same bytes from the same sender, read and discarded by a
//! plain blocking reader (64 KiB reads), go → EOF.
//!
//! `cargo bench -p corebgp-std --bench full_table` (env: PREFIXES=1000000,
//! RUNS=5, WORKLOAD=both|friendly|realistic). BIRD on the same input:
//! `--bench bird_full_table`.

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

/// (label, prefixes per UPDATE) of the workloads asked for.
pub fn workloads() -> Vec<(&'static str, usize)> {
    let all = [("friendly", usize::MAX), ("realistic", 3)];
    match std::env::var("WORKLOAD").as_deref() {
        Ok("friendly") => all[..1].to_vec(),
        Ok("realistic") => all[1..].to_vec(),
        _ => all.to_vec(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    raise_nofile();
    if is_generator() {
        return generator_main();
    }
    if is_raw() {
        return raw_main();
    }
    let per = env("PREFIXES", 1_000_000) as u32;
    let runs = env("RUNS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (rss0, _) = rss_kib();
    let loads = workloads();
    let mut results: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> =
        vec![(vec![], vec![], vec![]); loads.len()];
    for run in 0..runs {
        for (w, &(label, per_update)) in loads.iter().enumerate() {
            let ip = Ipv4Addr::new(127, 1, 1 + w as u8, 1 + run as u8);
            let floor = loopback_floor(
                Ipv4Addr::new(127, 1, 3 + w as u8, 1 + run as u8),
                per,
                per_update,
            );
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
                    PeerOptions::new()
                        .passive(true)
                        .extended_messages(std::env::var("EXT").is_ok()),
                )
                .unwrap();
            let s = server.clone();
            rt.spawn(async move { s.serve(vec![listener]).await });
            let mut generator = Generator::start_raw(addr, per, per_update, true);
            let t = Instant::now();
            while counter.established.load(Ordering::Relaxed) == 0 {
                assert!(t.elapsed() < Duration::from_secs(60), "not Established");
                std::thread::sleep(Duration::from_micros(200));
            }
            let go = Instant::now();
            let cpu0 = cpu_time();
            generator.go();
            while counter.eor.load(Ordering::Relaxed) == 0 {
                assert!(go.elapsed() < Duration::from_secs(300), "no End-of-RIB");
                std::thread::sleep(Duration::from_micros(200));
            }
            let cpu = (cpu_time() - cpu0).as_secs_f64();
            let first = *counter.first_update_at.get().unwrap();
            let eor = counter.eor_at.lock().unwrap().unwrap();
            let (rss, hwm) = rss_kib();
            let took = (eor - go).as_secs_f64();
            println!(
                "run {run} {label}: {} prefixes at the handler; go → End-of-RIB {took:.4} s (server CPU {cpu:.4} s), first UPDATE → End-of-RIB {:.4} s; loopback floor {:.4} s ({:.2}× the floor); RSS {rss} KiB (peak {hwm} KiB, {rss0} KiB before the first session)",
                counter.prefixes.load(Ordering::Relaxed),
                (eor - first).as_secs_f64(),
                floor.as_secs_f64(),
                took / floor.as_secs_f64(),
            );
            assert_eq!(counter.prefixes.load(Ordering::Relaxed), u64::from(per));
            results[w].0.push(took);
            results[w].1.push(floor.as_secs_f64());
            results[w].2.push(cpu);
            drop(generator);
            rt.block_on(server.close());
        }
    }
    for (w, &(label, _)) in loads.iter().enumerate() {
        let (t, f, c) = &mut results[w];
        let (t, f, c) = (median(t), median(f), median(c));
        println!(
            "{label}: median go → End-of-RIB {t:.4} s (server CPU {c:.4} s), loopback floor {f:.4} s ({:.2}× the floor), over {runs} runs",
            t / f
        );
    }
}
