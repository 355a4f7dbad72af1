//! RFC 7606 table: every error case the RFC lists (and those the later
//! attribute RFCs add), with the verdict and the NOTIFICATION.

use corebgp_core::update::*;
use corebgp_core::wire::AfiSafi;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An UPDATE body with the given attributes and IPv4 NLRI (no withdrawals).
fn body(attrs: &str, nlri: &str) -> Vec<u8> {
    let a = hex(attrs);
    let mut b = vec![0, 0];
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(&hex(nlri));
    b
}

const O: &str = "40010100";
const P: &str = "400206 0201 0000fde9";
const N: &str = "400304 c0000201";
const NLRI: &str = "180a0000";
const V6_REACH: &str = "900e001c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Data {
    Empty,
    /// The offending attribute, as it appears in the attribute list.
    Attr(&'static str),
    Byte(u8),
}

struct Case {
    name: &'static str,
    cfg: UpdateConfig,
    body: Vec<u8>,
    action: Option<Action>,
    notification: Option<(u8, u8, Data)>,
}

fn ext() -> UpdateConfig {
    UpdateConfig {
        peer: PeerType::External,
        ..UpdateConfig::default()
    }
}
fn two_octet() -> UpdateConfig {
    UpdateConfig {
        four_octet_as: false,
        ..UpdateConfig::default()
    }
}

fn case(
    name: &'static str,
    attrs: &[&str],
    nlri: &str,
    action: Option<Action>,
    n: Option<(u8, u8, Data)>,
) -> Case {
    Case {
        name,
        cfg: UpdateConfig::default(),
        body: body(&attrs.join(" "), nlri),
        action,
        notification: n,
    }
}

fn cases() -> Vec<Case> {
    use Action::*;
    use Data::*;
    const TAW: Option<Action> = Some(TreatAsWithdraw);
    const DISCARD: Option<Action> = Some(AttributeDiscard);
    const RESET: Option<Action> = Some(SessionReset);
    let v6 = Some(AfiSafiDisable(AfiSafi::IPV6_UNICAST));
    let mut v = vec![
        case("clean", &[O, P, N], NLRI, None, None),
        // §3 a: section lengths → session reset, 3/1.
        Case {
            name: "§3a withdrawn length overrun",
            cfg: UpdateConfig::default(),
            body: hex("0005 0000"),
            action: RESET,
            notification: Some((3, 1, Empty)),
        },
        Case {
            name: "§3a total attribute length overrun",
            cfg: UpdateConfig::default(),
            body: hex("0000 00ff 40010100"),
            action: RESET,
            notification: Some((3, 1, Empty)),
        },
        // §4: attribute header cut short / attribute overruns the list.
        case(
            "§4 truncated attribute header",
            &[O, P, N, "c0"],
            NLRI,
            TAW,
            Some((3, 1, Empty)),
        ),
        case(
            "§4 attribute length overrun",
            &[O, P, N, "c00810 ffffff01"],
            NLRI,
            TAW,
            Some((3, 1, Empty)),
        ),
        // §3 c: Optional/Transitive flags in conflict.
        case(
            "§3c ORIGIN flagged optional",
            &["c0010100", P, N],
            NLRI,
            TAW,
            Some((3, 4, Attr("c0010100"))),
        ),
        case(
            "§3c MED flagged well-known",
            &[O, P, N, "40040400000001"],
            NLRI,
            TAW,
            Some((3, 4, Attr("40040400000001"))),
        ),
        // §3 d: missing well-known mandatory attributes.
        case(
            "§3d missing ORIGIN",
            &[P, N],
            NLRI,
            TAW,
            Some((3, 3, Byte(1))),
        ),
        case(
            "§3d missing AS_PATH",
            &[O, N],
            NLRI,
            TAW,
            Some((3, 3, Byte(2))),
        ),
        case(
            "§3d missing NEXT_HOP with IPv4 NLRI",
            &[O, P],
            NLRI,
            TAW,
            Some((3, 3, Byte(3))),
        ),
        case(
            "§3d NEXT_HOP not needed for MP_REACH only",
            &[V6_REACH, O, P],
            "",
            None,
            None,
        ),
        case(
            "§3d missing ORIGIN with MP_REACH",
            &[V6_REACH, P],
            "",
            TAW,
            Some((3, 3, Byte(1))),
        ),
        // §3 g: repeated attributes.
        case(
            "§3g repeated MP_UNREACH",
            &["800f03000201", "800f03000201"],
            "",
            RESET,
            Some((3, 1, Empty)),
        ),
        case(
            "§3g repeated MP_REACH",
            &[V6_REACH, O, P, V6_REACH],
            "",
            RESET,
            Some((3, 1, Empty)),
        ),
        case(
            "§3g repeated MED: first kept",
            &[O, P, N, "80040400000001", "80040400000002"],
            NLRI,
            None,
            None,
        ),
        // §5.2: attributes but no reachable NLRI → anything above discard resets.
        case(
            "§5.2 bad ORIGIN without NLRI",
            &["4001020000", P, N],
            "",
            RESET,
            Some((3, 5, Attr("4001020000"))),
        ),
        case(
            "§5.2 truncated list without NLRI",
            &[O, "c0"],
            "",
            RESET,
            Some((3, 1, Empty)),
        ),
        case(
            "§5.2 discard-only without NLRI",
            &[O, P, N, "40060101"],
            "",
            DISCARD,
            Some((3, 5, Attr("40060101"))),
        ),
        case(
            "§5.2 withdrawal with clean MP_UNREACH",
            &["800f08 000201 20 20010db8"],
            "",
            None,
            None,
        ),
        // §5.3: NLRI syntax.
        case(
            "§5.3 IPv4 NLRI prefix length 33",
            &[O, P, N],
            "21 0a00000000",
            RESET,
            Some((3, 10, Empty)),
        ),
        case(
            "§5.3 IPv4 NLRI truncated",
            &[O, P, N],
            "18 0a00",
            RESET,
            Some((3, 10, Empty)),
        ),
        Case {
            name: "§5.3 withdrawn routes truncated",
            cfg: UpdateConfig::default(),
            body: hex("0002 180a 0000"),
            action: RESET,
            notification: Some((3, 10, Empty)),
        },
        // §7.1 ORIGIN.
        case(
            "§7.1 ORIGIN length 2",
            &["4001020000", P, N],
            NLRI,
            TAW,
            Some((3, 5, Attr("4001020000"))),
        ),
        case(
            "§7.1 ORIGIN value 3",
            &["40010103", P, N],
            NLRI,
            TAW,
            Some((3, 6, Attr("40010103"))),
        ),
        // §7.2 AS_PATH (3/11 has no data in RFC 4271 §6.3).
        case(
            "§7.2 AS_PATH unknown segment type",
            &[O, "400206 0501 0000fde9", N],
            NLRI,
            TAW,
            Some((3, 11, Empty)),
        ),
        case(
            "§7.2 AS_PATH zero segment length",
            &[O, "400202 0200", N],
            NLRI,
            TAW,
            Some((3, 11, Empty)),
        ),
        case(
            "§7.2 AS_PATH segment overrun",
            &[O, "400206 0202 0000fde9", N],
            NLRI,
            TAW,
            Some((3, 11, Empty)),
        ),
        case(
            "§7.2 AS_PATH lone trailing octet",
            &[O, "400207 0201 0000fde9 02", N],
            NLRI,
            TAW,
            Some((3, 11, Empty)),
        ),
        case(
            "RFC 7607 AS_PATH with AS 0",
            &[O, "400206 0201 00000000", N],
            NLRI,
            TAW,
            Some((3, 11, Empty)),
        ),
        case(
            "§7.2 empty AS_PATH is fine",
            &[O, "400200", N],
            NLRI,
            None,
            None,
        ),
        // §7.3 NEXT_HOP.
        case(
            "§7.3 NEXT_HOP length 5",
            &[O, P, "400305 c000020100"],
            NLRI,
            TAW,
            Some((3, 5, Attr("400305c000020100"))),
        ),
        case(
            "§7.3 bad NEXT_HOP without IPv4 NLRI",
            &[V6_REACH, O, P, "400303 c00002"],
            "",
            DISCARD,
            Some((3, 5, Attr("400303c00002"))),
        ),
        // §7.4 MED.
        case(
            "§7.4 MED length 3",
            &[O, P, N, "800403 000001"],
            NLRI,
            TAW,
            Some((3, 5, Attr("800403000001"))),
        ),
        // §7.5 LOCAL_PREF.
        case(
            "§7.5 LOCAL_PREF length 3",
            &[O, P, N, "400503 000064"],
            NLRI,
            TAW,
            Some((3, 5, Attr("400503000064"))),
        ),
        // §7.6 ATOMIC_AGGREGATE.
        case(
            "§7.6 ATOMIC_AGGREGATE length 1",
            &[O, P, N, "40060101"],
            NLRI,
            DISCARD,
            Some((3, 5, Attr("40060101"))),
        ),
        case(
            "§7.6 ATOMIC_AGGREGATE flagged optional",
            &[O, P, N, "c00600"],
            NLRI,
            TAW,
            Some((3, 4, Attr("c00600"))),
        ),
        // §7.7 AGGREGATOR.
        case(
            "§7.7 AGGREGATOR length 7",
            &[O, P, N, "c00707 0000fde9 c00002"],
            NLRI,
            DISCARD,
            Some((3, 5, Attr("c007070000fde9c00002"))),
        ),
        case(
            "§7.7 AGGREGATOR 2-octet form on a 4-octet session",
            &[O, P, N, "c00706 fde9 c0000201"],
            NLRI,
            DISCARD,
            Some((3, 5, Attr("c00706fde9c0000201"))),
        ),
        case(
            "RFC 7607 AGGREGATOR AS 0",
            &[O, P, N, "c00708 00000000 c0000201"],
            NLRI,
            DISCARD,
            Some((3, 9, Attr("c0070800000000c0000201"))),
        ),
        // §7.8 COMMUNITIES.
        case(
            "§7.8 COMMUNITIES length 0",
            &[O, P, N, "c00800"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c00800"))),
        ),
        case(
            "§7.8 COMMUNITIES length 5",
            &[O, P, N, "c00805 fde9006401"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c00805fde9006401"))),
        ),
        // §7.9 ORIGINATOR_ID.
        case(
            "§7.9 ORIGINATOR_ID length 3",
            &[O, P, N, "800903 0a0000"],
            NLRI,
            TAW,
            Some((3, 5, Attr("8009030a0000"))),
        ),
        // §7.10 CLUSTER_LIST.
        case(
            "§7.10 CLUSTER_LIST length 6",
            &[O, P, N, "800a06 0a0000010a00"],
            NLRI,
            TAW,
            Some((3, 5, Attr("800a060a0000010a00"))),
        ),
        // §7.11 MP_REACH_NLRI.
        case(
            "§7.11 next hop length 5 for IPv6",
            &["800e11 0002 01 05 0102030405 00 30 20010db80001", O, P],
            "",
            v6,
            Some((3, 9, Attr("800e11000201050102030405003020010db80001"))),
        ),
        case(
            "§7.11 next hop overruns",
            &["800e05 0002 01 10 00", O, P],
            "",
            v6,
            Some((3, 9, Attr("800e050002011000"))),
        ),
        case(
            "§7.11 AFI/SAFI unreadable",
            &["800e02 0002", O, P],
            "",
            RESET,
            Some((3, 9, Attr("800e020002"))),
        ),
        case(
            "§7.11 NLRI prefix length 129",
            &[
                "800e16 0002 01 10 20010db8000000000000000000000001 00 81",
                O,
                P,
            ],
            "",
            v6,
            Some((
                3,
                9,
                Attr("800e160002011020010db800000000000000000000000100 81"),
            )),
        ),
        case(
            "§7.11 flags error → treat-as-withdraw",
            &[
                "c00e1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001",
                O,
                P,
            ],
            "",
            TAW,
            Some((
                3,
                4,
                Attr("c00e1c00020110 20010db8000000000000000000000001 00 30 20010db80001"),
            )),
        ),
        // §7.12 MP_UNREACH_NLRI.
        case(
            "§7.12 NLRI prefix length 129",
            &["800f04 000201 81"],
            "",
            v6,
            Some((3, 9, Attr("800f0400020181"))),
        ),
        case(
            "§7.12 AFI/SAFI unreadable",
            &["800f02 0002"],
            "",
            RESET,
            Some((3, 9, Attr("800f020002"))),
        ),
        // §7.13 Traffic Engineering: not decoded, kept raw.
        case(
            "§7.13 Traffic Engineering kept raw",
            &[O, P, N, "801802 0102"],
            NLRI,
            None,
            None,
        ),
        // §7.14 EXTENDED COMMUNITIES.
        case(
            "§7.14 EXTENDED COMMUNITIES length 7",
            &[O, P, N, "c01007 00020000000000"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c0100700020000000000"))),
        ),
        // §7.15 IPv6 Address Specific Extended Community.
        case(
            "§7.15 IPv6 ext community length 19",
            &[O, P, N, "c01913 00020000000000000000000000000000000000"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c0191300020000000000000000000000000000000000"))),
        ),
        // §7.16 ATTR_SET.
        case(
            "§7.16 ATTR_SET length 3",
            &[O, P, N, "c08003 0000fd"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c080030000fd"))),
        ),
        // RFC 8092 §6 LARGE_COMMUNITY.
        case(
            "RFC 8092 LARGE_COMMUNITY length 11",
            &[O, P, N, "c0200b 0000000100000002000000"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c0200b0000000100000002000000"))),
        ),
        // RFC 9234 §5 OTC.
        case(
            "RFC 9234 OTC length 3",
            &[O, P, N, "c02303 00fde9"],
            NLRI,
            TAW,
            Some((3, 5, Attr("c0230300fde9"))),
        ),
        // RFC 7311 §3.4 AIGP: malformed → attribute discard.
        case(
            "RFC 7311 AIGP TLV length 10",
            &[O, P, N, "801a0a 01000a 00000000000003"],
            NLRI,
            DISCARD,
            Some((3, 9, Attr("801a0a01000a00000000000003"))),
        ),
        case(
            "RFC 7311 AIGP TLV overrun",
            &[O, P, N, "801a04 01000b00"],
            NLRI,
            DISCARD,
            Some((3, 9, Attr("801a0401000b00"))),
        ),
        // RFC 4271 §6.3: unrecognised well-known attribute.
        case(
            "RFC 4271 unrecognized well-known",
            &[O, P, N, "406302 abcd"],
            NLRI,
            RESET,
            Some((3, 2, Attr("406302abcd"))),
        ),
        case(
            "RFC 4271 unknown optional kept",
            &[O, P, N, "c06302 abcd"],
            NLRI,
            None,
            None,
        ),
    ];
    // §7.2 / RFC 5065: confederation segments from an external peer.
    let mut c = case(
        "§7.2 AS_CONFED_SEQUENCE from external peer",
        &[O, "400206 0301 0000fde9", N],
        NLRI,
        TAW,
        Some((3, 11, Empty)),
    );
    c.cfg = ext();
    v.push(c);
    // §7.5: LOCAL_PREF from an external peer is discarded (not an error).
    let mut c = case(
        "§7.5 LOCAL_PREF from external peer discarded",
        &[O, P, N, "400503 000064"],
        NLRI,
        None,
        None,
    );
    c.cfg = ext();
    v.push(c);
    // §7.7 on a 2-octet session: length must be 6.
    let mut c = case(
        "§7.7 AGGREGATOR 4-octet form on a 2-octet session",
        &[O, "400204 0201 fde9", N, "c00708 0000fde9 c0000201"],
        NLRI,
        DISCARD,
        Some((3, 5, Attr("c007080000fde9c0000201"))),
    );
    c.cfg = two_octet();
    v.push(c);
    // RFC 6793 §6: AS4_PATH / AS4_AGGREGATOR malformed → attribute discard.
    let mut c = case(
        "RFC 6793 AS4_PATH malformed",
        &[O, "400204 0201 5ba0", N, "c01106 0202 fa56ea01"],
        NLRI,
        DISCARD,
        Some((3, 9, Attr("c011060202fa56ea01"))),
    );
    c.cfg = two_octet();
    v.push(c);
    let mut c = case(
        "RFC 6793 AS4_PATH with confed segment",
        &[O, "400204 0201 5ba0", N, "c01106 0301 fa56ea01"],
        NLRI,
        DISCARD,
        Some((3, 9, Attr("c011060301fa56ea01"))),
    );
    c.cfg = two_octet();
    v.push(c);
    let mut c = case(
        "RFC 6793 AS4_AGGREGATOR length 6",
        &[O, "400204 0201 5ba0", N, "c01206 5ba0c0000201"],
        NLRI,
        DISCARD,
        Some((3, 5, Attr("c012065ba0c0000201"))),
    );
    c.cfg = two_octet();
    v.push(c);
    v
}

#[test]
fn rfc7606_table() {
    let cases = cases();
    let mut failures = Vec::new();
    for c in &cases {
        let (action, n) = match Update::parse(&c.body, &c.cfg) {
            Err(e) => (Some(e.action), Some(e.notification)),
            Ok(u) => {
                let e = u
                    .afi_safi_disable()
                    .next()
                    .or(u.treat_as_withdraw())
                    .or(u.attribute_discard())
                    .copied();
                (e.map(|e| e.action), e.map(|e| e.notification))
            }
        };
        let got = n.map(|n| (n.code.code(), n.code.subcode(), n.data.as_bytes().to_vec()));
        let want = c.notification.map(|(code, sub, d)| {
            let data = match d {
                Data::Empty => vec![],
                Data::Attr(h) => hex(h),
                Data::Byte(b) => vec![b],
            };
            (code, sub, data)
        });
        if action != c.action || got != want {
            failures.push(format!(
                "{}: got {action:?} {got:x?}, want {:?} {want:x?}",
                c.name, c.action
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn errors_display_and_rank() {
    assert!(Action::SessionReset > Action::AfiSafiDisable(AfiSafi::IPV4_UNICAST));
    assert!(Action::AfiSafiDisable(AfiSafi::IPV4_UNICAST) > Action::TreatAsWithdraw);
    assert!(Action::TreatAsWithdraw > Action::AttributeDiscard);
    let b = body(&["40010103", P, N].join(" "), NLRI);
    let u = Update::parse(&b, &UpdateConfig::default()).unwrap();
    let e = u.treat_as_withdraw().unwrap();
    assert_eq!(e.type_code, Some(1));
    assert!(!e.is_session_reset());
    assert!(e.to_string().contains("InvalidOrigin"));
    // The attribute stays "seen" (present though malformed) but has no value.
    assert!(u.seen().contains(AttrType::ORIGIN));
    assert_eq!(u.origin(), None);
}
