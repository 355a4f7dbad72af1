//! Session benchmarks: a whole establishment between two sans-IO peers in
//! memory, and the per-message cost in Established.
//! Run with `cargo bench -p corebgp-core --bench session`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use corebgp_core::session::{
    DefaultHooks, Direction, Instant, Peer, PeerConfig, SessionConfig, StateKind,
};
use corebgp_core::wire::{
    Framer, MAX_MESSAGE_LEN, Message, UpdateSections, encode_update_sections,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn config(local: u32, remote: u32, id: u8, passive: bool) -> SessionConfig {
    let peer = PeerConfig {
        remote_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_as: local,
        remote_as: remote,
    };
    SessionConfig::new(peer, Ipv4Addr::new(10, 0, 0, id)).with_passive(passive)
}

/// Moves what `from` has to send on `fd` into `to` on `td`.
fn pump(
    from: &mut Peer,
    fd: Direction,
    to: &mut Peer,
    td: Direction,
    framer: &mut Framer<Box<[u8]>>,
) {
    let now = Instant::ZERO;
    let Some(link) = from.link(fd) else { return };
    let bytes = link.pending().to_vec();
    link.consume(bytes.len());
    framer.feed(&bytes);
    while let Some(Ok(m)) = framer.next_message() {
        let msg = Message::parse(m, MAX_MESSAGE_LEN).unwrap();
        to.handle_message(now, td, msg, &mut DefaultHooks);
    }
}

/// Two peers from Idle to Established: OPEN, KEEPALIVE both ways.
fn establish() -> (Peer, Peer) {
    let now = Instant::ZERO;
    let mut a = Peer::new(config(65001, 65002, 1, false));
    let mut b = Peer::new(config(65002, 65001, 2, true));
    a.start(now);
    b.start(now);
    assert!(a.link(Direction::Outbound).unwrap().take_dial());
    b.accept(now, &mut DefaultHooks).unwrap();
    a.connected(now, &mut DefaultHooks);
    let (mut fa, mut fb) = (
        Framer::new(vec![0u8; 4096].into_boxed_slice()),
        Framer::new(vec![0u8; 4096].into_boxed_slice()),
    );
    for _ in 0..3 {
        pump(
            &mut a,
            Direction::Outbound,
            &mut b,
            Direction::Inbound,
            &mut fb,
        );
        pump(
            &mut b,
            Direction::Inbound,
            &mut a,
            Direction::Outbound,
            &mut fa,
        );
    }
    assert_eq!(
        (a.state(), b.state()),
        (StateKind::Established, StateKind::Established)
    );
    (a, b)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("establish_pair", |b| b.iter(|| black_box(establish())));

    let (_, mut b_peer) = establish();
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9, 0x40, 3, 4, 192, 0, 2, 1,
    ];
    let nlri = [24, 10, 0, 1, 24, 10, 0, 2, 24, 10, 0, 3];
    let mut buf = vec![0u8; 4096];
    let n = encode_update_sections(
        &UpdateSections {
            withdrawn: &[],
            attributes: &attrs,
            nlri: &nlri,
        },
        &mut buf,
        MAX_MESSAGE_LEN,
    )
    .unwrap();
    let update = buf[..n].to_vec();
    g.bench_function("established_update", |bch| {
        bch.iter(|| {
            let msg = Message::parse(black_box(&update), MAX_MESSAGE_LEN).unwrap();
            black_box(b_peer.handle_message(
                Instant::ZERO,
                Direction::Inbound,
                msg,
                &mut DefaultHooks,
            ));
        })
    });
    g.bench_function("established_keepalive", |bch| {
        bch.iter(|| {
            b_peer.handle_message(
                Instant::ZERO,
                Direction::Inbound,
                Message::Keepalive,
                &mut DefaultHooks,
            );
        })
    });
    // Framing + decoding + session for a stream of 1,000 UPDATEs.
    let stream: Vec<u8> = std::iter::repeat_n(update.as_slice(), 1000)
        .flatten()
        .copied()
        .collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("established_1000_updates_framed", |bch| {
        let mut f = Framer::new(vec![0u8; 4096].into_boxed_slice());
        bch.iter(|| {
            let mut rest: &[u8] = &stream;
            while !rest.is_empty() {
                let k = f.feed(rest);
                rest = &rest[k..];
                while let Some(Ok(m)) = f.next_message() {
                    let msg = Message::parse(m, MAX_MESSAGE_LEN).unwrap();
                    black_box(b_peer.handle_message(
                        Instant::ZERO,
                        Direction::Inbound,
                        msg,
                        &mut DefaultHooks,
                    ));
                }
            }
        })
    });
    assert_eq!(b_peer.state(), StateKind::Established);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
