//! The XDP fast path's program cost per frame, in the kernel, without the
//! veth line around it: BPF_PROG_TEST_RUN with `repeat` (the kernel times
//! the runs itself; no syscall, copy or NAPI in the figure). It isolates
//! what a change to bpf/xdp_fast.c costs, which the relay harness cannot
//! resolve on a noisy VM (a frame's whole trip over veth is ~2,000-3,000
//! ns; the program is tens). Root only.
//!
//! `cargo run --release -p bench --example xdp_prog_cost [CALLS [CASE]]`
//! (CASE: run only the case of that name as printed, e.g. `swap` or
//! `xdp-min swap`, for a profile of one case under `perf record`).
//!
//! Cases: a swap (one next hop), a swap over 4 ECMP members (the label
//! hash), a TTL-expired drop, and an IPv4 frame handed to the slow path;
//! then the harness's minimal XDP swap (bench/bpf/xdp_min.c) on the same
//! swap frame.
//! The frame is not reset between a call's runs, so the swaps map their
//! label to itself and carry TTL 255 for 200 runs per call. The cases take
//! turns, one call each. Prints, per case, the median and the 10th/90th
//! percentile over CALLS calls of the kernel's mean ns per run, then per
//! fast-path case its excess over the minimal swap's call of the same turn
//! (the figure that holds still on a noisy host).
//!
//! Both programs are held in the kernel's XDP dispatcher while they are
//! timed (attached in generic mode to a veth pair in a network namespace
//! of the example's own, `unshare --net`): a program attached nowhere is
//! patched into the dispatcher and out again around every call, ~24 ms a
//! call here, after which the call's runs start with cold caches. Figures
//! before 2026-12-02 were taken that way: the swap read 15-40 ns higher.

use bench::sys::xdp_min::{MinLabel, MinNextHop, XdpMinTest};
use dataplane::fast_path::compile;
use dataplane::sys::fast_maps::{action, FastPath};
use orbitmesh_core::fib::*;

const REPEAT: u32 = 200;
/// At most this many calls per case (their timings are kept in memory).
const MAX_CALLS: usize = 10_000_000;

/// The cases, as named in the output and on the command line.
const CASES: [&str; 5] = [
    "swap",
    "swap, 4-way ECMP",
    "drop, TTL expired",
    "IPv4 to the slow path",
    "xdp-min swap",
];

/// Set in the copy of this process that runs in a network namespace of its
/// own (`unshare --net`), where the veth pair below is made; the namespace,
/// the pair and the programs attached to it go when that process exits.
const PRIVATE: &str = "ORBITMESH_PROG_COST_NETNS";
const HOLD_PORTS: [&str; 2] = ["pc0", "pc1"];

/// Runs this example again under `unshare --net`, with the same arguments,
/// and exits with its status.
fn in_private_netns() -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let status = std::process::Command::new("unshare")
        .arg("--net")
        .arg(&me)
        .args(std::env::args_os().skip(1))
        .env(PRIVATE, "1")
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run unshare (util-linux): {e}"))?;
    // The copy has said what went wrong.
    std::process::exit(status.code().unwrap_or(1));
}

/// The interfaces the programs are held on (see `FastPath::hold`): a veth
/// pair in this process's private namespace, left down (attaching needs no
/// carrier, and a port that is up sends IPv6 neighbour discovery through
/// the held fast path, which would move the counters checked below).
fn make_hold_ports() -> anyhow::Result<()> {
    // A namespace of our own has only lo (/proc/self/net: this thread's).
    let dev = std::fs::read_to_string("/proc/self/net/dev")?;
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    anyhow::ensure!(
        ifaces == ["lo"],
        "{PRIVATE} is set but this network namespace has {ifaces:?}, not only lo: \
         not making {HOLD_PORTS:?} here (run the example without {PRIVATE})"
    );
    let [a, b] = HOLD_PORTS;
    let args = ["link", "add", a, "type", "veth", "peer", "name", b];
    let st = std::process::Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run ip (iproute2): {e}"))?;
    anyhow::ensure!(st.success(), "ip {}: {st}", args.join(" "));
    Ok(())
}

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
    anyhow::ensure!(
        (1..=MAX_CALLS).contains(&calls),
        "CALLS must be 1 to {MAX_CALLS}, got {calls}"
    );
    let only = std::env::args().nth(2).unwrap_or_default();
    anyhow::ensure!(
        only.is_empty() || CASES.contains(&only.as_str()),
        "CASE must be one of {CASES:?}, got {only:?}"
    );
    if std::env::var_os(PRIVATE).is_none() {
        return in_private_netns();
    }
    make_hold_ports()?;
    let mut fp = FastPath::load()?;
    for p in 0..4 {
        fp.set_port(p, 1)?;
    }
    fp.set_live(u64::MAX);
    fp.install(&compile(&fib())?)?;
    // The in-kernel limit peer on the same swap, for the difference.
    let mut min = XdpMinTest::load(
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
    fp.hold(HOLD_PORTS[0])?;
    min.hold(HOLD_PORTS[1])?;
    let mut ip_frame = vec![2, 0, 0, 0, 8, 0, 2, 0, 0, 0, 7, 0, 0x08, 0x00];
    ip_frame.extend_from_slice(&ipv4_udp());
    // Name, program, frame, action, and for the fast path the counters a
    // run moves: forwarded, handed to the slow path, dropped.
    let (fwd, slow, drop) = ((1, 0, 0), (0, 1, 0), (0, 0, 1));
    let cases = [
        (CASES[0], Prog::Fast, mpls(100, 255), action::REDIRECT, fwd),
        (CASES[1], Prog::Fast, mpls(200, 255), action::REDIRECT, fwd),
        (CASES[2], Prog::Fast, mpls(100, 1), action::DROP, drop),
        (CASES[3], Prog::Fast, ip_frame, action::PASS, slow),
        (
            CASES[4],
            Prog::Min,
            mpls(100, 255),
            action::REDIRECT,
            (0, 0, 0),
        ),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| only.is_empty() || c.0 == only)
        .collect();
    // The action alone does not tell a swap from a hand-off to AF_XDP
    // (both redirect): one call per case, checked by the counters.
    for (name, prog, frame, _, per_run) in &cases {
        if let Prog::Fast = prog {
            let before = fp.counters()?;
            fp.time_run(frame, REPEAT)?;
            let after = fp.counters()?;
            let dropped = |c: &dataplane::sys::fast_maps::FastCounters| c.drops.iter().sum::<u64>();
            let got = (
                after.forwarded - before.forwarded,
                after.punted - before.punted,
                dropped(&after) - dropped(&before),
            );
            let r = u64::from(REPEAT);
            let want = (per_run.0 * r, per_run.1 * r, per_run.2 * r);
            anyhow::ensure!(
                got == want,
                "{name}: (forwarded, to the slow path, dropped) = {got:?} in {REPEAT} runs, expected {want:?}"
            );
        }
    }
    // Round robin: call i of every case runs close in time to the others'
    // call i, so the host's drifts (this VM's swing by 20-30% over
    // seconds) move every case alike and the paired differences below
    // hold still when the absolute figures do not.
    let mut ns = vec![Vec::with_capacity(calls); cases.len()];
    for _ in 0..calls {
        for ((name, prog, frame, want, _), out) in cases.iter().zip(ns.iter_mut()) {
            let (act, d) = match prog {
                Prog::Fast => fp.time_run(frame, REPEAT)?,
                Prog::Min => min.time_run(frame, REPEAT)?,
            };
            anyhow::ensure!(act == *want, "{name}: action {act}, expected {want}");
            out.push(d.as_nanos() as i64);
        }
    }
    orbitmesh_core::outln!(
        "{:<32} {:>8} {:>8} {:>8}  (ns per run; {calls} calls x {REPEAT} runs)",
        "case",
        "p10",
        "median",
        "p90"
    );
    for ((name, ..), v) in cases.iter().zip(&ns) {
        report(name, v.clone());
    }
    // Each fast-path case less the minimal swap's call of the same round.
    if let Some(m) = cases.iter().position(|c| matches!(c.1, Prog::Min)) {
        for (i, (name, prog, ..)) in cases.iter().enumerate() {
            if matches!(prog, Prog::Fast) {
                let d = ns[i].iter().zip(&ns[m]).map(|(a, b)| a - b).collect();
                report(&format!("{name} - xdp-min"), d);
            }
        }
    }
    Ok(())
}

/// Which program a case runs.
enum Prog {
    Fast,
    Min,
}

/// Prints the 10th, 50th and 90th percentile of `ns`.
fn report(name: &str, mut ns: Vec<i64>) {
    ns.sort_unstable();
    let q = |p: usize| ns[(ns.len() - 1) * p / 100];
    orbitmesh_core::outln!("{name:<32} {:>8} {:>8} {:>8}", q(10), q(50), q(90));
}
