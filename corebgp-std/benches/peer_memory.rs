//! Where a peer's resident memory goes: N passive peers (default 1,000)
//! are configured on a serving server, then come up against the load
//! generator as in `many_peers`, and a counting global allocator lists the
//! heap allocations that are live per peer, configured with no connection
//! and again once all are Established (size, count, glibc chunk size, and
//! where the latest of each size was made), next to `size_of` of the core
//! types and the resident-memory figures; then as many peers that dial
//! where nothing listens, waiting for their next dial.
//!
//! `cargo bench -p corebgp-std --bench peer_memory` (env: PEERS=1000,
//! BACKTRACES=1 to show where each allocation size comes from: the counts
//! stay exact, the resident figure then includes the symbolizer's caches).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use corebgp_core::session::PeerConfig;
use corebgp_std::{PeerOptions, Server};

/// Sizes counted exactly; larger ones together.
const EXACT: usize = 16 * 1024;

struct Counting;

static LIVE: [AtomicI64; EXACT + 1] = [const { AtomicI64::new(0) }; EXACT + 1];
static BIG_BYTES: AtomicI64 = AtomicI64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);
static SITES: Mutex<BTreeMap<usize, std::backtrace::Backtrace>> = Mutex::new(BTreeMap::new());

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize, delta: i64) {
    // Allocations of the backtrace machinery itself are not counted (its
    // caches live on; its temporaries die inside too).
    if INSIDE.with(Cell::get) {
        return;
    }
    if size <= EXACT {
        LIVE[size].fetch_add(delta, Ordering::Relaxed);
    } else {
        BIG_BYTES.fetch_add(delta * size as i64, Ordering::Relaxed);
    }
}

/// Records where the latest allocation of `size` made while tracing comes
/// from (unresolved: symbols are looked up when printing).
fn trace(size: usize) {
    if !TRACE.load(Ordering::Relaxed) || INSIDE.with(|i| i.replace(true)) {
        return;
    }
    let bt = std::backtrace::Backtrace::force_capture();
    if let Ok(mut s) = SITES.lock() {
        s.insert(size, bt);
    }
    INSIDE.with(|i| i.set(false));
}

/// The first frames past the allocator's own.
fn site(bt: &std::backtrace::Backtrace) -> String {
    let s = bt.to_string();
    let frames: Vec<&str> = s
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| l.split_once(": ").map_or(l, |(_, f)| f))
        .map(str::trim)
        .skip_while(|f| {
            ["trace", "alloc", "realloc", "__rust"]
                .iter()
                .any(|p| f.starts_with(p))
                || f.contains("alloc::")
                || f.contains("Global>")
        })
        .take(4)
        .collect();
    frames.join(" <- ")
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size(), 1);
        trace(l.size());
        // SAFETY: the caller's layout, as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size(), 1);
        trace(l.size());
        // SAFETY: the caller's layout, as is.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(l.size(), -1);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(l.size(), -1);
        count(new, 1);
        trace(new);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> (Vec<i64>, i64) {
    (
        LIVE.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        BIG_BYTES.load(Ordering::Relaxed),
    )
}

/// glibc's chunk for a request: 8 bytes of header, 16-byte granules,
/// 32 bytes at least.
fn chunk(size: usize) -> usize {
    (size + 8).div_ceil(16).max(2) * 16
}

/// Resident KiB of the buffer pools' mappings, from /proc/self/smaps:
/// the anonymous mappings advised MADV_NOHUGEPAGE (VmFlags `nh`), which
/// only the pools are (adjacent ones merge, so sizes do not tell).
fn pool_rss_kib() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut total, mut rss) = (0, 0);
    for l in smaps.lines() {
        if let Some(v) = l.strip_prefix("Rss:") {
            rss = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        } else if let Some(f) = l.strip_prefix("VmFlags:")
            && f.split_whitespace().any(|f| f == "nh")
        {
            total += rss;
        }
    }
    total
}

/// Prints the heap allocations live in `after` and not in `before`, per
/// peer.
fn report(what: &str, before: &(Vec<i64>, i64), after: &(Vec<i64>, i64), n: f64) {
    println!("\nlive heap allocations per peer ({what}):");
    println!(
        "{:>8} {:>8} {:>10} {:>12}  where (the last of that size)",
        "size", "count", "chunk", "KiB/peer"
    );
    let sites = SITES
        .lock()
        .map(|s| {
            s.iter()
                .map(|(k, b)| (*k, site(b)))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    let (mut req, mut chunks) = (0.0, 0.0);
    for size in 0..=EXACT {
        let d = after.0[size] - before.0[size];
        if d == 0 {
            continue;
        }
        let per = d as f64 / n;
        req += per * size as f64;
        chunks += per * chunk(size) as f64;
        if per.abs() < 0.05 {
            continue;
        }
        println!(
            "{size:>8} {per:>8.2} {:>10} {:>12.3}  {}",
            chunk(size),
            per * chunk(size) as f64 / 1024.0,
            sites.get(&size).map_or("", String::as_str)
        );
    }
    let big = (after.1 - before.1) as f64 / n;
    println!(
        "heap per peer: {req:.0} bytes requested, {chunks:.0} bytes in glibc chunks ({:.2} KiB); {big:.0} bytes per peer in allocations over {EXACT} bytes (pools: virtual, resident only where touched)",
        chunks / 1024.0,
    );
}

/// The plugin of the peers that dial where nothing listens: counts the
/// dials that failed (Connect → Idle).
#[derive(Clone, Default)]
struct Refused(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl corebgp_core::session::OpenHooks for Refused {
    fn capabilities(&mut self, p: &PeerConfig, c: &mut corebgp_core::session::CapabilitySet) {
        corebgp_core::session::DefaultHooks.capabilities(p, c)
    }
}

impl corebgp_core::plugin::Plugin for Refused {
    async fn on_established(&mut self, _: &PeerConfig, _: &corebgp_core::session::Negotiated) {}
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: corebgp_core::wire::UpdateSections<'m>,
    ) -> Result<(), corebgp_core::wire::Notification<'m>> {
        Ok(())
    }
    fn on_event(&mut self, _: &PeerConfig, e: &corebgp_core::session::Event) {
        use corebgp_core::session::{Event, StateKind};
        if let Event::StateChanged {
            from: StateKind::Connect,
            to: StateKind::Idle,
            ..
        } = e
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    raise_nofile();
    if is_generator() {
        return generator_main();
    }
    let peers: u32 = std::env::var("PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let backtraces = std::env::var("BACKTRACES").is_ok_and(|v| v == "1");
    {
        use corebgp_core::session::*;
        println!("size_of, in bytes (corebgp-core's session, boxed per peer):");
        println!(
            "  Peer {} (Peer<AcceptOnly>, a passive peer's: {})",
            size_of::<Peer>(),
            size_of::<Peer<AcceptOnly>>()
        );
        println!(
            "    Conn {} (two: outbound, and inbound as an Option)",
            size_of::<Conn>()
        );
        println!(
            "      Link {} (of which the TX queue {TX_CAPACITY})",
            size_of::<Link>()
        );
        println!("      State {}", size_of::<State>());
        println!(
            "        Negotiated {}, Advertised {}, DelayedOpen {}",
            size_of::<Negotiated>(),
            size_of::<Advertised>(),
            size_of::<DelayedOpen>()
        );
        println!(
            "    Events {} ({EVENT_CAPACITY} × Event {})",
            size_of::<Events>(),
            size_of::<Event>()
        );
        println!("    SessionConfig {}", size_of::<SessionConfig>());
        println!(
            "  corebgp_std::PeerInfo {}",
            size_of::<corebgp_std::PeerInfo>()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ip = Ipv4Addr::new(127, 1, 0, 1);
    let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ip).unwrap();
    let counter = Counter::default();
    // Warm up the pools and the runtime with a first peer, not counted.
    let before_rss;
    let before;
    {
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
        let _g = Generator::start(addr, 1, 0, 90);
        let t = Instant::now();
        while counter.established.load(Ordering::Relaxed) < 1 {
            assert!(t.elapsed() < Duration::from_secs(30), "first peer");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(300));
        before_rss = rss_kib().0;
        before = snapshot();
    }
    // The warm-up generator is gone: its peer is down again (Active).
    let t = Instant::now();
    while counter.established.load(Ordering::Relaxed) > 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "first peer down");
        std::thread::sleep(Duration::from_millis(1));
    }
    TRACE.store(backtraces, Ordering::Relaxed);
    for i in 1..=peers {
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
    std::thread::sleep(Duration::from_millis(300));
    let conf_rss = rss_kib().0;
    let conf = snapshot();
    let n = f64::from(peers);
    report(
        &format!("{peers} configured, serving, none connected"),
        &before,
        &conf,
        n,
    );
    println!(
        "resident memory: {before_rss} KiB → {conf_rss} KiB: {:.2} KiB per configured peer",
        (conf_rss - before_rss) as f64 / n
    );
    // Speakers 0..=peers: the warm-up peer comes up again too.
    if let Ok(mut s) = SITES.lock() {
        s.clear();
    }
    let _generator = Generator::start(addr, peers + 1, 0, 90);
    let t = Instant::now();
    while counter.established.load(Ordering::Relaxed) < u64::from(peers) + 1 {
        assert!(t.elapsed() < Duration::from_secs(120), "all Established");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(500));
    TRACE.store(false, Ordering::Relaxed);
    let after_rss = rss_kib().0;
    let after = snapshot();
    report(
        &format!("all {peers} Established, idle"),
        &before,
        &after,
        n,
    );
    let pool = pool_rss_kib();
    println!(
        "buffer pool mappings: {pool} KiB resident ({:.0} bytes per peer)",
        pool as f64 * 1024.0 / n
    );
    println!(
        "resident memory: {before_rss} KiB → {after_rss} KiB: {:.2} KiB per peer",
        (after_rss - before_rss) as f64 / n
    );
    // As many peers that dial, where nothing listens: each dial is refused
    // at once (Connect → Idle, RFC 4271 §8.2.2), and the peer waits 120 s
    // (its IdleHoldTime) for the next.
    let closed = {
        let l = std::net::TcpListener::bind((Ipv4Addr::new(127, 3, 0, 1), 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let dialling: Vec<IpAddr> = (0..peers)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 3, (i >> 8) as u8, (i & 0xff) as u8 + 1)))
        .collect();
    let refused = Refused::default();
    for (i, &a) in (0..).zip(&dialling) {
        server
            .add_peer(
                PeerConfig {
                    remote_address: a,
                    local_as: SERVER_AS,
                    remote_as: SPEAKER_AS + peers + 1 + i,
                },
                refused.clone(),
                PeerOptions::new()
                    .port(closed)
                    .idle_hold_time(Duration::from_secs(120)),
            )
            .unwrap();
    }
    let t = Instant::now();
    while refused.0.load(Ordering::Relaxed) < u64::from(peers) {
        assert!(t.elapsed() < Duration::from_secs(120), "all dialled");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let dial_rss = rss_kib().0;
    let dial = snapshot();
    report(
        &format!("{peers} more peers that dial, refused, waiting to dial again"),
        &after,
        &dial,
        n,
    );
    // What their first dials used (each a task and a session while it
    // ran, all at once here) is free heap now, which glibc keeps mapped.
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let trimmed_rss = rss_kib().0;
    println!(
        "resident memory: {after_rss} KiB → {dial_rss} KiB: {:.2} KiB per peer that dials ({trimmed_rss} KiB after malloc_trim: {:.2} KiB per peer that dials)",
        (dial_rss - after_rss) as f64 / n,
        (trimmed_rss - after_rss) as f64 / n
    );
    drop(_generator);
    rt.block_on(server.close());
}
