//! One configured peer: up to two connections (one we dialled, one we
//! accepted), the collision arbiter of RFC 4271 §6.8 over them, idle hold
//! and peer oscillation damping. Sans-IO: time and transport events go in,
//! bytes, requests, events and the next deadline come out.

use super::config::SessionConfig;
use super::link::{Direction, DownReason, Event, Events, Link, StateKind};
use super::negotiate::{Negotiated, OpenHooks};
use super::state::{Cx, Delivery, SendError, State};
use super::time::{Duration, Instant};
use crate::wire::{CeaseSubcode, Message, Notification};

/// First damping delay (BIRD's and CoreBGP's `errorDelayMinTime`).
pub const DAMPING_MIN: Duration = Duration::from_secs(60);
/// Longest damping delay (`errorDelayMaxTime`).
pub const DAMPING_MAX: Duration = Duration::from_secs(300);
/// Quiet time after which the delay is forgotten (`errorAmnesiaTime`).
pub const DAMPING_AMNESIA: Duration = Duration::from_secs(300);

/// One TCP connection: its state machine and its outputs.
#[derive(Debug, Default)]
pub struct Conn {
    /// The state machine.
    pub state: State,
    /// Its outputs.
    pub link: Link,
}

/// Why an inbound connection was refused (closed without a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rejected {
    /// The peer is not started (or was stopped).
    NotStarted,
    /// Damping holds the peer down.
    HoldDown,
    /// An inbound connection already exists.
    Duplicate,
    /// A connection is already Established (RFC 4271 §6.8).
    AlreadyEstablished,
    /// The peer is a [`Peer<DialOnly>`]: it has no room for an accepted
    /// connection.
    DialOnly,
}

mod sealed {
    pub trait Sealed {}
}

/// Whether a [`Peer`] takes connections the peer opens and whether it
/// dials: [`Accepting`] (both, the default), [`DialOnly`] or
/// [`AcceptOnly`].
///
/// Sealed: the three markers are the only modes.
pub trait PeerMode: sealed::Sealed {
    /// Whether such a peer accepts connections.
    const ACCEPTS: bool;
    /// Where the dialled connection is kept.
    #[doc(hidden)]
    type Out: core::fmt::Debug;
    /// The dialled connection, if the mode has one.
    #[doc(hidden)]
    fn out(slot: &Self::Out) -> Option<&Conn>;
    /// The dialled connection, if the mode has one.
    #[doc(hidden)]
    fn out_mut(slot: &mut Self::Out) -> Option<&mut Conn>;
    /// Where the accepted connection is kept.
    #[doc(hidden)]
    type Slot: core::fmt::Debug;
    /// No accepted connection.
    #[doc(hidden)]
    const EMPTY: Self::Slot;
    /// The accepted connection, if any.
    #[doc(hidden)]
    fn get(slot: &Self::Slot) -> Option<&Conn>;
    /// The accepted connection, if any.
    #[doc(hidden)]
    fn get_mut(slot: &mut Self::Slot) -> Option<&mut Conn>;
    /// Forgets the accepted connection.
    #[doc(hidden)]
    fn clear(slot: &mut Self::Slot);
    /// A fresh connection in the slot; `None` if there is no slot.
    #[doc(hidden)]
    fn insert(slot: &mut Self::Slot) -> Option<&mut Conn>;
}

/// A [`Peer`] that dials and accepts: RFC 4271 §6.8 collision detection
/// between its two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepting {}

/// A [`Peer`] that only dials ([`Peer::dial_only`]): it has no second
/// connection, so it needs no collision detection, and the code and the
/// memory for them (about 0.8 KB of RAM and 3.3 KB of flash on a Cortex-M)
/// are left out. Adapters use the same marker for a connector that never
/// accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOnly {}

/// A passive [`Peer`] that only accepts ([`Peer::accept_only`]): it never
/// dials, so it has no room for a dialled connection (about 0.8 KB of RAM
/// less than an [`Accepting`] peer). With one connection at a time it needs
/// no collision detection either. A server with many passive peers (a
/// route collector, a route server) keeps this much less per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOnly {}

impl sealed::Sealed for Accepting {}
impl sealed::Sealed for DialOnly {}
impl sealed::Sealed for AcceptOnly {}

impl PeerMode for Accepting {
    const ACCEPTS: bool = true;
    type Out = Conn;
    #[inline(always)]
    fn out(slot: &Conn) -> Option<&Conn> {
        Some(slot)
    }
    #[inline(always)]
    fn out_mut(slot: &mut Conn) -> Option<&mut Conn> {
        Some(slot)
    }
    type Slot = Option<Conn>;
    const EMPTY: Option<Conn> = None;
    #[inline]
    fn get(slot: &Option<Conn>) -> Option<&Conn> {
        slot.as_ref()
    }
    #[inline]
    fn get_mut(slot: &mut Option<Conn>) -> Option<&mut Conn> {
        slot.as_mut()
    }
    #[inline]
    fn clear(slot: &mut Option<Conn>) {
        *slot = None;
    }
    #[inline]
    fn insert(slot: &mut Option<Conn>) -> Option<&mut Conn> {
        // Built in its slot: a Conn (its buffer included) is not moved.
        Some(slot.insert(Conn::default()))
    }
}

impl PeerMode for DialOnly {
    const ACCEPTS: bool = false;
    type Out = Conn;
    #[inline(always)]
    fn out(slot: &Conn) -> Option<&Conn> {
        Some(slot)
    }
    #[inline(always)]
    fn out_mut(slot: &mut Conn) -> Option<&mut Conn> {
        Some(slot)
    }
    type Slot = ();
    const EMPTY: () = ();
    #[inline]
    fn get(_: &()) -> Option<&Conn> {
        None
    }
    #[inline]
    fn get_mut(_: &mut ()) -> Option<&mut Conn> {
        None
    }
    #[inline]
    fn clear(_: &mut ()) {}
    #[inline]
    fn insert(_: &mut ()) -> Option<&mut Conn> {
        None
    }
}

impl PeerMode for AcceptOnly {
    const ACCEPTS: bool = true;
    type Out = ();
    #[inline(always)]
    fn out(_: &()) -> Option<&Conn> {
        None
    }
    #[inline(always)]
    fn out_mut(_: &mut ()) -> Option<&mut Conn> {
        None
    }
    type Slot = Option<Conn>;
    const EMPTY: Option<Conn> = None;
    #[inline]
    fn get(slot: &Option<Conn>) -> Option<&Conn> {
        slot.as_ref()
    }
    #[inline]
    fn get_mut(slot: &mut Option<Conn>) -> Option<&mut Conn> {
        slot.as_mut()
    }
    #[inline]
    fn clear(slot: &mut Option<Conn>) {
        *slot = None;
    }
    #[inline]
    fn insert(slot: &mut Option<Conn>) -> Option<&mut Conn> {
        Some(slot.insert(Conn::default()))
    }
}

// Whole milliseconds: `Duration` arithmetic (checked multiplication,
// 128-bit conversions) cost several hundred bytes of flash here.
// (The delay fits u32: at most DAMPING_MAX, 300,000 ms.)
const DAMPING_MIN_MS: u32 = DAMPING_MIN.as_secs() as u32 * 1000;
const DAMPING_MAX_MS: u32 = DAMPING_MAX.as_secs() as u32 * 1000;
const DAMPING_AMNESIA_MS: u64 = DAMPING_AMNESIA.as_secs() * 1000;

#[derive(Debug, Clone, Copy, Default)]
struct Damping {
    /// Current delay, milliseconds (0: none).
    delay: u32,
    /// [`Instant::ZERO`] before the first error: the delay is 0 then, so
    /// forgetting it changes nothing.
    last_error: Instant,
}

impl Damping {
    /// RFC 4271 §8.1.1 DampPeerOscillations, with BIRD's constants: 60 s,
    /// doubling to 300 s, forgotten after 300 s without errors. Returns the
    /// delay in milliseconds.
    fn on_error(&mut self, now: Instant) -> u32 {
        if now.as_millis().saturating_sub(self.last_error.as_millis()) >= DAMPING_AMNESIA_MS {
            self.delay = 0;
        }
        self.delay = if self.delay == 0 {
            DAMPING_MIN_MS
        } else {
            self.delay.saturating_mul(2).min(DAMPING_MAX_MS)
        };
        self.last_error = now;
        self.delay
    }
}

/// A configured peer. `M` says whether it accepts connections
/// ([`Accepting`], the default) or only dials ([`DialOnly`]).
#[derive(Debug)]
pub struct Peer<M: PeerMode = Accepting> {
    config: SessionConfig,
    out: M::Out,
    inb: M::Slot,
    events: Events,
    started: bool,
    /// When the outbound connection may start again; [`Instant::ZERO`]
    /// (already passed) for at once. Plain instants, not `Option`s: see
    /// [`Instant::NEVER`].
    next_start: Instant,
    /// End of the damping hold-down; [`Instant::ZERO`] (already passed)
    /// for none.
    hold_down_until: Instant,
    damping: Damping,
}

/// A new peer of mode `$mode` with the dialled-connection slot `$out`.
/// A macro, not a generic `const fn`: the slot is built in place (a
/// generic constructor would take it from an associated constant, which
/// the compiler stores whole in flash and copies: 0.8 KB more on a
/// Cortex-M).
macro_rules! new_peer {
    ($mode:ty, $config:expr, $out:expr) => {
        Peer::<$mode> {
            config: $config,
            out: $out,
            inb: <$mode as PeerMode>::EMPTY,
            events: Events::new(),
            started: false,
            next_start: Instant::ZERO,
            hold_down_until: Instant::ZERO,
            damping: Damping {
                delay: 0,
                last_error: Instant::ZERO,
            },
        }
    };
}

impl Peer {
    /// A peer, not started, that dials (unless `config.passive`) and
    /// accepts.
    ///
    /// `const`: a peer can be built at compile time and placed in a
    /// `static` (no code runs to set it up on a microcontroller).
    pub const fn new(config: SessionConfig) -> Self {
        new_peer!(
            Accepting,
            config,
            Conn {
                state: State::new(),
                link: Link::new(),
            }
        )
    }
}

impl Peer<DialOnly> {
    /// A peer, not started, that only dials: smaller than [`Peer::new`]'s
    /// (see [`DialOnly`]). `config.passive` makes no sense for it (it would
    /// never connect).
    pub const fn dial_only(config: SessionConfig) -> Self {
        new_peer!(
            DialOnly,
            config,
            Conn {
                state: State::new(),
                link: Link::new(),
            }
        )
    }
}

impl Peer<AcceptOnly> {
    /// A peer, not started, that only accepts: smaller than [`Peer::new`]'s
    /// (see [`AcceptOnly`]). It is passive whatever `config.passive` says
    /// (RFC 4271 §8.1.1 PassiveTcpEstablishment).
    pub const fn accept_only(mut config: SessionConfig) -> Self {
        config.passive = true;
        new_peer!(AcceptOnly, config, ())
    }
}

impl<M: PeerMode> Peer<M> {
    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether the peer is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    // Out of line: looked up by the driver's queries (pending,
    // negotiated_on, state_of) and by settle; inlined it cost more flash.
    // Inlined on hosts, where the driver looks it up per message.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    fn conn(&self, dir: Direction) -> Option<&Conn> {
        match dir {
            Direction::Outbound => M::out(&self.out),
            Direction::Inbound => M::get(&self.inb),
        }
    }

    /// The state of one connection.
    pub fn state_of(&self, dir: Direction) -> Option<StateKind> {
        self.conn(dir).map(|c| c.state.kind())
    }

    /// The peer's state: the most advanced of its connections (Active for
    /// a started passive peer waiting for a connection).
    pub fn state(&self) -> StateKind {
        let out = M::out(&self.out)
            .map(|c| c.state.kind())
            .unwrap_or(StateKind::Idle);
        let inb = M::get(&self.inb)
            .map(|c| c.state.kind())
            .unwrap_or(StateKind::Idle);
        let s = out.max(inb);
        if s == StateKind::Idle && self.started && self.config.passive {
            StateKind::Active
        } else {
            s
        }
    }

    /// The connection that is Established, if one is.
    pub fn established(&self) -> Option<Direction> {
        let est = |c: &Conn| c.state.kind() == StateKind::Established;
        if M::out(&self.out).is_some_and(est) {
            Some(Direction::Outbound)
        } else if M::get(&self.inb).is_some_and(est) {
            Some(Direction::Inbound)
        } else {
            None
        }
    }

    /// What the Established connection negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.established()
            .and_then(|d| self.conn(d))
            .and_then(|c| c.state.negotiated())
    }

    /// What a connection negotiated (from OpenConfirm on).
    pub fn negotiated_on(&self, dir: Direction) -> Option<&Negotiated> {
        self.conn(dir).and_then(|c| c.state.negotiated())
    }

    /// Bytes waiting to be written on one connection.
    pub fn pending(&self, dir: Direction) -> &[u8] {
        self.conn(dir).map(|c| c.link.pending()).unwrap_or(&[])
    }

    /// One connection's outputs: [`Link::pending`] bytes to write,
    /// [`Link::take_dial`], [`Link::wants_close`].
    // Out of line: the driver looks a link up in several places, and the
    // inlined lookup cost more flash than the call.
    #[inline(never)]
    pub fn link(&mut self, dir: Direction) -> Option<&mut Link> {
        match dir {
            Direction::Outbound => M::out_mut(&mut self.out).map(|c| &mut c.link),
            Direction::Inbound => M::get_mut(&mut self.inb).map(|c| &mut c.link),
        }
    }

    /// The next event.
    // Out of line on bare metal: the driver calls this from its async poll,
    // where inlined code cost more flash (spills across awaits) than the
    // call. Inlined on hosts: the driver asks once per message.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Events dropped because the queue was full when nobody polled.
    pub fn events_dropped(&self) -> u32 {
        self.events.dropped()
    }

    // Inlined on hosts: the per-message paths (`handle_message`, `set_busy`)
    // then pass the message and its result in registers, not through the
    // stack of a call.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn with<R>(
        &mut self,
        now: Instant,
        dir: Direction,
        f: impl FnOnce(&mut State, &mut Cx<'_>) -> R,
    ) -> Option<R> {
        let Self {
            config,
            out,
            inb,
            events,
            ..
        } = self;
        let conn = match dir {
            Direction::Outbound => M::out_mut(out)?,
            Direction::Inbound => M::get_mut(inb)?,
        };
        let mut cx = Cx {
            now,
            config,
            link: &mut conn.link,
            events,
            direction: dir,
        };
        Some(f(&mut conn.state, &mut cx))
    }

    /// ManualStart (Event 1, or 4 for a passive peer).
    pub fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            self.next_start = now;
            self.settle(now);
        }
    }

    /// ManualStop (Event 2): Cease with `subcode` on every connection past
    /// Active (CoreBGP sends 6/0; RFC 4486 names 2 for a shutdown and 3 for
    /// a deconfigured peer).
    // Out of line: the driver calls this from its async poll, where inlined
    // code cost more flash (spills across awaits) than the call.
    #[inline(never)]
    pub fn stop(&mut self, now: Instant, subcode: CeaseSubcode) {
        self.started = false;
        for dir in [Direction::Outbound, Direction::Inbound] {
            self.with(now, dir, |s, cx| s.stop(cx, subcode));
        }
        self.settle(now);
    }

    /// A connection from the peer's address arrived; `hooks` give the
    /// capabilities for our OPEN. On `Err` the adapter closes it at once.
    // Out of line: the driver calls this from its async poll, where inlined
    // code cost more flash (spills across awaits) than the call.
    #[inline(never)]
    pub fn accept(&mut self, now: Instant, hooks: &mut dyn OpenHooks) -> Result<(), Rejected> {
        let rejected = if !M::ACCEPTS {
            Some(Rejected::DialOnly)
        } else if !self.started {
            Some(Rejected::NotStarted)
        } else if now < self.hold_down_until {
            Some(Rejected::HoldDown)
        } else if M::get(&self.inb).is_some() {
            Some(Rejected::Duplicate)
        } else if M::out(&self.out).is_some_and(|c| c.state.kind() == StateKind::Established) {
            Some(Rejected::AlreadyEstablished)
        } else {
            None
        };
        if let Some(r) = rejected {
            self.events.push(Event::InboundRejected);
            return Err(r);
        }
        let Self {
            config,
            inb,
            events,
            ..
        } = self;
        let Some(conn) = M::insert(inb) else {
            return Err(Rejected::DialOnly);
        };
        let mut cx = Cx {
            now,
            config,
            link: &mut conn.link,
            events,
            direction: Direction::Inbound,
        };
        cx.events.push(Event::StateChanged {
            direction: Direction::Inbound,
            from: StateKind::Idle,
            to: StateKind::Active,
        });
        conn.state = State::accepted(&mut cx, hooks);
        self.settle(now);
        Ok(())
    }

    /// Our dial succeeded (Event 16); `hooks` give the capabilities for our
    /// OPEN.
    // Out of line: the driver calls this from its async poll, where inlined
    // code cost more flash (spills across awaits) than the call.
    #[inline(never)]
    pub fn connected(&mut self, now: Instant, hooks: &mut dyn OpenHooks) {
        self.with(now, Direction::Outbound, |s, cx| s.connected(cx, hooks));
        self.settle(now);
    }

    /// A dial failed, or a connection failed or was closed by the peer
    /// (Event 18). The transport is gone.
    pub fn connection_failed(&mut self, now: Instant, dir: Direction) {
        self.with(now, dir, |s, cx| {
            s.connection_failed(cx);
            // The transport is gone: nothing left to write or close.
            cx.link.clear();
        });
        self.settle(now);
    }

    /// The adapter closed a transport the session asked to close (after
    /// writing what was pending).
    pub fn connection_closed(&mut self, now: Instant, dir: Direction) {
        if let Some(l) = self.link(dir) {
            l.reset();
        }
        self.settle(now);
    }

    /// A whole message arrived on `dir`, decoded; `hooks` have their say on
    /// an OPEN. Returns what to hand to the plugin.
    // Out of line on bare metal: the driver calls this from its async poll,
    // where inlined code cost more flash (spills across awaits) than the
    // call. Inlined on hosts, where flash is no concern: the message and
    // what is delivered are then not copied into and out of the call (per
    // message, on a streamed table).
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn handle_message<'m>(
        &mut self,
        now: Instant,
        dir: Direction,
        msg: Message<'m>,
        hooks: &mut dyn OpenHooks,
    ) -> Delivery<'m> {
        let d = self
            .with(now, dir, |s, cx| s.handle_message(cx, msg, hooks))
            .unwrap_or(Delivery::None);
        self.settle(now);
        d
    }

    /// [`Peer::handle_message`] for an UPDATE (split into its sections) on
    /// hosts, where the driver takes this shorter path for the message a
    /// streamed table is made of: `true` if the connection on `dir` is
    /// Established and took it (its HoldTimer restarted, as
    /// `handle_message` would); the caller then delivers it. `false`, and
    /// nothing changed, otherwise: the caller hands the UPDATE to
    /// [`Peer::handle_message`].
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn receive_update(&mut self, now: Instant, dir: Direction) -> bool {
        let took = self.with(now, dir, |s, _| s.receive_update(now)) == Some(true);
        if took {
            self.settle(now);
        }
        took
    }

    /// A message on `dir` failed to decode: its NOTIFICATION is sent and
    /// the connection closes.
    pub fn handle_error(&mut self, now: Instant, dir: Direction, n: &Notification<'_>) {
        self.with(now, dir, |s, cx| s.handle_error(cx, n));
        self.settle(now);
    }

    /// The plugin refused an UPDATE: send its NOTIFICATION and close.
    pub fn close_with(&mut self, now: Instant, dir: Direction, n: &Notification<'_>) {
        self.with(now, dir, |s, cx| s.close_with(cx, n));
        self.settle(now);
    }

    /// While `busy`, the adapter is waiting on the plugin for a message
    /// received on `dir`: keepalives go on, the hold timer waits; when the
    /// plugin is done, the hold timer restarts as for a fresh message.
    // Out of line on bare metal: the driver calls this from its async poll,
    // where inlined code cost more flash (spills across awaits) than the
    // call. Inlined on hosts: twice per UPDATE.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn set_busy(&mut self, now: Instant, dir: Direction, busy: bool) {
        // One lookup of the connection for both.
        self.with(now, dir, |s, cx| {
            let was = core::mem::replace(&mut cx.link.busy, busy);
            if was && !busy {
                s.restart_hold(now);
            }
        });
    }

    /// Checks an UPDATE (a whole message) before the adapter writes it on
    /// the Established connection, which is returned. The adapter writes
    /// [`Peer::pending`] bytes of that connection first, so that the
    /// session's own messages keep their order.
    // Left to the inliner: its one caller (the outbox) takes it in for less
    // flash than the call.
    pub fn send_update(&mut self, now: Instant, msg: &[u8]) -> Result<Direction, SendError> {
        let dir = self.established().ok_or(SendError::NotEstablished)?;
        self.with(now, dir, |s, cx| s.send_update(cx, msg))
            .unwrap_or(Err(SendError::NotEstablished))?;
        Ok(dir)
    }

    /// When [`Peer::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake_at(false).deadline()
    }

    /// [`Peer::poll_timeout`], or, with `abandon`, earlier if a closing
    /// connection's stuck writes are to be given up then
    /// ([`Link::abandon_at`]): when the driver wakes. The session has no
    /// timer of its own for that (it cannot close a transport).
    /// [`Instant::NEVER`] for none: the driver folds its own deadline in
    /// before it makes that an `Option` (less code than two `Option`s).
    pub(crate) fn wake_at(&self, abandon: bool) -> Instant {
        let never = |l: &Link| {
            if abandon {
                l.abandon_at()
            } else {
                Instant::NEVER
            }
        };
        let mut t = M::out(&self.out)
            .map(|c| {
                c.state
                    .next_deadline(&c.link, &self.config)
                    .min(never(&c.link))
            })
            .unwrap_or(Instant::NEVER);
        if let Some(c) = M::get(&self.inb) {
            t = t.min(c.state.next_deadline(&c.link, &self.config));
            t = t.min(never(&c.link));
        }
        if self.wants_out_start() {
            t = t.min(self.next_start);
        }
        t
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for dir in [Direction::Outbound, Direction::Inbound] {
            self.with(now, dir, |s, cx| s.handle_timeout(cx));
        }
        self.settle(now);
    }

    fn wants_out_start(&self) -> bool {
        self.started
            && !self.config.passive
            && M::out(&self.out).is_some_and(|c| c.state.kind() == StateKind::Idle && !c.link.close)
            // Not while an accepted connection is under way: dialling then
            // only makes a collision that the arbiter must undo.
            && M::get(&self.inb).is_none_or(|c| c.state.kind() < StateKind::OpenSent)
    }

    /// After every input: resolve collisions, schedule restarts, apply damping.
    fn settle(&mut self, now: Instant) {
        self.arbitrate(now);
        // Connections that just went down (outbound, then inbound): damping
        // and idle hold, once each.
        for i in 0..if M::ACCEPTS { 2 } else { 1 } {
            if let Some(reason) = self.events.went_down.get_mut(i).and_then(Option::take) {
                self.schedule_restart(now, reason);
            }
        }
        // Drop an inbound connection that is over and closed.
        if M::get(&self.inb).is_some_and(|c| c.state.kind() == StateKind::Idle && !c.link.close) {
            M::clear(&mut self.inb);
        }
        if self.wants_out_start() && self.next_start <= now {
            self.next_start = Instant::ZERO;
            self.with(now, Direction::Outbound, |s, cx| s.start(cx));
        }
    }

    fn schedule_restart(&mut self, now: Instant, reason: DownReason) {
        // In milliseconds (see `Damping`); `Instant + Duration` keeps whole
        // milliseconds too, so the sums are the same.
        let now_ms = now.as_millis();
        let mut wait = (Instant::ZERO + self.config.idle_hold_time).as_millis();
        // A connection that ends while the peer is already held down (the
        // other connection of the same attempt failing in the same round,
        // e.g. both get 2/2) neither escalates the damping delay again nor
        // shortens the hold-down: one attempt, one step of RFC 4271 §8.1.1
        // DampPeerOscillations (CoreBGP disables both FSMs on the first
        // error, so it counts one). Without this, two simultaneous errors
        // jumped straight from 60 s to 120 s, and an inbound Cease during a
        // hold-down restarted the outbound after only the idle hold time.
        if now < self.hold_down_until {
            wait = wait.max(self.hold_down_until.as_millis() - now_ms);
        } else if reason.damps() && self.config.damp_peer_oscillations {
            let d = u64::from(self.damping.on_error(now));
            let until = now.add_millis(d);
            self.hold_down_until = until;
            self.events.push(Event::Damped { until });
            wait = wait.max(d);
        }
        self.next_start = now.add_millis(wait);
    }

    /// RFC 4271 §6.8: of two connections, keep the one initiated by the
    /// speaker with the higher BGP Identifier (RFC 6286 §2.3: on equal
    /// identifiers, the higher AS), and close the other with Cease 6/7.
    fn arbitrate(&mut self, now: Instant) {
        let Some(inb) = M::get(&self.inb) else {
            return;
        };
        let Some(out) = M::out(&self.out) else {
            return;
        };
        let (o, i) = (out.state.kind(), inb.state.kind());
        let loser = match (o, i) {
            (StateKind::Established, x) if x != StateKind::Idle => Some(Direction::Inbound),
            (x, StateKind::Established) if x != StateKind::Idle => Some(Direction::Outbound),
            (StateKind::OpenConfirm, StateKind::OpenConfirm | StateKind::OpenSent)
            | (StateKind::OpenSent, StateKind::OpenConfirm) => {
                // The peer's identifier, from whichever OPEN we have.
                let remote = out
                    .state
                    .negotiated()
                    .or(inb.state.negotiated())
                    .map(|n| n.peer_id.to_bits())
                    .unwrap_or(0);
                let local = self.config.router_id.to_bits();
                let keep_outbound = local > remote
                    || (local == remote && self.config.peer.local_as > self.config.peer.remote_as);
                Some(if keep_outbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                })
            }
            _ => None,
        };
        if let Some(dir) = loser {
            self.events.push(Event::CollisionResolved { closed: dir });
            self.with(now, dir, |s, cx| s.collision_dump(cx));
        }
    }
}
