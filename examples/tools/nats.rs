//! NATS JetStream for `collector --nats` (publishing) and `rib-from-stream`
//! (consuming): the flags, the connection, the stream, the subjects and
//! headers, and the collector's publisher (acknowledged publishes, a bounded
//! window, retries, order kept).
//!
//! Subjects: `PREFIX.<collector-id>.<peer>.update` and `….event`, where
//! `<peer>` is the peer's address with `.` written `_` (a subject's token
//! separator). An event is a message of its own; the UPDATEs of a session
//! that are queued when the publisher gets to them go out together as one
//! message (a batch: raw messages one after the other, or JSON lines), up to
//! `--nats-batch` UPDATEs and `--nats-batch-bytes`; under light load each
//! UPDATE goes alone at once (there is no timer). Every message carries the
//! headers below, once; `Nats-Msg-Id` is
//! `<collector-id>.<peer>.<session>.<seq>[+<count>]`, and a batch is kept as
//! built until acknowledged, so that a message published again after a
//! reconnect is the same one and is dropped by the stream's duplicate window.

#![allow(dead_code)] // each tool uses its own subset

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, context::Publish, stream};
use async_nats::{HeaderMap, ServerAddr};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{error, info, warn};

/// The collector's identifier.
pub const H_COLLECTOR: &str = "Bgp-Collector";
/// The peer's address.
pub const H_PEER: &str = "Bgp-Peer";
/// The peer's AS number.
pub const H_PEER_AS: &str = "Bgp-Peer-As";
/// Our AS number on the session.
pub const H_LOCAL_AS: &str = "Bgp-Local-As";
/// When the message was received, Unix seconds with microseconds.
pub const H_TIMESTAMP: &str = "Bgp-Timestamp";
/// The session number (see [`next_session`]).
pub const H_SESSION: &str = "Bgp-Session";
/// The number of the (first) record within its session, from 1.
pub const H_SEQ: &str = "Bgp-Seq";
/// Records in the message (absent: 1), numbered from `Bgp-Seq` on.
pub const H_COUNT: &str = "Bgp-Count";
/// `json` (the collector's JSON objects, one a line) or `raw` (BGP UPDATE
/// messages one after the other).
pub const H_FORMAT: &str = "Bgp-Format";
/// `1` when the session uses 4-octet AS numbers (RFC 6793), to decode `raw`.
pub const H_FOUR_OCTET_AS: &str = "Bgp-Four-Octet-As";

/// The connection flags, shared by both tools.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// NATS server URL(s), comma-separated (several: the nodes of a cluster).
    #[arg(long, value_name = "URL[,URL…]", value_delimiter = ',')]
    pub nats: Vec<String>,

    /// The JetStream stream: created when missing (subjects PREFIX.>, file
    /// storage), used as it is when it exists.
    #[arg(long, value_name = "NAME", default_value = "BGP")]
    pub nats_stream: String,

    /// The subject prefix: PREFIX.<collector-id>.<peer>.update|event.
    #[arg(long, value_name = "PREFIX", default_value = "bgp")]
    pub nats_subject: String,

    /// A NATS credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", conflicts_with = "nats_user")]
    pub nats_creds: Option<PathBuf>,

    /// User name for NATS (with --nats-password).
    #[arg(long, value_name = "USER", requires = "nats_password")]
    pub nats_user: Option<String>,

    /// Password for NATS (with --nats-user); NATS_PASSWORD in the environment
    /// keeps it out of the process list (it is ignored without --nats-user).
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "NATS_PASSWORD",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
}

impl ConnArgs {
    /// Checks the names: a usage error (exit 2) names the bad one.
    pub fn validate(&self) {
        if self.nats.is_empty() {
            return;
        }
        for u in &self.nats {
            if u.trim().parse::<ServerAddr>().is_err() {
                crate::common::usage_error(format!("--nats {u}: not a NATS URL"));
            }
        }
        let s = &self.nats_stream;
        if s.is_empty() || s.contains(['.', '*', '>', '/', '\\']) || s.contains(char::is_whitespace)
        {
            crate::common::usage_error(format!(
                "--nats-stream '{s}': a stream name has no '.', '*', '>', '/', '\\' or spaces"
            ));
        }
        let p = &self.nats_subject;
        if p.is_empty()
            || p.split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>']) || t.contains(char::is_whitespace))
        {
            crate::common::usage_error(format!(
                "--nats-subject '{p}': dot-separated tokens without '*', '>' or spaces"
            ));
        }
    }

    /// The URLs as given, for messages.
    pub fn urls(&self) -> String {
        self.nats.join(",")
    }

    /// Connects (one attempt per server: a start-up that cannot reach NATS
    /// fails at once); later disconnections are retried by the client.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, String> {
        let addrs: Vec<ServerAddr> = self
            .nats
            .iter()
            .filter_map(|u| u.trim().parse().ok())
            .collect();
        let mut opts = match &self.nats_creds {
            Some(p) => async_nats::ConnectOptions::with_credentials_file(p)
                .await
                .map_err(|e| format!("--nats-creds {}: {e}", p.display()))?,
            None => async_nats::ConnectOptions::new(),
        };
        if let (Some(u), Some(p)) = (&self.nats_user, &self.nats_password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        // Reconnects: quickly, as a collector holds routers back meanwhile.
        let opts = opts
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|n| Duration::from_millis((50u64 << n.min(5)).min(1000)))
            .event_callback(|e| async move {
                match e {
                    async_nats::Event::Connected => info!("NATS: connected"),
                    async_nats::Event::Disconnected => warn!("NATS: disconnected; reconnecting"),
                    other => info!("NATS: {other}"),
                }
            });
        opts.connect(addrs)
            .await
            .map_err(|e| format!("cannot connect to NATS at {}: {e}", self.urls()))
    }

    /// `PREFIX.>`: what the stream must hold.
    pub fn wildcard(&self) -> String {
        format!("{}.>", self.nats_subject)
    }
}

/// Whether the subject pattern `pattern` matches every subject `subject`
/// (itself possibly ending in `>`) matches.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), subject.split('.').collect());
    for (i, t) in p.iter().enumerate() {
        if *t == ">" {
            return i < s.len();
        }
        let Some(x) = s.get(i) else { return false };
        if *t == "*" {
            if *x == ">" {
                return false;
            }
        } else if t != x {
            return false;
        }
    }
    p.len() == s.len()
}

/// The stream: an existing one as it is (if its subjects hold ours), else a
/// new one with `replicas` copies in files.
pub async fn ensure_stream(
    js: &jetstream::Context,
    conn: &ConnArgs,
    replicas: usize,
) -> Result<stream::Stream, String> {
    let name = &conn.nats_stream;
    let want = conn.wildcard();
    match js.get_stream(name).await {
        Ok(s) => {
            let subjects = &s.cached_info().config.subjects;
            if !subjects.iter().any(|p| covers(p, &want)) {
                return Err(format!(
                    "stream {name} exists with subjects {subjects:?}, which do not hold {want}: \
                     give another --nats-stream or --nats-subject"
                ));
            }
            info!(stream = %name, ?subjects, "NATS: using the existing stream");
            Ok(s)
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let cfg = stream::Config {
                name: name.clone(),
                subjects: vec![want.clone()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                // Msg-Id deduplication (the default window, said here).
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            };
            let s = js
                .create_stream(cfg)
                .await
                .map_err(|e| format!("cannot create stream {name} ({want}): {e}"))?;
            info!(stream = %name, subjects = %want, replicas, "NATS: stream created");
            Ok(s)
        }
        Err(e) => Err(format!("stream {name}: {e}")),
    }
}

/// The duplicate window of a stream we create: a message published again
/// within it (same Nats-Msg-Id) is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A peer's address as one subject token.
pub fn peer_token(peer: std::net::IpAddr) -> String {
    peer.to_string().replace('.', "_")
}

/// A new session number: the Unix time in microseconds, strictly
/// increasing within the process. Nothing is persisted: a restarted
/// collector starts later, so its numbers (and Msg-Ids) are new ones.
pub fn next_session() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Who a peer's records are from, made once per session (the headers of
/// every message of the session are made from it).
pub struct Origin {
    pub collector: Arc<str>,
    pub peer: IpAddr,
    pub peer_as: u32,
    pub local_as: u32,
    pub session: u64,
    pub four_octet_as: bool,
    /// `raw` or `json`: what an UPDATE record is (events are `json`).
    pub format: &'static str,
    pub update_subject: Arc<str>,
    pub event_subject: Arc<str>,
    /// The peer's index (to close its session on failure).
    pub index: usize,
}

/// One record for the stream: an UPDATE (the raw message, or its JSON
/// object and a newline) or an event (its JSON object).
pub struct Part {
    pub origin: Arc<Origin>,
    pub seq: u64,
    /// When it was received (Unix seconds).
    pub at: f64,
    pub update: bool,
    pub payload: Vec<u8>,
    /// It holds a place of the window (UPDATEs do; events when there is one).
    pub permit: bool,
}

/// How the publisher batches UPDATEs.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// UPDATEs in flight at most (the window: `on_update` waits beyond).
    pub window: usize,
    /// UPDATEs per NATS message at most (1: no batching).
    pub max_records: usize,
    /// Payload bytes per NATS message at most (a bigger record goes alone).
    pub max_bytes: usize,
}

impl Batching {
    /// NATS messages in flight at most. While that many wait for their
    /// acknowledgement, the UPDATEs queued meanwhile make the next message:
    /// batches grow with the load, and a lone UPDATE goes out at once (no
    /// timer). With the window full of maximal batches, as many as fit; at
    /// least 4, so that the server always has work queued.
    pub fn max_messages(&self) -> usize {
        self.window.div_ceil(self.max_records).max(4)
    }
}

/// A NATS message: one event, or a batch of a session's consecutive UPDATEs.
/// Kept as built until acknowledged, so a republish is the same message
/// with the same Msg-Id (deduplicated by the stream).
pub struct Msg {
    subject: Arc<str>,
    id: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
    peer: usize,
    /// Records in it, and how many of them hold a place of the window.
    records: u32,
    permits: u32,
}

/// UPDATEs of one peer's session being gathered into one message.
struct Builder {
    origin: Arc<Origin>,
    first: u64,
    count: u32,
    permits: u32,
    at: f64,
    buf: Vec<u8>,
}

impl Builder {
    fn new(p: Part) -> Self {
        Self {
            first: p.seq,
            count: 1,
            permits: u32::from(p.permit),
            at: p.at,
            buf: p.payload,
            origin: p.origin,
        }
    }

    /// Whether `p` continues this batch within the limits.
    fn takes(&self, p: &Part, b: &Batching) -> bool {
        Arc::ptr_eq(&self.origin, &p.origin)
            && p.seq == self.first + u64::from(self.count)
            && (self.count as usize) < b.max_records
            && self.buf.len() + p.payload.len() <= b.max_bytes
    }

    fn push(&mut self, p: Part) {
        self.count += 1;
        self.permits += u32::from(p.permit);
        self.buf.extend_from_slice(&p.payload);
    }

    fn finish(self) -> Msg {
        let o = &self.origin;
        let id = if self.count == 1 {
            format!(
                "{}.{}.{}.{}",
                o.collector,
                peer_token(o.peer),
                o.session,
                self.first
            )
        } else {
            format!(
                "{}.{}.{}.{}+{}",
                o.collector,
                peer_token(o.peer),
                o.session,
                self.first,
                self.count
            )
        };
        Msg {
            subject: o.update_subject.clone(),
            id,
            headers: headers(o, self.first, self.count, self.at, o.format),
            payload: self.buf.into(),
            peer: o.index,
            records: self.count,
            permits: self.permits,
        }
    }
}

impl Part {
    /// An event: a message of its own.
    fn event_msg(self) -> Msg {
        let o = &self.origin;
        Msg {
            subject: o.event_subject.clone(),
            id: format!(
                "{}.{}.{}.{}",
                o.collector,
                peer_token(o.peer),
                o.session,
                self.seq
            ),
            headers: headers(o, self.seq, 1, self.at, "json"),
            payload: self.payload.into(),
            peer: o.index,
            records: 1,
            permits: u32::from(self.permit),
        }
    }
}

enum Item {
    Part(Part),
    /// Answered once everything sent before is acknowledged (or given up).
    Flush(oneshot::Sender<()>),
}

/// Counters for the `nats` stats line.
#[derive(Default)]
pub struct PubStats {
    /// Records (UPDATEs and events) published and acknowledged.
    pub published: AtomicU64,
    pub acked: AtomicU64,
    /// NATS messages published (a batch of UPDATEs is one), first publishes.
    pub messages: AtomicU64,
    pub duplicates: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
    /// Unix time of the last acknowledgement, in microseconds.
    pub last_ack_us: AtomicU64,
}

/// The publishing side, cloned into every peer's plugin.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Item>,
    room: Arc<Semaphore>,
    pub stats: Arc<PubStats>,
    window: usize,
}

/// The window is full and the stream did not take the messages in time.
#[derive(Debug)]
pub struct Failed;

impl Publisher {
    /// Starts the publishing task. `failed[i]` is raised when peer `i`'s
    /// messages could not be published within `retry_for`.
    pub fn start(
        js: jetstream::Context,
        batching: Batching,
        retry_for: Duration,
        failed: Vec<Arc<watch::Sender<bool>>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(batching.window));
        let stats = Arc::new(PubStats::default());
        let task = Task {
            js,
            rx,
            room: room.clone(),
            stats: stats.clone(),
            open: (0..failed.len()).map(|_| None).collect(),
            failed,
            retry_for,
            batching,
            inflight: VecDeque::new(),
            flush: Vec::new(),
        };
        tokio::spawn(task.run());
        Self {
            tx,
            room,
            stats,
            window: batching.window,
        }
    }

    /// UPDATEs queued or sent and not yet acknowledged (events may add a few).
    pub fn inflight(&self) -> usize {
        self.window - self.room.available_permits()
    }

    /// Queues an UPDATE, waiting for room in the window (backpressure);
    /// fails when `failed` is raised meanwhile.
    pub async fn update(&self, mut p: Part, failed: &watch::Sender<bool>) -> Result<(), Failed> {
        let mut f = failed.subscribe();
        if *f.borrow_and_update() {
            return Err(Failed);
        }
        let permit = tokio::select! {
            biased;
            p = self.room.acquire() => p,
            _ = f.wait_for(|x| *x) => return Err(Failed),
        };
        match permit {
            Ok(p) => p.forget(),
            Err(_) => return Err(Failed),
        }
        p.permit = true;
        p.update = true;
        self.tx.send(Item::Part(p)).map_err(|_| Failed)
    }

    /// Queues an event: never waits (events are few), takes a place of the
    /// window when there is one.
    pub fn event(&self, mut p: Part) {
        p.permit = match self.room.try_acquire() {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        };
        p.update = false;
        let _ = self.tx.send(Item::Part(p));
    }

    /// Waits until everything queued so far is acknowledged (or given up),
    /// at most `timeout`; false on timeout.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).is_err() {
            return true;
        }
        tokio::time::timeout(timeout, rx).await.is_ok()
    }
}

type AckFuture =
    Pin<Box<dyn Future<Output = Result<jetstream::publish::PublishAck, String>> + Send>>;

struct Entry {
    msg: Msg,
    ack: AckFuture,
}

struct Task {
    js: jetstream::Context,
    rx: mpsc::UnboundedReceiver<Item>,
    room: Arc<Semaphore>,
    stats: Arc<PubStats>,
    failed: Vec<Arc<watch::Sender<bool>>>,
    retry_for: Duration,
    batching: Batching,
    /// Per peer, the batch being gathered (empty between drains).
    open: Vec<Option<Builder>>,
    /// Published, not yet acknowledged, in the order they were queued.
    inflight: VecDeque<Entry>,
    flush: Vec<oneshot::Sender<()>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Publishes `m` (its headers and payload are shared, not copied); the
/// future completes with its acknowledgement.
async fn publish(js: &jetstream::Context, m: &Msg) -> AckFuture {
    let p = Publish::build()
        .payload(m.payload.clone())
        .headers(m.headers.clone())
        .message_id(&m.id);
    match js.send_publish(m.subject.to_string(), p).await {
        Ok(f) => Box::pin(async move { f.await.map_err(|e| e.to_string()) }),
        Err(e) => {
            let e = e.to_string();
            Box::pin(async move { Err(e) })
        }
    }
}

impl Task {
    fn acked(&mut self, ack: &jetstream::publish::PublishAck) {
        let e = self
            .inflight
            .pop_front()
            .expect("an entry was acknowledged");
        self.room.add_permits(e.msg.permits as usize);
        let s = &self.stats;
        s.acked
            .fetch_add(u64::from(e.msg.records), Ordering::Relaxed);
        if ack.duplicate {
            s.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        s.last_ack_us.store(now_us(), Ordering::Relaxed);
        self.answer_flush();
    }

    fn answer_flush(&mut self) {
        if self.inflight.is_empty() {
            for f in self.flush.drain(..) {
                let _ = f.send(());
            }
        }
    }

    async fn send(&mut self, m: Msg) {
        let ack = publish(&self.js, &m).await;
        self.stats
            .published
            .fetch_add(u64::from(m.records), Ordering::Relaxed);
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        self.inflight.push_back(Entry { msg: m, ack });
    }

    /// Sends the batch being gathered for peer `i`, if any.
    async fn close_batch(&mut self, i: usize) {
        if let Some(b) = self.open.get_mut(i).and_then(Option::take) {
            self.send(b.finish()).await;
        }
    }

    /// One record: an UPDATE joins its peer's batch (or starts the next
    /// one); an event goes alone, after the UPDATEs before it.
    async fn take(&mut self, p: Part) {
        let i = p.origin.index;
        if i >= self.open.len() {
            self.open.resize_with(i + 1, || None);
        }
        if !p.update {
            self.close_batch(i).await;
            self.send(p.event_msg()).await;
            return;
        }
        match &mut self.open[i] {
            Some(b) if b.takes(&p, &self.batching) => b.push(p),
            _ => {
                self.close_batch(i).await;
                self.open[i] = Some(Builder::new(p));
            }
        }
    }

    async fn run(mut self) {
        enum Next {
            Ack(Result<jetstream::publish::PublishAck, String>),
            Item(Option<Item>),
        }
        loop {
            // With as many messages in flight as allowed, what is queued
            // waits in the channel and makes the next batch.
            let room = self.inflight.len() < self.batching.max_messages();
            let next = {
                let (inflight, rx) = (&mut self.inflight, &mut self.rx);
                tokio::select! {
                    biased;
                    r = async { (&mut inflight.front_mut().expect("not empty").ack).await },
                        if !inflight.is_empty() => Next::Ack(r),
                    item = rx.recv(), if room => Next::Item(item),
                }
            };
            match next {
                Next::Ack(Ok(ack)) => self.acked(&ack),
                Next::Ack(Err(e)) => self.recover(e).await,
                Next::Item(None) => return,
                Next::Item(Some(first)) => {
                    // Everything queued now, without waiting for more.
                    let mut item = Some(first);
                    while let Some(it) = item.take() {
                        match it {
                            Item::Part(p) => self.take(p).await,
                            Item::Flush(tx) => self.flush.push(tx),
                        }
                        item = self.rx.try_recv().ok();
                    }
                    for i in 0..self.open.len() {
                        self.close_batch(i).await;
                    }
                    self.answer_flush();
                }
            }
        }
    }

    /// The oldest message was not acknowledged: publish it again (same
    /// Msg-Id) until it is, then everything after it, in order; after
    /// `retry_for`, give the window up and close the sessions it was from.
    async fn recover(&mut self, first_error: String) {
        let since = Instant::now();
        let mut error = first_error;
        let mut backoff = Duration::from_millis(100);
        warn!(
            inflight = self.inflight.len(),
            "NATS: publish not acknowledged ({error}); retrying"
        );
        loop {
            if since.elapsed() >= self.retry_for {
                self.give_up(&error);
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let mut ack = publish(&self.js, &self.inflight[0].msg).await;
            match (&mut ack).await {
                Ok(a) => {
                    self.acked(&a);
                    // The rest again, in order: what the stream already
                    // holds is a duplicate it drops.
                    for i in 0..self.inflight.len() {
                        self.inflight[i].ack = publish(&self.js, &self.inflight[i].msg).await;
                    }
                    info!(
                        after = ?since.elapsed(),
                        republished = self.inflight.len() + 1,
                        "NATS: publishing again"
                    );
                    return;
                }
                Err(e) => error = e,
            }
        }
    }

    fn give_up(&mut self, why: &str) {
        let mut peers: Vec<usize> = self.inflight.iter().map(|e| e.msg.peer).collect();
        peers.sort_unstable();
        peers.dedup();
        let n: u64 = self.inflight.iter().map(|e| u64::from(e.msg.records)).sum();
        error!(
            "NATS: {n} message(s) not acknowledged for {:?} ({why}): closing the session(s) \
             they came from with Cease 6/8 (out of resources); the peers resend after reconnecting",
            self.retry_for
        );
        for e in self.inflight.drain(..) {
            self.room.add_permits(e.msg.permits as usize);
        }
        self.stats.failed.fetch_add(n, Ordering::Relaxed);
        for p in peers {
            if let Some(f) = self.failed.get(p) {
                f.send_replace(true);
            }
        }
        self.answer_flush();
    }
}
/// The headers of a message: once per message, whatever it holds.
fn headers(o: &Origin, first: u64, count: u32, at: f64, format: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_COLLECTOR, &*o.collector);
    h.insert(H_PEER, o.peer.to_string().as_str());
    h.insert(H_PEER_AS, o.peer_as.to_string().as_str());
    h.insert(H_LOCAL_AS, o.local_as.to_string().as_str());
    h.insert(H_TIMESTAMP, format!("{at:.6}").as_str());
    h.insert(H_SESSION, o.session.to_string().as_str());
    h.insert(H_SEQ, first.to_string().as_str());
    if count != 1 {
        h.insert(H_COUNT, count.to_string().as_str());
    }
    h.insert(H_FORMAT, format);
    if o.four_octet_as {
        h.insert(H_FOUR_OCTET_AS, "1");
    }
    h
}

/// The records of a message's payload: BGP messages one after the other
/// (`raw`, each delimited by the length in its 19-octet header, RFC 4271
/// §4.1), or JSON lines. A raw message with a bad length ends the list with
/// the rest of the payload (which then does not parse).
pub fn records(payload: &[u8], raw: bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if raw {
        let mut rest = payload;
        while !rest.is_empty() {
            let Some(len) = rest
                .get(16..18)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            else {
                out.push(rest);
                break;
            };
            if len < 19 || len > rest.len() {
                out.push(rest);
                break;
            }
            let (m, r) = rest.split_at(len);
            out.push(m);
            rest = r;
        }
    } else {
        out.extend(payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()));
    }
    out
}
