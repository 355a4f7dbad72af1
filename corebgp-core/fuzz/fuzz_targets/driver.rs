//! The async driver ([`corebgp_core::driver::run`]) polled by hand with a
//! no-op waker, no runtime: in-memory transports whose reads and writes
//! complete (in chunks of any size), block, fail or end as the input says;
//! dials that succeed or fail; connections arriving; a clock that jumps or
//! steps to the driver's own deadline; a plugin that is slow, refuses
//! UPDATEs, and queues UPDATEs in the outbox; a shutdown. Checked after
//! every step:
//! * no panic, and no busy loop (bounded work per poll: a deadline left in
//!   the past would spin);
//! * every byte written on a transport frames and decodes, our OPEN first,
//!   nothing after a NOTIFICATION, UPDATEs only after our KEEPALIVE and
//!   never inside another message ([`common::Sent`]);
//! * every NOTIFICATION is one the state it was sent from may send, and
//!   ends the connection;
//! * Established only after the remote's OPEN and then KEEPALIVE were read
//!   on that transport; `on_established` and `on_close` 1:1, `on_update`
//!   only between them;
//! * a transport the driver replaces is dropped (closed), and after a
//!   shutdown the driver returns within [`SHUTDOWN_LINGER`] with every
//!   transport closed.
#![no_main]

use core::future::poll_fn;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use corebgp_core::driver::{Buffers, Clock, Connector, SHUTDOWN_LINGER, run};
use corebgp_core::outbox::Outbox;
use corebgp_core::plugin::LocalPlugin;
use corebgp_core::session::{
    CapabilitySet, Direction, DownReason, Event, Instant, Negotiated, OpenHooks, Peer, PeerConfig,
    StateKind,
};
use corebgp_core::wire::{
    AfiSafi, Capability, CeaseSubcode, Framer, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message,
    Notification, NotificationCode, Open, UpdateSections,
};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{Cfg, Sent, Upd, WireMsg, update_bytes, wire_bytes};

/// One in-memory TCP connection, as the remote and the harness see it.
struct Pipe {
    /// Bytes the remote sent that the driver has not read.
    inq: VecDeque<u8>,
    /// Largest read (at least 1).
    read_chunk: usize,
    /// Largest write (at least 1).
    write_chunk: usize,
    /// Bytes the transport takes before writes block; `None`: no limit.
    write_allow: Option<usize>,
    read_err: bool,
    write_err: bool,
    eof: bool,
    /// What the driver wrote, checked.
    sent: Sent,
    /// What the driver read, framed: whether an OPEN, then a KEEPALIVE.
    read: Framer<Vec<u8>>,
    read_open: bool,
    read_keepalive: bool,
    read_lost: bool,
}

type P = Rc<RefCell<Pipe>>;

fn pipe() -> P {
    Rc::new(RefCell::new(Pipe {
        inq: VecDeque::new(),
        read_chunk: 4096,
        write_chunk: 4096,
        write_allow: None,
        read_err: false,
        write_err: false,
        eof: false,
        sent: Sent::new(),
        read: Framer::new(vec![0u8; MAX_EXTENDED_MESSAGE_LEN]),
        read_open: false,
        read_keepalive: false,
        read_lost: false,
    }))
}

impl Pipe {
    fn note_read(&mut self, mut bytes: &[u8]) {
        if self.read_lost {
            return;
        }
        self.read.set_max_message_len(MAX_EXTENDED_MESSAGE_LEN);
        loop {
            let k = self.read.feed(bytes);
            bytes = &bytes[k..];
            while let Some(m) = self.read.next_message() {
                let Ok(m) = m else {
                    // A header error: the stream is lost (the session
                    // closes the connection), nothing further counts.
                    self.read_lost = true;
                    return;
                };
                match Message::parse(m, MAX_EXTENDED_MESSAGE_LEN) {
                    Ok(Message::Open(_)) => self.read_open = true,
                    Ok(Message::Keepalive) if self.read_open => self.read_keepalive = true,
                    _ => {}
                }
            }
            if bytes.is_empty() || k == 0 {
                return;
            }
        }
    }
}

struct Transport(P);

impl ErrorType for Transport {
    type Error = ErrorKind;
}

impl Read for Transport {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        poll_fn(|_| {
            let mut p = self.0.borrow_mut();
            if p.read_err {
                return Poll::Ready(Err(ErrorKind::ConnectionReset));
            }
            if !p.inq.is_empty() && !buf.is_empty() {
                let n = buf.len().min(p.read_chunk).min(p.inq.len());
                for (i, b) in p.inq.drain(..n).enumerate() {
                    buf[i] = b;
                }
                p.note_read(&buf[..n]);
                return Poll::Ready(Ok(n));
            }
            if p.eof {
                return Poll::Ready(Ok(0));
            }
            Poll::Pending
        })
        .await
    }
}

impl Write for Transport {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        poll_fn(|_| {
            let mut p = self.0.borrow_mut();
            if p.write_err {
                return Poll::Ready(Err(ErrorKind::BrokenPipe));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let room = p.write_allow.unwrap_or(usize::MAX).min(p.write_chunk);
            if room == 0 {
                return Poll::Pending;
            }
            let n = buf.len().min(room);
            if let Some(a) = &mut p.write_allow {
                *a -= n;
            }
            p.sent.feed(&buf[..n]);
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

#[derive(Default)]
struct Net {
    /// The outcome of the next dial; it waits until there is one.
    dial_result: Cell<Option<bool>>,
    /// A connection waiting to be accepted.
    incoming: RefCell<Option<P>>,
    /// The last connection dialled / accepted.
    out: RefCell<Option<P>>,
    inn: RefCell<Option<P>>,
    /// Every connection made, to check that the driver closes them.
    all: RefCell<Vec<P>>,
}

impl Connector for Net {
    type Transport = Transport;
    async fn connect(&self) -> Option<Transport> {
        poll_fn(|_| match self.dial_result.take() {
            Some(true) => {
                let p = pipe();
                self.all.borrow_mut().push(p.clone());
                if let Some(old) = self.out.borrow_mut().replace(p.clone()) {
                    // A new attempt: the driver dropped the old one.
                    assert_eq!(Rc::strong_count(&old), 2, "a replaced dial left open");
                }
                Poll::Ready(Some(Transport(p)))
            }
            Some(false) => Poll::Ready(None),
            None => Poll::Pending,
        })
        .await
    }
    async fn accept(&self) -> Transport {
        poll_fn(|_| match self.incoming.borrow_mut().take() {
            Some(p) => {
                self.all.borrow_mut().push(p.clone());
                *self.inn.borrow_mut() = Some(p.clone());
                Poll::Ready(Transport(p))
            }
            None => Poll::Pending,
        })
        .await
    }
}

struct FClock {
    now: Cell<Instant>,
    /// `now()` calls in this poll (a driver that spins calls it forever).
    calls: Cell<u64>,
    /// The earliest deadline the driver waited on in the last poll.
    next: Cell<Option<Instant>>,
}

impl Clock for FClock {
    fn now(&self) -> Instant {
        self.calls.set(self.calls.get() + 1);
        assert!(self.calls.get() < 200_000, "the driver spins");
        self.now.get()
    }
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        poll_fn(move |_| {
            self.next
                .set(Some(self.next.get().map_or(deadline, |n| n.min(deadline))));
            if self.now.get() >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[derive(Default)]
struct Log {
    established: u32,
    closed: u32,
    updates: u32,
    events: Vec<Event>,
}

#[derive(Default)]
struct PlugState {
    slow: Cell<bool>,
    tickets: Cell<u32>,
    released: Cell<u32>,
    refuse_update: Cell<Option<u8>>,
    refuse_open: Cell<Option<u8>>,
    log: RefCell<Log>,
}

struct Plug(Rc<PlugState>);

impl Plug {
    /// A slow plugin's hook completes when the harness releases it.
    async fn wait(&self) {
        if !self.0.slow.get() {
            return;
        }
        let t = self.0.tickets.get() + 1;
        self.0.tickets.set(t);
        poll_fn(|_| {
            if self.0.released.get() >= t {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl OpenHooks for Plug {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::RouteRefresh);
    }
    fn check_open(
        &mut self,
        _: &PeerConfig,
        _: &Open<'_>,
        _: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        match self.0.refuse_open.get() {
            Some(s) => Err(Notification::new(NotificationCode::from_raw(2, s))),
            None => Ok(()),
        }
    }
}

impl LocalPlugin for Plug {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {
        {
            let mut l = self.0.log.borrow_mut();
            l.established += 1;
            assert_eq!(l.established, l.closed + 1, "on_established twice");
        }
        self.wait().await;
    }
    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        {
            let mut l = self.0.log.borrow_mut();
            assert_eq!(l.established, l.closed + 1, "on_update outside a session");
            l.updates += 1;
        }
        self.wait().await;
        match self.0.refuse_update.take() {
            Some(s) => Err(Notification::new(NotificationCode::from_raw(3, s))),
            None => Ok(()),
        }
    }
    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        self.0.log.borrow_mut().events.push(*e);
    }
    fn on_close(&mut self, _: &PeerConfig, _: DownReason) {
        let mut l = self.0.log.borrow_mut();
        l.closed += 1;
        assert_eq!(l.established, l.closed, "on_close without on_established");
    }
}

#[derive(Default)]
struct Ob {
    q: RefCell<VecDeque<Vec<u8>>>,
    open: Cell<Option<usize>>,
}

impl Outbox for Ob {
    fn ready(&self) -> impl Future<Output = ()> {
        poll_fn(|_| {
            if self.q.borrow().is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }
    fn take(&self, buf: &mut [u8]) -> Option<usize> {
        let m = self.q.borrow_mut().pop_front()?;
        buf.get_mut(..m.len())?.copy_from_slice(&m);
        Some(m.len())
    }
    fn open(&self, max_len: usize) {
        self.open.set(Some(max_len));
    }
    fn close(&self) {
        self.open.set(None);
        self.q.borrow_mut().clear();
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Which {
    Out,
    In,
}

#[derive(Arbitrary, Debug)]
enum QUpd {
    Valid,
    Len(u16),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Dial(bool),
    Incoming,
    Send(Which, WireMsg),
    ReadChunk(Which, u16),
    WriteChunk(Which, u16),
    /// The transport takes this many more bytes, then blocks; `None`: no
    /// limit.
    WriteLimit(Which, Option<u16>),
    ReadError(Which),
    WriteError(Which),
    Eof(Which),
    /// The clock jumps.
    Advance(u32),
    /// The clock moves to the driver's next deadline.
    Tick,
    Slow(bool),
    Release,
    RefuseUpdate(Option<u8>),
    RefuseOpen(Option<u8>),
    Queue(QUpd),
    Shutdown(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    cfg: Cfg,
    ops: Vec<Op>,
}

/// Whether the state a NOTIFICATION was sent from may send its code (RFC
/// 4271 §6, §8.2.2; RFC 6608 §3; RFC 7313 §5; RFC 9687; RFC 4486).
fn consistent(from: StateKind, code: NotificationCode) -> bool {
    if from < StateKind::OpenSent {
        return false;
    }
    match code {
        NotificationCode::MessageHeader(_)
        | NotificationCode::Cease(_)
        | NotificationCode::HoldTimerExpired(0)
        | NotificationCode::SendHoldTimerExpired(0) => true,
        NotificationCode::Open(_) => from <= StateKind::OpenConfirm,
        NotificationCode::Fsm(s) => s.to_raw() == from as u8 - StateKind::Active as u8,
        NotificationCode::Update(_) | NotificationCode::RouteRefresh(_) => {
            from == StateKind::Established
        }
        _ => false,
    }
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

struct Checker {
    seen: usize,
    /// A NOTIFICATION sent on each direction, waiting for its state change.
    notified: [Option<NotificationCode>; 2],
}

impl Checker {
    fn check(&mut self, st: &PlugState, net: &Net) {
        let log = st.log.borrow();
        for e in &log.events[self.seen..] {
            match *e {
                Event::NotificationSent { direction, code } => {
                    assert!(self.notified[ix(direction)].is_none(), "two NOTIFICATIONs");
                    self.notified[ix(direction)] = Some(code);
                }
                Event::StateChanged {
                    direction,
                    from,
                    to,
                } => {
                    if let Some(code) = self.notified[ix(direction)].take() {
                        assert_eq!(to, StateKind::Idle, "a NOTIFICATION that did not close");
                        assert!(
                            consistent(from, code),
                            "NOTIFICATION {code:?} sent from {from:?}"
                        );
                    }
                }
                Event::Established { direction } => {
                    let p = match direction {
                        Direction::Outbound => net.out.borrow().clone(),
                        Direction::Inbound => net.inn.borrow().clone(),
                    };
                    let p = p.expect("Established without a transport");
                    let p = p.borrow();
                    assert!(
                        p.read_open && p.read_keepalive,
                        "Established on {direction:?} before the remote's OPEN and KEEPALIVE"
                    );
                }
                _ => {}
            }
        }
        self.seen = log.events.len();
    }
}

fuzz_target!(|input: Input| {
    let config = input.cfg.build();
    if config.validate().is_err() {
        return;
    }
    let remote_as = input.cfg.remote_as();
    let rx_len = if config.extended_messages {
        MAX_EXTENDED_MESSAGE_LEN
    } else {
        MAX_MESSAGE_LEN
    };
    let clock = FClock {
        now: Cell::new(Instant::from_millis(1)),
        calls: Cell::new(0),
        next: Cell::new(None),
    };
    let mut peer = Peer::new(config);
    peer.start(clock.now.get());
    let net = Net::default();
    let st = Rc::new(PlugState::default());
    let mut plugin = Plug(st.clone());
    let ob = Ob::default();
    let shutdown = Cell::new(None::<u8>);
    let (mut rx0, mut rx1, mut tx) = (vec![0u8; rx_len], vec![0u8; rx_len], vec![0u8; rx_len]);
    let mut checker = Checker {
        seen: 0,
        notified: [None, None],
    };
    let mut shut_at: Option<Instant> = None;
    let done;
    {
        let fut = run(
            &mut peer,
            &net,
            &clock,
            &mut plugin,
            &ob,
            Buffers {
                rx: [&mut rx0, &mut rx1],
                tx: &mut tx,
            },
            poll_fn(|_| match shutdown.get() {
                Some(s) => Poll::Ready(CeaseSubcode::from_raw(s)),
                None => Poll::Pending,
            }),
        );
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        let mut poll = || {
            clock.calls.set(0);
            clock.next.set(None);
            let r = fut.as_mut().poll(&mut cx).is_ready();
            checker.check(&st, &net);
            r
        };
        let mut finished = poll();
        let pick = |w: Which| match w {
            Which::Out => net.out.borrow().clone(),
            Which::In => net.inn.borrow().clone(),
        };
        for op in input.ops.iter().take(256) {
            if finished {
                break;
            }
            match op {
                Op::Dial(ok) => net.dial_result.set(Some(*ok)),
                Op::Incoming => {
                    if net.incoming.borrow().is_none() {
                        *net.incoming.borrow_mut() = Some(pipe());
                    }
                }
                Op::Send(w, m) => {
                    if let Some(p) = pick(*w) {
                        let b = wire_bytes(m, remote_as);
                        let mut p = p.borrow_mut();
                        if p.inq.len() < 1 << 20 {
                            p.inq.extend(b);
                        }
                    }
                }
                Op::ReadChunk(w, n) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().read_chunk = usize::from(*n).max(1);
                    }
                }
                Op::WriteChunk(w, n) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().write_chunk = usize::from(*n).max(1);
                    }
                }
                Op::WriteLimit(w, n) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().write_allow = n.map(usize::from);
                    }
                }
                Op::ReadError(w) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().read_err = true;
                    }
                }
                Op::WriteError(w) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().write_err = true;
                    }
                }
                Op::Eof(w) => {
                    if let Some(p) = pick(*w) {
                        p.borrow_mut().eof = true;
                    }
                }
                Op::Advance(ms) => {
                    let now = clock.now.get();
                    clock
                        .now
                        .set(Instant::from_millis(now.as_millis() + u64::from(*ms)));
                }
                Op::Tick => {
                    if let Some(t) = clock.next.get() {
                        clock.now.set(clock.now.get().max(t));
                    }
                }
                Op::Slow(s) => st.slow.set(*s),
                Op::Release => st.released.set(st.tickets.get()),
                Op::RefuseUpdate(r) => st.refuse_update.set(*r),
                Op::RefuseOpen(r) => st.refuse_open.set(*r),
                Op::Queue(u) => {
                    let msg = update_bytes(&match u {
                        QUpd::Valid => Upd::Valid,
                        QUpd::Len(n) => Upd::Len(*n),
                    });
                    // An UpdateChannel's writer: only while open, and only
                    // what fits the negotiated maximum.
                    if ob.open.get().is_some_and(|m| msg.len() <= m) && ob.q.borrow().len() < 64 {
                        ob.q.borrow_mut().push_back(msg);
                    }
                }
                Op::Shutdown(s) => {
                    if shutdown.get().is_none() {
                        shutdown.set(Some(*s));
                        shut_at = Some(clock.now.get());
                    }
                }
            }
            finished = poll();
            if std::env::var_os("DRIVER_FUZZ_TRACE").is_some() {
                let q = |p: Option<P>| {
                    p.map(|p| {
                        (
                            p.borrow().inq.len(),
                            p.borrow().read_open,
                            p.borrow().read_keepalive,
                        )
                    })
                };
                eprintln!(
                    "OP {op:?} now {:?} next {:?} out {:?} ev {:?}",
                    clock.now.get(),
                    clock.next.get(),
                    q(net.out.borrow().clone()),
                    st.log.borrow().events.last()
                );
            }
        }
        // Stop it: with the plugin let go, the driver returns once the
        // linger has passed, whatever the transports do.
        if !finished {
            st.slow.set(false);
            st.released.set(u32::MAX);
            if shutdown.get().is_none() {
                shutdown.set(Some(2));
                shut_at = Some(clock.now.get());
            }
            finished = poll();
            if !finished {
                let t = shut_at.unwrap_or(clock.now.get()).max(clock.now.get());
                clock.now.set(t + SHUTDOWN_LINGER);
                finished = poll();
            }
        }
        done = finished;
    }
    assert!(
        done,
        "the driver did not return within SHUTDOWN_LINGER of a stop"
    );
    // Only the list of all connections holds them now.
    net.out.borrow_mut().take();
    net.inn.borrow_mut().take();
    net.incoming.borrow_mut().take();
    for p in net.all.borrow().iter() {
        assert_eq!(Rc::strong_count(p), 1, "a transport left open");
    }
    let l = st.log.borrow();
    assert_eq!(l.established, l.closed, "a session not closed at the end");
    // `DRIVER_FUZZ_TRACE=1`: what happened (to pick seeds).
    if std::env::var_os("DRIVER_FUZZ_TRACE").is_some() {
        eprintln!("TRACE updates {} {:?}", l.updates, l.events);
    }
});
