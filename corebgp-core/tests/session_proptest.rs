//! Random input sequences to one `Peer`: it never panics, what it writes
//! always frames and decodes, at most one connection is Established, and
//! `poll_timeout` is never in the past after `handle_timeout`.

mod common;

use common::*;
use corebgp_core::session::{Direction, SendError, StateKind};
use corebgp_core::wire::{AfiSafi, CeaseSubcode, NotificationCode, RouteRefreshSubtype};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Start,
    Stop(u8),
    Advance(u64),
    Connected,
    DialFails,
    Accept,
    Fail(bool),
    Close(bool),
    Send(bool, u8),
    Busy(bool, bool),
    Blocked(bool, bool),
    SendUpdate(u16),
    CloseWith(bool),
}

fn dir(inbound: bool) -> Direction {
    if inbound { IN } else { OUT }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Start),
        1 => (0u8..11).prop_map(Op::Stop),
        4 => (0u64..400_000).prop_map(Op::Advance),
        2 => Just(Op::Connected),
        1 => Just(Op::DialFails),
        2 => Just(Op::Accept),
        1 => any::<bool>().prop_map(Op::Fail),
        2 => any::<bool>().prop_map(Op::Close),
        8 => (any::<bool>(), 0u8..14).prop_map(|(d, m)| Op::Send(d, m)),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(d, b)| Op::Busy(d, b)),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(d, b)| Op::Blocked(d, b)),
        1 => (23u16..5000).prop_map(Op::SendUpdate),
        1 => any::<bool>().prop_map(Op::CloseWith),
    ]
}

/// A message the remote might send.
fn message(m: u8) -> Vec<u8> {
    match m {
        0 => remote_open(90),
        1 => remote_open(0),
        2 => remote_open(3),
        3 => remote_open(1),
        4 => keepalive(),
        5 => update(),
        6 => notification(NotificationCode::from_raw(3, 1), &[]),
        7 => notification(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[],
        ),
        8 => route_refresh(AfiSafi::IPV4_UNICAST, RouteRefreshSubtype::Normal),
        9 => route_refresh(AfiSafi::IPV6_UNICAST, RouteRefreshSubtype::Unknown(9)),
        10 => raw_msg(9, &[]),
        11 => open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &[]),
        12 => update_of_len(4097),
        _ => {
            let mut k = keepalive();
            k[3] = 0;
            k
        }
    }
}

fn check(r: &mut Remote) {
    let both =
        r.state(OUT) == Some(StateKind::Established) && r.state(IN) == Some(StateKind::Established);
    assert!(!both, "two Established connections");
    if r.peer.established().is_some() {
        assert!(r.peer.negotiated().is_some());
    } else {
        assert_eq!(
            r.peer.send_update(r.now, &update()),
            Err(SendError::NotEstablished)
        );
    }
    if let Some(t) = r.peer.poll_timeout() {
        assert!(t >= r.now, "deadline {t:?} before now {:?}", r.now);
    }
    // An accepted connection never asks to dial.
    assert!(!r.peer.link(IN).is_some_and(|l| l.take_dial()));
    // Everything written decodes (`sent` panics otherwise).
    r.sent(OUT);
    r.sent(IN);
    r.events();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_inputs_keep_the_invariants(
        passive in any::<bool>(),
        delay in prop_oneof![Just(None), (1u64..20).prop_map(|s| Some(secs(s)))],
        hold in prop_oneof![Just(0u16), Just(3u16), Just(90u16)],
        ext in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut r = Remote::new(
            config()
                .with_passive(passive)
                .with_delay_open(delay)
                .with_hold_time(hold)
                .with_extended_messages(ext),
        );
        for op in ops {
            match op {
                Op::Start => r.start(),
                Op::Stop(s) => r.peer.stop(r.now, CeaseSubcode::from_raw(s)),
                Op::Advance(ms) => r.advance(core::time::Duration::from_millis(ms)),
                Op::Connected => {
                    if r.take_dial() {
                        r.connected();
                    }
                }
                Op::DialFails => {
                    if r.take_dial() {
                        r.fail(OUT);
                    }
                }
                Op::Accept => {
                    let _ = r.accept();
                }
                Op::Fail(d) => r.fail(dir(d)),
                Op::Close(d) => {
                    // Write what is pending, then close as asked.
                    r.sent(dir(d));
                    r.close_if_asked(dir(d));
                }
                Op::Send(d, m) => {
                    r.send(dir(d), &message(m));
                }
                Op::Busy(d, b) => r.peer.set_busy(r.now, dir(d), b),
                Op::Blocked(d, b) => {
                    let now = r.now;
                    if let Some(l) = r.peer.link(dir(d)) {
                        l.set_blocked(b.then_some(now));
                    }
                }
                Op::SendUpdate(len) => {
                    let res = r.peer.send_update(r.now, &update_of_len(usize::from(len)));
                    if let Ok(d) = res {
                        prop_assert_eq!(r.peer.established(), Some(d));
                        let max = r.peer.negotiated().map(|n| n.max_message_len());
                        prop_assert!(Some(usize::from(len)) <= max);
                    }
                }
                Op::CloseWith(d) => r.peer.close_with(
                    r.now,
                    dir(d),
                    &corebgp_core::wire::Notification::new(NotificationCode::from_raw(6, 1)),
                ),
            }
            check(&mut r);
        }
    }
}
