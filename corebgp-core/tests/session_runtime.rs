//! The run-time `State` driven directly (no `Peer`): every input reaches the
//! state types through one dispatcher, so each input is tried here in every
//! state, including those where it does not apply and must change nothing.

mod common;

use common::*;
use corebgp_core::session::{
    Cx, DefaultHooks, Delivery, Direction, Event, Events, Link, SessionConfig, State, StateKind,
};
use corebgp_core::wire::{CeaseSubcode, MAX_MESSAGE_LEN, Message, NotificationCode};

/// One connection's state machine with its outputs, on a fixed clock.
struct Conn {
    config: SessionConfig,
    state: State,
    link: Link,
    events: Events,
    now: corebgp_core::session::Instant,
}

impl Conn {
    fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::new(),
            link: Link::new(),
            events: Events::new(),
            now: at(1),
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut State, &mut Cx<'_>) -> R) -> R {
        let mut cx = Cx {
            now: self.now,
            config: &self.config,
            link: &mut self.link,
            events: &mut self.events,
            direction: Direction::Outbound,
        };
        f(&mut self.state, &mut cx)
    }

    fn message<'m>(&mut self, bytes: &'m [u8]) -> Delivery<'m> {
        let msg = Message::parse(bytes, MAX_MESSAGE_LEN).expect("well-formed");
        self.with(|s, cx| s.handle_message(cx, msg, &mut DefaultHooks))
    }

    /// Drops what was written and the events so far.
    fn drain(&mut self) {
        let n = self.link.pending().len();
        self.link.consume(n);
        while self.events.pop().is_some() {}
    }

    /// The state driven from Idle to `kind` (Active through a passive start).
    fn reach(kind: StateKind) -> Self {
        let passive = kind == StateKind::Active;
        let mut c = Self::new(config().with_passive(passive));
        if kind != StateKind::Idle {
            c.with(|s, cx| s.start(cx));
        }
        if kind >= StateKind::OpenSent {
            c.with(|s, cx| s.connected(cx, &mut DefaultHooks));
        }
        if kind >= StateKind::OpenConfirm {
            let open = remote_open(90);
            c.message(&open);
        }
        if kind == StateKind::Established {
            c.message(&keepalive());
        }
        assert_eq!(c.state.kind(), kind);
        c.drain();
        c
    }

    /// Applies `input` and asserts that it changed nothing at all.
    fn unchanged(&mut self, what: &str, input: impl FnOnce(&mut Self)) {
        let before = self.state.clone();
        input(self);
        assert_eq!(self.state, before, "{what} in {:?}", before.kind());
        assert!(self.link.pending().is_empty(), "{what}: nothing sent");
        assert!(!self.link.wants_close(), "{what}: no close");
        assert_eq!(self.events.pop(), None, "{what}: no event");
    }
}

const ALL: [StateKind; 6] = [
    StateKind::Idle,
    StateKind::Connect,
    StateKind::Active,
    StateKind::OpenSent,
    StateKind::OpenConfirm,
    StateKind::Established,
];

#[test]
fn connected_applies_only_before_the_tcp_connection_is_up() {
    for kind in ALL {
        let mut c = Conn::reach(kind);
        if matches!(kind, StateKind::Connect | StateKind::Active) {
            c.with(|s, cx| s.connected(cx, &mut DefaultHooks));
            assert_eq!(c.state.kind(), StateKind::OpenSent, "from {kind:?}");
        } else {
            c.unchanged("connected", |c| {
                c.with(|s, cx| s.connected(cx, &mut DefaultHooks))
            });
        }
    }
}

#[test]
fn start_applies_only_in_idle_and_restarts_an_idle_that_went_down() {
    for kind in ALL {
        let mut c = Conn::reach(kind);
        if kind == StateKind::Idle {
            continue;
        }
        c.unchanged("start", |c| c.with(|s, cx| s.start(cx)));
    }
    // An Idle that went down (it holds why) starts again like a new one.
    let mut c = Conn::reach(StateKind::OpenSent);
    c.with(|s, cx| s.stop(cx, CeaseSubcode::AdministrativeShutdown));
    assert_eq!(c.state.kind(), StateKind::Idle);
    c.link.reset();
    c.with(|s, cx| s.start(cx));
    assert_eq!(c.state.kind(), StateKind::Connect);
    assert!(c.link.take_dial());
    c.with(|s, cx| s.connection_failed(cx));
    let State::Idle(idle) = &c.state else {
        panic!("{:?}", c.state.kind())
    };
    assert_eq!(
        idle.reason(),
        Some(corebgp_core::session::DownReason::ConnectFailed)
    );
}

#[test]
fn idle_ignores_timers_failures_and_messages_but_hands_over_a_notification() {
    let mut c = Conn::reach(StateKind::Idle);
    c.now = at(1_000_000);
    c.unchanged("handle_timeout", |c| c.with(|s, cx| s.handle_timeout(cx)));
    c.unchanged("connection_failed", |c| {
        c.with(|s, cx| s.connection_failed(cx))
    });
    let ka = keepalive();
    c.unchanged("KEEPALIVE", |c| assert_eq!(c.message(&ka), Delivery::None));
    let open = remote_open(90);
    c.unchanged("OPEN", |c| assert_eq!(c.message(&open), Delivery::None));
    // A NOTIFICATION is handed to the plugin whatever the state.
    let n = notification(NotificationCode::Cease(CeaseSubcode::PeerDeconfigured), &[]);
    c.unchanged("NOTIFICATION", |c| {
        let Delivery::Notification(got) = c.message(&n) else {
            panic!("not delivered")
        };
        assert_eq!(
            got.code,
            NotificationCode::Cease(CeaseSubcode::PeerDeconfigured)
        );
    });
}

#[test]
fn timers_not_yet_due_change_nothing_in_any_state() {
    for kind in ALL {
        let mut c = Conn::reach(kind);
        c.unchanged("handle_timeout", |c| c.with(|s, cx| s.handle_timeout(cx)));
    }
}

#[test]
fn established_ends_on_a_notification_or_an_open_and_says_why() {
    // The NOTIFICATION is delivered; the state goes Idle without answering.
    let mut c = Conn::reach(StateKind::Established);
    let n = notification(
        NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
        &[],
    );
    let Delivery::Notification(got) = c.message(&n) else {
        panic!("not delivered")
    };
    assert_eq!(
        got.code,
        NotificationCode::Cease(CeaseSubcode::AdministrativeReset)
    );
    assert_eq!(c.state.kind(), StateKind::Idle);
    assert!(c.link.pending().is_empty());
    assert!(c.link.wants_close());
    // An OPEN is 5/3 and not delivered.
    let mut c = Conn::reach(StateKind::Established);
    let open = remote_open(90);
    assert_eq!(c.message(&open), Delivery::None);
    assert_eq!(c.state.kind(), StateKind::Idle);
    let sent = c.link.pending().to_vec();
    let Ok(Message::Notification(sent)) = Message::parse(&sent, MAX_MESSAGE_LEN) else {
        panic!("no NOTIFICATION")
    };
    assert_eq!((sent.code.code(), sent.code.subcode()), (5, 3));
    let mut downs = 0;
    while let Some(e) = c.events.pop() {
        downs += usize::from(matches!(e, Event::Down { .. }));
    }
    assert_eq!(downs, 1);
}
