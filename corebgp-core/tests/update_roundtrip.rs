//! Whatever the builder writes, the decoder reads back identically; the
//! builder packs as much as fits and says where it stopped.

use core::net::{Ipv4Addr, Ipv6Addr};

use corebgp_core::update::*;
use corebgp_core::wire::{AfiSafi, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use proptest::prelude::*;

const FAMILIES: [AfiSafi; 4] = [
    AfiSafi::IPV4_UNICAST,
    AfiSafi::IPV4_MULTICAST,
    AfiSafi::IPV6_UNICAST,
    AfiSafi::IPV6_MULTICAST,
];

fn families() -> impl Strategy<Value = Families> {
    (0u8..16).prop_map(|m| {
        FAMILIES
            .iter()
            .enumerate()
            .fold(Families::NONE, |f, (i, &fam)| {
                if m & (1 << i) != 0 { f.with(fam) } else { f }
            })
    })
}

fn cfg() -> impl Strategy<Value = UpdateConfig> {
    (
        any::<bool>(),
        families(),
        any::<bool>(),
        prop_oneof![
            Just(MAX_MESSAGE_LEN),
            Just(MAX_EXTENDED_MESSAGE_LEN),
            200usize..1000
        ],
    )
        .prop_map(|(four, ap, enh, max)| UpdateConfig {
            four_octet_as: four,
            add_path_rx: ap,
            add_path_tx: ap,
            extended_next_hop: if enh {
                Families::NONE.with(AfiSafi::IPV4_UNICAST)
            } else {
                Families::NONE
            },
            max_message_len: max as u16,
            ..UpdateConfig::default()
        })
}

fn prefix(v6: bool) -> BoxedStrategy<Prefix> {
    if v6 {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| Prefix::V6(Ipv6Prefix::new(Ipv6Addr::from_bits(a), l).unwrap()))
            .boxed()
    } else {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from_bits(a), l).unwrap()))
            .boxed()
    }
}

fn routes(v6: bool, max: usize) -> impl Strategy<Value = Vec<Nlri>> {
    prop::collection::vec(
        (any::<u32>(), prefix(v6)).prop_map(|(id, p)| Nlri {
            path_id: Some(id),
            prefix: p,
        }),
        0..max,
    )
}

#[derive(Debug, Clone)]
struct Attrs {
    origin: Option<Origin>,
    confed: Vec<(SegmentType, Vec<u32>)>,
    segs: Vec<(SegmentType, Vec<u32>)>,
    has_path: bool,
    med: Option<u32>,
    local_pref: Option<u32>,
    atomic: bool,
    aggregator: Option<Aggregator>,
    communities: Vec<Community>,
    originator: Option<Ipv4Addr>,
    cluster: Vec<Ipv4Addr>,
    ext: Vec<ExtCommunity>,
    ext6: Vec<Ipv6ExtCommunity>,
    aigp: Option<u64>,
    large: Vec<LargeCommunity>,
    otc: Option<u32>,
    other: Vec<(u8, u8, Vec<u8>)>,
}

fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=65535, 1u32..=u32::MAX]
}

fn attrs() -> impl Strategy<Value = Attrs> {
    let seg = |kinds: Vec<SegmentType>| {
        (
            prop::sample::select(kinds),
            prop::collection::vec(asn(), 1..8),
        )
    };
    (
        (
            prop::option::of(prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]),
            prop::collection::vec(
                seg(vec![SegmentType::ConfedSequence, SegmentType::ConfedSet]),
                0..2,
            ),
            prop::collection::vec(seg(vec![SegmentType::Sequence, SegmentType::Set]), 0..4),
            any::<bool>(),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            any::<bool>(),
            prop::option::of((asn(), any::<u32>()).prop_map(|(a, ip)| Aggregator {
                asn: a,
                addr: Ipv4Addr::from_bits(ip),
            })),
        ),
        (
            prop::collection::vec(any::<u32>().prop_map(Community), 0..5),
            prop::option::of(any::<u32>().prop_map(Ipv4Addr::from_bits)),
            prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from_bits), 0..3),
            prop::collection::vec(any::<[u8; 8]>().prop_map(ExtCommunity), 0..3),
            prop::collection::vec(any::<[u8; 20]>().prop_map(Ipv6ExtCommunity), 0..2),
            prop::option::of(any::<u64>()),
            prop::collection::vec(
                any::<(u32, u32, u32)>().prop_map(|(a, b, c)| LargeCommunity {
                    global_admin: a,
                    local_data1: b,
                    local_data2: c,
                }),
                0..3,
            ),
            prop::option::of(any::<u32>()),
            prop::collection::btree_map(
                100u8..128,
                (
                    prop_oneof![Just(0xc0u8), Just(0x80), Just(0xe0)],
                    prop::collection::vec(any::<u8>(), 0..6),
                ),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (origin, confed, segs, has_path, med, local_pref, atomic, aggregator),
                (communities, originator, cluster, ext, ext6, aigp, large, otc, other),
            )| Attrs {
                origin,
                confed,
                segs,
                has_path,
                med,
                local_pref,
                atomic,
                aggregator,
                communities,
                originator,
                cluster,
                ext,
                ext6,
                aigp,
                large,
                otc,
                other: other.into_iter().map(|(t, (f, v))| (t, f, v)).collect(),
            },
        )
}

fn size(p: &Prefix, ap: bool) -> usize {
    usize::from(ap) * 4 + 1 + usize::from(p.len()).div_ceil(8)
}

fn strip(r: &Nlri, ap: bool) -> Nlri {
    Nlri {
        path_id: if ap { r.path_id.or(Some(0)) } else { None },
        prefix: r.prefix,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn builder_output_decodes_identically(
        cfg in cfg(),
        a in attrs(),
        fam_i in 0usize..4,
        unreach_fam_i in 0usize..4,
        ll in prop::option::of(any::<u128>()),
        nh6 in any::<u128>(),
        nh4 in any::<u32>(),
        use_v6_nh_for_v4 in any::<bool>(),
        withdrawn in routes(false, 40),
        unreach_v4 in routes(false, 40),
        unreach_v6 in routes(true, 40),
        reach_v4 in routes(false, 400),
        reach_v6 in routes(true, 200),
        do_unreach in any::<bool>(),
    ) {
        let family = FAMILIES[fam_i];
        let v6 = family.afi == corebgp_core::wire::Afi::Ipv6;
        let next_hop = if v6 || (use_v6_nh_for_v4 && cfg.extended_next_hop.contains(family)) {
            NextHop::V6 { global: Ipv6Addr::from_bits(nh6), link_local: ll.map(Ipv6Addr::from_bits) }
        } else {
            NextHop::V4(Ipv4Addr::from_bits(nh4))
        };
        let seg_store: Vec<(SegmentType, Vec<u32>)> = a.confed.iter().chain(a.segs.iter()).cloned().collect();
        let segments: Vec<AsSegment> = seg_store.iter().map(|(k, v)| AsSegment { kind: *k, asns: v }).collect();
        let other: Vec<RawAttribute> = a.other.iter().map(|(t, f, v)| RawAttribute::new(AttrFlags(*f), *t, v)).collect();
        let pa = PathAttributes {
            origin: a.origin,
            as_path: a.has_path.then_some(&segments[..]),
            next_hop: Some(next_hop),
            med: a.med,
            local_pref: a.local_pref,
            atomic_aggregate: a.atomic,
            aggregator: a.aggregator,
            communities: &a.communities,
            originator_id: a.originator,
            cluster_list: &a.cluster,
            ext_communities: &a.ext,
            ipv6_ext_communities: &a.ext6,
            aigp: a.aigp,
            large_communities: &a.large,
            otc: a.otc,
            other: &other,
        };
        let reach = if v6 { &reach_v6 } else { &reach_v4 };
        let unreach_family = FAMILIES[unreach_fam_i];
        let unreach = if unreach_family.afi == corebgp_core::wire::Afi::Ipv6 { &unreach_v6 } else { &unreach_v4 };
        let withdrawn4: Vec<Nlri<Ipv4Prefix>> = withdrawn.iter().map(|n| match n.prefix {
            Prefix::V4(p) => Nlri { path_id: n.path_id, prefix: p },
            Prefix::V6(_) => unreachable!(),
        }).collect();

        let mut buf = vec![0u8; 70_000];
        let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
        let n_w = b.withdraw(&withdrawn4).unwrap();
        let n_u = if do_unreach {
            match b.withdraw_mp(unreach_family, unreach) {
                Ok(n) => n,
                Err(BuildError::Encode(_)) => { prop_assume!(false); 0 }
                Err(e) => panic!("{e:?}"),
            }
        } else { 0 };
        let unreach_written = do_unreach && (n_u > 0 || unreach.is_empty());
        let announced = b.announce(&pa, family, reach);
        let n_a = match announced {
            Ok(n) => n,
            // Only when the attributes alone do not fit a small maximum.
            Err(BuildError::Encode(_)) => { prop_assume!(false); 0 }
            Err(e) => panic!("{e:?}"),
        };
        let len = b.finish().unwrap();
        prop_assert!(len <= usize::from(cfg.max_message_len));
        prop_assert_eq!(usize::from(u16::from_be_bytes([buf[16], buf[17]])), len);
        prop_assert_eq!(buf[18], 2);

        // Packing is maximal: the next route would not have fitted.
        let max = usize::from(cfg.max_message_len);
        if n_a > 0 && n_a < reach.len() {
            prop_assert!(len + size(&reach[n_a].prefix, cfg.add_path_tx.contains(family)) > max);
        }

        let u = Update::parse(&buf[HEADER_LEN..len], &cfg).expect("no reset");
        // Withdrawals.
        let ap4 = cfg.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
        let got_w: Vec<Nlri> = u.withdrawn().map(|n| Nlri { path_id: n.path_id, prefix: Prefix::V4(n.prefix) }).collect();
        let want_w: Vec<Nlri> = withdrawn[..n_w].iter().map(|r| strip(r, ap4)).collect();
        prop_assert_eq!(got_w, want_w);
        if unreach_written {
            let m = u.mp_unreach().expect("MP_UNREACH");
            prop_assert_eq!(m.family, unreach_family);
            let apu = cfg.add_path_tx.contains(unreach_family);
            let want: Vec<Nlri> = unreach[..n_u].iter().map(|r| strip(r, apu)).collect();
            prop_assert_eq!(u.mp_unreach_nlri().collect::<Vec<_>>(), want);
            if n_u == 0 && n_w == 0 && u.sections().nlri.is_empty() && u.mp_reach().is_none() && u.attributes().count() == 1 {
                prop_assert_eq!(u.end_of_rib(), Some(unreach_family));
            }
        }
        if n_a == 0 && !reach.is_empty() {
            // Nothing fitted: nothing was written.
            prop_assert!(u.mp_reach().is_none() && u.sections().nlri.is_empty() && u.origin().is_none());
            return Ok(());
        }
        // Announcements.
        let apa = cfg.add_path_tx.contains(family);
        let want_a: Vec<Nlri> = reach[..n_a].iter().map(|r| strip(r, apa)).collect();
        let got_a: Vec<Nlri> = if u.mp_reach().is_some() {
            prop_assert_eq!(u.mp_reach().unwrap().family, family);
            prop_assert_eq!(u.mp_reach().unwrap().next_hop(), Some(next_hop));
            prop_assert_eq!(u.next_hop(), None);
            u.mp_reach_nlri().collect()
        } else {
            prop_assert_eq!(Some(NextHop::V4(u.next_hop().unwrap())), Some(next_hop));
            u.nlri().map(|n| Nlri { path_id: n.path_id, prefix: Prefix::V4(n.prefix) }).collect()
        };
        prop_assert_eq!(got_a, want_a);

        // Attributes.
        prop_assert_eq!(u.origin(), a.origin);
        if a.has_path {
            let got: Vec<(SegmentType, Vec<u32>)> = u.as_path().unwrap().segments().map(|s| (s.kind, s.asns.collect())).collect();
            // A 2-octet session with an aggregator AS other than AS_TRANS makes
            // the receiver ignore AS4_PATH (RFC 6793 §4.2.3): 4-octet ASes read
            // as AS_TRANS then.
            let as4_ignored = !cfg.four_octet_as && a.aggregator.is_some_and(|g| g.asn <= 0xffff && g.asn != AS_TRANS);
            let want: Vec<(SegmentType, Vec<u32>)> = seg_store.iter().map(|(k, v)| {
                (*k, v.iter().map(|&x| if x > 0xffff && (as4_ignored || (!cfg.four_octet_as && k.is_confed())) { AS_TRANS } else { x }).collect())
            }).collect();
            prop_assert_eq!(got, want);
        } else {
            prop_assert!(u.as_path().is_none());
        }
        prop_assert_eq!(u.med(), a.med);
        prop_assert_eq!(u.local_pref(), a.local_pref);
        prop_assert_eq!(u.atomic_aggregate(), a.atomic);
        prop_assert_eq!(u.aggregator(), a.aggregator);
        prop_assert_eq!(u.communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), a.communities.clone());
        prop_assert_eq!(u.originator_id(), a.originator);
        prop_assert_eq!(u.cluster_list().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), a.cluster.clone());
        prop_assert_eq!(u.ext_communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), a.ext.clone());
        prop_assert_eq!(u.ipv6_ext_communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), a.ext6.clone());
        prop_assert_eq!(u.aigp().and_then(|g| g.metric), a.aigp);
        prop_assert_eq!(u.large_communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), a.large.clone());
        prop_assert_eq!(u.otc(), a.otc);
        let got_other: Vec<(u8, u8, Vec<u8>)> = u.unknown_attributes().map(|r| (r.type_code, r.flags.0 & !AttrFlags::EXTENDED_LENGTH, r.value.to_vec())).collect();
        prop_assert_eq!(got_other, a.other.clone());

        // Verdict: clean unless a mandatory attribute is missing on a route-carrying UPDATE.
        let reachable = u.mp_reach().is_some() || !u.sections().nlri.is_empty();
        let classic_nlri = !u.sections().nlri.is_empty();
        let missing = a.origin.is_none() || !a.has_path;
        if !(reachable && missing) {
            prop_assert_eq!(u.action(), None, "{:?}", u.treat_as_withdraw());
        } else {
            prop_assert_eq!(u.action(), Some(Action::TreatAsWithdraw));
        }
        let _ = classic_nlri;
    }

    /// The decoder never panics and its verdict is stable, whatever the bytes.
    #[test]
    fn decoder_is_total(body in prop::collection::vec(any::<u8>(), 0..200), c in cfg()) {
        if let Ok(u) = Update::parse(&body, &c) {
            let _ = u.announced().count() + u.withdrawals().count();
            if let Some(p) = u.as_path() { let _ = p.asns().count(); }
            let _ = u.unknown_attributes().count();
        }
    }
}

#[test]
fn full_table_streams_in_few_messages() {
    // 100,000 /24s with one attribute set: each message is filled up to the
    // maximum and the decoder reads every prefix back.
    let routes: Vec<Nlri<Ipv4Prefix>> = (0..100_000u32)
        .map(|i| {
            Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits(0x0100_0000 + (i << 8)), 24).unwrap())
        })
        .collect();
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &[65001, 65002, 4_200_000_001],
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        med: Some(0),
        communities: &[Community::new(65001, 100), Community::new(65001, 200)],
        large_communities: &[LargeCommunity {
            global_admin: 4_200_000_001,
            local_data1: 1,
            local_data2: 2,
        }],
        ..Default::default()
    };
    for (max, expect_msgs) in [
        (MAX_MESSAGE_LEN, 100_000usize.div_ceil((4096 - 23 - 61) / 4)),
        (
            MAX_EXTENDED_MESSAGE_LEN,
            100_000usize.div_ceil((65535 - 23 - 61) / 4),
        ),
    ] {
        let cfg = UpdateConfig {
            max_message_len: max as u16,
            ..UpdateConfig::default()
        };
        let mut buf = vec![0u8; max];
        let mut rest = &routes[..];
        let mut decoded = Vec::with_capacity(routes.len());
        let mut msgs = 0;
        while !rest.is_empty() {
            let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
            let n = b.announce(&attrs, AfiSafi::IPV4_UNICAST, rest).unwrap();
            assert!(n > 0);
            let len = b.finish().unwrap();
            assert!(len <= max);
            if n < rest.len() {
                assert!(len + 4 > max, "message not full: {len}");
            }
            let u = Update::parse(&buf[HEADER_LEN..len], &cfg).unwrap();
            assert_eq!(u.action(), None);
            decoded.extend(u.nlri());
            rest = &rest[n..];
            msgs += 1;
        }
        assert_eq!(decoded, routes);
        assert_eq!(msgs, expect_msgs);
    }
}

#[test]
fn ipv6_table_streams_with_mp_reach_first() {
    let routes: Vec<Nlri<Ipv6Prefix>> = (0..5_000u128)
        .map(|i| {
            Nlri::new(
                Ipv6Prefix::new(Ipv6Addr::from_bits((0x2001_0db8u128 << 96) | (i << 80)), 48)
                    .unwrap(),
            )
        })
        .collect();
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &[65001],
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        }),
        ..Default::default()
    };
    let cfg = UpdateConfig::default();
    let mut buf = [0u8; 4096];
    let mut rest = &routes[..];
    let mut total = 0;
    while !rest.is_empty() {
        let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
        let n = b.announce(&attrs, AfiSafi::IPV6_UNICAST, rest).unwrap();
        let len = b.finish().unwrap();
        let u = Update::parse(&buf[HEADER_LEN..len], &cfg).unwrap();
        // RFC 7606 §5.1: MP_REACH_NLRI is the first attribute.
        assert_eq!(
            u.attributes().next().unwrap().unwrap().type_code,
            AttrType::MP_REACH_NLRI
        );
        let got: Vec<_> = u.mp_reach_nlri().collect();
        let want: Vec<Nlri> = rest[..n]
            .iter()
            .map(|r| Nlri::new(Prefix::V6(r.prefix)))
            .collect();
        assert_eq!(got, want);
        total += n;
        rest = &rest[n..];
    }
    assert_eq!(total, 5_000);
}

#[test]
fn builder_errors() {
    let cfg = UpdateConfig::default();
    let mut small = [0u8; 10];
    assert!(matches!(
        UpdateBuilder::new(&mut small, &cfg),
        Err(BuildError::Encode(_))
    ));
    let mut buf = [0u8; 4096];
    let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
    let attrs = PathAttributes {
        next_hop: Some(NextHop::V4(Ipv4Addr::LOCALHOST)),
        ..Default::default()
    };
    b.announce::<Prefix>(&attrs, AfiSafi::IPV4_UNICAST, &[])
        .unwrap();
    assert_eq!(b.withdraw(&[]), Err(BuildError::Order));
    let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
    // IPv6 NLRI need an IPv6 next hop.
    let p6 = [Nlri::new(
        Ipv6Prefix::new(Ipv6Addr::LOCALHOST, 128).unwrap(),
    )];
    assert_eq!(
        b.announce(&attrs, AfiSafi::IPV6_UNICAST, &p6),
        Err(BuildError::NextHop)
    );
    // Wrong family prefixes.
    let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
    assert_eq!(
        b.withdraw_mp(AfiSafi::IPV4_UNICAST, &p6),
        Err(BuildError::Family)
    );
}
