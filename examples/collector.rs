//! `collector`: what routers send, as JSON lines and MRT.
//!
//! ```text
//! cargo run --release --example collector -- \
//!     --router-id 192.0.2.1 --local-as 65000 --remote-as 65001 --peer 192.0.2.2
//! ```
//!
//! One JSON object per line on stdout (the schema is in the README's
//! "Tools" section and in `tools/schema.rs`), logs on stderr, and with
//! `--mrt` every received UPDATE, OPEN and NOTIFICATION and every state
//! change as RFC 6396 BGP4MP_ET records. `--stats` prints counters instead
//! of routes (the full-table mode: every UPDATE still decoded and checked).
//! SIGTERM/SIGINT close every session with Cease 6/2, flush, and exit 0.
//!
//! Nothing here keeps routes: each UPDATE is decoded in place from the
//! session's receive buffer and printed, as corebgp's plugins are meant to.

#[path = "tools/common.rs"]
mod common;
#[path = "tools/mrt.rs"]
mod mrt;
#[path = "tools/nats.rs"]
mod nats;
#[path = "tools/schema.rs"]
mod schema;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Parser;
use common::{LocalAddress, PeerSpec, SessionArgs, runtime_error, state_name, unix_now};
use corebgp_std::Server;
use corebgp_std::core::plugin::Plugin;
use corebgp_std::core::session::{
    CapabilitySet, Direction, DownReason, Event, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_std::core::update::{Action, Update, UpdateConfig};
use corebgp_std::core::wire::{
    AfiSafi, CeaseSubcode, Notification, NotificationCode, Open, UpdateSections,
    encode_update_sections,
};
use schema::{Output, PeerStats, Record, Route, UpdateRecord};
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

/// Collects BGP routes from one or more peers and prints them as JSON lines
/// (and/or writes MRT files). It announces nothing.
#[derive(Parser, Debug)]
#[command(
    name = "collector",
    version,
    after_help = "Output: one JSON object per line on stdout (see the README for the schema); \
logs on stderr. Exit codes: 0 after SIGTERM/SIGINT or a closed stdout, 1 on a runtime \
failure, 2 on a usage error."
)]
struct Args {
    #[command(flatten)]
    session: SessionArgs,

    /// Print only state, established, end_of_rib, notification and closed
    /// events, plus a stats line every --stats-interval (full-table mode).
    #[arg(long)]
    stats: bool,

    /// Seconds between stats lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    stats_interval: f64,

    /// Also write every received message and state change to FILE as MRT
    /// (RFC 6396 BGP4MP_ET records).
    #[arg(long, value_name = "FILE")]
    mrt: Option<PathBuf>,

    /// Start a new MRT file every SECONDS (named with the interval's UTC
    /// start); each file appears under its name only once complete.
    #[arg(long, value_name = "SECONDS", requires = "mrt",
          value_parser = clap::value_parser!(u64).range(1..))]
    mrt_rotate: Option<u64>,

    /// Print no JSON lines but the --stats ones (with --nats, the stream is
    /// the output).
    #[arg(long)]
    quiet: bool,

    #[command(flatten)]
    nats: nats::ConnArgs,

    /// This collector's name in the NATS subjects and Msg-Ids (default:
    /// the host name, dots written '_').
    #[arg(long, value_name = "ID", requires = "nats")]
    collector_id: Option<String>,

    /// What UPDATEs are published as: json (the object printed on stdout)
    /// or raw (the BGP message, with headers). Events are JSON.
    #[arg(long, value_enum, default_value_t = NatsFormat::Json, requires = "nats")]
    nats_format: NatsFormat,

    /// UPDATEs published and not yet acknowledged by JetStream, at most; a
    /// full window holds the peers back (TCP), it drops nothing.
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "nats",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nats_max_inflight: u32,

    /// UPDATEs per NATS message at most. The UPDATEs of a peer that are
    /// queued when the publisher gets to them go out as one message (raw:
    /// the BGP messages one after the other; json: JSON lines); a lone
    /// UPDATE goes at once, alone. 1: every UPDATE alone.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "nats",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    nats_batch: u32,

    /// Payload bytes per NATS message at most (a bigger UPDATE goes alone);
    /// below the server's max_payload (1 MiB by default).
    #[arg(long, value_name = "BYTES", default_value_t = 65536, requires = "nats",
          value_parser = clap::value_parser!(u32).range(4096..=64 * 1024 * 1024))]
    nats_batch_bytes: u32,

    /// Copies of the stream when the collector creates it (3 on a 3-node
    /// cluster); an existing stream is used as it is.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "nats",
          value_parser = clap::value_parser!(u8).range(1..=5))]
    nats_replicas: u8,

    /// How long an unacknowledged message is published again before the
    /// session it came from is closed with Cease 6/8 (out of resources); at
    /// most 60, half the stream's duplicate window.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "nats",
          value_parser = clap::value_parser!(u64).range(1..=60))]
    nats_retry_for: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum NatsFormat {
    Json,
    Raw,
}

/// One peer's side of the NATS output.
struct NatsPeer {
    publisher: nats::Publisher,
    /// Raised by the publisher when this peer's messages could not be
    /// published: the session closes (Cease 6/8) at the next UPDATE.
    failed: Arc<watch::Sender<bool>>,
    index: usize,
    collector: Arc<str>,
    update_subject: Arc<str>,
    event_subject: Arc<str>,
    raw: bool,
    /// The session number (nats::next_session) and the last record
    /// number in it.
    session: u64,
    seq: u64,
    /// A session began (at Established) and has not closed yet.
    in_session: bool,
    /// The headers' facts of the current session, shared by its records.
    origin: Option<Arc<nats::Origin>>,
}

impl NatsPeer {
    fn begin_session(&mut self) {
        if !self.in_session {
            self.in_session = true;
            self.session = nats::next_session();
            self.seq = 0;
        }
    }

    /// The next record of the session (numbered here, so that the order
    /// the stream gets is the order of the session).
    fn part(&mut self, spec: &PeerSpec, peer_as: u32, four: bool, payload: Vec<u8>) -> nats::Part {
        self.seq += 1;
        let origin = match &self.origin {
            Some(o)
                if o.session == self.session && o.peer_as == peer_as && o.four_octet_as == four =>
            {
                o.clone()
            }
            _ => {
                let o = Arc::new(nats::Origin {
                    collector: self.collector.clone(),
                    peer: spec.address,
                    peer_as,
                    local_as: spec.local_as,
                    session: self.session,
                    four_octet_as: four,
                    format: if self.raw { "raw" } else { "json" },
                    update_subject: self.update_subject.clone(),
                    event_subject: self.event_subject.clone(),
                    index: self.index,
                });
                self.origin = Some(o.clone());
                o
            }
        };
        nats::Part {
            origin,
            seq: self.seq,
            at: unix_now(),
            update: false,
            payload,
            permit: false,
        }
    }
}

/// One peer's counters, read by the stats task.
#[derive(Default)]
struct Counters {
    updates: AtomicU64,
    announced: AtomicU64,
    withdrawn: AtomicU64,
    bytes: AtomicU64,
    state: AtomicU8,
}

/// The MRT output, shared; a write error stops the collector (no silent loss).
struct Mrt {
    w: Mutex<mrt::MrtWriter>,
    failed: AtomicBool,
    /// The first error, for the exit message.
    error: Mutex<Option<String>>,
    stop: Arc<Notify>,
}

impl Mrt {
    fn with(&self, f: impl FnOnce(&mut mrt::MrtWriter) -> std::io::Result<()>) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let r = match self.w.lock() {
            Ok(mut w) => f(&mut w),
            Err(_) => Ok(()),
        };
        if let Err(e) = r {
            self.fail(&e);
        }
    }

    /// Keeps the first error and stops the collector.
    fn fail(&self, e: &std::io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            error!("MRT output failed: {e}");
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(e.to_string());
            }
        }
        self.stop.notify_one();
    }
}

/// The plugin of one peer.
struct Collector {
    spec: PeerSpec,
    out: Arc<Output>,
    mrt: Option<Arc<Mrt>>,
    stats_only: bool,
    counters: Arc<Counters>,
    local: LocalAddress,
    /// Decoding parameters of the Established session.
    cfg: UpdateConfig,
    four_octet_as: bool,
    peer_as: u32,
    /// The capabilities of the OPEN the peer sent (for `established`).
    peer_caps: Vec<String>,
    /// The connection that reached Established is inbound.
    inbound: bool,
    /// The session is Established (on the connection `inbound` names).
    established: bool,
    /// The direction of the connection of the last state change (for the
    /// records of a session not yet Established: the OPEN, a NOTIFICATION).
    last_inbound: bool,
    /// Our address on the Established session.
    local_ip: Option<IpAddr>,
    /// A `--listen` address of the peer's family that is not a wildcard:
    /// our address for a passive peer before any connection came in.
    listen_ip: Option<IpAddr>,
    /// Prefixes announced per family since Established (for `end_of_rib`).
    per_family: Vec<(AfiSafi, u64)>,
    /// Data of the NOTIFICATION we are about to send, when we chose it.
    sending: Option<(NotificationCode, Vec<u8>)>,
    buf: Vec<u8>,
    quiet: bool,
    nats: Option<NatsPeer>,
}

impl Collector {
    /// Who an MRT record is about, on a connection of this direction.
    fn endpoints(&self, inbound: bool) -> mrt::Endpoints {
        let local_ip = self
            .local_ip
            .filter(|_| self.established && inbound == self.inbound)
            .or_else(|| {
                // The address of the last accepted connection, once the
                // socket hook saw one (it differs from the fallback).
                let a = self.local.get(&self.spec, true);
                (inbound && a != self.local.get(&self.spec, false))
                    .then_some(a)
                    .flatten()
            })
            .or(self.spec.local_address)
            .or(if inbound { self.listen_ip } else { None })
            .or_else(|| common::source_address_for(self.spec.address))
            .unwrap_or(match self.spec.address {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            });
        mrt::Endpoints {
            peer_as: self.peer_as,
            local_as: self.spec.local_as,
            peer_ip: self.spec.address,
            local_ip,
        }
    }

    fn count(&mut self, family: AfiSafi) -> &mut u64 {
        let i = match self.per_family.iter().position(|(f, _)| *f == family) {
            Some(i) => i,
            None => {
                self.per_family.push((family, 0));
                self.per_family.len() - 1
            }
        };
        &mut self.per_family[i].1
    }

    fn notification(&mut self, direction: &'static str, n: &Notification<'_>) {
        self.emit(&Record::notification(self.spec.address, direction, n));
    }

    /// An event: on stdout (unless --quiet) and to the stream.
    fn emit(&mut self, r: &Record<'_>) {
        if !self.quiet {
            self.out.line(r);
        }
        if let Some(n) = &mut self.nats {
            match serde_json::to_vec(r) {
                Ok(v) => {
                    let p = n.part(&self.spec, self.peer_as, self.four_octet_as, v);
                    n.publisher.event(p);
                }
                Err(e) => error!("cannot encode an event: {e}"),
            }
        }
    }

    /// The stream did not take this peer's messages: close the session
    /// (RFC 4486 Cease 6/8, Out of Resources); the peer resends after the
    /// reconnect.
    fn out_of_resources<'m>(&mut self) -> Result<(), Notification<'m>> {
        if let Some(n) = &self.nats {
            n.failed.send_replace(false);
        }
        error!(
            peer = %self.spec.address,
            "NATS JetStream did not take this peer's messages: closing the session with Cease 6/8"
        );
        self.reset(Notification::new(NotificationCode::Cease(
            CeaseSubcode::OutOfResources,
        )))
    }

    /// Keeps the NOTIFICATION we return so that the `sent` line has its data.
    fn reset<'m>(&mut self, n: Notification<'m>) -> Result<(), Notification<'m>> {
        self.sending = Some((n.code, n.data.as_bytes().to_vec()));
        Err(n)
    }
}

impl OpenHooks for Collector {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        common::push_capabilities(caps);
    }

    fn check_open(
        &mut self,
        _: &PeerConfig,
        open: &Open<'_>,
        n: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        self.peer_caps = schema::capability_names(open);
        self.peer_as = n.peer_as;
        if let Some(m) = self.mrt.clone() {
            let mut buf = [0u8; 4096];
            if let Ok(len) = open.encode(&mut buf) {
                let e = self.endpoints(self.last_inbound);
                m.with(|w| w.message(SystemTime::now(), &e, n.four_octet_as, &buf[..len]));
            }
        }
        Ok(())
    }
}

impl Plugin for Collector {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        self.cfg = n.update_config(peer);
        self.four_octet_as = n.four_octet_as;
        self.peer_as = n.peer_as;
        self.per_family.clear();
        self.local_ip = self.local.get(&self.spec, self.inbound);
        self.established = true;
        self.counters
            .state
            .store(StateKind::Established as u8, Ordering::Relaxed);
        info!(peer = %self.spec.address, peer_as = n.peer_as, "established");
        if let Some(x) = &mut self.nats {
            x.begin_session();
        }
        let r = Record::Established {
            peer: self.spec.address,
            peer_as: n.peer_as,
            peer_id: n.peer_id.to_string(),
            hold_time: n.hold_time,
            capabilities: std::mem::take(&mut self.peer_caps),
            families: n.families.iter().map(|f| schema::family_name(*f)).collect(),
            local_address: self.local_ip,
            at: unix_now(),
        };
        self.emit(&r);
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        sections: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        let c = &self.counters;
        c.updates.fetch_add(1, Ordering::Relaxed);
        c.bytes
            .fetch_add(sections.encoded_len() as u64, Ordering::Relaxed);
        if self.nats.as_ref().is_some_and(|n| *n.failed.borrow()) {
            return self.out_of_resources();
        }
        let raw_nats = self.nats.as_ref().is_some_and(|n| n.raw);
        // The message as received: for the archive (whatever its verdict)
        // and for a raw stream.
        let mut raw_len = None;
        if self.mrt.is_some() || raw_nats {
            self.buf.resize(sections.encoded_len(), 0);
            raw_len = encode_update_sections(&sections, &mut self.buf, usize::from(u16::MAX)).ok();
        }
        if let (Some(m), Some(len)) = (self.mrt.clone(), raw_len) {
            let e = self.endpoints(self.inbound);
            let buf = &self.buf[..len];
            m.with(|w| w.message(SystemTime::now(), &e, self.four_octet_as, buf));
        }
        // RFC 7606: a session reset carries the NOTIFICATION the decoder
        // names; the tool never weakens it.
        let u = match Update::from_sections(sections, &self.cfg) {
            Ok(u) => u,
            Err(e) => {
                warn!(peer = %self.spec.address, "UPDATE error, session reset: {e}");
                return self.reset(e.notification);
            }
        };
        // RFC 4760 §7 lets a speaker disable the family or reset; keeping
        // no table, a collector cannot "delete the family's routes" for its
        // readers, so it resets and the peer resends.
        if let Some(e) = u.afi_safi_disable().next() {
            warn!(peer = %self.spec.address, "UPDATE error, session reset: {e}");
            let n = e.notification;
            return self.reset(n);
        }
        if let Some(family) = u.end_of_rib() {
            let prefixes = *self.count(family);
            self.emit(&Record::EndOfRib {
                peer: self.spec.address,
                afi: schema::afi_name(family.afi),
                safi: schema::safi_name(family.safi),
                prefixes,
                at: unix_now(),
            });
            return Ok(());
        }
        let withdraw_all = u.treat_as_withdraw().is_some();
        let mut announced = 0u64;
        if !withdraw_all {
            for (family, _) in u.announced() {
                *self.count(family) += 1;
                announced += 1;
            }
        }
        let withdrawn =
            (u.withdrawn_count() + if withdraw_all { u.announced_count() } else { 0 }) as u64;
        let c = &self.counters;
        c.announced.fetch_add(announced, Ordering::Relaxed);
        c.withdrawn.fetch_add(withdrawn, Ordering::Relaxed);
        if raw_nats && let (Some(n), Some(len)) = (&mut self.nats, raw_len) {
            let p = n.part(
                &self.spec,
                self.peer_as,
                self.four_octet_as,
                self.buf[..len].to_vec(),
            );
            if n.publisher.update(p, &n.failed).await.is_err() {
                return self.out_of_resources();
            }
        } else if raw_nats {
            // A received UPDATE always re-encodes; never drop one silently.
            error!(peer = %self.spec.address, "cannot re-encode an UPDATE for the stream");
            return self.out_of_resources();
        }
        let json_nats = self.nats.is_some() && !raw_nats;
        let print = !self.stats_only && !self.quiet;
        if !print && !json_nats {
            return Ok(());
        }
        let route = |(_, n): (AfiSafi, corebgp_std::core::update::Nlri)| Route {
            prefix: n.prefix.to_string(),
            path_id: n.path_id,
        };
        let mut rec = UpdateRecord {
            peer: self.spec.address,
            at: unix_now(),
            announced: Vec::new(),
            withdrawn: u.withdrawals().map(route).collect(),
            attributes: schema::attributes(&u),
            treat_as_withdraw: None,
            discarded: Vec::new(),
        };
        if let Some(e) = u.treat_as_withdraw() {
            // RFC 7606 §2: every announced route of this UPDATE is withdrawn.
            rec.withdrawn.extend(u.announced().map(route));
            rec.treat_as_withdraw = Some(match e.type_code {
                Some(t) => format!("{:?} in {}", e.kind, schema::attribute_name(t)),
                None => format!("{:?}", e.kind),
            });
        } else {
            rec.announced = u.announced().map(route).collect();
        }
        if u.action() == Some(Action::AttributeDiscard) || u.attribute_discard().is_some() {
            rec.discarded = u.discarded().iter().map(schema::attribute_name).collect();
        }
        let rec = Record::Update(Box::new(rec));
        if print {
            self.out.line(&rec);
        }
        if json_nats && let Some(n) = &mut self.nats {
            // One JSON line: a batch is JSON lines.
            let mut v = Vec::with_capacity(256);
            if let Err(e) = serde_json::to_writer(&mut v, &rec) {
                error!("cannot encode an UPDATE: {e}");
                return self.out_of_resources();
            }
            v.push(b'\n');
            let p = n.part(&self.spec, self.peer_as, self.four_octet_as, v);
            if n.publisher.update(p, &n.failed).await.is_err() {
                return self.out_of_resources();
            }
        }
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.notification("received", n);
        if let Some(m) = self.mrt.clone() {
            let mut buf = [0u8; 4096];
            if let Ok(len) = n.encode(&mut buf) {
                let inbound = if self.established {
                    self.inbound
                } else {
                    self.last_inbound
                };
                let e = self.endpoints(inbound);
                m.with(|w| w.message(SystemTime::now(), &e, self.four_octet_as, &buf[..len]));
            }
        }
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        match e {
            Event::StateChanged {
                direction,
                from,
                to,
            } => {
                let inbound = *direction == Direction::Inbound;
                self.last_inbound = inbound;
                if *to == StateKind::Established {
                    self.inbound = inbound;
                    if let Some(x) = &mut self.nats {
                        x.begin_session();
                    }
                }
                self.emit(&Record::State {
                    peer: self.spec.address,
                    connection: if inbound { "inbound" } else { "outbound" },
                    from: state_name(*from),
                    to: state_name(*to),
                    at: unix_now(),
                });
                if let Some(m) = self.mrt.clone() {
                    let ep = self.endpoints(inbound);
                    let (a, b) = (mrt_state(*from), mrt_state(*to));
                    m.with(|w| w.state_change(SystemTime::now(), &ep, a, b));
                }
                if *to != StateKind::Established && *from == StateKind::Established {
                    self.established = false;
                    self.counters.state.store(*to as u8, Ordering::Relaxed);
                }
            }
            Event::NotificationSent { code, .. } => {
                let data = match self.sending.take() {
                    Some((c, d)) if c == *code => d,
                    _ => Vec::new(),
                };
                self.notification("sent", &Notification::with_data(*code, &data));
            }
            _ => {}
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        let (line, reason) = Record::closed(self.spec.address, reason);
        info!(peer = %self.spec.address, reason, "session closed");
        self.established = false;
        self.counters
            .state
            .store(StateKind::Idle as u8, Ordering::Relaxed);
        self.emit(&line);
        if let Some(x) = &mut self.nats {
            x.in_session = false;
        }
    }
}

/// RFC 6396 §4.4.1 state numbers.
fn mrt_state(s: StateKind) -> u16 {
    match s {
        StateKind::Idle => 1,
        StateKind::Connect => 2,
        StateKind::Active => 3,
        StateKind::OpenSent => 4,
        StateKind::OpenConfirm => 5,
        StateKind::Established => 6,
    }
}

fn state_of(v: u8) -> &'static str {
    match v {
        x if x == StateKind::Established as u8 => "established",
        _ => "down",
    }
}

fn stats_line(out: &Output, peers: &[(IpAddr, Arc<Counters>)]) {
    let peers = peers
        .iter()
        .map(|(a, c)| PeerStats {
            peer: *a,
            state: state_of(c.state.load(Ordering::Relaxed)),
            updates: c.updates.load(Ordering::Relaxed),
            announced: c.announced.load(Ordering::Relaxed),
            withdrawn: c.withdrawn.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        })
        .collect();
    out.line(&Record::Stats {
        at: unix_now(),
        peers,
    });
}

/// The shortest and longest `--stats-interval` (tokio's timers count
/// milliseconds; past 10^18 s a Duration or an Instant would overflow).
const STATS_INTERVAL: (f64, f64) = (0.001, 1e18);

fn main() {
    let args: Args = common::parse_args("collector");
    let (min, max) = STATS_INTERVAL;
    // `!(…)` also refuses NaN.
    if !(args.stats_interval >= min && args.stats_interval <= max) {
        common::usage_error(format!(
            "--stats-interval {}: must be a number of seconds from {min} to {max:e}",
            args.stats_interval
        ));
    }
    args.nats.validate();
    if let Some(id) = &args.collector_id
        && (id.is_empty() || id.contains(['.', '*', '>']) || id.contains(char::is_whitespace))
    {
        common::usage_error(format!(
            "--collector-id '{id}': one subject token, without '.', '*', '>' or spaces"
        ));
    }
    common::init_logging(&args.session.log_level);
    // A socket per peer: the usual soft limit (1,024) would stop the
    // collector near a thousand peers; the hard limit is what the system
    // allows (20,000 on the project's test machine).
    if let Err(e) = corebgp_std::raise_open_file_limit() {
        warn!(error = %e, "cannot raise the open-file limit");
    }
    let setup = args.session.resolve();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| runtime_error(format!("cannot start the runtime: {e}")));
    let code = rt.block_on(run(args, setup));
    drop(rt);
    std::process::exit(code)
}

async fn run(args: Args, setup: common::Setup) -> i32 {
    // SIGTERM/SIGINT handlers before anything a stop must clean up exists
    // (sessions, the MRT file): the first poll installs them.
    let mut signals = std::pin::pin!(common::stop_signal());
    if tokio::select! {
        biased;
        _ = &mut signals => true,
        () = std::future::ready(()) => false,
    } {
        return 0;
    }
    let stop = Arc::new(Notify::new());
    let out = Arc::new(Output::new(Some(stop.clone())));
    // NATS first: a stream that cannot be used stops the start.
    let failed: Vec<Arc<watch::Sender<bool>>> = setup
        .peers
        .iter()
        .map(|_| Arc::new(watch::channel(false).0))
        .collect();
    let collector_id: Arc<str> = args.collector_id.clone().unwrap_or_else(host_name).into();
    let publisher = if args.nats.nats.is_empty() {
        None
    } else {
        let client = args
            .nats
            .connect(&format!("corebgp collector {collector_id}"))
            .await
            .unwrap_or_else(|e| runtime_error(e));
        // A batch must fit in a message the server takes (with its headers).
        let max_payload = client.server_info().max_payload;
        if args.nats_batch_bytes as usize + 4096 > max_payload {
            runtime_error(format!(
                "--nats-batch-bytes {}: more than the server's max_payload {max_payload} less 4096 for the headers",
                args.nats_batch_bytes
            ));
        }
        let mut js = async_nats::jetstream::new(client);
        // An acknowledgement later than this is asked for again (same Msg-Id).
        js.set_timeout(Duration::from_secs(3));
        nats::ensure_stream(&js, &args.nats, usize::from(args.nats_replicas))
            .await
            .unwrap_or_else(|e| runtime_error(e));
        info!(
            stream = %args.nats.nats_stream,
            prefix = %args.nats.nats_subject,
            collector = %collector_id,
            "publishing to NATS JetStream"
        );
        Some(nats::Publisher::start(
            js,
            nats::Batching {
                window: args.nats_max_inflight as usize,
                max_records: args.nats_batch as usize,
                max_bytes: args.nats_batch_bytes as usize,
            },
            Duration::from_secs(args.nats_retry_for),
            failed.clone(),
        ))
    };
    // What may fail at start-up fails before the MRT output exists, so that
    // a failed start leaves no (hidden, partial) file behind.
    let listeners = common::bind_listeners(&setup.listen).await;
    let server = Server::new(setup.router_id).unwrap_or_else(|e| runtime_error(e));
    let mrt = args.mrt.as_ref().map(|path| {
        let w = mrt::MrtWriter::open(path, args.mrt_rotate.map(Duration::from_secs))
            .unwrap_or_else(|e| runtime_error(format!("--mrt {}: {e}", path.display())));
        Arc::new(Mrt {
            w: Mutex::new(w),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            stop: stop.clone(),
        })
    });
    let mut counters = Vec::new();
    for (index, spec) in setup.peers.iter().enumerate() {
        let c = Arc::new(Counters::default());
        counters.push((spec.address, c.clone()));
        let local = LocalAddress::default();
        let opts = spec.options().socket_hook(local.hook());
        let plugin = Collector {
            spec: spec.clone(),
            out: out.clone(),
            mrt: mrt.clone(),
            stats_only: args.stats,
            counters: c,
            local,
            cfg: UpdateConfig::new(),
            four_octet_as: true,
            peer_as: spec.remote_as,
            peer_caps: Vec::new(),
            inbound: false,
            established: false,
            last_inbound: spec.passive,
            local_ip: None,
            listen_ip: setup
                .listen
                .iter()
                .map(|a| a.ip().to_canonical())
                .find(|ip| !ip.is_unspecified() && ip.is_ipv4() == spec.address.is_ipv4()),
            per_family: Vec::new(),
            sending: None,
            buf: Vec::new(),
            quiet: args.quiet,
            nats: publisher.as_ref().map(|p| {
                let base = format!(
                    "{}.{collector_id}.{}",
                    args.nats.nats_subject,
                    nats::peer_token(spec.address)
                );
                NatsPeer {
                    publisher: p.clone(),
                    failed: failed[index].clone(),
                    index,
                    collector: collector_id.clone(),
                    update_subject: format!("{base}.update").into(),
                    event_subject: format!("{base}.event").into(),
                    raw: args.nats_format == NatsFormat::Raw,
                    // The events before the first Established belong to
                    // a session number of their own.
                    session: nats::next_session(),
                    seq: 0,
                    in_session: false,
                    origin: None,
                }
            }),
        };
        common::add_peer_or_exit(&server, spec, plugin, opts);
    }
    info!(
        peers = setup.peers.len(),
        listeners = setup.listen.len(),
        "collector started"
    );
    let s = server.clone();
    let serving = tokio::spawn(async move { s.serve(listeners).await });

    let ticker = {
        let (out, mrt, counters) = (out.clone(), mrt.clone(), counters.clone());
        let publisher = publisher.clone();
        // Validated in main(): at least a millisecond, no overflow.
        let every = Duration::from_secs_f64(args.stats_interval);
        let mut stats = args
            .stats
            .then(|| tokio::time::Instant::now().checked_add(every))
            .flatten()
            .map(|first| {
                let mut i = tokio::time::interval_at(first, every);
                // A late line is printed once, not caught up in a burst.
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                i
            });
        tokio::spawn(async move {
            // MRT: rotation and flushing, every second.
            let mut second = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = second.tick() => {
                        if let Some(m) = &mrt {
                            m.with(|w| w.tick(SystemTime::now()));
                        }
                    }
                    _ = async {
                        match &mut stats {
                            Some(i) => { i.tick().await; }
                            None => std::future::pending().await,
                        }
                    } => {
                        stats_line(&out, &counters);
                        nats_line(&out, publisher.as_ref());
                    }
                }
            }
        })
    };

    let why = tokio::select! {
        s = &mut signals => format!("{s:?}"),
        _ = stop.notified() => "output".into(),
        r = serving => match r {
            Ok(Err(e)) => { error!("serve: {e}"); "serve".into() }
            _ => "serve".into(),
        },
    };
    info!("stopping ({why}): Cease 6/2 to every peer");
    // Cease 6/2 (RFC 4486 Administrative Shutdown), bounded by the server.
    server.close().await;
    ticker.abort();
    // What the sessions left in the window, acknowledged before the exit.
    let mut unacked = None;
    if let Some(p) = &publisher {
        let failed = p.stats.failed.load(Ordering::Relaxed);
        if !p.flush(Duration::from_secs(10)).await {
            unacked = Some(p.inflight() as u64);
        } else {
            // Given up during the stop: no session is left to close for them.
            let lost = p.stats.failed.load(Ordering::Relaxed) - failed;
            unacked = (lost > 0).then_some(lost);
        }
    }
    if args.stats {
        stats_line(&out, &counters);
        nats_line(&out, publisher.as_ref());
    }
    let mut failure = None;
    if let Some(m) = &mrt {
        let finished = match m.w.lock() {
            Ok(mut w) => w.finish(),
            Err(_) => Ok(()),
        };
        if let Err(e) = finished {
            m.fail(&e);
        }
        failure = m.error.lock().ok().and_then(|e| e.clone());
    }
    out.flush();
    // A lost MRT record is a failure, said on stderr whatever the log level.
    if let (Some(e), Some(path)) = (failure, &args.mrt) {
        runtime_error(format!("--mrt {}: {e}", path.display()));
    }
    if let Some(n) = unacked {
        runtime_error(format!(
            "--nats: {n} message(s) not acknowledged by JetStream at the stop"
        ));
    }
    0
}

/// The `nats` line (with --stats): the publisher's counters.
fn nats_line(out: &Output, p: Option<&nats::Publisher>) {
    let Some(p) = p else { return };
    let s = &p.stats;
    let last = s.last_ack_us.load(Ordering::Relaxed);
    out.line(&Record::Nats {
        at: unix_now(),
        published: s.published.load(Ordering::Relaxed),
        acked: s.acked.load(Ordering::Relaxed),
        messages: s.messages.load(Ordering::Relaxed),
        duplicates: s.duplicates.load(Ordering::Relaxed),
        retries: s.retries.load(Ordering::Relaxed),
        failed: s.failed.load(Ordering::Relaxed),
        inflight: p.inflight() as u64,
        last_ack_at: (last > 0).then(|| last as f64 / 1e6),
    });
}

/// The host name as one subject token.
fn host_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim().replace(['.', '*', '>', ' '], "_");
    if h.is_empty() { "collector".into() } else { h }
}
