//! Decode → build → decode: whatever the decoder accepts cleanly, the
//! builder re-encodes, and the decoder reads the same routes and attributes
//! back.
#![no_main]

use corebgp_core::update::*;
use corebgp_core::wire::{AfiSafi, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

type Segs = Vec<(SegmentType, Vec<u32>)>;

fn segs(u: &Update<'_>) -> Option<Segs> {
    u.as_path().map(|p| p.segments().map(|s| (s.kind, s.asns.collect())).collect())
}

fuzz_target!(|data: &[u8]| {
    let cfg = UpdateConfig { max_message_len: MAX_EXTENDED_MESSAGE_LEN as u16, ..UpdateConfig::default() };
    let Ok(u) = Update::parse(data, &cfg) else { return };
    if u.action().is_some() || !u.discarded().is_empty() || u.sections().withdrawn.len() > 0 {
        return;
    }
    // One family of announcements: the NLRI field, or MP_REACH_NLRI alone.
    let (family, next_hop, routes): (AfiSafi, NextHop, Vec<Nlri>) = match (u.mp_reach(), u.next_hop()) {
        (None, Some(nh)) => (AfiSafi::IPV4_UNICAST, NextHop::V4(nh), u.announced().map(|(_, n)| n).collect()),
        (Some(m), None) if u.sections().nlri.is_empty() => match (m.next_hop(), m.prefixes()) {
            (Some(nh), Prefixes::V4(_) | Prefixes::V6(_)) => (m.family, nh, u.mp_reach_nlri().collect()),
            _ => return,
        },
        _ => return,
    };
    if u.mp_unreach().is_some() {
        return;
    }
    let seg_store = segs(&u);
    let seg_refs: Vec<AsSegment> = seg_store
        .iter()
        .flatten()
        .map(|(k, v)| AsSegment { kind: *k, asns: v })
        .collect();
    // Segments longer than 255 cannot come from one wire segment.
    let communities: Vec<Community> = u.communities().map(|c| c.iter().collect()).unwrap_or_default();
    let large: Vec<LargeCommunity> = u.large_communities().map(|c| c.iter().collect()).unwrap_or_default();
    let ext: Vec<ExtCommunity> = u.ext_communities().map(|c| c.iter().collect()).unwrap_or_default();
    let ext6: Vec<Ipv6ExtCommunity> = u.ipv6_ext_communities().map(|c| c.iter().collect()).unwrap_or_default();
    let cluster: Vec<_> = u.cluster_list().map(|c| c.iter().collect()).unwrap_or_default();
    let other: Vec<RawAttribute> = u.unknown_attributes().collect();
    // AIGP with TLVs other than the metric is not rebuilt verbatim.
    if u.aigp().is_some_and(|g| g.value.len() != 11) {
        return;
    }
    let attrs = PathAttributes {
        origin: u.origin(),
        as_path: seg_store.as_ref().map(|_| &seg_refs[..]),
        next_hop: Some(next_hop),
        med: u.med(),
        local_pref: u.local_pref(),
        atomic_aggregate: u.atomic_aggregate(),
        aggregator: u.aggregator(),
        communities: &communities,
        originator_id: u.originator_id(),
        cluster_list: &cluster,
        ext_communities: &ext,
        ipv6_ext_communities: &ext6,
        aigp: u.aigp().and_then(|g| g.metric),
        large_communities: &large,
        otc: u.otc(),
        other: &other,
    };
    let mut buf = vec![0u8; MAX_EXTENDED_MESSAGE_LEN];
    let mut b = UpdateBuilder::new(&mut buf, &cfg).expect("buffer");
    let n = b.announce(&attrs, family, &routes).expect("re-encodes");
    assert_eq!(n, routes.len());
    let len = b.finish().expect("finishes");
    let v = Update::parse(&buf[HEADER_LEN..len], &cfg).expect("re-decodes");
    assert_eq!(v.announced().map(|(_, n)| n).collect::<Vec<_>>(), routes);
    assert_eq!(segs(&v), seg_store);
    assert_eq!(v.origin(), u.origin());
    assert_eq!(v.med(), u.med());
    assert_eq!(v.local_pref(), u.local_pref());
    assert_eq!(v.aggregator(), u.aggregator());
    assert_eq!(v.communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), communities);
    assert_eq!(v.large_communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), large);
    assert_eq!(v.ext_communities().map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default(), ext);
    assert_eq!(v.otc(), u.otc());
    assert_eq!(v.unknown_attributes().count(), other.len());
});
