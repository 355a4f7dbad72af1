//! The sans-IO session fuzzed as an adapter drives it: one [`Peer`] fed an
//! arbitrary sequence of inputs (bytes arriving on either connection split
//! anywhere, dials completing or failing, connections accepted, failing or
//! closed, time passing, the plugin's decisions, UPDATEs to send, start and
//! stop), with the invariants checked after every step:
//! * no panic;
//! * every byte the session writes frames and decodes; its OPEN comes first
//!   and once, a NOTIFICATION only after it (RFC 4271 §8.2.2,
//!   SendNOTIFICATIONwithoutOPEN off) and nothing after a NOTIFICATION;
//! * every NOTIFICATION sent has a code the RFCs allow in the state it was
//!   sent from, for the input that caused it (RFC 4271 §6, §8.2.2; RFC 6608
//!   with its one data byte; RFC 4486; RFC 7313; RFC 9687), reaches the wire
//!   (never dropped for lack of room) and ends its connection;
//! * never Established without an OPEN and then a KEEPALIVE received on that
//!   connection, never two connections Established, `on_close` 1:1 with
//!   Established, and no state past Active without a transport;
//! * no buffer grows past its bound (the link's [`TX_CAPACITY`], the event
//!   queue: nothing dropped while the adapter drains it after every input);
//! * `poll_timeout` is never in the past after `handle_timeout`.
#![no_main]

use arbitrary::Arbitrary;
use corebgp_core::session::{
    CapabilitySet, Direction, Duration, Event, Instant, Negotiated, OpenHooks, Peer, PeerConfig,
    StateKind, TX_CAPACITY,
};
use corebgp_core::wire::{
    CeaseSubcode, Framer, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message, Notification,
    NotificationCode, Open,
};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{Cap, Cfg, Sent, Upd, WireMsg, caps_of, update_bytes, wire_bytes};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Out,
    In,
}

impl Dir {
    fn d(self) -> Direction {
        match self {
            Dir::Out => Direction::Outbound,
            Dir::In => Direction::Inbound,
        }
    }
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Start,
    Stop(u8),
    /// The dial the session asked for completes (or fails).
    DialDone(bool),
    /// The peer connects to us.
    Accept,
    /// The remote sends a message; all that is queued on the wire towards
    /// us arrives, or only up to this many bytes of it.
    Send(Dir, WireMsg, Option<u16>),
    /// Up to this many queued bytes arrive (a read).
    Deliver(Dir, u16),
    /// Everything queued arrives.
    DeliverAll(Dir),
    /// The transport takes up to this many of our pending bytes.
    Write(Dir, u16),
    /// The transport fails, or the remote closes it.
    Fail(Dir),
    /// Time passes: deadline by deadline, or in one jump (an adapter that
    /// overslept).
    Advance {
        ms: u32,
        jump: bool,
    },
    /// The plugin's writer hands over an UPDATE.
    SendUpdate(Upd),
    /// The adapter is (not) waiting on the plugin for a received message.
    Busy(Dir, bool),
    /// The plugin refuses the UPDATE it was handed: 3/subcode.
    Refuse(Dir, u8),
    /// The plugin's OPEN hooks: capabilities, and refusing OPENs with 2/x.
    Hooks {
        caps: Vec<Cap>,
        refuse: Option<u8>,
    },
}

struct Hooks {
    caps: Vec<Cap>,
    refuse: Option<u8>,
    remote_as: u32,
}

impl OpenHooks for Hooks {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        for c in caps_of(&self.caps, self.remote_as) {
            let _ = caps.push(&c);
        }
    }
    fn check_open(
        &mut self,
        _: &PeerConfig,
        _: &Open<'_>,
        _: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        match self.refuse {
            Some(s) => Err(Notification::new(NotificationCode::from_raw(2, s))),
            None => Ok(()),
        }
    }
}

/// What the adapter knows of one connection.
struct Conn {
    up: bool,
    /// Bytes on the wire towards the session.
    inq: Vec<u8>,
    /// The session's receive framer.
    rx: Framer<Vec<u8>>,
    /// Decodes and checks what the session wrote.
    tx: Sent,
    blocked: bool,
    open_rx: bool,
    keepalive_rx: bool,
    notifications_events: u32,
    /// A received UPDATE the plugin may still refuse.
    update_held: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            up: false,
            inq: Vec::new(),
            rx: Framer::new(vec![0u8; MAX_EXTENDED_MESSAGE_LEN]),
            tx: Sent::new(),
            blocked: false,
            open_rx: false,
            keepalive_rx: false,
            notifications_events: 0,
            update_held: false,
        }
    }
}

/// What caused a batch of events (for the NOTIFICATION codes allowed).
#[derive(Debug, Clone, Copy)]
enum Cause {
    Stop(u8),
    Timer,
    Message,
    Refuse(NotificationCode),
    Other,
}

struct World {
    peer: Peer,
    hooks: Hooks,
    now: Instant,
    conns: [Conn; 2],
    dialing: bool,
    established_events: [u32; 2],
    down_events: [u32; 2],
    /// Every event seen, for `SESSION_FUZZ_TRACE` (picking seeds).
    trace: Vec<Event>,
}

/// Whether the RFCs allow `code` on a connection leaving `from` for `cause`.
fn allowed(from: StateKind, code: NotificationCode, cause: Cause, collided: bool) -> bool {
    // RFC 4271 §8.2.2: no NOTIFICATION before our OPEN (Connect, Active:
    // SendNOTIFICATIONwithoutOPEN is off; DelayOpen sends the OPEN first,
    // which moves the connection to OpenSent).
    if from < StateKind::OpenSent {
        return false;
    }
    // RFC 4271 §6.8 / RFC 4486: collision resolution, from OpenSent on.
    if code == NotificationCode::Cease(CeaseSubcode::ConnectionCollisionResolution) && collided {
        return true;
    }
    match cause {
        Cause::Stop(s) => code == NotificationCode::Cease(CeaseSubcode::from_raw(s)),
        // RFC 4271 §8.2.2 Event 10 (4/0), RFC 9687 (8/0).
        Cause::Timer => {
            code == NotificationCode::HOLD_TIMER_EXPIRED
                || code == NotificationCode::SEND_HOLD_TIMER_EXPIRED
        }
        Cause::Refuse(c) => from == StateKind::Established && code == c,
        Cause::Other => false,
        Cause::Message => match (from, code) {
            // RFC 4271 §6.1: header errors, in any state that sent an OPEN.
            (_, NotificationCode::MessageHeader(_)) => true,
            // §6.2 (and the plugin's refusal, RFC 5492); RFC 6608 5/1.
            (StateKind::OpenSent, NotificationCode::Open(_)) => true,
            (StateKind::OpenSent, NotificationCode::Fsm(s)) => s.to_raw() == 1,
            // §8.2.2 OpenConfirm, Event 22 (OpenMsgErr): "the appropriate
            // error code"; any other message: 5/2 (RFC 6608).
            (StateKind::OpenConfirm, NotificationCode::Open(_)) => true,
            (StateKind::OpenConfirm, NotificationCode::Fsm(s)) => s.to_raw() == 2,
            // §6.3 / RFC 7606, RFC 7313 §5, RFC 6608 5/3.
            (StateKind::Established, NotificationCode::Update(_)) => true,
            (StateKind::Established, NotificationCode::RouteRefresh(_)) => true,
            (StateKind::Established, NotificationCode::Fsm(s)) => s.to_raw() == 3,
            _ => false,
        },
    }
}

impl World {
    fn new(cfg: &Cfg) -> Self {
        let config = cfg.build();
        Self {
            peer: Peer::new(config),
            hooks: Hooks {
                caps: vec![Cap::V4, Cap::RouteRefresh],
                refuse: None,
                remote_as: cfg.remote_as(),
            },
            now: Instant::from_millis(1),
            conns: [Conn::new(), Conn::new()],
            dialing: false,
            established_events: [0; 2],
            down_events: [0; 2],
            trace: Vec::new(),
        }
    }

    /// Takes the session's events and checks them.
    fn events(&mut self, cause: Cause) {
        assert_eq!(self.peer.events_dropped(), 0, "events dropped");
        let evs: Vec<Event> = std::iter::from_fn(|| self.peer.poll_event()).collect();
        if tracing() {
            self.trace.extend(evs.iter().copied());
        }
        for (i, e) in evs.iter().enumerate() {
            match *e {
                Event::NotificationSent { direction, code } => {
                    // The NOTIFICATION ends its connection: the next state
                    // change on it is to Idle, from the state it was sent in.
                    let from = evs[i + 1..].iter().find_map(|e| match *e {
                        Event::StateChanged {
                            direction: d,
                            from,
                            to,
                        } if d == direction => Some((from, to)),
                        _ => None,
                    });
                    let Some((from, StateKind::Idle)) = from else {
                        panic!("NOTIFICATION {code:?} without going Idle: {evs:?}");
                    };
                    let collided = evs.contains(&Event::CollisionResolved { closed: direction });
                    let ok = allowed(from, code, cause, collided);
                    assert!(
                        ok,
                        "NOTIFICATION {code:?} from {from:?} on {direction:?} for {cause:?}: {evs:?}"
                    );
                    let c = &mut self.conns[ix(direction)];
                    c.notifications_events += 1;
                    assert_eq!(
                        c.notifications_events, 1,
                        "two NOTIFICATIONs on one connection"
                    );
                }
                Event::Established { direction } => {
                    self.established_events[ix(direction)] += 1;
                    let c = &self.conns[ix(direction)];
                    assert!(
                        c.open_rx && c.keepalive_rx,
                        "Established on {direction:?} without OPEN and KEEPALIVE received"
                    );
                }
                Event::Down { direction, .. } => {
                    self.down_events[ix(direction)] += 1;
                }
                _ => {}
            }
        }
        let ups: u32 =
            self.established_events.iter().sum::<u32>() - self.down_events.iter().sum::<u32>();
        assert!(ups <= 1, "two sessions Established at once (by events)");
        for d in 0..2 {
            assert!(
                self.down_events[d] <= self.established_events[d]
                    && self.established_events[d] <= self.down_events[d] + 1,
                "on_close not 1:1 with Established"
            );
        }
    }

    /// What an adapter does after every input: dial, close, track blocked
    /// writes (RFC 9687).
    fn adapter(&mut self) {
        if self
            .peer
            .link(Direction::Outbound)
            .is_some_and(|l| l.take_dial())
        {
            // A new attempt: the old transport (if any) is dropped.
            self.conns[0] = Conn::new();
            self.dialing = true;
        }
        for d in [Direction::Outbound, Direction::Inbound] {
            let Some(l) = self.peer.link(d) else {
                continue;
            };
            if l.wants_close() && l.pending().is_empty() {
                let c = &self.conns[ix(d)];
                if c.up {
                    // Everything is written: each NOTIFICATION the session
                    // reported reached the wire (none dropped for room).
                    assert_eq!(
                        u32::from(c.tx.notification.is_some()),
                        c.notifications_events,
                        "a NOTIFICATION reported but not written"
                    );
                }
                if d == Direction::Outbound {
                    self.dialing = false;
                }
                self.conns[ix(d)] = Conn::new();
                self.peer.connection_closed(self.now, d);
                self.events(Cause::Other);
            }
        }
        for d in [Direction::Outbound, Direction::Inbound] {
            let now = self.now;
            let c = &mut self.conns[ix(d)];
            if let Some(l) = self.peer.link(d) {
                assert!(l.pending().len() <= TX_CAPACITY);
                if l.pending().is_empty() {
                    l.set_blocked(None);
                    c.blocked = false;
                } else if !c.blocked && c.up {
                    l.set_blocked(Some(now));
                    c.blocked = true;
                }
            }
        }
    }

    fn check(&mut self) {
        let o = self.peer.state_of(Direction::Outbound);
        let i = self.peer.state_of(Direction::Inbound);
        assert!(
            !(o == Some(StateKind::Established) && i == Some(StateKind::Established)),
            "two connections Established"
        );
        for d in [Direction::Outbound, Direction::Inbound] {
            let s = self.peer.state_of(d);
            let c = &self.conns[ix(d)];
            if s.is_some_and(|s| s >= StateKind::OpenSent) {
                assert!(c.up, "{d:?} in {s:?} without a transport");
            }
            if s == Some(StateKind::Established) {
                assert!(
                    c.open_rx && c.keepalive_rx,
                    "Established without OPEN+KEEPALIVE"
                );
                assert_eq!(self.peer.established(), Some(d));
            }
        }
        assert!(self.peer.poll_timeout().is_none_or(|t| t > Instant::ZERO));
    }

    /// The transport writes up to `n` of the session's pending bytes; they
    /// must decode.
    fn write(&mut self, d: Direction, n: usize) {
        let c = &mut self.conns[ix(d)];
        if !c.up {
            return;
        }
        let Some(l) = self.peer.link(d) else {
            return;
        };
        let bytes = l.pending()[..n.min(l.pending().len())].to_vec();
        l.consume(bytes.len());
        if !bytes.is_empty() {
            l.set_blocked(None);
            c.blocked = false;
        }
        Self::decode_sent(c, &bytes);
    }

    fn decode_sent(c: &mut Conn, bytes: &[u8]) {
        c.tx.feed(bytes);
    }

    /// Up to `n` queued bytes arrive on `d`; whole messages go to the
    /// session as the driver hands them over.
    fn deliver(&mut self, d: Direction, n: usize) {
        let c = &mut self.conns[ix(d)];
        if !c.up {
            return;
        }
        let n = n.min(c.inq.len());
        let bytes: Vec<u8> = c.inq.drain(..n).collect();
        let mut rest = &bytes[..];
        loop {
            let c = &mut self.conns[ix(d)];
            let k = c.rx.feed(rest);
            rest = &rest[k..];
            loop {
                // The driver reads no further on a closing connection.
                if self.peer.state_of(d).is_none_or(|s| s == StateKind::Idle) {
                    return;
                }
                let ext = self
                    .peer
                    .negotiated_on(d)
                    .is_some_and(|n| n.extended_message);
                let c = &mut self.conns[ix(d)];
                c.rx.set_max_message_len(if ext {
                    MAX_EXTENDED_MESSAGE_LEN
                } else {
                    MAX_MESSAGE_LEN
                });
                let Some(r) = c.rx.next_decoded() else {
                    break;
                };
                match r {
                    Ok(msg) => {
                        match msg {
                            Message::Open(_) => c.open_rx = true,
                            Message::Keepalive if c.open_rx => c.keepalive_rx = true,
                            _ => {}
                        }
                        let upd = matches!(msg, Message::Update(_));
                        let del = self.peer.handle_message(self.now, d, msg, &mut self.hooks);
                        let held = upd && matches!(del, corebgp_core::session::Delivery::Update(_));
                        self.conns[ix(d)].update_held = held;
                    }
                    Err(e) => {
                        let n = e.notification();
                        self.peer.handle_error(self.now, d, &n);
                    }
                }
                self.events(Cause::Message);
                self.check();
            }
            if rest.is_empty() || k == 0 {
                return;
            }
        }
    }

    fn timers_at(&mut self, now: Instant) {
        self.now = now;
        self.peer.handle_timeout(now);
        if let Some(t) = self.peer.poll_timeout() {
            assert!(
                t > now,
                "poll_timeout {t:?} not after handle_timeout({now:?})"
            );
        }
        self.events(Cause::Timer);
        self.check();
        self.adapter();
    }

    fn advance(&mut self, ms: u32, jump: bool) {
        let until = self
            .now
            .saturating_add(Duration::from_millis(u64::from(ms)));
        if !jump {
            for _ in 0..64 {
                match self.peer.poll_timeout() {
                    Some(t) if t <= until => {
                        let t = t.max(self.now);
                        self.timers_at(t);
                    }
                    _ => break,
                }
            }
        }
        self.timers_at(until);
    }

    fn op(&mut self, op: &Op) {
        let now = self.now;
        let cause = match op {
            Op::Start => {
                self.peer.start(now);
                Cause::Other
            }
            Op::Stop(s) => {
                self.peer.stop(now, CeaseSubcode::from_raw(*s));
                Cause::Stop(*s)
            }
            Op::DialDone(ok) => {
                if !self.dialing {
                    return;
                }
                self.dialing = false;
                if *ok {
                    self.conns[0] = Conn::new();
                    self.conns[0].up = true;
                    self.peer.connected(now, &mut self.hooks);
                } else {
                    self.peer.connection_failed(now, Direction::Outbound);
                }
                Cause::Other
            }
            Op::Accept => {
                if self.conns[1].up {
                    return;
                }
                if self.peer.accept(now, &mut self.hooks).is_ok() {
                    self.conns[1] = Conn::new();
                    self.conns[1].up = true;
                }
                Cause::Other
            }
            Op::Send(d, m, part) => {
                let c = &mut self.conns[ix(d.d())];
                if c.up && c.inq.len() < 1 << 20 {
                    let b = wire_bytes(m, self.hooks.remote_as);
                    c.inq.extend_from_slice(&b);
                }
                self.deliver(d.d(), part.map_or(usize::MAX, usize::from));
                self.adapter();
                return;
            }
            Op::Deliver(d, n) => {
                self.deliver(d.d(), usize::from(*n));
                self.adapter();
                return;
            }
            Op::DeliverAll(d) => {
                self.deliver(d.d(), usize::MAX);
                self.adapter();
                return;
            }
            Op::Write(d, n) => {
                self.write(d.d(), usize::from(*n));
                Cause::Other
            }
            Op::Fail(d) => {
                let d = d.d();
                if !self.conns[ix(d)].up {
                    return;
                }
                self.conns[ix(d)] = Conn::new();
                self.peer.connection_failed(now, d);
                Cause::Other
            }
            Op::Advance { ms, jump } => {
                self.advance(*ms, *jump);
                return;
            }
            Op::SendUpdate(u) => {
                // The driver takes from the outbox only once the session's
                // own bytes are out, and writes the UPDATE whole before them.
                let Some(d) = self.peer.established() else {
                    return;
                };
                if !self.peer.pending(d).is_empty() {
                    return;
                }
                let msg = update_bytes(u);
                if let Ok(dd) = self.peer.send_update(now, &msg) {
                    assert_eq!(dd, d);
                    let max = self.peer.negotiated().map_or(0, |n| n.max_message_len());
                    assert!(msg.len() <= max, "an UPDATE longer than negotiated");
                    self.conns[ix(d)].tx.plugin_update(&msg, max);
                }
                Cause::Other
            }
            Op::Busy(d, b) => {
                self.peer.set_busy(now, d.d(), *b);
                Cause::Other
            }
            Op::Refuse(d, s) => {
                let d = d.d();
                if !std::mem::take(&mut self.conns[ix(d)].update_held) {
                    return;
                }
                let code = NotificationCode::from_raw(3, *s);
                self.peer.close_with(now, d, &Notification::new(code));
                Cause::Refuse(code)
            }
            Op::Hooks { caps, refuse } => {
                self.hooks.caps = caps.clone();
                self.hooks.refuse = *refuse;
                return;
            }
        };
        self.events(cause);
        self.check();
        self.adapter();
        self.check();
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    cfg: Cfg,
    ops: Vec<Op>,
}

/// `SESSION_FUZZ_TRACE=1`: print the events of each input run (to pick
/// seeds from a corpus: `session FILE` runs one input).
fn tracing() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("SESSION_FUZZ_TRACE").is_some())
}

fuzz_target!(|input: Input| {
    if input.cfg.build().validate().is_err() {
        return;
    }
    let mut w = World::new(&input.cfg);
    for op in input.ops.iter().take(512) {
        w.op(op);
    }
    if tracing() {
        eprintln!("TRACE {:?}", w.trace);
    }
});
