//! Timers on the simulated clock: Keepalive (RFC 4271 §4.4, §10), Hold
//! (§4.2, §6.5), hold time 0, RFC 9687 Send Hold, the slow plugin (CoreBGP
//! issue #55), idle hold and peer oscillation damping (§8.1.1).

mod common;

use common::*;
use corebgp_core::session::{
    DAMPING_AMNESIA, DAMPING_MAX, DAMPING_MIN, Event, Instant, Rejected, StateKind,
};
use corebgp_core::wire::{CeaseSubcode, NotificationCode};

#[test]
fn keepalive_every_third_of_the_hold_time_rfc4271_10() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    let t0 = r.now;
    for i in 1..=20u64 {
        r.advance_to(t0 + secs(30 * i - 1));
        assert!(r.sent(OUT).is_empty(), "early keepalive before {}", 30 * i);
        r.advance_to(t0 + secs(30 * i));
        assert_eq!(r.sent(OUT), vec![Msg::Keepalive], "at {} s", 30 * i);
        // The remote keeps the session up.
        r.send(OUT, &keepalive());
    }
    assert_eq!(r.state(OUT), Some(StateKind::Established));
}

#[test]
fn keepalive_interval_follows_the_negotiated_hold_time() {
    let mut r = Remote::new(config());
    r.establish_out(30);
    let t0 = r.now;
    r.advance_to(t0 + secs(9));
    assert!(r.sent(OUT).is_empty());
    r.advance_to(t0 + secs(10));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    r.advance_to(t0 + secs(20));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    // Hold 30: expires 30 s after the last message received.
    r.advance_to(t0 + secs(29));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(t0 + secs(30));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert_eq!(r.sent(OUT), vec![Msg::n(4, 0, &[])]);
}

#[test]
fn keepalive_interval_with_hold_3_is_1_second_and_hold_10_is_3333_ms() {
    let mut r = Remote::new(config());
    r.establish_out(3);
    let t0 = r.now;
    r.advance_to(t0 + secs(1));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);

    let mut r = Remote::new(config());
    r.establish_out(10);
    assert_eq!(r.peer.poll_timeout(), Some(at_ms(3333)));
}

#[test]
fn sending_an_update_restarts_the_keepalive_timer_rfc4271_4_4() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.advance_to(at(20));
    assert_eq!(r.peer.send_update(r.now, &update()), Ok(OUT));
    r.advance_to(at(49));
    assert!(r.sent(OUT).is_empty(), "the UPDATE did the KEEPALIVE's job");
    r.advance_to(at(50));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer_for_hours_rfc4271_4_4() {
    // The remote proposes 0 (CoreBGP panics on this).
    let mut r = Remote::new(config());
    r.establish_out(0);
    assert_eq!(r.peer.negotiated().expect("negotiated").hold_time, 0);
    assert_eq!(r.peer.poll_timeout(), None, "no timer at all");
    r.advance(secs(10 * 3600));
    assert!(r.sent(OUT).is_empty(), "no KEEPALIVE in 10 hours");
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    // Messages still flow.
    assert_eq!(
        r.send(OUT, &update()),
        vec![Got::Update(update()[19..].to_vec())]
    );
    assert_eq!(r.peer.poll_timeout(), None);

    // We propose 0; the remote 90.
    let mut r = Remote::new(config().with_hold_time(0));
    r.establish_out(90);
    assert_eq!(r.peer.poll_timeout(), None);
    r.advance(secs(10 * 3600));
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Established));
}

#[test]
fn hold_time_zero_in_open_confirm_waits_for_the_keepalive_without_timers() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(0);
    // The 4-minute OpenSent timer must not survive into OpenConfirm.
    assert_eq!(r.peer.poll_timeout(), None);
    r.advance(secs(3600));
    assert_eq!(r.state(OUT), Some(StateKind::OpenConfirm));
    assert!(r.sent(OUT).is_empty());
    r.send(OUT, &keepalive());
    assert_eq!(r.state(OUT), Some(StateKind::Established));
}

#[test]
fn send_hold_timer_closes_with_8_0_when_the_peer_stops_reading_rfc9687() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.advance_to(at(10));
    r.peer.link(OUT).expect("link").set_blocked(Some(r.now));
    // Default: max(8 minutes, 2 × 90 s) = 480 s. The remote keeps sending,
    // so only the send hold timer can fire.
    for i in 1..=15u64 {
        r.advance_to(at(10 + 30 * i));
        r.send(OUT, &keepalive());
    }
    r.advance_to(at(489));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(at(490));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert_eq!(r.sent(OUT).last(), Some(&Msg::n(8, 0, &[])));
    assert!(r.events().contains(&Event::NotificationSent {
        direction: OUT,
        code: NotificationCode::SEND_HOLD_TIMER_EXPIRED,
    }));
}

#[test]
fn send_hold_time_is_configurable_and_at_least_twice_the_hold_time_rfc9687_3() {
    let mut r = Remote::new(config().with_send_hold_time(Some(secs(60))));
    r.establish_out(90);
    r.peer.link(OUT).expect("link").set_blocked(Some(r.now));
    r.advance_to(at(59));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(at(60));
    assert_eq!(r.sent(OUT).last(), Some(&Msg::n(8, 0, &[])));

    // Hold 300 negotiated: default 600 s.
    let mut r = Remote::new(config().with_hold_time(300));
    r.establish_out(300);
    r.peer.link(OUT).expect("link").set_blocked(Some(r.now));
    for i in 1..=11u64 {
        r.advance_to(at(50 * i));
        r.send(OUT, &keepalive());
    }
    r.advance_to(at(599));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(at(600));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn writes_moving_again_stop_the_send_hold_timer() {
    let mut r = Remote::new(config().with_send_hold_time(Some(secs(60))));
    r.establish_out(90);
    r.peer.link(OUT).expect("link").set_blocked(Some(r.now));
    r.advance_to(at(50));
    r.peer.link(OUT).expect("link").set_blocked(None);
    r.send(OUT, &keepalive());
    r.advance_to(at(120));
    r.send(OUT, &keepalive());
    assert_eq!(r.state(OUT), Some(StateKind::Established));
}

#[test]
fn send_hold_timer_also_runs_in_open_sent_rfc9687() {
    let mut r = Remote::new(config().with_send_hold_time(Some(secs(30))));
    r.reach_open_sent_out();
    r.peer.link(OUT).expect("link").set_blocked(Some(r.now));
    r.advance_to(at(30));
    assert_eq!(r.sent(OUT), vec![Msg::n(8, 0, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn a_busy_plugin_keeps_keepalives_going_and_holds_the_hold_timer_corebgp_55() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    // The adapter hands an UPDATE to a plugin that takes 10 minutes.
    r.send(OUT, &update());
    r.peer.set_busy(r.now, OUT, true);
    let t0 = r.now;
    for i in 1..=20u64 {
        r.advance_to(t0 + secs(30 * i));
        assert_eq!(r.sent(OUT), vec![Msg::Keepalive], "keepalive {i}");
    }
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    // Done: the hold timer restarts as for a fresh message.
    r.peer.set_busy(r.now, OUT, false);
    let done = r.now;
    r.advance_to(done + secs(89));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(done + secs(90));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert_eq!(r.sent(OUT).last(), Some(&Msg::n(4, 0, &[])));
}

// --------------------------------------------------- idle hold, damping ----

/// From Idle with a dial due now: dial, the remote answers our OPEN with
/// hold time 1 (we send 2/6, a damping error), the adapter closes.
/// Returns the instant of the next dial.
fn fail_once_with_open_error(r: &mut Remote) -> Instant {
    assert!(r.take_dial(), "a dial is due at {:?}", r.now);
    r.connected();
    assert!(r.sent(OUT)[0].is_open());
    r.send(OUT, &remote_open(1));
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 6, &[])]);
    assert!(r.close_if_asked(OUT));
    let next = r.peer.poll_timeout().expect("a restart is scheduled");
    r.advance_to(next);
    next
}

#[test]
fn damping_waits_60_120_240_then_300_and_forgets_after_300_s_quiet_rfc4271_8_1_1() {
    assert_eq!(DAMPING_MIN, secs(60));
    assert_eq!(DAMPING_MAX, secs(300));
    assert_eq!(DAMPING_AMNESIA, secs(300));
    let mut r = Remote::new(config());
    r.start();
    let mut t = r.now;
    let mut delays = Vec::new();
    let mut evs = Vec::new();
    for _ in 0..5 {
        let next = fail_once_with_open_error(&mut r);
        delays.push(next.saturating_duration_since(t).as_secs());
        t = next;
        evs.extend(r.events());
    }
    // Errors at 0, 60, 180, 420, 720: the last comes 300 s after the one
    // before, so the delay was forgotten and starts again at 60 s.
    assert_eq!(delays, vec![60, 120, 240, 300, 60]);
    let damped: Vec<_> = evs
        .into_iter()
        .filter_map(|e| match e {
            Event::Damped { until } => Some(until),
            _ => None,
        })
        .collect();
    assert_eq!(damped, vec![at(60), at(180), at(420), at(720), at(780)]);
}

#[test]
fn damping_is_forgotten_after_a_quiet_period() {
    let mut r = Remote::new(config());
    r.start();
    assert_eq!(fail_once_with_open_error(&mut r), at(60));
    assert_eq!(fail_once_with_open_error(&mut r), at(180));
    // Up for a while, then a clean TCP failure (no damping) ...
    assert!(r.take_dial());
    r.connected();
    r.sent(OUT);
    r.send(OUT, &remote_open(90));
    for _ in 0..20 {
        r.send(OUT, &keepalive());
        r.advance(secs(20));
    }
    assert!(r.now >= at(480));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    // ... then an error ≥ 300 s after the last: back to 60 s.
    r.events();
    r.send(OUT, &notification(NotificationCode::from_raw(3, 1), &[]));
    assert!(r.events().contains(&Event::Damped {
        until: r.now + secs(60)
    }));
    assert!(r.close_if_asked(OUT));
    assert_eq!(r.peer.poll_timeout(), Some(r.now + secs(60)));
}

#[test]
fn inbound_connections_are_refused_during_the_hold_down() {
    let mut r = Remote::new(config());
    r.start();
    assert_eq!(fail_once_with_open_error(&mut r), at(60));
    // fail_once advanced to the end of the hold-down; redo one inside it.
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.sent(OUT);
    r.send(OUT, &remote_open(1));
    r.sent(OUT);
    r.close_if_asked(OUT);
    r.events();
    r.advance_to(at(59));
    assert_eq!(r.accept(), Err(Rejected::HoldDown));
    assert_eq!(r.events(), vec![Event::InboundRejected]);
    assert!(!r.take_dial());
    r.advance_to(at(60));
    assert!(r.take_dial());
    assert!(r.accept().is_ok());
}

#[test]
fn received_cease_only_waits_the_idle_hold_time() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.events();
    r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[],
        ),
    );
    assert!(r.close_if_asked(OUT));
    assert!(
        !r.events().iter().any(|e| matches!(e, Event::Damped { .. })),
        "a Cease does not damp"
    );
    assert_eq!(r.peer.poll_timeout(), Some(r.now + secs(5)));
    assert!(r.accept().is_ok(), "no hold-down");
}

#[test]
fn received_non_cease_notification_damps() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(OUT, &notification(NotificationCode::from_raw(3, 1), &[]));
    assert!(r.close_if_asked(OUT));
    assert!(r.events().contains(&Event::Damped {
        until: r.now + secs(60)
    }));
    assert_eq!(r.accept(), Err(Rejected::HoldDown));
}

#[test]
fn idle_hold_time_is_configurable_and_damping_can_be_disabled() {
    let mut r = Remote::new(config().with_idle_hold_time(secs(20)).with_damping(false));
    r.establish_out(90);
    r.send(OUT, &notification(NotificationCode::from_raw(3, 1), &[]));
    assert!(r.close_if_asked(OUT));
    assert_eq!(r.peer.poll_timeout(), Some(r.now + secs(20)));
    assert!(r.accept().is_ok());
}

#[test]
fn connect_retry_time_is_configurable() {
    let mut r = Remote::new(config().with_connect_retry_time(secs(30)));
    r.start();
    assert!(r.take_dial());
    r.advance_to(at(29));
    assert!(!r.take_dial());
    r.advance_to(at(30));
    assert!(r.take_dial());
}

#[test]
fn the_outbound_fsm_only_restarts_after_the_adapter_closed_the_transport() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[],
        ),
    );
    assert!(r.wants_close(OUT));
    r.advance(secs(60));
    assert!(!r.take_dial(), "still waiting for connection_closed");
    assert_eq!(r.peer.poll_timeout(), None);
    assert!(r.close_if_asked(OUT));
    assert!(r.take_dial(), "the idle hold time has passed: dial at once");
}

#[test]
fn both_connections_failing_in_one_attempt_damp_once_rfc4271_8_1_1() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.accept().expect("accepted");
    r.sent(OUT);
    r.sent(IN);
    r.events();
    r.send(OUT, &remote_open(1));
    r.send(IN, &remote_open(1));
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 6, &[])]);
    assert_eq!(r.sent(IN), vec![Msg::n(2, 6, &[])]);
    let damped: Vec<_> = r
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Damped { .. }))
        .collect();
    assert_eq!(damped, vec![Event::Damped { until: at(60) }]);
    assert!(r.close_if_asked(OUT));
    assert!(r.close_if_asked(IN));
    assert_eq!(r.peer.poll_timeout(), Some(at(60)), "60 s, not 120 s");
}

#[test]
fn an_inbound_cease_during_the_hold_down_does_not_shorten_it() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.accept().expect("accepted");
    r.sent(OUT);
    r.sent(IN);
    r.send(OUT, &remote_open(1));
    assert!(r.close_if_asked(OUT));
    r.advance_to(at(1));
    r.send(
        IN,
        &notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[],
        ),
    );
    assert!(r.close_if_asked(IN));
    assert_eq!(r.peer.poll_timeout(), Some(at(60)));
    r.advance_to(at(59));
    assert!(!r.take_dial());
    r.advance_to(at(60));
    assert!(r.take_dial());
}

// ----------------------------------------------------------- dial-only ----

#[test]
fn dial_only_peer_refuses_every_connection_and_establishes_by_dialling() {
    let mut r = Remote::dial_only(config());
    assert_eq!(r.accept(), Err(Rejected::DialOnly), "before start too");
    r.events();
    r.establish_out(90);
    r.events();
    assert_eq!(r.accept(), Err(Rejected::DialOnly));
    assert_eq!(r.events(), vec![Event::InboundRejected]);
    assert_eq!(r.state(IN), None, "no inbound connection, ever");
    assert!(r.peer.pending(IN).is_empty());
    assert!(r.peer.link(IN).is_none());
    assert_eq!(r.peer.state(), StateKind::Established);
}

#[test]
fn dial_only_peer_damps_and_redials_after_the_hold_down() {
    let mut r = Remote::dial_only(config());
    r.establish_out(90);
    r.events();
    r.send(OUT, &notification(NotificationCode::from_raw(3, 1), &[]));
    assert!(r.close_if_asked(OUT));
    let down = r.now;
    assert!(r.events().contains(&Event::Damped {
        until: down + secs(60)
    }));
    assert_eq!(r.peer.poll_timeout(), Some(down + secs(60)));
    r.advance_to(down + secs(59));
    assert!(!r.take_dial(), "held down");
    r.advance_to(down + secs(60));
    assert!(r.take_dial(), "redials when the hold-down ends");
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
}

#[test]
fn dial_only_peer_has_no_room_for_a_second_connection() {
    use core::mem::size_of;
    use corebgp_core::session::{Conn, DialOnly, Peer};
    // What the marker is for: the accepted connection's memory is gone.
    assert!(size_of::<Peer<DialOnly>>() + size_of::<Conn>() <= size_of::<Peer>());
}

// --------------------------------------------------------- accept-only ----

#[test]
fn accept_only_peer_never_dials_and_establishes_on_the_connection_it_accepts() {
    // Not passive in the configuration: accept_only makes it so.
    let mut r = Remote::accept_only(config());
    assert!(r.peer.config().passive);
    r.start();
    assert_eq!(r.peer.state(), StateKind::Active, "waits for the remote");
    assert_eq!(r.peer.poll_timeout(), None, "no timer while waiting");
    assert!(r.peer.link(OUT).is_none(), "no dialled connection, ever");
    assert_eq!(r.state(OUT), None);
    assert!(matches!(r.reach_open_sent_in(), Msg::Open { hold: 90, .. }));
    r.send(IN, &remote_open(90));
    assert_eq!(r.sent(IN), vec![Msg::Keepalive]);
    r.send(IN, &keepalive());
    assert_eq!(r.state(IN), Some(StateKind::Established));
    assert_eq!(r.peer.established(), Some(IN));
    // Keepalives on the simulated clock, nothing on a dialled side.
    let t0 = r.now;
    r.advance_to(t0 + secs(30));
    assert_eq!(r.sent(IN), vec![Msg::Keepalive]);
    assert!(r.sent(OUT).is_empty());
    // A second connection while Established is refused (RFC 4271 §6.8).
    assert_eq!(r.accept(), Err(Rejected::Duplicate));
}

#[test]
fn accept_only_peer_damps_and_refuses_connections_during_the_hold_down() {
    let mut r = Remote::accept_only(config());
    r.start();
    r.reach_open_sent_in();
    r.events();
    // A NOTIFICATION other than Cease damps the peer (RFC 4271 §8.1.1).
    r.send(IN, &notification(NotificationCode::from_raw(3, 1), &[]));
    assert!(r.close_if_asked(IN));
    let down = r.now;
    assert!(r.events().contains(&Event::Damped {
        until: down + secs(60)
    }));
    r.advance_to(down + secs(59));
    assert_eq!(r.accept(), Err(Rejected::HoldDown));
    r.advance_to(down + secs(60));
    r.events();
    assert!(r.accept().is_ok(), "accepts when the hold-down ends");
    assert_eq!(r.state(OUT), None, "and never dialled");
}

#[test]
fn accept_only_peer_has_no_room_for_a_dialled_connection() {
    use core::mem::size_of;
    use corebgp_core::session::{AcceptOnly, Conn, Peer};
    assert!(size_of::<Peer<AcceptOnly>>() + size_of::<Conn>() <= size_of::<Peer>());
}
