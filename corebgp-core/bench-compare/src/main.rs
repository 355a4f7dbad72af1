//! Side-by-side run: prefixes per second for each parser on the same corpus,
//! ratios, and heap allocations per UPDATE (counting allocator).
//!
//! `cargo run --release` in this directory (add `-- N` for N rounds).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use corebgp_bench_compare::*;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let corpus = corpus();
    let shared = bytes::Bytes::from(corpus.clone());
    let updates = PREFIXES.div_ceil(PER_UPDATE);
    println!(
        "corpus: {} UPDATEs, {} prefixes, {:.1} MB; best and median of {rounds} interleaved rounds",
        updates,
        PREFIXES,
        corpus.len() as f64 / 1e6
    );
    type Run<'a> = Box<dyn Fn() -> (usize, u64) + 'a>;
    let parsers: Vec<(&str, Run)> = vec![
        ("floor (lengths only)", Box::new(|| floor(&corpus))),
        ("corebgp-core", Box::new(|| corebgp(&corpus))),
        (
            "corebgp-core, public path",
            Box::new(|| corebgp_public(&corpus)),
        ),
        (
            "corebgp-core, public path, per-field iterators",
            Box::new(|| corebgp_public_fields(&corpus)),
        ),
        ("netgauze-bgp-pkt 0.13", Box::new(|| netgauze(&corpus))),
        ("zettabgp 0.6", Box::new(|| zettabgp(&corpus))),
        ("bgpkit-parser 0.23", Box::new(|| bgpkit(&shared))),
        ("routecore 0.7", Box::new(|| routecore(&corpus))),
    ];
    // ONLY=name runs that parser alone (and the floor), for profiling.
    let only = std::env::var("ONLY").ok();
    let parsers: Vec<(&str, Run)> = parsers
        .into_iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| *name == o || name.starts_with("floor"))
        })
        .collect();
    // Rounds are interleaved (every parser once per round), so that a
    // machine whose load changes during the run slows all of them alike.
    let mut times = vec![Vec::new(); parsers.len()];
    let mut allocs = vec![0; parsers.len()];
    for _ in 0..rounds {
        for (k, (name, f)) in parsers.iter().enumerate() {
            let a0 = ALLOCS.load(Relaxed);
            let t = Instant::now();
            let (n, sum) = f();
            times[k].push(t.elapsed());
            allocs[k] = ALLOCS.load(Relaxed) - a0;
            std::hint::black_box(sum);
            let want = if name.starts_with("floor") {
                updates
            } else {
                PREFIXES
            };
            assert_eq!(n, want, "{name} counted {n}");
        }
    }
    let mut results = Vec::new();
    for (k, (name, _)) in parsers.iter().enumerate() {
        let t = &mut times[k];
        t.sort();
        results.push((
            *name,
            t[0],
            t[t.len() / 2],
            allocs[k] as f64 / updates as f64,
        ));
    }
    let rate = |d: Duration| PREFIXES as f64 / d.as_secs_f64() / 1e6;
    if only.is_some() {
        for (name, best, median, _) in &results {
            println!(
                "{name}: {:.1} M prefixes/s median, {:.1} best",
                rate(*median),
                rate(*best)
            );
        }
        return;
    }
    let others = &results[4..];
    let best_other = others.iter().map(|r| r.2).min().unwrap_or(results[1].2);
    println!(
        "\n`announced()`/`withdrawals()` {:.1} M prefixes/s, per-field iterators (`nlri()`, `mp_reach_nlri()`, ...) {:.1} (medians, public path)",
        rate(results[2].2),
        rate(results[3].2)
    );
    let tables = [
        (
            "Body only (`Update::parse` on the UPDATE body, no header check), every attribute read, `nlri()`",
            1,
        ),
        (
            "Header checked (`Message::parse` → `Update::from_sections`), every attribute read through the public accessors, `announced()`/`withdrawals()`",
            2,
        ),
    ];
    for (title, i) in tables {
        let core = results[i].2;
        println!("\n{title}:\n");
        println!(
            "| parser | M prefixes/s (median) | M prefixes/s (best) | corebgp-core speed-up | allocations per UPDATE |"
        );
        println!("|---|---:|---:|---:|---:|");
        for (name, best, median, allocs) in std::iter::once(&results[0])
            .chain(std::iter::once(&results[i]))
            .chain(others)
        {
            println!(
                "| {name} | {:.1} | {:.1} | {:.2}x | {allocs:.1} |",
                rate(*median),
                rate(*best),
                median.as_secs_f64() / core.as_secs_f64()
            );
        }
        println!(
            "\ncorebgp-core: {:.1} M prefixes/s, {:.2}x the fastest other parser; {:.1}% of the floor",
            rate(core),
            best_other.as_secs_f64() / core.as_secs_f64(),
            100.0 * results[0].2.as_secs_f64() / core.as_secs_f64()
        );
    }
}
