//! Writes a run's results to `bench/results/<date>-<name>/`: `results.json`
//! (everything, every trial), `README.md` (the tables: RFC 2544 throughput
//! with the limit named, CPU per frame, latency percentiles at fractions of
//! the throughput, FIB swaps under load), and SVG plots drawn with plotters'
//! SVG backend (no font files needed).

use super::{DutResult, SuiteResult};
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// "YYYY-MM-DD HH:MM" UTC, from date(1).
pub fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPU model, CPU count and kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {} vCPU, Linux {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel.trim()
    )
}

/// The results directory for a run named `name` under `root`.
pub fn out_dir(root: &Path, name: &str) -> PathBuf {
    let date = utc_now().split(' ').next().unwrap_or("undated").to_string();
    root.join(format!("{date}-{name}"))
}

/// Writes JSON, Markdown and plots; returns the Markdown.
pub fn write(r: &SuiteResult, dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(r)?)
        .context("writing results.json")?;
    let md = markdown(r);
    std::fs::write(dir.join("README.md"), &md).context("writing README.md")?;
    throughput_plot(r, &dir.join("throughput.svg"))?;
    latency_plot(r, &dir.join("latency.svg"))?;
    Ok(md)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// Layer-1 rate of `pps` frames of `bytes` (preamble + IFG = 20 bytes each).
fn gbps_l1(pps: f64, bytes: f64) -> f64 {
    pps * (bytes + 20.0) * 8.0 / 1e9
}

/// The run's README: how it was measured, then a section per table.
pub fn markdown(r: &SuiteResult) -> String {
    let mut s = String::new();
    method(&mut s, r);
    throughput(&mut s, r);
    paths(&mut s, r);
    losses(&mut s, r);
    latency(&mut s, r);
    cpu_per_frame(&mut s, r);
    swaps_under_load(&mut s, r);
    profiles(&mut s, r);
    let _ = writeln!(s, "\nPlots: [throughput.svg](throughput.svg), [latency.svg](latency.svg). Every trial: results.json.");
    s
}

/// How the run was made: command, machine, topology, search, interference and retry policy.
fn method(s: &mut String, r: &SuiteResult) {
    let c = &r.cfg;
    let _ = writeln!(s, "# orbitmesh-bench: {}\n", r.name);
    let _ = writeln!(s, "Command: `{}`  ", r.command);
    let _ = writeln!(s, "Date: {} UTC; {}.  ", r.started_utc, r.machine);
    let _ = writeln!(
        s,
        "Machine load: before {}; after {}.  ",
        r.load_before, r.load_after
    );
    let _ = writeln!(
        s,
        "Topology: `[obh-gen] gen0 -> dut0 [obh-dut] dut1,dut2 -> sink0,sink1 [obh-gen]` (veth, AF_XDP {} mode). \
         Generator and sink: orbitmesh-bench, one thread on CPU {}; DUT on CPU {}.  ",
        if r.generator_zero_copy { "zero-copy" } else { "copy" },
        c.gen_core,
        c.dut_core
    );
    if let Some(st) = &r.stalls {
        let _ = writeln!(
            s,
            "Testbed check ({:.0} s before the first DUT, CPU {} spinning, CPU {} busy; `orbitmesh-bench stalls`): CPU {} was away \
             (no guest task ran: the vCPU was not running, or in interrupt work) {} times for more than {} µs, {} of them over 1 ms, \
             longest {} µs, {} µs in all; another task ran in {} gaps (longest {} µs). {}  ",
            st.secs,
            c.dut_core,
            c.gen_core,
            c.dut_core,
            st.away_gaps,
            super::stalls::GAP_NS / 1000,
            st.away_over_1ms,
            st.away_max_us,
            st.away_total_us,
            st.guest_gaps,
            st.guest_max_us,
            match st.ring_limit_pps() {
                Some(pps) => format!(
                    "A gap that long during a trial overflows dut0's 256-frame ring above {:.3} Mpps whatever the DUT, so zero-loss \
                     figures above that rate hold only for trials no such gap hit.",
                    pps / 1e6
                ),
                None => "No gap long enough to overflow dut0's ring was seen.".into(),
            }
        );
    }
    if c.gen == super::GenKind::Relay {
        let _ = writeln!(
            s,
            "Generator: through the relay (`--gen relay`): the AF_XDP socket sends on {}, whose veth peer {} redirects every frame \
             to gen0 by XDP, so dut0 receives XDP frames (as from a NIC), not socket buffers; the skb-to-page copy is made in {}'s \
             NAPI on CPU {} (the generator's); dut0's GRO on, so that a DUT without an XDP program takes XDP frames too.  ",
            super::topology::RELAY_SRC,
            super::topology::RELAY_IN,
            super::topology::RELAY_IN,
            c.gen_core
        );
    }
    if c.gen == super::GenKind::Live {
        let _ = writeln!(
            s,
            "Generator: in the kernel (`--gen live`): BPF_PROG_TEST_RUN with live frames on CPU {}, one call per trial, \
             paced by the clock, redirecting every frame to gen0, so dut0 receives XDP frames (as from a NIC) and neither \
             core copies a socket buffer into a page; the sink runs beside it at SCHED_FIFO {}, asleep in poll() when idle; \
             dut0's GRO on.  ",
            c.gen_core,
            crate::traffic::engine::LIVE_SINK_PRIO
        );
    }
    if c.threaded_napi {
        let _ = writeln!(
            s,
            "Threaded NAPI: dut0's receive runs in a kernel thread pinned to CPU {} (the DUT's core), sink0/sink1's on CPU {}, \
             all at SCHED_FIFO {} (they run when woken, as softirq would); the sink spins on sink0/sink1 (busy polling, which on veth runs \
             no NAPI: their threads receive); the kernel DUT without RPS (its receive is on the DUT core already); gen0's TSO off. \
             Interrupt coalescing on dut0: {}.  ",
            c.dut_core,
            c.gen_core,
            super::topology::NAPI_FIFO_PRIO,
            if c.napi_defer_ns > 0 {
                format!(
                    "after a poll that found frames, the next poll by timer {} µs later, until {} empty polls in a row \
                     (gro_flush_timeout, napi_defer_hard_irqs)",
                    c.napi_defer_ns / 1000,
                    super::topology::NAPI_DEFER_POLLS
                )
            } else {
                "off (a wake-up per notification)".into()
            }
        );
    }
    let _ = writeln!(
        s,
        "RFC 2544 throughput: binary search, {:.1} s trials (+{:.1} s drain), loss tolerance {}, resolution {:.0}%, from {:.2} Mpps down. \
         {} flows (UDP source port), {} labels in orbitmesh's table; sizes with FCS.\n",
        c.trial.as_secs_f64(),
        c.drain.as_secs_f64(),
        c.search.loss_tolerance,
        c.search.resolution * 100.0,
        c.search.max_pps / 1e6,
        c.flows,
        c.labels
    );
    let (worst, trials) = r
        .duts
        .iter()
        .flat_map(|d| d.sizes.iter())
        .flat_map(|z| z.best.iter().chain(z.latency.iter()))
        .fold((0.0f64, 0usize), |(w, n), t| (w.max(t.other_load), n + 1));
    let _ = writeln!(
        s,
        "Interference: other user-space processes used at most {:.0}% of the machine's CPU during the {} trials reported below \
         (column \"other load\"; the rest of the machine was {}).\n",
        worst * 100.0,
        trials,
        if worst < 0.05 { "quiet" } else { "NOT quiet: treat the affected rows with care" }
    );
    let stall_rule = if c.charge_testbed {
        format!(
            ", or (threaded NAPI) when frames were refused by dut0's full ring while the DUT's core was away (the watch \
             on dut0 counts them: {AWAY_RULE}), when they were all it lost. A search whose failing trial lost so in every \
             attempt names the testbed as its limit"
        )
    } else {
        format!(
            ". Frames refused by dut0's full ring while the DUT's core was away (threaded NAPI: the watch on dut0 counts \
             them one by one, {AWAY_RULE}) are the testbed's loss, not the DUT's: the search judges a trial by the frames \
             lost without them (every other loss, and a frame refused while the core was there, still fails it), and the \
             tables show how many there were (`--charge-testbed` charges them to the DUT)"
        )
    };
    let _ = writeln!(
        s,
        "Policy: before each trial the harness waits up to {:.0} s for other processes to use less than {:.0}% of the machine, \
         and runs a trial again (up to {} times) when they used more during it, or when it lost frames (charged to the DUT) \
         while the hypervisor ran something else on the DUT's or the generator's virtual CPU (`/proc/stat` steal, 10 ms ticks; every trial's \
         steal is in results.json; with threaded NAPI also when the watch's heartbeat on the generator's core stopped long enough for the \
         frames falling due meanwhile to fill dut0's 256-frame ring, which the generator then sends in one burst: `gen_max_silence_ns`){stall_rule}.\n",
        c.quiet_wait.as_secs_f64(),
        c.max_other_load * 100.0,
        c.retries,
    );
}

/// Which refused frames the watch files as the testbed's (bench/bpf/napi_gap.c).
const AWAY_RULE: &str = "refused in a gap between dut0's polls during which the DUT's core was \
     missing for at least 250 µs and a quarter of the gap in all (a 250-µs timer there came that much late: the \
     hypervisor held the core), or in the polls after such a gap until the DUT had drained the full ring it left (512 \
     frames polled, or a poll that found the ring empty)";

/// RFC 2544 zero-loss throughput per DUT and frame size, with the limit named.
fn throughput(s: &mut String, r: &SuiteResult) {
    let c = &r.cfg;
    let _ = writeln!(
        s,
        "## Throughput (zero loss{})\n",
        if c.charge_testbed { "" } else { " by the DUT" }
    );
    let _ = writeln!(s, "| DUT | frame | throughput Mpps | Gbit/s (L1) | limit | DUT core busy | gen core busy | DUT core ns/frame | DUT process ns/frame | gen core ns/frame | both cores ns/frame | reordered | misforwarded | lost by the testbed | other load |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for d in &r.duts {
        if let Some(why) = &d.skipped {
            let _ = writeln!(
                s,
                "| {} | | skipped: {} | | | | | | | | | | | | |",
                d.dut_name(),
                why
            );
            continue;
        }
        if let Some(e) = &d.error {
            if d.sizes.is_empty() {
                let _ = writeln!(
                    s,
                    "| {} | | failed: {} | | | | | | | | | | | | |",
                    d.dut_name(),
                    e.replace('\n', " ")
                );
                continue;
            }
        }
        for z in &d.sizes {
            let best = z.best.as_ref();
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.dut_name(),
                z.size,
                z.search.throughput_pps / 1e6,
                gbps_l1(z.search.throughput_pps, z.mean_frame_bytes),
                z.search.limit.describe(),
                best.map_or("-".into(), |b| format!("{:.0}%", b.dut_core_busy * 100.0)),
                best.map_or("-".into(), |b| format!("{:.0}%", b.gen_core_busy * 100.0)),
                best.map_or("-".into(), |b| format!("{:.0}", b.dut_core_ns_per_frame)),
                best.and_then(|b| b.dut_process_ns_per_frame)
                    .map_or("-".into(), |v| format!("{v:.0}")),
                best.map_or("-".into(), |b| format!("{:.0}", b.gen_core_ns_per_frame)),
                best.map_or("-".into(), |b| format!(
                    "{:.0}",
                    b.gen_core_ns_per_frame + b.dut_core_ns_per_frame
                )),
                best.map_or("-".into(), |b| b.stats.sink.reordered.to_string()),
                best.map_or("-".into(), |b| b.stats.sink.misforwarded().to_string()),
                best.map_or("-".into(), |b| b.testbed_lost().to_string()),
                best.map_or("-".into(), |b| format!("{:.0}%", b.other_load * 100.0)),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n\"limit\": generator = it could not offer a higher rate; DUT CPU = frames were lost with the DUT's core >= 90% busy; \
         path = frames were lost with the DUT's core less busy (on veth the receiver's NAPI runs on the sender's core, so \
         dut0's receive is paid by the generator's core and sink's by the DUT's); testbed = frames were refused by dut0's ring \
         while the DUT's core was away, in every attempt (only when they are charged to the DUT). \"lost by the testbed\": \
         frames of the passing trial refused by dut0's ring while the DUT's core was away (see Policy). DUT core ns/frame = CPU {}'s non-idle time \
         (wall time minus /proc/stat's idle time, which NO_HZ measures exactly) over the sending phase per delivered frame; DUT process ns/frame = the DUT's threads' CPU time \
         (/proc/PID/task/*/schedstat) per delivered frame (none for the kernel); gen core ns/frame = the same for CPU {} \
         (the generator's and sink's own work, plus the receive work the kernel runs there), both cores = the sum.\n",
        c.dut_core, c.gen_core
    );
}

/// For the orbitmesh DUTs: how many of the best trial's frames the AF_XDP
/// workers received (orbitmesh-dp's dut0/rx counter), against those the
/// sink got; with the fast path on, the rest were switched in XDP.
fn paths(s: &mut String, r: &SuiteResult) {
    let rows: Vec<String> = r
        .duts
        .iter()
        .filter(|d| d.dut.is_orbitmesh())
        .flat_map(|d| d.sizes.iter().map(move |z| (d, z)))
        .filter_map(|(d, z)| {
            let b = z.best.as_ref()?;
            let afxdp = b
                .dut_counters
                .iter()
                .find(|(k, _)| k == &format!("{}/rx", super::topology::DUT_IN))
                .map_or(0, |x| x.1);
            let fast = |name: &str| {
                b.dut_counters
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or("-".to_string(), |x| x.1.to_string())
            };
            let got = b.stats.sink.received;
            Some(format!(
                "| {} | {} | {} | {} | {} | {} | {:.1}% |",
                d.dut.name(),
                z.size,
                got,
                fast("fast/forwarded"),
                fast("fast/punted"),
                afxdp,
                afxdp as f64 * 100.0 / got.max(1) as f64
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Which path forwarded the frames (orbitmesh-dp, best trial)\n"
    );
    let _ = writeln!(s, "| DUT | frame | received by the sink | switched in XDP (fast path) | punted by the fast path | received by the AF_XDP workers on {} | share through AF_XDP |", super::topology::DUT_IN);
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(
        s,
        "\nThe fast path's columns are its own counters (`Stats`); \"-\": the dataplane did not report them, or they did not move.\n"
    );
}

/// Where frames were lost in the failing trial at the lowest offered rate.
fn losses(s: &mut String, r: &SuiteResult) {
    let _ = writeln!(
        s,
        "## Where frames were lost (the failing trial at the lowest offered rate)\n"
    );
    let _ = writeln!(s, "| DUT | frame | offered Mpps | sent Mpps | lost | refused by dut0's ring: all, while the DUT core was away | DUT core busy | dut0 unpolled, longest (µs) | counters that moved (largest first) |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for d in &r.duts {
        for z in &d.sizes {
            let Some(f) = &z.first_fail else { continue };
            let mut moved: Vec<&(String, u64)> = f
                .link_counters
                .iter()
                .chain(f.dut_counters.iter())
                .filter(|(k, _)| {
                    ["drop", "full", "empty", "err", "no_route", "expired"]
                        .iter()
                        .any(|w| k.contains(w))
                })
                .collect();
            moved.sort_by_key(|m| std::cmp::Reverse(m.1));
            let list: Vec<String> = moved
                .iter()
                .take(5)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let (refused, gap) = match &f.dut0_polls {
                Some(p) if p.polls > 1 => (
                    format!("{}, {}", p.refused, p.refused_away),
                    format!("{}", p.max_gap_ns / 1000),
                ),
                _ => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {:.3} | {} | {refused} | {:.0}% | {gap} | {} |",
                d.dut.name(),
                z.size,
                f.stats.offered_pps / 1e6,
                f.stats.sent_pps / 1e6,
                f.stats.lost,
                f.dut_core_busy * 100.0,
                if list.is_empty() {
                    "none of the drop counters".into()
                } else {
                    list.join(", ")
                }
            );
        }
    }
    let _ = writeln!(
        s,
        "\n\"refused by dut0's ring\": frames gen0 could not hand to dut0, its 256-frame ring being full (counted where they are \
         refused: skb:kfree_skb in veth_xmit, or the relay's devmap flush), and of them those {AWAY_RULE}, whatever the DUT \
         (bench/bpf/napi_gap.c, bench/results/2026-12-01-vcpu-stalls.md). \"dut0 unpolled\": the longest time between \
         the ends of two of dut0's NAPI polls on the DUT's core over the sending phase (threaded NAPI only; tracepoint \
         napi:napi_poll).\n"
    );
}

/// One-way latency percentiles at fractions of the throughput.
fn latency(s: &mut String, r: &SuiteResult) {
    let _ = writeln!(
        s,
        "## Latency (one way, generator TX ring to sink RX ring, µs)\n"
    );
    let _ = writeln!(
        s,
        "| DUT | frame | load | Mpps | loss | p50 | p90 | p99 | p99.9 | max | other load |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for d in &r.duts {
        for z in &d.sizes {
            for t in &z.latency {
                let l = &t.stats.latency;
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0}% | {:.3} | {} | {} | {} | {} | {} | {} | {:.0}% |",
                    d.dut_name(),
                    z.size,
                    t.load * 100.0,
                    t.stats.sent_pps / 1e6,
                    t.stats.lost,
                    us(l.p50),
                    us(l.p90),
                    us(l.p99),
                    us(l.p999),
                    us(l.max),
                    t.other_load * 100.0
                );
            }
        }
    }
}

/// CPU per frame at the same offered rates (when measured).
fn cpu_per_frame(s: &mut String, r: &SuiteResult) {
    if r.duts.iter().any(|d| !d.cost.is_empty()) {
        let _ = writeln!(s, "\n## CPU per frame at the same offered rates\n");
        let _ = writeln!(s, "| DUT | frame | offered Mpps | delivered Mpps | lost | of them by the testbed | DUT core busy | DUT core ns/frame | DUT process ns/frame | gen core busy | gen core ns/frame | both cores ns/frame | other load |");
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for d in &r.duts {
            for t in &d.cost {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.3} | {:.3} | {} | {} | {:.0}% | {:.0} | {} | {:.0}% | {:.0} | {:.0} | {:.0}% |",
                    d.dut_name(),
                    t.stats.size,
                    t.stats.offered_pps / 1e6,
                    t.stats.delivered_pps / 1e6,
                    t.stats.lost,
                    testbed(t),
                    t.dut_core_busy * 100.0,
                    t.dut_core_ns_per_frame,
                    t.dut_process_ns_per_frame
                        .map_or("-".into(), |v| format!("{v:.0}")),
                    t.gen_core_busy * 100.0,
                    t.gen_core_ns_per_frame,
                    t.gen_core_ns_per_frame + t.dut_core_ns_per_frame,
                    t.other_load * 100.0
                );
            }
        }
        let _ = writeln!(
            s,
            "\nEvery DUT offered the same rates (first frame size): the DUT core's non-idle time per delivered frame \
             compares what each DUT costs below saturation (a busy-polling DUT keeps its core at 100% whatever the load), \
             and the frames lost but the testbed's (\"by the testbed\": refused by dut0's ring while the DUT's core was \
             away, see \"Where frames were lost\"; \"-\": not watched) what each DUT lost of its own at the same rate, \
             where a zero-loss search turns on single trials."
        );
    }
}

/// FIB swaps under load (when measured).
fn swaps_under_load(s: &mut String, r: &SuiteResult) {
    let swaps: Vec<&DutResult> = r.duts.iter().filter(|d| d.swap.is_some()).collect();
    if !swaps.is_empty() {
        let _ = writeln!(s, "\n## FIB swaps under load\n");
        let _ = writeln!(s, "| DUT | frame | load | Mpps | swaps asked/s | swaps done | errors | swap call ms (mean / max) | sent | received | by FIB A | by FIB B | lost | of them by the testbed | lost by the DUT | duplicates | reordered | misforwarded | lost without swaps (same rate, just before) | dut0 stalls (gaps >= 1 ms): count, ms |");
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for d in swaps {
            let w = d.swap.as_ref().expect("filtered");
            let t = &w.trial.stats;
            let _ = writeln!(
                s,
                "| {} | {} | {:.0}% | {:.3} | {:.0} | {} | {} | {:.2} / {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({} by the testbed) of {} | {} |",
                d.dut_name(),
                t.size,
                w.trial.load * 100.0,
                t.sent_pps / 1e6,
                w.swaps_asked_per_s,
                w.swaps_done,
                w.swap_errors,
                w.swap_call_mean_ms,
                w.swap_call_max_ms,
                t.sent,
                t.sink.received,
                t.sink.received - t.sink.alt_label - t.sink.wrong_label,
                t.sink.alt_label,
                t.lost,
                testbed(&w.trial),
                w.trial.charged_lost(false),
                t.sink.duplicates,
                t.sink.reordered,
                t.sink.misforwarded(),
                w.control.stats.lost,
                testbed(&w.control),
                w.control.stats.sent,
                stalls(&w.trial)
            );
        }
        let _ = writeln!(s, "\nEach swap re-publishes the other of two FIB snapshots (`Exchange` over the control socket), both made while the trial sends: \
             FIB A swaps every label to itself, FIB B to itself + 1, to the same port. The sink counts each frame by the label it carries \
             (by FIB A, by FIB B); a frame with any other label or on the wrong port is misforwarded; lost = sent - received; \
             \"by the testbed\": of them, the frames dut0's full ring refused while the DUT's core was away (threaded NAPI; \
             see \"Where frames were lost\"), so never reached the DUT; lost by the DUT = the rest. \
             \"dut0 stalls\": the gaps of at least 1 ms between dut0's polls on the DUT's core during the swap trial.");
    }
}

/// A trial's frames lost by the testbed ("-": dut0 not watched).
fn testbed(t: &super::TrialRecord) -> String {
    match &t.dut0_polls {
        Some(_) => t.testbed_lost().to_string(),
        None => "-".into(),
    }
}

/// A trial's stalls in dut0's polls: count, ms ("-": not watched).
fn stalls(t: &super::TrialRecord) -> String {
    match &t.dut0_polls {
        Some(p) => format!("{}, {:.1}", p.stalls, p.stalled_ns as f64 / 1e6),
        None => "-".into(),
    }
}

/// The cpu-clock profiles of both cores (when asked for).
fn profiles(s: &mut String, r: &SuiteResult) {
    for d in &r.duts {
        let Some(p) = &d.profile else { continue };
        let t = &p.trial;
        let _ = writeln!(
            s,
            "\n## Profile: {} at {:.0}% ({:.3} Mpps sent, loss {:.1e}, DUT core {:.0}% busy)\n\n\
             `perf record -e cpu-clock -F 999 -g -C {},{}` (the DUT's core, the generator's) over the sending phase; \
             `perf report --no-children --sort cpu,dso,sym`, symbols above 1% of both cores' samples:\n\n```\n{}\n```",
            d.dut_name(),
            t.load * 100.0,
            t.stats.sent_pps / 1e6,
            t.stats.loss_ratio,
            t.dut_core_busy * 100.0,
            r.cfg.dut_core,
            r.cfg.gen_core,
            p.top
        );
    }
}

impl DutResult {
    fn dut_name(&self) -> String {
        format!("{} ({})", self.dut.name(), self.description)
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn throughput_plot(r: &SuiteResult, path: &Path) -> Result<()> {
    let series: Vec<(String, Vec<(f64, f64)>)> = r
        .duts
        .iter()
        .filter(|d| !d.sizes.is_empty())
        .map(|d| {
            let mut pts: Vec<(f64, f64)> = d
                .sizes
                .iter()
                .map(|z| (z.mean_frame_bytes, z.search.throughput_pps / 1e6))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (d.dut.name().to_string(), pts)
        })
        .collect();
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.1f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut ch = ChartBuilder::on(&root)
        .caption(
            "RFC 2544 throughput (zero loss) vs frame size",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..1600f64, 0f64..ymax)
        .map_err(plot_err)?;
    ch.configure_mesh()
        .x_desc("frame size, bytes (IMIX at its mean)")
        .y_desc("Mpps")
        .draw()
        .map_err(plot_err)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        ch.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        ch.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(plot_err)?;
    }
    ch.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn latency_plot(r: &SuiteResult, path: &Path) -> Result<()> {
    // p50 (solid) and p99 (dashed-looking: thinner) vs load, first frame size of each DUT.
    let mut series = Vec::new();
    for d in &r.duts {
        if let Some(z) = d.sizes.first() {
            let p50: Vec<(f64, f64)> = z
                .latency
                .iter()
                .map(|t| (t.load * 100.0, (t.stats.latency.p50 as f64 / 1e3).max(1.0)))
                .collect();
            let p99: Vec<(f64, f64)> = z
                .latency
                .iter()
                .map(|t| (t.load * 100.0, (t.stats.latency.p99 as f64 / 1e3).max(1.0)))
                .collect();
            if !p50.is_empty() {
                series.push((format!("{} {}B", d.dut.name(), z.size), p50, p99));
            }
        }
    }
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut ch = ChartBuilder::on(&root)
        .caption(
            "One-way latency vs load (p50 thick, p99 thin; log scale)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..105f64, (1f64..ymax).log_scale())
        .map_err(plot_err)?;
    ch.configure_mesh()
        .x_desc("load, % of zero-loss throughput")
        .y_desc("µs")
        .draw()
        .map_err(plot_err)?;
    for (i, (name, p50, p99)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        ch.draw_series(LineSeries::new(p50.iter().copied(), c.stroke_width(3)))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        ch.draw_series(LineSeries::new(p99.iter().copied(), c.stroke_width(1)))
            .map_err(plot_err)?;
    }
    ch.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_testbeds_frames_are_shown_only_when_watched() {
        let mut t = super::super::TrialRecord::default();
        assert_eq!(testbed(&t), "-");
        assert_eq!(stalls(&t), "-");
        t.stats.lost = 300;
        t.dut0_polls = Some(crate::sys::napi_gap::PollGaps {
            stalls: 2,
            stalled_ns: 3_000_000,
            refused: 290,
            refused_away: 280,
            ..Default::default()
        });
        assert_eq!(testbed(&t), "280");
        assert_eq!(stalls(&t), "2, 3.0");
    }
}
