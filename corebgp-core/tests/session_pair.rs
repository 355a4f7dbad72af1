//! Two sessions wired back to back in memory on one simulated clock
//! (quinn-proto's `Pair` shape): establishment, keepalives for hours,
//! UPDATEs both ways, hold expiry on a frozen peer, stop and restart.

mod common;

use common::*;
use corebgp_core::session::{Event, StateKind};
use corebgp_core::wire::{CeaseSubcode, NotificationCode};

fn up(p: &Pair) -> bool {
    p.established().iter().all(Option::is_some)
}

#[test]
fn both_active_establish_one_session_on_the_higher_identifiers_connection() {
    let mut p = Pair::default_pair();
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    // Peer 1 (2.2.2.2) has the higher identifier: its dial is kept, i.e.
    // peer 1's Outbound ↔ peer 0's Inbound (RFC 4271 §6.8).
    assert_eq!(p.established(), [Some(IN), Some(OUT)]);
    assert_eq!(p.now, at(0), "no timer was needed");
    // The other connection was closed with 6/7 by both sides' arbiters.
    assert!(p.notifications_from(0).contains(&(6, 7)));
    assert!(p.notifications_from(1).contains(&(6, 7)));
    p.run_for(secs(600));
    assert_eq!(p.established(), [Some(IN), Some(OUT)]);
    assert_eq!(p.peers[0].state_of(OUT), Some(StateKind::Idle));
}

#[test]
fn active_and_passive_establish() {
    let mut p = Pair::new(
        config_for(LOCAL_AS, REMOTE_AS, LOCAL_ID),
        config_for(REMOTE_AS, LOCAL_AS, REMOTE_ID).with_passive(true),
    );
    p.start(1);
    p.run_for(secs(30));
    assert_eq!(p.established(), [None, None], "nobody dials a passive peer");
    p.start(0);
    assert!(p.run_until_cond(secs(10), up));
    assert_eq!(p.established(), [Some(OUT), Some(IN)]);
    assert!(p.notifications_from(0).is_empty());
    assert!(p.notifications_from(1).is_empty());
}

#[test]
fn passive_peer_started_late_is_reached_by_the_next_dial() {
    let mut p = Pair::new(
        config_for(LOCAL_AS, REMOTE_AS, LOCAL_ID),
        config_for(REMOTE_AS, LOCAL_AS, REMOTE_ID).with_passive(true),
    );
    p.start(0);
    p.run_for(secs(12));
    assert!(
        !p.rejected[1].is_empty(),
        "dials were refused while stopped"
    );
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    assert_eq!(p.established(), [Some(OUT), Some(IN)]);
}

#[test]
fn keepalives_keep_the_session_up_for_simulated_hours() {
    let mut p = Pair::default_pair();
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    let t0 = p.now;
    p.run_for(secs(5 * 3600));
    assert_eq!(p.established(), [Some(IN), Some(OUT)]);
    for from in 0..2 {
        assert!(p.notifications_from(from).iter().all(|n| *n == (6, 7)));
        let ka: Vec<_> = p
            .sent_by(from)
            .filter(|l| l.msg == Msg::Keepalive && l.at > t0)
            .map(|l| l.at)
            .collect();
        // One every 30 s: 600 in 5 hours.
        assert_eq!(ka.len(), 600, "peer {from}");
        for w in ka.windows(2) {
            assert_eq!(w[1].saturating_duration_since(w[0]), secs(30));
        }
    }
}

#[test]
fn hold_time_zero_pair_stays_up_without_any_message_for_hours() {
    let mut p = Pair::new(
        config_for(LOCAL_AS, REMOTE_AS, LOCAL_ID).with_hold_time(0),
        config_for(REMOTE_AS, LOCAL_AS, REMOTE_ID),
    );
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    let n = p.log.len();
    assert_eq!(p.next_deadline(), None);
    p.run_for(secs(24 * 3600));
    assert_eq!(p.log.len(), n, "not one message in 24 hours");
    assert!(up(&p));
}

#[test]
fn updates_flow_both_ways() {
    let mut p = Pair::default_pair();
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    let a = update();
    let b = update_of_len(100);
    assert_eq!(p.send_update(0, &a), Ok(IN));
    assert_eq!(p.send_update(1, &b), Ok(OUT));
    p.drive();
    let updates = |g: &[Got]| -> Vec<Got> {
        g.iter()
            .filter(|g| matches!(g, Got::Update(_)))
            .cloned()
            .collect()
    };
    assert_eq!(updates(&p.got[1]), vec![Got::Update(a[19..].to_vec())]);
    assert_eq!(updates(&p.got[0]), vec![Got::Update(b[19..].to_vec())]);
    // An UPDATE every 29 s does the KEEPALIVE's job (RFC 4271 §4.4): peer 0
    // sends no KEEPALIVE meanwhile.
    let t0 = p.now;
    for _ in 0..10 {
        p.run_for(secs(29));
        p.send_update(0, &a).expect("established");
    }
    p.drive();
    assert_eq!(updates(&p.got[1]).len(), 11);
    assert!(
        !p.sent_by(0).any(|l| l.msg == Msg::Keepalive && l.at > t0),
        "UPDATEs restart the KeepaliveTimer"
    );
    assert!(up(&p));
}

#[test]
fn a_frozen_peer_is_detected_by_hold_expiry_and_the_session_comes_back() {
    let mut p = Pair::default_pair();
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    p.run_for(secs(45));
    let last_heard = p.sent_by(1).map(|l| l.at).max().expect("peer 1 spoke");
    p.frozen[1] = true;
    assert!(p.run_until_cond(secs(200), |p| p.peers[0].established().is_none()));
    // Hold timer: exactly 90 s after the last message from peer 1.
    assert_eq!(p.now, last_heard + secs(90));
    assert!(p.events[0].contains(&Event::NotificationSent {
        direction: IN,
        code: NotificationCode::HOLD_TIMER_EXPIRED,
    }));
    assert!(p.events[0].contains(&Event::Damped {
        until: p.now + secs(60)
    }));
    // Peer 1 wakes up: it reads the 4/0 and the close.
    p.run_for(secs(5));
    p.frozen[1] = false;
    let thaw = p.now;
    assert!(p.run_until_cond(secs(600), up));
    // Both damp the 4/0 (sent or received): the next session comes after
    // the 60 s hold-down.
    // Peer 1 read the 4/0 when it thawed.
    assert!(p.notifications_from(0).contains(&(4, 0)));
    assert!(p.got[1].contains(&Got::Notification(Msg::n(4, 0, &[]))));
    assert!(p.now >= thaw + secs(55), "reconnected at {:?}", p.now);
    assert!(p.now <= thaw + secs(70), "reconnected at {:?}", p.now);
}

#[test]
fn stop_sends_cease_and_start_brings_the_session_back() {
    let mut p = Pair::default_pair();
    p.start(0);
    p.start(1);
    assert!(p.run_until_cond(secs(10), up));
    p.run_for(secs(10));
    p.peers[0].stop(p.now, CeaseSubcode::AdministrativeShutdown);
    p.drive();
    assert_eq!(p.notifications_from(0).last(), Some(&(6, 2)));
    assert_eq!(p.established(), [None, None]);
    assert_eq!(p.got[1].last(), Some(&Got::Notification(Msg::n(6, 2, &[]))));
    // Peer 1 keeps trying; peer 0 refuses while stopped.
    p.run_for(secs(60));
    assert_eq!(p.established(), [None, None]);
    assert!(!p.rejected[0].is_empty());
    p.start(0);
    assert!(p.run_until_cond(secs(30), up));
    p.run_for(secs(300));
    assert!(up(&p));
}

#[test]
fn mismatched_as_configuration_never_establishes_and_backs_off() {
    let mut p = Pair::new(
        config_for(LOCAL_AS, 65999, LOCAL_ID),
        config_for(REMOTE_AS, LOCAL_AS, REMOTE_ID),
    );
    p.start(0);
    p.start(1);
    p.run_for(secs(1800));
    assert_eq!(p.established(), [None, None]);
    assert!(p.notifications_from(0).contains(&(2, 2)));
    // RFC 4271 §8.1.1 damping on both sides (2/2 sent by one, received by
    // the other): one attempt, one step, even though both connections of
    // an attempt fail together: 60, 120, 240, 300 s, then forgotten.
    for side in 0..2 {
        let until: Vec<u64> = p.events[side]
            .iter()
            .filter_map(|e| match e {
                Event::Damped { until } => Some(until.as_millis() / 1000),
                _ => None,
            })
            .collect();
        assert_eq!(
            until[..6],
            [60, 180, 420, 720, 780, 900],
            "peer {side}: {until:?}"
        );
    }
}
