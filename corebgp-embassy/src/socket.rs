//! TCP plumbing: caller-provided buffers, sockets that outlive their
//! connections, owned connections for the driver, socket tuning.

use core::cell::{Cell, RefCell};
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_net::tcp::{AcceptError, Error as TcpError, State, TcpSocket};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_sync::waitqueue::WakerRegistration;
use embassy_time::{Duration, with_timeout};
use embedded_io_async::{ErrorType, Read, ReadReady, Write, WriteReady};

use crate::Error;
use crate::fmt::{debug, info, log_warn};

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

/// How long reusing a socket may wait for its previous connection to finish
/// closing (queued bytes such as a final NOTIFICATION, then the FIN, both
/// acknowledged) before the rest is reset.
pub const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// Caller-provided memory of one TCP socket.
///
/// * `RX`: receive buffer = the TCP window advertised to the peer. The
///   driver reads messages into its own buffers, so this need not hold a
///   whole message; it bounds how fast routes arrive, not their size.
/// * `TX`: transmit buffer. Messages are streamed through it, so it need not
///   hold a whole message either.
///
/// Plain bytes: put it in a `static` (e.g. `StaticCell`) on a
/// microcontroller so it is counted in `.bss`, not on a task's stack.
pub struct SocketBuffers<const RX: usize = 2048, const TX: usize = 2048> {
    rx: [u8; RX],
    tx: [u8; TX],
}

impl<const RX: usize, const TX: usize> SocketBuffers<RX, TX> {
    /// Bytes of RAM these buffers occupy.
    pub const RAM: usize = RX + TX;

    /// Zeroed buffers (`const`: usable in a `static` initialiser).
    pub const fn new() -> Self {
        Self {
            rx: [0; RX],
            tx: [0; TX],
        }
    }
}

impl<const RX: usize, const TX: usize> Default for SocketBuffers<RX, TX> {
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
    /// Upper bound on one connection attempt. The driver also abandons a
    /// dial when the session's ConnectRetryTimer expires; this bound keeps a
    /// direct [`Socket::connect`] from hanging on a black-holed peer.
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

/// One embassy-net TCP socket that outlives its connections.
///
/// A connection ([`Connection`]) takes the socket out and puts it back when
/// it is dropped, closing gracefully (the queued bytes — a final
/// NOTIFICATION — then a FIN); the next user of the socket waits (at most
/// [`CLOSE_LINGER`]) for that close to finish. This is how the driver's
/// "one owned transport per connection, dropping it closes it" meets
/// embassy-net's sockets, which borrow their buffers and cannot be split
/// into owned halves.
///
/// Keep sockets alive as long as their stack runs (a `static` on a
/// microcontroller): dropping one removes it from the stack at once, and a
/// NOTIFICATION still queued in it is lost.
pub struct Socket<'a> {
    socket: RefCell<Option<TcpSocket<'a>>>,
    /// Accepted by a [`crate::Listener`] for the peer of this index, waiting
    /// for that peer's connector to take it.
    pub(crate) claimed: Cell<Option<usize>>,
    returned: RefCell<WakerRegistration>,
}

impl<'a> Socket<'a> {
    /// A socket of `stack` working in `buffers`.
    ///
    /// # Panics
    /// When `stack`'s `StackResources` has no free socket entry (a build-time
    /// sizing error, never caused by network input): give it one entry per
    /// [`Socket`] plus what the rest of the firmware uses.
    pub fn new<const RX: usize, const TX: usize>(
        stack: Stack<'a>,
        buffers: &'a mut SocketBuffers<RX, TX>,
    ) -> Self {
        Self {
            socket: RefCell::new(Some(TcpSocket::new(
                stack,
                &mut buffers.rx,
                &mut buffers.tx,
            ))),
            claimed: Cell::new(None),
            returned: RefCell::new(WakerRegistration::new()),
        }
    }

    /// Whether the socket is home (not lent to a connection).
    pub fn is_idle(&self) -> bool {
        self.socket.try_borrow().is_ok_and(|s| s.is_some())
    }

    pub(crate) fn take(&self) -> Option<TcpSocket<'a>> {
        self.socket.try_borrow_mut().ok()?.take()
    }

    pub(crate) fn put(&self, socket: TcpSocket<'a>) {
        if let Ok(mut home) = self.socket.try_borrow_mut() {
            *home = Some(socket);
        }
        if let Ok(mut w) = self.returned.try_borrow_mut() {
            w.wake();
        }
    }

    /// Completes when the socket is home and not claimed.
    pub(crate) async fn wait_free(&self) {
        poll_fn(|cx| {
            if self.claimed.get().is_none() && self.is_idle() {
                return Poll::Ready(());
            }
            if let Ok(mut w) = self.returned.try_borrow_mut() {
                w.register(cx.waker());
            }
            Poll::Pending
        })
        .await
    }

    /// Wraps the socket in a guard that puts it back when dropped.
    pub(crate) fn lend<'s>(&'s self, remote: IpEndpoint) -> Option<Connection<'s, 'a>> {
        let socket = self.take()?;
        Some(Connection {
            local: socket.local_endpoint(),
            socket: Some(socket),
            home: self,
            remote,
        })
    }

    /// Active open: waits for the socket's previous connection to finish
    /// closing, tunes it, connects to `peer` (bounded by its connect
    /// timeout).
    pub fn connect<'s>(
        &'s self,
        peer: &ActivePeer,
    ) -> impl Future<Output = Result<Connection<'s, 'a>, Error>> {
        dial(Some((self, peer)), |r| r)
    }
}

/// [`Socket::connect`] with `active`'s socket ([`Error::SocketBusy`]
/// without one), its result handed to `out`: the connector's dial is this
/// future itself, not one more state machine around `connect`.
pub(crate) async fn dial<'s, 'a, R>(
    active: Option<(&'s Socket<'a>, &ActivePeer)>,
    out: impl FnOnce(Result<Connection<'s, 'a>, Error>) -> R,
) -> R {
    let Some((home, peer)) = active else {
        return out(Err(Error::SocketBusy));
    };
    let Some(mut conn) = home.lend(peer.remote) else {
        return out(Err(Error::SocketBusy));
    };
    let Some(socket) = conn.socket.as_mut() else {
        return out(Err(Error::SocketBusy));
    };
    reclaim(socket).await;
    tune(socket, &peer.tuning);
    let err = match with_timeout(peer.connect_timeout, socket.connect(peer.remote)).await {
        Ok(Ok(())) => {
            conn.local = socket.local_endpoint();
            info!("connected to {}", peer.remote);
            return out(Ok(conn));
        }
        Ok(Err(e)) => Error::Connect(e),
        Err(_) => Error::ConnectTimeout,
    };
    debug!("connect to {} failed: {}", peer.remote, err);
    out(Err(err)) // dropping the guard aborts and returns the socket
}

/// A connection: the socket taken out of its [`Socket`], owned by the driver
/// for as long as the connection lives. Implements
/// `embedded_io_async::{Read, Write}` (and `ReadReady`/`WriteReady`) by
/// delegating to the socket; a pending `read` is cancel-safe.
///
/// Dropping it closes the connection gracefully (queued bytes, then FIN; a
/// half-open connection is reset) and puts the socket back.
pub struct Connection<'s, 'a> {
    socket: Option<TcpSocket<'a>>,
    home: &'s Socket<'a>,
    remote: IpEndpoint,
    local: Option<IpEndpoint>,
}

impl<'s, 'a> Connection<'s, 'a> {
    /// The peer's address and port.
    pub fn remote(&self) -> IpEndpoint {
        self.remote
    }

    /// Our address and port, when the stack reports them.
    pub fn local(&self) -> Option<IpEndpoint> {
        self.local
    }

    /// The TCP state.
    pub fn state(&self) -> State {
        self.socket.as_ref().map_or(State::Closed, TcpSocket::state)
    }

    /// Takes the socket out without closing it (the listener hands accepted
    /// connections over this way).
    pub(crate) fn into_socket(mut self) -> Option<TcpSocket<'a>> {
        self.socket.take()
    }

    pub(crate) fn socket_mut(&mut self) -> Option<&mut TcpSocket<'a>> {
        self.socket.as_mut()
    }

    /// A connection the listener accepted, handed to the driver.
    pub(crate) fn accepted(socket: TcpSocket<'a>, home: &'s Socket<'a>) -> Self {
        let remote = socket
            .remote_endpoint()
            .unwrap_or(IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), 0));
        Self {
            local: socket.local_endpoint(),
            socket: Some(socket),
            home,
            remote,
        }
    }

    fn socket(&mut self) -> Result<&mut TcpSocket<'a>, TcpError> {
        self.socket.as_mut().ok_or(TcpError::ConnectionReset)
    }
}

impl Drop for Connection<'_, '_> {
    fn drop(&mut self) {
        if let Some(mut s) = self.socket.take() {
            match s.state() {
                // Queued bytes (a final NOTIFICATION) go out, then FIN.
                State::Established | State::CloseWait | State::SynReceived => s.close(),
                // Already closing: let it finish.
                State::FinWait1
                | State::FinWait2
                | State::Closing
                | State::LastAck
                | State::TimeWait => {}
                State::Closed | State::Listen | State::SynSent => s.abort(),
            }
            debug!("connection with {} dropped", self.remote);
            self.home.put(s);
        }
    }
}

impl ErrorType for Connection<'_, '_> {
    type Error = TcpError;
}

// Read and write poll a fresh socket future on every poll rather than
// await one: embassy-net's are stateless `poll_fn`s (cancel-safe, ready on
// the poll that finds data or room), so this behaves the same and saves
// the flash of two state machines of our own.
impl Read for Connection<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize, TcpError>> {
        poll_fn(move |cx| match self.socket.as_mut() {
            Some(s) => pin!(s.read(buf)).poll(cx),
            None => Poll::Ready(Err(TcpError::ConnectionReset)),
        })
    }
}

impl ReadReady for Connection<'_, '_> {
    fn read_ready(&mut self) -> Result<bool, TcpError> {
        Ok(self.socket()?.can_recv())
    }
}

impl Write for Connection<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> impl Future<Output = Result<usize, TcpError>> {
        poll_fn(move |cx| match self.socket.as_mut() {
            Some(s) => pin!(s.write(buf)).poll(cx),
            None => Poll::Ready(Err(TcpError::ConnectionReset)),
        })
    }

    async fn flush(&mut self) -> Result<(), TcpError> {
        self.socket()?.flush().await
    }
}

impl WriteReady for Connection<'_, '_> {
    fn write_ready(&mut self) -> Result<bool, TcpError> {
        Ok(self.socket()?.can_send())
    }
}

pub(crate) fn tune(socket: &mut TcpSocket<'_>, t: &SocketTuning) {
    socket.set_nagle_enabled(false);
    socket.set_keep_alive(None);
    socket.set_timeout(t.timeout);
    socket.set_hop_limit(t.hop_limit);
}

/// Resets the connection and waits (bounded) until the RST left.
async fn abort(socket: &mut TcpSocket<'_>) {
    if reset(socket) {
        let _ = with_timeout(CLOSE_LINGER, socket.flush()).await;
    }
}

/// Resets the connection; whether an RST is to be waited for. States that
/// send none (nothing synchronised yet, or already closed) are not: smoltcp
/// would keep `flush` pending there.
fn reset(socket: &mut TcpSocket<'_>) -> bool {
    let sends_rst = !matches!(
        socket.state(),
        State::Closed | State::Listen | State::SynSent | State::TimeWait
    );
    socket.abort();
    sends_rst
}

/// Finishes the socket's previous connection so that it can listen or
/// connect again (smoltcp refuses both unless `Closed`): a closing
/// connection gets [`CLOSE_LINGER`] to deliver its queued bytes and FIN and
/// to see the peer's FIN, then whatever is left is reset (as [`abort`]).
pub(crate) async fn reclaim(socket: &mut TcpSocket<'_>) {
    match socket.state() {
        State::Closed => return,
        State::Listen | State::SynSent | State::TimeWait => {
            socket.abort();
            return;
        }
        _ => {}
    }
    socket.close(); // no-op when already closing
    // Two bounded waits, the graceful close then the RST, through one
    // `with_timeout` (one timer future on flash, not two).
    let mut graceful = true;
    loop {
        let wait = async {
            if socket.flush().await.is_ok() && graceful {
                let mut sink = [0u8; 64];
                while let Ok(1..) = socket.read(&mut sink).await {}
            }
        };
        let _ = with_timeout(CLOSE_LINGER, wait).await;
        if !graceful || !reset(socket) {
            return;
        }
        graceful = false;
    }
}

/// Listens on `port` until one of `peers` connects; resets everyone else.
/// Returns the peer's index and endpoint.
pub(crate) async fn accept_from(
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
