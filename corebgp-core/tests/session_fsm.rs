//! RFC 4271 §8.2.2 state tables, one connection at a time, with the test
//! playing the remote speaker over the wire codec. Test names cite the
//! state and the §8.1 event number.

mod common;

use common::*;
use corebgp_core::session::{DownReason, Event, Rejected, StateKind};
use corebgp_core::wire::{
    AfiSafi, CeaseSubcode, MessageType, NotificationCode, RouteRefreshSubtype,
};

const OPEN: u8 = MessageType::Open as u8;
const UPDATE: u8 = MessageType::Update as u8;
const KEEPALIVE_T: u8 = MessageType::Keepalive as u8;
const ROUTE_REFRESH: u8 = MessageType::RouteRefresh as u8;

fn changes(evs: &[Event]) -> Vec<(StateKind, StateKind)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- Idle ----

#[test]
fn idle_event1_manual_start_dials_starts_connect_retry_enters_connect() {
    let mut r = Remote::new(config());
    assert_eq!(r.peer.state(), StateKind::Idle);
    assert_eq!(
        r.peer.poll_timeout(),
        None,
        "an unstarted peer has no timer"
    );
    r.start();
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert!(r.take_dial());
    assert!(!r.take_dial(), "the dial request is taken once");
    // ConnectRetryTimer (default 5 s) is running.
    assert_eq!(r.peer.poll_timeout(), Some(at(5)));
    assert_eq!(
        changes(&r.events()),
        vec![(StateKind::Idle, StateKind::Connect)]
    );
    assert!(
        r.sent(OUT).is_empty(),
        "nothing is written before TCP is up"
    );
}

#[test]
fn idle_event4_passive_start_enters_active_without_dialling() {
    let mut r = Remote::new(config().with_passive(true));
    r.start();
    assert_eq!(r.peer.state(), StateKind::Active);
    assert!(!r.take_dial(), "a passive peer never dials");
    assert_eq!(r.peer.poll_timeout(), None);
    r.advance(secs(3600));
    assert!(!r.take_dial());
    // The remote connects: our OPEN goes out at once (Event 17).
    let open = r.reach_open_sent_in();
    assert!(open.is_open());
    assert_eq!(r.state(IN), Some(StateKind::OpenSent));
}

#[test]
fn idle_refuses_connections_and_ignores_input_until_started() {
    let mut r = Remote::new(config());
    assert_eq!(r.accept(), Err(Rejected::NotStarted));
    assert_eq!(r.events(), vec![Event::InboundRejected]);
    // Messages, errors and stops on a connection we do not have: nothing.
    r.send(OUT, &keepalive());
    r.send(OUT, &remote_open(90));
    r.peer.handle_error(
        r.now,
        OUT,
        &corebgp_core::wire::Notification::new(NotificationCode::HOLD_TIMER_EXPIRED),
    );
    r.peer.stop(r.now, CeaseSubcode::AdministrativeShutdown);
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.peer.state(), StateKind::Idle);
    assert!(!r.wants_close(OUT));
}

// ------------------------------------------------------------- Connect ----

#[test]
fn connect_event16_tcp_up_sends_open_with_our_fields_and_4_minute_hold() {
    let mut r = Remote::new(config());
    let open = r.reach_open_sent_out();
    match &open {
        Msg::Open {
            my_as,
            hold,
            id,
            caps,
        } => {
            assert_eq!(u32::from(*my_as), LOCAL_AS);
            assert_eq!(*hold, 90);
            assert_eq!(*id, LOCAL_ID);
            // RFC 6793: 4-octet AS capability first, then the plugin's.
            assert_eq!(caps[0], (65, LOCAL_AS.to_be_bytes().to_vec()));
            assert_eq!(caps[1], (1, vec![0, 1, 0, 1]));
            assert_eq!(caps[2], (2, vec![]));
            assert_eq!(caps.len(), 3);
        }
        m => panic!("not an OPEN: {m:?}"),
    }
    assert_eq!(r.hooks.capability_calls, 1);
    // RFC 4271 §8.2.2 Connect Event 16: ConnectRetry stopped; OpenSent's
    // HoldTimer is "a large value" (4 minutes).
    assert_eq!(r.peer.poll_timeout(), Some(at(240)));
}

#[test]
fn connect_four_octet_local_as_sends_as_trans_rfc6793_4_1() {
    let mut r = Remote::new(config_for(4_200_000_000, REMOTE_AS, LOCAL_ID));
    let open = r.reach_open_sent_out();
    let Msg::Open { my_as, .. } = &open else {
        panic!()
    };
    assert_eq!(*my_as, corebgp_core::wire::AS_TRANS);
    assert_eq!(open.cap(65), Some(&4_200_000_000u32.to_be_bytes()[..]));
}

#[test]
fn connect_event9_connect_retry_expiry_redials_and_restarts_the_timer() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.advance(secs(4));
    assert!(!r.take_dial());
    r.advance(secs(1));
    assert_eq!(r.now, at(5));
    assert!(
        r.take_dial(),
        "ConnectRetry expiry drops the attempt and dials again"
    );
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert_eq!(r.peer.poll_timeout(), Some(at(10)));
    r.advance(secs(5));
    assert!(r.take_dial());
}

#[test]
fn connect_event18_tcp_fails_goes_idle_then_retries_after_idle_hold() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.advance(secs(1));
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(
        r.sent(OUT).is_empty(),
        "no NOTIFICATION without a connection"
    );
    // Idle hold (5 s) before the next attempt; no damping for a TCP failure.
    assert_eq!(r.peer.poll_timeout(), Some(at(6)));
    r.advance_to(at(6));
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert!(r.take_dial());
    assert!(r.accept().is_ok(), "no hold-down after a TCP failure");
}

#[test]
fn connect_event2_manual_stop_drops_the_attempt_silently() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.peer.stop(r.now, CeaseSubcode::AdministrativeShutdown);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.sent(OUT).is_empty());
    assert!(r.wants_close(OUT), "the pending dial must be cancelled");
    assert!(r.close_if_asked(OUT));
    r.advance(secs(600));
    assert!(!r.take_dial(), "a stopped peer stays down");
    assert_eq!(r.peer.poll_timeout(), None);
}

#[test]
fn connect_event12_delay_open_holds_our_open_until_it_expires() {
    let mut r = Remote::new(config().with_delay_open(Some(secs(3))));
    r.start();
    assert!(r.take_dial());
    r.advance(secs(1));
    r.connected();
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert!(r.sent(OUT).is_empty(), "DelayOpen: no OPEN yet");
    // ConnectRetry stopped, DelayOpenTimer runs (RFC 4271 §8.2.2 Connect,
    // Event 16 with DelayOpen).
    assert_eq!(r.peer.poll_timeout(), Some(at(4)));
    r.advance_to(at(4));
    let s = r.sent(OUT);
    assert_eq!(s.len(), 1);
    assert!(s[0].is_open());
    assert_eq!(r.state(OUT), Some(StateKind::OpenSent));
    assert_eq!(r.peer.poll_timeout(), Some(at(4 + 240)));
}

#[test]
fn connect_event20_open_while_delay_open_runs_answers_open_and_keepalive() {
    let mut r = Remote::new(config().with_delay_open(Some(secs(10))));
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.send(OUT, &remote_open(90));
    let s = r.sent(OUT);
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(s[0].is_open());
    assert_eq!(s[1], Msg::Keepalive);
    assert_eq!(r.state(OUT), Some(StateKind::OpenConfirm));
    // The DelayOpen timer is gone: the next deadline is the keepalive (30 s).
    assert_eq!(r.peer.poll_timeout(), Some(at(30)));
    r.send(OUT, &keepalive());
    assert_eq!(r.peer.established(), Some(OUT));
}

#[test]
fn connect_event18_tcp_fails_while_delay_open_runs_goes_active() {
    let mut r = Remote::new(config().with_delay_open(Some(secs(10))));
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.advance(secs(2));
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Active));
    // ConnectRetry restarted; on expiry Active → Connect with a dial.
    assert_eq!(r.peer.poll_timeout(), Some(at(7)));
    r.advance_to(at(7));
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert!(r.take_dial());
}

#[test]
fn connect_event24_25_notification_while_delay_open_runs_goes_idle() {
    let mut r = Remote::new(config().with_delay_open(Some(secs(10))));
    r.start();
    assert!(r.take_dial());
    r.connected();
    let got = r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::ConnectionRejected),
            &[],
        ),
    );
    assert_eq!(got, vec![Got::Notification(Msg::n(6, 5, &[]))]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.sent(OUT).is_empty(), "no answer to a NOTIFICATION");
    assert!(r.wants_close(OUT));
}

#[test]
fn connect_keepalive_while_delay_open_runs_drops_the_connection_and_idle() {
    // RFC 4271 §8.2.2 Connect, "any other event" (Event 26): drop the
    // connection, Idle. No OPEN was sent, so no NOTIFICATION either
    // (SendNOTIFICATIONwithoutOPEN is off).
    let mut r = Remote::new(config().with_delay_open(Some(secs(10))));
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.send(OUT, &keepalive());
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.wants_close(OUT));
}

// -------------------------------------------------------------- Active ----

#[test]
fn active_event17_delay_open_on_an_accepted_connection() {
    let mut r = Remote::new(config().with_passive(true).with_delay_open(Some(secs(5))));
    r.start();
    r.accept().expect("accepted");
    assert_eq!(r.state(IN), Some(StateKind::Active));
    assert!(r.sent(IN).is_empty());
    assert_eq!(r.peer.poll_timeout(), Some(at(5)));
    r.advance_to(at(5));
    let s = r.sent(IN);
    assert_eq!(s.len(), 1);
    assert!(s[0].is_open());
    assert_eq!(r.state(IN), Some(StateKind::OpenSent));
}

#[test]
fn active_event20_open_while_delay_open_runs_on_inbound() {
    let mut r = Remote::new(config().with_passive(true).with_delay_open(Some(secs(5))));
    r.start();
    r.accept().expect("accepted");
    r.send(IN, &remote_open(90));
    let s = r.sent(IN);
    assert!(s[0].is_open());
    assert_eq!(s[1..], [Msg::Keepalive]);
    assert_eq!(r.state(IN), Some(StateKind::OpenConfirm));
    r.send(IN, &keepalive());
    assert_eq!(r.peer.established(), Some(IN));
}

#[test]
fn active_event18_tcp_fails_while_delay_open_runs_goes_idle_and_frees_the_slot() {
    let mut r = Remote::new(config().with_passive(true).with_delay_open(Some(secs(5))));
    r.start();
    r.accept().expect("accepted");
    r.fail(IN);
    assert_eq!(r.state(IN), None, "the inbound connection is gone");
    assert!(r.accept().is_ok(), "the next connection is accepted");
}

#[test]
fn active_event9_connect_retry_expiry_dials_and_enters_connect() {
    // The outbound FSM lands in Active after a TCP failure in OpenSent.
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.advance_to(at(10));
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Active));
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.peer.poll_timeout(), Some(at(15)));
    r.advance_to(at(15));
    assert_eq!(r.state(OUT), Some(StateKind::Connect));
    assert!(r.take_dial());
}

#[test]
fn active_event2_manual_stop_goes_idle_silently() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Active));
    r.peer.stop(r.now, CeaseSubcode::AdministrativeShutdown);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.sent(OUT).is_empty());
    r.advance(secs(60));
    assert!(!r.take_dial());
}

// ------------------------------------------------------------ OpenSent ----

#[test]
fn open_sent_event19_valid_open_sends_keepalive_and_negotiates() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.advance(secs(2));
    r.send(OUT, &remote_open(60));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    assert_eq!(r.state(OUT), Some(StateKind::OpenConfirm));
    let n = r.peer.negotiated_on(OUT).expect("negotiated");
    assert_eq!(n.peer_as, REMOTE_AS);
    assert_eq!(n.peer_id, REMOTE_ID);
    assert_eq!(n.hold_time, 60);
    assert!(n.route_refresh);
    assert!(n.four_octet_as);
    assert_eq!(r.hooks.opens_checked, vec![(REMOTE_ID, REMOTE_AS, 60)]);
    // KeepaliveTimer = 20 s, HoldTimer = 60 s from now.
    assert_eq!(r.peer.poll_timeout(), Some(at(22)));
}

#[test]
fn open_sent_event18_tcp_fails_goes_active_and_redials_after_connect_retry() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Active));
    assert!(r.sent(OUT).is_empty());
    r.advance(secs(5));
    assert!(r.take_dial());
}

#[test]
fn open_sent_event18_on_inbound_frees_the_connection_slot() {
    // An accepted connection that fails in OpenSent cannot "go Active and
    // dial" (RFC 4271 §8.2.2 OpenSent Event 18 is for the connection we
    // dial): it must end, so that the peer's next connection is accepted.
    let mut r = Remote::new(config().with_passive(true));
    r.start();
    r.reach_open_sent_in();
    r.fail(IN);
    assert_eq!(r.state(IN), None);
    r.advance(secs(30));
    assert!(
        !r.peer.link(IN).is_some_and(|l| l.take_dial()),
        "an inbound connection never dials"
    );
    assert!(r.accept().is_ok(), "the peer can connect again");
    assert_eq!(r.state(IN), Some(StateKind::OpenSent));
}

#[test]
fn open_sent_event10_hold_timer_of_4_minutes_expires_with_4_0() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.advance_to(at(239));
    assert_eq!(r.state(OUT), Some(StateKind::OpenSent));
    assert!(r.sent(OUT).is_empty());
    r.advance_to(at(240));
    assert_eq!(r.sent(OUT), vec![Msg::n(4, 0, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.wants_close(OUT));
}

#[test]
fn open_sent_unexpected_messages_are_5_1_with_the_type_rfc6608() {
    for (bytes, t) in [
        (keepalive(), KEEPALIVE_T),
        (update(), UPDATE),
        (
            route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Normal),
            ROUTE_REFRESH,
        ),
    ] {
        let mut r = Remote::new(config());
        r.reach_open_sent_out();
        let got = r.send(OUT, &bytes);
        assert!(
            got.is_empty(),
            "nothing reaches the plugin before Established"
        );
        assert_eq!(r.sent(OUT), vec![Msg::n(5, 1, &[t])], "type {t}");
        assert_eq!(r.state(OUT), Some(StateKind::Idle));
        assert!(r.wants_close(OUT));
        assert!(r.events().contains(&Event::NotificationSent {
            direction: OUT,
            code: NotificationCode::from_raw(5, 1),
        }));
    }
}

#[test]
fn open_sent_event25_notification_goes_idle_without_answer() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    let got = r.send(OUT, &notification(NotificationCode::from_raw(2, 2), &[]));
    assert_eq!(got, vec![Got::Notification(Msg::n(2, 2, &[]))]);
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.events().contains(&Event::NotificationReceived {
        direction: OUT,
        code: NotificationCode::from_raw(2, 2),
    }));
}

#[test]
fn open_sent_event2_manual_stop_sends_cease_with_the_subcode() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.peer.stop(r.now, CeaseSubcode::AdministrativeShutdown);
    assert_eq!(r.sent(OUT), vec![Msg::n(6, 2, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.wants_close(OUT));
}

#[test]
fn open_sent_event21_header_errors_are_1_x_with_rfc4271_6_1_data() {
    // Bad marker: 1/1, no data.
    let mut bad_marker = keepalive();
    bad_marker[0] = 0;
    // Length above 4096: 1/2 with the length field.
    let mut too_long = raw_msg(2, &[0; 4]);
    too_long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    // A KEEPALIVE of 20 bytes: 1/2 with the length field.
    let long_keepalive = raw_msg(4, &[0]);
    // Unknown type 9: 1/3 with the type.
    let bad_type = raw_msg(9, &[]);
    for (bytes, want) in [
        (bad_marker, Msg::n(1, 1, &[])),
        (too_long, Msg::n(1, 2, &[0x10, 0x01])),
        (long_keepalive, Msg::n(1, 2, &[0, 20])),
        (bad_type, Msg::n(1, 3, &[9])),
    ] {
        let mut r = Remote::new(config());
        r.reach_open_sent_out();
        r.send(OUT, &bytes);
        assert_eq!(r.sent(OUT), vec![want.clone()]);
        assert_eq!(r.state(OUT), Some(StateKind::Idle), "{want:?}");
        assert!(r.wants_close(OUT));
    }
}

#[test]
fn open_sent_event22_open_decode_errors() {
    // Version 3: 2/1 with the version we speak (RFC 4271 §6.2).
    let mut v3 = remote_open(90);
    v3[19] = 3;
    // Optional parameter type 1 (authentication, deprecated): 2/4.
    let bad_param = raw_msg(1, &[4, 0xfd, 0xea, 0, 90, 2, 2, 2, 2, 3, 1, 1, 0]);
    // Parameters length running past the message: 2/0.
    let bad_len = raw_msg(1, &[4, 0xfd, 0xea, 0, 90, 2, 2, 2, 2, 9, 2, 6]);
    for (bytes, want) in [
        (v3, Msg::n(2, 1, &[0, 4])),
        (bad_param, Msg::n(2, 4, &[])),
        (bad_len, Msg::n(2, 0, &[])),
    ] {
        let mut r = Remote::new(config());
        r.reach_open_sent_out();
        r.send(OUT, &bytes);
        assert_eq!(r.sent(OUT), vec![want.clone()]);
        assert_eq!(r.state(OUT), Some(StateKind::Idle));
    }
}

// --------------------------------------------------------- OpenConfirm ----

#[test]
fn open_confirm_event11_keepalive_timer_runs_and_event10_hold_expires() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    // KEEPALIVE every 30 s while we wait for the peer's.
    r.advance_to(at(30));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    r.advance_to(at(60));
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    r.advance_to(at(89));
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::OpenConfirm));
    // Hold timer: negotiated 90 s from the OPEN.
    r.advance_to(at(90));
    assert_eq!(r.sent(OUT), vec![Msg::n(4, 0, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn open_confirm_event26_keepalive_establishes() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.events();
    r.advance(secs(10));
    r.send(OUT, &keepalive());
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    let evs = r.events();
    assert!(evs.contains(&Event::Established { direction: OUT }));
    assert_eq!(
        changes(&evs),
        vec![(StateKind::OpenConfirm, StateKind::Established)]
    );
    assert!(r.sent(OUT).is_empty());
    // The hold timer restarted at the KEEPALIVE: expiry at 10 + 90.
    r.advance_to(at(99));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(at(100));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn open_confirm_unexpected_messages_are_5_2_with_the_type_rfc6608() {
    for (bytes, t) in [
        (remote_open(90), OPEN),
        (update(), UPDATE),
        (
            route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Normal),
            ROUTE_REFRESH,
        ),
    ] {
        let mut r = Remote::new(config());
        r.reach_open_confirm_out(90);
        let got = r.send(OUT, &bytes);
        assert!(got.is_empty());
        assert_eq!(r.sent(OUT), vec![Msg::n(5, 2, &[t])], "type {t}");
        assert_eq!(r.state(OUT), Some(StateKind::Idle));
        assert!(r.wants_close(OUT));
    }
}

#[test]
fn open_confirm_event24_25_notification_goes_idle() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    let got = r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            b"x",
        ),
    );
    assert_eq!(got, vec![Got::Notification(Msg::n(6, 4, b"x"))]);
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn open_confirm_event18_tcp_fails_goes_idle() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.sent(OUT).is_empty());
    // Back to Connect after the idle hold time.
    r.advance(secs(5));
    assert!(r.take_dial());
}

#[test]
fn open_confirm_event2_manual_stop_sends_cease() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.peer.stop(r.now, CeaseSubcode::PeerDeconfigured);
    assert_eq!(r.sent(OUT), vec![Msg::n(6, 3, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn open_confirm_event21_header_error() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.send(OUT, &raw_msg(7, &[]));
    assert_eq!(r.sent(OUT), vec![Msg::n(1, 3, &[7])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

// --------------------------------------------------------- Established ----

#[test]
fn established_event26_keepalive_restarts_the_hold_timer() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    let mut last = r.now;
    for _ in 0..10 {
        r.advance(secs(80));
        r.send(OUT, &keepalive());
        last = r.now;
        assert_eq!(r.state(OUT), Some(StateKind::Established));
    }
    r.advance_to(last + secs(89));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(last + secs(90));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert_eq!(r.sent(OUT).last(), Some(&Msg::n(4, 0, &[])));
}

#[test]
fn established_event27_update_is_delivered_and_restarts_the_hold_timer() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.advance(secs(80));
    let got = r.send(OUT, &update());
    assert_eq!(got, vec![Got::Update(update()[19..].to_vec())]);
    let t = r.now;
    r.advance_to(t + secs(89));
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    r.advance_to(t + secs(90));
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn established_event28_malformed_update_sections_are_3_1() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    // Withdrawn Routes Length 3 in a 4-byte body.
    let got = r.send(OUT, &raw_msg(2, &[0, 3, 0, 0]));
    assert!(got.is_empty());
    assert_eq!(r.sent(OUT), vec![Msg::n(3, 1, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.events().contains(&Event::Down {
        direction: OUT,
        reason: DownReason::NotificationSent(NotificationCode::from_raw(3, 1)),
    }));
}

#[test]
fn established_open_is_5_3_with_type_1_rfc6608() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(OUT, &remote_open(90));
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 3, &[OPEN])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn established_event25_notification_is_delivered_and_goes_idle() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.events();
    let got = r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeShutdown),
            b"bye",
        ),
    );
    assert_eq!(got, vec![Got::Notification(Msg::n(6, 2, b"bye"))]);
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.events().contains(&Event::Down {
        direction: OUT,
        reason: DownReason::NotificationReceived(NotificationCode::Cease(
            CeaseSubcode::AdministrativeShutdown
        )),
    }));
}

#[test]
fn established_event18_tcp_fails_goes_idle_and_reconnects() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.events();
    r.fail(OUT);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.events().contains(&Event::Down {
        direction: OUT,
        reason: DownReason::TransportClosed,
    }));
    assert_eq!(
        r.peer.send_update(r.now, &update()),
        Err(corebgp_core::session::SendError::NotEstablished)
    );
    r.advance(secs(5));
    assert!(r.take_dial());
}

#[test]
fn established_event2_manual_stop_sends_cease_and_stays_down() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.peer.stop(r.now, CeaseSubcode::AdministrativeShutdown);
    assert_eq!(r.sent(OUT), vec![Msg::n(6, 2, &[])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.close_if_asked(OUT));
    r.advance(secs(3600));
    assert!(!r.take_dial());
    // ManualStart again: dials at once.
    r.start();
    assert!(r.take_dial());
}

#[test]
fn established_plugin_close_with_sends_its_notification() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.peer.close_with(
        r.now,
        OUT,
        &corebgp_core::wire::Notification::with_data(NotificationCode::from_raw(3, 3), &[1]),
    );
    assert_eq!(r.sent(OUT), vec![Msg::n(3, 3, &[1])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn established_route_refresh_is_delivered_when_negotiated_rfc2918() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    let got = r.send(
        OUT,
        &route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Normal),
    );
    assert_eq!(
        got,
        vec![Got::RouteRefresh {
            afi: 1,
            safi: 1,
            subtype: 0
        }]
    );
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    assert!(r.sent(OUT).is_empty());
}

#[test]
fn established_route_refresh_ignored_when_not_negotiated_or_unknown_rfc2918_4_rfc7313_5() {
    // The remote does not advertise Route Refresh.
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(
        OUT,
        &open_bytes(
            REMOTE_AS as u16,
            90,
            REMOTE_ID,
            &[corebgp_core::wire::Capability::FourOctetAs(REMOTE_AS)],
        ),
    );
    assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
    r.send(OUT, &keepalive());
    assert_eq!(r.peer.established(), Some(OUT));
    assert!(!r.peer.negotiated().expect("negotiated").route_refresh);
    r.events();
    let got = r.send(
        OUT,
        &route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Normal),
    );
    assert!(got.is_empty());
    assert_eq!(r.events(), vec![Event::RouteRefreshIgnored]);
    assert_eq!(r.state(OUT), Some(StateKind::Established));
    assert!(r.sent(OUT).is_empty());

    // Negotiated, but a family we did not negotiate, or an unknown subtype.
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.events();
    for bytes in [
        route_refresh(AfiSafi::IPV6_UNICAST, RouteRefreshSubtype::Normal),
        route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Unknown(7)),
        // BoRR without Enhanced Route Refresh negotiated.
        route_refresh(
            AfiSafi::IPV4_UNICAST,
            RouteRefreshSubtype::BeginningOfRouteRefresh,
        ),
    ] {
        assert!(r.send(OUT, &bytes).is_empty());
        assert_eq!(r.events(), vec![Event::RouteRefreshIgnored]);
        assert_eq!(r.state(OUT), Some(StateKind::Established));
    }
    assert!(r.sent(OUT).is_empty());
}

#[test]
fn established_bad_route_refresh_length_is_7_1_with_the_message_rfc7313_5() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    let msg = raw_msg(5, &[0, 1, 1, 1, 9]);
    r.send(OUT, &msg);
    assert_eq!(r.sent(OUT), vec![Msg::n(7, 1, &msg)]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn connect_header_error_while_delay_open_runs_drops_without_notification() {
    // RFC 4271 §8.2.2 Connect, Events 21/22 with SendNOTIFICATIONwithoutOPEN
    // off: no NOTIFICATION before our OPEN; the connection is dropped and
    // the error counts for damping.
    let mut r = Remote::new(config().with_delay_open(Some(secs(10))));
    r.start();
    assert!(r.take_dial());
    r.connected();
    let mut bad = keepalive();
    bad[0] = 0;
    r.send(OUT, &bad);
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.wants_close(OUT));
}
