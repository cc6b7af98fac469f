//! What an emulation shows: a line per second while it runs (delivered and
//! lost packets per ground-station pair, the predicted path and latency, the
//! FIB versions in force), and at the end a summary (Markdown and JSON) and
//! an SVG of delivered rate and predicted latency over time with marks at
//! the path changes (FIB swaps) and the faults.

use serde::Serialize;

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
    /// Per wall second: packets delivered (both directions).
    pub delivered: Vec<u64>,
    /// Per wall second: packets missing (sequence gaps, both directions).
    pub lost: Vec<u64>,
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
    /// Wall second of the emulation when it happened.
    pub wall_s: f64,
    /// Packets missing from 1 s before to 3 s after the failure.
    pub lost_around: u64,
    /// Wall seconds from the failure to the control process's repair push.
    pub repaired_after_s: Option<f64>,
    /// Pairs whose predicted path used the link at that instant.
    pub pairs_on_link: Vec<String>,
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
    /// Frames forwarded by all dataplanes (packet hops).
    pub frames_forwarded: u64,
    /// Frames sent on links that had gone away by the geometry (a FIB that
    /// was late or stale), summed over the dataplanes.
    pub lost_to_gone_links: u64,
    /// Links that came or went with the geometry during the run.
    pub link_changes: usize,
    /// The control process or dataplanes stopped (and started again).
    pub outages: Vec<super::outages::OutageReport>,
    pub control_cpu_seconds: f64,
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
             - links following the geometry: {} changes; frames lost to links that had gone away: {}\n\
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
            self.frames_forwarded,
            self.link_changes,
            self.lost_to_gone_links,
            self.dataplane_cpu_seconds,
            self.dataplane_cpu_seconds * 1e6 / self.frames_forwarded.max(1) as f64,
            self.control_cpu_seconds,
        );
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

const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One series of a panel: the pair's index (its colour) and its points
/// (wall second, value; a non-finite value lifts the pen).
type Series = (usize, Vec<(f64, f64)>);

/// The drawing area: `width` x `height` px, the plots between `left` and
/// `width - right`, spanning `secs` wall seconds.
struct Canvas {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    secs: f64,
}

impl Canvas {
    /// The x of wall second `s`.
    fn x(&self, s: f64) -> f64 {
        self.left + (self.width - self.left - self.right) * s / self.secs
    }

    /// A panel `height` px tall from `top`: title, axes, 0 and `max`, and
    /// a line per series.
    fn panel(
        &self,
        out: &mut String,
        top: f64,
        height: f64,
        title: &str,
        max: f64,
        series: &[Series],
    ) {
        let (left, w, right) = (self.left, self.width, self.right);
        *out += &format!(
            "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{title}</text>\n\
             <line x1=\"{left}\" y1=\"{}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n\
             <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.1}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n",
            top - 6.0,
            top,
            top + height,
            top + height,
            w - right,
            top + height,
            left - 4.0,
            top + 10.0,
            left - 4.0,
            top + height
        );
        for (k, pts) in series {
            let mut d = String::new();
            let mut pen_up = true;
            for &(t, v) in pts {
                if !v.is_finite() {
                    pen_up = true;
                    continue;
                }
                let y = top + height - height * (v / max.max(1e-9)).min(1.0);
                d += &format!(
                    "{}{:.1},{:.1} ",
                    if pen_up { "M" } else { "L" },
                    self.x(t),
                    y
                );
                pen_up = false;
            }
            *out += &format!(
                "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                COLORS[k % COLORS.len()]
            );
        }
    }
}

/// Two panels over wall time: delivered packets/s per pair, and predicted
/// one-way latency per pair; grey ticks at path changes, red lines at faults.
pub fn svg(pairs: &[PairTrace], step_ns: i64, time_scale: f64, faults: &[FaultReport]) -> String {
    let secs = pairs
        .iter()
        .map(|p| p.delivered.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let c = Canvas {
        width: 900.0,
        height: 560.0,
        left: 70.0,
        right: 20.0,
        secs,
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        c.width, c.height
    );
    let rate = rate_series(pairs);
    let max_rate = rate
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    c.panel(
        &mut out,
        40.0,
        200.0,
        "delivered packets/s per pair (both directions)",
        max_rate,
        &rate,
    );
    let lat = latency_series(pairs, step_ns, time_scale, secs);
    let max_lat = lat
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    c.panel(
        &mut out,
        300.0,
        200.0,
        "predicted one-way latency (ms); ticks: path changes (FIB swaps)",
        max_lat * 1.1,
        &lat,
    );
    marks(&c, &mut out, pairs, time_scale, faults);
    out += &format!(
        "<text x=\"{}\" y=\"520\" text-anchor=\"middle\">wall-clock seconds (schedule time / {time_scale})</text>\n</svg>\n",
        (c.left + c.width - c.right) / 2.0
    );
    out
}

/// Delivered packets per wall second, per pair.
fn rate_series(pairs: &[PairTrace]) -> Vec<Series> {
    pairs
        .iter()
        .enumerate()
        .map(|(k, p)| {
            (
                k,
                p.delivered
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f64 + 1.0, v as f64))
                    .collect(),
            )
        })
        .collect()
}

/// Predicted latency per pair, schedule steps placed at their wall second
/// (up to `secs`).
fn latency_series(pairs: &[PairTrace], step_ns: i64, time_scale: f64, secs: f64) -> Vec<Series> {
    let to_wall = |t_ns: i64| t_ns as f64 / 1e9 / time_scale;
    pairs
        .iter()
        .enumerate()
        .map(|(k, p)| {
            (
                k,
                p.latency_ms
                    .iter()
                    .enumerate()
                    // At most ~1000 points a series: the plot is 810 px wide.
                    .step_by(p.latency_ms.len().div_ceil(1000).max(1))
                    .map(|(i, &v)| (to_wall(i as i64 * step_ns), v))
                    .filter(|(t, _)| *t <= secs)
                    .collect(),
            )
        })
        .collect()
}

/// Ticks at each pair's path changes, the pairs' legend, and a red line
/// at each fault.
fn marks(
    c: &Canvas,
    out: &mut String,
    pairs: &[PairTrace],
    time_scale: f64,
    faults: &[FaultReport],
) {
    let to_wall = |t_ns: i64| t_ns as f64 / 1e9 / time_scale;
    for (k, p) in pairs.iter().enumerate() {
        for (t, _) in p.paths.iter().skip(1) {
            let xs = c.x(to_wall(*t));
            if xs <= c.width - c.right {
                *out += &format!(
                    "<line x1=\"{xs:.1}\" y1=\"{}\" x2=\"{xs:.1}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1\"/>\n",
                    500.0 + 4.0 * k as f64,
                    506.0 + 4.0 * k as f64,
                    COLORS[k % COLORS.len()]
                );
            }
        }
        *out += &format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n",
            c.left + 150.0 * (k % 5) as f64,
            540.0 + 14.0 * (k / 5) as f64,
            COLORS[k % COLORS.len()],
            p.name
        );
    }
    for f in faults {
        let xs = c.x(f.wall_s);
        *out += &format!(
            "<line x1=\"{xs:.1}\" y1=\"40\" x2=\"{xs:.1}\" y2=\"500\" stroke=\"red\" stroke-dasharray=\"4,3\"/>\n\
             <text x=\"{:.1}\" y=\"52\" fill=\"red\">ISL {}-{} down</text>\n",
            xs + 3.0,
            f.link.0,
            f.link.1
        );
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

    #[test]
    fn svg_is_well_formed_with_gaps() {
        let p = PairTrace {
            name: "A-B".into(),
            latency_ms: vec![10.0, f64::NAN, 12.0],
            paths: vec![(0, vec![1, 2]), (100, vec![1, 3, 2])],
            delivered: vec![100, 90, 100],
            lost: vec![0, 10, 0],
            ..Default::default()
        };
        let s = svg(&[p], 1_000_000_000, 1.0, &[]);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<path").count(), 2);
        // The unreachable step lifts the pen: two moves in the latency path.
        let lat = s.split("<path").nth(2).unwrap();
        assert_eq!(lat.matches('M').count(), 2);
    }
}
