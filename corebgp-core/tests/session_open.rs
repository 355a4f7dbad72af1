//! OPEN checks (RFC 4271 §6.2 in CoreBGP's order, RFC 5492, 6286, 6793,
//! 7607, 8654, 9234) and what the two OPENs negotiate.

mod common;

use core::net::Ipv4Addr;

use common::*;
use corebgp_core::session::{SendError, SessionConfig, StateKind};
use corebgp_core::wire::{
    AS_TRANS, AfiSafi, Capability, CeaseSubcode, Notification, NotificationCode, Role,
};

/// Our OPEN is out on OUT; the remote answers with `open`. Returns what we
/// sent back and the resulting state.
fn answer(config: SessionConfig, open: &[u8]) -> (Vec<Msg>, StateKind) {
    let mut r = Remote::new(config);
    r.reach_open_sent_out();
    r.send(OUT, open);
    let s = r.sent(OUT);
    (s, r.state(OUT).expect("outbound"))
}

fn refused(config: SessionConfig, open: &[u8], want: Msg) {
    let (s, st) = answer(config, open);
    assert_eq!(s, vec![want]);
    assert_eq!(st, StateKind::Idle);
}

fn accepted(config: SessionConfig, open: &[u8]) {
    let (s, st) = answer(config, open);
    assert_eq!(s, vec![Msg::Keepalive]);
    assert_eq!(st, StateKind::OpenConfirm);
}

#[test]
fn version_other_than_4_is_2_1_with_data_0004_rfc4271_6_2() {
    let mut o = remote_open(90);
    o[19] = 5;
    refused(config(), &o, Msg::n(2, 1, &[0, 4]));
}

#[test]
fn wrong_peer_as_is_2_2_rfc4271_6_2() {
    refused(
        config(),
        &open_bytes(65003, 90, REMOTE_ID, &remote_caps(65003)),
        Msg::n(2, 2, &[]),
    );
    // My AS right, the 4-octet capability wrong (RFC 6793 §4.1).
    refused(
        config(),
        &open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &remote_caps(65003)),
        Msg::n(2, 2, &[]),
    );
}

#[test]
fn as_trans_without_the_4_octet_capability_is_2_2_rfc6793_4_1() {
    refused(
        config(),
        &open_bytes(AS_TRANS, 90, REMOTE_ID, &[]),
        Msg::n(2, 2, &[]),
    );
    refused(
        config(),
        &open_bytes(
            AS_TRANS,
            90,
            REMOTE_ID,
            &[Capability::MultiProtocol(AfiSafi::IPV4_UNICAST)],
        ),
        Msg::n(2, 2, &[]),
    );
}

#[test]
fn four_octet_peer_with_as_trans_is_accepted_rfc6793_4_1() {
    let big = 4_200_000_001;
    let cfg = config_for(LOCAL_AS, big, LOCAL_ID);
    accepted(cfg, &open_bytes(AS_TRANS, 90, REMOTE_ID, &remote_caps(big)));
    // A 4-octet AS in the capability but not AS_TRANS in My AS: 2/2.
    refused(
        cfg,
        &open_bytes(1234, 90, REMOTE_ID, &remote_caps(big)),
        Msg::n(2, 2, &[]),
    );
}

#[test]
fn as_zero_is_2_2_rfc7607() {
    // Configured for AS 0 is refused by validation; an OPEN saying 0 is 2/2
    // whichever field says it.
    refused(
        config(),
        &open_bytes(0, 90, REMOTE_ID, &remote_caps(0)),
        Msg::n(2, 2, &[]),
    );
    refused(
        config(),
        &open_bytes(0, 90, REMOTE_ID, &remote_caps(REMOTE_AS)),
        Msg::n(2, 2, &[]),
    );
    assert!(config_for(LOCAL_AS, 0, LOCAL_ID).validate().is_err());
}

#[test]
fn hold_time_1_and_2_are_2_6_and_3_is_accepted_rfc4271_6_2() {
    for h in [1, 2] {
        refused(config(), &remote_open(h), Msg::n(2, 6, &[]));
    }
    accepted(config(), &remote_open(3));
    accepted(config(), &remote_open(0));
    // Local policy may ask for more.
    refused(
        config().with_min_hold_time(10),
        &remote_open(9),
        Msg::n(2, 6, &[]),
    );
    accepted(config().with_min_hold_time(10), &remote_open(10));
    // Our own hold time 1 or 2 is a configuration error.
    assert!(config().with_hold_time(2).validate().is_err());
    assert!(config().with_hold_time(0).validate().is_ok());
}

#[test]
fn bgp_identifier_zero_is_2_3_rfc6286_2_2() {
    refused(
        config(),
        &open_bytes(
            REMOTE_AS as u16,
            90,
            Ipv4Addr::UNSPECIFIED,
            &remote_caps(REMOTE_AS),
        ),
        Msg::n(2, 3, &[]),
    );
}

#[test]
fn our_own_identifier_from_an_internal_peer_is_2_3_but_fine_from_an_external_one_rfc6286_2_2() {
    let ibgp = config_for(LOCAL_AS, LOCAL_AS, LOCAL_ID);
    refused(
        ibgp,
        &open_bytes(LOCAL_AS as u16, 90, LOCAL_ID, &remote_caps(LOCAL_AS)),
        Msg::n(2, 3, &[]),
    );
    accepted(
        ibgp,
        &open_bytes(LOCAL_AS as u16, 90, REMOTE_ID, &remote_caps(LOCAL_AS)),
    );
    // eBGP with the same identifier is allowed (RFC 6286 §2.2).
    accepted(
        config(),
        &open_bytes(REMOTE_AS as u16, 90, LOCAL_ID, &remote_caps(REMOTE_AS)),
    );
}

#[test]
fn multicast_looking_and_other_unusual_identifiers_are_accepted_rfc6286() {
    // CoreBGP rejects 224/4 with 2/3; RFC 6286 only requires non-zero.
    for id in [
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 255, 255, 255),
        Ipv4Addr::new(255, 255, 255, 255),
        Ipv4Addr::new(169, 254, 0, 1),
        Ipv4Addr::new(0, 0, 0, 1),
    ] {
        accepted(
            config(),
            &open_bytes(REMOTE_AS as u16, 90, id, &remote_caps(REMOTE_AS)),
        );
    }
}

#[test]
fn open_without_optional_parameters_is_2_7_with_the_4_octet_as_capability_rfc5492_5() {
    // CoreBGP answers 2/0 here; RFC 5492 §5 wants 2/7 naming the missing
    // capability: code 65, length 4, the AS we expect.
    let o = open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &[]);
    assert_eq!(o.len(), 29, "no optional parameters at all");
    let mut data = vec![65, 4];
    data.extend_from_slice(&REMOTE_AS.to_be_bytes());
    refused(config(), &o, Msg::n(2, 7, &data));
    // With capabilities, just not the 4-octet AS one: the same answer.
    refused(
        config(),
        &open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &[Capability::RouteRefresh]),
        Msg::n(2, 7, &data),
    );
}

#[test]
fn malformed_known_capability_is_2_0_rfc5492() {
    // A 4-octet AS capability of 3 bytes.
    let o = open_bytes(
        REMOTE_AS as u16,
        90,
        REMOTE_ID,
        &[
            Capability::Unknown {
                code: 65,
                value: &[0, 0, 0xfd],
            },
            Capability::RouteRefresh,
        ],
    );
    refused(config(), &o, Msg::n(2, 0, &[]));
    // A Multiprotocol capability of 2 bytes.
    let o = open_bytes(
        REMOTE_AS as u16,
        90,
        REMOTE_ID,
        &[
            Capability::FourOctetAs(REMOTE_AS),
            Capability::Unknown {
                code: 1,
                value: &[0, 1],
            },
        ],
    );
    refused(config(), &o, Msg::n(2, 0, &[]));
}

#[test]
fn checks_run_in_corebgp_order_as_then_hold_then_identifier() {
    // Everything wrong: the AS is reported.
    refused(
        config(),
        &open_bytes(65009, 1, Ipv4Addr::UNSPECIFIED, &[]),
        Msg::n(2, 2, &[]),
    );
    // AS right, hold and identifier wrong: hold.
    refused(
        config(),
        &open_bytes(REMOTE_AS as u16, 1, Ipv4Addr::UNSPECIFIED, &[]),
        Msg::n(2, 6, &[]),
    );
    // Identifier before the missing 4-octet AS capability.
    refused(
        config(),
        &open_bytes(REMOTE_AS as u16, 90, Ipv4Addr::UNSPECIFIED, &[]),
        Msg::n(2, 3, &[]),
    );
}

#[test]
fn unknown_capabilities_are_accepted_rfc5492_3() {
    let mut caps = remote_caps(REMOTE_AS);
    caps.push(Capability::Unknown {
        code: 200,
        value: &[1, 2, 3],
    });
    accepted(
        config(),
        &open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &caps),
    );
}

#[test]
fn role_mismatch_is_2_11_rfc9234_4_2() {
    let provider = config().with_role(Some(Role::Provider), false);
    let with_role = |r: Role| {
        let mut caps = remote_caps(REMOTE_AS);
        caps.push(Capability::Role(r));
        open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &caps)
    };
    refused(provider, &with_role(Role::Provider), Msg::n(2, 11, &[]));
    refused(provider, &with_role(Role::Peer), Msg::n(2, 11, &[]));
    accepted(provider, &with_role(Role::Customer));
    // No role from the peer: fine unless strict.
    accepted(provider, &remote_open(90));
    refused(
        config().with_role(Some(Role::Provider), true),
        &remote_open(90),
        Msg::n(2, 11, &[]),
    );
    // Our OPEN carries our role (capability 9).
    let mut r = Remote::new(provider);
    let open = r.reach_open_sent_out();
    assert_eq!(open.cap(9), Some(&[0u8][..]));
}

#[test]
fn plugin_refusal_sends_the_plugins_notification() {
    let mut r = Remote::new(config());
    r.hooks.refuse = Some(Notification::with_data(
        NotificationCode::from_raw(2, 7),
        &[2, 0],
    ));
    r.reach_open_sent_out();
    r.send(OUT, &remote_open(90));
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 7, &[2, 0])]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
    // The plugin saw the OPEN after the session's checks passed.
    assert_eq!(r.hooks.opens_checked, vec![(REMOTE_ID, REMOTE_AS, 90)]);
}

#[test]
fn plugin_is_not_consulted_for_an_open_the_session_refuses() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(OUT, &remote_open(1));
    assert_eq!(r.sent(OUT), vec![Msg::n(2, 6, &[])]);
    assert!(r.hooks.opens_checked.is_empty());
}

#[test]
fn plugin_capabilities_cannot_override_the_sessions_own() {
    let mut r = Remote::new(config());
    r.hooks.caps = vec![
        Capability::FourOctetAs(1),
        Capability::ExtendedMessage,
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
    ];
    let open = r.reach_open_sent_out();
    let Msg::Open { caps, .. } = &open else {
        panic!()
    };
    let fours: Vec<_> = caps.iter().filter(|(c, _)| *c == 65).collect();
    assert_eq!(fours, vec![&(65, LOCAL_AS.to_be_bytes().to_vec())]);
    assert_eq!(open.cap(6), None, "Extended Message only when configured");
    assert_eq!(open.cap(1), Some(&[0u8, 2, 0, 1][..]));
}

#[test]
fn hold_time_negotiates_to_the_smaller_of_both_rfc4271_4_2() {
    for (ours, theirs, want) in [
        (90, 30, 30),
        (90, 180, 90),
        (3, 90, 3),
        (90, 0, 0),
        (0, 90, 0),
    ] {
        let mut r = Remote::new(config().with_hold_time(ours));
        let open = r.reach_open_sent_out();
        let Msg::Open { hold, .. } = open else {
            panic!()
        };
        assert_eq!(hold, ours);
        r.send(OUT, &remote_open(theirs));
        assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
        let n = r.peer.negotiated_on(OUT).expect("negotiated");
        assert_eq!(n.hold_time, want, "ours {ours} theirs {theirs}");
        assert_eq!(
            n.keepalive_interval(),
            (want != 0).then(|| secs(u64::from(want)) / 3)
        );
    }
}

#[test]
fn families_and_route_refresh_negotiate_to_the_intersection() {
    let mut r = Remote::new(config());
    r.hooks.caps = vec![
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
    ];
    r.reach_open_sent_out();
    r.send(
        OUT,
        &open_bytes(
            REMOTE_AS as u16,
            90,
            REMOTE_ID,
            &[
                Capability::FourOctetAs(REMOTE_AS),
                Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
                Capability::MultiProtocol(AfiSafi::IPV4_MULTICAST),
                Capability::RouteRefresh,
            ],
        ),
    );
    let n = r.peer.negotiated_on(OUT).expect("negotiated");
    assert_eq!(n.families.as_slice(), &[AfiSafi::IPV6_UNICAST]);
    assert!(!n.route_refresh, "we did not advertise Route Refresh");
    assert!(!n.extended_message);
}

#[test]
fn send_update_is_refused_before_established_and_above_4096_rfc4271_4_rfc8654() {
    let mut r = Remote::new(config());
    assert_eq!(
        r.peer.send_update(r.now, &update()),
        Err(SendError::NotEstablished)
    );
    r.reach_open_confirm_out(90);
    assert_eq!(
        r.peer.send_update(r.now, &update()),
        Err(SendError::NotEstablished),
        "OpenConfirm is not Established"
    );
    r.send(OUT, &keepalive());
    assert_eq!(r.peer.send_update(r.now, &update()), Ok(OUT));
    assert_eq!(r.peer.send_update(r.now, &update_of_len(4096)), Ok(OUT));
    assert_eq!(
        r.peer.send_update(r.now, &update_of_len(4097)),
        Err(SendError::TooLong {
            len: 4097,
            max: 4096
        })
    );
    assert_eq!(
        r.peer.send_update(r.now, &keepalive()),
        Err(SendError::NotAnUpdate)
    );
    let mut lying = update();
    lying[17] += 1;
    assert_eq!(
        r.peer.send_update(r.now, &lying),
        Err(SendError::NotAnUpdate)
    );
    assert_eq!(r.state(OUT), Some(StateKind::Established));
}

#[test]
fn extended_messages_lift_the_limit_to_65535_only_when_both_advertise_rfc8654() {
    let ext = |remote: bool| {
        let mut r = Remote::new(config().with_extended_messages(true));
        let open = r.reach_open_sent_out();
        assert_eq!(open.cap(6), Some(&[][..]));
        let mut caps = remote_caps(REMOTE_AS);
        if remote {
            caps.push(Capability::ExtendedMessage);
        }
        r.send(OUT, &open_bytes(REMOTE_AS as u16, 90, REMOTE_ID, &caps));
        assert_eq!(r.sent(OUT), vec![Msg::Keepalive]);
        r.send(OUT, &keepalive());
        assert_eq!(r.peer.established(), Some(OUT));
        r
    };
    let mut r = ext(true);
    assert!(r.peer.negotiated().expect("negotiated").extended_message);
    assert_eq!(r.peer.send_update(r.now, &update_of_len(65535)), Ok(OUT));
    // And we accept a 5000-byte UPDATE from the peer.
    let big = update_of_len(5000);
    let got = r.send(OUT, &big);
    assert_eq!(got, vec![Got::Update(big[19..].to_vec())]);
    assert_eq!(r.state(OUT), Some(StateKind::Established));

    let mut r = ext(false);
    assert_eq!(
        r.peer.send_update(r.now, &update_of_len(4097)),
        Err(SendError::TooLong {
            len: 4097,
            max: 4096
        })
    );
    // A 5000-byte UPDATE from a peer that did not negotiate it: 1/2.
    r.send(OUT, &update_of_len(5000));
    assert_eq!(r.sent(OUT), vec![Msg::n(1, 2, &5000u16.to_be_bytes())]);
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}

#[test]
fn cease_received_in_open_sent_is_not_an_open_error() {
    let mut r = Remote::new(config());
    r.reach_open_sent_out();
    r.send(
        OUT,
        &notification(
            NotificationCode::Cease(CeaseSubcode::ConnectionRejected),
            &[],
        ),
    );
    assert!(r.sent(OUT).is_empty());
    assert_eq!(r.state(OUT), Some(StateKind::Idle));
}
