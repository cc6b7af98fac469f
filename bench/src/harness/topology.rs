//! The namespace line the harness builds and always removes:
//!
//! ```text
//!   [obh-gen]  gen0  ──── dut0  [obh-dut]   (frames in)
//!              sink0 ──── dut1              (egress port 0)
//!              sink1 ──── dut2              (egress port 1)
//! ```
//!
//! Generator and sink share the `obh-gen` namespace (one traffic thread,
//! pinned to the generator's core); the device under test runs alone in
//! `obh-dut`, pinned to the other core. The DUT side has addresses and
//! static neighbours so the kernel can route the IPv4 profile
//! (10.100.0.0/16 via sink0, 10.101.0.0/16 via sink1); IPv6 is disabled in
//! both namespaces so router solicitations do not reach the sink.
//!
//! The namespaces and links are an `orbitmesh_lab::Lab` under the prefix
//! `obh`, so [`Topology`] deletes both namespaces on drop (also when a run
//! fails or is interrupted: the binary turns SIGINT/SIGTERM into an error
//! that unwinds to here). A lock file keeps two harnesses from sharing the
//! names; what this module adds to the lab is the bench's line, threaded
//! NAPI and the links' counters.

use anyhow::{bail, Context, Result};
use orbitmesh_lab::{exec_in, run, Lab, Veth, VethEnd};

/// The lab's prefix: the namespaces are `obh-*`.
pub const PREFIX: &str = "obh";
pub const GEN_NS: &str = "obh-gen";
pub const DUT_NS: &str = "obh-dut";
pub const LOCK: &str = "/run/orbitmesh-bench.lock";

pub const MAC_GEN: [u8; 6] = [0x02, 0x6f, 0x68, 0, 0, 0x01];
pub const MAC_DUT0: [u8; 6] = [0x02, 0x6f, 0x68, 0, 1, 0x00];
pub const MAC_DUT1: [u8; 6] = [0x02, 0x6f, 0x68, 0, 1, 0x01];
pub const MAC_DUT2: [u8; 6] = [0x02, 0x6f, 0x68, 0, 1, 0x02];
pub const MAC_SINK0: [u8; 6] = [0x02, 0x6f, 0x68, 0, 2, 0x00];
pub const MAC_SINK1: [u8; 6] = [0x02, 0x6f, 0x68, 0, 2, 0x01];

pub const GEN_IF: &str = "gen0";
/// The relay pair (`--gen relay`), both ends in the generator's namespace.
pub const RELAY_SRC: &str = "relay-src";
pub const RELAY_IN: &str = "relay-in";
pub const SINK_IFS: [&str; 2] = ["sink0", "sink1"];
pub const DUT_IN: &str = "dut0";
pub const DUT_OUT: [&str; 2] = ["dut1", "dut2"];

/// A MAC address as `ip link` and the FIB spec write it.
pub use orbitmesh_core::wire::ethernet::format_mac as mac;

/// The lock file, removed on drop.
#[derive(Debug)]
struct Lock;

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(LOCK);
    }
}

/// The namespace line; removed on drop.
#[derive(Debug)]
pub struct Topology {
    /// Dropped first: the namespaces go before the lock is released.
    _lab: Lab,
    _lock: Lock,
}

impl Topology {
    /// Builds the line. Refuses when another harness holds the lock; cleans
    /// up what a killed one left behind.
    pub fn create() -> Result<Topology> {
        if let Ok(s) = std::fs::read_to_string(LOCK) {
            let pid: u32 = s.trim().parse().unwrap_or(0);
            if pid != 0
                && pid != std::process::id()
                && std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                bail!("another orbitmesh-bench (pid {pid}) is running ({LOCK}); wait for it or stop it");
            }
            orbitmesh_core::errln!(
                "orbitmesh-bench: removing what a previous run (pid {pid}) left behind"
            );
        }
        std::fs::write(LOCK, std::process::id().to_string())
            .with_context(|| format!("writing {LOCK}"))?;
        let lock = Lock;
        // Removes what a crashed run left under obh-*; from here on, drop
        // cleans up.
        let mut lab = Lab::new(PREFIX)?;
        build(&mut lab).context("building the namespace line")?;
        Ok(Topology {
            _lab: lab,
            _lock: lock,
        })
    }
}

fn build(lab: &mut Lab) -> Result<()> {
    lab.add_namespaces(&[GEN_NS, DUT_NS])?;
    for ns in [GEN_NS, DUT_NS] {
        lab.exec(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        lab.exec(
            ns,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        lab.ip_in(ns, &["link set lo up"])?;
    }
    let gen = |dev: &str, m: [u8; 6]| VethEnd::new(GEN_NS, dev).mac(mac(&m));
    let dut = |dev: &str, m: [u8; 6], addr: &str| VethEnd::new(DUT_NS, dev).mac(mac(&m)).addr(addr);
    lab.add_veths(&[
        Veth::new(gen(GEN_IF, MAC_GEN), dut(DUT_IN, MAC_DUT0, "10.99.0.2/24")).up(),
        Veth::new(
            VethEnd::new(GEN_NS, RELAY_SRC),
            VethEnd::new(GEN_NS, RELAY_IN),
        )
        .up(),
        Veth::new(
            gen(SINK_IFS[0], MAC_SINK0),
            dut(DUT_OUT[0], MAC_DUT1, "10.98.1.2/24"),
        )
        .up(),
        Veth::new(
            gen(SINK_IFS[1], MAC_SINK1),
            dut(DUT_OUT[1], MAC_DUT2, "10.98.2.2/24"),
        )
        .up(),
    ])?;
    // Static neighbours and routes so the kernel DUT can forward.
    let mut cmds = Vec::new();
    for (i, (d, smac)) in DUT_OUT.iter().zip([MAC_SINK0, MAC_SINK1]).enumerate() {
        let nh = format!("10.98.{}.1", i + 1);
        cmds.push(format!(
            "neigh replace {nh} lladdr {} dev {d} nud permanent",
            mac(&smac)
        ));
        cmds.push(format!("route add 10.{}.0.0/16 via {nh} dev {d}", 100 + i));
    }
    lab.ip_in(DUT_NS, &cmds)?;
    Ok(())
}

/// PIDs and names of the kernel's NAPI threads (`napi/IFACE-ID`).
fn napi_threads() -> Vec<(u32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let comm = comm.trim();
            comm.starts_with("napi/").then(|| (pid, comm.to_string()))
        })
        .collect()
}

/// Real-time priority of the NAPI threads in threaded mode (SCHED_FIFO;
/// PREEMPT_RT kernels run their interrupt threads at 50).
pub const NAPI_FIFO_PRIO: u32 = 50;

/// Consecutive empty polls a NAPI instance keeps polling by timer, with
/// notifications off, before it waits for a notification again
/// (`napi_defer_hard_irqs`; with a 50 µs timer, 1 ms of polling after the
/// last frame).
pub const NAPI_DEFER_POLLS: u32 = 20;

/// The sinks' `gro_flush_timeout` and `napi_defer_hard_irqs` in threaded
/// mode, where the sink busy polls its ports (DPDK's net_af_xdp guide for
/// preferred busy polling: 200 µs, 2).
pub const SINK_FLUSH_NS: u64 = 200_000;
pub const SINK_DEFER_POLLS: u32 = 2;

/// Threaded NAPI (docs/design.md, "6. Measuring on veth"): the DUT's ingress veth receives in its own
/// kernel thread pinned to the DUT core (so the DUT's core, not the
/// generator's, pays for its receive), and the sink's veths in threads on
/// the generator's core. Call after the DUT is up (a veth has NAPI only with
/// XDP attached or GRO on). Threads are told apart from other users' by
/// appearing when we switch threading on.
///
/// Every one of these threads runs at SCHED_FIFO [`NAPI_FIFO_PRIO`]: as
/// softirq receive does, it runs as soon as it is woken, ahead of any user
/// task on its core. Without it, the sink's threads time-share the
/// generator's core with the busy generator under CFS and run too late
/// for the veth's 256-frame ring (bench/results/2026-11-25-suite-threaded),
/// and dut0's thread waits behind a busy-polling DUT in the same way; the
/// loss then measured the scheduler, not the DUT. The kernel's real-time
/// throttling (sched_rt_runtime_us) still leaves 5% of each core to others.
///
/// `defer_ns` (> 0) is interrupt coalescing, as every NIC driver does it:
/// a NAPI instance that found work is polled again by a timer `defer_ns`
/// later (`gro_flush_timeout`), with the sender's notifications off, until
/// [`NAPI_DEFER_POLLS`] polls in a row find nothing. Without it, a veth
/// whose receiver runs on another core costs one cross-core wake-up per
/// notification: the NAPI thread empties the ring faster than the
/// generator fills it, sleeps after almost every frame, and the sender
/// (the generator for dut0, the DUT for the sinks) pays a remote wake-up
/// per frame while the woken core pays a context switch per frame; one
/// late wake-up then overflows the 256-frame ring at a few percent of what
/// the DUT can do (bench/results/xdp-fast-path.md, 2026-11-30 17:30). The
/// same setting applies to dut0 whatever the DUT is; a DUT with preferred
/// busy polling (testpmd's net_af_xdp, orbitmesh-xdp-busy) needs it to keep
/// the NAPI thread off while it polls, where busy polling runs the NAPI.
/// The sink busy polls its ports with [`SINK_FLUSH_NS`] and
/// [`SINK_DEFER_POLLS`]. On veth busy polling runs no NAPI (its AF_XDP
/// sockets have no NAPI instance, `harness::dut`): every veth's receive
/// runs in its NAPI thread, and a busy poller only keeps its core awake.
///
/// gen0's TSO is switched off: veth hands a frame to the receiver's NAPI
/// only when it could be aggregated (`veth_skb_is_eligible_for_gro`), and
/// with TSO on, the generator's AF_XDP frames went to `netif_rx` on the
/// generator's core instead, so the kernel DUT (no XDP program on dut0)
/// never received on the DUT's core. An XDP program on dut0 takes every
/// frame through NAPI either way.
///
/// With `relay` (`--gen relay`), relay-in's NAPI gets a thread on the
/// generator's core as well, at the same priority and without coalescing,
/// so that it passes frames on as soon as they are sent, as the sinks'
/// threads take them, rather than in softirq whenever the spinning
/// generator's core gets to it (ksoftirqd runs at normal priority).
pub fn threaded_napi(dut_core: usize, gen_core: usize, defer_ns: u64, relay: bool) -> Result<()> {
    let _ = dut0_napi();
    exec_in(GEN_NS, &["ethtool", "-K", GEN_IF, "tso", "off"])
        .context("switching gen0's TSO off")?;
    let sysfs = |ns: &str, i: &str, file: &str, v: String| -> Result<()> {
        exec_in(
            ns,
            &["sh", "-c", &format!("echo {v} > /sys/class/net/{i}/{file}")],
        )
        .map(|_| ())
        .with_context(|| format!("writing {v} to {i}'s {file}"))
    };
    let polls = if defer_ns > 0 { NAPI_DEFER_POLLS } else { 0 };
    let mut lines = vec![
        (DUT_NS, DUT_IN),
        (GEN_NS, SINK_IFS[0]),
        (GEN_NS, SINK_IFS[1]),
    ];
    if relay {
        lines.push((GEN_NS, RELAY_IN));
    }
    for &(ns, i) in &lines {
        // The sink busy polls its ports in threaded mode (the engine's
        // `sink_busy_poll`): preferred busy polling wants the kernel to
        // leave the NAPI alone while it polls, as net_af_xdp's guide sets.
        let (flush, n) = if i == DUT_IN {
            (defer_ns, polls)
        } else if i == RELAY_IN {
            (0, 0)
        } else {
            (SINK_FLUSH_NS, SINK_DEFER_POLLS)
        };
        sysfs(ns, i, "gro_flush_timeout", flush.to_string())?;
        sysfs(ns, i, "napi_defer_hard_irqs", n.to_string())?;
        sysfs(ns, i, "threaded", "0".into())?;
    }
    let before: Vec<u32> = napi_threads().into_iter().map(|t| t.0).collect();
    for &(ns, i) in &lines {
        sysfs(ns, i, "threaded", "1".into())?;
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut dut_threads = 0;
    for (pid, comm) in napi_threads()
        .into_iter()
        .filter(|t| !before.contains(&t.0))
    {
        let core = if comm.starts_with(&format!("napi/{DUT_IN}-")) {
            dut_threads += 1;
            dut_core
        } else if SINK_IFS
            .iter()
            .chain(relay.then_some(&RELAY_IN))
            .any(|s| comm.starts_with(&format!("napi/{s}-")))
        {
            gen_core
        } else {
            continue;
        };
        run(&["taskset", "-pc", &core.to_string(), &pid.to_string()])?;
        napi_priority(pid)?;
    }
    if dut_threads == 0 {
        bail!("threaded NAPI: no napi/{DUT_IN} thread appeared");
    }
    Ok(())
}

/// Gives dut0 a NAPI instance whatever the DUT: a veth has one only with
/// an XDP program or with GRO on, and the kernel DUT has no program, so
/// GRO goes on. Threaded NAPI needs it for dut0's thread; the relay
/// generator because veth hands XDP frames only to a peer with NAPI
/// (`veth_xdp_xmit`; the kernel DUT's frames then become socket buffers in
/// dut0's NAPI, `veth_xdp_rcv_one`, as a NIC driver builds them).
pub fn dut0_napi() -> Result<()> {
    exec_in(DUT_NS, &["ethtool", "-K", DUT_IN, "gro", "on"])
        .map(|_| ())
        .context("switching dut0's GRO on (to give it a NAPI instance)")
}

/// Puts thread `tid` at [`NAPI_FIFO_PRIO`] (SCHED_FIFO, `chrt`).
pub fn napi_priority(tid: u32) -> Result<()> {
    crate::sys::sched::set_fifo(tid, Some(NAPI_FIFO_PRIO))
}

/// Counters of every interface of the line that can say where frames went
/// missing (`ethtool -S` of the veths, and rx/tx_dropped), as "iface/name".
pub fn link_counters() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let sets: [(&str, &[&str]); 2] = [
        (DUT_NS, &[DUT_IN, DUT_OUT[0], DUT_OUT[1]]),
        (GEN_NS, &[GEN_IF, SINK_IFS[0], SINK_IFS[1], RELAY_IN]),
    ];
    for (ns, ifs) in sets {
        for i in ifs {
            if let Ok(stats) = exec_in(ns, &["ethtool", "-S", i]) {
                for line in stats.lines() {
                    let Some((k, v)) = line.trim().split_once(':') else {
                        continue;
                    };
                    if k.contains("bytes") || k == "peer_ifindex" {
                        continue;
                    }
                    if let Ok(v) = v.trim().parse::<u64>() {
                        out.push((format!("{i}/{k}"), v));
                    }
                }
            }
            for k in ["rx_dropped", "tx_dropped"] {
                let path = format!("/sys/class/net/{i}/statistics/{k}");
                if let Ok(text) = exec_in(ns, &["cat", &path]) {
                    if let Ok(v) = text.trim().parse::<u64>() {
                        out.push((format!("{i}/{k}"), v));
                    }
                }
            }
        }
    }
    out
}

/// Non-zero differences `after - before`, by name.
pub fn deltas(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let b = before.iter().find(|(bk, _)| bk == k).map_or(0, |x| x.1);
            (*v > b).then(|| (k.clone(), v - b))
        })
        .collect()
}
