//! TCP plumbing: caller-provided buffers, active and passive opens, socket
//! tuning, and the hand-over of a connected socket to the session.

use core::convert::Infallible;

use embassy_futures::select::select_array;
use embassy_net::tcp::{AcceptError, State, TcpReader, TcpSocket, TcpWriter};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_time::{Duration, with_timeout};

use crate::Error;
use crate::fmt::{debug, info, log_warn};

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

/// How long closing a connection may wait for queued bytes (a final
/// NOTIFICATION) and the FIN to be acknowledged before the socket is reset.
pub const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// Caller-provided memory for one peer: the TCP socket's receive and transmit
/// buffers and the message buffer the session's framer works in.
///
/// * `RX`: socket receive buffer = the TCP window advertised to the peer.
/// * `TX`: socket transmit buffer. Messages are streamed through it, so it
///   need not hold a whole message.
/// * `MSG`: the framer's buffer; at least the largest message accepted:
///   4096 (RFC 4271), 65535 with RFC 8654 Extended Messages.
///
/// A slot is plain bytes: place it in a `static` (e.g. `StaticCell`) on a
/// microcontroller so it is counted in `.bss` and not on a task's stack.
/// Slots are reused across connections.
pub struct Slot<const RX: usize, const TX: usize, const MSG: usize = 4096> {
    rx: [u8; RX],
    tx: [u8; TX],
    msg: [u8; MSG],
}

/// A slot for RFC 4271 messages (4096 bytes): 12 KiB.
pub type StandardSlot = Slot<4096, 4096, 4096>;
/// A slot for RFC 8654 Extended Messages (65535 bytes): 72 KiB, almost all of
/// it the message buffer.
pub type ExtendedSlot = Slot<4096, 4096, 65535>;

impl<const RX: usize, const TX: usize, const MSG: usize> Slot<RX, TX, MSG> {
    /// Bytes of RAM this slot occupies.
    pub const RAM: usize = RX + TX + MSG;

    /// A zeroed slot (`const`: usable in a `static` initialiser).
    pub const fn new() -> Self {
        Self {
            rx: [0; RX],
            tx: [0; TX],
            msg: [0; MSG],
        }
    }

    fn parts(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.rx, &mut self.tx, &mut self.msg)
    }
}

impl<const RX: usize, const TX: usize, const MSG: usize> Default for Slot<RX, TX, MSG> {
    fn default() -> Self {
        Self::new()
    }
}

/// Socket options applied to every BGP connection. Nagle's algorithm is
/// always off (BGP writes whole messages; KEEPALIVEs must not wait) and TCP
/// keep-alive is always off (BGP KEEPALIVEs do that job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketTuning {
    /// smoltcp's socket timeout: the connection is reset when transmitted
    /// data stays unacknowledged this long. It must be longer than the BGP
    /// hold time so that the session's hold timer (and RFC 9687 send hold
    /// timer) fire first and send their NOTIFICATION.
    pub timeout: Option<Duration>,
    /// IP hop limit (TTL) of outgoing segments: `Some(1)` for single-hop
    /// eBGP, `Some(255)` for the send side of GTSM (RFC 5082), `None` for the
    /// stack's default (64).
    pub hop_limit: Option<u8>,
}

impl SocketTuning {
    /// How much longer than the hold time the socket timeout is.
    pub const TIMEOUT_SLACK: Duration = Duration::from_secs(30);

    /// Tuning for a session that proposes `hold_time_s` seconds: socket
    /// timeout = hold time + [`Self::TIMEOUT_SLACK`] (hold time 0, i.e. no
    /// keepalives, uses 240 s, the RFC 4271 suggested hold time), stack
    /// default hop limit.
    pub const fn for_hold_time(hold_time_s: u16) -> Self {
        let hold = if hold_time_s == 0 {
            240
        } else {
            hold_time_s as u64
        };
        Self {
            timeout: Some(Duration::from_secs(hold + Self::TIMEOUT_SLACK.as_secs())),
            hop_limit: None,
        }
    }

    /// The same with a hop limit (`1` for single-hop eBGP).
    pub const fn with_hop_limit(mut self, hop_limit: u8) -> Self {
        self.hop_limit = Some(hop_limit);
        self
    }
}

/// A peer this side connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActivePeer {
    /// Address and port (normally [`BGP_PORT`]) to connect to.
    pub remote: IpEndpoint,
    /// Upper bound on one connection attempt. A black-holed peer otherwise
    /// keeps the socket in SYN-SENT forever. The retry policy between
    /// attempts (ConnectRetryTimer, IdleHoldTimer) is the session's, not the
    /// adapter's.
    pub connect_timeout: Duration,
    /// Socket options.
    pub tuning: SocketTuning,
}

impl ActivePeer {
    /// Default connect timeout: 10 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A peer at `addr`:179, with the default connect timeout and tuning for
    /// `hold_time_s`.
    pub const fn new(addr: IpAddress, hold_time_s: u16) -> Self {
        Self {
            remote: IpEndpoint::new(addr, BGP_PORT),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            tuning: SocketTuning::for_hold_time(hold_time_s),
        }
    }
}

/// A peer this side accepts connections from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PassivePeer {
    /// The only source address accepted for this peer; connections from any
    /// other address are reset.
    pub remote: IpAddress,
    /// Socket options, applied once the connection is accepted.
    pub tuning: SocketTuning,
}

impl PassivePeer {
    /// A peer at `addr`, with tuning for `hold_time_s`.
    pub const fn new(addr: IpAddress, hold_time_s: u16) -> Self {
        Self {
            remote: addr,
            tuning: SocketTuning::for_hold_time(hold_time_s),
        }
    }
}

/// A connected TCP socket, lent to the session for the connection's lifetime.
///
/// The reader and writer implement `embedded_io_async::{Read, Write}` (with
/// `ReadReady`/`WriteReady`), which is what corebgp-core's driver is generic
/// over. A pending `read` is cancel-safe.
pub struct Link<'s> {
    /// Receive half.
    pub reader: TcpReader<'s>,
    /// Transmit half.
    pub writer: TcpWriter<'s>,
    /// The slot's message buffer, for the session's framer.
    pub msg_buf: &'s mut [u8],
    /// Local address and port, when the stack reports them.
    pub local: Option<IpEndpoint>,
    /// The peer's address and port.
    pub remote: IpEndpoint,
}

fn tune(socket: &mut TcpSocket<'_>, t: &SocketTuning) {
    socket.set_nagle_enabled(false);
    socket.set_keep_alive(None);
    socket.set_timeout(t.timeout);
    socket.set_hop_limit(t.hop_limit);
}

/// Resets the connection and waits (bounded) until the RST left, so the
/// socket can be reused or dropped. States that send no RST (nothing
/// synchronised yet, or already closed) are not waited for: smoltcp would
/// keep `flush` pending there.
async fn abort(socket: &mut TcpSocket<'_>) {
    let sends_rst = !matches!(
        socket.state(),
        State::Closed | State::Listen | State::SynSent | State::TimeWait
    );
    socket.abort();
    if sends_rst {
        let _ = with_timeout(CLOSE_LINGER, socket.flush()).await;
    }
}

/// Half-closes after the queued bytes (a final NOTIFICATION), waits (bounded
/// by [`CLOSE_LINGER`]) until they and the FIN are acknowledged and the peer
/// closed too, then resets whatever is left so the socket is `Closed` and can
/// listen or connect again (smoltcp refuses both in FIN-WAIT/TIME-WAIT).
async fn close(socket: &mut TcpSocket<'_>) {
    socket.close();
    let graceful = async {
        if socket.flush().await.is_err() {
            return;
        }
        let mut sink = [0u8; 64];
        while let Ok(1..) = socket.read(&mut sink).await {}
    };
    let _ = with_timeout(CLOSE_LINGER, graceful).await;
    abort(socket).await;
}

/// Lends the connected socket to `run`, then closes it.
async fn run_and_close<R>(
    socket: &mut TcpSocket<'_>,
    msg_buf: &mut [u8],
    remote: IpEndpoint,
    run: impl AsyncFnOnce(Link<'_>) -> R,
) -> R {
    let local = socket.local_endpoint();
    let out = {
        let (reader, writer) = socket.split();
        // >>> corebgp-core driver plugs in here (inside `run`): the shared
        // >>> async driver runs the sans-IO session over `reader`/`writer`.
        run(Link {
            reader,
            writer,
            msg_buf,
            local,
            remote,
        })
        .await
    };
    close(socket).await;
    debug!("connection with {} closed", remote);
    out
}

/// Listens on `port` until one of `peers` connects; resets everyone else.
/// Returns the peer's index and endpoint.
async fn accept_from(
    socket: &mut TcpSocket<'_>,
    port: u16,
    peers: &[PassivePeer],
) -> Result<(usize, IpEndpoint), Error> {
    loop {
        match socket.accept(port).await {
            Ok(()) => {}
            // The peer reset a half-open connection: listen again.
            Err(AcceptError::ConnectionReset) => {
                abort(socket).await;
                continue;
            }
            Err(e) => return Err(Error::Accept(e)),
        }
        let Some(remote) = socket.remote_endpoint() else {
            // Closed again before we looked (RST right after the handshake).
            abort(socket).await;
            continue;
        };
        if let Some(i) = peers.iter().position(|p| p.remote == remote.addr) {
            info!("accepted BGP connection from {}", remote);
            return Ok((i, remote));
        }
        log_warn!("reset connection from unconfigured {}", remote);
        abort(socket).await;
    }
}

/// Active open: connects to `peer` (bounded by its connect timeout), tunes
/// the socket, runs `run` on the connection, then closes it.
///
/// One call is one connection attempt; the retry policy belongs to the
/// session. `run` is where corebgp-core's driver runs the session; its result
/// is returned as is.
///
/// # Panics
/// When `stack`'s `StackResources` has no free socket entry (a build-time
/// sizing error, never caused by network input): give it one entry per slot
/// in use at once, plus what the rest of the firmware uses.
pub async fn connect<const RX: usize, const TX: usize, const MSG: usize, R>(
    stack: Stack<'_>,
    slot: &mut Slot<RX, TX, MSG>,
    peer: &ActivePeer,
    run: impl AsyncFnOnce(Link<'_>) -> R,
) -> Result<R, Error> {
    let (rx, tx, msg) = slot.parts();
    let mut socket = TcpSocket::new(stack, rx, tx);
    tune(&mut socket, &peer.tuning);
    match with_timeout(peer.connect_timeout, socket.connect(peer.remote)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            debug!("connect to {} failed: {}", peer.remote, e);
            abort(&mut socket).await;
            return Err(Error::Connect(e));
        }
        Err(_) => {
            debug!("connect to {} timed out", peer.remote);
            abort(&mut socket).await;
            return Err(Error::ConnectTimeout);
        }
    }
    info!("connected to {}", peer.remote);
    Ok(run_and_close(&mut socket, msg, peer.remote, run).await)
}

/// Passive open for one peer: listens on `port` (normally [`BGP_PORT`])
/// until `peer` connects, resetting connections from any other address, then
/// runs `run` on the connection and closes it.
///
/// # Panics
/// As [`connect`], when the stack has no free socket entry.
pub async fn accept<const RX: usize, const TX: usize, const MSG: usize, R>(
    stack: Stack<'_>,
    slot: &mut Slot<RX, TX, MSG>,
    port: u16,
    peer: &PassivePeer,
    run: impl AsyncFnOnce(Link<'_>) -> R,
) -> Result<R, Error> {
    let (rx, tx, msg) = slot.parts();
    let mut socket = TcpSocket::new(stack, rx, tx);
    let (_, remote) = accept_from(&mut socket, port, core::slice::from_ref(peer)).await?;
    tune(&mut socket, &peer.tuning);
    Ok(run_and_close(&mut socket, msg, remote, run).await)
}

/// Passive opens for several peers in one task, without allocation: one
/// listening socket per slot on `port`, each accepting any of `peers` and
/// resetting strangers. Give it one slot per configured peer.
///
/// Slots are not bound to peers: smoltcp hands a SYN to whichever socket
/// listens first, so each accepted connection is matched against `peers`
/// and `run(index, link)` is called with the matching peer's index. Deciding
/// what a second connection from a peer that already has one means
/// (collision detection, RFC 4271 §6.8) is the session's job, made inside
/// `run`. Each slot listens again when `run` returns, forever; this only
/// returns on a configuration error ([`Error::Accept`]: port 0).
///
/// # Panics
/// As [`connect`], when the stack has fewer free socket entries than `N`.
pub async fn serve_passive<const N: usize, const RX: usize, const TX: usize, const MSG: usize>(
    stack: Stack<'_>,
    slots: &mut [Slot<RX, TX, MSG>; N],
    port: u16,
    peers: &[PassivePeer],
    run: impl AsyncFn(usize, Link<'_>),
) -> Result<Infallible, Error> {
    let run = &run;
    let futs = slots.each_mut().map(|slot| async move {
        let (rx, tx, msg) = slot.parts();
        let mut socket = TcpSocket::new(stack, rx, tx);
        loop {
            let (i, remote) = accept_from(&mut socket, port, peers).await?;
            if let Some(peer) = peers.get(i) {
                tune(&mut socket, &peer.tuning);
            }
            run_and_close(&mut socket, msg, remote, async |link| run(i, link).await).await;
        }
    });
    // Each slot's future only ends with an error: report the first.
    select_array(futs).await.0
}
