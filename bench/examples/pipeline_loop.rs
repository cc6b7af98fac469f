//! Runs the transit-swap pipeline (or the bare loop) in place in a loop, for
//! profilers that count instructions (`valgrind --tool=callgrind`) or sample
//! (`perf record -e cpu-clock`), and for quick A/B timing without criterion.
//! `cargo run --release -p bench --example pipeline_loop -- [pipeline|bare] [labels] [pool] [batches]`

use bench::naive::{bare_swap, BareEntry};
use bench::workload::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("pipeline", String::as_str).to_string();
    let num = |i: usize, d: u64| args.get(i).map_or(d, |s| s.parse().expect("a number"));
    let labels = num(1, 1_000_000) as u32;
    let pool = num(2, 8192) as usize;
    let batches = num(3, 300_000);
    let frames = transit_frames(labels, 1);
    let mut ip = InPlace::new(&frames[..pool], 32);
    let pool_len_for = |n: usize, _labels: u32| pool.min(n);
    let t;
    if mode == "bare" {
        let mut table = vec![BareEntry::default(); (SRGB + labels).next_power_of_two() as usize];
        for l in SRGB..SRGB + labels {
            table[l as usize] = BareEntry {
                out_label: l,
                port: (l % 4) as u16,
                macs: [2; 12],
            };
        }
        t = std::time::Instant::now();
        for _ in 0..batches {
            let mut fr = ip.next_frames();
            std::hint::black_box(bare_swap(&table, &mut fr));
        }
    } else if mode != "pipeline" {
        // ingress | ecmp | egress: frames copied into buffers each batch.
        let (fib, pool) = match mode.as_str() {
            "ingress" => {
                let p = bgp_like_prefixes(labels as usize, 2);
                (ingress_fib(&p), ingress_frames(&p, 3))
            }
            "ecmp" => (ecmp_fib(labels), ecmp_frames(labels, 4)),
            "egress" => (egress_fib(labels), egress_frames(labels, 5)),
            m => panic!("unknown mode {m}: pipeline | bare | ingress | ecmp | egress"),
        };
        let pool = &pool[..pool.len().min(pool_len_for(pool.len(), labels))];
        let mut r = BatchRunner::new(32);
        t = std::time::Instant::now();
        for _ in 0..batches {
            std::hint::black_box(r.run(&fib, pool));
        }
        assert_eq!(r.counters.forwarded, batches * 32);
    } else {
        let fib = transit_fib(labels);
        t = std::time::Instant::now();
        for _ in 0..batches {
            std::hint::black_box(ip.run(&fib));
        }
        assert_eq!(ip.counters.forwarded, batches * 32);
    }
    let ns = t.elapsed().as_nanos() as f64 / (batches * 32) as f64;
    println!(
        "{mode}: {labels} labels, pool {pool}: {ns:.2} ns/packet ({:.1} Mpps)",
        1e3 / ns
    );
}
