//! Known-answer vectors for every message type, both directions: encode and
//! compare bytes, decode and compare fields.

use core::net::Ipv4Addr;

use corebgp_core::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An OPEN in the shape BIRD 2 sends: AS 65002, hold 240, id 192.0.2.2, one
/// capabilities parameter with MP IPv4 and IPv6 unicast, Route Refresh,
/// Enhanced Route Refresh, Graceful Restart (restart time 120, no families),
/// 4-octet AS, FQDN "bird", ADD-PATH IPv4 receive.
const BIRD_OPEN: &str = "ffffffffffffffffffffffffffffffff 0047 01
    04 fdea 00f0 c0000202 2a
    02 28
      01 04 0001 00 01
      01 04 0002 00 01
      02 00
      46 00
      40 02 0078
      41 04 0000fdea
      49 06 04 62697264 00
      45 04 0001 01 01";

#[test]
fn open_bird_shape() {
    let bytes = hex(BIRD_OPEN);
    let msg = Message::parse(&bytes, MAX_MESSAGE_LEN).unwrap();
    let Message::Open(open) = msg else {
        panic!("not an OPEN: {msg:?}")
    };
    assert_eq!(open.version, 4);
    assert_eq!(open.my_as, 65002);
    assert_eq!(open.hold_time, 240);
    assert_eq!(open.bgp_id, Ipv4Addr::new(192, 0, 2, 2));
    let caps: Vec<Capability<'_>> = open.capabilities().map(Result::unwrap).collect();
    let add_path = [AddPathEntry {
        family: AfiSafi::IPV4_UNICAST,
        direction: AddPathDirection::Receive,
    }];
    let expected = [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 120,
            families: List::Items(&[]),
        }),
        Capability::FourOctetAs(65002),
        Capability::Fqdn {
            hostname: b"bird",
            domain: b"",
        },
        Capability::AddPath(List::Items(&add_path)),
    ];
    assert_eq!(caps, expected);
    // Encoding the same fields gives the same bytes.
    let b = OpenBuilder {
        my_as: 65002,
        hold_time: 240,
        bgp_id: Ipv4Addr::new(192, 0, 2, 2),
        capabilities: &expected,
        force_extended_parameters: false,
    };
    let mut buf = [0u8; 256];
    let n = b.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &bytes[..]);
    assert_eq!(b.encoded_len(), n);
    // And the view re-encodes verbatim.
    assert_eq!(msg.encode(&mut buf, MAX_MESSAGE_LEN).unwrap(), n);
    assert_eq!(&buf[..n], &bytes[..]);
}

/// A 4-octet AS speaker: My AS = AS_TRANS, the real AS in capability 65
/// (RFC 6793 §4.1), extended next hop and role capabilities.
#[test]
fn open_four_octet_as_with_role_and_extended_next_hop() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 003b 01
         04 5ba0 005a 0a000001 1e
         02 1c
           41 04 fa56ea01
           05 06 0001 0001 0002
           09 01 03
           06 00
           47 07 0002 01 80 000e10");
    let Message::Open(open) = Message::parse(&bytes, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_001);
    let caps: Vec<_> = open.capabilities().map(Result::unwrap).collect();
    let enh = [ExtendedNextHopEntry {
        family: AfiSafi::IPV4_UNICAST,
        next_hop_afi: Afi::Ipv6,
    }];
    let llgr = [LlgrEntry {
        family: AfiSafi::IPV6_UNICAST,
        forwarding_preserved: true,
        stale_time: 3600,
    }];
    let expected = [
        Capability::FourOctetAs(4_200_000_001),
        Capability::ExtendedNextHop(List::Items(&enh)),
        Capability::Role(Role::Customer),
        Capability::ExtendedMessage,
        Capability::LongLivedGracefulRestart(List::Items(&llgr)),
    ];
    assert_eq!(caps, expected);
    let b = OpenBuilder {
        my_as: OpenBuilder::my_as_field(4_200_000_001),
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: &expected,
        force_extended_parameters: false,
    };
    let mut buf = [0u8; 128];
    let n = b.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &bytes[..]);
}

#[test]
fn keepalive_vector() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    assert_eq!(bytes, KEEPALIVE);
    assert_eq!(
        Message::parse(&bytes, MAX_MESSAGE_LEN),
        Ok(Message::Keepalive)
    );
    let mut buf = [0u8; 19];
    assert_eq!(encode_keepalive(&mut buf), Ok(19));
    assert_eq!(buf[..], bytes[..]);
}

#[test]
fn notification_vectors() {
    // Hold Timer Expired, no data.
    let bytes = hex("ffffffffffffffffffffffffffffffff 0015 03 04 00");
    let n = Notification::new(NotificationCode::HOLD_TIMER_EXPIRED);
    let mut buf = [0u8; 64];
    let len = n.encode(&mut buf).unwrap();
    assert_eq!(&buf[..len], &bytes[..]);
    assert_eq!(
        Message::parse(&bytes, MAX_MESSAGE_LEN),
        Ok(Message::Notification(n))
    );

    // 2/7 Unsupported Capability carrying the 4-octet AS capability
    // (CoreBGP's verified bytes, corebgp-go.md §3.2).
    let bytes = hex("ffffffffffffffffffffffffffffffff 001b 03 02 07 41 04 0000fdea");
    let Message::Notification(n) = Message::parse(&bytes, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert_eq!(
        n.code,
        NotificationCode::Open(OpenSubcode::UnsupportedCapability)
    );
    assert_eq!(n.data.as_bytes(), &hex("41 04 0000fdea")[..]);
    let len = n.encode(&mut buf).unwrap();
    assert_eq!(&buf[..len], &bytes[..]);

    // Cease/Administrative Shutdown with an RFC 9003 communication.
    let bytes = hex("ffffffffffffffffffffffffffffffff 001d 03 06 02 07 62796520627965");
    let Message::Notification(n) = Message::parse(&bytes, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert_eq!(
        n.code,
        NotificationCode::Cease(CeaseSubcode::AdministrativeShutdown)
    );
    assert_eq!(n.shutdown_communication(), Some(Ok("bye bye")));
    let len =
        Notification::encode_shutdown(CeaseSubcode::AdministrativeShutdown, "bye bye", &mut buf)
            .unwrap();
    assert_eq!(&buf[..len], &bytes[..]);

    // FSM error with its one byte of data (RFC 6608).
    let bytes = hex("ffffffffffffffffffffffffffffffff 0016 03 05 02 01");
    let n = Notification::fsm_error(
        FsmSubcode::UnexpectedMessageInOpenConfirm,
        MessageType::Open,
    );
    let len = n.encode(&mut buf).unwrap();
    assert_eq!(&buf[..len], &bytes[..]);
}

#[test]
fn route_refresh_vectors() {
    for (hexstr, subtype) in [
        (
            "ffffffffffffffffffffffffffffffff 0017 05 0001 00 01",
            RouteRefreshSubtype::Normal,
        ),
        (
            "ffffffffffffffffffffffffffffffff 0017 05 0002 01 01",
            RouteRefreshSubtype::BeginningOfRouteRefresh,
        ),
        (
            "ffffffffffffffffffffffffffffffff 0017 05 0001 02 01",
            RouteRefreshSubtype::EndOfRouteRefresh,
        ),
    ] {
        let bytes = hex(hexstr);
        let Message::RouteRefresh(rr) = Message::parse(&bytes, MAX_MESSAGE_LEN).unwrap() else {
            panic!()
        };
        assert_eq!(rr.subtype, subtype);
        assert_eq!(rr.family.safi, Safi::Unicast);
        let mut buf = [0u8; 32];
        let n = rr.encode(&mut buf).unwrap();
        assert_eq!(&buf[..n], &bytes[..]);
    }
}

#[test]
fn update_vectors() {
    // IPv4 End-of-RIB and BIRD's IPv6 End-of-RIB (MP_UNREACH with AFI 2,
    // SAFI 1, no NLRI; bytes from CoreBGP's BIRD test).
    let eor4 = hex("ffffffffffffffffffffffffffffffff 0017 02 0000 0000");
    let Message::Update(u) = Message::parse(&eor4, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert!(u.is_ipv4_end_of_rib());
    let eor6 = hex("ffffffffffffffffffffffffffffffff 001d 02 0000 0006 800f03000201");
    let Message::Update(u) = Message::parse(&eor6, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert!(!u.is_ipv4_end_of_rib());
    assert_eq!(u.attributes, &hex("800f03000201")[..]);
    let mut buf = [0u8; 64];
    let n = encode_update_sections(&u, &mut buf, MAX_MESSAGE_LEN).unwrap();
    assert_eq!(&buf[..n], &eor6[..]);

    // A withdrawal of 10.1.0.0/16 and 192.0.2.0/24 with no attributes.
    let wd = hex("ffffffffffffffffffffffffffffffff 001e 02 0007 100a01 18c00002 0000");
    let Message::Update(u) = Message::parse(&wd, MAX_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert_eq!(u.withdrawn, &hex("100a01 18c00002")[..]);
    assert!(u.attributes.is_empty() && u.nlri.is_empty());
    let n = encode_update_sections(&u, &mut buf, MAX_MESSAGE_LEN).unwrap();
    assert_eq!(&buf[..n], &wd[..]);
}

#[test]
fn extended_messages_raise_the_update_limit_only_when_negotiated() {
    let mut msg = vec![0u8; 5000];
    msg[..16].copy_from_slice(&MARKER);
    msg[16..18].copy_from_slice(&5000u16.to_be_bytes());
    msg[18] = 2;
    msg[19..23].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        Message::parse(&msg, MAX_MESSAGE_LEN)
            .unwrap_err()
            .notification()
            .data
            .as_bytes(),
        &[0x13, 0x88]
    );
    let Message::Update(u) = Message::parse(&msg, MAX_EXTENDED_MESSAGE_LEN).unwrap() else {
        panic!()
    };
    assert_eq!(u.nlri.len(), 4977);
    let mut buf = vec![0u8; 65535];
    assert!(matches!(
        encode_update_sections(&u, &mut buf, MAX_MESSAGE_LEN),
        Err(EncodeError::MessageTooLong {
            len: 5000,
            max: 4096
        })
    ));
    assert_eq!(
        encode_update_sections(&u, &mut buf, MAX_EXTENDED_MESSAGE_LEN),
        Ok(5000)
    );
}

#[test]
fn encoders_report_small_buffers() {
    let mut tiny = [0u8; 10];
    assert_eq!(
        encode_keepalive(&mut tiny),
        Err(EncodeError::BufferTooSmall {
            needed: 19,
            available: 10
        })
    );
    let n = Notification::new(NotificationCode::Cease(CeaseSubcode::PeerDeconfigured));
    assert_eq!(
        n.encode(&mut tiny),
        Err(EncodeError::BufferTooSmall {
            needed: 21,
            available: 10
        })
    );
    let rr = RouteRefresh::request(AfiSafi::IPV4_UNICAST);
    assert_eq!(
        rr.encode(&mut tiny),
        Err(EncodeError::BufferTooSmall {
            needed: 23,
            available: 10
        })
    );
    let caps = [Capability::RouteRefresh];
    let b = OpenBuilder {
        my_as: 1,
        hold_time: 3,
        bgp_id: Ipv4Addr::new(1, 1, 1, 1),
        capabilities: &caps,
        force_extended_parameters: false,
    };
    assert_eq!(
        b.encode(&mut tiny),
        Err(EncodeError::BufferTooSmall {
            needed: 33,
            available: 10
        })
    );
}
