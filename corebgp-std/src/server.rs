//! The server: CoreBGP's `Server` over tokio. One task per peer runs
//! corebgp-core's driver; one task per listener accepts and hands each
//! connection to the peer it comes from. Nothing here decides anything about
//! the protocol.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use corebgp_core::driver::{Buffers, Clock, Connector, SHUTDOWN_LINGER, run};
use corebgp_core::outbox::Outbox;
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, Direction, DownReason, Event, Instant, Negotiated, OpenHooks, Peer, PeerConfig,
    SessionConfig, StateKind,
};
use corebgp_core::wire::{
    CeaseSubcode, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Notification, Open, RouteRefresh,
    UpdateSections,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{Instrument, debug, info, warn};

use crate::UpdateQueue;
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
}

#[derive(Default)]
struct State {
    /// Boxed: the table then holds a pointer per slot, and an entry's
    /// ~360 bytes are allocated once per peer, not once per slot.
    peers: HashMap<IpAddr, Box<Entry>>,
    /// The runtime peers are spawned on, while serving.
    serving: Option<Handle>,
    closed: bool,
    listeners: Vec<Arc<TcpListener>>,
}

type Spawn = Box<dyn FnOnce(&Handle) -> JoinHandle<()> + Send>;

enum Task {
    /// Added before [`Server::serve`]: starts when serving starts.
    Pending(Spawn),
    Running(JoinHandle<()>),
    /// Placeholder while a pending task is being started.
    Gone,
}

struct Entry {
    info: PeerInfo,
    shared: Arc<Shared>,
    task: Task,
}

impl Drop for Entry {
    /// A peer the server forgets (also when the last handle of the server
    /// goes without [`Server::close`]) stops; a Cease subcode already
    /// asked for stays.
    fn drop(&mut self) {
        self.shared.stop(CeaseSubcode::AdministrativeShutdown);
    }
}

/// What the server and the peer's task share: the one allocation per peer
/// besides the task and its session. It carries the states the task
/// reports, and the server's mail to the task: connections the listeners
/// matched to the peer and the request to stop. (A tokio `mpsc` channel and
/// a `oneshot` cost 1.6 KiB of resident memory per peer; this costs none
/// while no connection waits.)
struct Shared {
    states: [AtomicU8; 2],
    running: AtomicBool,
    passive: bool,
    mail: Mutex<Mailbox>,
}

#[derive(Default)]
struct Mailbox {
    /// At most [`INBOUND_BACKLOG`]; its memory is freed when it empties.
    inbound: VecDeque<TcpStream>,
    accept_waker: Option<Waker>,
    stop: Option<CeaseSubcode>,
    stop_waker: Option<Waker>,
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

impl Shared {
    fn mail(&self) -> MutexGuard<'_, Mailbox> {
        // Nothing holding the lock panics.
        self.mail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a connection to the peer's task; gives it back when
    /// [`INBOUND_BACKLOG`] connections already wait.
    fn deliver(&self, s: TcpStream) -> Result<(), TcpStream> {
        let mut m = self.mail();
        if m.inbound.len() >= INBOUND_BACKLOG {
            return Err(s);
        }
        m.inbound.push_back(s);
        if let Some(w) = m.accept_waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// The next connection for the peer (cancel-safe).
    async fn next_inbound(&self) -> TcpStream {
        poll_fn(|cx| {
            let mut m = self.mail();
            match m.inbound.pop_front() {
                Some(s) => {
                    if m.inbound.is_empty() {
                        m.inbound = VecDeque::new();
                    }
                    Poll::Ready(s)
                }
                None => {
                    m.accept_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Asks the task to stop with Cease `sub`, unless it was asked already.
    fn stop(&self, sub: CeaseSubcode) {
        let mut m = self.mail();
        if m.stop.is_none() {
            m.stop = Some(sub);
            if let Some(w) = m.stop_waker.take() {
                w.wake();
            }
        }
    }

    /// Completes when the task is asked to stop, with the subcode.
    async fn stopped(&self) -> CeaseSubcode {
        poll_fn(|cx| {
            let mut m = self.mail();
            match m.stop {
                Some(sub) => Poll::Ready(sub),
                None => {
                    m.stop_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn state(&self) -> StateKind {
        let s = kind_from(self.states[0].load(Ordering::Relaxed))
            .max(kind_from(self.states[1].load(Ordering::Relaxed)));
        if s == StateKind::Idle && self.passive && self.running.load(Ordering::Relaxed) {
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
        let shared = Arc::new(Shared {
            states: [AtomicU8::new(0), AtomicU8::new(0)],
            running: AtomicBool::new(false),
            passive: session.passive,
            mail: Mutex::new(Mailbox::default()),
        });
        let job = PeerJob {
            session,
            plugin: Tracked {
                inner: plugin,
                shared: shared.clone(),
            },
            connector: StdConnector {
                remote: SocketAddr::new(addr, options.port),
                local: options.local_address,
                md5: options.md5_key.clone(),
                gtsm: options.ttl_security,
                nodelay: options.nodelay,
                hook: options.socket_hook.clone(),
                shared: shared.clone(),
            },
            outbox: MaybeQueue(options.updates.clone()),
            clock: TokioClock(self.inner.epoch),
        };
        let task = match &st.serving {
            Some(h) => Task::Running(job.spawn(h)),
            None => Task::Pending(Box::new(move |h: &Handle| job.spawn(h))),
        };
        info!(peer = %addr, remote_as = config.remote_as, "peer added");
        st.peers.insert(
            addr,
            Box::new(Entry {
                info: PeerInfo {
                    config,
                    session,
                    options,
                    state: StateKind::Idle,
                },
                shared,
                task,
            }),
        );
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
            if e.info.options.md5_key.is_some() {
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
                if let Some(key) = &e.info.options.md5_key {
                    set_listener_keys(&listeners, *addr, key)?;
                }
                if e.info.options.ttl_security {
                    set_listener_ttl(&listeners)?;
                }
            }
            let handle = Handle::current();
            for e in st.peers.values_mut() {
                e.task = match std::mem::replace(&mut e.task, Task::Gone) {
                    Task::Pending(spawn) => Task::Running(spawn(&handle)),
                    t => t,
                };
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
        let entries: Vec<(IpAddr, Box<Entry>)> = {
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
        let mut i = self.info.clone();
        i.state = self.shared.state();
        i
    }
}

fn stop_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now()
        + Duration::from_millis(SHUTDOWN_LINGER.as_millis() as u64)
        + STOP_GRACE
}

/// Tells the peer's task to stop with Cease `sub`; returns its handle.
fn begin_stop(mut e: Box<Entry>, sub: CeaseSubcode) -> Option<JoinHandle<()>> {
    e.shared.stop(sub);
    match std::mem::replace(&mut e.task, Task::Gone) {
        Task::Running(h) => Some(h),
        Task::Pending(_) | Task::Gone => None,
    }
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
        let st = lock(&self.state);
        let Some(e) = st.peers.get(&ip) else {
            debug!(%remote, "connection from an unknown address; closed");
            return;
        };
        if let Some(local) = e.info.options.local_address {
            let to = s.local_addr().map(|a| a.ip().to_canonical());
            if to.as_ref().ok() != Some(&local) {
                debug!(%remote, to = ?to.ok(), %local, "connection to another local address; closed");
                return;
            }
        }
        if e.shared.deliver(s).is_err() {
            debug!(%remote, "too many inbound connections waiting for the session; closed");
        }
    }
}

/// Per-peer buffers carved out of large anonymous mappings
/// ([`pages::map`]): a buffer costs resident memory only where bytes land,
/// and each of a slot's three buffers starts on a page of its own, so the
/// pages of a receive buffer can be handed back while its connection idles
/// ([`Conn`]). An idle session thus costs no buffer memory; a collision
/// buffer or a send buffer that is never used, nothing either.
/// `vec![0; n]` per peer would cost all of it (the allocator zeroes small
/// allocations eagerly). Chunks are never unmapped; freed slots are reused
/// by later peers.
struct BufferPool {
    /// The largest message a buffer holds.
    max: usize,
    free: Mutex<Vec<&'static mut [u8]>>,
}

/// Slots per chunk: 64 × 12 KiB = 768 KiB of address space for 4096-byte
/// messages.
const SLOTS_PER_CHUNK: usize = 64;

impl BufferPool {
    const fn new(max: usize) -> Self {
        Self {
            max,
            free: Mutex::new(Vec::new()),
        }
    }

    /// One buffer's share of a slot: whole pages.
    fn part(&self) -> usize {
        pages::round_up(self.max)
    }

    /// A slot: two receive buffers and a send buffer, each starting on a
    /// page.
    fn take(&self) -> &'static mut [u8] {
        let slot = 3 * self.part();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            free.extend(pages::map(slot * SLOTS_PER_CHUNK).chunks_exact_mut(slot));
        }
        free.pop().unwrap_or_else(|| pages::map(slot))
    }

    fn give(&self, buf: &'static mut [u8]) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buf);
    }
}

/// A slot taken from a pool, given back when the peer's task ends (also
/// when it is aborted).
struct PoolSlot {
    pool: &'static BufferPool,
    mem: Option<&'static mut [u8]>,
}

impl PoolSlot {
    fn take(pool: &'static BufferPool) -> Self {
        Self {
            pool,
            mem: Some(pool.take()),
        }
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        if let Some(m) = self.mem.take() {
            self.pool.give(m);
        }
    }
}

/// Two receive buffers and a send buffer of 4096 bytes each.
static POOL_4K: BufferPool = BufferPool::new(MAX_MESSAGE_LEN);
/// The same with RFC 8654 Extended Messages.
static POOL_64K: BufferPool = BufferPool::new(MAX_EXTENDED_MESSAGE_LEN);

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
struct StdConnector {
    remote: SocketAddr,
    local: Option<IpAddr>,
    md5: Option<Arc<[u8]>>,
    gtsm: bool,
    nodelay: bool,
    hook: Option<crate::SocketHook>,
    /// Where the listeners leave this peer's connections.
    shared: Arc<Shared>,
}

impl StdConnector {
    async fn dial(&self) -> io::Result<TcpStream> {
        let v4 = self.remote.is_ipv4();
        let sock = if v4 {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        sock.set_nodelay(self.nodelay)?;
        if self.gtsm {
            // RFC 5082 §3: send with TTL 255, accept ≥ 254 (one hop).
            sockopt::set_ttl(sock.as_fd(), v4, 255)?;
            sockopt::set_min_ttl(sock.as_fd(), v4, 254)?;
        }
        if let Some(k) = &self.md5 {
            sockopt::set_md5(sock.as_fd(), !v4, self.remote.ip(), k)?;
        }
        if let Some(h) = &self.hook {
            h(sock.as_fd(), SocketKind::Outbound)?;
        }
        if let Some(l) = self.local {
            sock.bind(SocketAddr::new(l, 0))?;
        }
        sock.connect(self.remote).await
    }

    /// Options for a connection the peer opened (the listener's MD5 key
    /// already covers it).
    fn prepare_inbound(&self, s: &TcpStream) -> io::Result<()> {
        s.set_nodelay(self.nodelay)?;
        if self.gtsm {
            let v4 = self.remote.is_ipv4();
            sockopt::set_ttl(s.as_fd(), v4, 255)?;
            sockopt::set_min_ttl(s.as_fd(), v4, 254)?;
        }
        if let Some(h) = &self.hook {
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
/// Reading gives the receive buffer's pages back while the connection
/// idles: when a read would wait, the last one was short (a KEEPALIVE, an
/// OPEN: the peer is not streaming UPDATEs) and the driver offers whole
/// free pages (nothing of a message is buffered in them), those pages are
/// released ([`pages::release`]). An idle session then holds no resident
/// buffer memory; a peer sending its table never pays the extra system
/// call, as its reads are long.
pub(crate) struct Conn {
    s: Option<TcpStream>,
    /// The last read was at most [`SHORT_READ`] bytes.
    short: bool,
}

/// A read this short means the peer sends control messages or trickles.
const SHORT_READ: usize = 256;

impl Conn {
    fn new(s: TcpStream) -> Self {
        Self {
            s: Some(s),
            short: true,
        }
    }
}

impl embedded_io_async::ErrorType for Conn {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for Conn {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Some(s) = &self.s else { return Ok(0) };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match s.try_read(buf) {
                Ok(n) => {
                    self.short = n <= SHORT_READ;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.short {
                // `buf` is the driver's free space: nothing in it is needed.
                pages::release(buf);
                self.short = false;
            }
            // Not `readable()`: its future is larger, and two of these
            // live in every peer's task.
            poll_fn(|cx| s.poll_read_ready(cx)).await?;
        }
    }
}

impl embedded_io_async::Write for Conn {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let Some(s) = &self.s else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match s.try_write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll_fn(|cx| s.poll_write_ready(cx)).await?
                }
                Err(e) => return Err(e),
            }
        }
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
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
        // peer's task for its whole life (passive peers never dial).
        match Box::pin(self.dial()).await {
            Ok(s) => {
                debug!(remote = %self.remote, "connected");
                Some(Conn::new(s))
            }
            Err(e) => {
                debug!(remote = %self.remote, error = %e, "dial failed");
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
                    return Conn::new(s);
                }
                Err(e) => {
                    warn!(error = %e, "cannot set socket options on an inbound connection; closed")
                }
            }
        }
    }
}

/// The peer's outbox: its UPDATE queue, or nothing.
struct MaybeQueue(Option<Arc<UpdateQueue>>);

impl Outbox for MaybeQueue {
    async fn ready(&self) {
        match &self.0 {
            Some(q) => q.ready().await,
            None => std::future::pending().await,
        }
    }
    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        self.0.as_ref().and_then(|q| q.take(buf))
    }
    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        self.0.as_ref().and_then(|q| q.take_if_fits(buf))
    }
    fn open(&self, max_len: usize) {
        if let Some(q) = &self.0 {
            q.open(max_len);
        }
    }
    fn close(&self) {
        if let Some(q) = &self.0 {
            q.close();
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
            Event::Damped { .. } => warn!("damped (peer oscillation)"),
            ref e => debug!(event = ?e),
        }
        self.inner.on_event(peer, event)
    }
    fn on_close(&mut self, peer: &PeerConfig, reason: DownReason) {
        self.inner.on_close(peer, reason)
    }
}

/// Everything one peer's task owns.
struct PeerJob<P> {
    session: SessionConfig,
    plugin: Tracked<P>,
    connector: StdConnector,
    outbox: MaybeQueue,
    clock: TokioClock,
}

impl<P: Plugin + 'static> PeerJob<P> {
    fn spawn(self, h: &Handle) -> JoinHandle<()> {
        let span = tracing::info_span!("peer", addr = %self.session.peer.remote_address);
        let Self {
            session,
            plugin,
            connector,
            outbox,
            clock,
        } = self;
        let pool = if session.extended_messages {
            &POOL_64K
        } else {
            &POOL_4K
        };
        // The session is moved into its box here, not in the task: what an
        // async fn moves out of its arguments stays in its state twice.
        let peer = Box::new(Peer::new(session));
        h.spawn(
            drive(peer, plugin, connector, outbox, clock, PoolSlot::take(pool)).instrument(span),
        )
    }
}

/// The peer's task. Every argument is used in place (none is moved into a
/// local), so each is stored once in the task.
async fn drive<P: Plugin>(
    mut peer: Box<Peer>,
    mut plugin: Tracked<P>,
    connector: StdConnector,
    outbox: MaybeQueue,
    clock: TokioClock,
    mut slot: PoolSlot,
) {
    let (max, part) = (slot.pool.max, slot.pool.part());
    let mem: &mut [u8] = slot.mem.as_deref_mut().unwrap_or(&mut []);
    let (rx0, rest) = mem.split_at_mut(part.min(mem.len()));
    let (rx1, tx) = rest.split_at_mut(part.min(rest.len()));
    let rx0 = rx0.get_mut(..max).unwrap_or(&mut []);
    let rx1 = rx1.get_mut(..max).unwrap_or(&mut []);
    let tx = tx.get_mut(..max).unwrap_or(&mut []);
    // Without a queue nothing is ever sent from `tx`.
    let tx: &mut [u8] = if outbox.0.is_some() { tx } else { &mut [] };
    peer.start(clock.now());
    plugin.shared.running.store(true, Ordering::Relaxed);
    let shared = &*connector.shared;
    run(
        &mut peer,
        &connector,
        &clock,
        &mut plugin,
        &outbox,
        Buffers { rx: [rx0, rx1], tx },
        shared.stopped(),
    )
    .await;
    drop(peer);
    drop(slot);
    shared.running.store(false, Ordering::Relaxed);
    for s in &shared.states {
        s.store(0, Ordering::Relaxed);
    }
    debug!("peer task ended");
}
