//! The server: CoreBGP's `Server` over tokio. A task per peer runs
//! corebgp-core's driver while the peer has something to do; one task per
//! listener accepts and hands each connection to the peer it comes from.
//! Nothing here decides anything about the protocol.
//!
//! A peer without a connection has no task, no session and no buffers: it
//! is its configuration and its plugin, parked in the map
//! ([`Mailbox::parked`]). The first connection from its address starts its
//! task; once its connections are gone (and, for a peer that dials, no
//! dial is in flight), the task parks it again, with its session only if
//! that remembers a damping delay (RFC 4271 §8.1.1) a fresh one would not.
//! A peer that dials is started again at its session's next deadline by
//! the server's [`wake_loop`].
//! A configured, unconnected peer thus costs well under a kilobyte, and a
//! server can hold many thousands of them.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use corebgp_core::driver::{BuffersOf, Clock, Connector, SHUTDOWN_LINGER, SwapBuf, run};
use corebgp_core::outbox::Outbox;
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    AcceptOnly, Accepting, CapabilitySet, DAMPING_AMNESIA, Direction, DownReason, Event, Instant,
    Negotiated, OpenHooks, Peer, PeerConfig, PeerMode, SessionConfig, StateKind,
};
use corebgp_core::wire::{
    CeaseSubcode, MAX_EXTENDED_MESSAGE_LEN, Notification, Open, RouteRefresh, UpdateSections,
};
use tokio::io::AsyncRead;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{Instrument, debug, info, warn};

use crate::error::Error;
use crate::options::{PeerOptions, SocketKind};
use crate::{pages, sockopt};

/// Inbound connections waiting for a peer's session (the session takes one
/// at a time and its collision arbiter decides; more are closed).
const INBOUND_BACKLOG: usize = 4;

/// How long [`Server::delete_peer`] and [`Server::close`] wait for a peer's
/// task beyond the driver's own [`SHUTDOWN_LINGER`] before aborting it (a
/// plugin hook that never returns).
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Pause after a failing `accept` (e.g. `EMFILE`) before that listener
/// tries again; the other listeners and every peer go on.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A peer as [`Server::get_peer`] and [`Server::list_peers`] show it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Who the peer is (CoreBGP's `PeerConfig`; the address normalised).
    pub config: PeerConfig,
    /// The validated session configuration.
    pub session: SessionConfig,
    /// The options it was added with.
    pub options: PeerOptions,
    /// Its state now: the most advanced of its connections (Active for a
    /// passive peer waiting; Idle before [`Server::serve`]).
    pub state: StateKind,
}

/// A BGP server (CoreBGP's `Server`): peers, listeners, and a task per
/// peer. Cheap to clone; the clones are one server.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("router_id", &self.inner.router_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    router_id: Ipv4Addr,
    epoch: tokio::time::Instant,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
    wakes: Arc<Wakes>,
}

/// When parked peers that dial start again: one task for all of them
/// ([`wake_loop`], while serving) sleeps until the earliest. (A timer task
/// per parked peer, allocated as the peer parks, would sit between the
/// freed memory of its task and session: a few KiB of fragmented heap per
/// peer.)
#[derive(Default)]
struct Wakes {
    due: Mutex<WakeQueue>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct WakeQueue {
    /// By time, then by a sequence number that keeps keys unique: the peer
    /// and its parking number ([`Shared::wake`]).
    queue: std::collections::BTreeMap<(tokio::time::Instant, u64), (Weak<Shared>, u16)>,
    seq: u64,
}

impl Wakes {
    fn lock(&self) -> MutexGuard<'_, WakeQueue> {
        // Nothing holding the lock panics.
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `shared`'s parking number `parking` at `at`.
    fn add(&self, at: tokio::time::Instant, shared: Weak<Shared>, parking: u16) {
        let mut q = self.lock();
        q.seq += 1;
        let key = (at, q.seq);
        let earliest = q.queue.first_key_value().is_none_or(|(k, _)| key < *k);
        q.queue.insert(key, (shared, parking));
        drop(q);
        if earliest {
            self.changed.notify_one();
        }
    }
}

/// Starts parked peers that dial when their time comes.
async fn wake_loop(w: Arc<Wakes>) {
    loop {
        let changed = w.changed.notified();
        let next = w.lock().queue.first_key_value().map(|((t, _), _)| *t);
        match next {
            Some(t) => {
                let mut sleep = pin!(tokio::time::sleep_until(t));
                let mut changed = pin!(changed);
                poll_fn(|cx| {
                    if sleep.as_mut().poll(cx).is_ready() || changed.as_mut().poll(cx).is_ready() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await
            }
            None => changed.await,
        }
        let due = {
            let mut q = w.lock();
            let now = tokio::time::Instant::now();
            let later = q.queue.split_off(&(now + Duration::from_nanos(1), 0));
            std::mem::replace(&mut q.queue, later)
        };
        for (shared, parking) in due.into_values() {
            if let Some(s) = shared.upgrade() {
                s.wake(parking);
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// An entry is two pointers: the table's empty slots cost little.
    peers: HashMap<IpAddr, Entry>,
    /// The runtime peers are spawned on, while serving.
    serving: Option<Handle>,
    closed: bool,
    listeners: Vec<Arc<TcpListener>>,
}

/// A peer's job while it has no task: started by [`Start::start`].
trait Start: Send {
    /// Spawns the peer's task on `h`.
    fn start(self: Box<Self>, h: &Handle) -> JoinHandle<()>;
    /// Whether the job keeps a session (one that remembers damping).
    #[cfg(test)]
    fn has_session(&self) -> bool;
}

struct Entry {
    shared: Arc<Shared>,
}

impl Drop for Entry {
    /// A peer the server forgets (also when the last handle of the server
    /// goes without [`Server::close`]) stops; a Cease subcode already
    /// asked for stays.
    fn drop(&mut self) {
        self.shared.stop(CeaseSubcode::AdministrativeShutdown);
    }
}

/// What the server and the peer's task share: with the peer's [`Job`],
/// all a configured peer is (its task and session exist while it runs). It
/// carries the peer's options, the states the task reports, and the
/// server's mail to the task: connections the listeners matched to the
/// peer, the request to stop, and the job while parked. (A tokio `mpsc` channel and
/// a `oneshot` cost 1.6 KiB of resident memory per peer; this costs none
/// while no connection waits.)
struct Shared {
    /// The options the peer was added with, their session configuration
    /// validated ([`Shared::session`]; `session_config` gives the same
    /// from it as from the one added, and one copy is kept, not two).
    options: PeerOptions,
    states: [AtomicU8; 2],
    /// Started and not stopped: serving, parked or with a task.
    running: AtomicBool,
    /// Seconds since the server's epoch (rounded up) until which the
    /// session must be kept, though idle: it remembers a damping delay
    /// (RFC 4271 §8.1.1) that a fresh session would not.
    keep_until: AtomicU32,
    mail: Mutex<Mailbox>,
}

#[derive(Default)]
struct Mailbox {
    /// At most [`INBOUND_BACKLOG`]; its memory is freed when it empties.
    inbound: Inbound,
    /// The peer's task, waiting for mail ([`Shared::next_inbound`],
    /// [`Shared::stopped`], [`Shared::idle`]: one task polls them all, so
    /// one waker serves).
    waker: Option<Waker>,
    stop: Option<CeaseSubcode>,
    /// Transports ([`Conn`]) alive for the peer: while there are any, its
    /// task cannot park.
    live: u16,
    /// The peer's job while it has no task (a passive peer waiting for a
    /// connection, a peer that dials waiting for its next dial, or any peer
    /// before [`Server::serve`]).
    parked: Option<Box<dyn Start>>,
    /// Counts the parkings with a wake-up time: a timer set for an earlier
    /// one finds the count moved on and does nothing.
    parkings: u16,
    /// The peer's latest task (finished if the peer is parked).
    task: Option<JoinHandle<()>>,
}

/// Connections waiting for the peer's task, oldest first: one pointer
/// while none wait (nearly always), not a `Vec`'s three words in every
/// peer's shared state (which then fits a smaller allocation).
// The box is the point: a pointer in place of a `Vec`, which allocates
// anyway once a connection waits.
#[allow(clippy::box_collection)]
#[derive(Default)]
struct Inbound(Option<Box<Vec<TcpStream>>>);

impl Inbound {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn push(&mut self, s: TcpStream) {
        self.0.get_or_insert_default().push(s);
    }
    /// The oldest; the memory goes once none is left.
    fn pop_oldest(&mut self) -> Option<TcpStream> {
        let v = self.0.as_mut()?;
        let s = (!v.is_empty()).then(|| v.remove(0));
        if v.is_empty() {
            self.0 = None;
        }
        s
    }
}

fn kind_from(v: u8) -> StateKind {
    match v {
        1 => StateKind::Connect,
        2 => StateKind::Active,
        3 => StateKind::OpenSent,
        4 => StateKind::OpenConfirm,
        5 => StateKind::Established,
        _ => StateKind::Idle,
    }
}

impl Mailbox {
    /// A new parking number: wake-ups set for earlier ones find it moved on.
    fn next_parking(&mut self) -> u16 {
        self.parkings = self.parkings.wrapping_add(1);
        self.parkings
    }
}

impl Shared {
    /// The validated session configuration (its `peer` is the peer's
    /// `PeerConfig`).
    fn session(&self) -> &SessionConfig {
        &self.options.session
    }

    fn mail(&self) -> MutexGuard<'_, Mailbox> {
        // Nothing holding the lock panics.
        self.mail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a connection to the peer's task; gives it back when
    /// [`INBOUND_BACKLOG`] connections already wait. Returns the peer's
    /// job if it was parked: the caller starts it, and the task takes the
    /// connection.
    fn deliver(&self, s: TcpStream) -> Result<Option<Box<dyn Start>>, TcpStream> {
        let mut m = self.mail();
        if m.inbound.len() >= INBOUND_BACKLOG {
            return Err(s);
        }
        m.inbound.push(s);
        if let Some(w) = m.waker.take() {
            w.wake();
        }
        Ok(m.parked.take())
    }

    /// Parks `job` unless a connection or a stop came in meanwhile (then
    /// the job is given back to run on). With `wake`, the server's
    /// [`wake_loop`] starts it again then, unless a connection started it
    /// first.
    fn park<P: Plugin + 'static, M: Mode>(
        self: &Arc<Self>,
        job: Box<Job<P, M>>,
        wake: Option<tokio::time::Instant>,
    ) -> Option<Box<Job<P, M>>> {
        let wakes = job.wakes.clone();
        let mut m = self.mail();
        if !m.inbound.is_empty() || m.stop.is_some() || m.live > 0 {
            return Some(job);
        }
        m.parked = Some(job);
        // This task's handle and waker: tokio frees a task's memory with
        // its last reference, and a parked peer is to cost its job alone.
        m.task = None;
        m.waker = None;
        // Numbered in the same hold of the lock: a start before then
        // cannot take this wake-up for its own.
        let parking = wake.map(|at| (at, m.next_parking()));
        drop(m);
        if let Some((at, parking)) = parking {
            wakes.add(at, Arc::downgrade(self), parking);
        }
        None
    }

    /// Has `wakes` start the parked job at `at`.
    fn wake_at(self: &Arc<Self>, wakes: &Wakes, at: tokio::time::Instant) {
        let parking = self.mail().next_parking();
        wakes.add(at, Arc::downgrade(self), parking);
    }

    /// The time of parking number `parking` came: starts the job if it is
    /// still parked from then.
    fn wake(&self, parking: u16) {
        let mut m = self.mail();
        if m.parkings == parking
            && let Some(job) = m.parked.take()
        {
            // Under the lock: a stop now finds the new task's handle.
            m.task = Some(job.start(&Handle::current()));
        }
    }

    /// Records the peer's new task, unless it has parked already (it may
    /// have, on another thread, before its handle got here): the handle of
    /// a task that ended would keep the task's memory.
    fn started(&self, task: JoinHandle<()>) {
        let mut m = self.mail();
        if m.parked.is_none() && !task.is_finished() {
            m.task = Some(task);
        }
    }

    /// Ready once the peer has no transport, no dial in flight and no
    /// connection waits; else
    /// wakes the task when that may have changed. A poll function, not a
    /// future: the peer's task would hold the future beside the driver.
    fn poll_idle(&self, cx: &Context<'_>) -> Poll<()> {
        let mut m = self.mail();
        if m.live == 0 && m.inbound.is_empty() {
            Poll::Ready(())
        } else {
            m.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// A transport for the peer was made.
    fn conn_opened(&self) {
        let mut m = self.mail();
        m.live = m.live.saturating_add(1);
    }

    /// A transport for the peer was dropped.
    fn conn_closed(&self) {
        let mut m = self.mail();
        m.live = m.live.saturating_sub(1);
        if m.live == 0
            && let Some(w) = m.waker.take()
        {
            w.wake();
        }
    }

    /// The next connection for the peer (cancel-safe).
    async fn next_inbound(&self) -> TcpStream {
        poll_fn(|cx| {
            let mut m = self.mail();
            // The oldest first (at most INBOUND_BACKLOG wait).
            match m.inbound.pop_oldest() {
                Some(s) => Poll::Ready(s),
                None => {
                    m.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Asks the task to stop with Cease `sub`, unless it was asked already.
    /// A parked job is dropped (it holds this `Shared`: the cycle ends
    /// here); it has no connection to send a Cease on.
    fn stop(&self, sub: CeaseSubcode) {
        let parked = {
            let mut m = self.mail();
            if m.stop.is_none() {
                m.stop = Some(sub);
                if let Some(w) = m.waker.take() {
                    w.wake();
                }
            }
            m.parked.take()
        };
        if parked.is_some() {
            self.running.store(false, Ordering::Relaxed);
        }
        // The plugin is dropped outside the lock.
        drop(parked);
    }

    /// Completes when the task is asked to stop, with the subcode.
    fn stopped(&self) -> impl Future<Output = CeaseSubcode> + '_ {
        poll_fn(|cx| {
            let mut m = self.mail();
            match m.stop {
                Some(sub) => Poll::Ready(sub),
                None => {
                    m.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    fn state(&self) -> StateKind {
        let s = kind_from(self.states[0].load(Ordering::Relaxed))
            .max(kind_from(self.states[1].load(Ordering::Relaxed)));
        if s == StateKind::Idle && self.session().passive && self.running.load(Ordering::Relaxed) {
            StateKind::Active
        } else {
            s
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // No code holding the lock panics; a poisoned lock still holds a
    // consistent map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// A server whose BGP Identifier is `router_id` (CoreBGP's
    /// `NewServer`; 0.0.0.0 is refused, RFC 6286 §2.1).
    pub fn new(router_id: Ipv4Addr) -> Result<Self, Error> {
        if router_id.is_unspecified() {
            return Err(corebgp_core::session::ConfigError::RouterId.into());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                router_id,
                epoch: tokio::time::Instant::now(),
                state: Mutex::new(State::default()),
                closed: watch::Sender::new(false),
                wakes: Arc::default(),
            }),
        })
    }

    /// Our BGP Identifier.
    pub fn router_id(&self) -> Ipv4Addr {
        self.inner.router_id
    }

    /// Adds a peer (CoreBGP's `AddPeer`): it starts at once if the server
    /// is serving, else when [`Server::serve`] starts. The remote address
    /// is normalised (IPv4-mapped IPv6 becomes IPv4).
    pub fn add_peer<P: Plugin + 'static>(
        &self,
        config: PeerConfig,
        plugin: P,
        options: PeerOptions,
    ) -> Result<(), Error> {
        let mut config = config;
        config.remote_address = config.remote_address.to_canonical();
        let mut options = options;
        options.local_address = options.local_address.map(|a| a.to_canonical());
        let session = options.session_config(config, self.inner.router_id)?;
        let addr = config.remote_address;

        let mut st = lock(&self.inner.state);
        if st.closed {
            return Err(Error::ServerClosed);
        }
        if st.peers.contains_key(&addr) {
            return Err(Error::PeerExists(addr));
        }
        if let Some(key) = &options.md5_key {
            set_listener_keys(&st.listeners, addr, key)?;
        }
        if options.ttl_security {
            set_listener_ttl(&st.listeners)?;
        }
        // One copy of the session configuration: the validated one.
        let mut options = options;
        options.session = session;
        let shared = Arc::new(Shared {
            options,
            states: [AtomicU8::new(0), AtomicU8::new(0)],
            running: AtomicBool::new(false),
            keep_until: AtomicU32::new(0),
            mail: Mutex::new(Mailbox::default()),
        });
        let clock = TokioClock(self.inner.epoch);
        // A passive peer's session has no room for a dialled connection.
        let job: Box<dyn Start> = if session.passive {
            Job::<P, AcceptOnly>::new(plugin, &shared, clock, self.inner.wakes.clone())
        } else {
            Job::<P, Accepting>::new(plugin, &shared, clock, self.inner.wakes.clone())
        };
        // A passive peer waits parked for its first connection; a peer
        // that dials starts at once (or when serving starts), from the
        // server's wake loop: its task is then made on the runtime's
        // threads, not between the peers' configurations on this one, where
        // its memory, freed once the peer parks, would be holes between
        // them that the allocator cannot give back.
        shared
            .running
            .store(st.serving.is_some(), Ordering::Relaxed);
        shared.mail().parked = Some(job);
        if st.serving.is_some() && !session.passive {
            shared.wake_at(&self.inner.wakes, tokio::time::Instant::now());
        }
        info!(peer = %addr, remote_as = config.remote_as, "peer added");
        st.peers.insert(addr, Entry { shared });
        Ok(())
    }

    /// Removes a peer (CoreBGP's `DeletePeer`): Cease 6/3 (RFC 4486 "Peer
    /// De-configured") on its connections past Active, then its task ends.
    /// Returns within [`SHUTDOWN_LINGER`] + [`STOP_GRACE`] even if the peer
    /// stopped reading; other peers are never held up (the server's lock is
    /// not held while waiting, unlike CoreBGP).
    pub async fn delete_peer(&self, addr: IpAddr) -> Result<(), Error> {
        let addr = addr.to_canonical();
        let entry = {
            let mut st = lock(&self.inner.state);
            let e = st.peers.remove(&addr).ok_or(Error::NoSuchPeer(addr))?;
            if e.shared.options.md5_key.is_some() {
                // Removing the key: an empty key deletes it.
                if let Err(err) = set_listener_keys(&st.listeners, addr, &[]) {
                    warn!(peer = %addr, %err, "cannot remove the TCP MD5 key from a listener");
                }
            }
            e
        };
        let deadline = stop_deadline();
        let waiting = begin_stop(entry, CeaseSubcode::PeerDeconfigured);
        finish_stop(addr, waiting, deadline).await;
        info!(peer = %addr, "peer deleted");
        Ok(())
    }

    /// A peer's configuration and state (CoreBGP's `GetPeer`, with the state
    /// CoreBGP's users asked for).
    pub fn get_peer(&self, addr: IpAddr) -> Result<PeerInfo, Error> {
        let addr = addr.to_canonical();
        let st = lock(&self.inner.state);
        st.peers
            .get(&addr)
            .map(|e| e.snapshot())
            .ok_or(Error::NoSuchPeer(addr))
    }

    /// Every peer with its state (CoreBGP's `ListPeers`), sorted by address.
    pub fn list_peers(&self) -> Vec<PeerInfo> {
        let st = lock(&self.inner.state);
        let mut v: Vec<PeerInfo> = st.peers.values().map(|e| e.snapshot()).collect();
        v.sort_by_key(|p| p.config.remote_address);
        v
    }

    /// Starts every peer and accepts on `listeners` (any number, IPv4 and
    /// IPv6; none for a server that only dials) until [`Server::close`],
    /// then returns `Ok(())`. A listener whose `accept` fails logs it and
    /// tries again after a pause: it never takes the other listeners or
    /// any peer down (CoreBGP's `Serve` returns on the first error and
    /// stops every peer). TCP MD5 keys of the peers are set on each
    /// listener for the peers' addresses.
    pub async fn serve(&self, listeners: Vec<TcpListener>) -> Result<(), Error> {
        let listeners: Vec<Arc<TcpListener>> = listeners.into_iter().map(Arc::new).collect();
        {
            let mut st = lock(&self.inner.state);
            if st.closed {
                return Err(Error::ServerClosed);
            }
            if st.serving.is_some() {
                return Err(Error::AlreadyServing);
            }
            for (addr, e) in &st.peers {
                if let Some(key) = &e.shared.options.md5_key {
                    set_listener_keys(&listeners, *addr, key)?;
                }
                if e.shared.options.ttl_security {
                    set_listener_ttl(&listeners)?;
                }
            }
            let handle = Handle::current();
            let now = tokio::time::Instant::now();
            for e in st.peers.values_mut() {
                e.shared.running.store(true, Ordering::Relaxed);
                // Passive peers stay parked until a connection comes; the
                // others start from the wake loop.
                if !e.shared.session().passive {
                    e.shared.wake_at(&self.inner.wakes, now);
                }
            }
            st.serving = Some(handle);
            st.listeners = listeners.clone();
        }
        let mut accepting = JoinSet::new();
        for l in listeners {
            if let Ok(a) = l.local_addr() {
                info!(listener = %a, "listening");
            }
            accepting.spawn(accept_loop(self.inner.clone(), l));
        }
        accepting.spawn(wake_loop(self.inner.wakes.clone()));
        let mut closed = self.inner.closed.subscribe();
        // Err only if the sender is gone, which `self` rules out.
        let _ = closed.wait_for(|c| *c).await;
        accepting.shutdown().await;
        Ok(())
    }

    /// Stops the server (CoreBGP's `Close`): Cease 6/2 (RFC 4486
    /// "Administrative Shutdown") to every peer past Active, stops
    /// accepting, and returns when every peer's task has ended — within
    /// [`SHUTDOWN_LINGER`] + [`STOP_GRACE`] even with wedged peers.
    /// [`Server::serve`] then returns. Idempotent.
    pub async fn close(&self) {
        let entries: Vec<(IpAddr, Entry)> = {
            let mut st = lock(&self.inner.state);
            if st.closed {
                return;
            }
            st.closed = true;
            st.serving = None;
            st.listeners.clear();
            st.peers.drain().collect()
        };
        self.inner.closed.send_replace(true);
        let deadline = stop_deadline();
        let waiting: Vec<(IpAddr, Option<JoinHandle<()>>)> = entries
            .into_iter()
            .map(|(a, e)| (a, begin_stop(e, CeaseSubcode::AdministrativeShutdown)))
            .collect();
        for (addr, h) in waiting {
            finish_stop(addr, h, deadline).await;
        }
        info!("server closed");
    }
}

impl Entry {
    fn snapshot(&self) -> PeerInfo {
        let sh = &*self.shared;
        PeerInfo {
            config: sh.session().peer,
            session: *sh.session(),
            options: sh.options.clone(),
            state: sh.state(),
        }
    }
}

fn stop_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now()
        + Duration::from_millis(SHUTDOWN_LINGER.as_millis() as u64)
        + STOP_GRACE
}

/// Tells the peer's task to stop with Cease `sub`; returns its handle.
fn begin_stop(e: Entry, sub: CeaseSubcode) -> Option<JoinHandle<()>> {
    e.shared.stop(sub);
    e.shared.mail().task.take()
}

/// Waits for a stopping peer's task until `deadline`, then aborts it.
async fn finish_stop(addr: IpAddr, h: Option<JoinHandle<()>>, deadline: tokio::time::Instant) {
    let Some(h) = h else { return };
    let abort = h.abort_handle();
    if tokio::time::timeout_at(deadline, h).await.is_err() {
        warn!(peer = %addr, "peer task did not stop in time (a plugin hook that does not return?); aborted");
        abort.abort();
    }
}

fn set_listener_keys(listeners: &[Arc<TcpListener>], peer: IpAddr, key: &[u8]) -> io::Result<()> {
    for l in listeners {
        let v6 = l.local_addr()?.is_ipv6();
        if !v6 && peer.is_ipv6() {
            continue;
        }
        sockopt::set_md5(l.as_fd(), v6, peer, key)?;
    }
    Ok(())
}

/// GTSM (RFC 5082 §3) needs TTL 255 from the first segment on: the
/// SYN-ACK is sent with the listener's TTL, so the listeners send with 255
/// once any peer uses GTSM (harmless for the others). The per-connection
/// minimum TTL is set on the accepted socket.
fn set_listener_ttl(listeners: &[Arc<TcpListener>]) -> io::Result<()> {
    for l in listeners {
        if l.local_addr()?.is_ipv6() {
            sockopt::set_ttl(l.as_fd(), false, 255)?;
            // IPv4-mapped connections on a dual-stack listener; refused on a
            // v6-only socket, which never sees them.
            let _ = sockopt::set_ttl(l.as_fd(), true, 255);
        } else {
            sockopt::set_ttl(l.as_fd(), true, 255)?;
        }
    }
    Ok(())
}

async fn accept_loop(inner: Arc<Inner>, l: Arc<TcpListener>) {
    loop {
        match l.accept().await {
            Ok((s, remote)) => inner.dispatch(s, remote),
            Err(e) => {
                warn!(listener = ?l.local_addr().ok(), error = %e, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

impl Inner {
    /// Hands an accepted connection to its peer's session, or closes it
    /// (dropped) without allocating anything for it.
    fn dispatch(&self, s: TcpStream, remote: SocketAddr) {
        let ip = remote.ip().to_canonical();
        let mut st = lock(&self.state);
        let State { peers, serving, .. } = &mut *st;
        let Some(e) = peers.get_mut(&ip) else {
            debug!(%remote, "connection from an unknown address; closed");
            return;
        };
        if let Some(local) = e.shared.options.local_address {
            let to = s.local_addr().map(|a| a.ip().to_canonical());
            if to.as_ref().ok() != Some(&local) {
                debug!(%remote, to = ?to.ok(), %local, "connection to another local address; closed");
                return;
            }
        }
        match e.shared.deliver(s) {
            Err(_) => {
                debug!(%remote, "too many inbound connections waiting for the session; closed")
            }
            // A parked peer: its task starts and takes the connection.
            Ok(Some(job)) => match serving {
                Some(h) => e.shared.started(job.start(h)),
                // Not serving (cannot happen: listeners run only while
                // serving): it stays parked, the connection waits.
                None => e.shared.mail().parked = Some(job),
            },
            Ok(None) => {}
        }
    }
}

/// Per-peer receive buffers carved out of large anonymous mappings
/// ([`pages::map`]): a buffer costs resident memory only where bytes land,
/// and each starts on a page of its own, so its pages can be handed back
/// while its connection idles ([`Connector::idle`]). A chunk keeps like
/// buffers together (all its first receive buffers, then all second ones):
/// the pages an idle session touched (the start of its first receive
/// buffer) are then 64 KiB apart, which keeps the kernel's page tables for
/// the chunks small (one 4 KiB table maps 2 MiB once any page of it was
/// touched). An idle session thus costs no buffer memory; a collision
/// buffer that is never used, nothing either. `vec![0; n]` per peer would
/// cost all of it (the allocator zeroes small allocations eagerly). Chunks
/// are never unmapped; freed slots are reused by later peers. (UPDATEs are
/// sent from the peer's [`crate::UpdateQueue`], not from a slot.)
struct BufferPool {
    free: Mutex<Vec<Slot>>,
}

/// One peer's receive buffers, [`RX_LEN`] bytes each.
struct Slot {
    rx: [&'static mut [u8]; 2],
}

/// Slots per chunk: 64 × 128 KiB = 8 MiB of address space (not of memory).
const SLOTS_PER_CHUNK: usize = 64;

/// A receive buffer's length: the largest message (65,535 bytes with RFC
/// 8654 Extended Messages), and in any case 64 KiB, so that a peer
/// streaming UPDATEs is read 64 KiB at a time rather than one message at a
/// time (the kernel's receive path per system call was a fifth of the
/// server's CPU on a full table with 4 KiB reads). The framer still
/// accepts messages of the negotiated maximum only.
const RX_LEN: usize = 64 * 1024;
const _: () = assert!(RX_LEN >= MAX_EXTENDED_MESSAGE_LEN);

impl BufferPool {
    const fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A slot: two receive buffers, each starting on a page.
    fn take(&self) -> Slot {
        let rx = pages::round_up(RX_LEN);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            let chunk = pages::map(2 * rx * SLOTS_PER_CHUNK);
            let (rx0, rx1) = chunk.split_at_mut(rx * SLOTS_PER_CHUNK);
            free.extend(
                rx0.chunks_exact_mut(rx)
                    .zip(rx1.chunks_exact_mut(rx))
                    .map(|(a, b)| Slot { rx: [a, b] }),
            );
        }
        free.pop().unwrap_or_else(|| Slot {
            rx: [pages::map(rx), pages::map(rx)],
        })
    }

    fn give(&self, mut slot: Slot) {
        // What the last connection left in the slot is not needed: its
        // pages go back to the kernel while the slot waits for its next
        // peer.
        for b in slot.rx.iter_mut() {
            pages::release(b);
        }
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }
}

/// A slot taken from [`POOL`], given back when the peer's task ends (also
/// when it is aborted).
struct PoolSlot {
    mem: Option<Slot>,
}

impl PoolSlot {
    fn take() -> Self {
        Self {
            mem: Some(POOL.take()),
        }
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        if let Some(m) = self.mem.take() {
            POOL.give(m);
        }
    }
}

/// Every peer's receive buffers, with or without Extended Messages.
static POOL: BufferPool = BufferPool::new();

/// The session's clock: milliseconds since the server was made.
#[derive(Clone, Copy)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline.as_millis())).await
    }
}

/// Dials the peer with its socket options; takes the connections the
/// listeners matched to it.
/// The peer's task holds it (one pointer) and lends it to each run of the
/// driver.
struct StdConnector {
    /// The peer's options, and where the listeners leave its connections.
    shared: Arc<Shared>,
}

impl StdConnector {
    fn remote(&self) -> SocketAddr {
        SocketAddr::new(
            self.shared.session().peer.remote_address,
            self.shared.options.port,
        )
    }

    async fn dial(&self) -> io::Result<TcpStream> {
        let o = &self.shared.options;
        let remote = self.remote();
        let v4 = remote.is_ipv4();
        let sock = if v4 {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        sock.set_nodelay(o.nodelay)?;
        if o.ttl_security {
            // RFC 5082 §3: send with TTL 255, accept ≥ 254 (one hop).
            sockopt::set_ttl(sock.as_fd(), v4, 255)?;
            sockopt::set_min_ttl(sock.as_fd(), v4, 254)?;
        }
        if let Some(k) = &o.md5_key {
            sockopt::set_md5(sock.as_fd(), !v4, remote.ip(), k)?;
        }
        if let Some(h) = &o.socket_hook {
            h(sock.as_fd(), SocketKind::Outbound)?;
        }
        if let Some(l) = o.local_address {
            sock.bind(SocketAddr::new(l, 0))?;
        }
        sock.connect(remote).await
    }

    /// Options for a connection the peer opened (the listener's MD5 key
    /// already covers it).
    fn prepare_inbound(&self, s: &TcpStream) -> io::Result<()> {
        let o = &self.shared.options;
        s.set_nodelay(o.nodelay)?;
        if o.ttl_security {
            let v4 = self.shared.session().peer.remote_address.is_ipv4();
            sockopt::set_ttl(s.as_fd(), v4, 255)?;
            sockopt::set_min_ttl(s.as_fd(), v4, 254)?;
        }
        if let Some(h) = &o.socket_hook {
            h(s.as_fd(), SocketKind::Inbound)?;
        }
        Ok(())
    }
}

/// A connection handed to the driver. Dropping it closes gracefully: a
/// socket closed with unread bytes sends a RST, which can make the peer
/// discard our last NOTIFICATION before reading it (seen with GoBGP after
/// our plugin refused an UPDATE in the middle of its table). So the write
/// side is shut down (FIN after the NOTIFICATION) and what the peer still
/// sends is read and discarded for at most [`SHUTDOWN_LINGER`] by a task of
/// its own, then the socket is closed.
///
/// The receive buffer's pages go back to the kernel when the connection
/// idles: the driver then reads it into a few bytes of its own and says
/// which part of the buffer was written ([`Connector::idle`]), and those
/// pages are released ([`pages::release`]). An idle session holds no
/// resident buffer memory, and its KEEPALIVEs do not write a page that has
/// to be faulted in and released again for each.
pub(crate) struct Conn {
    s: Option<TcpStream>,
    /// The peer's: counts its live transports (see [`Shared::idle`]).
    shared: Arc<Shared>,
}

impl Conn {
    fn new(s: TcpStream, shared: Arc<Shared>) -> Self {
        shared.conn_opened();
        Self { s: Some(s), shared }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let Some(s) = &mut self.s else {
            return Poll::Ready(Ok(0));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // tokio's own read: a read shorter than the buffer marks the socket
        // drained, so the next call waits without a system call (an idle
        // session's KEEPALIVE costs one read, not a read and an EAGAIN).
        let mut rb = tokio::io::ReadBuf::new(buf);
        ready!(Pin::new(s).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().len()))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let Some(s) = &self.s else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match s.try_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = ready!(s.poll_write_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Counts as one of the peer's transports while it lives (a dial in
/// flight).
struct Live<'a>(&'a Shared);

impl<'a> Live<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.conn_opened();
        Self(shared)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.conn_closed();
    }
}

impl embedded_io_async::ErrorType for Conn {
    type Error = std::io::Error;
}

// The futures are plain closures over the arguments (24 bytes), not async
// blocks: every peer's task holds several of them at once, and an async
// block keeps its temporaries too.
impl embedded_io_async::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize, Self::Error>> {
        poll_fn(move |cx| self.poll_read(cx, buf))
    }
}

impl embedded_io_async::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> impl Future<Output = Result<usize, Self::Error>> {
        poll_fn(move |cx| self.poll_write(cx, buf))
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.conn_closed();
        let Some(mut s) = self.s.take() else { return };
        let Ok(h) = Handle::try_current() else { return };
        h.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = s.shutdown().await;
            let linger = Duration::from_millis(SHUTDOWN_LINGER.as_millis() as u64);
            let drain = async {
                let mut sink = [0u8; 1024];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            let _ = tokio::time::timeout(linger, drain).await;
        });
    }
}

impl Connector for StdConnector {
    type Transport = Conn;

    async fn connect(&self) -> Option<Self::Transport> {
        // Boxed: the dial's state would otherwise take room in every
        // peer's task for its whole life (passive peers never dial). A
        // dial in flight counts as a transport: the peer does not park
        // while it lasts.
        let dial = async {
            let _live = Live::new(&self.shared);
            self.dial().await
        };
        match Box::pin(dial).await {
            Ok(s) => {
                debug!(remote = %self.remote(), "connected");
                Some(Conn::new(s, self.shared.clone()))
            }
            Err(e) => {
                debug!(remote = %self.remote(), error = %e, "dial failed");
                None
            }
        }
    }

    async fn accept(&self) -> Self::Transport {
        loop {
            let s = self.shared.next_inbound().await;
            match self.prepare_inbound(&s) {
                Ok(()) => {
                    debug!(remote = ?s.peer_addr().ok(), "accepted");
                    return Conn::new(s, self.shared.clone());
                }
                Err(e) => {
                    warn!(error = %e, "cannot set socket options on an inbound connection; closed")
                }
            }
        }
    }

    fn idle(&self, rx: &mut [u8], written: usize) {
        // The pages the written bytes lie on (the buffer starts on a page).
        let len = pages::round_up(written).min(rx.len());
        pages::release(rx.get_mut(..len).unwrap_or(&mut []));
    }
}

/// The peer's outbox: its UPDATE queue, or nothing. On the shared state
/// itself, so that the driver borrows it and the task keeps no copy.
impl Outbox for Shared {
    async fn ready(&self) {
        match &self.options.updates {
            Some(q) => q.ready().await,
            None => std::future::pending().await,
        }
    }
    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        self.options.updates.as_ref().and_then(|q| q.take(buf))
    }
    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        self.options
            .updates
            .as_ref()
            .and_then(|q| q.take_if_fits(buf))
    }
    fn swap(&self, tx: &mut &'static mut [u8]) -> usize {
        self.options.updates.as_ref().map_or(0, |q| q.swap(tx))
    }
    fn give_back(&self, tx: &mut &'static mut [u8]) {
        if let Some(q) = &self.options.updates {
            // Drained: what it held is written. Its pages go back to the
            // system, so a peer that sent its table and now sends little
            // keeps no 64 KiB resident per buffer.
            pages::release(tx);
            q.give_back(tx);
        }
    }
    fn open(&self, max_len: usize) {
        if let Some(q) = &self.options.updates {
            q.open(max_len);
        }
    }
    fn close(&self) {
        if let Some(q) = &self.options.updates {
            q.close();
            // Nothing is queued now: the pages UPDATEs were written to go
            // back to the system until the next session sends.
            q.free_buffers(|b| {
                pages::release(b);
            });
        }
    }
}

/// The user's plugin, seen through: the server records states for
/// [`Server::list_peers`] and logs events.
struct Tracked<P> {
    inner: P,
    shared: Arc<Shared>,
}

impl<P: Plugin> OpenHooks for Tracked<P> {
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
        self.inner.capabilities(peer, caps)
    }
    fn check_open(
        &mut self,
        peer: &PeerConfig,
        open: &Open<'_>,
        negotiated: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        self.inner.check_open(peer, open, negotiated)
    }
}

impl<P: Plugin> Plugin for Tracked<P> {
    fn on_established(
        &mut self,
        peer: &PeerConfig,
        negotiated: &Negotiated,
    ) -> impl Future<Output = ()> + Send {
        self.inner.on_established(peer, negotiated)
    }
    fn on_update<'m>(
        &mut self,
        peer: &PeerConfig,
        update: UpdateSections<'m>,
    ) -> impl Future<Output = Result<(), Notification<'m>>> + Send {
        self.inner.on_update(peer, update)
    }
    fn on_route_refresh(&mut self, peer: &PeerConfig, request: &RouteRefresh<'_>) {
        self.inner.on_route_refresh(peer, request)
    }
    fn on_notification(&mut self, peer: &PeerConfig, n: &Notification<'_>) {
        info!(
            code = n.code.code(),
            subcode = n.code.subcode(),
            "NOTIFICATION received: {}",
            n.code.code_name()
        );
        self.inner.on_notification(peer, n)
    }
    fn on_event(&mut self, peer: &PeerConfig, event: &Event) {
        match *event {
            Event::StateChanged {
                direction,
                from,
                to,
            } => {
                let i = usize::from(direction == Direction::Inbound);
                if let Some(s) = self.shared.states.get(i) {
                    s.store(to as u8, Ordering::Relaxed);
                }
                debug!(?direction, ?from, ?to, "state");
            }
            Event::Established { direction } => info!(?direction, "established"),
            Event::Down { direction, reason } => info!(?direction, ?reason, "down"),
            Event::NotificationSent { direction, code } => warn!(
                ?direction,
                code = code.code(),
                subcode = code.subcode(),
                "NOTIFICATION sent: {}",
                code.code_name()
            ),
            Event::Damped { until } => {
                // The session remembers the delay until it is forgotten
                // (RFC 4271 §8.1.1; DAMPING_AMNESIA after the error, which
                // is no later than `until`): it is not dropped before.
                let keep = (until + DAMPING_AMNESIA).as_millis().div_ceil(1000);
                let keep = u32::try_from(keep).unwrap_or(u32::MAX);
                self.shared.keep_until.fetch_max(keep, Ordering::Relaxed);
                warn!("damped (peer oscillation)")
            }
            ref e => debug!(event = ?e),
        }
        self.inner.on_event(peer, event)
    }
    fn on_close(&mut self, peer: &PeerConfig, reason: DownReason) {
        self.inner.on_close(peer, reason)
    }
}

/// Everything a peer owns between connections (its job, boxed: the task
/// holds one pointer to it, and a parked peer is this box alone); the
/// session only while it matters.
struct Job<P, M: PeerMode> {
    /// The session: made when the task starts, dropped when it parks
    /// (unless it remembers a damping delay).
    peer: Option<Box<Peer<M>>>,
    plugin: Tracked<P>,
    clock: TokioClock,
    /// The server's, for a peer that dials to park until its next dial
    /// (here, not in [`Shared`]: the job's allocation has room for it).
    wakes: Arc<Wakes>,
}

/// The session modes the server runs: [`AcceptOnly`] for passive peers,
/// [`Accepting`] for the others.
trait Mode: PeerMode<Out: Send, Slot: Send> + Send + Sized + 'static {
    /// A session of this mode.
    fn session(config: SessionConfig) -> Peer<Self>;
}

impl Mode for Accepting {
    fn session(config: SessionConfig) -> Peer<Self> {
        Peer::new(config)
    }
}

impl Mode for AcceptOnly {
    fn session(config: SessionConfig) -> Peer<Self> {
        Peer::accept_only(config)
    }
}

impl<P: Plugin + 'static, M: Mode> Job<P, M> {
    fn new(plugin: P, shared: &Arc<Shared>, clock: TokioClock, wakes: Arc<Wakes>) -> Box<Self> {
        Box::new(Job {
            peer: None,
            plugin: Tracked {
                inner: plugin,
                shared: shared.clone(),
            },
            clock,
            wakes,
        })
    }
}

impl<P: Plugin + 'static, M: Mode> Start for Job<P, M> {
    fn start(self: Box<Self>, h: &Handle) -> JoinHandle<()> {
        let span =
            tracing::info_span!("peer", addr = %self.plugin.shared.session().peer.remote_address);
        h.spawn(drive(self).instrument(span))
    }
    #[cfg(test)]
    fn has_session(&self) -> bool {
        self.peer.is_some()
    }
}

/// How one run of the driver ended.
enum Ran {
    /// Stopped ([`Server::delete_peer`], [`Server::close`]).
    Stopped,
    /// No connection, no dial in flight: park it (a passive peer until a
    /// connection comes, one that dials until its next dial).
    Idle,
}

/// The peer's task: runs corebgp-core's driver until the peer is stopped
/// or until it has nothing to do but wait (then parks the job): a passive
/// peer until a connection comes, one that dials also until its session's
/// next deadline (ConnectRetry, RFC 4271 §8.1.3; or a damping delay's end),
/// when a timer starts it again.
async fn drive<P: Plugin + 'static, M: Mode>(mut job: Box<Job<P, M>>) {
    let connector = StdConnector {
        shared: job.plugin.shared.clone(),
    };
    let shared = &connector.shared;
    shared.running.store(true, Ordering::Relaxed);
    loop {
        let ran = run_once(&mut job, &connector).await;
        if matches!(ran, Ran::Stopped) {
            break;
        }
        // Idle: a fresh session will do when a connection comes or the
        // next dial is due (a fresh session dials at once), unless this one
        // remembers a damping delay (RFC 4271 §8.1.1) not yet forgotten:
        // then it is parked with the job.
        let passive = shared.session().passive;
        let wake = match &job.peer {
            Some(p) if !passive => p.poll_timeout(),
            _ => None,
        };
        let keep = u64::from(shared.keep_until.load(Ordering::Relaxed));
        if job.clock.now().as_millis() >= keep * 1000 {
            job.peer = None;
        }
        // A peer that dials stays Active (its last state) while it waits.
        if passive {
            for s in &shared.states {
                s.store(0, Ordering::Relaxed);
            }
        }
        let wake = wake.map(|t| job.clock.0 + Duration::from_millis(t.as_millis()));
        match shared.park(job, wake) {
            None => {
                debug!("parked");
                return;
            }
            // A connection came meanwhile: run on.
            Some(j) => job = j,
        }
    }
    job.peer = None;
    shared.running.store(false, Ordering::Relaxed);
    for s in &shared.states {
        s.store(0, Ordering::Relaxed);
    }
    debug!("peer task ended");
}

/// One run of the driver over a slot of receive buffers from [`POOL`].
///
/// What lives across the `.await` lives in every peer's task beside the
/// driver for the task's whole life: the references the driver needs are
/// made inside the block that awaits it, and nothing else is kept.
async fn run_once<P: Plugin, M: Mode>(job: &mut Job<P, M>, connector: &StdConnector) -> Ran {
    let shared = &connector.shared;
    let mut slot = PoolSlot::take();
    let ran = {
        let Job {
            peer,
            plugin,
            clock,
            ..
        } = &mut *job;
        let peer = peer.get_or_insert_with(|| {
            // Built in its box: a `Peer` is large.
            let mut p = Box::new(M::session(*shared.session()));
            p.start(clock.now());
            p
        });
        let (rx0, rx1): (&mut [u8], &mut [u8]) = match &mut slot.mem {
            Some(Slot { rx: [a, b] }) => (&mut **a, &mut **b),
            None => (&mut [], &mut []),
        };
        let rx0 = rx0.get_mut(..RX_LEN).unwrap_or(&mut []);
        let rx1 = rx1.get_mut(..RX_LEN).unwrap_or(&mut []);
        // The driver writes queued UPDATEs from the queue's own buffers,
        // traded with it (`SwapBuf`). One a driver took with it when its
        // task was aborted is replaced.
        if let Some(q) = &shared.options.updates {
            q.restock(crate::queue_buffer);
        }
        {
            let mut driver = pin!(run(
                &mut **peer,
                connector,
                &*clock,
                &mut *plugin,
                &**shared,
                BuffersOf {
                    rx: [rx0, rx1],
                    tx: SwapBuf::default(),
                },
                shared.stopped(),
            ));
            // A peer may park once it has no transport, no dial in flight
            // and no connection waits. The driver first: idleness is looked
            // at only while the driver waits (all its work done) and owns
            // no transport, so dropping it then loses nothing; what it
            // waits for is the session's next deadline, which the session
            // keeps ([`drive`]).
            poll_fn(move |cx| {
                if driver.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ran::Stopped);
                }
                if shared.poll_idle(cx).is_ready() {
                    return Poll::Ready(Ran::Idle);
                }
                Poll::Pending
            })
            .await
        }
    };
    drop(slot);
    if matches!(ran, Ran::Idle)
        && let Job {
            peer: Some(peer),
            plugin,
            ..
        } = job
    {
        // Events the driver had not handed out yet (none in practice:
        // it hands them out before every wait), as it would.
        let cfg = peer.config().peer;
        while let Some(e) = peer.poll_event() {
            plugin.on_event(&cfg, &e);
            if let Event::Down { reason, .. } = e {
                Outbox::close(&**shared);
                plugin.on_close(&cfg, reason);
            }
        }
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;
    use corebgp_core::session::DefaultHooks;

    struct Quiet;

    impl OpenHooks for Quiet {
        fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
            DefaultHooks.capabilities(p, c)
        }
    }

    impl Plugin for Quiet {
        async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {}
        async fn on_update<'m>(
            &mut self,
            _: &PeerConfig,
            _: UpdateSections<'m>,
        ) -> Result<(), Notification<'m>> {
            Ok(())
        }
    }

    /// `None`: the peer has a task; `Some(kept)`: parked, with its session
    /// if `kept`.
    fn parked(s: &Server, a: IpAddr) -> Option<bool> {
        let st = lock(&s.inner.state);
        let e = st.peers.get(&a).expect("configured");
        let m = e.shared.mail();
        m.parked.as_ref().map(|j| j.has_session())
    }

    /// Waits (bounded) until `f` holds.
    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let t = tokio::time::Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A TCP connection from `from` to `to`.
    async fn dial(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
        s.connect(to).await.unwrap()
    }

    /// Reads until `n` bytes came or the connection closed; returns them.
    async fn read_some(s: &mut TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while got.len() < n {
            let k = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
                .await
                .expect("read in time")
                .unwrap_or(0);
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got
    }

    /// A server on `local`, serving on a listener of its own, with one
    /// peer at `remote`.
    async fn serving(
        local: Ipv4Addr,
        remote: Ipv4Addr,
        options: PeerOptions,
    ) -> (Server, SocketAddr) {
        let server = Server::new(local).unwrap();
        server
            .add_peer(
                PeerConfig {
                    remote_address: IpAddr::V4(remote),
                    local_as: 65001,
                    remote_as: 65002,
                },
                Quiet,
                options,
            )
            .unwrap();
        let l = TcpListener::bind((local, 0)).await.unwrap();
        let at = l.local_addr().unwrap();
        let s = server.clone();
        tokio::spawn(async move { s.serve(vec![l]).await });
        (server, at)
    }

    async fn passive_server(
        local: Ipv4Addr,
        remote: Ipv4Addr,
        damping: bool,
    ) -> (Server, SocketAddr) {
        let options = PeerOptions::new().passive(true).damping(damping);
        serving(local, remote, options).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_passive_peer_runs_only_while_connected_then_parks_without_its_session() {
        let (local, remote) = (Ipv4Addr::new(127, 14, 0, 1), Ipv4Addr::new(127, 14, 0, 2));
        let (server, at) = passive_server(local, remote, false).await;
        let a = IpAddr::V4(remote);
        until("serving", || {
            server.get_peer(a).unwrap().state == StateKind::Active
        })
        .await;
        assert_eq!(
            parked(&server, a),
            Some(false),
            "no task before a connection"
        );
        for round in 0..2 {
            let mut c = dial(remote, at).await;
            // Our OPEN: the peer's task runs, with a session.
            let open = read_some(&mut c, 19).await;
            assert!(open.len() >= 19 && open[18] == 1, "round {round}: OPEN");
            assert_eq!(
                parked(&server, a),
                None,
                "round {round}: a task while connected"
            );
            drop(c);
            until("parked again", || parked(&server, a) == Some(false)).await;
            // Still configured and waiting.
            assert_eq!(server.get_peer(a).unwrap().state, StateKind::Active);
        }
        server.close().await;
        assert!(server.get_peer(a).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damped_passive_peer_parks_with_its_session_and_still_holds_down() {
        let (local, remote) = (Ipv4Addr::new(127, 14, 1, 1), Ipv4Addr::new(127, 14, 1, 2));
        let (server, at) = passive_server(local, remote, true).await;
        let a = IpAddr::V4(remote);
        until("serving", || {
            server.get_peer(a).unwrap().state == StateKind::Active
        })
        .await;
        let mut c = dial(remote, at).await;
        let open = read_some(&mut c, 19).await;
        assert!(open.len() >= 19 && open[18] == 1, "OPEN");
        // A header with a broken marker: NOTIFICATION 1/1 (RFC 4271 §6.1),
        // which damps the peer (RFC 4271 §8.1.1).
        use tokio::io::AsyncWriteExt;
        c.write_all(&[0u8; 19]).await.unwrap();
        let rest = read_some(&mut c, usize::MAX).await;
        let n = rest.windows(2).position(|w| w == [1, 1]);
        assert!(n.is_some(), "NOTIFICATION 1/1 in {rest:?}");
        drop(c);
        until("parked", || parked(&server, a).is_some()).await;
        assert_eq!(
            parked(&server, a),
            Some(true),
            "the session remembers the damping delay"
        );
        // During the hold-down a connection is closed without a message
        // (the fresh session a parked peer without one would make would
        // answer with an OPEN).
        let mut c = dial(remote, at).await;
        let got = read_some(&mut c, 19).await;
        assert!(got.is_empty(), "held down, yet got {got:?}");
        server.close().await;
    }

    /// [`serving`], the peer dialling port `port` every `retry`.
    async fn dialling_server(
        local: Ipv4Addr,
        remote: Ipv4Addr,
        port: u16,
        retry: Duration,
    ) -> (Server, SocketAddr) {
        let options = PeerOptions::new()
            .port(port)
            .connect_retry_time(retry)
            .damping(false);
        serving(local, remote, options).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dialling_peer_parks_between_dials_and_dials_again_at_connect_retry() {
        let (local, remote) = (Ipv4Addr::new(127, 14, 2, 1), Ipv4Addr::new(127, 14, 2, 2));
        // The peer's side: takes each dial and closes it before any OPEN
        // (OpenSent, TCP fails: Active until ConnectRetry, RFC 4271 §8.2.2).
        let peer_side = TcpListener::bind((remote, 0)).await.unwrap();
        let port = peer_side.local_addr().unwrap().port();
        let retry = Duration::from_secs(1);
        let (server, _) = dialling_server(local, remote, port, retry).await;
        let a = IpAddr::V4(remote);
        let next_dial = || async {
            let (c, _) = tokio::time::timeout(Duration::from_secs(60), peer_side.accept())
                .await
                .expect("a dial in time")
                .unwrap();
            drop(c);
            tokio::time::Instant::now()
        };
        let mut last = next_dial().await;
        for round in 0..3 {
            until("parked", || parked(&server, a).is_some()).await;
            assert_eq!(
                server.get_peer(a).unwrap().state,
                StateKind::Active,
                "round {round}: parked, and Active"
            );
            // The timer starts the job again: a fresh session, which dials.
            let now = next_dial().await;
            // ConnectRetry with the RFC's jitter (75–100 %), or more.
            assert!(
                now - last >= retry * 3 / 4,
                "round {round}: {:?}",
                now - last
            );
            last = now;
        }
        // Removed while parked: its timer finds nothing, and no dial comes.
        until("parked", || parked(&server, a).is_some()).await;
        server.delete_peer(a).await.unwrap();
        let dialled = tokio::time::timeout(3 * retry, peer_side.accept()).await;
        assert!(dialled.is_err(), "dialled after being removed");
        server.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dialling_peer_parked_until_its_next_dial_takes_a_connection() {
        let (local, remote) = (Ipv4Addr::new(127, 14, 3, 1), Ipv4Addr::new(127, 14, 3, 2));
        // Nothing listens at the peer's port: each dial is refused at once.
        let port = {
            let l = std::net::TcpListener::bind((remote, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let (server, at) = dialling_server(local, remote, port, Duration::from_secs(3600)).await;
        let a = IpAddr::V4(remote);
        until("parked after a refused dial", || {
            parked(&server, a).is_some()
        })
        .await;
        // The peer dials us meanwhile: the job starts and answers.
        let mut c = dial(remote, at).await;
        let open = read_some(&mut c, 19).await;
        assert!(open.len() >= 19 && open[18] == 1, "OPEN: {open:?}");
        assert_eq!(parked(&server, a), None, "a task while connected");
        drop(c);
        until("parked again", || parked(&server, a).is_some()).await;
        server.close().await;
        assert!(server.get_peer(a).is_err());
    }
}
