//! `Update::announced` / `Update::withdrawals` read exactly what the
//! per-field iterators read: the NLRI field (or Withdrawn Routes) as IPv4
//! unicast, then MP_REACH_NLRI (MP_UNREACH_NLRI) in its family, host bits
//! masked, path identifiers with ADD-PATH.

use corebgp_core::update::*;
use corebgp_core::wire::{Afi, AfiSafi, Safi};
use proptest::prelude::*;

const FAMILIES: [AfiSafi; 5] = [
    AfiSafi::IPV4_UNICAST,
    AfiSafi::IPV4_MULTICAST,
    AfiSafi::IPV6_UNICAST,
    AfiSafi::IPV6_MULTICAST,
    // Not decoded here: no prefixes.
    AfiSafi::new(Afi::L2vpn, Safi::Evpn),
];

/// One NLRI field of `family`: entries with random (host) bits.
fn field(v6: bool, add_path: bool) -> impl Strategy<Value = Vec<u8>> {
    let max = if v6 { 128u8 } else { 32 };
    prop::collection::vec(
        (
            any::<u32>(),
            0..=max,
            prop::collection::vec(any::<u8>(), 16),
        ),
        0..5,
    )
    .prop_map(move |entries| {
        let mut out = Vec::new();
        for (id, len, bytes) in entries {
            if add_path {
                out.extend_from_slice(&id.to_be_bytes());
            }
            out.push(len);
            out.extend_from_slice(&bytes[..usize::from(len).div_ceil(8)]);
        }
        out
    })
}

fn attr(t: u8, v: &[u8]) -> Vec<u8> {
    let mut a = vec![0x90, t];
    a.extend_from_slice(&(v.len() as u16).to_be_bytes());
    a.extend_from_slice(v);
    a
}

fn family_bytes(f: AfiSafi) -> [u8; 3] {
    let [a0, a1] = u16::from(f.afi).to_be_bytes();
    [a0, a1, u8::from(f.safi)]
}

fn case() -> impl Strategy<Value = (UpdateConfig, Vec<u8>)> {
    (
        0..32u8,
        0..FAMILIES.len(),
        0..FAMILIES.len(),
        any::<(bool, bool)>(),
    )
        .prop_flat_map(|(ap_bits, reach, unreach, (with_reach, with_unreach))| {
            let mut add_path = Families::NONE;
            for (i, f) in FAMILIES[..4].iter().enumerate() {
                if ap_bits & (1 << i) != 0 {
                    add_path = add_path.with(*f);
                }
            }
            let cfg = UpdateConfig {
                add_path_rx: add_path,
                ..UpdateConfig::default()
            };
            let (rf, uf) = (FAMILIES[reach], FAMILIES[unreach]);
            let v6 = |f: AfiSafi| f.afi == Afi::Ipv6;
            let v4ap = add_path.contains(AfiSafi::IPV4_UNICAST);
            (
                field(false, v4ap),
                field(false, v4ap),
                field(v6(rf), add_path.contains(rf)),
                field(v6(uf), add_path.contains(uf)),
            )
                .prop_map(move |(wd, nlri, mp_r, mp_u)| {
                    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 1];
                    if with_reach {
                        let mut v = family_bytes(rf).to_vec();
                        if v6(rf) {
                            v.push(16);
                            v.extend_from_slice(&[
                                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                            ]);
                        } else {
                            v.extend_from_slice(&[4, 192, 0, 2, 1]);
                        }
                        v.push(0);
                        v.extend_from_slice(&mp_r);
                        attrs.extend_from_slice(&attr(14, &v));
                    }
                    if with_unreach {
                        let mut v = family_bytes(uf).to_vec();
                        v.extend_from_slice(&mp_u);
                        attrs.extend_from_slice(&attr(15, &v));
                    }
                    let mut b = (wd.len() as u16).to_be_bytes().to_vec();
                    b.extend_from_slice(&wd);
                    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
                    b.extend_from_slice(&attrs);
                    b.extend_from_slice(&nlri);
                    (cfg, b)
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]

    #[test]
    fn routes_are_the_fields_in_turn((cfg, body) in case()) {
        let u = Update::parse(&body, &cfg).expect("well formed");
        prop_assert_eq!(u.action(), None);
        let v4 = |n: Nlri<Ipv4Prefix>| (AfiSafi::IPV4_UNICAST, Nlri { path_id: n.path_id, prefix: Prefix::V4(n.prefix) });
        let fam = |m: Option<AfiSafi>| m.unwrap_or(AfiSafi::IPV4_UNICAST);
        let rf = fam(u.mp_reach().map(|m| m.family));
        let want: Vec<_> = u.nlri().map(v4).chain(u.mp_reach_nlri().map(|n| (rf, n))).collect();
        let got: Vec<_> = u.announced().collect();
        prop_assert_eq!(u.announced().size_hint(), (want.len(), Some(want.len())));
        prop_assert_eq!(got, want);
        let uf = fam(u.mp_unreach().map(|m| m.family));
        let want: Vec<_> = u.withdrawn().map(v4).chain(u.mp_unreach_nlri().map(|n| (uf, n))).collect();
        let got: Vec<_> = u.withdrawals().collect();
        prop_assert_eq!(u.withdrawals().size_hint(), (want.len(), Some(want.len())));
        prop_assert_eq!(got, want);
        // Host bits are masked.
        for (_, n) in u.announced().chain(u.withdrawals()) {
            let ok = match n.prefix {
                Prefix::V4(p) => Ipv4Prefix::new(p.addr(), p.len()) == Some(p),
                Prefix::V6(p) => Ipv6Prefix::new(p.addr(), p.len()) == Some(p),
            };
            prop_assert!(ok, "{:?}", n);
        }
    }
}
