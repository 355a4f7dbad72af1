//! criterion: the same corpus decoded by every parser, side by side.
//! `cargo bench` in this directory.

use corebgp_bench_compare::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn compare(c: &mut Criterion) {
    let corpus = corpus();
    let shared = bytes::Bytes::from(corpus.clone());
    let mut g = c.benchmark_group("full_table_1M_prefixes");
    g.throughput(Throughput::Elements(PREFIXES as u64));
    g.sample_size(10);
    g.bench_function("floor", |b| b.iter(|| floor(&corpus)));
    g.bench_function("corebgp-core", |b| b.iter(|| corebgp(&corpus)));
    g.bench_function("netgauze-bgp-pkt", |b| b.iter(|| netgauze(&corpus)));
    g.bench_function("zettabgp", |b| b.iter(|| zettabgp(&corpus)));
    g.bench_function("bgpkit-parser", |b| b.iter(|| bgpkit(&shared)));
    g.bench_function("routecore", |b| b.iter(|| routecore(&corpus)));
    g.finish();
}

criterion_group!(benches, compare);
criterion_main!(benches);
