//! NATS JetStream for `collector --nats` (publishing) and `rib-from-stream`
//! (consuming): the flags, the connection, the stream, the subjects and
//! headers, and the collector's publisher (acknowledged publishes, a bounded
//! window, retries, order kept).
//!
//! Subjects: `PREFIX.<collector-id>.<peer>.update` and `….event`, where
//! `<peer>` is the peer's address with `.` written `_` (a subject's token
//! separator). Every message carries the headers below; `Nats-Msg-Id` is
//! `<collector-id>.<peer>.<session>.<seq>`, so that a message published again
//! after a reconnect is dropped by the stream's duplicate window.

#![allow(dead_code)] // each tool uses its own subset

use std::collections::VecDeque;
use std::future::Future;
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
/// The message's number within its session, from 1.
pub const H_SEQ: &str = "Bgp-Seq";
/// `json` (the collector's JSON object) or `raw` (the BGP UPDATE message).
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

/// One message for the stream.
pub struct Msg {
    pub subject: String,
    pub id: String,
    pub headers: HeaderMap,
    pub payload: bytes::Bytes,
    /// The index of the peer it is about (to close its session on failure).
    pub peer: usize,
    /// It holds a place of the window (UPDATEs do; events never wait).
    pub permit: bool,
}

enum Item {
    Msg(Msg),
    /// Answered once everything sent before is acknowledged (or given up).
    Flush(oneshot::Sender<()>),
}

/// Counters for the `nats` stats line.
#[derive(Default)]
pub struct PubStats {
    pub published: AtomicU64,
    pub acked: AtomicU64,
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
        window: usize,
        retry_for: Duration,
        failed: Vec<Arc<watch::Sender<bool>>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(window));
        let stats = Arc::new(PubStats::default());
        let task = Task {
            js,
            rx,
            room: room.clone(),
            stats: stats.clone(),
            failed,
            retry_for,
            inflight: VecDeque::new(),
            flush: Vec::new(),
        };
        tokio::spawn(task.run());
        Self {
            tx,
            room,
            stats,
            window,
        }
    }

    /// Messages sent and not yet acknowledged (UPDATEs; events may add a few).
    pub fn inflight(&self) -> usize {
        self.window - self.room.available_permits()
    }

    /// Queues an UPDATE, waiting for room in the window (backpressure);
    /// fails when `failed` is raised meanwhile.
    pub async fn update(&self, mut m: Msg, failed: &watch::Sender<bool>) -> Result<(), Failed> {
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
        m.permit = true;
        self.tx.send(Item::Msg(m)).map_err(|_| Failed)
    }

    /// Queues an event: never waits (events are few), takes a place of the
    /// window when there is one.
    pub fn event(&self, mut m: Msg) {
        m.permit = match self.room.try_acquire() {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        };
        let _ = self.tx.send(Item::Msg(m));
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

/// Publishes `m`; the future completes with its acknowledgement.
async fn publish(js: &jetstream::Context, m: &Msg) -> AckFuture {
    let p = Publish::build()
        .payload(m.payload.clone())
        .headers(m.headers.clone())
        .message_id(&m.id);
    match js.send_publish(m.subject.clone(), p).await {
        Ok(f) => Box::pin(async move { f.await.map_err(|e| e.to_string()) }),
        Err(e) => {
            let e = e.to_string();
            Box::pin(async move { Err(e) })
        }
    }
}

impl Msg {
    /// A copy to publish again (the entry's ack future stays behind).
    fn again(&self) -> Msg {
        Msg {
            subject: self.subject.clone(),
            id: self.id.clone(),
            headers: self.headers.clone(),
            payload: self.payload.clone(),
            peer: self.peer,
            permit: self.permit,
        }
    }
}

impl Task {
    fn acked(&mut self, ack: &jetstream::publish::PublishAck) {
        let e = self
            .inflight
            .pop_front()
            .expect("an entry was acknowledged");
        if e.msg.permit {
            self.room.add_permits(1);
        }
        let s = &self.stats;
        s.acked.fetch_add(1, Ordering::Relaxed);
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

    async fn run(mut self) {
        enum Next {
            Ack(Result<jetstream::publish::PublishAck, String>),
            Item(Option<Item>),
        }
        loop {
            let next = {
                let (inflight, rx) = (&mut self.inflight, &mut self.rx);
                tokio::select! {
                    biased;
                    r = async { (&mut inflight.front_mut().expect("not empty").ack).await },
                        if !inflight.is_empty() => Next::Ack(r),
                    item = rx.recv() => Next::Item(item),
                }
            };
            match next {
                Next::Ack(Ok(ack)) => self.acked(&ack),
                Next::Ack(Err(e)) => self.recover(e).await,
                Next::Item(item) => match item {
                    Some(Item::Msg(m)) => {
                        let ack = publish(&self.js, &m).await;
                        self.stats.published.fetch_add(1, Ordering::Relaxed);
                        self.inflight.push_back(Entry { msg: m, ack });
                    }
                    Some(Item::Flush(tx)) => {
                        self.flush.push(tx);
                        self.answer_flush();
                    }
                    None => return,
                },
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
            let front = self.inflight[0].msg.again();
            let mut ack = publish(&self.js, &front).await;
            match (&mut ack).await {
                Ok(a) => {
                    self.acked(&a);
                    // The rest again, in order: what the stream already
                    // holds is a duplicate it drops.
                    for i in 0..self.inflight.len() {
                        let m = self.inflight[i].msg.again();
                        self.inflight[i].ack = publish(&self.js, &m).await;
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
        let n = self.inflight.len();
        error!(
            "NATS: {n} message(s) not acknowledged for {:?} ({why}): closing the session(s) \
             they came from with Cease 6/8 (out of resources); the peers resend after reconnecting",
            self.retry_for
        );
        for e in self.inflight.drain(..) {
            if e.msg.permit {
                self.room.add_permits(1);
            }
        }
        self.stats.failed.fetch_add(n as u64, Ordering::Relaxed);
        for p in peers {
            if let Some(f) = self.failed.get(p) {
                f.send_replace(true);
            }
        }
        self.answer_flush();
    }
}

/// The headers every message carries.
#[allow(clippy::too_many_arguments)]
pub fn headers(
    collector: &str,
    peer: std::net::IpAddr,
    peer_as: u32,
    local_as: u32,
    session: u64,
    seq: u64,
    format: &'static str,
    four_octet_as: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_COLLECTOR, collector);
    h.insert(H_PEER, peer.to_string().as_str());
    h.insert(H_PEER_AS, peer_as.to_string().as_str());
    h.insert(H_LOCAL_AS, local_as.to_string().as_str());
    h.insert(
        H_TIMESTAMP,
        format!("{:.6}", crate::common::unix_now()).as_str(),
    );
    h.insert(H_SESSION, session.to_string().as_str());
    h.insert(H_SEQ, seq.to_string().as_str());
    h.insert(H_FORMAT, format);
    if four_octet_as {
        h.insert(H_FOUR_OCTET_AS, "1");
    }
    h
}
