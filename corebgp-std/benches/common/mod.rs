//! Shared by the benchmarks: a load generator (BGP speakers run by
//! corebgp-core's driver) in a child process of its own, so the server's
//! resident memory and CPU time are measured alone, and /proc readings.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use corebgp_core::driver::{Buffers, Clock, Connector, run};
use corebgp_core::outbox::{UpdateChannel, UpdateWriter};
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, DefaultHooks, Instant, Negotiated, OpenHooks, Peer, PeerConfig, SessionConfig,
};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, UpdateBuilder,
    encode_end_of_rib,
};
use corebgp_core::wire::{AfiSafi, CeaseSubcode, Notification, UpdateSections};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::sync::watch;

pub const SERVER_AS: u32 = 65000;
pub const SPEAKER_AS: u32 = 65100;

/// VmRSS and VmHWM of this process, in KiB.
pub fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of this process (not of its children).
pub fn cpu_time() -> StdDuration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        StdDuration::from_secs(t.tv_sec as u64) + StdDuration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The i-th speaker's address: 127.2.0.10 onwards, across 127.2.0.0/16.
pub fn speaker_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 2, (i / 200) as u8, (i % 200) as u8 + 10)
}

/// UPDATE messages announcing `count` /24s from `first` (as /24 number),
/// End-of-RIB last.
pub fn table(first: u32, count: u32, asn: u32) -> Vec<Vec<u8>> {
    table_per(first, count, asn, usize::MAX)
}

/// [`table`] with at most `per_update` prefixes in each UPDATE (3 is what
/// a real full table looks like: many paths, few prefixes sharing each).
pub fn table_per(first: u32, count: u32, asn: u32, per_update: usize) -> Vec<Vec<u8>> {
    let prefixes: Vec<Nlri<Ipv4Prefix>> = (0..count)
        .map(|i| Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits((first + i) << 8), 24).unwrap()))
        .collect();
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
    let cfg = corebgp_core::update::UpdateConfig::default();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut rest = &prefixes[..];
    while !rest.is_empty() {
        let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
        let take = &rest[..rest.len().min(per_update)];
        let n = b.announce(&attrs, AfiSafi::IPV4_UNICAST, take).unwrap();
        let len = b.finish().unwrap();
        out.push(buf[..len].to_vec());
        rest = &rest[n..];
    }
    let len = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).unwrap();
    out.push(buf[..len].to_vec());
    out
}

#[derive(Clone, Copy)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
    async fn sleep_until(&self, d: Instant) {
        tokio::time::sleep_until(self.0 + StdDuration::from_millis(d.as_millis())).await
    }
}

struct Dial {
    local: Ipv4Addr,
    server: SocketAddr,
}

impl Connector for Dial {
    type Transport = FromTokio<tokio::net::TcpStream>;
    async fn connect(&self) -> Option<Self::Transport> {
        let s = tokio::net::TcpSocket::new_v4().ok()?;
        s.bind(SocketAddr::new(IpAddr::V4(self.local), 0)).ok()?;
        let c = s.connect(self.server).await.ok()?;
        c.set_nodelay(true).ok()?;
        Some(FromTokio::new(c))
    }
    async fn accept(&self) -> Self::Transport {
        std::future::pending().await
    }
}

type Chan = UpdateChannel<CriticalSectionRawMutex, 65536>;

struct Speaker {
    chan: Arc<Chan>,
    table: Arc<Vec<Vec<u8>>>,
    go: watch::Receiver<bool>,
}

impl OpenHooks for Speaker {
    fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
        DefaultHooks.capabilities(p, c)
    }
}

impl Plugin for Speaker {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {
        let w = UpdateWriter::new(self.chan.clone()).unwrap();
        let (table, mut go) = (self.table.clone(), self.go.clone());
        tokio::spawn(async move {
            let _ = go.wait_for(|g| *g).await;
            for m in table.iter() {
                if w.send(m).await.is_err() {
                    return;
                }
            }
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

/// The child process: `n` speakers dialling `server`, each with `per`
/// prefixes (speaker i announces /24s from 1.0.0.0 + i·per), sent when a
/// line arrives on standard input; exits when standard input closes.
pub fn generator_main() {
    let server: SocketAddr = std::env::var("GEN_SERVER").unwrap().parse().unwrap();
    let n: u32 = std::env::var("GEN_SPEAKERS").unwrap().parse().unwrap();
    let per: u32 = std::env::var("GEN_PREFIXES").unwrap().parse().unwrap();
    let hold: u16 = std::env::var("GEN_HOLD").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (go_tx, go_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    std::thread::spawn(move || {
        let mut lines = std::io::stdin().lock().lines();
        if let Some(Ok(_)) = lines.next() {
            go_tx.send_replace(true);
        }
        // EOF: the parent is done.
        for _ in lines {}
        stop_tx.send_replace(true);
    });
    rt.block_on(async move {
        let epoch = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let table = Arc::new(table((1 << 16) + i * per, per, SPEAKER_AS + i));
            let local = speaker_addr(i);
            let go = go_rx.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let cfg = SessionConfig::new(
                    PeerConfig {
                        remote_address: server.ip(),
                        local_as: SPEAKER_AS + i,
                        remote_as: SERVER_AS,
                    },
                    local,
                )
                .with_hold_time(hold)
                .with_idle_hold_time(corebgp_core::session::Duration::from_millis(200));
                let mut peer = Peer::new(cfg);
                let clock = TokioClock(epoch);
                peer.start(clock.now());
                let chan: Arc<Chan> = Arc::new(UpdateChannel::new());
                let mut plugin = Speaker {
                    chan: chan.clone(),
                    table,
                    go,
                };
                let (mut rx, mut tx) = (vec![0u8; 8192], vec![0u8; 4096]);
                let (a, b) = rx.split_at_mut(4096);
                let dial = Dial { local, server };
                let shutdown = async move {
                    let _ = stop.wait_for(|s| *s).await;
                    CeaseSubcode::AdministrativeShutdown
                };
                run(
                    &mut peer,
                    &dial,
                    &clock,
                    &mut plugin,
                    &*chan,
                    Buffers {
                        rx: [a, b],
                        tx: &mut tx,
                    },
                    shutdown,
                )
                .await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// Starts the generator child; `go()` makes every speaker send its table,
/// dropping it ends the child.
pub struct Generator {
    child: Child,
}

impl Generator {
    pub fn start(server: SocketAddr, speakers: u32, prefixes: u32, hold: u16) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .env("COREBGP_BENCH_ROLE", "generator")
            .env("GEN_SERVER", server.to_string())
            .env("GEN_SPEAKERS", speakers.to_string())
            .env("GEN_PREFIXES", prefixes.to_string())
            .env("GEN_HOLD", hold.to_string())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }

    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        // Give the speakers a moment to send their Ceases, then make sure.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_generator() -> bool {
    std::env::var("COREBGP_BENCH_ROLE").as_deref() == Ok("generator")
}

/// Raises the open-file limit to the hard limit (10,000 sockets need more
/// than the usual soft limit of 1,024), in the server and in the
/// generator alike.
pub fn raise_nofile() {
    corebgp_std::raise_open_file_limit().expect("raising the open-file limit");
}

/// The server's side of a benchmark: counts sessions and decoded prefixes.
#[derive(Clone, Default)]
pub struct Counter {
    pub established: Arc<std::sync::atomic::AtomicU64>,
    pub prefixes: Arc<std::sync::atomic::AtomicU64>,
    pub eor: Arc<std::sync::atomic::AtomicU64>,
    pub established_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// When the first UPDATE reached the handler (a `OnceLock`: one atomic
    /// load per UPDATE, not a lock, so the harness stays out of the figure).
    pub first_update_at: Arc<std::sync::OnceLock<std::time::Instant>>,
    pub eor_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl OpenHooks for Counter {
    fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
        DefaultHooks.capabilities(p, c)
    }
}

impl Plugin for Counter {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {
        *self.established_at.lock().unwrap() = Some(std::time::Instant::now());
        self.established
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        self.first_update_at.get_or_init(std::time::Instant::now);
        // Decode every UPDATE and walk every prefix, as a real plugin would.
        let u = match corebgp_core::update::Update::from_sections(u, &Default::default()) {
            Ok(u) => u,
            Err(e) if e.is_session_reset() => return Err(e.notification),
            Err(_) => return Ok(()),
        };
        if u.end_of_rib().is_some() {
            *self.eor_at.lock().unwrap() = Some(std::time::Instant::now());
            self.eor.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let n = u.announced().count() as u64;
        self.prefixes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    fn on_close(&mut self, _: &PeerConfig, _: corebgp_core::session::DownReason) {
        self.established
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The table as one block of bytes, as a sender that pre-encoded it holds.
pub fn table_bytes(count: u32, per_update: usize) -> Vec<u8> {
    table_per(1 << 16, count, SPEAKER_AS, per_update).concat()
}

/// The pre-encoded sender (child process, role `raw`): builds the table,
/// dials `GEN_SERVER` from [`speaker_addr`]`(0)`, and with `GEN_BGP=1` opens
/// a BGP session by hand (OPEN, KEEPALIVE; waits for the server's OPEN and
/// KEEPALIVE). On a line on standard input it writes the whole table with
/// one `write_all` (as fast as loopback takes it). Without BGP (the
/// loopback floor) it then closes its side; with BGP it reads and
/// discards until standard input closes.
pub fn raw_main() {
    use std::io::Read;
    let server: SocketAddr = std::env::var("GEN_SERVER").unwrap().parse().unwrap();
    let count: u32 = std::env::var("GEN_PREFIXES").unwrap().parse().unwrap();
    let per: usize = std::env::var("GEN_PER").unwrap().parse().unwrap();
    let bgp = std::env::var("GEN_BGP").as_deref() == Ok("1");
    let bytes = table_bytes(count, per);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(IpAddr::V4(speaker_addr(0)), 0).into())
        .unwrap();
    sock.connect(&server.into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    s.set_nodelay(true).unwrap();
    if bgp {
        use corebgp_core::wire::{Capability, Framer, KEEPALIVE, OpenBuilder};
        let caps = [
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::FourOctetAs(SPEAKER_AS),
        ];
        let mut buf = [0u8; 4096];
        let n = OpenBuilder::new(SPEAKER_AS, 90, Ipv4Addr::new(10, 9, 9, 9), &caps)
            .encode(&mut buf)
            .unwrap();
        s.write_all(&buf[..n]).unwrap();
        s.write_all(&KEEPALIVE).unwrap();
        // The server's OPEN and KEEPALIVE.
        let mut framer = Framer::new([0u8; 4096]);
        let mut seen = 0;
        while seen < 2 {
            let n = s.read(framer.read_buf()).unwrap();
            assert!(n > 0, "server closed during the OPEN exchange");
            framer.commit(n);
            while let Some(m) = framer.next_message() {
                let m = m.unwrap();
                assert!(m[18] != 3, "NOTIFICATION from the server: {m:?}");
                seen += 1;
            }
        }
    }
    let mut lines = std::io::stdin().lock().lines();
    if !matches!(lines.next(), Some(Ok(_))) {
        return;
    }
    s.write_all(&bytes).unwrap();
    if !bgp {
        s.shutdown(std::net::Shutdown::Write).unwrap();
        return;
    }
    let mut r = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while matches!(r.read(&mut sink), Ok(n) if n > 0) {}
    });
    // EOF: the parent is done.
    for _ in lines {}
}

pub fn is_raw() -> bool {
    std::env::var("COREBGP_BENCH_ROLE").as_deref() == Ok("raw")
}

impl Generator {
    /// Starts the pre-encoded sender ([`raw_main`]) of `prefixes` /24s,
    /// `per_update` in each UPDATE; `bgp`: open a session first (else the
    /// loopback floor's sender).
    pub fn start_raw(server: SocketAddr, prefixes: u32, per_update: usize, bgp: bool) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .env("COREBGP_BENCH_ROLE", "raw")
            .env("GEN_SERVER", server.to_string())
            .env("GEN_PREFIXES", prefixes.to_string())
            .env("GEN_PER", per_update.to_string())
            .env("GEN_BGP", if bgp { "1" } else { "0" })
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }
}

/// The loopback floor: the same bytes as the table, written to a socket by
/// the pre-encoded sender and read and discarded here by a plain blocking
/// reader (64 KiB reads). Returns go → the reader saw the sender's EOF.
pub fn loopback_floor(ip: Ipv4Addr, prefixes: u32, per_update: usize) -> StdDuration {
    use std::io::Read;
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    let mut g = Generator::start_raw(l.local_addr().unwrap(), prefixes, per_update, false);
    let (mut s, _) = l.accept().unwrap();
    let mut buf = vec![0u8; 65536];
    let go = std::time::Instant::now();
    g.go();
    let mut total = 0usize;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    let took = go.elapsed();
    assert!(total > 0);
    took
}
