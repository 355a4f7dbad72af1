//! Churn (issue 15, part 4): 1,000 configured peers whose speakers, in a
//! child process, connect, establish, send a few routes and drop the
//! connection over and over — by RST, by FIN, or by falling silent until
//! the server's hold timer ends the session (4/0) — while the server now
//! and then deletes a peer in the middle of its flapping (and adds it back).
//!
//! Checked, and printed: no leak (the server's resident memory and open
//! descriptors once the churn stops and the sessions settle, against the
//! same after a warm-up round: within 1 MiB and 0); every session the
//! plugin saw come up went down exactly once, per peer (`on_established`
//! and `on_close` alternate, and their counts match at the end); how long
//! `delete_peer` took (the largest of all, and the mean).
//!
//! `cargo bench -p corebgp-std --bench churn` (env: CHURN_SECONDS=600 in
//! CHURN_ROUNDS=5 rounds, each followed by a settled reading;
//! WARMUP_SECONDS=20, PEERS=1000, DELETE_EVERY_MS=500). Exits non-zero if
//! a check fails.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, DefaultHooks, DownReason, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_core::wire::{Notification, UpdateSections};
use corebgp_std::{PeerOptions, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The heap in use, counted by a global allocator: a leak shows here
/// exactly, where resident memory also moves with the allocator's free
/// lists and fragmentation.
struct Counting;

static HEAP_BYTES: AtomicI64 = AtomicI64::new(0);
static HEAP_BLOCKS: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP_BYTES.fetch_add(l.size() as i64, Ordering::Relaxed);
        HEAP_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        HEAP_BYTES.fetch_add(l.size() as i64, Ordering::Relaxed);
        HEAP_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, as is.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP_BYTES.fetch_sub(l.size() as i64, Ordering::Relaxed);
        HEAP_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        HEAP_BYTES.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes and blocks in use.
fn heap() -> (i64, i64) {
    (
        HEAP_BYTES.load(Ordering::Relaxed),
        HEAP_BLOCKS.load(Ordering::Relaxed),
    )
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The hold time the speakers propose (the smallest RFC 4271 allows): a
/// silent speaker is dropped by the server's hold timer after 3 s.
const SPEAKER_HOLD: u16 = 3;
/// Prefixes each speaker announces per session.
const ROUTES: u32 = 4;

fn speaker_as(i: u32) -> u32 {
    // 2-octet private ASNs, one per speaker (64512..=65534).
    64512 + i % 1000
}

// ---------------------------------------------------------------------------
// The server's side.

/// Per-peer counts of the plugin's hooks.
struct Counts {
    established: Vec<AtomicU64>,
    closed: Vec<AtomicU64>,
    up: Vec<AtomicBool>,
    /// `on_established` while up, or `on_close` while down.
    out_of_order: AtomicU64,
    prefixes: AtomicU64,
    hold_expired: AtomicU64,
    transport_closed: AtomicU64,
    stopped: AtomicU64,
    other_reason: AtomicU64,
}

impl Counts {
    fn new(n: usize) -> Self {
        Self {
            established: (0..n).map(|_| AtomicU64::new(0)).collect(),
            closed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            up: (0..n).map(|_| AtomicBool::new(false)).collect(),
            out_of_order: AtomicU64::new(0),
            prefixes: AtomicU64::new(0),
            hold_expired: AtomicU64::new(0),
            transport_closed: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
            other_reason: AtomicU64::new(0),
        }
    }
    fn sum(v: &[AtomicU64]) -> u64 {
        v.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

struct Churned {
    i: usize,
    counts: Arc<Counts>,
}

impl OpenHooks for Churned {
    fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
        DefaultHooks.capabilities(p, c)
    }
}

impl Plugin for Churned {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {
        let c = &self.counts;
        if c.up[self.i].swap(true, Ordering::Relaxed) {
            c.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        c.established[self.i].fetch_add(1, Ordering::Relaxed);
    }
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        match corebgp_core::update::Update::from_sections(u, &Default::default()) {
            Ok(u) => {
                let n = u.announced().count() as u64;
                self.counts.prefixes.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.is_session_reset() => Err(e.notification),
            Err(_) => Ok(()),
        }
    }
    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        let c = &self.counts;
        if !c.up[self.i].swap(false, Ordering::Relaxed) {
            c.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        c.closed[self.i].fetch_add(1, Ordering::Relaxed);
        let which = match reason {
            DownReason::NotificationSent(code) if code.code() == 4 => &c.hold_expired,
            DownReason::TransportClosed => &c.transport_closed,
            DownReason::Stopped => &c.stopped,
            _ => &c.other_reason,
        };
        which.fetch_add(1, Ordering::Relaxed);
    }
}

fn peer_config(i: u32) -> PeerConfig {
    PeerConfig {
        remote_address: IpAddr::V4(speaker_addr(i)),
        local_as: SERVER_AS,
        remote_as: speaker_as(i),
    }
}

fn options() -> PeerOptions {
    // Damping off: every speaker may come back at once, whatever ended its
    // last session; the server proposes hold time 90, the speakers 3.
    PeerOptions::new()
        .passive(true)
        .damping(false)
        .idle_hold_time(Duration::from_millis(100))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until no peer has a session or a connection and the descriptor
/// count has stopped moving for longer than a closed connection lingers
/// (the driver's SHUTDOWN_LINGER, 3 s).
fn settle(server: &Server, what: &str) -> Settled {
    let t = Instant::now();
    let (mut last, mut since) = (open_fds(), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let fds = open_fds();
        if fds != last {
            (last, since) = (fds, Instant::now());
        }
        let quiet = server
            .list_peers()
            .iter()
            .all(|p| p.state == StateKind::Active);
        if quiet && since.elapsed() > Duration::from_secs(5) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "{what}: sessions did not settle"
        );
    }
    // Let the allocator's and the runtime's deferred frees happen.
    std::thread::sleep(Duration::from_secs(1));
    Settled {
        rss: rss_kib().0,
        fds: open_fds(),
        heap: heap(),
    }
}

/// A reading once the sessions have settled.
#[derive(Clone, Copy)]
struct Settled {
    /// Resident memory, KiB.
    rss: u64,
    fds: usize,
    /// Heap bytes and blocks in use.
    heap: (i64, i64),
}

impl Settled {
    fn show(&self) -> String {
        format!(
            "{} KiB resident, heap {} bytes in {} blocks, {} descriptors",
            self.rss, self.heap.0, self.heap.1, self.fds
        )
    }
    fn since(&self, b: &Settled) -> String {
        format!(
            "{:+} KiB resident, heap {:+} bytes {:+} blocks, {:+} descriptors",
            self.rss as i64 - b.rss as i64,
            self.heap.0 - b.heap.0,
            self.heap.1 - b.heap.1,
            self.fds as i64 - b.fds as i64
        )
    }
}

/// Runs the speakers' child process for `seconds` and returns its report.
fn churn(addr: SocketAddr, peers: u32, seconds: u64) -> String {
    let child = Command::new(std::env::current_exe().unwrap())
        .env("COREBGP_BENCH_ROLE", "churner")
        .env("CHURN_SERVER", addr.to_string())
        .env("CHURN_PEERS", peers.to_string())
        .env("CHURN_RUN", seconds.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let mut report = String::new();
    for line in out.lines() {
        report = line.unwrap();
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "the speakers' process failed: {status}");
    report
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[derive(Default)]
struct Deletes {
    count: u64,
    mid_session: u64,
    total: Duration,
    max: Duration,
}

/// Until `stop`: every `every`, deletes the next peer with a session (or a
/// connection) under way, timing `delete_peer`, and adds it back.
async fn delete_mid_flap(
    server: Server,
    counts: Arc<Counts>,
    deletes: Arc<std::sync::Mutex<Deletes>>,
    stop: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
    peers: u32,
    every: Duration,
) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        let mut victim = None;
        for _ in 0..peers {
            let k = (next.fetch_add(7, Ordering::Relaxed) % u64::from(peers)) as u32;
            let st = server.get_peer(IpAddr::V4(speaker_addr(k))).unwrap().state;
            if st != StateKind::Active && st != StateKind::Idle {
                victim = Some((k, st == StateKind::Established));
                break;
            }
        }
        let Some((k, up)) = victim else { continue };
        let t = Instant::now();
        server
            .delete_peer(IpAddr::V4(speaker_addr(k)))
            .await
            .unwrap();
        let took = t.elapsed();
        {
            let mut d = deletes.lock().unwrap();
            d.count += 1;
            d.mid_session += u64::from(up);
            d.total += took;
            d.max = d.max.max(took);
        }
        let plugin = Churned {
            i: k as usize,
            counts: counts.clone(),
        };
        server.add_peer(peer_config(k), plugin, options()).unwrap();
    }
}

fn main() {
    raise_nofile();
    if std::env::var("COREBGP_BENCH_ROLE").as_deref() == Ok("churner") {
        return churner_main();
    }
    let peers = env("PEERS", 1000) as u32;
    let seconds = env("CHURN_SECONDS", 600);
    let warmup = env("WARMUP_SECONDS", 20);
    let delete_every = Duration::from_millis(env("DELETE_EVERY_MS", 500));
    let rounds = env("CHURN_ROUNDS", 5).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ip = Ipv4Addr::new(127, 1, 0, 1);
    let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ip).unwrap();
    let counts = Arc::new(Counts::new(peers as usize));
    for i in 0..peers {
        let plugin = Churned {
            i: i as usize,
            counts: counts.clone(),
        };
        server.add_peer(peer_config(i), plugin, options()).unwrap();
    }
    let s = server.clone();
    rt.spawn(async move { s.serve(vec![listener]).await });
    let fresh = settle(&server, "start");
    println!("peers: {peers}; server on {addr}, speakers in a child process");
    println!("fresh: {} (no session yet)", fresh.show());

    // Warm-up: every peer has had sessions (its buffers touched, the
    // runtime's and the allocator's pools grown): the baseline.
    let report = churn(addr, peers, warmup);
    let base = settle(&server, "warm-up");
    let est0 = Counts::sum(&counts.established);
    println!("warm-up {warmup} s: {est0} sessions; speakers: {report}");
    println!("baseline: {}", base.show());

    // The churn, in rounds (the sessions settle after each, for a reading
    // of memory and descriptors), with delete_peer on a peer mid-flap every
    // `delete_every`.
    let deletes = Arc::new(std::sync::Mutex::new(Deletes::default()));
    let next_victim = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut end = base;
    for round in 1..=rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let deleter = rt.spawn(delete_mid_flap(
            server.clone(),
            counts.clone(),
            deletes.clone(),
            stop.clone(),
            next_victim.clone(),
            peers,
            delete_every,
        ));
        let report = churn(addr, peers, seconds / rounds);
        stop.store(true, Ordering::Relaxed);
        rt.block_on(deleter).unwrap();
        end = settle(&server, "churn");
        println!(
            "round {round}/{rounds} ({} s): speakers: {report}",
            seconds / rounds
        );
        println!("  settled: {} ({})", end.show(), end.since(&base));
    }
    let took = t.elapsed();
    let est = Counts::sum(&counts.established) - est0;
    println!(
        "churn {seconds} s ({:.0} s with the speakers' last sessions and settling): {est} sessions ({:.1}/s), {} prefixes received in all",
        took.as_secs_f64(),
        est as f64 / took.as_secs_f64(),
        counts.prefixes.load(Ordering::Relaxed)
    );
    println!(
        "sessions ended by: hold timer (4/0) {}, transport closed (RST/FIN) {}, delete_peer {}, other {}",
        counts.hold_expired.load(Ordering::Relaxed),
        counts.transport_closed.load(Ordering::Relaxed),
        counts.stopped.load(Ordering::Relaxed),
        counts.other_reason.load(Ordering::Relaxed)
    );
    let d = deletes.lock().unwrap();
    println!(
        "delete_peer mid-flap: {} calls ({} on an Established session), max {:.1} ms, mean {:.2} ms",
        d.count,
        d.mid_session,
        d.max.as_secs_f64() * 1e3,
        d.total.as_secs_f64() * 1e3 / d.count.max(1) as f64
    );
    println!("end: {} ({})", end.show(), end.since(&base));
    // What of that is the allocator keeping freed memory: glibc gives its
    // free pages back on malloc_trim (the checks use the figures above).
    // SAFETY: takes no pointer; only hands free memory back to the kernel.
    unsafe { libc::malloc_trim(0) };
    let trimmed = rss_kib().0;
    println!(
        "end after malloc_trim(0): {trimmed} KiB resident ({:+} KiB against the baseline without it)",
        trimmed as i64 - base.rss as i64
    );

    let mut failed = Vec::new();
    let mismatched: Vec<usize> = (0..peers as usize)
        .filter(|&i| {
            counts.established[i].load(Ordering::Relaxed)
                != counts.closed[i].load(Ordering::Relaxed)
        })
        .collect();
    if !mismatched.is_empty() {
        failed.push(format!(
            "{} peers whose sessions up ≠ down (first: {:?})",
            mismatched.len(),
            &mismatched[..mismatched.len().min(5)]
        ));
    }
    let ooo = counts.out_of_order.load(Ordering::Relaxed);
    if ooo != 0 {
        failed.push(format!("{ooo} hooks out of order (up twice or down twice)"));
    }
    let drss = end.rss as i64 - base.rss as i64;
    if drss > 1024 {
        failed.push(format!("resident memory grew by {drss} KiB"));
    }
    if end.fds != base.fds {
        failed.push(format!(
            "{} descriptors before, {} after",
            base.fds, end.fds
        ));
    }
    let dheap = end.heap.0 - base.heap.0;
    if dheap > 1024 * 1024 {
        failed.push(format!("the heap in use grew by {dheap} bytes"));
    }
    if d.count == 0 {
        failed.push("no delete_peer call".into());
    }
    println!(
        "checks: resident memory {drss:+} KiB (limit +1024), heap in use {dheap:+} bytes (limit +1 MiB), descriptors {:+} (limit 0), {} of {peers} peers with sessions up = down, {ooo} hooks out of order",
        end.fds as i64 - base.fds as i64,
        peers as usize - mismatched.len()
    );
    drop(d);
    rt.block_on(server.close());
    if !failed.is_empty() {
        eprintln!("churn: FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("churn: passed");
}

// ---------------------------------------------------------------------------
// The speakers' side (the child process): raw BGP over tokio sockets.

#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    rst: AtomicU64,
    fin: AtomicU64,
    silent: AtomicU64,
    /// Silent sessions the server ended with 4/0 as expected.
    hold_notifications: AtomicU64,
    /// Connections closed before an OPEN (the peer was still winding down
    /// its last session, or deleted).
    refused: AtomicU64,
}

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

fn open(i: u32) -> Vec<u8> {
    let asn = speaker_as(i);
    let mut caps = vec![1, 4, 0, 1, 0, 1, 65, 4];
    caps.extend_from_slice(&asn.to_be_bytes());
    let mut b = vec![4];
    b.extend_from_slice(&(asn as u16).to_be_bytes());
    b.extend_from_slice(&SPEAKER_HOLD.to_be_bytes());
    b.extend_from_slice(&speaker_addr(i).octets());
    b.push(2 + caps.len() as u8);
    b.extend_from_slice(&[2, caps.len() as u8]);
    b.extend_from_slice(&caps);
    msg(1, &b)
}

/// The next message's type and body, `None` at the end of the connection.
async fn next(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 19];
    s.read_exact(&mut head).await.ok()?;
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut body = vec![0u8; len.checked_sub(19)?];
    s.read_exact(&mut body).await.ok()?;
    Some((head[18], body))
}

/// A small xorshift: each speaker's own sequence of choices.
fn rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One session: connect, OPEN, KEEPALIVE, a few routes, then drop it the
/// way `how` says (0 RST, 1 FIN, 2 silence). `false` if refused.
async fn session(i: u32, server: SocketAddr, how: u64, pause: Duration, t: &Tally) -> bool {
    let limit = Duration::from_secs(30);
    let go = async {
        let sock = tokio::net::TcpSocket::new_v4().ok()?;
        sock.bind(SocketAddr::new(IpAddr::V4(speaker_addr(i)), 0))
            .ok()?;
        let mut s = sock.connect(server).await.ok()?;
        s.set_nodelay(true).ok()?;
        let (ty, _) = next(&mut s).await?;
        if ty != 1 {
            return None;
        }
        s.write_all(&open(i)).await.ok()?;
        let (ty, _) = next(&mut s).await?;
        if ty != 4 {
            return None;
        }
        let mut out = corebgp_core::wire::KEEPALIVE.to_vec();
        for m in table((1 << 16) + i * ROUTES, ROUTES, speaker_as(i)) {
            out.extend_from_slice(&m);
        }
        s.write_all(&out).await.ok()?;
        t.sessions.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
        match how {
            0 => {
                // RST: linger 0 on close.
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .ok()?;
                t.rst.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                // FIN, then read to the end (the server's FIN).
                s.shutdown().await.ok()?;
                while next(&mut s).await.is_some() {}
                t.fin.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                // Silence: the server's hold timer must end it with 4/0.
                t.silent.fetch_add(1, Ordering::Relaxed);
                while let Some((ty, body)) = next(&mut s).await {
                    if ty == 3 && body.get(..2) == Some(&[4, 0]) {
                        t.hold_notifications.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Some(())
    };
    matches!(tokio::time::timeout(limit, go).await, Ok(Some(())))
}

fn churner_main() {
    let server: SocketAddr = std::env::var("CHURN_SERVER").unwrap().parse().unwrap();
    let peers: u32 = std::env::var("CHURN_PEERS").unwrap().parse().unwrap();
    let run = Duration::from_secs(std::env::var("CHURN_RUN").unwrap().parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let end = Instant::now() + run;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..peers {
            let t = tally.clone();
            tasks.push(tokio::spawn(async move {
                let mut r = 0x9E37_79B9_7F4A_7C15u64 ^ ((u64::from(i) + 1) * 0x1000_0001);
                // Spread the first dials over a second.
                tokio::time::sleep(Duration::from_millis(rand(&mut r) % 1000)).await;
                while Instant::now() < end {
                    let how = rand(&mut r) % 3;
                    let pause = Duration::from_millis(rand(&mut r) % 500);
                    if !session(i, server, how, pause, &t).await {
                        t.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50 + rand(&mut r) % 200)).await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{} sessions (RST {}, FIN {}, silent {} of which {} ended by the server's 4/0), {} attempts refused or failed",
        g(&tally.sessions),
        g(&tally.rst),
        g(&tally.fin),
        g(&tally.silent),
        g(&tally.hold_notifications),
        g(&tally.refused)
    );
}
