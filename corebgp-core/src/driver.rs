//! The one async driver: pumps a sans-IO [`Peer`] over `embedded-io-async`
//! transports, a [`Clock`] and a [`LocalPlugin`]. corebgp-std and
//! corebgp-embassy supply the sockets and the time; everything the protocol
//! decides happens in [`crate::session`].
//!
//! One call of [`run`] drives one configured peer for its whole life: it
//! dials when the session asks, takes the connections the adapter accepts
//! for this peer, reads whole messages through a [`Framer`] per connection,
//! writes the session's own messages and the plugin's UPDATEs (never one
//! inside another), sleeps until the session's next deadline, and calls the
//! plugin. While the plugin works on an UPDATE or on reaching Established,
//! timers, keepalives and queued writes go on (CoreBGP issue #55); only
//! reading waits, which pushes back on the peer through TCP.

use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::task::{Context, Poll};

use embedded_io_async::{Read, Write};

use crate::outbox::Outbox;
use crate::plugin::LocalPlugin;
use crate::session::{
    Delivery, Direction, Duration, Event, Instant, Negotiated, Peer, PeerMode, StateKind,
};
use crate::wire::{
    CeaseSubcode, Framer, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, UpdateSections,
};
#[cfg(not(target_os = "none"))]
use crate::wire::{HEADER_LEN, Message, MessageError, MessageType};

/// How long a stopping peer waits for its last NOTIFICATIONs to be written:
/// a peer that does not read cannot hold a shutdown up (CoreBGP PR #69).
pub const SHUTDOWN_LINGER: Duration = Duration::from_secs(3);

/// Not a time: "not stopping".
const NEVER: Instant = Instant::NEVER;

/// The adapter's clock.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

/// How the driver gets connections to its peer.
///
/// A connection is one owned value that reads and writes; the driver
/// never reads and writes the same connection at once (it writes what is
/// pending first, bounded by the RFC 9687 send hold timer, then reads), so
/// one `&mut` at a time suffices and socket types need not be split.
pub trait Connector {
    /// A connection. Dropping it closes the connection.
    type Transport: Read + Write;

    /// Dials the peer; `None` if that failed. The driver drops the future
    /// to abandon a dial (ConnectRetry expired, or the session stopped).
    fn connect(&self) -> impl Future<Output = Option<Self::Transport>>;

    /// Completes with the next connection the peer opened to us (the
    /// adapter matched its address). Cancel-safe; never completes for an
    /// adapter that does not listen.
    fn accept(&self) -> impl Future<Output = Self::Transport>;

    /// A connection idles (hosted targets): the driver now reads it into a
    /// few bytes of its own, and nothing in `rx`, the connection's receive
    /// buffer, is needed until the driver reads into it again. The first
    /// `written` bytes of `rx` were written since the last call for this
    /// connection (all of it, for a new connection). An adapter whose
    /// buffers are pages it can hand back to the system may do so; the
    /// default does nothing.
    fn idle(&self, rx: &mut [u8], written: usize) {
        let _ = (rx, written);
    }
}

/// Memory the driver works in, lent by the adapter, with a send buffer
/// lent for the whole run into which queued UPDATEs are copied.
pub type Buffers<'b> = BuffersOf<'b, &'b mut [u8]>;

/// Memory the driver works in ([`Buffers`]), with a send buffer of type
/// `T`: lent memory (`&mut [u8]`) or a [`SwapBuf`], which the driver trades
/// with the outbox instead of copying into it.
pub struct BuffersOf<'b, T> {
    /// Receive buffers, one per connection (two only meet during a
    /// collision). Each holds the largest message accepted: 4096 bytes, or
    /// 65535 to accept RFC 8654 Extended Messages. An empty second buffer
    /// saves its RAM: a second connection then waits (or is refused by
    /// the adapter) until the first one is over.
    pub rx: [&'b mut [u8]; 2],
    /// Where a queued UPDATE waits while it is written: as large as the
    /// largest UPDATE sent (a [`SwapBuf`] starts empty).
    pub tx: T,
}

/// The driver's send buffer: where UPDATEs taken from the outbox wait while
/// they are written.
pub trait SendBuffer: core::ops::DerefMut<Target = [u8]> {
    /// Puts the next queued UPDATEs at the start of the buffer, calls
    /// `check` on each in order and keeps those it accepts (a refused one
    /// is dropped); returns the length of what is kept.
    fn refill<O: Outbox>(&mut self, outbox: &O, check: impl FnMut(&[u8]) -> bool) -> usize;

    /// All that [`SendBuffer::refill`] put in the buffer is written or
    /// dropped.
    fn drained<O: Outbox>(&mut self, outbox: &O) {
        let _ = outbox;
    }

    /// The longest UPDATE the buffer can carry (the outbox may hold less).
    fn max_len(&self) -> usize {
        self.len()
    }
}

/// Copies: as many whole UPDATEs as fit, or one per write on bare-metal
/// targets (less code; an embedded speaker sends few UPDATEs).
impl SendBuffer for &mut [u8] {
    #[cfg(not(target_os = "none"))]
    fn refill<O: Outbox>(&mut self, outbox: &O, mut check: impl FnMut(&[u8]) -> bool) -> usize {
        let mut end = 0;
        loop {
            let rest = self.get_mut(end..).unwrap_or(&mut []);
            let got = if end == 0 {
                outbox.take(rest)
            } else {
                outbox.take_if_fits(rest)
            };
            let Some(len) = got else {
                return end;
            };
            // A refused message is dropped: the next one goes in its place.
            if check(self.get(end..end + len).unwrap_or(&[])) {
                end += len;
            }
        }
    }

    #[cfg(target_os = "none")]
    fn refill<O: Outbox>(&mut self, outbox: &O, mut check: impl FnMut(&[u8]) -> bool) -> usize {
        match outbox.take(self) {
            Some(len) if check(self.get(..len).unwrap_or(&[])) => len,
            _ => 0,
        }
    }
}

/// A send buffer traded with the outbox ([`Outbox::swap`]) rather than
/// copied into: the outbox's writers fill one buffer while the driver
/// writes from this one, and the two change hands under the outbox's lock
/// once this one is drained, so the bytes written are memory the driver
/// owns across the write's `await`, no lock is held there, and no UPDATE
/// is copied. Empty while the driver has nothing to write: it gives the
/// buffer back then ([`Outbox::give_back`]), so a driver dropped while
/// idle takes none with it.
#[derive(Debug, Default)]
pub struct SwapBuf(pub &'static mut [u8]);

impl core::ops::Deref for SwapBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

impl core::ops::DerefMut for SwapBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0
    }
}

impl SendBuffer for SwapBuf {
    fn refill<O: Outbox>(&mut self, outbox: &O, mut check: impl FnMut(&[u8]) -> bool) -> usize {
        let n = outbox.swap(&mut self.0);
        let buf = &mut *self.0;
        // Whole messages, one after another: a refused one is cut out by
        // moving the rest down (never in practice: the writers checked the
        // same limit).
        let (mut at, mut kept) = (0, 0);
        while let Some(&[a, b]) = buf.get(at + 16..at + 18) {
            let len = usize::from(u16::from_be_bytes([a, b]));
            if len == 0 || at + len > n {
                break;
            }
            if check(buf.get(at..at + len).unwrap_or(&[])) {
                if kept != at {
                    buf.copy_within(at..at + len, kept);
                }
                kept += len;
            }
            at += len;
        }
        kept
    }

    fn drained<O: Outbox>(&mut self, outbox: &O) {
        outbox.give_back(&mut self.0);
    }

    fn max_len(&self) -> usize {
        usize::MAX
    }
}

struct Io<'b, T> {
    t: T,
    framer: Framer<&'b mut [u8]>,
    /// Hosted targets: the last read was at most [`QUIET_READ`] bytes (the
    /// peer is not streaming), and how far into the receive buffer bytes
    /// were written since [`Connector::idle`] was last told.
    #[cfg(not(target_os = "none"))]
    quiet: bool,
    #[cfg(not(target_os = "none"))]
    written: u32,
}

impl<'b, T> Io<'b, T> {
    fn new(t: T, buf: &'b mut [u8]) -> Self {
        #[cfg(not(target_os = "none"))]
        let written = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut framer = Framer::new(buf);
        framer.set_max_message_len(MAX_MESSAGE_LEN);
        Self {
            t,
            framer,
            #[cfg(not(target_os = "none"))]
            quiet: false,
            #[cfg(not(target_os = "none"))]
            written,
        }
    }

    /// Whether the next read goes to the driver's few bytes ([`QUIET_LEN`])
    /// rather than the receive buffer: the peer is not streaming and no
    /// partial message is buffered.
    #[cfg(not(target_os = "none"))]
    fn reads_small(&self) -> bool {
        self.quiet && self.framer.buffered() == 0
    }

    /// Records a read of `n` bytes (what of it reached the receive buffer
    /// is buffered there now).
    #[cfg(not(target_os = "none"))]
    fn note_read(&mut self, n: usize) {
        self.quiet = n <= QUIET_READ;
        let end = u32::try_from(self.framer.buffered()).unwrap_or(u32::MAX);
        self.written = self.written.max(end);
    }
}

/// Bytes an idle connection is read into (hosted targets): a KEEPALIVE is
/// 19, a ROUTE-REFRESH 23. A lone message of a kind whose hooks are
/// synchronous is handled there; anything else moves to the receive
/// buffer. So an idle session's KEEPALIVEs never touch its receive buffer,
/// whose memory the adapter may then hand back once ([`Connector::idle`])
/// rather than have it written and handed back at every KEEPALIVE (a page
/// fault and a system call each, corebgp-std's idle CPU). Bare-metal
/// buffers are static: none there.
#[cfg(not(target_os = "none"))]
const QUIET_LEN: usize = 32;

/// A read this short means the peer is not streaming (it sends control
/// messages or trickles): the next read, once nothing is buffered, goes to
/// the [`QUIET_LEN`] bytes.
#[cfg(not(target_os = "none"))]
const QUIET_READ: usize = 256;

/// A connection's transport and where its next read goes: `small` (taken)
/// if `use_small`, else its receive buffer.
#[cfg(not(target_os = "none"))]
fn read_into<'x, T>(
    c: &'x mut Io<'_, T>,
    small: &mut Option<&'x mut [u8]>,
    use_small: bool,
) -> (&'x mut T, &'x mut [u8]) {
    let buf = match use_small {
        true => small.take().unwrap_or(&mut []),
        false => c.framer.read_buf(),
    };
    (&mut c.t, buf)
}

/// Whether `b` is exactly one whole message, and not an UPDATE: one whose
/// hooks are synchronous, so it can be handled in place with nothing of it
/// kept (an UPDATE's bytes are lent to `on_update` across its await). Its
/// marker and everything else are checked as for any message.
#[cfg(not(target_os = "none"))]
fn lone_control_message(b: &[u8]) -> bool {
    match (b.get(16), b.get(17), b.get(18)) {
        (Some(&hi), Some(&lo), Some(&ty)) => {
            usize::from(u16::from_be_bytes([hi, lo])) == b.len() && ty != MessageType::Update as u8
        }
        _ => false,
    }
}

/// An UPDATE from the outbox being written on `dir`: `tx[off..len]` remains.
#[derive(Debug, Clone, Copy)]
struct Fwd {
    dir: Direction,
    off: usize,
    len: usize,
}

enum Ev<T> {
    Shutdown(CeaseSubcode),
    Timer,
    Dialed(Option<T>),
    Accepted(T),
    Read(Direction, usize),
    Wrote(Direction, usize),
    /// A read or a write failed, or the peer closed the connection.
    Failed(Direction),
    Outbox,
}

const DIRS: [Direction; 2] = [Direction::Outbound, Direction::Inbound];

/// The connections a peer of mode `M` can have: a dial-only peer's
/// inbound code compiles away.
fn dirs<M: PeerMode>() -> &'static [Direction] {
    if M::ACCEPTS {
        &DIRS
    } else {
        &[Direction::Outbound]
    }
}

fn slot<T>(arr: &mut [Option<T>; 2], d: Direction) -> &mut Option<T> {
    let [o, i] = arr;
    match d {
        Direction::Outbound => o,
        Direction::Inbound => i,
    }
}

/// Returns a receive buffer to the pool.
fn give_back<'b>(pool: &mut [Option<&'b mut [u8]>; 2], buf: &'b mut [u8]) {
    if let Some(s) = pool.iter_mut().find(|s| s.is_none()) {
        *s = Some(buf);
    }
}

/// What to write next on `dir`: the rest of a queued UPDATE, else the
/// session's own bytes.
fn to_write<'x, M: PeerMode>(
    peer: &'x Peer<M>,
    tx: &'x [u8],
    fwd: Option<Fwd>,
    dir: Direction,
) -> &'x [u8] {
    match fwd {
        Some(f) if f.dir == dir => tx.get(f.off..f.len).unwrap_or(&[]),
        _ => peer.pending(dir),
    }
}

/// [`to_write`] on the inbound connection; nothing for a dial-only peer.
fn in_bytes<'x, M: PeerMode>(peer: &'x Peer<M>, tx: &'x [u8], fwd: Option<Fwd>) -> &'x [u8] {
    if M::ACCEPTS {
        to_write(peer, tx, fwd, Direction::Inbound)
    } else {
        &[]
    }
}

/// The I/O of one connection for one wait: a write if anything is
/// pending, else a read into `read` (none while a plugin holds a received
/// message). Two optional futures, at most one there: no state machine
/// around them.
#[allow(clippy::type_complexity)]
fn io<'x, T: Read + Write>(
    t: Option<&'x mut T>,
    to_write: &'x [u8],
    read: Option<&'x mut [u8]>,
) -> (
    Option<impl Future<Output = Result<usize, T::Error>> + 'x>,
    Option<impl Future<Output = Result<usize, T::Error>> + 'x>,
) {
    match (t, read) {
        (Some(t), _) if !to_write.is_empty() => (Some(t.write(to_write)), None),
        (Some(t), Some(buf)) if !buf.is_empty() => (None, Some(t.read(buf))),
        _ => (None, None),
    }
}

/// Polls the futures of [`io`] on `dir`.
fn poll_io<T, E, W, R>(
    dir: Direction,
    w: Pin<&mut Option<W>>,
    r: Pin<&mut Option<R>>,
    cx: &mut Context<'_>,
) -> Poll<Ev<T>>
where
    W: Future<Output = Result<usize, E>>,
    R: Future<Output = Result<usize, E>>,
{
    if let Some(f) = w.as_pin_mut()
        && let Poll::Ready(res) = f.poll(cx)
    {
        return Poll::Ready(match res {
            Ok(n) => Ev::Wrote(dir, n),
            Err(_) => Ev::Failed(dir),
        });
    }
    if let Some(f) = r.as_pin_mut()
        && let Poll::Ready(res) = f.poll(cx)
    {
        return Poll::Ready(match res {
            Ok(0) | Err(_) => Ev::Failed(dir),
            Ok(n) => Ev::Read(dir, n),
        });
    }
    Poll::Pending
}

/// Polls an optional future (one that is not there never completes).
fn ready<F: Future<Output = ()>>(f: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> bool {
    f.as_pin_mut().is_some_and(|f| f.poll(cx).is_ready())
}

/// Records that writes wait (RFC 9687 send hold timer) or moved.
fn track_blocked<M: PeerMode>(peer: &mut Peer<M>, tx: &[u8], fwd: Option<Fwd>, now: Instant) {
    for &d in dirs::<M>() {
        let waiting = !to_write(peer, tx, fwd, d).is_empty();
        if let Some(link) = peer.link(d) {
            if !waiting {
                link.set_blocked(None);
            } else if link.blocked_since.is_none() {
                link.set_blocked(Some(now));
            }
        }
    }
}

/// Whether connection `d` is to close now: the session asked and nothing
/// of ours is left to write on it (neither its bytes nor a taken UPDATE),
/// or what is left has not moved for [`SHUTDOWN_LINGER`] (the session
/// tells the driver when: `Peer::wake_at`).
fn closable<M: PeerMode>(peer: &mut Peer<M>, fwd: Option<Fwd>, d: Direction, now: Instant) -> bool {
    let written = !fwd.is_some_and(|f| f.dir == d);
    peer.link(d).is_some_and(|l| {
        l.wants_close() && ((written && l.pending().is_empty()) || l.abandon_at() <= now)
    })
}

/// Applies a completed write.
fn wrote<M: PeerMode>(peer: &mut Peer<M>, fwd: &mut Option<Fwd>, dir: Direction, n: usize) {
    match fwd {
        Some(f) if f.dir == dir => {
            f.off += n;
            if f.off >= f.len {
                *fwd = None;
            }
        }
        _ => {
            if let Some(l) = peer.link(dir) {
                l.consume(n);
            }
        }
    }
    if let Some(l) = peer.link(dir) {
        // Progress: the send hold timer starts over (RFC 9687 §3).
        l.set_blocked(None);
    }
}

/// While the plugin works, keep the session alive: timers, keepalives,
/// pending writes, queued UPDATEs. Returns when the main loop must act (a
/// connection failed or must close); the caller then waits for the plugin.
async fn service<C: Clock, O: Outbox, T: Read + Write, M: PeerMode, B: SendBuffer>(
    peer: &mut Peer<M>,
    clock: &C,
    outbox: &O,
    tx: &mut B,
    fwd: &mut Option<Fwd>,
    mut conns: [Option<&mut T>; 2],
) {
    loop {
        let now = clock.now();
        peer.handle_timeout(now);
        track_blocked(peer, tx, *fwd, now);
        let wants_main = dirs::<M>().iter().any(|&d| closable(peer, *fwd, d, now));
        if wants_main {
            return;
        }
        let ev = {
            let [c0, c1] = &mut conns;
            let est = peer.established();
            let can_take = fwd.is_none() && est.is_some_and(|d| peer.pending(d).is_empty());
            let (b0, b1) = (
                to_write(peer, tx, *fwd, Direction::Outbound),
                in_bytes::<M>(peer, tx, *fwd),
            );
            let mut s = pin!(peer.wake_at(true).deadline().map(|t| clock.sleep_until(t)));
            let (w0, r0) = io(c0.as_deref_mut(), b0, None);
            let (w1, r1) = io(c1.as_deref_mut(), b1, None);
            let (mut w0, mut r0, mut w1, mut r1) = (pin!(w0), pin!(r0), pin!(w1), pin!(r1));
            let mut ob = pin!(can_take.then(|| outbox.ready()));
            poll_fn(|cx| {
                if let Poll::Ready(ev) =
                    poll_io::<(), _, _, _>(Direction::Outbound, w0.as_mut(), r0.as_mut(), cx)
                {
                    return Poll::Ready(ev);
                }
                if M::ACCEPTS
                    && let Poll::Ready(ev) =
                        poll_io(Direction::Inbound, w1.as_mut(), r1.as_mut(), cx)
                {
                    return Poll::Ready(ev);
                }
                if ready(ob.as_mut(), cx) {
                    return Poll::Ready(Ev::Outbox);
                }
                if ready(s.as_mut(), cx) {
                    return Poll::Ready(Ev::Timer);
                }
                Poll::Pending
            })
            .await
        };
        match ev {
            Ev::Wrote(d, n) => wrote(peer, fwd, d, n),
            Ev::Failed(d) => {
                peer.connection_failed(clock.now(), d);
                return;
            }
            Ev::Outbox => take_outbox(peer, outbox, tx, fwd, clock.now()),
            _ => {}
        }
    }
}

/// Takes queued UPDATEs into `tx` for one write ([`SendBuffer::refill`]):
/// many small UPDATEs then cost one system call, not one each.
fn take_outbox<O: Outbox, M: PeerMode, B: SendBuffer>(
    peer: &mut Peer<M>,
    outbox: &O,
    tx: &mut B,
    fwd: &mut Option<Fwd>,
    now: Instant,
) {
    let mut dir = None;
    // The session checks each UPDATE's length against the negotiated
    // maximum and restarts the KeepaliveTimer; a refused one is dropped.
    let len = tx.refill(outbox, |msg| match peer.send_update(now, msg) {
        Ok(d) => {
            dir = Some(d);
            true
        }
        Err(_) => false,
    });
    if let Some(dir) = dir {
        *fwd = Some(Fwd { dir, off: 0, len });
    }
}

/// Tells the plugin what happened (CoreBGP's hooks, in order), closing the
/// outbox when a session goes down. Returns what the connection that just
/// reached Established negotiated, for `on_established`.
///
/// An UPDATE already taken from the outbox stays to be written when its
/// session goes down: its writer was told it was sent, and a NOTIFICATION
/// (a stop's Cease) written after half of it would corrupt the stream. It
/// goes first, the session's own bytes after it ([`to_write`]), and the
/// connection closes once both are out ([`closable`]).
// Inlined on hosts: it runs once per message, and finds nothing nearly always.
#[cfg_attr(not(target_os = "none"), inline)]
fn drain_events<P: LocalPlugin, O: Outbox, M: PeerMode>(
    peer: &mut Peer<M>,
    plugin: &mut P,
    outbox: &O,
) -> Option<Negotiated> {
    let cfg = peer.config().peer;
    let mut established = None;
    while let Some(e) = peer.poll_event() {
        plugin.on_event(&cfg, &e);
        match e {
            Event::Established { direction } => established = Some(direction),
            Event::Down { reason, .. } => {
                outbox.close();
                plugin.on_close(&cfg, reason);
            }
            _ => {}
        }
    }
    established.and_then(|dir| peer.negotiated_on(dir)).cloned()
}

/// What the next buffered message of a connection asks of the driver.
enum Next<'m> {
    /// Nothing (more) to handle: read.
    Read,
    /// A message was handled; look at the next one.
    Again,
    /// An UPDATE for `on_update`.
    Update(UpdateSections<'m>),
}

/// Frames and decodes the next message buffered on `d` and hands it to the
/// session; the synchronous hooks hear of ROUTE-REFRESH and NOTIFICATION.
// Inlined on hosts: the message and what the session delivers are then
// built in place rather than copied through calls (per message).
#[cfg_attr(not(target_os = "none"), inline(always))]
fn next_message<'m, P: LocalPlugin, M: PeerMode>(
    peer: &mut Peer<M>,
    d: Direction,
    framer: &'m mut Framer<&mut [u8]>,
    plugin: &mut P,
    now: Instant,
) -> Next<'m> {
    // A connection that is closing reads no further.
    if peer.state_of(d).is_none_or(|s| s == StateKind::Idle) {
        return Next::Read;
    }
    // Extended Messages once both OPENs said so (RFC 8654).
    let ext = peer.negotiated_on(d).is_some_and(|n| n.extended_message);
    framer.set_max_message_len(if ext {
        MAX_EXTENDED_MESSAGE_LEN
    } else {
        MAX_MESSAGE_LEN
    });
    // Framed and decoded with one header check.
    #[cfg(target_os = "none")]
    let msg = match framer.next_decoded() {
        None => return Next::Read,
        Some(r) => r.map_err(|e| e.notification()),
    };
    // On hosts, the same with the UPDATE on an Established connection (a
    // streamed table: nearly every message) split and handed over without
    // building a `Message` and a `Delivery` around it; everything else as
    // on bare metal (`Framer::next_decoded`, `Peer::handle_message`).
    #[cfg(not(target_os = "none"))]
    let msg = match framer.next_frame() {
        None => return Next::Read,
        Some(Err(e)) => Err(MessageError::Header(e)),
        Some(Ok((h, whole))) => {
            let body = whole.get(HEADER_LEN..).unwrap_or(&[]);
            if h.msg_type == MessageType::Update {
                match UpdateSections::parse(body) {
                    Ok(u) if peer.receive_update(now, d) => return Next::Update(u),
                    Ok(u) => Ok(Message::Update(u)),
                    Err(e) => Err(MessageError::Update(e)),
                }
            } else {
                Message::parse_body(h.msg_type, body, whole)
            }
        }
    }
    .map_err(|e| e.notification());
    let msg = match msg {
        Ok(m) => m,
        Err(n) => {
            peer.handle_error(now, d, &n);
            return Next::Read;
        }
    };
    match peer.handle_message(now, d, msg, plugin) {
        Delivery::Update(u) => return Next::Update(u),
        Delivery::RouteRefresh(rr) => plugin.on_route_refresh(&peer.config().peer, &rr),
        Delivery::Notification(n) => plugin.on_notification(&peer.config().peer, &n),
        Delivery::None => {}
    }
    Next::Again
}

/// Drives `peer` until `shutdown` completes, then stops it with the Cease
/// subcode `shutdown` yields (6/2 for a server closing, 6/3 for a peer being
/// removed), writes the NOTIFICATIONs for at most [`SHUTDOWN_LINGER`], and
/// returns. The peer must have been started ([`Peer::start`]) for it to
/// connect.
pub async fn run<K, C, P, O, S, M, B>(
    peer: &mut Peer<M>,
    connector: &K,
    clock: &C,
    plugin: &mut P,
    outbox: &O,
    BuffersOf { rx, tx: mut txb }: BuffersOf<'_, B>,
    shutdown: S,
) where
    K: Connector,
    C: Clock,
    P: LocalPlugin,
    O: Outbox,
    S: Future<Output = CeaseSubcode>,
    M: PeerMode,
    B: SendBuffer,
{
    let cfg = peer.config().peer;
    let [rx0, rx1] = rx;
    let mut pool: [Option<&mut [u8]>; 2] = [Some(rx0), (!rx1.is_empty()).then_some(rx1)];
    let mut conns: [Option<Io<'_, K::Transport>>; 2] = [None, None];
    let mut fwd: Option<Fwd> = None;
    let mut dial = pin!(None);
    let mut shutdown = pin!(shutdown);
    // Once stopping, when the linger ends; [`NEVER`] before (a plain
    // `Instant`: 8 bytes less in the future than an `Option`).
    let mut linger_end = NEVER;
    // The connection whose buffered messages are being handled.
    let mut reading: Option<Direction> = None;
    // The time. While buffered messages are handled it stays the time of
    // their read: the time of receipt of every one of them (RFC 4271 §6.2
    // restarts the HoldTimer on receipt), so the clock is read once per
    // read, not once per message; it is read again after a hook that made
    // the driver wait, for time then moved on.
    let mut now = clock.now();

    loop {
        if reading.is_none() {
            now = clock.now();
            peer.handle_timeout(now);
        }
        // A drained send buffer goes back to the outbox once no session is
        // Established, or when the session has bytes of its own to send (a
        // KEEPALIVE: no UPDATE went for a KeepaliveTime, which each UPDATE
        // restarts); not each time the queue runs dry while a table is
        // sent, as the adapter may give its memory back to the system then
        // (and the next fill fault it in again, page by page).
        if fwd.is_none()
            && peer
                .established()
                .is_none_or(|d| !peer.pending(d).is_empty())
        {
            txb.drained(outbox);
        }

        // The plugin hears of a state change (and runs on_established)
        // before the messages that follow it, then gets the next buffered
        // UPDATE: one hook at a time, while the service keeps the session
        // alive.
        let neg = drain_events(peer, plugin, outbox);
        if neg.is_some() || reading.is_some() {
            // A dial-only peer reads on its one connection only.
            let d = match reading {
                Some(d) if M::ACCEPTS => d,
                _ => Direction::Outbound,
            };
            let [o, i] = &mut conns;
            let (this, other) = match d {
                Direction::Outbound => (o, i),
                Direction::Inbound => (i, o),
            };
            let (t, framer) = match this {
                Some(Io { t, framer, .. }) => (Some(t), Some(framer)),
                None => (None, None),
            };
            let ot = other.as_mut().filter(|_| M::ACCEPTS).map(|c| &mut c.t);
            let ts = match d {
                Direction::Outbound => [t, ot],
                Direction::Inbound => [ot, t],
            };
            let mut est_job = pin!(None);
            let mut upd_job = pin!(None);
            match &neg {
                Some(neg) => {
                    outbox.open(neg.max_message_len().min(txb.max_len()));
                    est_job.set(Some(plugin.on_established(&cfg, neg)));
                }
                None => {
                    let next = match framer {
                        Some(f) if reading.is_some() => next_message(peer, d, f, plugin, now),
                        _ => Next::Read,
                    };
                    match next {
                        Next::Read => {
                            reading = None;
                            continue;
                        }
                        Next::Again => continue,
                        Next::Update(u) => upd_job.set(Some(plugin.on_update(&cfg, u))),
                    }
                }
            }
            // One future for either hook: the service around it is
            // instantiated once.
            let mut job = poll_fn(|cx| {
                if let Some(f) = est_job.as_mut().as_pin_mut() {
                    return f.poll(cx).map(Ok);
                }
                match upd_job.as_mut().as_pin_mut() {
                    Some(f) => f.poll(cx),
                    None => Poll::Ready(Ok(())),
                }
            });
            // On hosts, a hook done when first polled (the common case)
            // needs no service around it, nor the busy mark: nothing else
            // ran meanwhile, and `now` is still the time its message came.
            // Only whether it is done comes out of this poll (the hook's
            // NOTIFICATION, if any, is kept aside): copying its whole
            // result out was the costliest step per UPDATE in `perf`. Bare
            // metal goes straight to the service (less flash).
            #[cfg(not(target_os = "none"))]
            {
                let mut refused = None;
                let done = poll_fn(|cx| {
                    Poll::Ready(match Pin::new(&mut job).poll(cx) {
                        Poll::Ready(Ok(())) => true,
                        Poll::Ready(Err(n)) => {
                            refused = Some(n);
                            true
                        }
                        Poll::Pending => false,
                    })
                })
                .await;
                if neg.is_none()
                    && let Some(n) = refused
                {
                    peer.close_with(now, d, &n);
                }
                if done {
                    continue;
                }
            }
            // The hold timer waits for the plugin.
            if neg.is_none() {
                peer.set_busy(now, d, true);
            }
            // On hosts the hook was just polled (above): the service goes
            // first.
            #[cfg(not(target_os = "none"))]
            let mut polled = true;
            // Whether the hook made the driver wait (was not done when
            // first polled); on hosts it did, or it would be done above.
            // (Not kept there: a byte more in the peer's future takes the
            // peer's tokio task to the next 128-byte size.)
            #[cfg(target_os = "none")]
            let mut waited = false;
            let res = {
                let mut svc = pin!(service(peer, clock, outbox, &mut txb, &mut fwd, ts));
                // Once the service returns (the main loop has work), only
                // the hook is waited for.
                let mut serviced = false;
                poll_fn(|cx| {
                    #[cfg(not(target_os = "none"))]
                    let skip = core::mem::replace(&mut polled, false);
                    #[cfg(target_os = "none")]
                    let skip = false;
                    if !skip && let Poll::Ready(v) = Pin::new(&mut job).poll(cx) {
                        return Poll::Ready(v);
                    }
                    #[cfg(target_os = "none")]
                    {
                        waited = true;
                    }
                    if !serviced && svc.as_mut().poll(cx).is_ready() {
                        serviced = true;
                    }
                    Poll::Pending
                })
                .await
            };
            #[cfg(not(target_os = "none"))]
            let waited = true;
            if waited {
                now = clock.now();
            }
            if neg.is_none() {
                peer.set_busy(now, d, false);
                if let Err(n) = res {
                    peer.close_with(now, d, &n);
                }
            }
            continue;
        }

        // Requests of the session: dial, close.
        if peer
            .link(Direction::Outbound)
            .is_some_and(|l| l.take_dial())
        {
            if let Some(io) = conns[0].take() {
                give_back(&mut pool, io.framer.into_inner());
            }
            // Whatever was left for the old connection is not the new one's.
            if fwd.is_some_and(|f| f.dir == Direction::Outbound) {
                fwd = None;
            }
            dial.set(Some(connector.connect()));
        }
        for &d in dirs::<M>() {
            let close = closable(peer, fwd, d, now);
            if close || now >= linger_end {
                if d == Direction::Outbound {
                    dial.set(None);
                }
                if let Some(io) = slot(&mut conns, d).take() {
                    give_back(&mut pool, io.framer.into_inner());
                }
                if fwd.is_some_and(|f| f.dir == d) {
                    fwd = None;
                }
                if close {
                    peer.connection_closed(now, d);
                }
            }
        }
        if linger_end != NEVER && conns.iter().all(Option::is_none) {
            txb.drained(outbox);
            return;
        }
        // What the wait below writes from: the send buffer's bytes.
        let tx: &[u8] = &txb;
        track_blocked(peer, tx, fwd, now);

        // Wait for the next thing to happen.
        let deadline = peer.wake_at(true).min(linger_end).deadline();
        // An idle connection (one at a time) is read into `small`, and the
        // adapter hears that its receive buffer holds nothing.
        #[cfg(not(target_os = "none"))]
        let mut small = [0u8; QUIET_LEN];
        #[cfg(not(target_os = "none"))]
        let small_for = dirs::<M>()
            .iter()
            .copied()
            .find(|&d| slot(&mut conns, d).as_ref().is_some_and(Io::reads_small));
        #[cfg(not(target_os = "none"))]
        if let Some(io) = small_for.and_then(|d| slot(&mut conns, d).as_mut())
            && io.written > 0
        {
            let written = io.written as usize;
            connector.idle(io.framer.read_buf(), written);
            io.written = 0;
        }
        let ev = {
            let est = peer.established();
            let can_take = fwd.is_none() && est.is_some_and(|d| peer.pending(d).is_empty());
            let accepting = M::ACCEPTS
                && linger_end == NEVER
                && conns[1].is_none()
                && pool.iter().any(Option::is_some);
            let [o, i] = &mut conns;
            let (b0, b1) = (
                to_write(peer, tx, fwd, Direction::Outbound),
                in_bytes::<M>(peer, tx, fwd),
            );
            #[cfg(not(target_os = "none"))]
            let ((t0, r0), (t1, r1)) = {
                let mut small = Some(&mut small[..]);
                (
                    o.as_mut()
                        .map(|c| read_into(c, &mut small, small_for == Some(Direction::Outbound)))
                        .unzip(),
                    i.as_mut()
                        .filter(|_| M::ACCEPTS)
                        .map(|c| read_into(c, &mut small, small_for == Some(Direction::Inbound)))
                        .unzip(),
                )
            };
            #[cfg(target_os = "none")]
            let ((t0, r0), (t1, r1)) = (
                o.as_mut().map(|c| (&mut c.t, c.framer.read_buf())).unzip(),
                i.as_mut()
                    .filter(|_| M::ACCEPTS)
                    .map(|c| (&mut c.t, c.framer.read_buf()))
                    .unzip(),
            );
            let (w0, r0) = io(t0, b0, r0);
            let (w1, r1) = io(t1, b1, r1);
            let (mut w0, mut r0, mut w1, mut r1) = (pin!(w0), pin!(r0), pin!(w1), pin!(r1));
            let mut sl = pin!(deadline.map(|t| clock.sleep_until(t)));
            let mut acc = pin!(accepting.then(|| connector.accept()));
            let mut ob = pin!(can_take.then(|| outbox.ready()));
            poll_fn(|cx| {
                if linger_end == NEVER
                    && let Poll::Ready(sub) = shutdown.as_mut().poll(cx)
                {
                    return Poll::Ready(Ev::Shutdown(sub));
                }
                if let Poll::Ready(ev) = poll_io(Direction::Outbound, w0.as_mut(), r0.as_mut(), cx)
                {
                    return Poll::Ready(ev);
                }
                if M::ACCEPTS
                    && let Poll::Ready(ev) =
                        poll_io(Direction::Inbound, w1.as_mut(), r1.as_mut(), cx)
                {
                    return Poll::Ready(ev);
                }
                if let Some(f) = dial.as_mut().as_pin_mut()
                    && let Poll::Ready(t) = f.poll(cx)
                {
                    return Poll::Ready(Ev::Dialed(t));
                }
                if M::ACCEPTS
                    && let Some(f) = acc.as_mut().as_pin_mut()
                    && let Poll::Ready(t) = f.poll(cx)
                {
                    return Poll::Ready(Ev::Accepted(t));
                }
                if ready(ob.as_mut(), cx) {
                    return Poll::Ready(Ev::Outbox);
                }
                if ready(sl.as_mut(), cx) {
                    return Poll::Ready(Ev::Timer);
                }
                Poll::Pending
            })
            .await
        };

        now = clock.now();
        match ev {
            Ev::Shutdown(sub) => {
                peer.stop(now, sub);
                dial.set(None);
                linger_end = now + SHUTDOWN_LINGER;
            }
            Ev::Timer => {}
            Ev::Dialed(t) => {
                dial.set(None);
                match (t, pool.iter_mut().find_map(Option::take)) {
                    (Some(t), Some(buf)) => {
                        conns[0] = Some(Io::new(t, buf));
                        peer.connected(now, plugin);
                    }
                    (_, buf) => {
                        if let Some(b) = buf {
                            give_back(&mut pool, b);
                        }
                        peer.connection_failed(now, Direction::Outbound);
                    }
                }
            }
            Ev::Accepted(t) => {
                if let Some(buf) = pool.iter_mut().find_map(Option::take) {
                    if peer.accept(now, plugin).is_ok() {
                        conns[1] = Some(Io::new(t, buf));
                    } else {
                        // Refused: dropping the halves closes the connection.
                        give_back(&mut pool, buf);
                    }
                }
            }
            Ev::Wrote(d, n) => wrote(peer, &mut fwd, d, n),
            Ev::Failed(d) => {
                if let Some(io) = slot(&mut conns, d).take() {
                    give_back(&mut pool, io.framer.into_inner());
                }
                if fwd.is_some_and(|f| f.dir == d) {
                    fwd = None;
                }
                peer.connection_failed(now, d);
            }
            Ev::Outbox => take_outbox(peer, outbox, &mut txb, &mut fwd, now),
            Ev::Read(d, n) => {
                if let Some(io) = slot(&mut conns, d) {
                    #[cfg(not(target_os = "none"))]
                    if small_for == Some(d) {
                        let got = small.get_mut(..n).unwrap_or(&mut []);
                        if lone_control_message(got) {
                            // Handled where it was read, as if it had been
                            // buffered; nothing follows it to be ordered
                            // after its events.
                            let mut f = Framer::new(got);
                            f.commit(n);
                            let _ = next_message(peer, d, &mut f, plugin, now);
                        } else {
                            io.framer.feed(got);
                            reading = Some(d);
                        }
                        io.note_read(n);
                        continue;
                    }
                    io.framer.commit(n);
                    #[cfg(not(target_os = "none"))]
                    io.note_read(n);
                    reading = Some(d);
                }
            }
        }
    }
}
