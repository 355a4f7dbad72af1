//! Property tests: encode→decode round trips for every message and
//! capability; decoding arbitrary bytes never panics.

use core::net::Ipv4Addr;

use corebgp_core::wire::*;
use proptest::prelude::*;

/// Owned description of a capability, so generated data outlives the
/// borrowed [`Capability`] built from it.
#[derive(Debug, Clone)]
enum CapSpec {
    Mp(u16, u8),
    RouteRefresh,
    EnhancedRouteRefresh,
    ExtendedMessage,
    Role(u8),
    FourOctetAs(u32),
    AddPath(Vec<AddPathEntry>),
    ExtendedNextHop(Vec<ExtendedNextHopEntry>),
    GracefulRestart {
        r: bool,
        n: bool,
        time: u16,
        families: Vec<GracefulRestartEntry>,
    },
    Llgr(Vec<LlgrEntry>),
    Fqdn(Vec<u8>, Vec<u8>),
    Unknown(u8, Vec<u8>),
}

impl CapSpec {
    fn cap(&self) -> Capability<'_> {
        match self {
            Self::Mp(a, s) => {
                Capability::MultiProtocol(AfiSafi::new(Afi::from_raw(*a), Safi::from_raw(*s)))
            }
            Self::RouteRefresh => Capability::RouteRefresh,
            Self::EnhancedRouteRefresh => Capability::EnhancedRouteRefresh,
            Self::ExtendedMessage => Capability::ExtendedMessage,
            Self::Role(r) => Capability::Role(Role::from_raw(*r)),
            Self::FourOctetAs(a) => Capability::FourOctetAs(*a),
            Self::AddPath(v) => Capability::AddPath(List::Items(v)),
            Self::ExtendedNextHop(v) => Capability::ExtendedNextHop(List::Items(v)),
            Self::GracefulRestart {
                r,
                n,
                time,
                families,
            } => Capability::GracefulRestart(GracefulRestart {
                restart_state: *r,
                notification: *n,
                restart_time: *time,
                families: List::Items(families),
            }),
            Self::Llgr(v) => Capability::LongLivedGracefulRestart(List::Items(v)),
            Self::Fqdn(h, d) => Capability::Fqdn {
                hostname: h,
                domain: d,
            },
            Self::Unknown(c, v) => Capability::Unknown { code: *c, value: v },
        }
    }
}

fn family() -> impl Strategy<Value = AfiSafi> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| AfiSafi::new(Afi::from_raw(a), Safi::from_raw(s)))
}

const KNOWN_CODES: [u8; 11] = [1, 2, 5, 6, 9, 64, 65, 69, 70, 71, 73];

fn cap_spec() -> impl Strategy<Value = CapSpec> {
    let direction = prop_oneof![
        Just(AddPathDirection::Receive),
        Just(AddPathDirection::Send),
        Just(AddPathDirection::Both)
    ];
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| CapSpec::Mp(a, s)),
        Just(CapSpec::RouteRefresh),
        Just(CapSpec::EnhancedRouteRefresh),
        Just(CapSpec::ExtendedMessage),
        any::<u8>().prop_map(CapSpec::Role),
        any::<u32>().prop_map(CapSpec::FourOctetAs),
        prop::collection::vec(
            (family(), direction)
                .prop_map(|(family, direction)| AddPathEntry { family, direction }),
            0..8
        )
        .prop_map(CapSpec::AddPath),
        prop::collection::vec(
            (family(), any::<u16>()).prop_map(|(family, nh)| ExtendedNextHopEntry {
                family,
                next_hop_afi: Afi::from_raw(nh)
            }),
            0..8
        )
        .prop_map(CapSpec::ExtendedNextHop),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec(
                (family(), any::<bool>()).prop_map(|(family, f)| GracefulRestartEntry {
                    family,
                    forwarding_preserved: f
                }),
                0..8
            )
        )
            .prop_map(|(r, n, time, families)| CapSpec::GracefulRestart {
                r,
                n,
                time,
                families
            }),
        prop::collection::vec(
            (family(), any::<bool>(), 0u32..0x0100_0000).prop_map(|(family, f, t)| LlgrEntry {
                family,
                forwarding_preserved: f,
                stale_time: t
            }),
            0..8
        )
        .prop_map(CapSpec::Llgr),
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(h, d)| CapSpec::Fqdn(h, d)),
        (
            any::<u8>().prop_filter("unknown code", |c| !KNOWN_CODES.contains(c)),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(c, v)| CapSpec::Unknown(c, v)),
    ]
}

fn framed(bytes: &[u8], max: usize) -> Option<Vec<Vec<u8>>> {
    let mut f = Framer::new(vec![0u8; 65535].into_boxed_slice());
    f.set_max_message_len(max);
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        let n = f.feed(rest);
        rest = &rest[n..];
        let mut progressed = n > 0;
        while let Some(m) = f.next_message() {
            out.push(m.ok()?.to_vec());
            progressed = true;
        }
        if !progressed || rest.is_empty() {
            break;
        }
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn open_round_trip(
        my_as in any::<u16>(),
        hold in any::<u16>(),
        id in any::<u32>(),
        specs in prop::collection::vec(cap_spec(), 0..12),
        force_extended in any::<bool>(),
    ) {
        let caps: Vec<Capability<'_>> = specs.iter().map(CapSpec::cap).collect();
        let b = OpenBuilder { my_as, hold_time: hold, bgp_id: Ipv4Addr::from_bits(id), capabilities: &caps, force_extended_parameters: force_extended };
        let mut buf = vec![0u8; 8192];
        match b.encode(&mut buf) {
            Ok(n) => {
                prop_assert_eq!(n, b.encoded_len());
                let frames = framed(&buf[..n], MAX_MESSAGE_LEN).expect("valid header");
                prop_assert_eq!(frames.len(), 1);
                let Message::Open(o) = Message::parse(&frames[0], MAX_MESSAGE_LEN).unwrap() else { panic!() };
                prop_assert_eq!((o.my_as, o.hold_time, o.bgp_id), (my_as, hold, Ipv4Addr::from_bits(id)));
                let back: Vec<Capability<'_>> = o.capabilities().map(Result::unwrap).collect();
                prop_assert_eq!(back, caps);
                // Re-encoding the view gives the same bytes.
                let mut again = vec![0u8; 8192];
                let m = Message::Open(o).encode(&mut again, MAX_MESSAGE_LEN).unwrap();
                prop_assert_eq!(&again[..m], &buf[..n]);
            }
            Err(EncodeError::FieldTooLong) => {
                let too_long = caps.iter().any(|c| c.value_len() > 255 || matches!(c, Capability::Fqdn { .. }));
                prop_assert!(too_long);
            }
            Err(EncodeError::MessageTooLong { len, .. }) => prop_assert!(len > 4096),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn notification_round_trip(code in any::<u8>(), subcode in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..=4075)) {
        let n = Notification::with_data(NotificationCode::from_raw(code, subcode), &data);
        let mut buf = vec![0u8; 4096];
        let len = n.encode(&mut buf).unwrap();
        prop_assert_eq!(len, 21 + data.len());
        prop_assert_eq!(Message::parse(&buf[..len], MAX_MESSAGE_LEN), Ok(Message::Notification(n)));
    }

    #[test]
    fn shutdown_round_trip(msg in "\\PC{0,60}", reset in any::<bool>()) {
        let sub = if reset { CeaseSubcode::AdministrativeReset } else { CeaseSubcode::AdministrativeShutdown };
        let mut buf = vec![0u8; 4096];
        match Notification::encode_shutdown(sub, &msg, &mut buf) {
            Ok(len) => {
                let Message::Notification(n) = Message::parse(&buf[..len], MAX_MESSAGE_LEN).unwrap() else { panic!() };
                prop_assert_eq!(n.shutdown_communication(), Some(Ok(msg.as_str())));
            }
            Err(e) => {
                prop_assert_eq!(e, EncodeError::FieldTooLong);
                prop_assert!(msg.len() > 255);
            }
        }
    }

    #[test]
    fn route_refresh_round_trip(fam in family(), subtype in any::<u8>(), orf in prop::collection::vec(any::<u8>(), 0..64)) {
        let subtype = RouteRefreshSubtype::from_raw(subtype);
        let orf: &[u8] = if matches!(subtype, RouteRefreshSubtype::BeginningOfRouteRefresh | RouteRefreshSubtype::EndOfRouteRefresh) { &[] } else { &orf };
        let rr = RouteRefresh { family: fam, subtype, orf };
        let mut buf = vec![0u8; 256];
        let n = rr.encode(&mut buf).unwrap();
        prop_assert_eq!(Message::parse(&buf[..n], MAX_MESSAGE_LEN), Ok(Message::RouteRefresh(rr)));
    }

    #[test]
    fn update_sections_round_trip(
        w in prop::collection::vec(any::<u8>(), 0..1500),
        a in prop::collection::vec(any::<u8>(), 0..1500),
        n in prop::collection::vec(any::<u8>(), 0..1000),
    ) {
        let s = UpdateSections { withdrawn: &w, attributes: &a, nlri: &n };
        let mut buf = vec![0u8; 8192];
        let len = encode_update_sections(&s, &mut buf, MAX_MESSAGE_LEN).unwrap();
        prop_assert_eq!(Message::parse(&buf[..len], MAX_MESSAGE_LEN), Ok(Message::Update(s)));
    }

    #[test]
    fn stream_of_messages_survives_any_chunking(
        specs in prop::collection::vec(cap_spec(), 0..4),
        chunks in prop::collection::vec(1usize..64, 1..200),
    ) {
        let caps: Vec<Capability<'_>> = specs.iter().map(CapSpec::cap).collect();
        let mut buf = vec![0u8; 8192];
        let mut stream = Vec::new();
        let b = OpenBuilder { my_as: 1, hold_time: 9, bgp_id: Ipv4Addr::new(1, 1, 1, 1), capabilities: &caps, force_extended_parameters: false };
        if let Ok(n) = b.encode(&mut buf) { stream.extend_from_slice(&buf[..n]); }
        stream.extend_from_slice(&KEEPALIVE);
        let n = Notification::new(NotificationCode::HOLD_TIMER_EXPIRED).encode(&mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
        let whole = framed(&stream, MAX_MESSAGE_LEN).unwrap();
        let mut f = Framer::new([0u8; 4096]);
        let mut got = Vec::new();
        let mut rest: &[u8] = &stream;
        for c in chunks.iter().cycle() {
            if rest.is_empty() { break; }
            let take = (*c).min(rest.len());
            prop_assert_eq!(f.feed(&rest[..take]), take);
            rest = &rest[take..];
            while let Some(m) = f.next_message() { got.push(m.unwrap().to_vec()); }
        }
        prop_assert_eq!(got, whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), max in prop_oneof![Just(4096usize), Just(65535)]) {
        // Through the framer, then every decoder that a session would use.
        let mut f = Framer::new(vec![0u8; 65535].into_boxed_slice());
        f.set_max_message_len(max);
        f.feed(&bytes);
        while let Some(Ok(m)) = f.next_message() {
            exercise(m, max);
        }
        // And straight into each decoder.
        exercise(&bytes, max);
        let _ = Open::parse(&bytes).map(|o| o.capabilities().count());
        let _ = Notification::parse(&bytes).map(|n| n.shutdown_communication().is_some());
        let _ = RouteRefresh::parse(&bytes);
        let _ = UpdateSections::parse(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(ty in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut m = MARKER.to_vec();
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(ty);
        m.extend_from_slice(&body);
        exercise(&m, 4096);
    }
}

fn exercise(m: &[u8], max: usize) {
    match Message::parse(m, max) {
        Ok(Message::Open(o)) => {
            for c in o.capabilities().flatten() {
                {
                    // Lists iterate without panicking, whatever they hold.
                    match c {
                        Capability::AddPath(l) => drop(l.iter().count()),
                        Capability::ExtendedNextHop(l) => drop(l.iter().count()),
                        Capability::LongLivedGracefulRestart(l) => drop(l.iter().count()),
                        Capability::GracefulRestart(g) => drop(g.families.iter().count()),
                        _ => {}
                    }
                }
            }
            let _ = o.four_octet_as();
            let _ = o.parameters().count();
        }
        Ok(Message::Notification(n)) => {
            let _ = n.shutdown_communication();
        }
        Ok(_) => {}
        Err(e) => {
            let n = e.notification();
            let mut buf = [0u8; 4096];
            // Every error's NOTIFICATION can be sent.
            assert!(n.encode(&mut buf).is_ok());
        }
    }
}
