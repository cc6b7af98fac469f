//! How long installing a new FIB into the XDP fast path takes when FIBs
//! come one after another (a satellite's schedule, or a controller
//! replanning): `FastPublisher::sync` with a FIB it has never held, so it
//! writes the idle bank, which was retired by the install before; the
//! bank may be rewritten only after an RCU grace period
//! (dataplane/src/fast_publish.rs). The call runs under the FIB's writer
//! lock, so its time is how long a control-socket install or a staging
//! waits. Root only (BPF maps).
//!
//! `cargo run --release -p bench --example fast_install_latency [INSTALLS] [LABELS]`
//!
//! For each gap between installs (0, 2, 5, 8, 10, 20, 50 ms), prints the median,
//! 90th percentile and largest call time over INSTALLS installs (default
//! 200) of distinct FIBs of LABELS transit swaps (default 1000).

use dataplane::fast_publish::FastPublisher;
use dataplane::sys::fast_maps::FastPath;
use orbitmesh_core::fib::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fib(version: u64, labels: u32) -> Arc<FibSnapshot> {
    let mut b = FibBuilder::new().hash_seed(7).version(version);
    b.port(0, PortConfig { mtu: 1500 });
    b.next_hop(NextHop {
        port: 0,
        dst_mac: [2, 0, 0, 0, 9, 0],
        src_mac: [2, 0, 0, 0, 8, 0],
        vlan: None,
        push: vec![],
        backup: None,
    });
    let nhg = b.group(&[NhId(0)]);
    for l in 0..labels {
        let label = 16 + l;
        // The out label moves with the version: every FIB differs.
        let out_label = 16 + (l + version as u32) % labels;
        b.label(label, IlmAction::Swap { out_label, nhg });
    }
    Arc::new(b.build().expect("the example FIB builds"))
}

fn arg(i: usize, default: u32) -> u32 {
    std::env::args()
        .nth(i)
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("argument {i} ({s:?}) is not a count"))
        })
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let installs = arg(1, 200).max(1) as usize;
    let labels = arg(2, 1000).clamp(1, 1 << 19);
    // Built ahead: the figure is the install, not the build.
    let fibs: Vec<_> = (0..installs as u64 + 2)
        .map(|v| fib(v + 1, labels))
        .collect();
    println!("{installs} installs of distinct {labels}-label FIBs per gap; call time in ms");
    println!("gap ms | median | p90 | max");
    for gap_ms in [0u64, 2, 5, 8, 10, 20, 50] {
        let mut p = FastPublisher::new(FastPath::load()?, &[("lo".into(), 1, false)])?;
        // Both banks written once, so every install below rewrites a
        // retired bank.
        p.sync(&fibs[0], None);
        p.sync(&fibs[1], None);
        let mut ms = Vec::with_capacity(installs);
        for f in &fibs[2..] {
            std::thread::sleep(Duration::from_millis(gap_ms));
            let t = Instant::now();
            p.sync(f, None);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(p.enabled(), "the fast path turned itself off");
        }
        ms.sort_by(f64::total_cmp);
        let q = |x: f64| ms[((ms.len() - 1) as f64 * x) as usize];
        println!(
            "{gap_ms:>6} | {:.3} | {:.3} | {:.3}",
            q(0.5),
            q(0.9),
            ms[ms.len() - 1]
        );
    }
    Ok(())
}
