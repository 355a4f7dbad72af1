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

// ---------------------------------------------------------------------------
// Every interleaving of a two-dial collision, between two peers.
//
// A (peer 0, identifier 1.1.1.1) and B (peer 1, 2.2.2.2) both dial. X is
// A's dial (A Outbound, B Inbound), Y is B's (B Outbound, A Inbound); RFC
// 4271 §6.8 keeps Y, the connection of the higher identifier. X comes up at
// once; Y's handshake is held, and its two ends happen when the script says:
// B's SYN reaching A (A accepts Y, answering with its OPEN) and the
// handshake completing at B (B sends its OPEN on Y). Each message on X is
// delivered when the script says, one at a time, in each direction: A's
// OPEN then KEEPALIVE (or Cease) to B, B's OPEN then KEEPALIVE (or Cease)
// to A. Every order of those six steps is played; what is still in flight
// afterwards goes both ways in lockstep.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// The next message A wrote on X reaches B.
    XtoB,
    /// The next message B wrote on X reaches A.
    XtoA,
    /// B's dial (Y) reaches A, which accepts it.
    AcceptY,
    /// Y's handshake completes at B.
    ConnectY,
}

/// Every distinct order of two XtoB, two XtoA, AcceptY and ConnectY, with
/// AcceptY first of the two.
fn scripts() -> Vec<Vec<Act>> {
    fn go(left: &mut Vec<Act>, cur: &mut Vec<Act>, out: &mut Vec<Vec<Act>>) {
        if left.is_empty() {
            out.push(cur.clone());
            return;
        }
        let mut tried = Vec::new();
        for i in 0..left.len() {
            let a = left[i];
            if tried.contains(&a) || (a == Act::ConnectY && left.contains(&Act::AcceptY)) {
                continue;
            }
            tried.push(a);
            left.remove(i);
            cur.push(a);
            go(left, cur, out);
            cur.pop();
            left.insert(i, a);
        }
    }
    let mut out = Vec::new();
    let mut left = vec![
        Act::XtoB,
        Act::XtoB,
        Act::XtoA,
        Act::XtoA,
        Act::AcceptY,
        Act::ConnectY,
    ];
    go(&mut left, &mut Vec::new(), &mut out);
    out
}

/// How a collision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A reached Established on X before Y reached it: A refused Y, X is
    /// kept (§6.8: a connection colliding with an Established one is
    /// closed), no NOTIFICATION at all.
    XKept,
    /// Both arbiters kept Y and closed X with 6/7; no session went down.
    YKept,
    /// B reached Established on X (A's KEEPALIVE arrived) but A, still in
    /// OpenConfirm there, met Y first and closed X as §6.8 says: B's
    /// session went down once, and the redial settled on one session.
    Flap,
}

/// What one script did.
struct Played {
    outcome: Outcome,
    /// What A had received from B (direction at A, message) when its
    /// arbiter decided, if it decided during the script.
    a_saw: Option<Vec<(Direction, Msg)>>,
}

fn down_count(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Down { .. }))
        .count()
}

/// NOTIFICATIONs the peers sent, from their events, as (sender, the
/// sender's direction, code, subcode). (Not from what was delivered: a
/// Cease written as both ends close is never read.)
fn notifications(events: &[Vec<Event>; 2]) -> Vec<(usize, Direction, u8, u8)> {
    (0..2)
        .flat_map(|p| {
            events[p].iter().filter_map(move |e| match *e {
                Event::NotificationSent { direction, code } => {
                    Some((p, direction, code.code(), code.subcode()))
                }
                _ => None,
            })
        })
        .collect()
}

fn play(script: &[Act]) -> Played {
    let ctx = format!("{script:?}");
    let mut p = Pair::default_pair();
    p.manual = true;
    p.hold_dial = [false, true];
    p.start(0);
    p.start(1);
    p.drive();
    assert_eq!(p.held[1], Held::Requested, "{ctx}: B's dial waits");
    assert_eq!(p.peers[0].state_of(OUT), Some(StateKind::OpenSent), "{ctx}");
    assert_eq!(p.peers[1].state_of(IN), Some(StateKind::OpenSent), "{ctx}");

    let a_decided = |p: &Pair| p.events[0].contains(&Event::CollisionResolved { closed: OUT });
    let mut a_saw = None;
    for &act in script {
        let before = a_decided(&p);
        match act {
            Act::XtoB => {
                p.deliver_next(0, OUT);
            }
            Act::XtoA => {
                p.deliver_next(1, IN);
            }
            // B gave its dial up meanwhile (X is Established at B): the SYN
            // never arrives.
            Act::AcceptY if p.held[1] == Held::Requested => {
                let r = p.accept_dial(1);
                if p.peers[0].state_of(OUT) == Some(StateKind::Established) {
                    assert_eq!(r, Err(Rejected::AlreadyEstablished), "{ctx}");
                }
            }
            Act::ConnectY if p.held[1] == Held::Accepted => p.connect_dial(1),
            Act::AcceptY | Act::ConnectY => {}
        }
        if !before && a_decided(&p) {
            a_saw = Some(
                p.log
                    .iter()
                    .filter(|l| l.from == 1)
                    .map(|l| (if l.dir == OUT { IN } else { OUT }, l.msg.clone()))
                    .collect(),
            );
        }
    }
    // The rest of round one, in lockstep, at the same instant.
    p.manual = false;
    p.hold_dial = [false, false];
    if p.held[1] == Held::Requested {
        let _ = p.accept_dial(1);
    }
    if p.held[1] == Held::Accepted {
        p.connect_dial(1);
    }
    p.drive();
    let round_one = [p.events[0].clone(), p.events[1].clone()];

    // A's arbiter, when it closed X, had X in OpenSent or OpenConfirm and
    // Y in OpenSent or OpenConfirm: §6.8 applies and, B's identifier being
    // higher, closes X. It never closes Y.
    if let Some(i) = round_one[0]
        .iter()
        .position(|e| *e == Event::CollisionResolved { closed: OUT })
    {
        let last = |dir: Direction| {
            round_one[0][..i].iter().rev().find_map(|e| match *e {
                Event::StateChanged { direction, to, .. } if direction == dir => Some(to),
                _ => None,
            })
        };
        for (dir, s) in [(OUT, last(OUT)), (IN, last(IN))] {
            assert!(
                matches!(s, Some(StateKind::OpenSent | StateKind::OpenConfirm)),
                "{ctx}: A decided with {dir:?} in {s:?}"
            );
        }
    }
    assert!(
        !round_one[0].contains(&Event::CollisionResolved { closed: IN }),
        "{ctx}: A closed the connection of the higher identifier"
    );

    // Settle, then one session stays up, on one connection both agree on.
    p.run_for(secs(120));
    let downs = [down_count(&p.events[0]), down_count(&p.events[1])];
    let est = p.established();
    p.run_for(secs(600));
    assert_eq!(p.established(), est, "{ctx}: the session moved");
    assert_eq!(
        [down_count(&p.events[0]), down_count(&p.events[1])],
        downs,
        "{ctx}: a session went down after settling"
    );
    let surviving = match est {
        [Some(OUT), Some(IN)] => OUT, // X
        [Some(IN), Some(OUT)] => IN,  // Y
        other => panic!("{ctx}: no single session: {other:?}"),
    };

    // Round one's NOTIFICATIONs are collision Ceases only.
    let n1 = notifications(&round_one);
    for n in &n1 {
        assert_eq!((n.2, n.3), (6, 7), "{ctx}: {n1:?}");
    }
    let b_est_on_x = round_one[1].contains(&Event::Established { direction: IN });
    let a_closed_x = round_one[0].contains(&Event::CollisionResolved { closed: OUT });
    let outcome = if surviving == OUT {
        Outcome::XKept
    } else if b_est_on_x {
        Outcome::Flap
    } else {
        Outcome::YKept
    };
    match outcome {
        Outcome::XKept => {
            assert!(n1.is_empty(), "{ctx}: {n1:?}");
            assert_eq!(downs, [0, 0], "{ctx}");
            assert!(!a_closed_x, "{ctx}");
        }
        Outcome::YKept => {
            // Each side closed X itself (6/7) unless the other's 6/7 closed
            // it first; nothing is sent on Y.
            assert!(!n1.is_empty(), "{ctx}");
            for n in &n1 {
                assert!(
                    matches!((n.0, n.1), (0, OUT) | (1, IN)),
                    "{ctx}: a Cease not on X: {n1:?}"
                );
            }
            assert_eq!(downs, [0, 0], "{ctx}: no session went down");
        }
        Outcome::Flap => {
            // A closed X with 6/7 (B's Established session); B, Established
            // on X, closed Y: with 6/7 if its OPEN was out, silently if its
            // dial had not completed. Exactly one flap, B's, from A's 6/7.
            assert!(a_closed_x, "{ctx}");
            assert!(n1.contains(&(0, OUT, 6, 7)), "{ctx}: {n1:?}");
            for n in &n1 {
                assert!(matches!((n.0, n.1), (0, OUT) | (1, OUT)), "{ctx}: {n1:?}");
            }
            assert_eq!(downs, [0, 1], "{ctx}: one flap, at B");
            assert!(
                round_one[1].contains(&Event::Down {
                    direction: IN,
                    reason: corebgp_core::session::DownReason::NotificationReceived(
                        corebgp_core::wire::NotificationCode::Cease(
                            corebgp_core::wire::CeaseSubcode::ConnectionCollisionResolution
                        )
                    ),
                }),
                "{ctx}: B's session went down to A's 6/7"
            );
        }
    }
    Played { outcome, a_saw }
}

#[test]
fn every_interleaving_of_a_two_dial_collision_ends_as_rfc4271_6_8_allows() {
    let scripts = scripts();
    assert_eq!(scripts.len(), 90);
    let played: Vec<(Vec<Act>, Played)> =
        scripts.into_iter().map(|s| (s.clone(), play(&s))).collect();
    let count = |o: Outcome| played.iter().filter(|(_, p)| p.outcome == o).count();
    // All three legal outcomes occur, and the flap only where B had reached
    // Established on X (checked in `play`).
    assert!(count(Outcome::XKept) > 0);
    assert!(count(Outcome::YKept) > 0);
    assert!(count(Outcome::Flap) > 0);
    // The flap cannot be avoided without breaking §6.8: whenever A closed X
    // and B's session flapped, there is an interleaving in which A had
    // received exactly the same from B when it decided and no session
    // flapped. A's decision depends only on what it received, so keeping
    // X (not what §6.8 says) to spare the one would have left the other
    // with A keeping X while B keeps Y: no session at all until both
    // notice.
    let mut compared = 0;
    for (script, p) in &played {
        if p.outcome != Outcome::Flap {
            continue;
        }
        // (Decided in the lockstep rest of the script: not compared.)
        let Some(saw) = &p.a_saw else { continue };
        compared += 1;
        assert!(
            played
                .iter()
                .any(|(_, q)| q.outcome == Outcome::YKept && q.a_saw.as_ref() == Some(saw)),
            "{script:?}: A could have told the flap apart from {saw:?}"
        );
    }
    assert!(compared > 0, "no flap decided within a script");
    eprintln!(
        "collision interleavings ({compared} flaps compared): {} X kept, {} Y kept, {} with the one flap",
        count(Outcome::XKept),
        count(Outcome::YKept),
        count(Outcome::Flap)
    );
}

#[test]
fn opens_crossing_on_both_connections_in_any_order_keep_the_higher_identifier_dial() {
    // Both connections are up before any OPEN arrives; the four OPENs
    // (X to A, X to B, Y to A, Y to B) are delivered in each of the 24
    // orders.
    // Each arbiter decides on the first OPEN it receives (the peer's
    // identifier is then known): both close X with 6/7, Y is kept, nothing
    // goes down.
    let deliveries: [(usize, Direction); 4] = [(1, IN), (0, OUT), (1, OUT), (0, IN)];
    let mut orders = Vec::new();
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..4 {
                for d in 0..4 {
                    let o = [a, b, c, d];
                    if (0..4).all(|i| o.contains(&i)) {
                        orders.push(o);
                    }
                }
            }
        }
    }
    assert_eq!(orders.len(), 24);
    for order in orders {
        let ctx = format!("{order:?}");
        let mut p = Pair::default_pair();
        p.manual = true;
        p.start(0);
        p.start(1);
        p.drive();
        for i in order {
            let (from, dir) = deliveries[i];
            // An OPEN towards a connection its receiver already closed
            // (its arbiter decided on the other one) is not read.
            let (to, to_dir) = (1 - from, if dir == OUT { IN } else { OUT });
            let open = p.peers[to]
                .state_of(to_dir)
                .is_some_and(|s| s != StateKind::Idle);
            let m = p.deliver_next(from, dir);
            if open {
                assert!(m.as_ref().is_some_and(Msg::is_open), "{ctx}: {m:?}");
            } else {
                assert_eq!(m, None, "{ctx}");
            }
        }
        // Both decided on their first OPEN: 6/7 on X from each, nothing
        // on Y (its OPENs delivered, its KEEPALIVEs in flight).
        assert_eq!(
            notifications(&p.events),
            vec![(0, OUT, 6, 7), (1, IN, 6, 7)],
            "{ctx}"
        );
        assert_eq!(p.peers[0].state_of(OUT), Some(StateKind::Idle), "{ctx}");
        assert!(
            matches!(p.peers[1].state_of(IN), None | Some(StateKind::Idle)),
            "{ctx}"
        );
        assert_eq!(p.in_flight(0, IN), vec![Msg::Keepalive], "{ctx}");
        assert_eq!(p.in_flight(1, OUT), vec![Msg::Keepalive], "{ctx}");
        p.manual = false;
        p.run_for(secs(300));
        assert_eq!(p.established(), [Some(IN), Some(OUT)], "{ctx}");
        assert_eq!(
            down_count(&p.events[0]) + down_count(&p.events[1]),
            0,
            "{ctx}"
        );
        assert_eq!(notifications(&p.events).len(), 2, "{ctx}: nothing more");
    }
}
