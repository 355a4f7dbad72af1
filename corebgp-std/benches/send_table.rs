//! Sending: a corebgp-std peer (in a child process) sends 1,000,000 IPv4
//! /24s, 3 per UPDATE (333,334 UPDATEs and End-of-RIB), each built with the
//! `UpdateBuilder` as it goes and queued through the peer's `UpdateWriter`,
//! to a receiving corebgp-std peer here whose handler decodes every UPDATE
//! (`Update::from_sections`, `announced()`). The sender writes nothing
//! until told to, which happens once both sides are Established; the
//! clock starts then ("go", the first write follows at once) and stops at
//! End-of-RIB at the receiver's handler. Reported with the sender's CPU
//! time and the receiver's peak resident memory.
//!
//! `cargo bench -p corebgp-std --bench send_table` (env: PREFIXES=1000000,
//! PER_UPDATE=3, RUNS=5).

mod common;

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{CapabilitySet, DefaultHooks, Negotiated, OpenHooks, PeerConfig};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, UpdateBuilder,
    encode_end_of_rib,
};
use corebgp_core::wire::{AfiSafi, Notification, UpdateSections};
use corebgp_std::{PeerOptions, Server, UpdateQueue, UpdateWriter, update_queue};
use tokio::sync::watch;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sender's plugin: once Established and told to go, builds and
/// queues the table.
struct Sender {
    queue: Arc<UpdateQueue>,
    go: watch::Receiver<bool>,
    prefixes: u32,
    per_update: usize,
    done: watch::Sender<bool>,
}

impl OpenHooks for Sender {
    fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
        DefaultHooks.capabilities(p, c)
    }
}

impl Plugin for Sender {
    async fn on_established(&mut self, peer: &PeerConfig, negotiated: &Negotiated) {
        let Ok(w) = UpdateWriter::new(self.queue.clone()) else {
            return;
        };
        let cfg = negotiated.update_config(peer);
        let (mut go, count, per, done) = (
            self.go.clone(),
            self.prefixes,
            self.per_update,
            self.done.clone(),
        );
        let asn = peer.local_as;
        tokio::spawn(async move {
            let _ = go.wait_for(|g| *g).await;
            let asns = [asn, 64512, 64513];
            let seg = [AsSegment {
                kind: SegmentType::Sequence,
                asns: &asns,
            }];
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(&seg),
                next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
                med: Some(10),
                ..Default::default()
            };
            let mut buf = [0u8; 4096];
            let mut routes = Vec::with_capacity(per.min(1024));
            let mut next = 0u32;
            while next < count {
                routes.clear();
                while routes.len() < per && next < count {
                    let a = Ipv4Addr::from_bits(((1 << 16) + next) << 8);
                    routes.push(Nlri::new(Ipv4Prefix::new(a, 24).unwrap()));
                    next += 1;
                }
                let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
                let n = b.announce(&attrs, AfiSafi::IPV4_UNICAST, &routes).unwrap();
                // More than fits one UPDATE: the rest goes in the next one.
                next -= (routes.len() - n) as u32;
                let len = b.finish().unwrap();
                if w.send(&buf[..len]).await.is_err() {
                    return;
                }
            }
            let len = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).unwrap();
            let _ = w.send(&buf[..len]).await;
            done.send_replace(true);
        });
    }
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        Ok(())
    }
}

/// The child process: a corebgp-std server with one peer that dials the
/// receiver (`SEND_TO`, from [`speaker_addr`]`(1)`) and sends on a line on
/// standard input; prints its CPU time once the table is queued; exits
/// when standard input closes.
fn sender_main() {
    let to: std::net::SocketAddr = std::env::var("SEND_TO").unwrap().parse().unwrap();
    let count = env("PREFIXES", 1_000_000) as u32;
    let per = env("PER_UPDATE", 3) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (go_tx, go_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = watch::channel(false);
    std::thread::spawn(move || {
        let mut lines = std::io::stdin().lock().lines();
        if let Some(Ok(_)) = lines.next() {
            go_tx.send_replace(true);
        }
        for _ in lines {}
        stop_tx.send_replace(true);
    });
    rt.block_on(async move {
        let server = Server::new(Ipv4Addr::new(10, 9, 9, 1)).unwrap();
        let queue = update_queue();
        server
            .add_peer(
                PeerConfig {
                    remote_address: to.ip(),
                    local_as: SPEAKER_AS,
                    remote_as: SERVER_AS,
                },
                Sender {
                    queue: queue.clone(),
                    go: go_rx,
                    prefixes: count,
                    per_update: per,
                    done: done_tx,
                },
                PeerOptions::new()
                    .port(to.port())
                    .local_address(IpAddr::V4(speaker_addr(1)))
                    .nodelay(true)
                    .update_queue(queue),
            )
            .unwrap();
        let s = server.clone();
        tokio::spawn(async move { s.serve(vec![]).await });
        let cpu0 = cpu_time();
        let queued = tokio::select! {
            _ = done_rx.wait_for(|d| *d) => true,
            _ = stop_rx.wait_for(|s| *s) => false,
        };
        if queued {
            println!(
                "sender: table queued, {:.3} s CPU",
                (cpu_time() - cpu0).as_secs_f64()
            );
            let _ = stop_rx.wait_for(|s| *s).await;
        }
        server.close().await;
    });
}

struct Child_ {
    child: Child,
}

impl Drop for Child_ {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    raise_nofile();
    if std::env::var("COREBGP_BENCH_ROLE").as_deref() == Ok("sender") {
        return sender_main();
    }
    let count = env("PREFIXES", 1_000_000);
    let runs = env("RUNS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut took = Vec::new();
    for run in 0..runs {
        let ip = Ipv4Addr::new(127, 1, 6, 1 + run as u8);
        let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(ip).unwrap();
        let counter = Counter::default();
        server
            .add_peer(
                PeerConfig {
                    remote_address: IpAddr::V4(speaker_addr(1)),
                    local_as: SERVER_AS,
                    remote_as: SPEAKER_AS,
                },
                counter.clone(),
                PeerOptions::new().passive(true),
            )
            .unwrap();
        let s = server.clone();
        rt.spawn(async move { s.serve(vec![listener]).await });
        let mut child = Child_ {
            child: Command::new(std::env::current_exe().unwrap())
                .env("COREBGP_BENCH_ROLE", "sender")
                .env("SEND_TO", addr.to_string())
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        };
        let t = Instant::now();
        while counter.established.load(Ordering::Relaxed) == 0 {
            assert!(t.elapsed() < Duration::from_secs(60), "not Established");
            std::thread::sleep(Duration::from_micros(200));
        }
        let go = Instant::now();
        let cpu0 = cpu_time();
        let stdin = child.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        while counter.eor.load(Ordering::Relaxed) == 0 {
            assert!(go.elapsed() < Duration::from_secs(300), "no End-of-RIB");
            std::thread::sleep(Duration::from_micros(200));
        }
        let cpu = (cpu_time() - cpu0).as_secs_f64();
        let eor = counter.eor_at.lock().unwrap().unwrap();
        let n = counter.prefixes.load(Ordering::Relaxed);
        let (rss, hwm) = rss_kib();
        let t = (eor - go).as_secs_f64();
        println!(
            "run {run}: {n} prefixes at the receiver; go (first write) → End-of-RIB {t:.4} s (receiver CPU {cpu:.4} s); receiver RSS {rss} KiB (peak {hwm} KiB)"
        );
        assert_eq!(n, count);
        took.push(t);
        drop(child);
        rt.block_on(server.close());
    }
    println!(
        "median go → End-of-RIB {:.4} s over {runs} runs",
        median(&mut took)
    );
}
