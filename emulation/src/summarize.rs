//! Part 7 of an emulation: the summary. After the traffic it waits for the
//! control processes still running to end, reads their last events, checks
//! once more that every dataplane forwards with its schedule's entry in
//! force ([`in_force`](super::in_force)), reads the frames forwarded from
//! every dataplane, stops everything, then puts together per-flow delivery
//! and latency, what each fault cost (packets missing around it, time to
//! the repair), the loss outside the faults (what the scheduled swaps
//! cost) and the FIB activations, and writes `summary.md`, `summary.json`
//! and `timeline.svg`.
//!
//! Activations are counted from the control processes' events, each
//! (node, version) once: a controller stopped by `--kill-controller-at`
//! writes no report, a restarted one only knows its own half, and the two
//! of a redundant pair verify the same activations. The reports
//! (`run*.json`) are still read for what has no event of its own: the
//! read-backs and uploads that failed.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::controller::{Controller, Incarnation};
use super::dataplanes::{ask_stats, Sockets};
use super::host::HostReport;
use super::in_force::Tally;
use super::lab::Lab;
use super::live::Observed;
use super::predicted::{predicted_mean, Predicted};
use super::report::{FaultReport, FlowReport, PairTrace, Summary};
use super::timeline::Timeline;
use super::Topology;
use control::distribute::NodeReport;
use orbitmesh_core::errln;
use orbitmesh_core::protocol::Counter;
use orbitmesh_core::sign::Refusal;
use orbitmesh_core::stats::DropReason;

/// What the processes tell at the end.
#[derive(Debug, Default)]
pub struct Ended {
    /// Every `orbitmesh-ctl run` report written (`run*.json`), per node.
    pub run_reports: Vec<NodeReport>,
    /// The control processes that wrote no report, and why.
    pub no_report: Vec<String>,
    /// Whether each node forwarded with its schedule's entry in force at the
    /// end (`None` with `--one-ahead`).
    pub in_force_at_end: Option<Tally>,
    /// The ping across the mesh (`ping`'s output).
    pub ping: String,
    /// Frames forwarded by all dataplanes (packet hops): AF_XDP workers
    /// and XDP fast path together, and by the fast path.
    pub forwarded: u64,
    pub forwarded_fast_path: u64,
    /// Frames the fast path handed to the workers (counted by them again).
    pub punted_by_fast_path: u64,
    /// Frames dropped by both paths, by reason (the reasons with any).
    pub drops: Vec<(String, u64)>,
    /// Frames sent on links that had gone away (geometry), all dataplanes.
    pub lost_to_gone_links: u64,
    /// Link changes the geometry follower applied.
    pub link_changes: usize,
    /// Every `order_*` refusal counter, summed over the dataplanes.
    pub order_refusals: Vec<(String, u64)>,
    /// How orders went (set by the session from the above and its probe).
    pub orders: super::mgmt::Orders,
}

/// Waits for the control processes still running (each ends after its
/// last instant is verified) and counts their last events into `seen`,
/// checks every node's FIB in force, reads the dataplanes' counters, then
/// stops every child.
pub fn wind_down(
    lab: &mut Lab,
    topo: &Topology,
    sockets: &Sockets,
    out: &Path,
    seen: &mut Observed,
    controllers: Vec<Controller>,
) -> Ended {
    let mut ended = Ended::default();
    for (which, killed) in &seen.controllers {
        if *killed {
            ended.no_report.push(format!(
                "{}: stopped by --kill-controller-at (no report; its events are counted)",
                which.log()
            ));
            continue;
        }
        let running = controllers.iter().any(|c| &c.which == which);
        let status = if running {
            lab.wait_for(which.label, Duration::from_secs(10))
        } else {
            None
        };
        match read_report(out, which) {
            Some(r) => ended.run_reports.extend(r),
            None => {
                let status = status.map_or("still running after 10 s".into(), |s| s.to_string());
                let line = format!("{}: no report ({status})", which.log());
                errln!(
                    "control process {line}; see {}/{}",
                    out.display(),
                    which.log()
                );
                ended.no_report.push(line);
            }
        }
    }
    // The followers read what the processes wrote last (they poll every 10 ms).
    std::thread::sleep(Duration::from_millis(100));
    for c in &controllers {
        for r in c.events.try_iter() {
            seen.activations.add(&r.event);
        }
    }
    drop(controllers);
    ended.in_force_at_end = seen.in_force.as_mut().map(|c| c.at_end(sockets));
    let ping = std::fs::read_to_string(out.join("logs/ping.log")).unwrap_or_default();
    let replies: Vec<_> = topo
        .nodes()
        .filter_map(|n| ask_stats(&sockets.of(n)))
        .collect();
    let stats: Vec<_> = replies.iter().map(|st| &st.counters).collect();
    let sum = |c: Counter| stats.iter().map(|st| st.get(c)).sum::<u64>();
    // The fast path's frames never reach a worker: its forwarded add to
    // the workers' (its punted are the workers' own again).
    let forwarded_fast_path: u64 = replies
        .iter()
        .filter_map(|st| st.fast_path.as_ref())
        .map(|f| f.forwarded)
        .sum();
    let forwarded = sum(Counter::Forwarded) + forwarded_fast_path;
    let lost_to_gone_links = sum(Counter::EmuLinkGoneDrops);
    let fast = || replies.iter().filter_map(|st| st.fast_path.as_ref());
    let punted_by_fast_path = fast().map(|f| f.punted).sum();
    let drops = DropReason::ALL
        .iter()
        .map(|&r| {
            let n = sum(Counter::Drop(r)) + fast().map(|f| f.drop_count(r)).sum::<u64>();
            (r.name().to_string(), n)
        })
        .filter(|d| d.1 > 0)
        .collect();
    let order_refusals = Refusal::ALL
        .iter()
        .map(|&r| (Counter::Order(r).name().to_string(), sum(Counter::Order(r))))
        .collect();
    lab.stop_children();
    Ended {
        ping,
        forwarded,
        forwarded_fast_path,
        punted_by_fast_path,
        drops,
        lost_to_gone_links,
        order_refusals,
        ..ended
    }
}

/// The report `which` wrote, if it wrote one.
fn read_report(out: &Path, which: &Incarnation) -> Option<Vec<NodeReport>> {
    let text = std::fs::read_to_string(out.join(which.file("run", "json"))).ok()?;
    serde_json::from_str::<Vec<NodeReport>>(&text)
        .ok()
        .filter(|r| !r.is_empty())
}

/// Every directed flow, in station order: what its receiver counted and its
/// sender sent; flows that delivered nothing still count what they sent.
pub fn flows(seen: &Observed, pred: &Predicted) -> Vec<FlowReport> {
    let latest = &seen.latest;
    let mut flows = Vec::new();
    for (&id, r) in latest {
        for f in &r.flows {
            let sent = latest
                .get(&f.src)
                .and_then(|s| s.sent.iter().find(|(p, _)| *p == id))
                .map_or(0, |x| x.1);
            flows.push(FlowReport {
                from: pred.names[f.src as usize].clone(),
                to: pred.names[id as usize].clone(),
                predicted_ms: predicted_mean(&pred.pairs, f.src as usize, id as usize),
                sent,
                delivered: f.rx,
                duplicates: f.duplicates,
                reordered: f.reordered,
                latency_us: f.latency_us,
            });
        }
    }
    for (&id, r) in latest {
        for &(peer, sent) in &r.sent {
            let (from, to) = (&pred.names[id as usize], &pred.names[peer as usize]);
            if !flows.iter().any(|f| &f.from == from && &f.to == to) {
                flows.push(FlowReport {
                    from: from.clone(),
                    to: to.clone(),
                    predicted_ms: predicted_mean(&pred.pairs, id as usize, peer as usize),
                    sent,
                    delivered: 0,
                    duplicates: 0,
                    reordered: 0,
                    latency_us: None,
                });
            }
        }
    }
    let order = |n: &str| pred.names.iter().position(|x| x == n).unwrap_or(usize::MAX);
    flows.sort_by_key(|f| (order(&f.from), order(&f.to)));
    flows
}

/// What the faults cost: packets missing from 1 s before to 3 s after
/// each (set in the reports), counted from every sample whose interval
/// overlaps that window (by wall time, so a late tick's longer interval
/// counts once, where it was); returns (lost from 2 s after the last
/// fault to the end, lost outside the fault windows).
pub fn fault_losses(faults: &mut [FaultReport], pairs: &[PairTrace]) -> (u64, u64) {
    let samples = || pairs.iter().flat_map(|p| &p.samples);
    for f in faults.iter_mut() {
        f.lost_around = samples()
            .filter(|s| s.overlaps(f.window().0, f.window().1))
            .map(|s| s.lost)
            .sum();
    }
    let lost_after_recovery = faults.last().map_or(0, |f| {
        samples()
            .filter(|s| s.from_s >= f.wall_s + 2.0)
            .map(|s| s.lost)
            .sum()
    });
    // Loss outside the fault windows: what the scheduled swaps cost.
    let lost_outside_faults = samples()
        .filter(|s| {
            !faults
                .iter()
                .any(|f| s.overlaps(f.window().0, f.window().1))
        })
        .map(|s| s.lost)
        .sum();
    (lost_after_recovery, lost_outside_faults)
}

/// The run as its figures: `seen` by the live view, `ended` at the end.
#[derive(Debug)]
pub struct Run<'a> {
    pub scenario: String,
    pub time_scale: f64,
    pub wall_seconds: f64,
    pub rate: u32,
    pub fast_path: crate::dataplanes::FastPath,
    pub pred: &'a Predicted,
    pub seen: Observed,
    pub ended: &'a Ended,
}

/// The summary of a run.
pub fn summary(run: Run) -> Summary {
    let Run {
        pred,
        mut seen,
        ended,
        ..
    } = run;
    let flows = flows(&seen, pred);
    let mut outages = std::mem::take(&mut seen.outages);
    for o in &mut outages {
        o.count(&pred.pairs, run.rate);
    }
    let (lost_after_recovery, lost_outside_faults) = fault_losses(&mut seen.faults, &pred.pairs);
    let fault_windows: Vec<(f64, f64)> = seen.faults.iter().map(FaultReport::window).collect();
    let sent: u64 = flows.iter().map(|f| f.sent).sum();
    let delivered: u64 = flows.iter().map(|f| f.delivered).sum();
    let reports = &ended.run_reports;
    let (start_ns, end_ns) = pred.window_ns;
    Summary {
        scenario: run.scenario,
        nodes: pred.topo.n_sats + pred.topo.n_gs,
        links: pred.topo.links.len(),
        time_scale: run.time_scale,
        wall_seconds: run.wall_seconds,
        schedule_seconds: (end_ns - start_ns) as f64 / 1e9,
        rate_pps_per_flow: run.rate,
        flows,
        sent,
        delivered,
        delivery_ratio: delivered as f64 / sent.max(1) as f64,
        delivery_ratio_outside_faults: 1.0 - lost_outside_faults as f64 / sent.max(1) as f64,
        fib_swaps_verified: seen.activations.verified.len() as u64,
        fib_swaps_late: seen.activations.late_only() as u64,
        fib_swaps_failed: reports.iter().map(|r| r.failed as u64).sum(),
        repairs: seen.activations.repairs.len() as u64,
        controllers_without_report: ended.no_report.clone(),
        in_force_during: seen.in_force.as_ref().map(|c| c.during.clone()),
        in_force_at_end: ended.in_force_at_end.clone(),
        path_changes: pred
            .pairs
            .iter()
            .map(|p| p.paths.len().saturating_sub(1))
            .sum(),
        faults: seen.faults,
        lost_after_recovery,
        dataplane_cpu_seconds: seen.dp_cpu.iter().sum(),
        fast_path: run.fast_path,
        frames_forwarded: ended.forwarded,
        frames_forwarded_fast_path: ended.forwarded_fast_path,
        frames_punted_by_fast_path: ended.punted_by_fast_path,
        drops: ended.drops.clone(),
        cpu_during_traffic: seen.cpu,
        lost_to_gone_links: ended.lost_to_gone_links,
        link_changes: ended.link_changes,
        outages,
        control_cpu_seconds: seen.ctl_cpu,
        host: HostReport::new(std::mem::take(&mut seen.host), &pred.pairs, &fault_windows),
        orders: ended.orders.clone(),
    }
}

/// Writes `summary.md` (returned, with the ping's result), `summary.json`
/// and `timeline.svg` to `out`.
pub fn write(out: &Path, summary: &Summary, pred: &Predicted, ping: &str) -> Result<String> {
    let md = summary.to_markdown()
        + &format!(
            "\nping {} -> {} across the mesh: {}\n",
            pred.names[0],
            pred.names[1],
            ping.lines()
                .find(|l| l.contains("packets transmitted"))
                .unwrap_or("no result")
        );
    std::fs::write(out.join("summary.md"), &md)?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(summary)?,
    )?;
    let title = format!(
        "orbitmesh emulation: {}, {} nodes, x{}",
        summary.scenario, summary.nodes, summary.time_scale
    );
    let timeline = Timeline {
        title: &title,
        pairs: &pred.pairs,
        start_ns: pred.window_ns.0,
        step_ns: pred.step_ns,
        time_scale: summary.time_scale,
        wall_seconds: summary.wall_seconds,
        faults: &summary.faults,
        overloaded: &summary.host.overloaded_spans,
    };
    std::fs::write(out.join("timeline.svg"), timeline.svg()?)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Sample;

    #[test]
    fn fault_losses_follow_the_samples_wall_time() {
        // One sample a second, but the tick due at 31 s came at 34 s: the
        // loss of that stalled interval is 31..34 s, not "second 31".
        let mut samples: Vec<Sample> = (0..31)
            .map(|i| Sample {
                from_s: i as f64,
                to_s: i as f64 + 1.0,
                delivered: 400,
                lost: u64::from(i == 5) * 4,
            })
            .collect();
        samples.push(Sample {
            from_s: 31.0,
            to_s: 34.0,
            delivered: 900,
            lost: 300,
        });
        samples.extend((34..60).map(|i| Sample {
            from_s: i as f64,
            to_s: i as f64 + 1.0,
            delivered: 400,
            lost: u64::from(i == 50),
        }));
        let pairs = [PairTrace {
            samples,
            ..Default::default()
        }];
        let fault = |wall_s: f64| FaultReport {
            link: (1, 2),
            at_s: wall_s * 20.0,
            restored_at_s: None,
            wall_s,
            restored_wall_s: None,
            lost_around: 0,
            repaired_after_s: None,
            pairs_on_link: Vec::new(),
        };
        // A fault at 35.5 s: its window -1 s..+3 s (34.5..38.5) starts
        // after the stalled interval, which ends at 34 s.
        let mut faults = [fault(35.5)];
        let (after, outside) = fault_losses(&mut faults, &pairs);
        assert_eq!(faults[0].lost_around, 0);
        assert_eq!((after, outside), (1, 4 + 300 + 1));
        // At 34.8 s its window reaches back into the stalled interval.
        let mut faults = [fault(34.8)];
        let (after, outside) = fault_losses(&mut faults, &pairs);
        assert_eq!(faults[0].lost_around, 300);
        assert_eq!((after, outside), (1, 4 + 1));
    }
}
