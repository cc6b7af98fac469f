//! In-memory benchmarks of the forwarding core (criterion).
//!
//! Every pipeline figure is for batches of 32 frames of 60 bytes, including
//! the copy of each frame into a buffer with headroom (what the NIC's DMA
//! would have done), so the baselines below pay the same copy:
//! - pipeline/*: `orbitmesh_core::pipeline::process`, every check, verdict and
//!   counter in place;
//! - baseline/bare_swap: the floor (read label, index table, rewrite);
//! - baseline/naive_hashmap_swap: a HashMap label map, packet at a time;
//! - lpm/*: IPv4 lookups alone, DIR-24-8 against per-length HashMaps;
//! - fib/*: building a 1M-label FIB, and publishing prebuilt FIBs of
//!   1k..1M labels through FibHandle.
//!
//! Run with `scripts/bench.sh` (writes bench/results/core.md) or
//! `cargo bench -p bench --bench core`.

use bench::naive::{bare_swap, BareEntry, NaiveLpm, NaiveLsr, NaiveNh};
use bench::workload::*;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataplane::publish::FibHandle;
use orbitmesh_core::fib::lpm::Lpm4;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;

const BATCH: usize = 32;
const LABELS: u32 = 1 << 20;
const N_LABELS: u32 = 1_000_000;
const N_PREFIXES: usize = 1_000_000;

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));

    let fib = transit_fib(N_LABELS);
    let pool = transit_frames(N_LABELS, 1);
    let mut r = BatchRunner::new(BATCH);
    g.bench_function("transit_swap_1M", |b| {
        b.iter(|| black_box(r.run(&fib, &pool)))
    });
    assert_eq!(
        r.counters.forwarded, r.counters.rx,
        "every transit frame is forwarded"
    );

    // Baselines over the same frames and the same copy into buffers.
    let (table, mut naive) = baseline_tables();
    let mut bufs = vec![vec![0u8; HEADROOM + 128]; BATCH];
    let mut next = 0;
    let mut load = |bufs: &mut Vec<Vec<u8>>| {
        for (i, b) in bufs.iter_mut().enumerate() {
            let t = &pool[(next + i) % pool.len()];
            b[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
        }
        next = (next + BATCH) % pool.len();
    };
    g.bench_function("baseline_copy_only", |b| b.iter(|| load(&mut bufs)));
    g.bench_function("baseline_bare_swap_1M", |b| {
        b.iter(|| {
            load(&mut bufs);
            let mut fr: smallvec::SmallVec<[&mut [u8]; 64]> = bufs
                .iter_mut()
                .map(|b| &mut b[HEADROOM..HEADROOM + FRAME])
                .collect();
            black_box(bare_swap(&table, &mut fr))
        })
    });
    g.bench_function("baseline_naive_hashmap_swap_1M", |b| {
        b.iter(|| {
            load(&mut bufs);
            let mut fr: smallvec::SmallVec<[&mut [u8]; 64]> = bufs
                .iter_mut()
                .map(|b| &mut b[HEADROOM..HEADROOM + FRAME])
                .collect();
            black_box(naive.process(&mut fr))
        })
    });

    // A table that fits in cache: what the pipeline costs without misses.
    let small = transit_fib(1000);
    let mut ip = InPlace::new(&transit_frames(1000, 6), BATCH);
    g.bench_function("transit_swap_1k_in_place", |b| {
        b.iter(|| black_box(ip.run(&small)))
    });
    assert_eq!(ip.counters.forwarded, ip.counters.rx);
    drop(small);

    // In place (no copy): the setting of the bare-loop reference figure.
    let mut ip = InPlace::new(&pool, BATCH);
    g.bench_function("transit_swap_1M_in_place", |b| {
        b.iter(|| black_box(ip.run(&fib)))
    });
    assert_eq!(ip.counters.forwarded, ip.counters.rx);
    // Issue 18: what per-port byte and drop counters add in a worker, and
    // what per-label (and per-next-hop) packet counters would add; run
    // beside transit_swap_1M_in_place (bench/results/metrics.md).
    let mut ip = InPlace::new(&pool, BATCH);
    let mut t = PortTallies::default();
    g.bench_function("transit_swap_1M_in_place_port_tallies", |b| {
        b.iter(|| black_box(ip.run_with_port_tallies(&fib, &mut t)))
    });
    assert!(t.rx_bytes > 0 && t.tx_bytes.iter().sum::<u64>() > 0);
    let mut ip = InPlace::new(&pool, BATCH);
    let mut counts = vec![0u64; LABELS.next_power_of_two() as usize * 2];
    let mut per_nh = [0u64; 64];
    g.bench_function("transit_swap_1M_in_place_label_counters", |b| {
        b.iter(|| black_box(ip.run_with_label_counters(&fib, &mut counts, &mut per_nh)))
    });
    assert!(counts.iter().sum::<u64>() > 0);
    drop(counts);
    let mut ip = InPlace::new(&pool, BATCH);
    g.bench_function("baseline_bare_swap_1M_in_place", |b| {
        b.iter(|| {
            let mut fr = ip.next_frames();
            black_box(bare_swap(&table, &mut fr))
        })
    });
    drop((table, naive, fib));

    edge_and_ecmp(&mut g);
    g.finish();
}

/// The bare-loop and HashMap references for the 1M-label transit table.
fn baseline_tables() -> (Vec<BareEntry>, NaiveLsr) {
    let mut table = vec![BareEntry::default(); LABELS as usize];
    let mut naive = NaiveLsr::default();
    for i in 0..N_LABELS {
        let l = SRGB + i;
        let port = (i % 4) as u16;
        let mut macs = [0u8; 12];
        macs[4] = port as u8;
        table[l as usize] = BareEntry {
            out_label: l,
            port,
            macs,
        };
        naive.ilm.insert(
            l,
            NaiveNh {
                out_label: l,
                port,
                macs,
            },
        );
    }
    (table, naive)
}

/// Ingress (IPv4 LPM, push), ECMP over 8 paths and egress (pop), each over
/// a 1M-entry table.
fn edge_and_ecmp(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let prefixes = bgp_like_prefixes(N_PREFIXES, 2);
    let fib = ingress_fib(&prefixes);
    let pool = ingress_frames(&prefixes, 3);
    let mut r = BatchRunner::new(BATCH);
    g.bench_function("ingress_ipv4_push_1M_bgp", |b| {
        b.iter(|| black_box(r.run(&fib, &pool)))
    });
    assert_eq!(
        r.counters.forwarded, r.counters.rx,
        "every ingress frame is forwarded"
    );
    drop(fib);

    let fib = ecmp_fib(N_LABELS);
    let pool = ecmp_frames(N_LABELS, 4);
    let mut r = BatchRunner::new(BATCH);
    g.bench_function("ecmp8_entropy_label_1M", |b| {
        b.iter(|| black_box(r.run(&fib, &pool)))
    });
    assert_eq!(r.counters.forwarded, r.counters.rx);
    let mut ip = InPlace::new(&pool, BATCH);
    g.bench_function("ecmp8_entropy_label_1M_in_place", |b| {
        b.iter(|| black_box(ip.run(&fib)))
    });
    assert_eq!(ip.counters.forwarded, ip.counters.rx);
    drop(fib);

    let fib = egress_fib(N_LABELS);
    let pool = egress_frames(N_LABELS, 5);
    let mut r = BatchRunner::new(BATCH);
    g.bench_function("egress_pop_1M", |b| {
        b.iter(|| black_box(r.run(&fib, &pool)))
    });
    assert_eq!(r.counters.forwarded, r.counters.rx);
}

fn lpm(c: &mut Criterion) {
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(BATCH as u64));
    let prefixes = bgp_like_prefixes(N_PREFIXES, 2);
    let routes: Vec<(u32, u8, u32)> = prefixes
        .iter()
        .enumerate()
        .map(|(i, &(p, l))| (p, l, i as u32 % 64))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let addrs: Vec<u32> = (0..1 << 16)
        .map(|_| {
            let (p, l) = prefixes[rng.gen_range(0..prefixes.len())];
            p | (rng.gen::<u32>() & (u32::MAX >> l))
        })
        .collect();
    let t = Lpm4::build(&routes);
    let mut i = 0;
    g.bench_function("dir24_8_1M_bgp", |b| {
        b.iter(|| {
            let mut s = 0u32;
            for k in 0..BATCH {
                s = s.wrapping_add(t.lookup(addrs[(i + k) & 0xffff]).unwrap_or(0));
            }
            i += BATCH;
            black_box(s)
        })
    });
    drop(t);
    let n = NaiveLpm::build(&routes);
    g.bench_function("naive_hash_per_length_1M_bgp", |b| {
        b.iter(|| {
            let mut s = 0u32;
            for k in 0..BATCH {
                s = s.wrapping_add(n.lookup(addrs[(i + k) & 0xffff]).unwrap_or(0));
            }
            i += BATCH;
            black_box(s)
        })
    });
    g.finish();
}

fn fib(c: &mut Criterion) {
    let mut g = c.benchmark_group("fib");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("build_1M_labels", |b| {
        b.iter(|| black_box(transit_fib(N_LABELS)))
    });
    g.finish();

    let mut g = c.benchmark_group("publish");
    for n in [1_000u32, 10_000, 100_000, 1_000_000] {
        let a = Arc::new(transit_fib(n));
        let b2 = Arc::new(transit_fib(n));
        let h = FibHandle::new(transit_fib(1));
        let mut flip = false;
        g.bench_function(format!("labels_{n}"), |b| {
            b.iter_batched(
                || {
                    flip = !flip;
                    if flip {
                        a.clone()
                    } else {
                        b2.clone()
                    }
                },
                |fib| black_box(h.publish_arc(fib)),
                BatchSize::SmallInput,
            )
        });
        h.reclaim();
    }
    g.finish();
}

criterion_group!(benches, pipeline, lpm, fib);
criterion_main!(benches);
