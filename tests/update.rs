//! Minimal UPDATE attribute walking and building, in test code.
//!
//! corebgp-core's wire codec splits an UPDATE into its three sections
//! ([`UpdateSections`]). This walker is deliberately independent of
//! corebgp-core's attribute decoder: every UPDATE a daemon sends is read by
//! both and compared ([`decode_update`]), so the interop tests check the
//! decoder against real traffic.

use std::net::{Ipv4Addr, Ipv6Addr};

use corebgp_core::update::{Update, UpdateConfig};
use corebgp_core::wire::{Afi, AfiSafi, UpdateSections};

pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MP_REACH_NLRI: u8 = 14;
pub const MP_UNREACH_NLRI: u8 = 15;

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const EXTENDED_LENGTH: u8 = 0x10;

/// What a test wants to know about a received UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedUpdate {
    pub withdrawn_v4: Vec<String>,
    pub announced_v4: Vec<String>,
    pub withdrawn_v6: Vec<String>,
    pub announced_v6: Vec<String>,
    pub origin: Option<u8>,
    pub as_path: Vec<u32>,
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The MP_REACH next hop(s) of an IPv6 family (global, then link-local if any).
    pub next_hop_v6: Vec<Ipv6Addr>,
    /// Attribute type codes in the order they appeared.
    pub attribute_types: Vec<u8>,
    /// `Some((afi, safi))` if this UPDATE is an End-of-RIB marker (RFC 4724).
    pub end_of_rib: Option<(u16, u8)>,
}

/// Walks the attributes of `s` (AS_PATH with 4-octet ASNs if
/// `four_octet_as`, as negotiated) and its NLRI.
pub fn decode_update(s: &UpdateSections<'_>, four_octet_as: bool) -> Result<DecodedUpdate, String> {
    let mut d = DecodedUpdate {
        withdrawn_v4: decode_prefixes(s.withdrawn, false)?,
        announced_v4: decode_prefixes(s.nlri, false)?,
        ..Default::default()
    };
    if s.withdrawn.is_empty() && s.attributes.is_empty() && s.nlri.is_empty() {
        d.end_of_rib = Some((1, 1));
        return Ok(d);
    }
    let mut a = s.attributes;
    let mut mp_unreach_empty = None;
    while !a.is_empty() {
        let [flags, ty, rest @ ..] = a else {
            return Err(format!("truncated attribute header {a:02x?}"));
        };
        let (len, rest) = if flags & EXTENDED_LENGTH != 0 {
            let [h, l, rest @ ..] = rest else {
                return Err("truncated extended length".into());
            };
            (usize::from(u16::from_be_bytes([*h, *l])), rest)
        } else {
            let [l, rest @ ..] = rest else {
                return Err("truncated length".into());
            };
            (usize::from(*l), rest)
        };
        if rest.len() < len {
            return Err(format!(
                "attribute {ty} length {len} overruns ({} left)",
                rest.len()
            ));
        }
        let (v, next) = rest.split_at(len);
        a = next;
        d.attribute_types.push(*ty);
        match *ty {
            ORIGIN => d.origin = v.first().copied(),
            AS_PATH => d.as_path = decode_as_path(v, four_octet_as)?,
            NEXT_HOP => {
                let b: [u8; 4] = v
                    .try_into()
                    .map_err(|_| format!("NEXT_HOP length {}", v.len()))?;
                d.next_hop_v4 = Some(Ipv4Addr::from(b));
            }
            MP_REACH_NLRI => {
                let [ah, al, safi, nhl, rest @ ..] = v else {
                    return Err("short MP_REACH_NLRI".into());
                };
                let afi = u16::from_be_bytes([*ah, *al]);
                let nhl = usize::from(*nhl);
                if rest.len() < nhl + 1 {
                    return Err("MP_REACH_NLRI next hop overruns".into());
                }
                let (nh, rest) = rest.split_at(nhl);
                let nlri = &rest[1..]; // skip the reserved byte
                if (afi, *safi) == (2, 1) {
                    for c in nh.chunks(16) {
                        let b: [u8; 16] = c
                            .try_into()
                            .map_err(|_| format!("IPv6 next hop length {nhl}"))?;
                        d.next_hop_v6.push(Ipv6Addr::from(b));
                    }
                    d.announced_v6.extend(decode_prefixes(nlri, true)?);
                } else if (afi, *safi) == (1, 1) {
                    d.announced_v4.extend(decode_prefixes(nlri, false)?);
                }
            }
            MP_UNREACH_NLRI => {
                let [ah, al, safi, rest @ ..] = v else {
                    return Err("short MP_UNREACH_NLRI".into());
                };
                let afi = u16::from_be_bytes([*ah, *al]);
                if rest.is_empty() {
                    mp_unreach_empty = Some((afi, *safi));
                } else if (afi, *safi) == (2, 1) {
                    d.withdrawn_v6.extend(decode_prefixes(rest, true)?);
                } else if (afi, *safi) == (1, 1) {
                    d.withdrawn_v4.extend(decode_prefixes(rest, false)?);
                }
            }
            _ => {}
        }
    }
    if d.attribute_types == [MP_UNREACH_NLRI] && s.withdrawn.is_empty() && s.nlri.is_empty() {
        d.end_of_rib = mp_unreach_empty;
    }
    cross_check(s, four_octet_as, &d)?;
    Ok(d)
}

/// Differential check: corebgp-core's UPDATE decoder must read every UPDATE
/// a real daemon sends exactly as this independent walker does (prefixes
/// announced and withdrawn, AS path, next hop, End-of-RIB), with no RFC 7606
/// verdict against it.
fn cross_check(
    s: &UpdateSections<'_>,
    four_octet_as: bool,
    d: &DecodedUpdate,
) -> Result<(), String> {
    let mut cfg = UpdateConfig::new();
    cfg.four_octet_as = four_octet_as;
    let u = Update::from_sections(*s, &cfg)
        .map_err(|e| format!("corebgp-core's decoder rejected a daemon's UPDATE: {e}"))?;
    if let Some(a) = u.action() {
        return Err(format!(
            "corebgp-core's decoder gave {a:?} on a daemon's UPDATE"
        ));
    }
    let split = |it: &mut dyn Iterator<Item = (AfiSafi, corebgp_core::update::Nlri)>| {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (f, n) in it {
            if f.afi == Afi::Ipv6 {
                v6.push(n.prefix.to_string())
            } else {
                v4.push(n.prefix.to_string())
            }
        }
        v4.sort();
        v6.sort();
        (v4, v6)
    };
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let (a4, a6) = split(&mut u.announced());
    let (w4, w6) = split(&mut u.withdrawals());
    let core = (a4, a6, w4, w6);
    let walker = (
        sorted(&d.announced_v4),
        sorted(&d.announced_v6),
        sorted(&d.withdrawn_v4),
        sorted(&d.withdrawn_v6),
    );
    if core != walker {
        return Err(format!(
            "prefixes differ: corebgp-core {core:?}, walker {walker:?}"
        ));
    }
    let path: Vec<u32> = u.as_path().map(|p| p.asns().collect()).unwrap_or_default();
    if path != d.as_path {
        return Err(format!(
            "AS paths differ: corebgp-core {path:?}, walker {:?}",
            d.as_path
        ));
    }
    if u.next_hop() != d.next_hop_v4 {
        return Err(format!(
            "next hops differ: corebgp-core {:?}, walker {:?}",
            u.next_hop(),
            d.next_hop_v4
        ));
    }
    let eor = u.end_of_rib().map(|f| (f.afi.to_raw(), f.safi.to_raw()));
    if eor != d.end_of_rib {
        return Err(format!(
            "End-of-RIB differs: corebgp-core {eor:?}, walker {:?}",
            d.end_of_rib
        ));
    }
    Ok(())
}

fn decode_as_path(mut v: &[u8], four: bool) -> Result<Vec<u32>, String> {
    let w = if four { 4 } else { 2 };
    let mut out = Vec::new();
    while let [_seg_type, n, rest @ ..] = v {
        let n = usize::from(*n);
        if rest.len() < n * w {
            return Err(format!("AS_PATH segment overruns: {v:02x?}"));
        }
        let (asns, next) = rest.split_at(n * w);
        out.extend(
            asns.chunks(w)
                .map(|c| c.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b))),
        );
        v = next;
    }
    if !v.is_empty() {
        return Err("trailing byte in AS_PATH".into());
    }
    Ok(out)
}

/// Decodes a run of NLRI prefixes into "addr/len" strings.
pub fn decode_prefixes(mut b: &[u8], ipv6: bool) -> Result<Vec<String>, String> {
    let max = if ipv6 { 128 } else { 32 };
    let mut out = Vec::new();
    while let [len, rest @ ..] = b {
        let len = *len;
        if len > max {
            return Err(format!("prefix length {len} > {max}"));
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return Err(format!("prefix overruns: {b:02x?}"));
        }
        let (p, next) = rest.split_at(n);
        if ipv6 {
            let mut a = [0u8; 16];
            a[..n].copy_from_slice(p);
            out.push(format!("{}/{len}", Ipv6Addr::from(a)));
        } else {
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(p);
            out.push(format!("{}/{len}", Ipv4Addr::from(a)));
        }
        b = next;
    }
    Ok(out)
}

/// Encodes "addr/len" prefixes as NLRI.
pub fn encode_prefixes(prefixes: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in prefixes {
        let (addr, len) = p
            .split_once('/')
            .unwrap_or_else(|| panic!("not a prefix: {p}"));
        let len: u8 = len
            .parse()
            .unwrap_or_else(|_| panic!("bad prefix length in {p}"));
        let bytes: Vec<u8> = if addr.contains(':') {
            addr.parse::<Ipv6Addr>()
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .octets()
                .to_vec()
        } else {
            addr.parse::<Ipv4Addr>()
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .octets()
                .to_vec()
        };
        out.push(len);
        out.extend_from_slice(&bytes[..usize::from(len).div_ceil(8)]);
    }
    out
}

fn attribute(flags: u8, ty: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    if value.len() > 255 {
        out.extend_from_slice(&[flags | EXTENDED_LENGTH, ty]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, ty, value.len() as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// ORIGIN IGP.
pub fn origin_igp() -> Vec<u8> {
    attribute(TRANSITIVE, ORIGIN, &[0])
}

/// AS_PATH with one AS_SEQUENCE of 4-octet ASNs.
pub fn as_path_sequence(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attribute(TRANSITIVE, AS_PATH, &v)
}

/// NEXT_HOP.
pub fn next_hop(nh: Ipv4Addr) -> Vec<u8> {
    attribute(TRANSITIVE, NEXT_HOP, &nh.octets())
}

/// MP_REACH_NLRI for IPv6 unicast with one global next hop.
pub fn mp_reach_ipv6(nh: Ipv6Addr, prefixes: &[&str]) -> Vec<u8> {
    let mut v = vec![0, 2, 1, 16];
    v.extend_from_slice(&nh.octets());
    v.push(0);
    v.extend(encode_prefixes(prefixes));
    attribute(OPTIONAL, MP_REACH_NLRI, &v)
}

/// MP_UNREACH_NLRI with no prefixes: the End-of-RIB marker of `afi`/`safi`.
pub fn mp_unreach_end_of_rib(afi: u16, safi: u8) -> Vec<u8> {
    let [h, l] = afi.to_be_bytes();
    attribute(OPTIONAL, MP_UNREACH_NLRI, &[h, l, safi])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_ipv6_update_and_eor() {
        let mut attrs = origin_igp();
        attrs.extend(as_path_sequence(&[65001, 4_200_000_001]));
        attrs.extend(mp_reach_ipv6(
            "2001:db8::1".parse().unwrap(),
            &["2001:db8:100::/48", "::/0"],
        ));
        let s = UpdateSections {
            withdrawn: &[],
            attributes: &attrs,
            nlri: &[],
        };
        let d = decode_update(&s, true).unwrap();
        assert_eq!(d.announced_v6, ["2001:db8:100::/48", "::/0"]);
        assert_eq!(d.as_path, [65001, 4_200_000_001]);
        assert_eq!(d.origin, Some(0));
        assert_eq!(d.next_hop_v6, ["2001:db8::1".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(d.end_of_rib, None);
        let eor = mp_unreach_end_of_rib(2, 1);
        let s = UpdateSections {
            withdrawn: &[],
            attributes: &eor,
            nlri: &[],
        };
        assert_eq!(decode_update(&s, true).unwrap().end_of_rib, Some((2, 1)));
        let nlri = encode_prefixes(&["198.51.100.0/24", "10.0.0.0/8", "192.0.2.1/32"]);
        assert_eq!(nlri, [24, 198, 51, 100, 8, 10, 32, 192, 0, 2, 1]);
        assert_eq!(
            decode_prefixes(&nlri, false).unwrap(),
            ["198.51.100.0/24", "10.0.0.0/8", "192.0.2.1/32"]
        );
        assert!(decode_prefixes(&[33, 1, 2, 3, 4, 5], false).is_err());
    }
}
