//! UPDATE decode and build throughput (criterion). The cross-parser
//! comparison lives in `corebgp-core/bench-compare` (outside the workspace).
//!
//! `cargo bench -p corebgp-core --bench update`

use core::net::Ipv4Addr;
use std::hint::black_box;

use corebgp_core::update::*;
use corebgp_core::wire::{AfiSafi, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SEG: [AsSegment<'static>; 1] = [AsSegment {
    kind: SegmentType::Sequence,
    asns: &[65001, 65002, 4_200_000_001],
}];

const COMMUNITIES: [Community; 2] = [Community::new(65001, 100), Community::new(65001, 200)];
const LARGE: [LargeCommunity; 1] = [LargeCommunity {
    global_admin: 4_200_000_001,
    local_data1: 1,
    local_data2: 2,
}];

fn attrs() -> PathAttributes<'static> {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&SEG),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        med: Some(0),
        communities: &COMMUNITIES,
        large_communities: &LARGE,
        ..PathAttributes::default()
    }
}

fn routes(n: u32) -> Vec<Nlri<Ipv4Prefix>> {
    (0..n)
        .map(|i| {
            Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits(0x0100_0000 + (i << 8)), 24).unwrap())
        })
        .collect()
}

/// One UPDATE with `n` /24s (extended message size when needed).
fn message(n: u32) -> Vec<u8> {
    let cfg = UpdateConfig {
        max_message_len: MAX_EXTENDED_MESSAGE_LEN as u16,
        ..UpdateConfig::default()
    };
    let mut buf = vec![0u8; MAX_EXTENDED_MESSAGE_LEN];
    let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
    assert_eq!(
        b.announce(&attrs(), AfiSafi::IPV4_UNICAST, &routes(n))
            .unwrap(),
        n as usize
    );
    let len = b.finish().unwrap();
    buf.truncate(len);
    buf
}

/// Full decode: everything typed, every AS, community and prefix read.
fn decode_all(body: &[u8], cfg: &UpdateConfig) -> u64 {
    let u = Update::parse(body, cfg).unwrap();
    let mut sum = u.origin().map_or(0, |o| o as u64);
    if let Some(p) = u.as_path() {
        sum += p.asns().map(u64::from).sum::<u64>();
    }
    sum += u64::from(u.next_hop().map_or(0, Ipv4Addr::to_bits)) + u64::from(u.med().unwrap_or(0));
    sum += u
        .communities()
        .map_or(0, |c| c.iter().map(|c| u64::from(c.0)).sum());
    sum += u
        .large_communities()
        .map_or(0, |c| c.iter().map(|c| u64::from(c.local_data1)).sum());
    for n in u.nlri() {
        sum += u64::from(n.prefix.addr().to_bits());
    }
    sum
}

fn decode(c: &mut Criterion) {
    let cfg = UpdateConfig::default();
    let mut g = c.benchmark_group("update_decode");
    for n in [1u32, 10, 100, 500] {
        let msg = message(n);
        let body = &msg[HEADER_LEN..];
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("full", n), body, |b, body| {
            b.iter(|| decode_all(black_box(body), &cfg))
        });
        g.bench_with_input(BenchmarkId::new("nlri_only", n), body, |b, body| {
            b.iter(|| {
                let s = corebgp_core::wire::UpdateSections::parse(black_box(body)).unwrap();
                Ipv4Prefixes::new(s.nlri, false)
                    .map_while(Result::ok)
                    .map(|n| u64::from(n.prefix.len()))
                    .sum::<u64>()
            })
        });
        g.bench_with_input(BenchmarkId::new("communities_only", n), body, |b, body| {
            b.iter(|| {
                let s = corebgp_core::wire::UpdateSections::parse(black_box(body)).unwrap();
                Attributes::new(s.attributes)
                    .find(AttrType::COMMUNITIES)
                    .and_then(|a| Communities::new(a.value))
                    .map_or(0, |c| c.iter().map(|c| u64::from(c.0)).sum::<u64>())
            })
        });
    }
    g.finish();

    // The full-table corpus: 1,000,000 /24s, 3 per UPDATE.
    let per = message(3);
    let updates = 1_000_000usize.div_ceil(3);
    let mut corpus = Vec::with_capacity(per.len() * updates);
    for _ in 0..updates {
        corpus.extend_from_slice(&per);
    }
    let mut g = c.benchmark_group("update_decode_full_table");
    g.throughput(Throughput::Elements((updates * 3) as u64));
    g.sample_size(10);
    g.bench_function("1M_prefixes_3_per_update", |b| {
        b.iter(|| {
            let mut rest = &corpus[..];
            let mut sum = 0u64;
            while let Some((h, _)) = rest.split_first_chunk::<HEADER_LEN>() {
                let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
                let (m, r) = rest.split_at(len);
                sum += decode_all(&m[HEADER_LEN..], &cfg);
                rest = r;
            }
            sum
        })
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let cfg = UpdateConfig::default();
    let table = routes(100_000);
    let a = attrs();
    let mut buf = vec![0u8; 4096];
    let mut g = c.benchmark_group("update_build");
    g.throughput(Throughput::Elements(table.len() as u64));
    g.bench_function("100k_prefixes_4096_byte_messages", |b| {
        b.iter(|| {
            let mut rest = &table[..];
            let mut bytes = 0;
            while !rest.is_empty() {
                let mut w = UpdateBuilder::new(&mut buf, &cfg).unwrap();
                let n = w.announce(&a, AfiSafi::IPV4_UNICAST, rest).unwrap();
                bytes += w.finish().unwrap();
                rest = &rest[n..];
            }
            black_box(bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, decode, build);
criterion_main!(benches);
