//! What an emulation shows: a line per second while it runs (delivered and
//! lost packets per ground-station pair, the predicted path and latency, the
//! FIB versions in force), and at the end a summary (Markdown and JSON);
//! the plot of the run over time is [`timeline`](super::timeline).

use serde::Serialize;

use crate::dataplanes::FastPath;

/// One ground-station pair (both directions), by station index.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PairTrace {
    pub a: usize,
    pub b: usize,
    pub name: String,
    /// Predicted one-way latency (ms) per step; NaN when unreachable.
    pub latency_ms: Vec<f64>,
    /// (schedule ns, path a -> b as node ids) at every change of path.
    pub paths: Vec<(i64, Vec<u32>)>,
    /// Per tick of the live view: what the pair delivered and lost (both
    /// directions) over the interval the tick covers (about 1 s; longer
    /// when the tick was late).
    pub samples: Vec<Sample>,
    /// Measured one-way latency: (wall s of the agent's report, median of
    /// the packets received in the second before it, ms), both directions.
    pub measured_ms: Vec<(f64, f64)>,
}

/// What a pair delivered and lost between two ticks of the live view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Wall seconds of the run the interval starts and ends at.
    pub from_s: f64,
    pub to_s: f64,
    /// Packets delivered, and missing (sequence gaps), in the interval.
    pub delivered: u64,
    pub lost: u64,
}

impl Sample {
    /// Whether the interval overlaps [a, b] (wall s).
    pub fn overlaps(&self, a: f64, b: f64) -> bool {
        self.from_s < b && self.to_s > a
    }

    /// Seconds the interval covers.
    pub fn secs(&self) -> f64 {
        (self.to_s - self.from_s).max(0.0)
    }
}

impl PairTrace {
    /// The path in force at schedule time `t`.
    pub fn path_at(&self, t: i64) -> Option<&[u32]> {
        self.paths
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map(|(_, p)| p.as_slice())
    }
}

/// A fault and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub link: (u32, u32),
    /// Schedule time of the failure (s) and of the repair (s), if repaired.
    pub at_s: f64,
    pub restored_at_s: Option<f64>,
    /// Wall second of the emulation when it happened, and when the link
    /// came back up, if it did.
    pub wall_s: f64,
    pub restored_wall_s: Option<f64>,
    /// Packets missing from 1 s before to 3 s after the failure.
    pub lost_around: u64,
    /// Wall seconds from the failure to the control process's repair push.
    pub repaired_after_s: Option<f64>,
    /// Pairs whose predicted path used the link at that instant.
    pub pairs_on_link: Vec<String>,
}

impl FaultReport {
    /// The wall seconds its loss is counted over: 1 s before to 3 s after.
    pub fn window(&self) -> (f64, f64) {
        (self.wall_s - 1.0, self.wall_s + 3.0)
    }
}

/// One directed flow at the end.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub from: String,
    pub to: String,
    /// Mean predicted one-way latency over the run (ms).
    pub predicted_ms: Option<f64>,
    pub sent: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// One-way latency p50/p90/p99/max in microseconds, as measured.
    pub latency_us: Option<[f64; 4]>,
}

/// The end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub nodes: usize,
    pub links: usize,
    pub time_scale: f64,
    pub wall_seconds: f64,
    pub schedule_seconds: f64,
    pub rate_pps_per_flow: u32,
    pub flows: Vec<FlowReport>,
    pub sent: u64,
    pub delivered: u64,
    pub delivery_ratio: f64,
    /// 1 - (packets missing outside the seconds around faults) / sent: what
    /// the scheduled FIB swaps cost.
    pub delivery_ratio_outside_faults: f64,
    /// Scheduled FIB activations verified / late, and repairs, as the
    /// control processes told them in their events (each node and version
    /// once); failed read-backs and uploads, as their reports counted them.
    pub fib_swaps_verified: u64,
    pub fib_swaps_late: u64,
    pub fib_swaps_failed: u64,
    pub repairs: u64,
    /// Control processes that wrote no report (stopped by
    /// `--kill-controller-at`): their failures are not in `fib_swaps_failed`.
    pub controllers_without_report: Vec<String>,
    /// The emulator's own readings, once a second, of whether each node's
    /// active FIB was its schedule's entry in force (`None` with
    /// `--one-ahead`, where nodes hold no schedule).
    pub in_force_during: Option<crate::in_force::Tally>,
    /// The same, once more at the end of the run, every node.
    pub in_force_at_end: Option<crate::in_force::Tally>,
    pub path_changes: usize,
    pub faults: Vec<FaultReport>,
    /// Packets lost from 2 s after the last fault to the end (0 = full recovery).
    pub lost_after_recovery: u64,
    pub dataplane_cpu_seconds: f64,
    /// How the dataplanes forwarded transit frames.
    pub fast_path: crate::dataplanes::FastPath,
    /// Frames forwarded by all dataplanes (packet hops), by their AF_XDP
    /// workers and by the XDP fast path together.
    pub frames_forwarded: u64,
    /// Of those, by the XDP fast path (in the kernel, no worker woken).
    pub frames_forwarded_fast_path: u64,
    /// Frames the fast path handed to the workers (a station's IP and
    /// pop; the workers count them again).
    pub frames_punted_by_fast_path: u64,
    /// Frames the dataplanes dropped (both paths), by reason, the reasons
    /// with any.
    pub drops: Vec<(String, u64)>,
    /// Where the machine's CPU went during the traffic (the live view):
    /// CPU per hop with the kernel's packet work, wherever it ran.
    pub cpu_during_traffic: crate::host::CpuSplit,
    /// Frames sent on links that had gone away by the geometry (a FIB that
    /// was late or stale), summed over the dataplanes.
    pub lost_to_gone_links: u64,
    /// Links that came or went with the geometry during the run.
    pub link_changes: usize,
    /// The control process or dataplanes stopped (and started again).
    pub outages: Vec<super::outages::OutageReport>,
    pub control_cpu_seconds: f64,
    /// The host's load during the run: overloaded intervals, late ticks,
    /// the losses that fell in them.
    pub host: super::host::HostReport,
    /// Signed or not, over which channel, and the orders refused.
    pub orders: super::mgmt::Orders,
}

impl Summary {
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# orbitmesh emulation: {}\n\n\
             {} nodes, {} links, {:.0} s of schedule in {:.0} s of wall time (x{}), \
             {} pps per flow.\n\n\
             | flow | sent | delivered | delivery | dup | reordered | predicted latency, mean (ms) | measured p50 / p99 / max (ms) |\n\
             |---|---:|---:|---:|---:|---:|---:|---|\n",
            self.scenario,
            self.nodes,
            self.links,
            self.schedule_seconds,
            self.wall_seconds,
            self.time_scale,
            self.rate_pps_per_flow
        );
        for f in &self.flows {
            let lat = f.latency_us.map_or("-".to_string(), |l| {
                format!("{:.2} / {:.2} / {:.2}", l[0] / 1e3, l[2] / 1e3, l[3] / 1e3)
            });
            s += &format!(
                "| {} -> {} | {} | {} | {:.3}% | {} | {} | {} | {} |\n",
                f.from,
                f.to,
                f.sent,
                f.delivered,
                100.0 * f.delivered as f64 / f.sent.max(1) as f64,
                f.duplicates,
                f.reordered,
                f.predicted_ms.map_or("-".into(), |p| format!("{p:.2}")),
                lat
            );
        }
        s += &format!(
            "| **all** | {} | {} | **{:.3}%** | | | | |\n\n\
             - delivery outside the fault windows (-1 s..+3 s): {:.3}%\n\
             - FIB activations at predicted instants: {} verified, {} late, {} failed; \
             {} path changes of the traffic's pairs\n\
             - unscheduled repairs pushed by the control process: {}\n\
             {}\
             - frames forwarded by all dataplanes (packet hops): {}\n\
             {}\
             - CPU: dataplanes {:.1} s ({:.1} us per hop, idle cost included), control process {:.1} s\n",
            self.sent,
            self.delivered,
            100.0 * self.delivery_ratio,
            100.0 * self.delivery_ratio_outside_faults,
            self.fib_swaps_verified,
            self.fib_swaps_late,
            self.fib_swaps_failed,
            self.path_changes,
            self.repairs,
            self.in_force_lines(),
            self.forwarded_detail(),
            self.forwarding_lines(),
            self.dataplane_cpu_seconds,
            self.dataplane_cpu_seconds * 1e6 / self.frames_forwarded.max(1) as f64,
            self.control_cpu_seconds,
        );
        s += &self.drops_line();
        s += &self.cpu_line();
        s += &self.host.markdown();
        for c in &self.controllers_without_report {
            s += &format!("- control process {c}\n");
        }
        s += &self.orders.markdown();
        if !self.outages.is_empty() {
            s += "\n| process stopped | at (schedule s) | back at (schedule s) | delivered while out (to back +3 s) | lost | right FIB after restart |\n\
                  |---|---:|---:|---:|---:|---:|\n";
            for o in &self.outages {
                let total = o.delivered_during + o.lost_during;
                s += &format!(
                    "| {} | {:.1} | {} | {} ({:.3}%) | {} | {} |\n",
                    o.what,
                    o.at_s,
                    o.back_at_s.map_or("never".into(), |b| format!("{b:.1}")),
                    o.delivered_during,
                    100.0 * o.delivered_during as f64 / total.max(1) as f64,
                    o.lost_during,
                    o.right_fib_after_ms
                        .map_or("-".into(), |m| format!("{m:.0} ms")),
                );
            }
        }
        if !self.faults.is_empty() {
            s += "\n| fault | at (schedule s) | restored | wall s | pairs on the link | repair pushed after | lost -1 s..+3 s |\n\
                  |---|---:|---:|---:|---|---:|---:|\n";
            for f in &self.faults {
                s += &format!(
                    "| ISL {}-{} down | {:.1} | {} | {:.1} | {} | {} | {} |\n",
                    f.link.0,
                    f.link.1,
                    f.at_s,
                    f.restored_at_s.map_or("-".into(), |r| format!("{r:.1}")),
                    f.wall_s,
                    if f.pairs_on_link.is_empty() {
                        "-".to_string()
                    } else {
                        f.pairs_on_link.join(", ")
                    },
                    f.repaired_after_s
                        .map_or("-".into(), |r| format!("{:.0} ms", r * 1e3)),
                    f.lost_around
                );
            }
            s += &format!(
                "\nLost after recovery (from 2 s after the last fault to the end): {}\n",
                self.lost_after_recovery
            );
        }
        s
    }
}

impl Summary {
    /// The hops, and by which engine when the fast path was on.
    fn forwarded_detail(&self) -> String {
        match self.fast_path {
            FastPath::Off => self.frames_forwarded.to_string(),
            FastPath::Xdp => format!(
                "{} ({} by the XDP fast path, {} by the AF_XDP workers, which took {} frames \
                 from it)",
                self.frames_forwarded,
                self.frames_forwarded_fast_path,
                self.frames_forwarded - self.frames_forwarded_fast_path.min(self.frames_forwarded),
                self.frames_punted_by_fast_path
            ),
        }
    }

    /// The dataplanes' drops by reason.
    fn drops_line(&self) -> String {
        if self.drops.is_empty() {
            return "- frames dropped by the dataplanes: 0\n".into();
        }
        let d: Vec<String> = self.drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!(
            "- frames dropped by the dataplanes: {} ({})\n",
            self.drops.iter().map(|d| d.1).sum::<u64>(),
            d.join(", ")
        )
    }

    /// How the links behaved: with the delay line, the geometry's changes
    /// and what they cost; with the fast path, what is not emulated.
    fn forwarding_lines(&self) -> String {
        match self.fast_path {
            FastPath::Off => format!(
                "- links following the geometry: {} changes; frames lost to links that had gone away: {}\n",
                self.link_changes, self.lost_to_gone_links
            ),
            FastPath::Xdp => "- forwarding: transit in the XDP fast path (`--fast-path xdp`), so no delay \
                 line: links held no propagation delay (the latency measured is the host's only) \
                 and did not follow the geometry\n"
                .into(),
        }
    }

    /// CPU per hop with the kernel's packet work (see [`crate::host`]).
    fn cpu_line(&self) -> String {
        let c = &self.cpu_during_traffic;
        let hops = self.frames_forwarded.max(1) as f64;
        format!(
            "- CPU during the traffic ({:.0} s x {} CPUs): machine busy {:.1} s (steal {:.1} s excluded) = \
             dataplane processes {:.1} s + kernel threads and interrupts {:.1} s + the emulation's \
             other processes {:.1} s + processes outside it {:.1} s; **{:.1} us per hop for the \
             dataplanes with the kernel's packet work** ({:.1} us for their processes alone)\n",
            c.wall_s,
            c.cpus,
            c.busy_s,
            c.steal_s,
            c.dataplanes_s,
            c.kernel_s(),
            c.emulation_other_s,
            c.others_s,
            c.dataplanes_with_kernel_s() * 1e6 / hops,
            c.dataplanes_s * 1e6 / hops,
        )
    }

    /// The in-force checks as list lines (each ending in a newline).
    fn in_force_lines(&self) -> String {
        let (Some(d), Some(e)) = (&self.in_force_during, &self.in_force_at_end) else {
            return "- FIB in force read by the emulator: not checked (--one-ahead: nodes hold no schedule)\n"
                .into();
        };
        let mut s = format!(
            "- FIB in force read by the emulator once a second: {} readings, {} not the schedule's entry, \
             {} after the node's window ran out; at the end {} of {} nodes right\n",
            d.checked,
            d.wrong,
            d.ran_out,
            e.checked - e.wrong - e.ran_out,
            e.checked
        );
        for x in d.examples.iter().chain(&e.examples) {
            s += &format!("  - {x}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_at_follows_the_changes() {
        let p = PairTrace {
            paths: vec![(0, vec![1, 2]), (500, vec![1, 3, 2])],
            ..Default::default()
        };
        assert_eq!(p.path_at(0), Some(&[1u32, 2][..]));
        assert_eq!(p.path_at(499), Some(&[1u32, 2][..]));
        assert_eq!(p.path_at(500), Some(&[1u32, 3, 2][..]));
        assert_eq!(p.path_at(-1), None);
    }
}
