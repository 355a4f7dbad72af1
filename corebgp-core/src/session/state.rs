//! The six RFC 4271 §8.2.2 states as distinct types.
//!
//! Each state holds only its own data (its timers, the OPEN it is waiting
//! on, what was negotiated). Transitions consume the state and return the
//! next one, or an enum when the RFC allows several; there is no method
//! for a transition the RFC does not have, so an illegal transition does
//! not compile. Everything a transition emits (bytes to send, dial and
//! close requests, events) goes through a [`Cx`].

use super::config::{OPEN_SENT_HOLD_TIME, SessionConfig};
use super::link::{Direction, DownReason, Event, Events, Link, StateKind};
use super::negotiate::{
    Advertised, CapabilitySet, Negotiated, OpenHooks, check_open, our_capabilities,
};
use super::time::{Duration, Instant, expired};
use crate::wire::{
    CeaseSubcode, FsmSubcode, Message, MessageType, Notification, NotificationCode, Open,
    OpenBuilder, RouteRefresh, RouteRefreshSubtype, UpdateSections,
};

/// What a transition works with.
pub struct Cx<'a> {
    /// The current time.
    pub now: Instant,
    /// The peer's configuration.
    pub config: &'a SessionConfig,
    /// This connection's outputs.
    pub link: &'a mut Link,
    /// The peer's event queue.
    pub events: &'a mut Events,
    /// Which connection this is.
    pub direction: Direction,
}

impl Cx<'_> {
    fn notify(&mut self, n: &Notification<'_>) {
        self.link.push_notification(n);
        self.events.push(Event::NotificationSent {
            direction: self.direction,
            code: n.code,
        });
    }

    fn change(&mut self, from: StateKind, to: StateKind) {
        self.events.push(Event::StateChanged {
            direction: self.direction,
            from,
            to,
        });
    }

    /// Closes the connection and moves to Idle.
    fn idle(&mut self, from: StateKind, reason: DownReason) -> Idle {
        self.link.close = true;
        self.link.dial = false;
        if let Some(slot) = self.events.went_down.get_mut(self.direction as usize) {
            *slot = Some(reason);
        }
        self.change(from, StateKind::Idle);
        if from == StateKind::Established {
            self.events.push(Event::Down {
                direction: self.direction,
                reason,
            });
        }
        Idle {
            reason: Some(reason),
        }
    }

    /// Sends a NOTIFICATION, closes, moves to Idle.
    fn fail(&mut self, from: StateKind, n: &Notification<'_>) -> Idle {
        self.notify(n);
        self.idle(from, DownReason::NotificationSent(n.code))
    }

    /// [`Cx::fail`] with the FSM Error for a message of type `ty` that state
    /// `from` (OpenSent, OpenConfirm or Established) does not expect: RFC
    /// 6608 §3's subcode for the state (5/1, 5/2, 5/3), §4's type as data.
    /// One out-of-line copy for the four places that send it.
    #[inline(never)]
    fn fsm_error(&mut self, from: StateKind, ty: MessageType) -> Idle {
        let sub = FsmSubcode::from_raw(from as u8 - StateKind::Active as u8);
        self.fail(from, &Notification::fsm_error(sub, ty))
    }

    fn send_open_with(&mut self, caps: &CapabilitySet) {
        let b = OpenBuilder {
            my_as: OpenBuilder::my_as_field(self.config.peer.local_as),
            hold_time: self.config.hold_time,
            bgp_id: self.config.router_id,
            capabilities: &[],
            force_extended_parameters: false,
        };
        // The capability set (at most 256 bytes) fits the link's room (512),
        // so this cannot fail; if it ever did the peer's hold timer would say
        // so.
        let _ = self
            .link
            .push_with(|buf| b.encode_with_raw_capabilities(caps.as_bytes(), buf));
    }

    fn received_notification(&mut self, from: StateKind, n: &Notification<'_>) -> Idle {
        self.events.push(Event::NotificationReceived {
            direction: self.direction,
            code: n.code,
        });
        self.idle(from, DownReason::NotificationReceived(n.code))
    }
}

/// An OPEN held back by DelayOpen (RFC 4271 §8.1.1) while the TCP
/// connection is up: when it is due, and its capabilities (asked of the
/// hooks when the connection came up, so that timers need no hooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedOpen {
    until: Instant,
    caps: CapabilitySet,
}

/// Idle: no connection; waiting to be started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Idle {
    reason: Option<DownReason>,
}

/// Connect: waiting for our dial to complete (or, with DelayOpen, for the
/// delay to pass on a connection that is up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// [`Instant::NEVER`] when not running.
    connect_retry: Instant,
    delayed: Option<DelayedOpen>,
}

/// Active: waiting for the peer to connect, or for the ConnectRetry timer
/// to dial again (or, with DelayOpen, for the delay on an accepted
/// connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    /// [`Instant::NEVER`] when not running.
    connect_retry: Instant,
    delayed: Option<DelayedOpen>,
}

/// OpenSent: our OPEN is out; waiting for the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSent {
    hold: Instant,
    advertised: Advertised,
}

/// OpenConfirm: OPENs exchanged; waiting for the peer's KEEPALIVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenConfirm {
    negotiated: Negotiated,
    /// Both [`Instant::NEVER`] when the hold time is 0.
    hold: Instant,
    keepalive: Instant,
}

/// Established: UPDATEs flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    negotiated: Negotiated,
    /// Both [`Instant::NEVER`] when the hold time is 0.
    hold: Instant,
    keepalive: Instant,
}

/// What a received message gives the plugin. Borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'m> {
    /// Nothing for the plugin.
    None,
    /// An UPDATE (Established only).
    Update(UpdateSections<'m>),
    /// A ROUTE-REFRESH for a negotiated family (Established only).
    RouteRefresh(RouteRefresh<'m>),
    /// The peer's NOTIFICATION (the connection is closing).
    Notification(Notification<'m>),
}

/// Connect or Active after the TCP connection came up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Connected<S> {
    /// The OPEN went out.
    OpenSent(OpenSent),
    /// DelayOpen holds it back; the state is unchanged.
    Delayed(S),
}

/// Connect after its dial failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ConnectFailed {
    /// No DelayOpen was running: back to Idle (RFC 4271 §8.2.2, Connect,
    /// Event 18).
    Idle(Idle),
    /// DelayOpen was running: keep listening (same).
    Active(Active),
}

/// OpenSent after the peer's OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum OpenReceived {
    /// The OPEN passed every check; KEEPALIVE sent.
    OpenConfirm(OpenConfirm),
    /// It did not; the NOTIFICATION was sent.
    Idle(Idle),
}

/// The runtime view: one connection in any state. The driver's loop holds
/// this; the typestate methods do the work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum State {
    /// Idle.
    Idle(Idle),
    /// Connect.
    Connect(Connect),
    /// Active.
    Active(Active),
    /// OpenSent.
    OpenSent(OpenSent),
    /// OpenConfirm.
    OpenConfirm(OpenConfirm),
    /// Established.
    Established(Established),
}

impl Idle {
    /// A fresh Idle state.
    pub const fn new() -> Self {
        Self { reason: None }
    }

    /// Why we came back to Idle, if we did.
    pub fn reason(&self) -> Option<DownReason> {
        self.reason
    }

    /// ManualStart / AutomaticStart (Events 1, 3): dial, start the
    /// ConnectRetry timer, move to Connect.
    pub fn start(self, cx: &mut Cx<'_>) -> Connect {
        cx.link.close = false;
        cx.link.dial = true;
        cx.change(StateKind::Idle, StateKind::Connect);
        Connect {
            connect_retry: cx.now + cx.config.connect_retry_time,
            delayed: None,
        }
    }

    /// Passive start (Events 4, 5): listen, move to Active.
    pub fn start_passive(self, cx: &mut Cx<'_>) -> Active {
        cx.link.close = false;
        cx.change(StateKind::Idle, StateKind::Active);
        Active {
            connect_retry: Instant::NEVER,
            delayed: None,
        }
    }
}

/// Shared by Connect and Active once TCP is up: send the OPEN now, or
/// hold it back for DelayOpen.
#[allow(clippy::result_large_err)] // DelayOpen carries its OPEN's capabilities
fn tcp_up(
    cx: &mut Cx<'_>,
    from: StateKind,
    hooks: &mut dyn OpenHooks,
) -> Result<OpenSent, DelayedOpen> {
    let caps = our_capabilities(cx.config, hooks);
    // A new connection: nothing of an earlier one's writes is blocked.
    cx.link.blocked_since = None;
    match cx.config.delay_open {
        Some(d) => Err(DelayedOpen {
            until: cx.now + d,
            caps,
        }),
        None => Ok(open_sent(cx, from, &caps)),
    }
}

fn open_sent(cx: &mut Cx<'_>, from: StateKind, caps: &CapabilitySet) -> OpenSent {
    cx.send_open_with(caps);
    cx.change(from, StateKind::OpenSent);
    // RFC 4271 §8.2.2: the hold timer starts at a large value (4 minutes).
    OpenSent {
        hold: cx.now + OPEN_SENT_HOLD_TIME,
        advertised: Advertised::new(caps),
    }
}

/// A message on a connection whose OPEN we have not sent (DelayOpen). RFC
/// 4271 §8.2.2, Event 20: an OPEN before ours is answered with OPEN and
/// KEEPALIVE, straight into OpenConfirm.
fn receive_before_open(
    cx: &mut Cx<'_>,
    from: StateKind,
    delayed: Option<DelayedOpen>,
    msg: Message<'_>,
    hooks: &mut dyn OpenHooks,
) -> State {
    match (msg, delayed) {
        (Message::Open(o), Some(d)) => open_sent(cx, from, &d.caps).receive_open_as(
            cx,
            &o,
            hooks,
            State::OpenConfirm,
            State::Idle,
        ),
        (Message::Notification(n), _) => State::Idle(cx.received_notification(from, &n)),
        // RFC 4271 §8.2.2 Connect/Active, "any other event": drop the
        // connection without a NOTIFICATION (we sent no OPEN, and
        // SendNOTIFICATIONwithoutOPEN is off); it counts for damping.
        _ => {
            let code = NotificationCode::Fsm(FsmSubcode::Unspecified);
            State::Idle(cx.idle(from, DownReason::Dropped(code)))
        }
    }
}

/// Connect and Active share what happens before our OPEN is out: the same
/// timers, DelayOpen, and the messages that may arrive meanwhile.
macro_rules! before_open {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// When this state next needs [`State::handle_timeout`].
            pub fn deadline(&self) -> Option<Instant> {
                let delay = self.delayed.as_ref().map_or(Instant::NEVER, |d| d.until);
                self.connect_retry.min(delay).deadline()
            }

            /// Events 16/17: the TCP connection is up (ours dialled, or the
            /// peer's accepted). The hooks give the capabilities of our OPEN
            /// (see [`super::our_capabilities`]); with DelayOpen it waits.
            pub fn connected(self, cx: &mut Cx<'_>, hooks: &mut dyn OpenHooks) -> Connected<Self> {
                self.connected_as(cx, hooks, Connected::OpenSent, Connected::Delayed)
            }

            /// [`Self::connected`] with the outcome wrapped by `sent` or
            /// `delayed`, so that [`State`] builds its own directly.
            fn connected_as<R>(
                self,
                cx: &mut Cx<'_>,
                hooks: &mut dyn OpenHooks,
                sent: fn(OpenSent) -> R,
                delayed: fn(Self) -> R,
            ) -> R {
                match tcp_up(cx, $kind, hooks) {
                    Ok(s) => sent(s),
                    Err(d) => delayed(Self {
                        connect_retry: Instant::NEVER,
                        delayed: Some(d),
                    }),
                }
            }

            /// Event 12: DelayOpen expired; send the OPEN. `Err(self)` when
            /// no DelayOpen was running.
            #[allow(clippy::result_large_err)] // gives the state back unchanged
            pub fn delay_open_expired(self, cx: &mut Cx<'_>) -> Result<OpenSent, Self> {
                self.delay_open_expired_as(cx, Ok, Err)
            }

            /// [`Self::delay_open_expired`] with the outcome wrapped by
            /// `sent` or `unchanged`, so that [`State`] builds its own
            /// directly.
            fn delay_open_expired_as<R>(
                self,
                cx: &mut Cx<'_>,
                sent: fn(OpenSent) -> R,
                unchanged: fn(Self) -> R,
            ) -> R {
                match &self.delayed {
                    Some(d) => sent(open_sent(cx, $kind, &d.caps)),
                    None => unchanged(self),
                }
            }

            /// A message while DelayOpen holds our OPEN back.
            pub fn receive(
                self,
                cx: &mut Cx<'_>,
                msg: Message<'_>,
                hooks: &mut dyn OpenHooks,
            ) -> State {
                receive_before_open(cx, $kind, self.delayed, msg, hooks)
            }

            /// ManualStop (Event 2): drop the attempt.
            pub fn stop(self, cx: &mut Cx<'_>) -> Idle {
                cx.idle($kind, DownReason::Stopped)
            }

            /// Collision resolution closes this connection: before our
            /// OPEN, a plain close (no NOTIFICATION).
            pub fn collision_dump(self, cx: &mut Cx<'_>) -> Idle {
                cx.idle($kind, DownReason::Collision)
            }
        }
    };
}

before_open!(Connect, StateKind::Connect);
before_open!(Active, StateKind::Active);

impl Connect {
    /// Event 9: the ConnectRetry timer expired: drop any attempt, dial again.
    pub fn connect_retry_expired(self, cx: &mut Cx<'_>) -> Connect {
        cx.link.dial = true;
        Connect {
            connect_retry: cx.now + cx.config.connect_retry_time,
            delayed: None,
        }
    }

    /// Event 18: the TCP connection failed.
    pub fn connect_failed(self, cx: &mut Cx<'_>) -> ConnectFailed {
        self.connect_failed_as(cx, ConnectFailed::Idle, ConnectFailed::Active)
    }

    /// [`Connect::connect_failed`] with the outcome wrapped by `idle` or
    /// `active`, so that [`State`] builds its own directly.
    fn connect_failed_as<R>(
        self,
        cx: &mut Cx<'_>,
        idle: fn(Idle) -> R,
        active: fn(Active) -> R,
    ) -> R {
        if self.delayed.is_some() {
            cx.change(StateKind::Connect, StateKind::Active);
            active(Active {
                connect_retry: cx.now + cx.config.connect_retry_time,
                delayed: None,
            })
        } else {
            idle(cx.idle(StateKind::Connect, DownReason::ConnectFailed))
        }
    }
}

impl Active {
    /// Event 9: dial again, move to Connect.
    pub fn connect_retry_expired(self, cx: &mut Cx<'_>) -> Connect {
        cx.link.dial = true;
        cx.change(StateKind::Active, StateKind::Connect);
        Connect {
            connect_retry: cx.now + cx.config.connect_retry_time,
            delayed: None,
        }
    }

    /// Event 18: the connection failed: Idle (RFC 4271 §8.2.2, Active).
    pub fn connect_failed(self, cx: &mut Cx<'_>) -> Idle {
        cx.idle(StateKind::Active, DownReason::TransportClosed)
    }
}

fn cease(subcode: CeaseSubcode) -> Notification<'static> {
    Notification::new(NotificationCode::Cease(subcode))
}

/// What happens the same way in every state from OpenSent on (our OPEN is
/// out, so a NOTIFICATION may be sent).
macro_rules! after_open {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// Event 10: the hold timer expired: 4/0, Idle.
            pub fn hold_expired(self, cx: &mut Cx<'_>) -> Idle {
                cx.fail(
                    $kind,
                    &Notification::new(NotificationCode::HOLD_TIMER_EXPIRED),
                )
            }

            /// RFC 9687: our writes made no progress for the send hold
            /// time: 8/0, Idle.
            pub fn send_hold_expired(self, cx: &mut Cx<'_>) -> Idle {
                cx.fail(
                    $kind,
                    &Notification::new(NotificationCode::SEND_HOLD_TIMER_EXPIRED),
                )
            }

            /// ManualStop (Event 2): Cease with `subcode`, Idle.
            pub fn stop(self, cx: &mut Cx<'_>, subcode: CeaseSubcode) -> Idle {
                cx.notify(&cease(subcode));
                cx.idle($kind, DownReason::Stopped)
            }

            /// OpenCollisionDump (Event 23; RFC 4271 §6.8 when the other
            /// connection wins): Cease 6/7, Idle.
            pub fn collision_dump(self, cx: &mut Cx<'_>) -> Idle {
                cx.notify(&cease(CeaseSubcode::ConnectionCollisionResolution));
                cx.idle($kind, DownReason::Collision)
            }
        }
    };
}

after_open!(OpenSent, StateKind::OpenSent);
after_open!(OpenConfirm, StateKind::OpenConfirm);
after_open!(Established, StateKind::Established);

/// OpenConfirm and Established keep the same timers over what was
/// negotiated.
macro_rules! negotiated_timers {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// When this state next needs [`State::handle_timeout`].
            pub fn deadline(&self) -> Option<Instant> {
                self.hold.min(self.keepalive).deadline()
            }

            /// What was negotiated.
            pub fn negotiated(&self) -> &Negotiated {
                &self.negotiated
            }

            /// Event 11: send KEEPALIVE, restart the KeepaliveTimer.
            pub fn keepalive_due(&mut self, cx: &mut Cx<'_>) {
                cx.link.push_keepalive();
                self.keepalive = self.negotiated.keepalive_deadline(cx.now);
            }

            /// Event 18: Idle.
            pub fn connection_failed(self, cx: &mut Cx<'_>) -> Idle {
                cx.idle($kind, DownReason::TransportClosed)
            }

            /// Whether the hold timer expired (not while the plugin works
            /// on a message); if not, sends a KEEPALIVE when one is due.
            fn hold_due_else_keepalive(&mut self, cx: &mut Cx<'_>, busy: bool) -> bool {
                if !busy && expired(self.hold, cx.now) {
                    return true;
                }
                if expired(self.keepalive, cx.now) {
                    self.keepalive_due(cx);
                }
                false
            }
        }
    };
}

negotiated_timers!(OpenConfirm, StateKind::OpenConfirm);
negotiated_timers!(Established, StateKind::Established);

impl OpenSent {
    /// When this state next needs [`State::handle_timeout`].
    pub fn deadline(&self) -> Option<Instant> {
        Some(self.hold)
    }

    /// What our OPEN advertised.
    pub fn advertised(&self) -> &Advertised {
        &self.advertised
    }

    /// Event 19: the peer's OPEN. Runs the checks of
    /// [`super::check_open`], then the hooks' `check_open`; on success sends
    /// KEEPALIVE, sets the negotiated hold time and starts the KeepaliveTimer
    /// (neither when the hold time is 0).
    pub fn receive_open(
        self,
        cx: &mut Cx<'_>,
        open: &Open<'_>,
        hooks: &mut dyn OpenHooks,
    ) -> OpenReceived {
        self.receive_open_as(
            cx,
            open,
            hooks,
            OpenReceived::OpenConfirm,
            OpenReceived::Idle,
        )
    }

    /// [`OpenSent::receive_open`] with the outcome wrapped by `confirm` or
    /// `idle` ([`OpenReceived`]'s or [`State`]'s variants), so that the
    /// state is built where it goes.
    fn receive_open_as<R>(
        self,
        cx: &mut Cx<'_>,
        open: &Open<'_>,
        hooks: &mut dyn OpenHooks,
        confirm: fn(OpenConfirm) -> R,
        idle: fn(Idle) -> R,
    ) -> R {
        // The session's checks, then the hooks'; either refusal fails the
        // connection through the one `fail` below.
        let refusal = match check_open(cx.config, &self.advertised, open) {
            Ok(negotiated) => match hooks.check_open(&cx.config.peer, open, &negotiated) {
                Ok(()) => {
                    cx.link.push_keepalive();
                    let hold = negotiated.hold_deadline(cx.now);
                    let keepalive = negotiated.keepalive_deadline(cx.now);
                    cx.change(StateKind::OpenSent, StateKind::OpenConfirm);
                    return confirm(OpenConfirm {
                        negotiated,
                        hold,
                        keepalive,
                    });
                }
                Err(n) => n,
            },
            Err(e) => e.notification(),
        };
        idle(cx.fail(StateKind::OpenSent, &refusal))
    }

    /// Event 18: the connection failed: restart ConnectRetry, Active.
    pub fn connection_failed(self, cx: &mut Cx<'_>) -> Active {
        cx.link.close = true;
        cx.change(StateKind::OpenSent, StateKind::Active);
        Active {
            connect_retry: cx.now + cx.config.connect_retry_time,
            delayed: None,
        }
    }

    /// Any message: OPEN is [`OpenSent::receive_open`]; NOTIFICATION ends
    /// the connection; anything else is 5/1 with the type as data (RFC 6608).
    pub fn receive(self, cx: &mut Cx<'_>, msg: Message<'_>, hooks: &mut dyn OpenHooks) -> State {
        match msg {
            Message::Open(o) => {
                self.receive_open_as(cx, &o, hooks, State::OpenConfirm, State::Idle)
            }
            Message::Notification(n) => {
                State::Idle(cx.received_notification(StateKind::OpenSent, &n))
            }
            m => State::Idle(cx.fsm_error(StateKind::OpenSent, m.msg_type())),
        }
    }
}

impl OpenConfirm {
    /// Event 26: the peer's KEEPALIVE: restart the hold timer, Established.
    pub fn receive_keepalive(self, cx: &mut Cx<'_>) -> Established {
        let hold = self.negotiated.hold_deadline(cx.now);
        cx.change(StateKind::OpenConfirm, StateKind::Established);
        cx.events.push(Event::Established {
            direction: cx.direction,
        });
        Established {
            negotiated: self.negotiated,
            hold,
            keepalive: self.keepalive,
        }
    }

    /// Any message: KEEPALIVE is [`OpenConfirm::receive_keepalive`];
    /// NOTIFICATION ends the connection; anything else is 5/2 (RFC 6608).
    pub fn receive(self, cx: &mut Cx<'_>, msg: Message<'_>) -> State {
        match msg {
            Message::Keepalive => State::Established(self.receive_keepalive(cx)),
            Message::Notification(n) => {
                State::Idle(cx.received_notification(StateKind::OpenConfirm, &n))
            }
            m => State::Idle(cx.fsm_error(StateKind::OpenConfirm, m.msg_type())),
        }
    }
}

/// Why an UPDATE could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The session is not Established (or has closed).
    NotEstablished,
    /// Longer than the negotiated maximum (4096, or 65535 with RFC 8654).
    TooLong {
        /// The message's length.
        len: usize,
        /// The negotiated maximum.
        max: usize,
    },
    /// Not an UPDATE: a whole message with a valid header and type 2 is needed.
    NotAnUpdate,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotEstablished => f.write_str("session not established"),
            Self::TooLong { len, max } => {
                write!(f, "UPDATE of {len} bytes exceeds the negotiated {max}")
            }
            Self::NotAnUpdate => f.write_str("not a whole UPDATE message"),
        }
    }
}

impl core::error::Error for SendError {}

/// Established after a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum EstablishedNext {
    /// Still Established.
    Established(Established),
    /// The connection ended.
    Idle(Idle),
}

impl Established {
    #[cfg_attr(not(target_os = "none"), inline)]
    fn restart_hold(&mut self, now: Instant) {
        self.hold = self.negotiated.hold_deadline(now);
    }

    /// Checks an UPDATE we are about to write (a whole message, header
    /// included) and restarts the KeepaliveTimer (RFC 4271 §4.4: an UPDATE
    /// does the job of a KEEPALIVE). The caller writes the bytes.
    pub fn send_update(&mut self, cx: &mut Cx<'_>, msg: &[u8]) -> Result<(), SendError> {
        let max = self.negotiated.max_message_len();
        if msg.len() > max {
            return Err(SendError::TooLong {
                len: msg.len(),
                max,
            });
        }
        let is_update = msg.len() >= 23 && msg.get(18) == Some(&(MessageType::Update as u8));
        if !is_update || msg.get(16..18) != Some(&(msg.len() as u16).to_be_bytes()[..]) {
            return Err(SendError::NotAnUpdate);
        }
        self.keepalive = self.negotiated.keepalive_deadline(cx.now);
        Ok(())
    }

    /// A writer that can only exist while this state does: it borrows it.
    pub fn update_writer<'s, 'c>(&'s mut self, cx: &'s mut Cx<'c>) -> UpdateWriter<'s, 'c> {
        UpdateWriter { state: self, cx }
    }

    /// A message that keeps the session Established (KEEPALIVE, UPDATE,
    /// ROUTE-REFRESH), handled in place: the hold timer restarts and an
    /// UPDATE or a ROUTE-REFRESH of a negotiated family is delivered. `None`
    /// for a message that ends the session ([`Established::receive`]).
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn receive_in_place<'m>(
        &mut self,
        cx: &mut Cx<'_>,
        msg: Message<'m>,
    ) -> Option<Delivery<'m>> {
        let delivery = match msg {
            Message::Keepalive => Delivery::None,
            Message::Update(u) => Delivery::Update(u),
            Message::RouteRefresh(rr) => {
                // RFC 2918 §4 / RFC 7313 §5: ignore it for a family we did not
                // negotiate, an unknown subtype, or without the capability.
                let known = !matches!(rr.subtype, RouteRefreshSubtype::Unknown(_));
                let enhanced_ok = rr.subtype == RouteRefreshSubtype::Normal
                    || self.negotiated.enhanced_route_refresh;
                if self.negotiated.route_refresh
                    && known
                    && enhanced_ok
                    && self.negotiated.has_family(rr.family)
                {
                    Delivery::RouteRefresh(rr)
                } else {
                    cx.events.push(Event::RouteRefreshIgnored);
                    Delivery::None
                }
            }
            Message::Notification(_) | Message::Open(_) => return None,
        };
        self.restart_hold(cx.now);
        Some(delivery)
    }

    /// A message. KEEPALIVE and UPDATE (and ROUTE-REFRESH) restart the hold
    /// timer; an UPDATE or a ROUTE-REFRESH of a negotiated family is
    /// delivered; NOTIFICATION ends the connection; OPEN is 5/3 (RFC 6608).
    pub fn receive<'m>(
        mut self,
        cx: &mut Cx<'_>,
        msg: Message<'m>,
    ) -> (EstablishedNext, Delivery<'m>) {
        if let Some(d) = self.receive_in_place(cx, msg) {
            return (EstablishedNext::Established(self), d);
        }
        let (idle, d) = self.close_on(cx, msg);
        (EstablishedNext::Idle(idle), d)
    }

    /// A message [`Established::receive_in_place`] turned down, one that
    /// ends the session: the peer's NOTIFICATION (delivered), or an OPEN,
    /// 5/3 (RFC 6608). For [`State`], which has tried in place already.
    fn close_on<'m>(self, cx: &mut Cx<'_>, msg: Message<'m>) -> (Idle, Delivery<'m>) {
        match msg {
            Message::Notification(n) => {
                let idle = cx.received_notification(StateKind::Established, &n);
                (idle, Delivery::Notification(n))
            }
            _ => (
                cx.fsm_error(StateKind::Established, MessageType::Open),
                Delivery::None,
            ),
        }
    }

    /// The plugin refused an UPDATE (or wants out): send its NOTIFICATION, Idle.
    pub fn close_with(self, cx: &mut Cx<'_>, n: &Notification<'_>) -> Idle {
        cx.fail(StateKind::Established, n)
    }
}

/// Writes UPDATEs on an Established connection. It borrows the state, so it
/// cannot outlive it: once a transition consumes the state, the writer is
/// gone (using it after the session closed does not compile).
pub struct UpdateWriter<'s, 'c> {
    state: &'s mut Established,
    cx: &'s mut Cx<'c>,
}

impl UpdateWriter<'_, '_> {
    /// Checks `msg` (a whole UPDATE) and restarts the KeepaliveTimer; the
    /// caller then writes the bytes to the transport.
    pub fn write(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.state.send_update(self.cx, msg)
    }

    /// Largest UPDATE the peer accepts.
    pub fn max_message_len(&self) -> usize {
        self.state.negotiated.max_message_len()
    }
}

/// What [`State::step`] is told: the inputs whose transitions move the
/// state.
// A plain tag (no niche in the message's): `step` dispatches on it in
// every state, and decoding a niche there cost flash each time.
#[repr(u8)]
enum Input<'h, 'm> {
    /// Timers expired (`handle_timeout` found a transition due), the RFC
    /// 9687 send hold timer among them or not.
    Timeout { send_hold: bool },
    /// A received message.
    Message(Message<'m>, &'h mut dyn OpenHooks),
    /// The TCP connection is up (Events 16, 17).
    Connected(&'h mut dyn OpenHooks),
    /// The TCP connection failed or closed (Event 18).
    ConnectionFailed,
}

impl State {
    /// A new connection state machine, Idle.
    pub const fn new() -> Self {
        Self::Idle(Idle::new())
    }

    /// Which of the six states.
    #[inline]
    pub fn kind(&self) -> StateKind {
        match self {
            Self::Idle(_) => StateKind::Idle,
            Self::Connect(_) => StateKind::Connect,
            Self::Active(_) => StateKind::Active,
            Self::OpenSent(_) => StateKind::OpenSent,
            Self::OpenConfirm(_) => StateKind::OpenConfirm,
            Self::Established(_) => StateKind::Established,
        }
    }

    /// What was negotiated, from OpenConfirm on.
    #[inline]
    pub fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            Self::OpenConfirm(s) => Some(&s.negotiated),
            Self::Established(s) => Some(&s.negotiated),
            _ => None,
        }
    }

    /// The earliest instant at which a timer of this state expires.
    pub fn deadline(&self, link: &Link, config: &SessionConfig) -> Option<Instant> {
        self.next_deadline(link, config).deadline()
    }

    /// [`State::deadline`], [`Instant::NEVER`] for none.
    pub(crate) fn next_deadline(&self, link: &Link, config: &SessionConfig) -> Instant {
        // One arm per shape of timers (Connect and Active, OpenConfirm and
        // Established share theirs), not per state: less code.
        let own = match self {
            Self::Idle(_) => Instant::NEVER,
            Self::Connect(Connect {
                connect_retry,
                delayed,
            })
            | Self::Active(Active {
                connect_retry,
                delayed,
            }) => (*connect_retry).min(delayed.as_ref().map_or(Instant::NEVER, |d| d.until)),
            Self::OpenSent(s) => s.hold,
            // While the plugin works on a message, the hold timer waits; only
            // keepalives are due (CoreBGP issue #55).
            Self::OpenConfirm(OpenConfirm {
                hold, keepalive, ..
            })
            | Self::Established(Established {
                hold, keepalive, ..
            }) => {
                if link.busy {
                    *keepalive
                } else {
                    (*hold).min(*keepalive)
                }
            }
        };
        own.min(self.send_hold_deadline(link, config))
    }

    /// The RFC 9687 send hold timer's deadline, [`Instant::NEVER`] when off.
    fn send_hold_deadline(&self, link: &Link, config: &SessionConfig) -> Instant {
        let Some(since) = link.blocked_since else {
            return Instant::NEVER;
        };
        let hold = self.negotiated().map(|n| n.hold_time).unwrap_or(0);
        // RFC 9687 §3: default max(8 minutes, 2 × hold time).
        let d = config.send_hold_time.unwrap_or_else(|| {
            Duration::from_secs(480).max(Duration::from_secs(2 * u64::from(hold)))
        });
        match self {
            Self::OpenSent(_) | Self::OpenConfirm(_) | Self::Established(_) => since + d,
            _ => Instant::NEVER,
        }
    }

    fn take(&mut self) -> Self {
        core::mem::take(self)
    }

    /// Processes the timers that expired at `cx.now` (spurious calls are
    /// harmless). Each transition is the state type's own method, so the
    /// run-time FSM can only take the transitions the typestate has.
    // Out of line: called from `Peer::handle_timeout` for each connection.
    #[inline(never)]
    pub fn handle_timeout(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        let send_hold = expired(self.send_hold_deadline(cx.link, cx.config), now);
        let busy = cx.link.busy;
        // Most calls find nothing due, or only a KEEPALIVE (a `&mut`
        // method): those leave the state where it is; only a transition
        // moves it through its type.
        let transition = send_hold
            || match self {
                Self::Idle(_) => false,
                Self::Connect(Connect {
                    connect_retry,
                    delayed,
                })
                | Self::Active(Active {
                    connect_retry,
                    delayed,
                }) => {
                    expired(*connect_retry, now) || delayed.as_ref().is_some_and(|d| d.until <= now)
                }
                Self::OpenSent(s) => s.hold <= now,
                Self::OpenConfirm(s) => s.hold_due_else_keepalive(cx, busy),
                Self::Established(s) => s.hold_due_else_keepalive(cx, busy),
            };
        if transition {
            self.step(cx, Input::Timeout { send_hold });
        }
    }

    /// Processes one received message (already framed and decoded).
    // Inlinable on hosts: `Peer<M>` is generic, so its callers are compiled
    // in the user's crate, where a plain function of this crate is a call
    // (the KEEPALIVE path was 40% slower); bare-metal builds use LTO.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn handle_message<'m>(
        &mut self,
        cx: &mut Cx<'_>,
        msg: Message<'m>,
        hooks: &mut dyn OpenHooks,
    ) -> Delivery<'m> {
        // The hot path: a message that keeps an Established session up is
        // handled in place, without moving the state.
        if let Self::Established(s) = self
            && let Some(d) = s.receive_in_place(cx, msg)
        {
            return d;
        }
        let delivery = self.step(cx, Input::Message(msg, hooks));
        // A NOTIFICATION ends any connection and goes to the plugin.
        match (delivery, msg) {
            (Delivery::None, Message::Notification(n)) => Delivery::Notification(n),
            _ => delivery,
        }
    }

    /// An UPDATE, already split into its sections, on a connection that may
    /// be Established: there it restarts the HoldTimer and is to be
    /// delivered (RFC 4271 §8.2.2, Established, Event 27), exactly what
    /// [`State::handle_message`] does with a `Message::Update`
    /// ([`Established::receive_in_place`]), without building the
    /// `Message` and the `Delivery` around it. `false`, and nothing
    /// changed, in any other state: the caller hands it to
    /// [`State::handle_message`].
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn receive_update(&mut self, now: Instant) -> bool {
        match self {
            Self::Established(s) => {
                s.restart_hold(now);
                true
            }
            _ => false,
        }
    }

    /// Every transition that moves the state, whatever its input, through
    /// the state types' methods: one out-of-line body, so that the state
    /// is taken and put back (a copy of the whole state each way) in one
    /// place rather than once per input.
    #[inline(never)]
    fn step<'m>(&mut self, cx: &mut Cx<'_>, input: Input<'_, 'm>) -> Delivery<'m> {
        let now = cx.now;
        let mut delivery = Delivery::None;
        *self = match (self.take(), input) {
            // No connection: nothing to time, receive or fail (a message
            // on a connection we do not have is ignored).
            (s @ Self::Idle(_), _) => s,
            (Self::Connect(s), Input::Timeout { .. }) => {
                if s.delayed.as_ref().is_some_and(|d| d.until <= now) {
                    s.delay_open_expired_as(cx, Self::OpenSent, Self::Connect)
                } else if expired(s.connect_retry, now) {
                    Self::Connect(s.connect_retry_expired(cx))
                } else {
                    Self::Connect(s)
                }
            }
            (Self::Active(s), Input::Timeout { .. }) => {
                if s.delayed.as_ref().is_some_and(|d| d.until <= now) {
                    s.delay_open_expired_as(cx, Self::OpenSent, Self::Active)
                } else if expired(s.connect_retry, now) {
                    Self::Connect(s.connect_retry_expired(cx))
                } else {
                    Self::Active(s)
                }
            }
            (Self::OpenSent(s), Input::Timeout { send_hold }) => {
                if send_hold {
                    Self::Idle(s.send_hold_expired(cx))
                } else if s.hold <= now {
                    Self::Idle(s.hold_expired(cx))
                } else {
                    Self::OpenSent(s)
                }
            }
            // The hold timer (or RFC 9687's send hold timer) expired: the
            // KEEPALIVE case stayed in place in `handle_timeout`.
            (Self::OpenConfirm(s), Input::Timeout { send_hold: true }) => {
                Self::Idle(s.send_hold_expired(cx))
            }
            (Self::OpenConfirm(s), Input::Timeout { send_hold: false }) => {
                Self::Idle(s.hold_expired(cx))
            }
            (Self::Established(s), Input::Timeout { send_hold: true }) => {
                Self::Idle(s.send_hold_expired(cx))
            }
            (Self::Established(s), Input::Timeout { send_hold: false }) => {
                Self::Idle(s.hold_expired(cx))
            }
            (Self::Connect(s), Input::Message(msg, hooks)) => s.receive(cx, msg, hooks),
            (Self::Active(s), Input::Message(msg, hooks)) => s.receive(cx, msg, hooks),
            (Self::OpenSent(s), Input::Message(msg, hooks)) => s.receive(cx, msg, hooks),
            (Self::OpenConfirm(s), Input::Message(msg, _)) => s.receive(cx, msg),
            // `handle_message` kept in place every message that leaves the
            // session up: this one ends it.
            (Self::Established(s), Input::Message(msg, _)) => {
                let (idle, d) = s.close_on(cx, msg);
                delivery = d;
                Self::Idle(idle)
            }
            (Self::Connect(s), Input::Connected(hooks)) => {
                s.connected_as(cx, hooks, Self::OpenSent, Self::Connect)
            }
            (Self::Active(s), Input::Connected(hooks)) => {
                s.connected_as(cx, hooks, Self::OpenSent, Self::Active)
            }
            // A connection that is already up cannot come up again.
            (s, Input::Connected(_)) => s,
            (Self::Connect(s), Input::ConnectionFailed) => {
                s.connect_failed_as(cx, Self::Idle, Self::Active)
            }
            (Self::Active(s), Input::ConnectionFailed) => Self::Idle(s.connect_failed(cx)),
            // RFC 4271 §8.2.2 OpenSent, Event 18: Active, to dial again when
            // ConnectRetry expires. Only the connection we dial can do that:
            // an accepted one would sit in Active, refuse the peer's next
            // connection as a duplicate and later "dial" on an inbound link.
            // Its FSM ends instead (Active → Idle, as Active's Event 18).
            (Self::OpenSent(s), Input::ConnectionFailed) if cx.direction == Direction::Inbound => {
                Self::Idle(s.connection_failed(cx).connect_failed(cx))
            }
            (Self::OpenSent(s), Input::ConnectionFailed) => Self::Active(s.connection_failed(cx)),
            (Self::OpenConfirm(s), Input::ConnectionFailed) => Self::Idle(s.connection_failed(cx)),
            (Self::Established(s), Input::ConnectionFailed) => Self::Idle(s.connection_failed(cx)),
        };
        delivery
    }

    /// A message that failed to decode (header, OPEN, UPDATE sections,
    /// ROUTE-REFRESH): send its NOTIFICATION and go Idle (Events 21, 22, 28).
    pub fn handle_error(&mut self, cx: &mut Cx<'_>, n: &Notification<'_>) {
        // A message the state does not expect is an FSM error whether or not
        // it decodes: RFC 4271 §8.2.2 lists UpdateMsgErr (Event 28) among
        // OpenSent's and OpenConfirm's "any other event", and OpenMsgErr
        // (Event 22) among Established's; RFC 6608 §3 names the subcode of
        // each state and §4 the message type as data. (A ROUTE-REFRESH is
        // as unexpected before Established.) Header errors (§6.1) and, in
        // OpenSent and OpenConfirm, OPEN errors (§6.2, Event 22) keep
        // their own codes.
        let unexpected = match (self.kind(), n.code) {
            (StateKind::OpenSent | StateKind::OpenConfirm, NotificationCode::Update(_)) => {
                Some(MessageType::Update)
            }
            (StateKind::OpenSent | StateKind::OpenConfirm, NotificationCode::RouteRefresh(_)) => {
                Some(MessageType::RouteRefresh)
            }
            (StateKind::Established, NotificationCode::Open(_)) => Some(MessageType::Open),
            _ => None,
        };
        match unexpected {
            // OpenSent, OpenConfirm, Established: 5/1, 5/2, 5/3.
            Some(ty) => *self = Self::Idle(cx.fsm_error(self.kind(), ty)),
            None => self.close_with(cx, n),
        }
    }

    /// Sends `n` and closes (the plugin refused an UPDATE in Established;
    /// any state from OpenSent on). Before our OPEN (Connect, Active) the
    /// connection is dropped without it: RFC 4271 §8.2.2 Connect/Active,
    /// Events 21/22 (SendNOTIFICATIONwithoutOPEN is off).
    pub fn close_with(&mut self, cx: &mut Cx<'_>, n: &Notification<'_>) {
        let from = self.kind();
        match from {
            StateKind::Idle => {}
            StateKind::Connect | StateKind::Active => {
                *self = Self::Idle(cx.idle(from, DownReason::Dropped(n.code)));
            }
            _ => *self = Self::Idle(cx.fail(from, n)),
        }
    }

    /// The TCP connection is up (Events 16, 17).
    pub fn connected(&mut self, cx: &mut Cx<'_>, hooks: &mut dyn OpenHooks) {
        self.step(cx, Input::Connected(hooks));
    }

    /// The TCP connection failed or closed (Event 18).
    pub fn connection_failed(&mut self, cx: &mut Cx<'_>) {
        self.step(cx, Input::ConnectionFailed);
    }

    /// ManualStop (Event 2): Cease with `subcode` from OpenSent on.
    pub fn stop(&mut self, cx: &mut Cx<'_>, subcode: CeaseSubcode) {
        *self = match self.take() {
            s @ Self::Idle(_) => s,
            Self::Connect(s) => Self::Idle(s.stop(cx)),
            Self::Active(s) => Self::Idle(s.stop(cx)),
            Self::OpenSent(s) => Self::Idle(s.stop(cx, subcode)),
            Self::OpenConfirm(s) => Self::Idle(s.stop(cx, subcode)),
            Self::Established(s) => Self::Idle(s.stop(cx, subcode)),
        };
    }

    /// Collision resolution closes this connection: Cease 6/7 where an
    /// OPEN was sent, a plain close otherwise.
    pub fn collision_dump(&mut self, cx: &mut Cx<'_>) {
        *self = match self.take() {
            s @ Self::Idle(_) => s,
            Self::Connect(s) => Self::Idle(s.collision_dump(cx)),
            Self::Active(s) => Self::Idle(s.collision_dump(cx)),
            Self::OpenSent(s) => Self::Idle(s.collision_dump(cx)),
            Self::OpenConfirm(s) => Self::Idle(s.collision_dump(cx)),
            Self::Established(s) => Self::Idle(s.collision_dump(cx)),
        };
    }

    /// Idle → Connect (dial) or, for a passive peer, Active.
    pub fn start(&mut self, cx: &mut Cx<'_>) {
        // In place: only the (small) Idle is moved, not the whole state.
        if let Self::Idle(s) = self {
            let s = core::mem::take(s);
            *self = if cx.config.passive {
                Self::Active(s.start_passive(cx))
            } else {
                Self::Connect(s.start(cx))
            };
        }
    }

    /// A connection the peer opened, in Active (its FSM starts here).
    pub fn accepted(cx: &mut Cx<'_>, hooks: &mut dyn OpenHooks) -> Self {
        let active = Active {
            connect_retry: Instant::NEVER,
            delayed: None,
        };
        active.connected_as(cx, hooks, Self::OpenSent, Self::Active)
    }

    /// Restarts the hold timer of an OpenConfirm or Established connection
    /// (the plugin finished a message it was working on). Both states stop
    /// their hold timer while busy ([`State::deadline`]), so both restart
    /// it: a timer left in the past would never fire again.
    pub fn restart_hold(&mut self, now: Instant) {
        match self {
            Self::OpenConfirm(s) => s.hold = s.negotiated.hold_deadline(now),
            Self::Established(s) => s.restart_hold(now),
            _ => {}
        }
    }

    /// Checks an UPDATE to write (see [`Established::send_update`]).
    pub fn send_update(&mut self, cx: &mut Cx<'_>, msg: &[u8]) -> Result<(), SendError> {
        match self {
            Self::Established(s) => s.send_update(cx, msg),
            _ => Err(SendError::NotEstablished),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
