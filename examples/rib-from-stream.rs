//! `rib-from-stream`: the routes of every collector's peers, rebuilt in
//! memory from the NATS JetStream stream `collector --nats` publishes to.
//!
//! ```text
//! cargo run --release --example rib-from-stream -- --nats nats://127.0.0.1:4222
//! ```
//!
//! A durable pull consumer reads the stream from its first message (the
//! table is in memory, so a start reads everything again; while it runs,
//! the durable consumer carries it over reconnects and node losses). Each
//! record is applied once and in order per route: a message the consumer
//! is given again (same stream sequence), or a record that the stream holds
//! twice (same collector, peer, session and number; a batch of UPDATEs is
//! numbered from its `Bgp-Seq` header, `Bgp-Count` records), is skipped; a
//! newer session of a peer, or its `closed` event, clears the peer's
//! routes; an older session's messages are skipped. Both formats are read: `json` (the
//! collector's `update` objects, one a line) and `raw` (BGP UPDATEs one
//! after the other, decoded here with the same decoder and the same
//! attribute schema).
//!
//! SIGUSR1 prints a `rib` line (per peer: prefix count, session, message
//! number, gaps; `--routes` adds every route with its attributes), and so
//! does SIGTERM/SIGINT, before exiting 0.

#[path = "tools/common.rs"]
mod common;
#[path = "tools/nats.rs"]
mod nats;
#[path = "tools/schema.rs"]
mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use clap::Parser;
use common::{runtime_error, unix_now};
use corebgp_std::core::update::{PeerType, Prefix, Update, UpdateConfig};
use corebgp_std::core::wire::Message;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::{info, warn};

/// Rebuilds the routes of every collector's peers from a NATS JetStream
/// stream; prints them (counts, or with --routes every route) on SIGUSR1
/// and at exit.
#[derive(Parser, Debug)]
#[command(
    name = "rib-from-stream",
    version,
    after_help = "Output: a JSON `rib` line on SIGUSR1 and at exit (SIGTERM/SIGINT, exit 0); \
logs on stderr. Exit codes: 0 after a signal, 1 on a runtime failure, 2 on a usage error."
)]
struct Args {
    #[command(flatten)]
    conn: nats::ConnArgs,

    /// The durable consumer's name (recreated at start: the stream is read
    /// from its first message).
    #[arg(long, value_name = "NAME", default_value = "rib-from-stream")]
    durable: String,

    /// Put every route, with its attributes, in the `rib` lines.
    #[arg(long)]
    routes: bool,

    /// Log level on stderr (error, warn, info, debug, trace); RUST_LOG wins.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
}

/// A route: its prefix and ADD-PATH identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    addr: IpAddr,
    len: u8,
    path_id: Option<u32>,
}

impl Key {
    fn parse(prefix: &str, path_id: Option<u32>) -> Option<Self> {
        let (a, l) = prefix.split_once('/')?;
        Some(Self {
            addr: a.parse().ok()?,
            len: l.parse().ok()?,
            path_id,
        })
    }

    fn of(p: Prefix, path_id: Option<u32>) -> Self {
        let (addr, len) = match p {
            Prefix::V4(p) => (IpAddr::V4(p.addr()), p.len()),
            Prefix::V6(p) => (IpAddr::V6(p.addr()), p.len()),
        };
        Self { addr, len, path_id }
    }
}

/// One peer of one collector.
#[derive(Default)]
struct PeerRib {
    peer_as: u32,
    session: u64,
    /// Every message number up to `seen` was applied; `above` holds the
    /// ones applied past a gap.
    seen: u64,
    above: BTreeSet<u64>,
    /// The route's last message number, and its attributes (None:
    /// withdrawn; kept so that an older message cannot bring it back).
    routes: HashMap<Key, (u64, Option<Arc<str>>)>,
}

impl PeerRib {
    fn reset(&mut self, session: u64) {
        self.session = session;
        self.seen = 0;
        self.above.clear();
        self.routes.clear();
    }

    /// Records message `seq`; false if it was applied before.
    fn first_time(&mut self, seq: u64) -> bool {
        // In order, as a stream of one collector almost always is.
        if seq == self.seen + 1 && self.above.is_empty() {
            self.seen = seq;
            return true;
        }
        if seq <= self.seen || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&(self.seen + 1)) {
            self.seen += 1;
        }
        true
    }

    fn set(&mut self, key: Key, seq: u64, attrs: Option<Arc<str>>) {
        let e = self.routes.entry(key).or_insert((0, None));
        if seq >= e.0 {
            *e = (seq, attrs);
        }
    }

    fn prefixes(&self) -> usize {
        self.routes.values().filter(|(_, a)| a.is_some()).count()
    }
}

/// The `update` object, as far as the RIB needs it.
#[derive(Deserialize)]
struct UpdateIn<'a> {
    #[serde(borrow)]
    announced: Vec<RouteIn<'a>>,
    #[serde(borrow)]
    withdrawn: Vec<RouteIn<'a>>,
    #[serde(borrow)]
    attributes: &'a RawValue,
}

#[derive(Deserialize)]
struct RouteIn<'a> {
    prefix: &'a str,
    path_id: Option<u32>,
}

#[derive(Deserialize)]
struct EventIn<'a> {
    event: &'a str,
}

/// The in-memory state.
#[derive(Default)]
struct Rib {
    peers: BTreeMap<(String, IpAddr), PeerRib>,
    /// Attributes shared by many routes, stored once.
    pool: HashSet<Arc<str>>,
    /// The last UPDATE's raw attributes and their JSON (a table's UPDATEs
    /// often share them).
    last_raw: (Vec<u8>, Option<Arc<str>>),
    last_stream_seq: u64,
    applied: u64,
    records: u64,
    redelivered: u64,
    duplicates: u64,
    stale: u64,
    invalid: u64,
    pending: u64,
    last_applied_at: Option<f64>,
}

/// A message's headers, parsed.
struct Meta {
    collector: String,
    peer: IpAddr,
    peer_as: u32,
    local_as: u32,
    session: u64,
    seq: u64,
    count: u64,
    raw: bool,
    four_octet_as: bool,
}

fn meta(h: &async_nats::HeaderMap) -> Option<Meta> {
    let get = |n: &str| h.get(n).map(|v| v.as_str().to_owned());
    Some(Meta {
        collector: get(nats::H_COLLECTOR)?,
        peer: get(nats::H_PEER)?.parse().ok()?,
        peer_as: get(nats::H_PEER_AS)?.parse().ok()?,
        local_as: get(nats::H_LOCAL_AS)?.parse().ok()?,
        session: get(nats::H_SESSION)?.parse().ok()?,
        seq: get(nats::H_SEQ)?.parse().ok()?,
        count: match get(nats::H_COUNT) {
            Some(c) => c.parse().ok().filter(|c| *c >= 1)?,
            None => 1,
        },
        raw: get(nats::H_FORMAT)? == "raw",
        four_octet_as: get(nats::H_FOUR_OCTET_AS).is_some_and(|v| v == "1"),
    })
}

impl Rib {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.pool.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.pool.insert(a.clone());
        a
    }

    /// Applies one message; `Err` names why it cannot be read.
    fn apply(
        &mut self,
        stream_seq: u64,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) -> Result<(), String> {
        if stream_seq <= self.last_stream_seq {
            self.redelivered += 1;
            return Ok(());
        }
        self.last_stream_seq = stream_seq;
        let m = headers
            .and_then(meta)
            .ok_or("missing or bad Bgp-* headers")?;
        let key = (m.collector.clone(), m.peer);
        let p = self.peers.entry(key.clone()).or_default();
        if m.session < p.session {
            self.stale += 1;
            return Ok(());
        }
        if m.session > p.session {
            // A new session: the routes of the old one are gone.
            p.reset(m.session);
        }
        p.peer_as = m.peer_as;
        if subject.ends_with(".event") {
            if !p.first_time(m.seq) {
                self.duplicates += 1;
                return Ok(());
            }
            self.applied += 1;
            self.records += 1;
            self.last_applied_at = Some(unix_now());
            let e: EventIn<'_> =
                serde_json::from_slice(payload).map_err(|e| format!("event: {e}"))?;
            if e.event == "closed" {
                p.routes.clear();
            }
            return Ok(());
        }
        // A batch: records `seq`, `seq + 1`, …; each is applied once, even
        // if (against what a collector does) batches overlapped.
        let parts = nats::records(payload, m.raw);
        if parts.len() as u64 != m.count {
            return Err(format!("{} records, Bgp-Count {}", parts.len(), m.count));
        }
        let (mut fresh, mut error) = (0, None);
        for (i, part) in parts.into_iter().enumerate() {
            let seq = m.seq + i as u64;
            let p = self.peers.get_mut(&key).expect("entry made above");
            if !p.first_time(seq) {
                continue;
            }
            fresh += 1;
            let r = if m.raw {
                self.apply_raw(&key, &m, seq, part)
            } else {
                self.apply_json(&key, seq, part)
            };
            // One unreadable record does not take the rest of the batch.
            if let Err(e) = r {
                error.get_or_insert(format!("record {seq}: {e}"));
            }
        }
        if fresh == 0 {
            self.duplicates += 1;
            return Ok(());
        }
        self.applied += 1;
        self.records += fresh;
        self.last_applied_at = Some(unix_now());
        error.map_or(Ok(()), Err)
    }

    /// A JSON `update` object.
    fn apply_json(&mut self, key: &(String, IpAddr), seq: u64, line: &[u8]) -> Result<(), String> {
        let u: UpdateIn<'_> = serde_json::from_slice(line).map_err(|e| format!("update: {e}"))?;
        let attrs = self.intern(u.attributes.get());
        let p = self.peers.get_mut(key).expect("entry made by apply");
        for r in &u.withdrawn {
            let k = Key::parse(r.prefix, r.path_id).ok_or("bad prefix")?;
            p.set(k, seq, None);
        }
        for r in &u.announced {
            let k = Key::parse(r.prefix, r.path_id).ok_or("bad prefix")?;
            p.set(k, seq, Some(attrs.clone()));
        }
        Ok(())
    }

    /// A raw UPDATE: decoded as the collector decodes it (RFC 7606
    /// treat-as-withdraw included), attributes in the collector's schema.
    fn apply_raw(
        &mut self,
        key: &(String, IpAddr),
        m: &Meta,
        seq: u64,
        payload: &[u8],
    ) -> Result<(), String> {
        let Ok(Message::Update(sections)) = Message::parse(payload, usize::from(u16::MAX)) else {
            return Err("raw payload is not an UPDATE".into());
        };
        let mut cfg = UpdateConfig::new();
        cfg.four_octet_as = m.four_octet_as;
        cfg.peer = if m.peer_as == m.local_as {
            PeerType::Internal
        } else {
            PeerType::External
        };
        let u = Update::from_sections(sections, &cfg).map_err(|e| format!("UPDATE: {e}"))?;
        let withdraw_all = u.treat_as_withdraw().is_some();
        let attrs = if withdraw_all || u.announced_count() == 0 {
            None
        } else if self.last_raw.0 == sections.attributes && self.last_raw.1.is_some() {
            self.last_raw.1.clone()
        } else {
            let s = serde_json::to_string(&schema::attributes(&u)).map_err(|e| e.to_string())?;
            let a = self.intern(&s);
            self.last_raw = (sections.attributes.to_vec(), Some(a.clone()));
            Some(a)
        };
        let p = self.peers.get_mut(key).expect("entry made by apply");
        for (_, n) in u.withdrawals() {
            p.set(Key::of(n.prefix, n.path_id), seq, None);
        }
        for (_, n) in u.announced() {
            let a = if withdraw_all { None } else { attrs.clone() };
            p.set(Key::of(n.prefix, n.path_id), seq, a);
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct RibLine<'a> {
    event: &'static str,
    at: f64,
    /// Messages applied, given again (same stream sequence), held twice
    /// by the stream, of an older session, unreadable; records (UPDATEs and
    /// events: a message may hold a batch of UPDATEs) applied.
    applied: u64,
    records: u64,
    redelivered: u64,
    duplicates: u64,
    stale: u64,
    invalid: u64,
    /// The last stream sequence read, and what the server said was left.
    stream_seq: u64,
    pending: u64,
    last_applied_at: Option<f64>,
    peers: Vec<PeerLine<'a>>,
}

#[derive(Serialize)]
struct PeerLine<'a> {
    collector: &'a str,
    peer: IpAddr,
    peer_as: u32,
    session: u64,
    prefixes: usize,
    /// The highest message number applied with none missing below it, and
    /// the numbers applied past a missing one.
    seq: u64,
    gaps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Vec<RouteLine<'a>>>,
}

#[derive(Serialize)]
struct RouteLine<'a> {
    prefix: String,
    path_id: Option<u32>,
    attributes: &'a RawValue,
}

fn print(rib: &Rib, routes: bool) {
    let raws: Vec<Vec<(Key, Box<RawValue>)>> = if routes {
        rib.peers
            .values()
            .map(|p| {
                let mut v: Vec<(Key, Box<RawValue>)> = p
                    .routes
                    .iter()
                    .filter_map(|(k, (_, a))| {
                        let a = a.as_ref()?;
                        RawValue::from_string(a.to_string()).ok().map(|r| (*k, r))
                    })
                    .collect();
                v.sort_by_key(|a| a.0);
                v
            })
            .collect()
    } else {
        Vec::new()
    };
    let line = RibLine {
        event: "rib",
        at: unix_now(),
        applied: rib.applied,
        records: rib.records,
        redelivered: rib.redelivered,
        duplicates: rib.duplicates,
        stale: rib.stale,
        invalid: rib.invalid,
        stream_seq: rib.last_stream_seq,
        pending: rib.pending,
        last_applied_at: rib.last_applied_at,
        peers: rib
            .peers
            .iter()
            .enumerate()
            .map(|(i, ((c, peer), p))| PeerLine {
                collector: c,
                peer: *peer,
                peer_as: p.peer_as,
                session: p.session,
                prefixes: p.prefixes(),
                seq: p.seen,
                gaps: p.above.len(),
                routes: raws.get(i).map(|v| {
                    v.iter()
                        .map(|(k, a)| RouteLine {
                            prefix: format!("{}/{}", k.addr, k.len),
                            path_id: k.path_id,
                            attributes: a,
                        })
                        .collect()
                }),
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, &line).is_ok() {
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

fn main() {
    let args: Args = common::parse_args("rib-from-stream");
    if args.conn.nats.is_empty() {
        common::usage_error("--nats URL is required");
    }
    args.conn.validate();
    if args.durable.is_empty() || args.durable.contains(['.', '*', '>', ' ']) {
        common::usage_error(format!(
            "--durable '{}': a consumer name has no '.', '*', '>' or spaces",
            args.durable
        ));
    }
    common::init_logging(&args.log_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| runtime_error(format!("cannot start the runtime: {e}")));
    let code = rt.block_on(run(args));
    drop(rt);
    std::process::exit(code)
}

async fn run(args: Args) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut usr1), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        runtime_error("cannot install the signal handlers")
    };
    let client = args
        .conn
        .connect(&format!("corebgp rib-from-stream {}", args.durable))
        .await
        .unwrap_or_else(|e| runtime_error(e));
    let js = jetstream::new(client);
    let name = &args.conn.nats_stream;
    let stream = js
        .get_stream(name)
        .await
        .unwrap_or_else(|e| runtime_error(format!("stream {name}: {e}")));
    // The table lives in this process: read the stream from its start.
    let _ = stream.delete_consumer(&args.durable).await;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(args.durable.clone()),
            filter_subject: args.conn.wildcard(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| runtime_error(format!("consumer {}: {e}", args.durable)));
    info!(stream = %name, durable = %args.durable, "reading the stream");
    let mut rib = Rib::default();
    let mut last: Option<jetstream::Message> = None;
    let mut unacked = 0u32;
    'outer: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(1000)
            // A message may be a batch of up to --nats-batch-bytes: bound
            // what a pull brings at once by bytes too.
            .max_bytes_per_batch(8 << 20)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                warn!("consumer: {e}; again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = usr1.recv() => print(&rib, args.routes),
                _ = term.recv() => break 'outer,
                _ = int.recv() => break 'outer,
                m = tokio::time::timeout(Duration::from_millis(100), messages.next()) => match m {
                    // Idle: acknowledge what was applied (AckAll).
                    Err(_) => {
                        if let Some(l) = last.take() {
                            let _ = l.ack().await;
                            unacked = 0;
                        }
                    }
                    Ok(None) => continue 'outer,
                    Ok(Some(Err(e))) => warn!("consumer: {e}"),
                    Ok(Some(Ok(msg))) => {
                        let Ok(info) = msg.info() else {
                            rib.invalid += 1;
                            continue;
                        };
                        let (seq, pending) = (info.stream_sequence, info.pending);
                        rib.pending = pending;
                        if let Err(e) = rib.apply(seq, msg.subject.as_str(), msg.headers.as_ref(), &msg.payload) {
                            rib.invalid += 1;
                            warn!(stream_seq = seq, subject = %msg.subject, "skipped: {e}");
                        }
                        last = Some(msg);
                        unacked += 1;
                        if unacked >= 1000 && let Some(l) = last.take() {
                            let _ = l.ack().await;
                            unacked = 0;
                        }
                    }
                },
            }
        }
    }
    if let Some(l) = last.take() {
        let _ = l.ack().await;
    }
    print(&rib, args.routes);
    0
}
