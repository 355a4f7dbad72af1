//! `announcer`: announce prefixes to BGP peers, ExaBGP-style anycast.
//!
//! ```text
//! cargo run --release --example announcer -- \
//!     --router-id 192.0.2.1 --local-as 65001 --remote-as 65000 --peer 192.0.2.254 \
//!     192.0.2.0/24 '2001:db8::/48 communities 65001:1' --file routes.txt \
//!     --health-check 'curl -fs http://localhost/health' --interval 2 --rise 3 --fall 2
//! ```
//!
//! * Routes come from the command line and `--file` (syntax in
//!   `tools/routes.rs`): prefix, then optional `next-hop`, `communities`,
//!   `large-communities`, `med`, `local-pref`, `as-path`.
//! * Once a session is Established everything is announced (routes with
//!   equal attributes share UPDATEs), then End-of-RIB for each negotiated
//!   family; again after every reconnect; a ROUTE-REFRESH re-announces its
//!   family.
//! * `--health-check CMD`: `sh -c CMD` every `--interval` (its output
//!   discarded; killed with what it started after `--timeout`, which
//!   counts as a failure); the first result decides whether the routes go
//!   out, then `--fall` failures in a row withdraw them (the sessions stay
//!   up) and `--rise` successes announce them again.
//! * SIGHUP re-reads `--file` and sends only the difference; SIGTERM or
//!   SIGINT withdraw every route, wait until the withdrawals are handed to
//!   the sessions, then close them with Cease 6/2 and exit 0.
//!
//! stdout carries JSON lines only (`established`, `closed`,
//! `notification`, `health`, `reload`; `tools/schema.rs`); logs go to
//! stderr.

#[path = "tools/common.rs"]
mod common;
#[path = "tools/routes.rs"]
mod routes;
#[path = "tools/schema.rs"]
mod schema;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{LocalAddress, PeerSpec, SessionArgs, runtime_error, unix_now, usage_error};
use corebgp_std::core::plugin::Plugin;
use corebgp_std::core::session::{
    CapabilitySet, Direction, DownReason, Event, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_std::core::update::Prefix;
use corebgp_std::core::wire::{
    Afi, AfiSafi, Capability, ExtendedNextHopEntry, List, Notification, Open, RouteRefresh,
    UpdateSections,
};
use corebgp_std::{Server, UpdateQueue, UpdateWriter, update_queue};
use routes::{Route, SessionParams, Table};
use schema::{Output, Record};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// How long SIGTERM waits for the withdrawals to be handed to the sessions.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(10);

/// Announces routes to BGP peers (and withdraws them on a failing health
/// check, on SIGHUP when they left --file, and on SIGTERM before closing).
#[derive(Parser, Debug)]
#[command(
    name = "announcer",
    version,
    after_help = "Route syntax (arguments and --file lines): PREFIX [next-hop ADDRESS|self] \
[communities ASN:N[,…]] [large-communities A:B:C[,…]] [med N] [local-pref N] \
[as-path \"ASN …\"]; in a file one route per line, '#' comments. Next hops: a route's own, \
else --next-hop4/--next-hop6, else the session's local address (IPv4 routes on an IPv6 \
session: RFC 8950 where the peer supports it; IPv6 routes on an IPv4 session: the host's \
global IPv6 address). Output: JSON lines on stdout (established, closed, notification, \
health, reload), logs on stderr. Signals: SIGHUP re-reads --file; SIGTERM/SIGINT withdraw \
every route, close with Cease 6/2 and exit 0. Exit codes: 1 on a runtime failure, 2 on a \
usage error."
)]
struct Args {
    #[command(flatten)]
    session: SessionArgs,

    /// Routes to announce: PREFIX, optionally followed by keywords (quote a
    /// whole route or not: a new route starts at each prefix).
    #[arg(value_name = "ROUTE")]
    routes: Vec<String>,

    /// Also announce the routes of FILE (one per line); re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Next hop of IPv4 routes that give none (default: the session's
    /// local address).
    #[arg(long, value_name = "A.B.C.D")]
    next_hop4: Option<Ipv4Addr>,

    /// Next hop of IPv6 routes that give none (default: the session's
    /// IPv6 local address, or on IPv4 sessions the host's first global
    /// IPv6 address).
    #[arg(long, value_name = "ADDRESS")]
    next_hop6: Option<Ipv6Addr>,

    /// Announce only while `sh -c COMMAND` succeeds (exit status 0; its
    /// output is discarded).
    #[arg(long, value_name = "COMMAND")]
    health_check: Option<String>,

    /// Seconds between health checks [default: 5].
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,

    /// Successes in a row that announce the routes again [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rise: Option<u32>,

    /// Failures in a row that withdraw the routes [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    fall: Option<u32>,

    /// Seconds a check may run before it is killed and counts as failed
    /// [default: --interval].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
}

/// What the plugins, the health check and the signals tell the controller.
enum Ev {
    /// A session of peer `idx` reached Established.
    Up { idx: usize, session: Box<Session> },
    /// That session ended.
    Down { idx: usize },
    /// The peer asked for a family again.
    Refresh { idx: usize, family: AfiSafi },
    /// A health check result, with what it said.
    Health { ok: bool, detail: String },
}

/// One Established episode of a peer, as the controller keeps it.
struct Session {
    writer: UpdateWriter,
    params: SessionParams,
    /// IPv4/IPv6 unicast, where negotiated.
    families: Vec<AfiSafi>,
    /// What this session was sent (the configured routes), by prefix.
    advertised: Table,
    eor_sent: bool,
    /// Routes of a family the peer did not negotiate were reported.
    warned_family: bool,
}

/// Messages for one peer's writer task.
struct Job {
    writer: UpdateWriter,
    messages: Vec<Vec<u8>>,
    /// Logged once the messages are queued.
    summary: String,
    done: Option<oneshot::Sender<()>>,
}

/// The plugin of one peer: hands each Established session to the
/// controller and sends nothing itself.
struct Announcer {
    idx: usize,
    spec: PeerSpec,
    queue: Arc<UpdateQueue>,
    local: LocalAddress,
    inbound: bool,
    next_hop4: Option<Ipv4Addr>,
    next_hop6: Option<Ipv6Addr>,
    events: mpsc::UnboundedSender<Ev>,
    out: Arc<Output>,
    peer_caps: Vec<String>,
}

impl OpenHooks for Announcer {
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
        const ENH: [ExtendedNextHopEntry; 1] = [ExtendedNextHopEntry {
            family: AfiSafi::IPV4_UNICAST,
            next_hop_afi: Afi::Ipv6,
        }];
        common::push_capabilities(caps);
        // RFC 8950: IPv4 routes with our IPv6 address as next hop.
        if peer.remote_address.is_ipv6() {
            let _ = caps.push(&Capability::ExtendedNextHop(List::Items(&ENH)));
        }
    }

    fn check_open(
        &mut self,
        _: &PeerConfig,
        open: &Open<'_>,
        _: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        self.peer_caps = schema::capability_names(open);
        Ok(())
    }
}

impl Plugin for Announcer {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        let local = self.local.get(&self.spec, self.inbound);
        let mut cfg = n.update_config(peer);
        let Ok(writer) = UpdateWriter::new(self.queue.clone()) else {
            warn!(peer = %self.spec.address, "Established, but the UPDATE queue is closed");
            return;
        };
        let max = writer
            .max_message_len()
            .min(usize::from(cfg.max_message_len));
        cfg.max_message_len = u16::try_from(max).unwrap_or(u16::MAX);
        let families: Vec<AfiSafi> = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
            .into_iter()
            .filter(|f| n.has_family(*f))
            .collect();
        let extended_v4 = cfg.extended_next_hop.contains(AfiSafi::IPV4_UNICAST);
        let params = SessionParams {
            local_as: self.spec.local_as,
            ibgp: peer.local_as == peer.remote_as,
            next_hops: routes::NextHops::for_session(
                local,
                self.next_hop4,
                self.next_hop6,
                routes::host_global_ipv6(),
                extended_v4,
            ),
            cfg,
        };
        info!(
            peer = %self.spec.address,
            peer_as = n.peer_as,
            local = ?local,
            extended_next_hop = extended_v4,
            "established"
        );
        self.out.line(&Record::Established {
            peer: self.spec.address,
            peer_as: n.peer_as,
            peer_id: n.peer_id.to_string(),
            hold_time: n.hold_time,
            capabilities: std::mem::take(&mut self.peer_caps),
            families: n.families.iter().map(|f| schema::family_name(*f)).collect(),
            local_address: local,
            at: unix_now(),
        });
        let session = Box::new(Session {
            writer,
            params,
            families,
            advertised: Table::new(),
            eor_sent: false,
            warned_family: false,
        });
        let _ = self.events.send(Ev::Up {
            idx: self.idx,
            session,
        });
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        // An announcer keeps no table: what the peer sends is ignored.
        Ok(())
    }

    fn on_route_refresh(&mut self, _: &PeerConfig, request: &RouteRefresh<'_>) {
        debug!(peer = %self.spec.address, family = %schema::family_name(request.family), "ROUTE-REFRESH");
        let _ = self.events.send(Ev::Refresh {
            idx: self.idx,
            family: request.family,
        });
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.out
            .line(&Record::notification(self.spec.address, "received", n));
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        match e {
            Event::StateChanged { direction, to, .. } if *to == StateKind::Established => {
                self.inbound = *direction == Direction::Inbound;
            }
            Event::NotificationSent { code, .. } => {
                self.out.line(&Record::notification(
                    self.spec.address,
                    "sent",
                    &Notification::new(*code),
                ));
            }
            _ => {}
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        let (line, name) = Record::closed(self.spec.address, reason);
        info!(peer = %self.spec.address, reason = name, "session closed");
        self.out.line(&line);
        let _ = self.events.send(Ev::Down { idx: self.idx });
    }
}

/// Writes one peer's jobs, in order, on their sessions.
async fn writer_task(peer: IpAddr, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        let mut sent = 0;
        for m in &job.messages {
            match job.writer.send(m).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    let left = job.messages.len() - sent;
                    debug!(%peer, "{left} UPDATEs not sent: {e}");
                    break;
                }
            }
        }
        if sent == job.messages.len() && !job.summary.is_empty() {
            info!(%peer, "{}", job.summary);
        }
        if let Some(d) = job.done {
            let _ = d.send(());
        }
    }
}

/// One configured peer.
struct PeerSlot {
    address: IpAddr,
    queue: Arc<UpdateQueue>,
    jobs: mpsc::UnboundedSender<Job>,
    session: Option<Box<Session>>,
}

/// Owns the routes, the health state and the sessions; decides what each
/// session is sent.
struct Controller {
    peers: Vec<PeerSlot>,
    /// The command line's routes (kept for reloads) and the whole table.
    arg_routes: Vec<Route>,
    table: Table,
    file: Option<PathBuf>,
    /// `None` without a health check (always up).
    health: Option<routes::Health>,
    stopping: bool,
    out: Arc<Output>,
}

impl Controller {
    fn announcing(&self) -> bool {
        !self.stopping && self.health.as_ref().is_none_or(|h| h.up == Some(true))
    }

    /// Whether the routes' fate is known (End-of-RIB may go out).
    fn decided(&self) -> bool {
        !self.stopping && self.health.as_ref().is_none_or(|h| h.up.is_some())
    }

    /// Brings peer `idx`'s session to what it should have: withdraws what
    /// it should no longer have, announces what is new or changed, then
    /// End-of-RIB once. Returns a receiver that completes once the
    /// messages are queued.
    fn sync(&mut self, idx: usize) -> Option<oneshot::Receiver<()>> {
        let empty = Table::new();
        let desired = if self.announcing() {
            &self.table
        } else {
            &empty
        };
        let decided = self.decided();
        let slot = self.peers.get_mut(idx)?;
        let address = slot.address;
        let s = slot.session.as_mut()?;
        let mut withdraw: Vec<Prefix> = s
            .advertised
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        let (wanted, unsupported): (Vec<&Route>, Vec<&Route>) = desired
            .values()
            .filter(|r| s.advertised.get(&r.prefix) != Some(*r))
            .partition(|r| s.families.contains(&r.family()));
        if !unsupported.is_empty() && !s.warned_family {
            s.warned_family = true;
            warn!(
                peer = %address,
                "{} routes not announced: the peer did not negotiate their family (e.g. {})",
                unsupported.len(),
                unsupported[0].prefix
            );
        }
        let a = routes::build_announcements(wanted.iter().copied(), &s.params);
        if !a.failed.is_empty() {
            let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (p, why) in &a.failed {
                by_reason.entry(why).or_default().push(p.to_string());
            }
            for (why, ps) in by_reason {
                let shown: Vec<&str> = ps.iter().take(5).map(String::as_str).collect();
                error!(
                    peer = %address,
                    "{} routes not announced ({}{}): {why}",
                    ps.len(),
                    shown.join(" "),
                    if ps.len() > 5 { " …" } else { "" }
                );
            }
            // A changed route that cannot go out must not stay out in its
            // old form.
            for (p, _) in &a.failed {
                if s.advertised.contains_key(p) {
                    withdraw.push(*p);
                }
            }
        }
        let mut messages = routes::build_withdrawals(&withdraw, &s.params.cfg);
        let (wn, an) = (withdraw.len(), a.sent.len());
        for p in &withdraw {
            s.advertised.remove(p);
        }
        for p in &a.sent {
            if let Some(r) = desired.get(p) {
                s.advertised.insert(*p, r.clone());
            }
        }
        messages.extend(a.messages);
        let mut eor = Vec::new();
        if decided && !s.eor_sent {
            s.eor_sent = true;
            for f in &s.families {
                messages.push(routes::end_of_rib(*f));
                eor.push(schema::family_name(*f));
            }
        }
        if messages.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if an > 0 {
            parts.push(format!("announced {an} routes"));
        }
        if wn > 0 {
            parts.push(format!("withdrew {wn} routes"));
        }
        if !eor.is_empty() {
            parts.push(format!("End-of-RIB {}", eor.join(" ")));
        }
        let summary = format!("{} ({} UPDATEs)", parts.join(", "), messages.len());
        let (tx, rx) = oneshot::channel();
        let job = Job {
            writer: s.writer.clone(),
            messages,
            summary,
            done: Some(tx),
        };
        slot.jobs.send(job).ok()?;
        Some(rx)
    }

    fn sync_all(&mut self) -> Vec<oneshot::Receiver<()>> {
        (0..self.peers.len()).filter_map(|i| self.sync(i)).collect()
    }

    /// Re-announces what peer `idx` has of `family` (RFC 2918).
    fn refresh(&mut self, idx: usize, family: AfiSafi) {
        let Some(slot) = self.peers.get_mut(idx) else {
            return;
        };
        let Some(s) = slot.session.as_mut() else {
            return;
        };
        if !s.families.contains(&family) {
            return;
        }
        let a = routes::build_announcements(
            s.advertised.values().filter(|r| r.family() == family),
            &s.params,
        );
        let summary = format!(
            "ROUTE-REFRESH {}: re-announced {} routes ({} UPDATEs)",
            schema::family_name(family),
            a.sent.len(),
            a.messages.len()
        );
        let _ = slot.jobs.send(Job {
            writer: s.writer.clone(),
            messages: a.messages,
            summary,
            done: None,
        });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Up { idx, session } => {
                let decided = self.decided();
                if let Some(slot) = self.peers.get_mut(idx) {
                    slot.session = Some(session);
                    if !decided && !self.stopping {
                        info!(peer = %slot.address, "waiting for the first health check before announcing");
                    }
                    self.sync(idx);
                }
            }
            Ev::Down { idx } => {
                if let Some(slot) = self.peers.get_mut(idx) {
                    slot.session = None;
                }
            }
            Ev::Refresh { idx, family } => self.refresh(idx, family),
            Ev::Health { ok, detail } => {
                if ok {
                    debug!("health check passed ({detail})");
                } else {
                    debug!("health check failed ({detail})");
                }
                let Some(h) = self.health.as_mut() else {
                    return;
                };
                let Some(t) = h.record(ok) else { return };
                let routes = self.table.len();
                let status = if t.up { "up" } else { "down" };
                if t.up {
                    info!(checks = t.checks, "health up: announcing {routes} routes");
                } else {
                    warn!(
                        checks = t.checks,
                        "health down ({detail}): withdrawing {routes} routes"
                    );
                }
                self.out.line(&Record::Health {
                    status,
                    checks: t.checks,
                    routes,
                    at: unix_now(),
                });
                self.sync_all();
            }
        }
    }

    /// SIGHUP: re-reads --file; a bad file keeps the routes as they are.
    fn reload(&mut self) {
        let Some(path) = self.file.clone() else {
            warn!("SIGHUP: there is no --file to re-read; nothing changes");
            return;
        };
        let file_routes = match routes::read_file(&path) {
            Ok(r) => r,
            Err(e) => {
                error!(
                    "SIGHUP: {e}; keeping the {} routes announced",
                    self.table.len()
                );
                return;
            }
        };
        let new = match routes::table(&self.arg_routes, &file_routes) {
            Ok(t) => t,
            Err(e) => {
                error!(
                    "SIGHUP: {}: {e}; keeping the {} routes announced",
                    path.display(),
                    self.table.len()
                );
                return;
            }
        };
        let d = routes::diff(&self.table, &new);
        info!(
            announced = d.announce.len(),
            withdrawn = d.withdraw.len(),
            unchanged = d.unchanged,
            "SIGHUP: {} re-read",
            path.display()
        );
        self.table = new;
        self.out.line(&Record::Reload {
            announced: d.announce.len(),
            withdrawn: d.withdraw.len(),
            unchanged: d.unchanged,
            at: unix_now(),
        });
        self.sync_all();
    }

    /// Withdraws everything from every Established session and waits (at
    /// most [`WITHDRAW_TIMEOUT`], or until a second signal) until the
    /// withdrawals are handed to the sessions.
    async fn withdraw_all(&mut self) {
        self.stopping = true;
        let routes: usize = self
            .peers
            .iter()
            .filter_map(|p| p.session.as_ref())
            .map(|s| s.advertised.len())
            .sum();
        let done = self.sync_all();
        if done.is_empty() {
            return;
        }
        info!("withdrawing {routes} routes before closing");
        let queues: Vec<(IpAddr, Arc<UpdateQueue>)> = self
            .peers
            .iter()
            .filter(|p| p.session.is_some())
            .map(|p| (p.address, p.queue.clone()))
            .collect();
        let wait = async {
            for rx in done {
                let _ = rx.await;
            }
            // The queues empty as the sessions take the UPDATEs; one taken
            // is written whole before the Cease that close() sends (the
            // driver finishes it first), so an empty queue is enough.
            loop {
                if queues.iter().all(|(_, q)| q.queued() == 0 || !q.is_open()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = tokio::time::sleep(WITHDRAW_TIMEOUT) => {
                let left: Vec<String> = queues
                    .iter()
                    .filter(|(_, q)| q.queued() > 0 && q.is_open())
                    .map(|(a, q)| format!("{a} ({} UPDATEs)", q.queued()))
                    .collect();
                warn!("withdrawals not written within {WITHDRAW_TIMEOUT:?}: {}", left.join(", "));
            }
            s = common::stop_signal() => warn!("{} again: closing without waiting for the withdrawals", signal_name(s)),
        }
    }
}

/// Kills a health check's process group when dropped while armed: on a
/// timeout, and when the check is abandoned at exit (the shell alone is
/// killed on drop; what it started would linger).
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Runs `sh -c COMMAND` in a process group of its own (its output
/// discarded: stdout is for JSON), killed with the group after `timeout`.
async fn run_check(command: &str, timeout: Duration) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot run sh: {e}")),
    };
    // Until the shell is reaped its pid names the group.
    let mut group = GroupKill(child.id());
    let res = tokio::time::timeout(timeout, child.wait()).await;
    match res {
        Ok(Ok(status)) => {
            group.0 = None;
            (status.success(), status.to_string())
        }
        Ok(Err(e)) => (false, format!("waiting for the check: {e}")),
        Err(_) => {
            // `group` kills the shell and its children as it goes.
            (false, format!("timed out after {timeout:?}"))
        }
    }
}

/// Runs the health check every `interval` and reports each result.
async fn health_task(
    command: String,
    interval: Duration,
    timeout: Duration,
    events: mpsc::UnboundedSender<Ev>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (ok, detail) = run_check(&command, timeout).await;
        if events.send(Ev::Health { ok, detail }).is_err() {
            return;
        }
    }
}

fn signal_name(s: common::StopSignal) -> &'static str {
    match s {
        common::StopSignal::Term => "SIGTERM",
        common::StopSignal::Int => "SIGINT",
    }
}

fn seconds(flag: &str, v: f64) -> Duration {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        usage_error(format!(
            "--{flag} {v}: must be a number of seconds above 0 (at most a day)"
        ));
    }
    Duration::from_secs_f64(v)
}

fn main() {
    let args: Args = common::parse_args("announcer");
    if args.health_check.is_none()
        && (args.interval.is_some()
            || args.rise.is_some()
            || args.fall.is_some()
            || args.timeout.is_some())
    {
        usage_error("--interval, --rise, --fall and --timeout need --health-check COMMAND");
    }
    let interval = seconds("interval", args.interval.unwrap_or(5.0));
    let timeout = args.timeout.map_or(interval, |t| seconds("timeout", t));
    if let Some(c) = &args.health_check
        && c.trim().is_empty()
    {
        usage_error("--health-check: the command is empty");
    }
    if let Some(a) = args.next_hop4
        && (a.is_unspecified() || a.is_multicast() || a.is_broadcast())
    {
        usage_error(format!("--next-hop4 {a} is not a usable next hop"));
    }
    if let Some(a) = args.next_hop6
        && (a.is_unspecified() || a.is_multicast())
    {
        usage_error(format!("--next-hop6 {a} is not a usable next hop"));
    }
    common::init_logging(&args.session.log_level);
    let setup = args.session.resolve();
    let arg_routes = routes::parse_arguments(&args.routes).unwrap_or_else(|e| usage_error(e));
    let file_routes = match &args.file {
        Some(p) => routes::read_file(p).unwrap_or_else(|e| match e {
            routes::FileError::Unreadable(m) => runtime_error(m),
            routes::FileError::Invalid(m) => usage_error(m),
        }),
        None => Vec::new(),
    };
    if arg_routes.is_empty() && args.file.is_none() {
        usage_error("nothing to announce: give routes (e.g. 192.0.2.0/24) or --file FILE");
    }
    let table = routes::table(&arg_routes, &file_routes).unwrap_or_else(|e| usage_error(e));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| runtime_error(format!("cannot start the runtime: {e}")));
    let code = rt.block_on(run(args, setup, arg_routes, table, interval, timeout));
    drop(rt);
    std::process::exit(code)
}

async fn run(
    args: Args,
    setup: common::Setup,
    arg_routes: Vec<Route>,
    table: Table,
    interval: Duration,
    timeout: Duration,
) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let out = Arc::new(Output::new(None));
    // Before anything can fail half-way: a SIGHUP must not kill us.
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        runtime_error("cannot install the SIGHUP handler")
    };
    let stop = common::stop_signal();
    tokio::pin!(stop);
    let listeners = common::bind_listeners(&setup.listen).await;
    let server = Server::new(setup.router_id).unwrap_or_else(|e| runtime_error(e));
    let (events, mut rx) = mpsc::unbounded_channel();
    let mut peers = Vec::new();
    for (idx, spec) in setup.peers.iter().enumerate() {
        let queue = update_queue();
        let local = LocalAddress::default();
        let opts = spec
            .options()
            .socket_hook(local.hook())
            .update_queue(queue.clone());
        let plugin = Announcer {
            idx,
            spec: spec.clone(),
            queue: queue.clone(),
            local,
            inbound: false,
            next_hop4: args.next_hop4,
            next_hop6: args.next_hop6,
            events: events.clone(),
            out: out.clone(),
            peer_caps: Vec::new(),
        };
        common::add_peer_or_exit(&server, spec, plugin, opts);
        let (jobs, job_rx) = mpsc::unbounded_channel();
        tokio::spawn(writer_task(spec.address, job_rx));
        peers.push(PeerSlot {
            address: spec.address,
            queue,
            jobs,
            session: None,
        });
    }
    let mut ctl = Controller {
        peers,
        arg_routes,
        table,
        file: args.file.clone(),
        health: args
            .health_check
            .as_ref()
            .map(|_| routes::Health::new(args.rise.unwrap_or(3), args.fall.unwrap_or(3))),
        stopping: false,
        out: out.clone(),
    };
    info!(
        routes = ctl.table.len(),
        peers = setup.peers.len(),
        listeners = setup.listen.len(),
        health_check = args.health_check.is_some(),
        "announcer started"
    );
    let health = args
        .health_check
        .clone()
        .map(|c| tokio::spawn(health_task(c, interval, timeout, events.clone())));
    drop(events);
    let s = server.clone();
    let mut serving = tokio::spawn(async move { s.serve(listeners).await });

    let mut code = 0;
    loop {
        tokio::select! {
            s = &mut stop => {
                info!("{}: withdrawing every route, then Cease 6/2", signal_name(s));
                break;
            }
            _ = hup.recv() => ctl.reload(),
            Some(ev) = rx.recv() => ctl.handle(ev),
            r = &mut serving => {
                match r {
                    Ok(Err(e)) => error!("serve: {e}"),
                    Err(e) => error!("serve: {e}"),
                    Ok(Ok(())) => error!("the server stopped"),
                }
                code = 1;
                break;
            }
        }
    }
    if let Some(h) = health {
        h.abort();
    }
    ctl.withdraw_all().await;
    // Cease 6/2 (RFC 4486 Administrative Shutdown), bounded by the server.
    server.close().await;
    out.flush();
    code
}
