//! Known-answer UPDATE vectors in the shapes BIRD and GoBGP send (written
//! out as hex), decoded with `corebgp_core::update`.

use core::net::{Ipv4Addr, Ipv6Addr};

use corebgp_core::update::*;
use corebgp_core::wire::{Afi, AfiSafi, Safi, UpdateSections};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn v4(s: &str) -> Ipv4Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Ipv4Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn v6(s: &str) -> Ipv6Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Ipv6Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn parse<'a>(body: &'a [u8], cfg: &UpdateConfig) -> Update<'a> {
    Update::parse(body, cfg).expect("no session reset")
}

#[test]
fn bird_ipv4_single_route() {
    // BIRD 2 to CoreBGP's integration test peer: ORIGIN IGP, AS_PATH [65002],
    // NEXT_HOP 192.0.2.2, NLRI 10.0.0.0/8.
    let body = hex("0000 0014 40010100 400206 0201 0000fdea 400304 c0000202 080a");
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    assert_eq!(u.origin(), Some(Origin::Igp));
    assert_eq!(u.as_path().unwrap().asns().collect::<Vec<_>>(), [65002]);
    assert_eq!(u.next_hop(), Some(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(
        u.nlri().map(|n| n.prefix).collect::<Vec<_>>(),
        [v4("10.0.0.0/8")]
    );
    assert_eq!(u.nlri().len(), 1);
    assert_eq!(u.withdrawn().len(), 0);
    assert_eq!(u.end_of_rib(), None);
}

#[test]
fn end_of_rib_markers() {
    // IPv4 unicast: the empty UPDATE; IPv6 unicast as BIRD sends it.
    let v4_eor = hex("0000 0000");
    let v6_eor = hex("0000 0006 800f03 000201");
    assert_eq!(end_of_rib(&v4_eor), Some(AfiSafi::IPV4_UNICAST));
    assert_eq!(end_of_rib(&v6_eor), Some(AfiSafi::IPV6_UNICAST));
    let u = parse(&v6_eor, &UpdateConfig::default());
    assert_eq!(u.end_of_rib(), Some(AfiSafi::IPV6_UNICAST));
    assert_eq!(u.action(), None);
    // Every family: IPv4 multicast, IPv6 multicast, and an unknown one (EVPN).
    for (afi, safi) in [(1u16, 2u8), (2, 2), (25, 70), (1, 128)] {
        let [a0, a1] = afi.to_be_bytes();
        let body = [0, 0, 0, 6, 0x80, 15, 3, a0, a1, safi];
        assert_eq!(
            end_of_rib(&body),
            Some(AfiSafi::new(Afi::from_raw(afi), Safi::from_raw(safi)))
        );
    }
    // Not EoR: a withdrawal, or MP_UNREACH with prefixes.
    assert_eq!(end_of_rib(&hex("0002 080a 0000")), None);
    assert_eq!(end_of_rib(&hex("0000 0008 800f05 000201 0820")), None);
    // The builder writes them byte for byte.
    let mut buf = [0u8; 64];
    let n = encode_end_of_rib(&mut buf, AfiSafi::IPV6_UNICAST).unwrap();
    assert_eq!(&buf[19..n], &v6_eor[..]);
    let n = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).unwrap();
    assert_eq!(
        &buf[..n],
        &hex("ffffffffffffffffffffffffffffffff 0017 02 0000 0000")[..]
    );
}

/// Only IPv4 unicast, by value, gets the empty-UPDATE marker and the NLRI
/// field: IPv4 multicast, and an unregistered AFI numbered like IPv4's
/// neighbours, go into the MP attributes.
#[test]
fn only_ipv4_unicast_uses_the_rfc4271_fields() {
    let mut buf = [0u8; 64];
    for (family, afi, safi) in [
        (AfiSafi::IPV4_MULTICAST, 1u16, 2u8),
        (AfiSafi::new(Afi::Unknown(3), Safi::Unicast), 3, 1),
        (AfiSafi::new(Afi::Ipv4, Safi::Unknown(3)), 1, 3),
    ] {
        let n = encode_end_of_rib(&mut buf, family).unwrap();
        let [a0, a1] = afi.to_be_bytes();
        assert_eq!(&buf[19..n], &[0, 0, 0, 6, 0x80, 15, 3, a0, a1, safi][..]);
        assert_eq!(end_of_rib(&buf[19..n]), Some(family));
    }
    // An IPv4 next hop for IPv4 multicast: MP_REACH_NLRI, not NEXT_HOP.
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&[]),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    let mut b = UpdateBuilder::new(&mut buf, &UpdateConfig::default()).unwrap();
    let routes = [Nlri::new(v4("10.0.0.0/8"))];
    assert_eq!(b.announce(&attrs, AfiSafi::IPV4_MULTICAST, &routes), Ok(1));
    let n = b.finish().unwrap();
    let u = Update::parse(&buf[19..n], &UpdateConfig::default()).unwrap();
    assert_eq!(u.nlri().len(), 0);
    assert_eq!(
        u.mp_reach().map(|m| m.family),
        Some(AfiSafi::IPV4_MULTICAST)
    );
    assert_eq!(u.announced().collect::<Vec<_>>().len(), 1);
}

#[test]
fn gobgp_ipv6_with_link_local_next_hop() {
    // MP_REACH_NLRI first with the extended-length flag (GoBGP style), next hop
    // global + link-local (RFC 2545 §3), then ORIGIN, AS_PATH, MED.
    let body = hex("0000 0048
         900e002c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00
                  30 20010db80001
         40010100
         40020a 0202 0000fde9 0000fdea
         80040400000064");
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    let mp = u.mp_reach().unwrap();
    assert_eq!(mp.family, AfiSafi::IPV6_UNICAST);
    assert_eq!(
        mp.next_hop(),
        Some(NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap())
        })
    );
    let routes: Vec<_> = u.announced().collect();
    assert_eq!(
        routes,
        [(
            AfiSafi::IPV6_UNICAST,
            Nlri::new(Prefix::V6(v6("2001:db8:1::/48")))
        )]
    );
    assert_eq!(u.med(), Some(100));
    assert_eq!(u.as_path().unwrap().path_len(), 2);
    assert_eq!(u.as_path().unwrap().first_as(), Some(65001));
    assert_eq!(u.as_path().unwrap().origin_as(), Some(65002));
    // NEXT_HOP is not required without IPv4 NLRI (RFC 4760 §3).
    assert_eq!(u.next_hop(), None);
}

/// The benchmark corpus shape: ORIGIN, 3-hop 4-octet AS_PATH, NEXT_HOP, MED,
/// two COMMUNITIES, one LARGE_COMMUNITY, three /24s.
pub const FULL_TABLE_SHAPE: &str = "0000 003d
    40010100
    40020e 0203 0000fde9 0000fdea fa56ea01
    400304 c0000201
    800404 00000000
    c00808 fde90064 fde900c8
    c0200c fa56ea01 00000001 00000002
    180a0000 180a0001 180a0002";

#[test]
fn full_table_shape() {
    let body = hex(FULL_TABLE_SHAPE);
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    assert_eq!(
        u.as_path().unwrap().asns().collect::<Vec<_>>(),
        [65001, 65002, 4_200_000_001]
    );
    assert_eq!(u.med(), Some(0));
    let c: Vec<_> = u.communities().unwrap().iter().collect();
    assert_eq!(c, [Community::new(65001, 100), Community::new(65001, 200)]);
    let l: Vec<_> = u.large_communities().unwrap().iter().collect();
    assert_eq!(
        l,
        [LargeCommunity {
            global_admin: 4_200_000_001,
            local_data1: 1,
            local_data2: 2
        }]
    );
    let p: Vec<_> = u.nlri().map(|n| n.prefix.to_string()).collect();
    assert_eq!(p, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]);
    assert_eq!(u.announced_count(), 3);

    // Pay-for-what-you-use: only communities, without the typed view.
    let s = UpdateSections::parse(&body).unwrap();
    let raw = Attributes::new(s.attributes)
        .find(AttrType::COMMUNITIES)
        .unwrap();
    assert_eq!(raw.flags, AttrFlags::OPTIONAL_TRANSITIVE);
    assert_eq!(Communities::new(raw.value).unwrap().len(), 2);
    // Only NLRI.
    assert_eq!(Ipv4Prefixes::new(s.nlri, false).count(), 3);
}

#[test]
fn two_octet_peer_as4_path_merge() {
    // RFC 6793 §4.2.3: AS_PATH [65001 AS_TRANS 65003], AS4_PATH
    // [4200000001 65003] → [65001 4200000001 65003]; AGGREGATOR AS_TRANS with
    // AS4_AGGREGATOR 4200000001.
    let body = hex("0000 0037
         40010100
         400208 0203 fde9 5ba0 fdeb
         400304 c0000201
         c00706 5ba0 c0000201
         c0110a 0202 fa56ea01 0000fdeb
         c01208 fa56ea01 c0000201
         18c63364");
    let cfg = UpdateConfig {
        four_octet_as: false,
        ..UpdateConfig::default()
    };
    let u = parse(&body, &cfg);
    assert_eq!(u.action(), None);
    assert_eq!(
        u.as_path().unwrap().asns().collect::<Vec<_>>(),
        [65001, 4_200_000_001, 65003]
    );
    assert_eq!(
        u.as_path_raw().unwrap().asns().collect::<Vec<_>>(),
        [65001, 23456, 65003]
    );
    assert_eq!(u.as_path().unwrap().path_len(), 3);
    assert_eq!(
        u.aggregator(),
        Some(Aggregator {
            asn: 4_200_000_001,
            addr: Ipv4Addr::new(192, 0, 2, 1)
        })
    );

    // The same from a 4-octet peer is malformed (AS_PATH of odd 4-octet
    // length → treat-as-withdraw)...
    let u4 = parse(&body, &UpdateConfig::default());
    assert_eq!(
        u4.treat_as_withdraw().unwrap().kind,
        ErrorKind::MalformedAsPath
    );
}

#[test]
fn as4_path_ignored_cases() {
    let cfg = UpdateConfig {
        four_octet_as: false,
        ..UpdateConfig::default()
    };
    // AGGREGATOR with a real AS: AS4_PATH ignored (RFC 6793 §4.2.3).
    let body = hex("0000 002a
         40010100
         400206 0202 fde9 5ba0
         400304 c0000201
         c00706 fde9 c0000201
         c0110a 0202 fa56ea01 0000fdeb
         0810");
    let u = parse(&body, &cfg);
    assert_eq!(
        u.as_path().unwrap().asns().collect::<Vec<_>>(),
        [65001, 23456]
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let body = hex("0000 0023
         40010100
         400204 0201 5ba0
         400304 c0000201
         c0110e 0203 fa56ea01 0000fdeb 0000fdec
         0810");
    let u = parse(&body, &cfg);
    assert_eq!(u.as_path().unwrap().asns().collect::<Vec<_>>(), [23456]);
    // From a 4-octet peer AS4_PATH is discarded (RFC 6793 §3).
    let body = hex("0000 002c
         40010100
         400206 0201 0000fde9
         400304 c0000201
         c0110a 0202 fa56ea01 0000fdeb
         c01208 fa56ea01 c0000201
         0810");
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    assert!(u.as4_path().is_none());
    assert!(u.discarded().contains(AttrType::AS4_PATH));
    assert!(u.discarded().contains(AttrType::AS4_AGGREGATOR));
    assert_eq!(u.as_path().unwrap().asns().collect::<Vec<_>>(), [65001]);
}

#[test]
fn as_path_keeps_every_segment_and_confed() {
    // CoreBGP bug 4: SEQ[1] SEQ[2] SET[3 4] CONFED_SEQ[5] CONFED_SET[6] all kept, in order.
    let body = hex("0000 0030
         40010100
         400222 0201 00000001 0201 00000002 0102 00000003 00000004 0301 00000005 0401 00000006
         400304 c0000201
         0810");
    // Confederation segments are accepted from an internal peer...
    let cfg = UpdateConfig {
        peer: PeerType::Internal,
        ..UpdateConfig::default()
    };
    let u = parse(&body, &cfg);
    assert_eq!(u.action(), None);
    let segs: Vec<_> = u
        .as_path()
        .unwrap()
        .segments()
        .map(|s| (s.kind, s.asns.collect::<Vec<_>>()))
        .collect();
    use SegmentType::*;
    assert_eq!(
        segs,
        [
            (Sequence, vec![1]),
            (Sequence, vec![2]),
            (Set, vec![3, 4]),
            (ConfedSequence, vec![5]),
            (ConfedSet, vec![6])
        ]
    );
    assert_eq!(u.as_path().unwrap().path_len(), 3);
    // ...but make the path malformed from an external one (RFC 7606 §7.2).
    let cfg = UpdateConfig {
        peer: PeerType::External,
        ..UpdateConfig::default()
    };
    assert_eq!(
        parse(&body, &cfg).treat_as_withdraw().unwrap().kind,
        ErrorKind::MalformedAsPath
    );
}

#[test]
fn atomic_aggregate_well_known_flags() {
    // CoreBGP bug 3: a real ATOMIC_AGGREGATE (flags 0x40) is accepted.
    let body = hex(
        "0000 0022 40010100 400206 0201 0000fde9 400304 c0000201 400600 c00708 0000fde9 c0000201 0810",
    );
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    assert!(u.atomic_aggregate());
    assert_eq!(
        u.aggregator(),
        Some(Aggregator {
            asn: 65001,
            addr: Ipv4Addr::new(192, 0, 2, 1)
        })
    );
}

#[test]
fn add_path_ipv4_and_ipv6() {
    // BIRD with add-path: IPv4 NLRI and withdrawals with path identifiers.
    let body = hex("0008 00000007 180a0001
         0014 40010100 400206 0201 0000fde9 400304 c0000201
         00000021 180a0000 00000002 180a0000");
    let cfg = UpdateConfig {
        add_path_rx: Families::NONE
            .with(AfiSafi::IPV4_UNICAST)
            .with(AfiSafi::IPV6_UNICAST),
        ..UpdateConfig::default()
    };
    let u = parse(&body, &cfg);
    assert_eq!(u.action(), None);
    let a: Vec<_> = u.nlri().collect();
    assert_eq!(
        a,
        [
            Nlri {
                path_id: Some(33),
                prefix: v4("10.0.0.0/24")
            },
            Nlri {
                path_id: Some(2),
                prefix: v4("10.0.0.0/24")
            }
        ]
    );
    assert_eq!(
        u.withdrawn().collect::<Vec<_>>(),
        [Nlri {
            path_id: Some(7),
            prefix: v4("10.0.1.0/24")
        }]
    );
    // Without add-path negotiated these bytes are a syntax error (a /33) → 3/10 reset.
    let e = Update::parse(&body, &UpdateConfig::default()).unwrap_err();
    assert_eq!(e.action, Action::SessionReset);
    assert_eq!(
        (e.notification.code.code(), e.notification.code.subcode()),
        (3, 10)
    );

    // IPv6 MP_UNREACH with path ids.
    let body = hex("0000 0011 800f0e 000201 00000005 30 20010db80001");
    let u = parse(&body, &cfg);
    let w: Vec<_> = u.withdrawals().collect();
    assert_eq!(
        w,
        [(
            AfiSafi::IPV6_UNICAST,
            Nlri {
                path_id: Some(5),
                prefix: Prefix::V6(v6("2001:db8:1::/48"))
            }
        )]
    );
}

#[test]
fn extended_next_hop_ipv4_over_ipv6() {
    // RFC 8950: IPv4 unicast NLRI with an IPv6 next hop.
    let body = hex("0000 0031
         900e0019 0001 01 10 20010db8000000000000000000000001 00 180a0000
         40010100 400206 0201 0000fde9 80040400000000");
    let cfg = UpdateConfig {
        extended_next_hop: Families::NONE.with(AfiSafi::IPV4_UNICAST),
        ..UpdateConfig::default()
    };
    let u = parse(&body, &cfg);
    assert_eq!(u.action(), None);
    assert_eq!(
        u.mp_reach().unwrap().next_hop(),
        Some(NextHop::V6 {
            global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            link_local: None
        })
    );
    assert_eq!(
        u.mp_reach_nlri().collect::<Vec<_>>(),
        [Nlri::new(Prefix::V4(v4("10.0.0.0/24")))]
    );
    // Not negotiated: the next-hop length is invalid → AFI/SAFI disable.
    let u = parse(&body, &UpdateConfig::default());
    let e = u.afi_safi_disable().next().unwrap();
    assert_eq!(e.action, Action::AfiSafiDisable(AfiSafi::IPV4_UNICAST));
    assert_eq!(e.kind, ErrorKind::NextHopLength);
}

#[test]
fn communities_extended_large_otc_aigp_rr_unknown() {
    let body = hex("0000 008b
         40010100
         400206 0201 0000fde9
         400304 c0000201
         400504 00000064
         c00804 ffffff01
         800904 0a000001
         800a08 0a000002 0a000003
         c01008 0002fde900000064
         c01914 0002 20010db8000000000000000000000001 0007
         801a0b 01000b 00000000000003e8
         c02018 00000001 00000002 00000003 00000004 00000005 00000006
         c02304 0000fde9
         e06302 abcd
         0810");
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.action(), None);
    assert_eq!(u.local_pref(), Some(100));
    assert_eq!(
        u.communities().unwrap().iter().collect::<Vec<_>>(),
        [Community::NO_EXPORT]
    );
    assert_eq!(u.originator_id(), Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(
        u.cluster_list().unwrap().iter().collect::<Vec<_>>(),
        [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
    );
    let ext = u.ext_communities().unwrap().iter().next().unwrap();
    assert_eq!(
        (ext.type_high(), ext.subtype(), ext.is_transitive()),
        (0, 2, true)
    );
    let v6c = u.ipv6_ext_communities().unwrap().iter().next().unwrap();
    assert_eq!(
        v6c.global_admin(),
        "2001:db8::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(v6c.local_admin(), 7);
    assert_eq!(u.aigp().unwrap().metric, Some(1000));
    assert_eq!(u.large_communities().unwrap().len(), 2);
    assert_eq!(u.otc(), Some(65001));
    let unknown: Vec<_> = u.unknown_attributes().collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (
            unknown[0].type_code,
            unknown[0].flags.partial(),
            unknown[0].value
        ),
        (99, true, &[0xab, 0xcd][..])
    );
    assert_eq!(unknown[0].raw, &[0xe0, 0x63, 2, 0xab, 0xcd][..]);
}

#[test]
fn prefixes_host_bits_masked_and_lengths() {
    // 10.1.2.3/8 on the wire (trailing bits set) reads as 10.0.0.0/8; /0 and /32.
    let body = hex("0000 0014 40010100 400206 0201 0000fde9 400304 c0000201 080a 00 200a010203");
    let u = parse(&body, &UpdateConfig::default());
    let p: Vec<_> = u.nlri().map(|n| n.prefix.to_string()).collect();
    assert_eq!(p, ["10.0.0.0/8", "0.0.0.0/0", "10.1.2.3/32"]);
    let mut it = Ipv4Prefixes::new(&[9, 10, 0x81], false);
    assert_eq!(
        it.next().unwrap().unwrap().prefix.to_string(),
        "10.128.0.0/9"
    );
    assert_eq!(
        Ipv4Prefixes::new(&[33, 1, 2, 3, 4, 5], false).next(),
        Some(Err(PrefixError::Length))
    );
    assert_eq!(
        Ipv4Prefixes::new(&[24, 1, 2], false).next(),
        Some(Err(PrefixError::Truncated))
    );
    assert_eq!(
        Ipv6Prefixes::new(&[129], false).next(),
        Some(Err(PrefixError::Length))
    );
}

#[test]
fn duplicate_attributes_first_wins() {
    // RFC 7606 §3 g: a repeated MED is discarded, the first one kept.
    let body = hex(
        "0000 0022 40010100 400206 0201 0000fde9 400304 c0000201 80040400000001 80040400000002 0810",
    );
    let u = parse(&body, &UpdateConfig::default());
    assert_eq!(u.med(), Some(1));
    assert!(u.discarded().contains(AttrType::MED));
    assert_eq!(u.action(), None);
}
