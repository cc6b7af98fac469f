//! The XDP fast path's program cost per frame, in the kernel, without the
//! veth line around it: BPF_PROG_TEST_RUN with `repeat` (the kernel times
//! the runs itself; no syscall, copy or NAPI in the figure). It isolates
//! what a change to bpf/xdp_fast.c costs, which the relay harness cannot
//! resolve on a noisy VM (a frame's whole trip over veth is ~2,000-3,000
//! ns; the program is tens). Root only.
//!
//! `cargo run --release -p bench --example xdp_prog_cost [CALLS]`
//!
//! Cases: a swap (one next hop), a swap over 4 ECMP members (the label
//! hash), a TTL-expired drop, and an IPv4 frame handed to the slow path;
//! then the harness's minimal XDP swap (bench/bpf/xdp_min.c) on the same
//! swap frame.
//! The frame is not reset between a call's runs, so the swaps map their
//! label to itself and carry TTL 255 for 200 runs per call. Prints, per
//! case, the median and the 10th/90th percentile over CALLS calls of the
//! kernel's mean ns per run.

use bench::sys::xdp_min::{MinLabel, MinNextHop, XdpMinTest};
use dataplane::fast_path::compile;
use dataplane::sys::fast_maps::{action, FastPath};
use orbitmesh_core::fib::*;

const REPEAT: u32 = 200;

fn fib() -> FibSnapshot {
    let mut b = FibBuilder::new().hash_seed(7);
    for p in 0..4u16 {
        b.port(p, PortConfig { mtu: 1500 });
        b.next_hop(NextHop {
            port: p,
            dst_mac: [2, 0, 0, 0, 9, p as u8],
            src_mac: [2, 0, 0, 0, 8, p as u8],
            vlan: None,
            push: vec![],
            backup: None,
        });
    }
    b.group(&[NhId(0)]);
    b.group(&[NhId(0), NhId(1), NhId(2), NhId(3)]);
    for (label, group) in [(100, 0), (200, 1)] {
        let nhg = NhgId(group);
        b.label(
            label,
            IlmAction::Swap {
                out_label: label,
                nhg,
            },
        );
    }
    b.build().expect("the example FIB builds")
}

/// Ethernet, one MPLS label (bottom of stack) with `ttl`, IPv4/UDP.
fn mpls(label: u32, ttl: u8) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 8, 0, 2, 0, 0, 0, 7, 0, 0x88, 0x47];
    f.extend_from_slice(&(label << 12 | 1 << 8 | u32::from(ttl)).to_be_bytes());
    f.extend_from_slice(&ipv4_udp());
    f
}

fn ipv4_udp() -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[0x03, 0xe8, 0x13, 0x89, 0, 26, 0, 0]);
    ip.resize(46, 0);
    ip
}

fn main() -> anyhow::Result<()> {
    let calls: usize = match std::env::args().nth(1) {
        None => 2000,
        Some(a) => a
            .parse()
            .map_err(|_| anyhow::anyhow!("CALLS must be a count of calls, got {a:?}"))?,
    };
    anyhow::ensure!(calls > 0, "CALLS must be at least 1");
    let mut fp = FastPath::load()?;
    for p in 0..4 {
        fp.set_port(p, 1)?;
    }
    fp.set_live(u64::MAX);
    fp.install(&compile(&fib())?)?;
    let mut ip_frame = vec![2, 0, 0, 0, 8, 0, 2, 0, 0, 0, 7, 0, 0x08, 0x00];
    ip_frame.extend_from_slice(&ipv4_udp());
    let cases = [
        ("swap", mpls(100, 255), action::REDIRECT),
        ("swap, 4-way ECMP", mpls(200, 255), action::REDIRECT),
        ("drop, TTL expired", mpls(100, 1), action::DROP),
        ("IPv4 to the slow path", ip_frame, action::PASS),
    ];
    orbitmesh_core::outln!(
        "{:<24} {:>8} {:>8} {:>8}  (ns per run; {calls} calls x {REPEAT} runs)",
        "case",
        "p10",
        "median",
        "p90"
    );
    for (name, frame, want) in cases {
        report(name, calls, || {
            let (act, d) = fp.time_run(&frame, REPEAT)?;
            anyhow::ensure!(act == want, "{name}: action {act}, expected {want}");
            Ok(d)
        })?;
    }
    // The in-kernel limit peer on the same swap, for the difference.
    let min = XdpMinTest::load(
        &[MinNextHop {
            dst_mac: [2, 0, 0, 0, 9, 0],
            src_mac: [2, 0, 0, 0, 8, 0],
            port: "lo".into(),
        }],
        &[MinLabel {
            label: 100,
            out: 100,
            nh: 0,
        }],
    )?;
    let frame = mpls(100, 255);
    report("xdp-min swap", calls, || {
        let (act, d) = min.time_run(&frame, REPEAT)?;
        anyhow::ensure!(act == action::REDIRECT, "xdp-min swap: action {act}");
        Ok(d)
    })?;
    Ok(())
}

/// Prints the 10th, 50th and 90th percentile of `calls` timings.
fn report(
    name: &str,
    calls: usize,
    mut run: impl FnMut() -> anyhow::Result<std::time::Duration>,
) -> anyhow::Result<()> {
    let mut ns = Vec::with_capacity(calls);
    for _ in 0..calls {
        ns.push(run()?.as_nanos() as u64);
    }
    ns.sort_unstable();
    let q = |p: usize| ns[(ns.len() - 1) * p / 100];
    orbitmesh_core::outln!("{name:<24} {:>8} {:>8} {:>8}", q(10), q(50), q(90));
    Ok(())
}
