//! Zero heap allocations per UPDATE: decoding (everything, typed) and
//! building, counted by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use core::net::{Ipv4Addr, Ipv6Addr};

use corebgp_core::update::*;
use corebgp_core::wire::{AfiSafi, HEADER_LEN};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Everything a consumer reads: every attribute typed, every AS, every
/// community, every prefix. Returns a checksum so nothing is optimised away.
fn consume(u: &Update<'_>) -> u64 {
    let mut sum = 0u64;
    sum += u.origin().map_or(9, |o| o as u64);
    if let Some(p) = u.as_path() {
        for s in p.segments() {
            sum += s.kind as u64;
            sum += s.asns.map(u64::from).sum::<u64>();
        }
    }
    sum += u64::from(u.next_hop().map_or(0, Ipv4Addr::to_bits));
    sum += u64::from(u.med().unwrap_or(0)) + u64::from(u.local_pref().unwrap_or(0));
    sum += u
        .communities()
        .map_or(0, |c| c.iter().map(|c| u64::from(c.0)).sum());
    sum += u
        .large_communities()
        .map_or(0, |c| c.iter().map(|c| u64::from(c.local_data2)).sum());
    sum += u
        .ext_communities()
        .map_or(0, |c| c.iter().map(|c| c.to_u64()).sum());
    sum += u.aggregator().map_or(0, |g| u64::from(g.asn));
    for (_, n) in u.announced().chain(u.withdrawals()) {
        sum += u64::from(n.prefix.len()) + u64::from(n.path_id.unwrap_or(0));
    }
    sum += u.unknown_attributes().count() as u64;
    sum
}

#[test]
fn decode_and_build_allocate_nothing() {
    // The counter sees allocations at all.
    let (n, v) = allocations(|| black_box(vec![1u8; 16]));
    assert_eq!((n, v.len()), (1, 16));
    let bodies = [
        // Full-table shape.
        hex("0000 003d 40010100 40020e 0203 0000fde9 0000fdea fa56ea01 400304 c0000201 800404 00000000
             c00808 fde90064 fde900c8 c0200c fa56ea01 00000001 00000002 180a0000 180a0001 180a0002"),
        // IPv6 MP_REACH with link-local next hop.
        hex("0000 0048 900e002c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00
             30 20010db80001 40010100 40020a 0202 0000fde9 0000fdea 80040400000064"),
        // End-of-RIB, a treat-as-withdraw, a session reset, an unknown attribute.
        hex("0000 0006 800f03 000201"),
        hex("0000 0014 40010103 400206 0201 0000fde9 400304 c0000201 180a0000"),
        hex("0000 0019 40010100 400206 0201 0000fde9 400304 c0000201 406302 abcd 180a0000"),
        hex("0000 0016 40010100 400206 0201 0000fde9 400304 c0000201 e06300 180a0000 21"),
    ];
    let cfg = UpdateConfig::default();
    let two = UpdateConfig {
        four_octet_as: false,
        ..cfg
    };
    let merge = hex(
        "0000 0037 40010100 400208 0203 fde9 5ba0 fdeb 400304 c0000201 c00706 5ba0 c0000201
         c0110a 0202 fa56ea01 0000fdeb c01208 fa56ea01 c0000201 18c63364",
    );
    let (n, sum) = allocations(|| {
        let mut sum = 0u64;
        for _ in 0..1000 {
            for b in &bodies {
                match Update::parse(black_box(b), &cfg) {
                    Ok(u) => sum += consume(&u),
                    Err(e) => {
                        sum += u64::from(e.notification.code.subcode())
                            + e.notification.data.len() as u64
                    }
                }
            }
            sum += consume(&Update::parse(black_box(&merge), &two).unwrap());
            sum += end_of_rib(black_box(&bodies[2])).is_some() as u64;
        }
        sum
    });
    assert!(sum > 0);
    assert_eq!(n, 0, "decoding allocated {n} times");

    // Building.
    let routes: Vec<Nlri<Ipv4Prefix>> = (0..3000u32)
        .map(|i| Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits(i << 8), 24).unwrap()))
        .collect();
    let v6: Vec<Nlri<Ipv6Prefix>> = (0..300u128)
        .map(|i| Nlri::new(Ipv6Prefix::new(Ipv6Addr::from_bits(i << 80), 48).unwrap()))
        .collect();
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &[65001, 65002, 4_200_000_001],
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        communities: &[Community::NO_EXPORT],
        aggregator: Some(Aggregator {
            asn: 4_200_000_001,
            addr: Ipv4Addr::new(192, 0, 2, 1),
        }),
        ..Default::default()
    };
    let attrs6 = PathAttributes {
        next_hop: Some(NextHop::V6 {
            global: Ipv6Addr::LOCALHOST,
            link_local: None,
        }),
        ..attrs
    };
    let mut buf = vec![0u8; 4096];
    let (n, total) = allocations(|| {
        let mut total = 0;
        for c in [cfg, two] {
            let mut rest = &routes[..];
            while !rest.is_empty() {
                let mut b = UpdateBuilder::new(&mut buf, &c).unwrap();
                let w = b.withdraw(&rest[..1]).unwrap();
                let k = b.announce(&attrs, AfiSafi::IPV4_UNICAST, rest).unwrap();
                let len = b.finish().unwrap();
                total += w + k;
                total += Update::parse(&buf[HEADER_LEN..len], &c)
                    .map_or(0, |u| consume(&u) as usize % 2);
                rest = &rest[k..];
            }
            let mut b = UpdateBuilder::new(&mut buf, &c).unwrap();
            b.withdraw_mp(AfiSafi::IPV6_UNICAST, &v6[..10]).unwrap();
            total += b.announce(&attrs6, AfiSafi::IPV6_UNICAST, &v6).unwrap();
            total += b.finish().unwrap();
            total += encode_end_of_rib(&mut buf, AfiSafi::IPV6_MULTICAST).unwrap();
        }
        total
    });
    assert!(total > 6000);
    assert_eq!(n, 0, "building allocated {n} times");
}
