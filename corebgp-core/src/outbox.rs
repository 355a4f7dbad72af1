//! Outgoing UPDATEs: a bounded, allocation-free channel from any task to
//! the session's driver, and the writer handle CoreBGP calls
//! `UpdateMessageWriter`.
//!
//! A writer exists only while the session is Established, checks each
//! message against the negotiated maximum, waits when the channel is full
//! (backpressure), and fails with [`WriteError::Closed`] once the
//! Established episode it was made in has ended. Messages enter the channel
//! whole or not at all, so the driver can put its own KEEPALIVEs between
//! them and never inside one.

use core::cell::RefCell;
use core::future::{Future, poll_fn};
use core::ops::Deref;
use core::task::Poll;

use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
/// The mutexes an [`UpdateChannel`] can use, re-exported so that users need
/// no direct dependency: `NoopRawMutex` within one executor thread,
/// `CriticalSectionRawMutex` across threads.
pub use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex, RawMutex};
use embassy_sync::waitqueue::WakerRegistration;

use crate::wire::MessageType;
// Not `copy_from_slice`: its length check (equal lengths here) carries a
// panic location per call on firmware; `copy`'s is one shared location.
use crate::wire::copy;

/// Why an UPDATE could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WriteError {
    /// The session is not Established.
    NotEstablished,
    /// The Established episode this writer belongs to has ended.
    Closed,
    /// Longer than the negotiated maximum (4096, or 65535 with RFC 8654),
    /// or than the channel holds.
    TooLong {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a whole UPDATE message (header with its length, type 2).
    NotAnUpdate,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotEstablished => f.write_str("session not established"),
            Self::Closed => f.write_str("session closed"),
            Self::TooLong { len, max } => write!(f, "UPDATE of {len} bytes exceeds {max}"),
            Self::NotAnUpdate => f.write_str("not a whole UPDATE message"),
        }
    }
}

impl core::error::Error for WriteError {}

/// The driver's side of an outgoing channel.
pub trait Outbox {
    /// Completes when [`Outbox::take`] has a message. Cancel-safe.
    fn ready(&self) -> impl Future<Output = ()>;
    /// Moves the next message into `buf` (at least as long as the largest
    /// message) and returns its length.
    fn take(&self, buf: &mut [u8]) -> Option<usize>;
    /// Moves the next message into `buf` if it fits there, else leaves it
    /// queued: the driver fills the rest of its send buffer with whole
    /// messages this way, so that one write carries many small UPDATEs.
    /// The default takes nothing (one message per write).
    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        let _ = buf;
        None
    }
    /// Puts the queued messages, whole and in order, at the start of `tx`
    /// and returns their length (0: nothing queued). The driver calls it
    /// with the buffer it owns and writes from
    /// ([`SwapBuf`](crate::driver::SwapBuf)), drained: an outbox that keeps
    /// its messages in buffers of that type trades its filled one for it,
    /// and no byte moves ([`SwapChannel`]). The default copies, as many
    /// whole messages as `tx` holds ([`Outbox::take`], then
    /// [`Outbox::take_if_fits`]); `tx` must then hold the largest message.
    fn swap(&self, tx: &mut &'static mut [u8]) -> usize {
        let mut end = 0;
        loop {
            let rest = tx.get_mut(end..).unwrap_or(&mut []);
            let got = if end == 0 {
                self.take(rest)
            } else {
                self.take_if_fits(rest)
            };
            match got {
                Some(n) => end += n,
                None => return end,
            }
        }
    }
    /// Takes back a buffer that [`Outbox::swap`] gave the driver, once
    /// what it held is written or dropped. The default leaves it with the
    /// driver.
    fn give_back(&self, tx: &mut &'static mut [u8]) {
        let _ = tx;
    }
    /// The session is Established: accept messages up to `max_len` bytes.
    fn open(&self, max_len: usize);
    /// The session left Established: drop what is queued; writers fail.
    fn close(&self);
}

/// An outbox that never has anything (for sessions that only listen).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutbox;

impl Outbox for NoOutbox {
    fn ready(&self) -> impl Future<Output = ()> {
        core::future::pending()
    }
    fn take(&self, _: &mut [u8]) -> Option<usize> {
        None
    }
    fn open(&self, _: usize) {}
    fn close(&self) {}
}

/// Where a [`Channel`] keeps queued messages: [`Ring`], in the channel
/// itself, or [`Swap`], two buffers it trades with the driver.
pub trait Store {
    /// Free bytes: a longer message waits for room.
    fn room(&self) -> usize;
    /// The longest message the store can ever hold.
    fn capacity(&self) -> usize;
    /// Appends a whole message of at most [`Store::room`] bytes.
    fn push(&mut self, msg: &[u8]);
    /// Drops what is queued.
    fn clear(&mut self);
}

/// `N` bytes inside the channel, used as a ring: what an
/// [`UpdateChannel`] holds (in a `static` on firmware).
#[repr(C)]
pub struct Ring<const N: usize> {
    head: usize,
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> Store for Ring<N> {
    fn room(&self) -> usize {
        N - self.len
    }

    fn capacity(&self) -> usize {
        N
    }

    fn push(&mut self, msg: &[u8]) {
        let tail = (self.head + self.len) % N;
        let first = msg.len().min(N - tail);
        let (a, b) = msg.split_at(first);
        if let Some(dst) = self.buf.get_mut(tail..tail + first) {
            copy(dst, a);
        }
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            copy(dst, b);
        }
        self.len += msg.len();
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// Two buffers of the adapter's (`'static`, e.g. pages mapped for the
/// purpose): writers append to one while the driver writes from the other,
/// and [`Outbox::swap`] trades them under the lock, so what the driver
/// writes is memory it owns, held across the socket's `await` with no lock
/// and no copy. What a [`SwapChannel`] holds.
pub struct Swap {
    /// Where writers append: `fill[..len]` is queued.
    fill: &'static mut [u8],
    len: usize,
    /// The other buffer while the driver has none; empty while it has one.
    spare: &'static mut [u8],
    /// The shorter buffer's length.
    cap: usize,
    /// The driver has one of the buffers ([`SwapChannel::restock`]).
    lent: bool,
    /// Where the buffers go when the channel is dropped
    /// ([`SwapChannel::with_recycle`]).
    recycle: Option<fn(&'static mut [u8])>,
}

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(f) = self.recycle {
            for b in [&mut self.fill, &mut self.spare] {
                let b = core::mem::take(b);
                if !b.is_empty() {
                    f(b);
                }
            }
        }
    }
}

impl Store for Swap {
    fn room(&self) -> usize {
        self.fill.len().saturating_sub(self.len)
    }

    fn capacity(&self) -> usize {
        self.cap
    }

    fn push(&mut self, msg: &[u8]) {
        if let Some(dst) = self.fill.get_mut(self.len..self.len + msg.len()) {
            copy(dst, msg);
            self.len += msg.len();
        }
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

// In this order, the store (with a ring's bytes) last: the other fields
// then sit at small offsets, which firmware reaches with short
// instructions.
#[repr(C)]
struct Inner<Q> {
    messages: usize,
    generation: u32,
    max_len: usize,
    reader: WakerRegistration,
    writer: WakerRegistration,
    /// The writers waiting for the turn.
    turn: WakerRegistration,
    open: bool,
    /// A writer has the turn to wait for room (see [`Turn`]).
    writing: bool,
    q: Q,
}

impl<const N: usize> Inner<Ring<N>> {
    fn peek(&self, at: usize) -> u8 {
        self.q.buf.get((self.q.head + at) % N).copied().unwrap_or(0)
    }

    /// Moves the next message into `out`; one longer than `out` is
    /// dropped, or with `keep` left queued.
    fn pop(&mut self, out: &mut [u8], keep: bool) -> Option<usize> {
        if self.messages == 0 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.peek(16), self.peek(17)]));
        let head = self.q.head;
        let first = len.min(N - head);
        let fits = out.len() >= len;
        if keep && !fits {
            return None;
        }
        if fits {
            if let (Some(d), Some(s)) = (out.get_mut(..first), self.q.buf.get(head..head + first)) {
                copy(d, s);
            }
            if let (Some(d), Some(s)) = (out.get_mut(first..len), self.q.buf.get(..len - first)) {
                copy(d, s);
            }
        }
        self.q.head = (head + len) % N;
        self.q.len -= len;
        self.messages -= 1;
        self.writer.wake();
        // A message that does not fit the driver's buffer is dropped rather
        // than sent cut: the writer checked it against the negotiated limit.
        fits.then_some(len)
    }
}

impl Inner<Swap> {
    /// [`Inner::pop`] for a [`Swap`]: the copying path (an outbox used
    /// without [`Outbox::swap`]); the rest moves to the front.
    fn pop_front(&mut self, out: &mut [u8], keep: bool) -> Option<usize> {
        if self.messages == 0 {
            return None;
        }
        let fill = &mut *self.q.fill;
        let len = match fill.get(16..18) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => 0,
        };
        let fits = out.len() >= len;
        if keep && !fits {
            return None;
        }
        if fits && let (Some(d), Some(s)) = (out.get_mut(..len), fill.get(..len)) {
            copy(d, s);
        }
        fill.copy_within(len.min(self.q.len)..self.q.len, 0);
        self.q.len = self.q.len.saturating_sub(len);
        self.messages -= 1;
        self.writer.wake();
        fits.then_some(len)
    }
}

/// A bounded channel of whole UPDATE messages kept in a [`Store`], shared
/// by the writers and the driver. `M` is the mutex: `NoopRawMutex` on a
/// single-threaded executor, `CriticalSectionRawMutex` across threads.
/// Made as an [`UpdateChannel`] or a [`SwapChannel`].
pub struct Channel<M: RawMutex, Q> {
    inner: BlockingMutex<M, RefCell<Inner<Q>>>,
}

/// A bounded channel of whole UPDATE messages holding `N` bytes, shared by
/// the writers and the driver, which copies them out. `M` is the mutex:
/// `NoopRawMutex` on a single-threaded executor, `CriticalSectionRawMutex`
/// across threads.
pub type UpdateChannel<M, const N: usize> = Channel<M, Ring<N>>;

/// A bounded channel of whole UPDATE messages in two buffers it trades with
/// the driver ([`Swap`]): the driver writes from the one it holds while
/// writers fill the other, and nothing is copied out of the channel.
pub type SwapChannel<M> = Channel<M, Swap>;

impl<M: RawMutex, const N: usize> Default for Channel<M, Ring<N>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: RawMutex, Q> Channel<M, Q> {
    const fn with_store(q: Q) -> Self {
        Self {
            inner: BlockingMutex::new(RefCell::new(Inner {
                q,
                messages: 0,
                open: false,
                generation: 0,
                max_len: 0,
                reader: WakerRegistration::new(),
                writer: WakerRegistration::new(),
                writing: false,
                turn: WakerRegistration::new(),
            })),
        }
    }
}

impl<M: RawMutex, const N: usize> Channel<M, Ring<N>> {
    /// An empty, closed channel (usable in a `static`).
    pub const fn new() -> Self {
        Self::with_store(Ring {
            buf: [0; N],
            head: 0,
            len: 0,
        })
    }
}

impl<M: RawMutex> Channel<M, Swap> {
    /// An empty, closed channel over two buffers, each at least as long as
    /// the longest message to be sent (the channel accepts up to the
    /// shorter one's length).
    pub fn new(a: &'static mut [u8], b: &'static mut [u8]) -> Self {
        let cap = a.len().min(b.len());
        Self::with_store(Swap {
            fill: a,
            len: 0,
            spare: b,
            cap,
            lent: false,
            recycle: None,
        })
    }

    /// [`SwapChannel::new`], handing both buffers to `recycle` when the
    /// channel is dropped (for an adapter that reuses them: `'static`
    /// buffers are otherwise never freed). A buffer a dropped driver took
    /// with it ([`SwapChannel::restock`]) is not among them.
    pub fn with_recycle(
        a: &'static mut [u8],
        b: &'static mut [u8],
        recycle: fn(&'static mut [u8]),
    ) -> Self {
        let ch = Self::new(a, b);
        ch.with(|s| s.q.recycle = Some(recycle));
        ch
    }

    /// If a buffer is still out with a driver that is gone (its future was
    /// dropped while it held one: an aborted task), replaces it with the
    /// one `make` returns. Call it before a new driver starts on the
    /// channel; otherwise it does nothing.
    pub fn restock(&self, make: impl FnOnce() -> &'static mut [u8]) {
        self.with(|s| {
            if s.q.lent {
                let b = make();
                if s.q.fill.is_empty() {
                    s.q.fill = b;
                } else {
                    s.q.spare = b;
                }
                s.q.lent = false;
                s.writer.wake();
            }
        });
    }

    /// Lends the buffers the channel holds (not the driver's) to `f`, while
    /// the session is not Established (nothing is queued): the adapter can
    /// give their memory back to the system then. Does nothing while open.
    pub fn free_buffers(&self, mut f: impl FnMut(&mut [u8])) {
        self.with(|s| {
            if !s.open {
                for b in [&mut *s.q.fill, &mut *s.q.spare] {
                    if !b.is_empty() {
                        f(b);
                    }
                }
            }
        });
    }
}

impl<M: RawMutex, Q: Store> Channel<M, Q> {
    fn with<R>(&self, f: impl FnOnce(&mut Inner<Q>) -> R) -> R {
        self.inner.lock(|c| f(&mut c.borrow_mut()))
    }

    /// A writer for the current Established episode.
    pub fn writer(&self) -> Result<UpdateWriter<&Self>, WriteError> {
        UpdateWriter::new(self)
    }

    /// Whether the session is Established.
    pub fn is_open(&self) -> bool {
        self.with(|s| s.open)
    }

    /// Messages waiting for the driver.
    pub fn queued(&self) -> usize {
        self.with(|s| s.messages)
    }

    fn poll_ready(&self, cx: &mut core::task::Context<'_>) -> Poll<()> {
        self.with(|s| {
            if s.messages > 0 {
                Poll::Ready(())
            } else {
                s.reader.register(cx.waker());
                Poll::Pending
            }
        })
    }

    fn open_store(&self, max_len: usize) {
        self.with(|s| {
            s.q.clear();
            s.messages = 0;
            s.open = true;
            s.max_len = max_len.min(s.q.capacity());
        });
    }

    fn close_store(&self) {
        self.with(|s| {
            s.open = false;
            s.generation = s.generation.wrapping_add(1);
            s.q.clear();
            s.messages = 0;
            s.writer.wake();
        });
    }
}

impl<M: RawMutex, const N: usize> Outbox for Channel<M, Ring<N>> {
    fn ready(&self) -> impl Future<Output = ()> {
        poll_fn(|cx| self.poll_ready(cx))
    }

    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        self.with(|s| s.pop(buf, false))
    }

    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        self.with(|s| s.pop(buf, true))
    }

    fn open(&self, max_len: usize) {
        self.open_store(max_len);
    }

    fn close(&self) {
        self.close_store();
    }
}

impl<M: RawMutex> Outbox for Channel<M, Swap> {
    fn ready(&self) -> impl Future<Output = ()> {
        poll_fn(|cx| self.poll_ready(cx))
    }

    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        self.with(|s| s.pop_front(buf, false))
    }

    fn take_if_fits(&self, buf: &mut [u8]) -> Option<usize> {
        self.with(|s| s.pop_front(buf, true))
    }

    /// Trades: `tx` (drained, or empty) goes back to the channel and the
    /// filled buffer comes out with everything queued. O(1) under the lock.
    fn swap(&self, tx: &mut &'static mut [u8]) -> usize {
        self.with(|s| {
            if s.messages == 0 {
                return 0;
            }
            let drained = core::mem::take(tx);
            let next = if s.q.spare.is_empty() {
                drained
            } else {
                core::mem::replace(&mut s.q.spare, drained)
            };
            *tx = core::mem::replace(&mut s.q.fill, next);
            let n = s.q.len;
            s.q.len = 0;
            s.messages = 0;
            s.q.lent = true;
            s.writer.wake();
            n
        })
    }

    fn give_back(&self, tx: &mut &'static mut [u8]) {
        if tx.is_empty() {
            return;
        }
        self.with(|s| {
            if s.q.fill.is_empty() {
                s.q.fill = core::mem::take(tx);
            } else if s.q.spare.is_empty() {
                s.q.spare = core::mem::take(tx);
            } else {
                return;
            }
            s.q.lent = false;
            s.writer.wake();
        });
    }

    fn open(&self, max_len: usize) {
        self.open_store(max_len);
    }

    fn close(&self) {
        self.close_store();
    }
}

/// Sends UPDATEs on one Established episode of a session (CoreBGP's
/// `UpdateMessageWriter`). `C` is how the channel is held: a reference, or
/// an `Arc` where writers move between tasks.
#[derive(Clone)]
pub struct UpdateWriter<C> {
    channel: C,
    generation: u32,
}

impl<C, M, Q> UpdateWriter<C>
where
    C: Deref<Target = Channel<M, Q>>,
    M: RawMutex,
    Q: Store,
{
    /// A writer for the current Established episode, or
    /// [`WriteError::NotEstablished`].
    pub fn new(channel: C) -> Result<Self, WriteError> {
        let (open, generation) = channel.with(|s| (s.open, s.generation));
        if open {
            Ok(Self {
                channel,
                generation,
            })
        } else {
            Err(WriteError::NotEstablished)
        }
    }

    /// Largest UPDATE accepted (the negotiated maximum, capped by the
    /// channel's size), or 0 once closed.
    pub fn max_message_len(&self) -> usize {
        self.channel.with(|s| {
            if s.open && s.generation == self.generation {
                s.max_len
            } else {
                0
            }
        })
    }

    /// Whether the episode this writer belongs to has ended.
    pub fn is_closed(&self) -> bool {
        self.max_message_len() == 0
    }

    /// Queues one whole UPDATE message (header included), waiting while
    /// the channel is full.
    ///
    /// A plain `poll_fn` rather than an `async fn`: no state machine of its
    /// own on flash.
    pub fn send<'s>(&'s self, msg: &[u8]) -> impl Future<Output = Result<(), WriteError>>
    where
        M: 's,
        Q: 's,
    {
        let len_ok =
            msg.get(16..18) == Some(&(msg.len() as u16).to_be_bytes()[..]) && msg.len() >= 23;
        let update = len_ok
            && msg.get(18) == Some(&(MessageType::Update as u8))
            && msg.len() <= u16::MAX as usize;
        // One writer at a time waits for room, so a large message is not
        // starved by a stream of small ones: a mutex in the channel's own
        // state, taken in the same poll that waits for room.
        let mut turn = Turn {
            ch: &*self.channel,
            held: false,
        };
        poll_fn(move |cx| {
            // The whole guard moves into the future (not copies of its
            // fields), so dropping the future passes the turn on.
            let turn = &mut turn;
            if !update {
                return Poll::Ready(Err(WriteError::NotAnUpdate));
            }
            turn.ch.with(|s| {
                if !turn.held {
                    if s.writing {
                        s.turn.register(cx.waker());
                        return Poll::Pending;
                    }
                    s.writing = true;
                    turn.held = true;
                }
                let res = if !s.open || s.generation != self.generation {
                    Err(WriteError::Closed)
                } else if msg.len() > s.max_len {
                    Err(WriteError::TooLong {
                        len: msg.len(),
                        max: s.max_len,
                    })
                } else if s.q.room() < msg.len() {
                    s.writer.register(cx.waker());
                    return Poll::Pending;
                } else {
                    s.q.push(msg);
                    s.messages += 1;
                    s.reader.wake();
                    Ok(())
                };
                // Done: the turn passes on now, not when the future is
                // dropped.
                turn.held = false;
                s.writing = false;
                s.turn.wake();
                Poll::Ready(res)
            })
        })
    }
}

/// A writer's turn to wait for room in a channel, if `held`; dropping it
/// (sent, failed or cancelled) passes the turn on.
struct Turn<'c, M: RawMutex, Q: Store> {
    ch: &'c Channel<M, Q>,
    held: bool,
}

impl<M: RawMutex, Q: Store> Drop for Turn<'_, M, Q> {
    fn drop(&mut self) {
        if self.held {
            self.ch.with(|s| {
                s.writing = false;
                s.turn.wake();
            });
        }
    }
}

impl<C> core::fmt::Debug for UpdateWriter<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UpdateWriter")
            .field("generation", &self.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use std::vec;

    fn update(len: usize) -> std::vec::Vec<u8> {
        let mut m = vec![0u8; len];
        m[..16].fill(0xff);
        m[16..18].copy_from_slice(&(len as u16).to_be_bytes());
        m[18] = 2;
        m
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_full_channel_makes_writers_wait_until_the_driver_takes() {
        let ch: UpdateChannel<NoopRawMutex, 100> = UpdateChannel::new();
        ch.open(4096);
        let w = ch.writer().unwrap();
        assert_eq!(w.max_message_len(), 100, "capped by the channel's size");
        w.send(&update(60)).await.unwrap();
        // 60 of 100 bytes used: a 50-byte message must wait.
        let m50 = update(50);
        let second = w.send(&m50);
        let mut second = core::pin::pin!(second);
        assert!(futures_poll(second.as_mut()).is_pending(), "backpressure");
        let mut buf = [0u8; 4096];
        assert_eq!(ch.take(&mut buf), Some(60));
        assert_eq!(second.await, Ok(()));
        assert_eq!(ch.take(&mut buf), Some(50));
        assert_eq!(ch.take(&mut buf), None);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn messages_wrap_around_the_ring_whole() {
        let ch: UpdateChannel<NoopRawMutex, 64> = UpdateChannel::new();
        ch.open(4096);
        let w = ch.writer().unwrap();
        let mut buf = [0u8; 64];
        for len in [40usize, 30, 50, 23, 64, 41] {
            let mut m = update(len);
            if let Some(last) = m.last_mut() {
                *last = len as u8;
            }
            w.send(&m).await.unwrap();
            assert_eq!(ch.take(&mut buf), Some(len));
            assert_eq!(&buf[..len], &m[..]);
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_waiting_writer_fails_when_the_session_closes() {
        let ch: UpdateChannel<NoopRawMutex, 100> = UpdateChannel::new();
        ch.open(4096);
        let w = ch.writer().unwrap();
        w.send(&update(90)).await.unwrap();
        let m50 = update(50);
        let waiting = w.send(&m50);
        let mut waiting = core::pin::pin!(waiting);
        assert!(futures_poll(waiting.as_mut()).is_pending());
        ch.close();
        assert_eq!(waiting.await, Err(WriteError::Closed));
        // A new episode: the old writer stays closed, a new one works.
        ch.open(4096);
        assert_eq!(w.send(&update(23)).await, Err(WriteError::Closed));
        assert_eq!(ch.queued(), 0, "nothing of the old episode is left");
        ch.writer().unwrap().send(&update(23)).await.unwrap();
        assert_eq!(ch.queued(), 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_large_message_waiting_for_room_is_not_overtaken_by_small_ones() {
        let ch: UpdateChannel<NoopRawMutex, 100> = UpdateChannel::new();
        ch.open(4096);
        let (a, b) = (ch.writer().unwrap(), ch.writer().unwrap());
        a.send(&update(60)).await.unwrap();
        let (m80, m23) = (update(80), update(23));
        let mut large = core::pin::pin!(a.send(&m80));
        assert!(futures_poll(large.as_mut()).is_pending(), "no room for 80");
        // 40 bytes free: 23 would fit, but the large one has the turn.
        let mut small = core::pin::pin!(b.send(&m23));
        assert!(futures_poll(small.as_mut()).is_pending(), "waits its turn");
        assert_eq!(ch.queued(), 1);
        let mut buf = [0u8; 100];
        assert_eq!(ch.take(&mut buf), Some(60));
        assert!(
            futures_poll(small.as_mut()).is_pending(),
            "still the large one's turn"
        );
        assert_eq!(futures_poll(large.as_mut()), Poll::Ready(Ok(())));
        assert!(futures_poll(small.as_mut()).is_pending(), "80 + 23 > 100");
        assert_eq!(ch.take(&mut buf), Some(80));
        assert_eq!(futures_poll(small.as_mut()), Poll::Ready(Ok(())));
        assert_eq!(ch.take(&mut buf), Some(23));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_cancelled_finished_or_failed_send_passes_the_turn_on() {
        let ch: UpdateChannel<NoopRawMutex, 100> = UpdateChannel::new();
        ch.open(4096);
        let (a, b) = (ch.writer().unwrap(), ch.writer().unwrap());
        a.send(&update(90)).await.unwrap();
        let (m50, m23) = (update(50), update(23));
        {
            let mut waiting = core::pin::pin!(a.send(&m50));
            assert!(futures_poll(waiting.as_mut()).is_pending());
            let mut other = core::pin::pin!(b.send(&m23));
            assert!(futures_poll(other.as_mut()).is_pending(), "a has the turn");
        } // both dropped: cancelled while waiting
        let mut buf = [0u8; 100];
        assert_eq!(ch.take(&mut buf), Some(90));
        let next = core::pin::pin!(b.send(&m23));
        assert_eq!(futures_poll(next), Poll::Ready(Ok(())), "the turn is free");
        // A turn that ends in an error is passed on too, and so is one whose
        // finished future is not dropped yet (`failing`, the `next` above).
        let m101 = update(101);
        let failing = core::pin::pin!(a.send(&m101));
        let too_long = Err(WriteError::TooLong { len: 101, max: 100 });
        assert_eq!(futures_poll(failing), Poll::Ready(too_long));
        let next = core::pin::pin!(b.send(&m23));
        assert_eq!(futures_poll(next), Poll::Ready(Ok(())), "the turn is free");
        assert_eq!(ch.queued(), 2);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn take_if_fits_leaves_a_message_that_does_not_fit() {
        let ch: UpdateChannel<NoopRawMutex, 200> = UpdateChannel::new();
        ch.open(4096);
        let w = ch.writer().unwrap();
        for len in [30usize, 40, 50] {
            w.send(&update(len)).await.unwrap();
        }
        let mut buf = [0u8; 100];
        assert_eq!(ch.take_if_fits(&mut buf[..29]), None, "30 > 29: kept");
        assert_eq!(ch.queued(), 3);
        assert_eq!(ch.take_if_fits(&mut buf), Some(30));
        assert_eq!(ch.take_if_fits(&mut buf[30..]), Some(40));
        assert_eq!(ch.take_if_fits(&mut buf[70..]), None, "50 > 30: kept");
        assert_eq!(ch.queued(), 1);
        assert_eq!(&buf[16..18], &30u16.to_be_bytes());
        assert_eq!(&buf[30 + 16..30 + 18], &40u16.to_be_bytes());
        assert_eq!(ch.take(&mut buf), Some(50));
        assert_eq!(ch.take_if_fits(&mut buf), None, "empty");
        assert_eq!(NoOutbox.take_if_fits(&mut buf), None);
    }

    /// Two leaked buffers of `len` bytes (a test's stand-in for mapped
    /// pages) and their addresses.
    fn two_buffers(len: usize) -> (&'static mut [u8], &'static mut [u8], usize, usize) {
        let a = std::boxed::Box::leak(vec![0u8; len].into_boxed_slice());
        let b = std::boxed::Box::leak(vec![0u8; len].into_boxed_slice());
        let (pa, pb) = (a.as_ptr() as usize, b.as_ptr() as usize);
        (a, b, pa, pb)
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_swap_channel_trades_buffers_in_order_without_copying() {
        let (a, b, pa, pb) = two_buffers(256);
        let ch: SwapChannel<NoopRawMutex> = SwapChannel::new(a, b);
        ch.open(4096);
        let w = ch.writer().unwrap();
        assert_eq!(w.max_message_len(), 256, "capped by the buffers' size");
        let (m1, m2, m3, m4) = (update(100), update(60), update(200), update(100));
        w.send(&m1).await.unwrap();
        w.send(&m2).await.unwrap();
        let mut tx: &'static mut [u8] = &mut [];
        assert_eq!(ch.swap(&mut tx), 160);
        assert_eq!(tx.as_ptr() as usize, pa, "the filled buffer itself");
        assert_eq!((&tx[..100], &tx[100..160]), (&m1[..], &m2[..]));
        assert_eq!(ch.queued(), 0);
        // Writers fill the other buffer meanwhile; it is full at 256.
        w.send(&m3).await.unwrap();
        let mut fourth = core::pin::pin!(w.send(&m4));
        assert!(futures_poll(fourth.as_mut()).is_pending(), "backpressure");
        // The drained buffer goes back, the filled one comes out: room.
        assert_eq!(ch.swap(&mut tx), 200);
        assert_eq!(tx.as_ptr() as usize, pb);
        assert_eq!(&tx[..200], &m3[..]);
        assert_eq!(futures_poll(fourth.as_mut()), Poll::Ready(Ok(())));
        assert_eq!(ch.swap(&mut tx), 100);
        assert_eq!(tx.as_ptr() as usize, pa, "the two take turns");
        assert_eq!(&tx[..100], &m4[..]);
        assert_eq!(ch.swap(&mut tx), 0, "nothing queued: no trade");
        assert_eq!(tx.as_ptr() as usize, pa);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn closing_a_swap_channel_drops_the_queue_not_the_drivers_buffer() {
        let (a, b, _, _) = two_buffers(256);
        let ch: SwapChannel<NoopRawMutex> = SwapChannel::new(a, b);
        ch.open(4096);
        let w = ch.writer().unwrap();
        let (m1, m2) = (update(100), update(50));
        w.send(&m1).await.unwrap();
        let mut tx: &'static mut [u8] = &mut [];
        assert_eq!(ch.swap(&mut tx), 100);
        w.send(&m2).await.unwrap();
        ch.close();
        assert_eq!(ch.queued(), 0);
        assert_eq!(&tx[..100], &m1[..], "still the driver's, to be written");
        // Closed: the channel lends what it holds (one buffer: the driver
        // has the other), and takes the driver's back.
        let mut held = 0;
        ch.free_buffers(|_| held += 1);
        assert_eq!(held, 1);
        ch.give_back(&mut tx);
        assert!(tx.is_empty());
        held = 0;
        ch.free_buffers(|b| {
            assert_eq!(b.len(), 256);
            held += 1;
        });
        assert_eq!(held, 2);
        // The next episode starts empty, and the copying take still works.
        ch.open(4096);
        assert_eq!(w.send(&m2).await, Err(WriteError::Closed));
        ch.writer().unwrap().send(&m2).await.unwrap();
        let mut out = [0u8; 256];
        assert_eq!(ch.take_if_fits(&mut out[..49]), None, "kept");
        assert_eq!(ch.take(&mut out), Some(50));
        assert_eq!(&out[..50], &m2[..]);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_buffer_lost_with_its_driver_is_restocked_once() {
        let (a, b, _, _) = two_buffers(128);
        let ch: SwapChannel<NoopRawMutex> = SwapChannel::new(a, b);
        let mut made = 0;
        ch.restock(|| {
            made += 1;
            &mut []
        });
        assert_eq!(made, 0, "nothing lent: nothing to replace");
        ch.open(4096);
        let w = ch.writer().unwrap();
        w.send(&update(100)).await.unwrap();
        let mut tx: &'static mut [u8] = &mut [];
        assert_eq!(ch.swap(&mut tx), 100);
        // The driver is dropped with the buffer (an aborted task): `tx`
        // is not used again.
        let (c, _, pc, _) = two_buffers(128);
        let mut c = Some(c);
        ch.restock(|| {
            made += 1;
            c.take().unwrap()
        });
        assert_eq!(made, 1);
        ch.restock(|| unreachable!("restocked already"));
        // Both buffers work again: fill one, trade it, fill the other.
        w.send(&update(100)).await.unwrap();
        let mut tx: &'static mut [u8] = &mut [];
        assert_eq!(ch.swap(&mut tx), 100);
        w.send(&update(120)).await.unwrap();
        assert_eq!(ch.swap(&mut tx), 120);
        assert_eq!(tx.as_ptr() as usize, pc, "the new one is in use");
    }

    fn futures_poll<F: Future>(f: core::pin::Pin<&mut F>) -> Poll<F::Output> {
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        f.poll(&mut cx)
    }
}
