//! Wire codec benchmarks: framing + decoding of OPEN and UPDATE sections,
//! and encoding. Run with `cargo bench -p corebgp-core --bench wire`.

use core::net::Ipv4Addr;
use std::hint::black_box;

use corebgp_core::wire::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn caps() -> [Capability<'static>; 6] {
    [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(4_200_000_001),
        Capability::ExtendedMessage,
    ]
}

fn open_bytes() -> Vec<u8> {
    let caps = caps();
    let b = OpenBuilder {
        my_as: AS_TRANS,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: &caps,
        force_extended_parameters: false,
    };
    let mut buf = vec![0u8; 4096];
    let n = b.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A full-table-shaped UPDATE: ORIGIN, 3-hop AS_PATH, NEXT_HOP, MED,
/// COMMUNITIES, LARGE_COMMUNITY, three /24s.
fn update_bytes() -> Vec<u8> {
    let attrs = [
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 14, 2, 3, 0, 0, 0xfd, 0xe9, 0, 0, 0x1b, 0x1b, 0, 0, 0x0d, 0x1c, // AS_PATH
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
        0x80, 4, 4, 0, 0, 0, 100, // MED
        0xc0, 8, 8, 0xfd, 0xe9, 0, 1, 0xfd, 0xe9, 0, 2, // COMMUNITIES
        0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2, // LARGE_COMMUNITY
    ];
    let nlri = [24, 10, 0, 1, 24, 10, 0, 2, 24, 10, 0, 3];
    let u = UpdateSections {
        withdrawn: &[],
        attributes: &attrs,
        nlri: &nlri,
    };
    let mut buf = vec![0u8; 4096];
    let n = encode_update_sections(&u, &mut buf, MAX_MESSAGE_LEN).unwrap();
    buf.truncate(n);
    buf
}

fn decode(c: &mut Criterion) {
    let open = open_bytes();
    let update = update_bytes();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("header", |b| {
        let h: &[u8; HEADER_LEN] = update.first_chunk().unwrap();
        b.iter(|| Header::parse(black_box(h), MAX_MESSAGE_LEN))
    });
    g.bench_function("open+capabilities", |b| {
        b.iter(|| {
            let Ok(Message::Open(o)) = Message::parse(black_box(&open), MAX_MESSAGE_LEN) else {
                panic!()
            };
            o.capabilities().filter(Result::is_ok).count()
        })
    });
    g.bench_function("update_sections", |b| {
        b.iter(|| {
            let Ok(Message::Update(u)) = Message::parse(black_box(&update), MAX_MESSAGE_LEN) else {
                panic!()
            };
            u.nlri.len()
        })
    });
    // A stream of 1,000 UPDATEs through the framer in 4 KiB reads.
    let stream: Vec<u8> = std::iter::repeat_n(update.as_slice(), 1000)
        .flatten()
        .copied()
        .collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("framer_1000_updates", |b| {
        let mut f = Framer::new(vec![0u8; 4096].into_boxed_slice());
        b.iter(|| {
            let mut n = 0;
            let mut rest: &[u8] = black_box(&stream);
            while !rest.is_empty() {
                let k = f.feed(rest);
                rest = &rest[k..];
                while let Some(Ok(m)) = f.next_message() {
                    if let Ok(Message::Update(u)) = Message::parse(m, MAX_MESSAGE_LEN) {
                        n += u.nlri.len();
                    }
                }
            }
            n
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let caps = caps();
    let update = update_bytes();
    let Ok(Message::Update(sections)) = Message::parse(&update, MAX_MESSAGE_LEN) else {
        panic!()
    };
    let mut buf = [0u8; 4096];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("open", |b| {
        let ob = OpenBuilder {
            my_as: AS_TRANS,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: &caps,
            force_extended_parameters: false,
        };
        b.iter(|| black_box(&ob).encode(&mut buf))
    });
    g.bench_function("update_sections", |b| {
        b.iter(|| encode_update_sections(black_box(&sections), &mut buf, MAX_MESSAGE_LEN))
    });
    g.bench_function("keepalive", |b| {
        b.iter(|| encode_keepalive(black_box(&mut buf)))
    });
    g.bench_function("notification", |b| {
        let n = Notification::fsm_error(
            FsmSubcode::UnexpectedMessageInEstablished,
            MessageType::Open,
        );
        b.iter(|| black_box(&n).encode(&mut buf))
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
