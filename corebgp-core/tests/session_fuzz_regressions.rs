//! What the `session` and `driver` fuzz targets (corebgp-core/fuzz) found,
//! each kept as the plain scenario it reduces to.

mod common;

use common::*;
use corebgp_core::session::StateKind;

/// An UPDATE whose Withdrawn Routes Length overruns the message: a decoding
/// error (3/1 once Established).
fn malformed_update() -> Vec<u8> {
    raw_msg(2, &[0xbb; 40])
}

/// A BoRR one byte too long (7/1 once Established, RFC 7313 §5).
fn malformed_route_refresh() -> Vec<u8> {
    raw_msg(5, &[0, 1, 1, 1, 0])
}

/// An OPEN of version 3: a decoding error (2/1 in OpenSent).
fn malformed_open() -> Vec<u8> {
    let mut o = remote_open(90);
    o[19] = 3;
    o
}

// Found by the session target: a malformed UPDATE in OpenSent was answered
// with the UPDATE error 3/1. RFC 4271 §8.2.2 OpenSent lists UpdateMsgErr
// (Event 28) among "any other event": an FSM error, 5/1 with the type as
// data (RFC 6608 §3, §4).
#[test]
fn fuzz_malformed_update_in_open_sent_is_fsm_error_5_1() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(OUT, &malformed_update());
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 1, &[2])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    assert!(r.wants_close(OUT));
}

// The same for OpenConfirm (§8.2.2 OpenConfirm, Event 28): 5/2.
#[test]
fn fuzz_malformed_update_in_open_confirm_is_fsm_error_5_2() {
    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.send(OUT, &malformed_update());
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 2, &[2])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

// A ROUTE-REFRESH is no more expected before Established when it is
// malformed: 5/1 and 5/2 with type 5, not 7/1.
#[test]
fn fuzz_malformed_route_refresh_before_established_is_an_fsm_error() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(OUT, &malformed_route_refresh());
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 1, &[5])]);

    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.send(OUT, &malformed_route_refresh());
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 2, &[5])]);

    // Once Established it is the ROUTE-REFRESH error of RFC 7313 §5.
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(OUT, &malformed_route_refresh());
    let sent = r.sent(OUT);
    assert!(
        matches!(
            sent.last(),
            Some(Msg::Notification {
                code: 7,
                subcode: 1,
                ..
            })
        ),
        "{sent:?}"
    );
}

// An OPEN in Established is 5/3 (RFC 6608 §3) whether or not it decodes:
// RFC 4271 §8.2.2 Established lists OpenMsgErr (Event 22) among "any other
// event". It was answered with the OPEN error 2/1.
#[test]
fn fuzz_malformed_open_in_established_is_fsm_error_5_3() {
    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(OUT, &malformed_open());
    assert_eq!(r.sent(OUT), vec![Msg::n(5, 3, &[1])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

// In OpenSent and OpenConfirm a malformed OPEN keeps its OPEN error code
// (§8.2.2 OpenConfirm, Event 22: "the appropriate error code"), and a
// header error keeps 1/x in every state (§6.1).
#[test]
fn open_and_header_errors_keep_their_codes_before_established() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(OUT, &malformed_open());
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 1, &[0, 4])]);

    let mut r = Remote::new(config());
    r.reach_open_confirm_out(90);
    r.send(OUT, &malformed_open());
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 1, &[0, 4])]);

    let mut r = Remote::new(config());
    r.establish_out(90);
    r.send(OUT, &raw_msg(4, &[0]));
    assert_eq!(r.sent(OUT), vec![Msg::n(1, 2, &[0, 20])]);
}
