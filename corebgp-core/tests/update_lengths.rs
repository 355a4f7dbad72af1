//! The flags and length rule of every attribute whose RFC 7606 verdict
//! follows from those alone, at and around each boundary: the verdict, the
//! NOTIFICATION and what the getter reads.

use corebgp_core::update::*;

const O: [u8; 4] = [0x40, 1, 1, 0];
const P: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
/// AS_PATH for a 2-octet session.
const P2: [u8; 7] = [0x40, 2, 4, 2, 1, 0xfd, 0xe9];
const N: [u8; 7] = [0x40, 3, 4, 192, 0, 2, 1];
const NLRI: [u8; 4] = [24, 10, 0, 0];

#[derive(Clone, Copy, Debug)]
enum Rule {
    Exact(usize),
    Multiple(usize),
    AtLeast(usize),
}

impl Rule {
    fn ok(self, len: usize) -> bool {
        match self {
            Rule::Exact(n) => len == n,
            Rule::Multiple(n) => len != 0 && len.is_multiple_of(n),
            Rule::AtLeast(n) => len >= n,
        }
    }
    fn n(self) -> usize {
        match self {
            Rule::Exact(n) | Rule::Multiple(n) | Rule::AtLeast(n) => n,
        }
    }
}

struct Case {
    type_code: u8,
    flags: u8,
    rule: Rule,
    on_length: Action,
    cfg: UpdateConfig,
    /// What the getter reads from a well-formed value, as bytes.
    read: fn(&Update<'_>) -> Option<Vec<u8>>,
}

fn attr(flags: u8, t: u8, v: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, t, v.len() as u8];
    a.extend_from_slice(v);
    a
}

fn body(cfg: &UpdateConfig, extra: &[u8]) -> Vec<u8> {
    let path = if cfg.four_octet_as { &P[..] } else { &P2 };
    let attrs = [&O[..], path, &N, extra].concat();
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(&NLRI);
    b
}

fn verdict<'a>(u: &'a Update<'_>) -> Option<&'a UpdateError<'a>> {
    u.afi_safi_disable()
        .next()
        .or(u.treat_as_withdraw())
        .or(u.attribute_discard())
}

fn u32s(v: impl Iterator<Item = u32>) -> Vec<u8> {
    v.flat_map(u32::to_be_bytes).collect()
}

/// An aggregator as its 8-byte (`four`) or 6-byte value.
fn agg(g: Aggregator, four: bool) -> Vec<u8> {
    let mut v = if four {
        g.asn.to_be_bytes().to_vec()
    } else {
        (g.asn as u16).to_be_bytes().to_vec()
    };
    v.extend_from_slice(&g.addr.octets());
    v
}

fn cases() -> Vec<Case> {
    use Action::{AttributeDiscard as Discard, TreatAsWithdraw as Taw};
    let d = UpdateConfig::default();
    let two = UpdateConfig {
        four_octet_as: false,
        ..d
    };
    vec![
        Case {
            type_code: AttrType::MED,
            flags: 0x80,
            rule: Rule::Exact(4),
            on_length: Taw,
            cfg: d,
            read: |u| u.med().map(|m| m.to_be_bytes().to_vec()),
        },
        Case {
            type_code: AttrType::LOCAL_PREF,
            flags: 0x40,
            rule: Rule::Exact(4),
            on_length: Taw,
            cfg: d,
            read: |u| u.local_pref().map(|m| m.to_be_bytes().to_vec()),
        },
        Case {
            type_code: AttrType::ATOMIC_AGGREGATE,
            flags: 0x40,
            rule: Rule::Exact(0),
            on_length: Discard,
            cfg: d,
            read: |u| u.atomic_aggregate().then(Vec::new),
        },
        Case {
            type_code: AttrType::AGGREGATOR,
            flags: 0xc0,
            rule: Rule::Exact(8),
            on_length: Discard,
            cfg: d,
            read: |u| u.aggregator().map(|g| agg(g, true)),
        },
        Case {
            type_code: AttrType::AGGREGATOR,
            flags: 0xc0,
            rule: Rule::Exact(6),
            on_length: Discard,
            cfg: two,
            read: |u| u.aggregator().map(|g| agg(g, false)),
        },
        Case {
            type_code: AttrType::AS4_AGGREGATOR,
            flags: 0xc0,
            rule: Rule::Exact(8),
            on_length: Discard,
            cfg: two,
            // Read through AGGREGATOR = AS_TRANS, added by the test.
            read: |u| u.aggregator().map(|g| agg(g, true)),
        },
        Case {
            type_code: AttrType::COMMUNITIES,
            flags: 0xc0,
            rule: Rule::Multiple(4),
            on_length: Taw,
            cfg: d,
            read: |u| u.communities().map(|c| u32s(c.iter().map(|c| c.0))),
        },
        Case {
            type_code: AttrType::ORIGINATOR_ID,
            flags: 0x80,
            rule: Rule::Exact(4),
            on_length: Taw,
            cfg: d,
            read: |u| u.originator_id().map(|a| a.octets().to_vec()),
        },
        Case {
            type_code: AttrType::CLUSTER_LIST,
            flags: 0x80,
            rule: Rule::Multiple(4),
            on_length: Taw,
            cfg: d,
            read: |u| {
                u.cluster_list()
                    .map(|c| c.iter().flat_map(|a| a.octets()).collect())
            },
        },
        Case {
            type_code: AttrType::EXTENDED_COMMUNITIES,
            flags: 0xc0,
            rule: Rule::Multiple(8),
            on_length: Taw,
            cfg: d,
            read: |u| {
                u.ext_communities()
                    .map(|c| c.iter().flat_map(|c| c.0).collect())
            },
        },
        Case {
            type_code: AttrType::IPV6_EXTENDED_COMMUNITIES,
            flags: 0xc0,
            rule: Rule::Multiple(20),
            on_length: Taw,
            cfg: d,
            read: |u| {
                u.ipv6_ext_communities()
                    .map(|c| c.iter().flat_map(|c| c.0).collect())
            },
        },
        Case {
            type_code: AttrType::LARGE_COMMUNITY,
            flags: 0xc0,
            rule: Rule::Multiple(12),
            on_length: Taw,
            cfg: d,
            read: |u| {
                u.large_communities().map(|c| {
                    u32s(
                        c.iter()
                            .flat_map(|c| [c.global_admin, c.local_data1, c.local_data2]),
                    )
                })
            },
        },
        Case {
            type_code: AttrType::OTC,
            flags: 0xc0,
            rule: Rule::Exact(4),
            on_length: Taw,
            cfg: d,
            read: |u| u.otc().map(|m| m.to_be_bytes().to_vec()),
        },
        Case {
            type_code: AttrType::ATTR_SET,
            flags: 0xc0,
            rule: Rule::AtLeast(4),
            on_length: Taw,
            cfg: d,
            // Checked, not decoded: nothing to read.
            read: |_| None,
        },
    ]
}

#[test]
fn length_rules_at_every_boundary() {
    for c in cases() {
        for len in 0..=3 * c.rule.n() + 2 {
            // Non-zero bytes: an aggregator's AS is not 0.
            let v: Vec<u8> = (1..=len as u8).collect();
            let a = attr(c.flags, c.type_code, &v);
            let mut extra = a.clone();
            if c.type_code == AttrType::AS4_AGGREGATOR {
                extra.extend_from_slice(&attr(
                    0xc0,
                    AttrType::AGGREGATOR,
                    &[0x5b, 0xa0, 1, 2, 3, 4],
                ));
            }
            let b = body(&c.cfg, &extra);
            let u = Update::parse(&b, &c.cfg).expect("no session reset");
            let what = format!("type {} length {len}", c.type_code);
            if c.rule.ok(len) {
                assert!(verdict(&u).is_none(), "{what}: {:?}", verdict(&u));
                assert!(!u.discarded().contains(c.type_code), "{what}");
                if c.type_code != AttrType::ATTR_SET {
                    assert_eq!((c.read)(&u), Some(v), "{what}");
                }
            } else {
                let e = verdict(&u).unwrap_or_else(|| panic!("{what}: no verdict"));
                assert_eq!(e.action, c.on_length, "{what}");
                assert_eq!(e.kind, ErrorKind::Length, "{what}");
                assert_eq!(e.type_code, Some(c.type_code), "{what}");
                assert_eq!(e.notification.code.code(), 3, "{what}");
                assert_eq!(e.notification.code.subcode(), 5, "{what}");
                assert_eq!(e.notification.data.as_bytes(), &a[..], "{what}");
                assert_eq!(
                    u.discarded().contains(c.type_code),
                    c.on_length == Action::AttributeDiscard,
                    "{what}"
                );
                if c.type_code != AttrType::AS4_AGGREGATOR {
                    assert_eq!((c.read)(&u), None, "{what}");
                }
            }
        }
    }
}

#[test]
fn wrong_flags_are_treat_as_withdraw_before_the_length() {
    for c in cases() {
        for flags in [0x00u8, 0x40, 0x80, 0xc0] {
            if flags == c.flags {
                continue;
            }
            // A wrong length too: the flags are checked first (RFC 7606 §3 c).
            for len in [c.rule.n(), c.rule.n() + 1] {
                let v = vec![7u8; len];
                let a = attr(flags | 0x20, c.type_code, &v);
                let b = body(&c.cfg, &a);
                let u = Update::parse(&b, &c.cfg).expect("no session reset");
                let what = format!("type {} flags {flags:#x} length {len}", c.type_code);
                let e = u.treat_as_withdraw().unwrap_or_else(|| panic!("{what}"));
                assert_eq!(e.kind, ErrorKind::Flags, "{what}");
                assert_eq!(e.notification.code.subcode(), 4, "{what}");
                assert_eq!(e.notification.data.as_bytes(), &a[..], "{what}");
                assert_eq!((c.read)(&u), None, "{what}");
            }
        }
    }
}

#[test]
fn ignored_attributes() {
    let ext = UpdateConfig {
        peer: PeerType::External,
        ..UpdateConfig::default()
    };
    // RFC 7606 §7.5: LOCAL_PREF from an external peer, whatever its flags
    // and length, is ignored.
    for a in [attr(0x40, 5, &[0, 0, 0, 100]), attr(0xc0, 5, &[1])] {
        let b = body(&ext, &a);
        let u = Update::parse(&b, &ext).unwrap();
        assert!(u.action().is_none());
        assert!(u.discarded().contains(AttrType::LOCAL_PREF));
        assert_eq!(u.local_pref(), None);
    }
    // RFC 6793 §3: AS4_AGGREGATOR between 4-octet speakers is ignored once
    // its flags are right, whatever its length; wrong flags still count.
    let cfg = UpdateConfig::default();
    for v in [&[0u8, 0, 0, 1, 1, 2, 3, 4][..], &[1]] {
        let a = attr(0xc0, AttrType::AS4_AGGREGATOR, v);
        let b = body(&cfg, &a);
        let u = Update::parse(&b, &cfg).unwrap();
        assert!(u.action().is_none());
        assert!(u.discarded().contains(AttrType::AS4_AGGREGATOR));
    }
    let a = attr(0x80, AttrType::AS4_AGGREGATOR, &[1]);
    let b = body(&cfg, &a);
    let u = Update::parse(&b, &cfg).unwrap();
    assert_eq!(u.treat_as_withdraw().unwrap().kind, ErrorKind::Flags);
    assert!(!u.discarded().contains(AttrType::AS4_AGGREGATOR));
}

#[test]
fn aggregator_as_zero_is_discarded() {
    let two = UpdateConfig {
        four_octet_as: false,
        ..UpdateConfig::default()
    };
    for (cfg, t, v) in [
        (
            UpdateConfig::default(),
            AttrType::AGGREGATOR,
            &[0u8, 0, 0, 0, 1, 2, 3, 4][..],
        ),
        (two, AttrType::AGGREGATOR, &[0, 0, 1, 2, 3, 4]),
        (two, AttrType::AS4_AGGREGATOR, &[0, 0, 0, 0, 1, 2, 3, 4]),
    ] {
        let a = attr(0xc0, t, v);
        let b = body(&cfg, &a);
        let u = Update::parse(&b, &cfg).unwrap();
        let e = u.attribute_discard().unwrap();
        assert_eq!(e.kind, ErrorKind::MalformedOptional);
        assert_eq!(e.notification.code.subcode(), 9);
        assert_eq!(e.notification.data.as_bytes(), &a[..]);
        assert!(u.discarded().contains(t));
        // An address of 0 with a non-zero AS is fine.
        let mut v = v.to_vec();
        let n = v.len();
        v[n - 5] = 1;
        v[n - 4..].fill(0);
        let b = body(&cfg, &attr(0xc0, t, &v));
        let u = Update::parse(&b, &cfg).unwrap();
        assert!(u.action().is_none(), "{t} {v:?}");
    }
}
