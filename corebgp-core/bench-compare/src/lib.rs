//! The corpus and one decode function per parser. Each function decodes every
//! UPDATE of the corpus completely (all attributes into the parser's types,
//! every prefix counted) and returns the number of prefixes it saw, plus a
//! checksum of what it read so that nothing is optimised away.

use std::hint::black_box;

/// Prefixes in the corpus.
pub const PREFIXES: usize = 1_000_000;
/// Prefixes per UPDATE.
pub const PER_UPDATE: usize = 3;

/// The corpus: UPDATE messages (header included) back to back. Each carries
/// ORIGIN IGP, a 3-hop 4-octet AS_PATH, NEXT_HOP, MED, two COMMUNITIES, one
/// LARGE_COMMUNITY and up to three IPv4 /24s; 1,000,000 /24s in all.
pub fn corpus() -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIXES.div_ceil(PER_UPDATE) * 96);
    let mut k = 0u32;
    let mut i = 0u32;
    while (k as usize) < PREFIXES {
        let n = (PREFIXES - k as usize).min(PER_UPDATE);
        let mut attrs = Vec::with_capacity(64);
        attrs.extend_from_slice(&[0x40, 1, 1, 0]); // ORIGIN IGP
        attrs.extend_from_slice(&[0x40, 2, 14, 2, 3]); // AS_PATH, one AS_SEQUENCE of 3
        for asn in [64512 + (i % 1000), 65002, 4_200_000_000 + (i % 5000)] {
            attrs.extend_from_slice(&asn.to_be_bytes());
        }
        attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, (1 + i % 250) as u8]); // NEXT_HOP
        attrs.extend_from_slice(&[0x80, 4, 4]); // MED
        attrs.extend_from_slice(&(i % 100).to_be_bytes());
        attrs.extend_from_slice(&[0xc0, 8, 8]); // COMMUNITIES
        attrs.extend_from_slice(&(0xfde9_0000u32 | (i % 300)).to_be_bytes());
        attrs.extend_from_slice(&0xfde9_0190u32.to_be_bytes());
        attrs.extend_from_slice(&[0xc0, 32, 12]); // LARGE_COMMUNITY
        for v in [4_200_000_001u32, i % 7, i % 11] {
            attrs.extend_from_slice(&v.to_be_bytes());
        }
        let len = 19 + 2 + 2 + attrs.len() + 4 * n;
        out.extend_from_slice(&[0xff; 16]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(2);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(&attrs);
        for _ in 0..n {
            let a = 0x0100_0000u32 + (k << 8);
            out.push(24);
            out.extend_from_slice(&a.to_be_bytes()[..3]);
            k += 1;
        }
        i += 1;
    }
    out
}

/// Splits the corpus into messages (header included).
#[inline]
fn messages(corpus: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = corpus;
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_be_bytes([*rest.get(16)?, *rest.get(17)?]));
        let (m, r) = rest.split_at_checked(len)?;
        rest = r;
        Some(m)
    })
}

/// The floor: steps over message lengths, decodes nothing. Returns the
/// number of messages.
pub fn floor(corpus: &[u8]) -> (usize, u64) {
    let mut n = 0;
    for m in messages(corpus) {
        black_box(m);
        n += 1;
    }
    (n, 0)
}

/// corebgp-core: `Update::parse` (every attribute checked and typed, RFC
/// 7606 verdict), then every AS, community, large community and prefix read.
pub fn corebgp(corpus: &[u8]) -> (usize, u64) {
    use corebgp_core::update::{Update, UpdateConfig};
    let cfg = UpdateConfig::default();
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let Some(body) = m.get(19..) else { continue };
        let u = Update::parse(body, &cfg).expect("valid");
        assert!(u.action().is_none());
        sum += u.origin().map_or(0, |o| o as u64);
        if let Some(p) = u.as_path() {
            for s in p.segments() {
                sum += s.asns.map(u64::from).sum::<u64>();
            }
        }
        sum += u64::from(u.next_hop().map_or(0, |a| a.to_bits()));
        sum += u64::from(u.med().unwrap_or(0));
        if let Some(c) = u.communities() {
            sum += c.iter().map(|c| u64::from(c.0)).sum::<u64>();
        }
        if let Some(c) = u.large_communities() {
            sum += c.iter().map(|c| u64::from(c.local_data2)).sum::<u64>();
        }
        for n in u.nlri() {
            sum += u64::from(n.prefix.addr().to_bits());
            prefixes += 1;
        }
    }
    (prefixes, sum)
}

/// corebgp-core on the path a user takes: `Message::parse` (header
/// checked), `Update::from_sections` (every attribute checked and typed, RFC
/// 7606 verdict), every attribute read through the public accessors, and
/// the prefixes through `announced()` (every family, NLRI field then
/// MP_REACH_NLRI) and `withdrawals()`.
pub fn corebgp_public(corpus: &[u8]) -> (usize, u64) {
    use corebgp_core::update::{Prefix, Update, UpdateConfig};
    use corebgp_core::wire::{MAX_MESSAGE_LEN, Message};
    let cfg = UpdateConfig::default();
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let Ok(Message::Update(sections)) = Message::parse(m, MAX_MESSAGE_LEN) else {
            panic!("not an UPDATE")
        };
        let u = Update::from_sections(sections, &cfg).expect("valid");
        assert!(u.action().is_none());
        sum += u.origin().map_or(0, |o| o as u64);
        if let Some(p) = u.as_path() {
            for s in p.segments() {
                sum += s.asns.map(u64::from).sum::<u64>();
            }
        }
        sum += u64::from(u.next_hop().map_or(0, |a| a.to_bits()));
        sum += u64::from(u.med().unwrap_or(0));
        sum += u64::from(u.local_pref().unwrap_or(0));
        if let Some(c) = u.communities() {
            sum += c.iter().map(|c| u64::from(c.0)).sum::<u64>();
        }
        if let Some(c) = u.large_communities() {
            sum += c.iter().map(|c| u64::from(c.local_data2)).sum::<u64>();
        }
        for (_, n) in u.withdrawals() {
            sum += u64::from(n.prefix.len());
        }
        for (_, n) in u.announced() {
            sum += match n.prefix {
                Prefix::V4(p) => u64::from(p.addr().to_bits()),
                Prefix::V6(p) => p.addr().to_bits() as u64,
            };
            prefixes += 1;
        }
    }
    (prefixes, sum)
}

/// [`corebgp_public`] with the per-field iterators (`withdrawn()`,
/// `mp_unreach_nlri()`, `nlri()`, `mp_reach_nlri()`) instead of
/// `withdrawals()` and `announced()`: the yardstick for those two.
pub fn corebgp_public_fields(corpus: &[u8]) -> (usize, u64) {
    use corebgp_core::update::{Prefix, Update, UpdateConfig};
    use corebgp_core::wire::{MAX_MESSAGE_LEN, Message};
    let cfg = UpdateConfig::default();
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let Ok(Message::Update(sections)) = Message::parse(m, MAX_MESSAGE_LEN) else {
            panic!("not an UPDATE")
        };
        let u = Update::from_sections(sections, &cfg).expect("valid");
        assert!(u.action().is_none());
        sum += u.origin().map_or(0, |o| o as u64);
        if let Some(p) = u.as_path() {
            for s in p.segments() {
                sum += s.asns.map(u64::from).sum::<u64>();
            }
        }
        sum += u64::from(u.next_hop().map_or(0, |a| a.to_bits()));
        sum += u64::from(u.med().unwrap_or(0));
        sum += u64::from(u.local_pref().unwrap_or(0));
        if let Some(c) = u.communities() {
            sum += c.iter().map(|c| u64::from(c.0)).sum::<u64>();
        }
        if let Some(c) = u.large_communities() {
            sum += c.iter().map(|c| u64::from(c.local_data2)).sum::<u64>();
        }
        for n in u.withdrawn() {
            sum += u64::from(n.prefix.len());
        }
        for n in u.mp_unreach_nlri() {
            sum += u64::from(n.prefix.len());
        }
        for n in u.nlri() {
            sum += u64::from(n.prefix.addr().to_bits());
            prefixes += 1;
        }
        for n in u.mp_reach_nlri() {
            sum += match n.prefix {
                Prefix::V4(p) => u64::from(p.addr().to_bits()),
                Prefix::V6(p) => p.addr().to_bits() as u64,
            };
            prefixes += 1;
        }
    }
    (prefixes, sum)
}

/// routecore 0.7: `UpdateMessage::from_octets`, then each attribute and the
/// announcements through its accessors.
pub fn routecore(corpus: &[u8]) -> (usize, u64) {
    use routecore::bgp::message::{SessionConfig, UpdateMessage};
    let cfg = SessionConfig::modern();
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let u = UpdateMessage::from_octets(m, &cfg).expect("valid");
        sum += u.origin().expect("origin").is_some() as u64;
        let p = u.aspath().expect("aspath").expect("present");
        for h in p.hops() {
            black_box(&h);
            sum += 1;
        }
        sum += u.conventional_next_hop().expect("nh").is_some() as u64;
        sum += u.multi_exit_disc().expect("med").is_some() as u64;
        for c in u.communities().expect("communities").expect("present") {
            black_box(&c);
            sum += 1;
        }
        for c in u.large_communities().expect("large").expect("present") {
            black_box(&c);
            sum += 1;
        }
        for n in u.announcements().expect("announcements") {
            black_box(n.expect("nlri"));
            prefixes += 1;
        }
    }
    (prefixes, sum)
}

/// netgauze-bgp-pkt 0.13: `BgpMessage::parse` decodes the whole message into
/// owned types; then every attribute is visited and every prefix counted.
pub fn netgauze(corpus: &[u8]) -> (usize, u64) {
    use netgauze_bgp_pkt::BgpMessage;
    use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
    use netgauze_parse_utils::reader::SliceReader;
    use netgauze_parse_utils::traits::ParseFromWithOneInput;
    let mut ctx = BgpParsingContext::default();
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let mut r = SliceReader::new(m);
        let msg = BgpMessage::parse(&mut r, &mut ctx).expect("valid");
        let BgpMessage::Update(u) = msg else {
            panic!("not an UPDATE")
        };
        for a in u.path_attributes() {
            black_box(a.value());
            sum += 1;
        }
        prefixes += u.nlri().len();
        black_box(&u);
    }
    (prefixes, sum)
}

/// bgpkit-parser 0.23: `parse_bgp_message` decodes into owned types (the
/// corpus is one `Bytes`, sliced per message without copying).
pub fn bgpkit(corpus: &bytes::Bytes) -> (usize, u64) {
    use bgpkit_parser::models::{AsnLength, BgpMessage};
    use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
    let mut prefixes = 0;
    let mut sum = 0u64;
    let mut off = 0;
    for m in messages(corpus) {
        let mut b = corpus.slice(off..off + m.len());
        off += m.len();
        let msg = parse_bgp_message(&mut b, false, &AsnLength::Bits32).expect("valid");
        let BgpMessage::Update(u) = msg else {
            panic!("not an UPDATE")
        };
        for a in u.attributes.iter() {
            black_box(a);
            sum += 1;
        }
        prefixes += u.announced_prefixes.len();
        black_box(&u);
    }
    (prefixes, sum)
}

/// zettabgp 0.6: `BgpUpdateMessage::decode_from` into owned types.
pub fn zettabgp(corpus: &[u8]) -> (usize, u64) {
    use zettabgp::prelude::*;
    let mut params = BgpSessionParams::new(
        65000,
        90,
        BgpTransportMode::IPv4,
        std::net::Ipv4Addr::new(192, 0, 2, 1),
        vec![BgpCapability::CapASN32(65000)],
    );
    params.fuzzy_pathid = false;
    params.has_as32bit = true;
    let mut prefixes = 0;
    let mut sum = 0u64;
    for m in messages(corpus) {
        let mut u = BgpUpdateMessage::new();
        u.decode_from(&params, &m[19..]).expect("valid");
        for a in &u.attrs {
            black_box(a);
            sum += 1;
        }
        prefixes += match &u.updates {
            BgpAddrs::IPV4U(v) => v.len(),
            other => panic!("unexpected {other:?}"),
        };
        black_box(&u);
    }
    (prefixes, sum)
}
