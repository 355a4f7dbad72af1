//! Connection collision detection (RFC 4271 §6.8, RFC 6286 §2.3): the
//! connection initiated by the speaker with the higher BGP Identifier is
//! kept, the other closed with Cease 6/7 (RFC 4486). Every ordering of the
//! two connections × both identifier orders, plus equal identifiers.

mod common;

use core::net::Ipv4Addr;

use common::*;
use corebgp_core::session::{Direction, Event, Rejected, SessionConfig, StateKind};

#[derive(Debug, Clone, Copy)]
enum Order {
    /// Both in OpenSent; the outbound gets the peer's OPEN first.
    OutboundConfirmsFirst,
    /// Both in OpenSent; the inbound gets the peer's OPEN first.
    InboundConfirmsFirst,
    /// The outbound is in OpenConfirm when the peer connects.
    AcceptWhileOutboundInOpenConfirm,
    /// The inbound is in OpenConfirm when our dial completes.
    DialCompletesWhileInboundInOpenConfirm,
}

const ORDERS: [Order; 4] = [
    Order::OutboundConfirmsFirst,
    Order::InboundConfirmsFirst,
    Order::AcceptWhileOutboundInOpenConfirm,
    Order::DialCompletesWhileInboundInOpenConfirm,
];

fn other(d: Direction) -> Direction {
    match d {
        OUT => IN,
        _ => OUT,
    }
}

/// Plays `order` with a remote of identifier `remote_id`; checks that
/// `keep` survives and reaches Established, and that the other connection
/// is closed with exactly Cease 6/7.
fn collide(cfg: SessionConfig, remote_id: Ipv4Addr, order: Order, keep: Direction) {
    let ctx = format!("{order:?}, remote id {remote_id}, keep {keep:?}");
    let open = open_bytes(REMOTE_AS as u16, 90, remote_id, &remote_caps(REMOTE_AS));
    let mut r = Remote::new(cfg);
    r.start();
    assert!(r.take_dial());
    // Both sides' traffic, per direction, before resolution.
    let mut seen = [Vec::new(), Vec::new()];
    let ix = |d: Direction| usize::from(d == IN);
    match order {
        Order::OutboundConfirmsFirst | Order::InboundConfirmsFirst => {
            r.connected();
            r.accept().expect("accepted");
            let first = match order {
                Order::OutboundConfirmsFirst => OUT,
                _ => IN,
            };
            r.send(first, &open);
        }
        Order::AcceptWhileOutboundInOpenConfirm => {
            r.connected();
            r.send(OUT, &open);
            seen[0].extend(r.sent(OUT));
            assert_eq!(r.state(OUT), Some(StateKind::OpenConfirm), "{ctx}");
            r.accept().expect("accepted");
        }
        Order::DialCompletesWhileInboundInOpenConfirm => {
            r.accept().expect("accepted");
            r.send(IN, &open);
            seen[1].extend(r.sent(IN));
            assert_eq!(r.state(IN), Some(StateKind::OpenConfirm), "{ctx}");
            r.connected();
        }
    }
    for d in [OUT, IN] {
        seen[ix(d)].extend(r.sent(d));
    }
    let lose = other(keep);
    // The loser: Cease 6/7 (not CoreBGP's 6/0), no data, closed.
    assert_eq!(
        seen[ix(lose)].last(),
        Some(&Msg::n(6, 7, &[])),
        "{ctx}: {:?}",
        seen
    );
    assert_eq!(r.state(lose), Some(StateKind::Idle), "{ctx}");
    assert!(r.wants_close(lose), "{ctx}");
    assert!(
        r.events()
            .contains(&Event::CollisionResolved { closed: lose }),
        "{ctx}"
    );
    // The winner sent no NOTIFICATION and is not closing.
    assert!(
        !seen[ix(keep)]
            .iter()
            .any(|m| matches!(m, Msg::Notification { .. })),
        "{ctx}: {seen:?}"
    );
    assert!(!r.wants_close(keep), "{ctx}");
    r.close_if_asked(lose);
    // Finish the winner.
    if r.state(keep) == Some(StateKind::OpenSent) {
        r.send(keep, &open);
        assert_eq!(r.sent(keep), vec![Msg::Keepalive], "{ctx}");
    }
    assert_eq!(r.state(keep), Some(StateKind::OpenConfirm), "{ctx}");
    r.send(keep, &keepalive());
    assert_eq!(r.peer.established(), Some(keep), "{ctx}");
    // The closed outbound side does not dial again while the winner is up.
    r.advance(secs(60));
    r.send(keep, &keepalive());
    if keep == IN {
        assert!(
            !r.take_dial(),
            "{ctx}: no dial while inbound is Established"
        );
    }
    assert_eq!(r.peer.established(), Some(keep), "{ctx}");
}

#[test]
fn local_identifier_higher_keeps_the_outbound_connection_rfc4271_6_8() {
    for order in ORDERS {
        collide(config(), Ipv4Addr::new(1, 0, 0, 1), order, OUT);
    }
}

#[test]
fn remote_identifier_higher_keeps_the_inbound_connection_rfc4271_6_8() {
    // CoreBGP keeps the outbound one when the inbound reaches OpenConfirm
    // second; the RFC keeps the connection the higher identifier opened.
    for order in ORDERS {
        collide(config(), REMOTE_ID, order, IN);
    }
}

#[test]
fn identifiers_compare_as_unsigned_32_bit_numbers() {
    // 128.0.0.1 > 1.1.1.1 although its top bit is set.
    for order in ORDERS {
        collide(config(), Ipv4Addr::new(128, 0, 0, 1), order, IN);
    }
    let cfg = config_for(LOCAL_AS, REMOTE_AS, Ipv4Addr::new(200, 0, 0, 1));
    for order in ORDERS {
        collide(cfg, Ipv4Addr::new(127, 255, 255, 255), order, OUT);
    }
}

#[test]
fn equal_identifiers_keep_the_connection_of_the_higher_as_rfc6286_2_3() {
    // Same identifier (allowed for eBGP); remote AS 65002 > ours 65001:
    // the remote's connection (inbound) is kept.
    for order in ORDERS {
        collide(config(), LOCAL_ID, order, IN);
    }
    // Our AS 65003 > 65002: ours (outbound) is kept.
    let cfg = config_for(65003, REMOTE_AS, LOCAL_ID);
    for order in ORDERS {
        collide(cfg, LOCAL_ID, order, OUT);
    }
}

#[test]
fn a_connection_arriving_while_established_is_refused_rfc4271_6_8() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.events();
    assert_eq!(r.accept(), Err(Rejected::AlreadyEstablished));
    assert_eq!(r.events(), vec![Event::InboundRejected]);
    assert_eq!(r.state(IN), None);
    assert_eq!(r.peer.established(), Some(OUT));
    assert!(
        r.sent(OUT).is_empty(),
        "the Established session is untouched"
    );

    // Established inbound: a second inbound is refused, and our pending
    // dial is dropped silently (no OPEN was sent on it).
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.reach_open_sent_in();
    r.send(IN, &remote_open(90));
    assert_eq!(r.sent(IN), vec![Msg::Keepalive]);
    r.send(IN, &keepalive());
    assert_eq!(r.peer.established(), Some(IN));
    assert_eq!(r.state(OUT), Some(StateKind::Idle), "the dial is abandoned");
    assert!(r.sent(OUT).is_empty());
    assert!(r.close_if_asked(OUT));
    assert_eq!(r.accept(), Err(Rejected::Duplicate));
    r.advance(secs(25));
    r.send(IN, &keepalive());
    assert!(!r.take_dial());
}

#[test]
fn after_the_established_winner_goes_down_the_outbound_restarts() {
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.reach_open_sent_in();
    r.send(IN, &remote_open(90));
    r.send(IN, &keepalive());
    assert_eq!(r.peer.established(), Some(IN));
    r.close_if_asked(OUT);
    r.advance(secs(30));
    r.sent(IN);
    r.fail(IN);
    assert_eq!(r.state(IN), None);
    r.advance(secs(5));
    assert!(r.take_dial(), "the outbound FSM takes over again");
}

#[test]
fn no_redial_while_the_inbound_winner_is_under_way() {
    // The remote's identifier is higher: the inbound connection wins and the
    // outbound is closed with 6/7. While the winner is in OpenConfirm, the
    // outbound FSM must not dial again (that only makes another collision
    // for the arbiter to undo); once the winner is gone, it does.
    let mut r = Remote::new(config());
    r.start();
    assert!(r.take_dial());
    r.connected();
    r.accept().expect("accepted");
    r.send(
        IN,
        &open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &remote_caps(REMOTE_AS)),
    );
    assert_eq!(r.state(IN), Some(StateKind::OpenConfirm));
    assert_eq!(r.state(OUT), Some(StateKind::Idle), "the outbound lost");
    r.sent(OUT);
    assert!(r.close_if_asked(OUT));
    r.advance(secs(60));
    assert!(
        !r.take_dial(),
        "no dial while the inbound winner is in OpenConfirm"
    );
    r.sent(IN);
    r.fail(IN);
    r.advance(secs(5));
    assert!(
        r.take_dial(),
        "the outbound FSM takes over once the winner is gone"
    );
}
