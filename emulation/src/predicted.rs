//! Part 1 of an emulation: the prediction. The scenario is propagated over
//! its window, every step's routing goes into the per-node FIB schedules
//! (written under `OUT/schedule` for the control process) and into the
//! topology to build (every link a step routes over), and each
//! ground-station pair's predicted path and latency are kept for the live
//! view and the report.

use std::path::Path;

use anyhow::{bail, Result};

use super::report::PairTrace;
use super::Topology;
use control::predict::scenario::Scenario;
use control::predict::Network;

/// Largest slice this emulation builds (one namespace and dataplane a node).
pub const MAX_NODES: usize = 1000;

/// What the prediction gives the rest of the emulation.
#[derive(Debug)]
pub struct Predicted {
    pub topo: Topology,
    pub pairs: Vec<PairTrace>,
    /// Station names, by station index.
    pub names: Vec<String>,
    pub step_ns: i64,
    /// Schedule window [start, end) in ns.
    pub window_ns: (i64, i64),
    /// FIB changes in all the schedules.
    pub swaps: usize,
    /// Each node's FIB instants (schedule ns), by node id.
    pub instants: Vec<Vec<i64>>,
    pub net: Network,
}

/// Predicts `scenario` and writes its schedules (and the scenario, for
/// the control process's recomputations) to `out/schedule`.
pub fn predict(scenario: &Scenario, out: &Path) -> Result<Predicted> {
    let model = scenario.build(&Default::default())?;
    let net = &model.net;
    let (n_sats, n_gs) = (net.n_sats(), net.stations.len());
    if n_gs < 2 {
        bail!("an emulation needs at least 2 ground stations (traffic flows between them)");
    }
    if net.isls.dynamic.is_some() {
        // Its wiring is the planned ISLs; links chosen per step are not wired.
        bail!("the emulation wires planned +Grid ISLs only: use --isl-policy grid without --inter-shell-terminals");
    }
    if n_sats + n_gs > MAX_NODES {
        bail!(
            "{} nodes: this emulation runs one namespace and one dataplane per node on one box; \
             use a slice of up to 1000 nodes (see README, 'Emulation scale')",
            n_sats + n_gs
        );
    }
    let mut topo = Topology::new(n_sats, n_gs, &net.isls.pairs, model.gs_prefixes.clone());
    let names: Vec<String> = net.stations.iter().map(|s| s.name.clone()).collect();
    let mut pairs = station_pairs(&names);
    let mut sched = model.schedule_builder(scenario.srgb_base)?;
    let n_nodes = n_sats + n_gs;
    control::predict::simulate(
        net,
        model.window,
        0,
        |step| {
            sched.push(step);
            topo.add_used_links(step);
            for p in &mut pairs {
                let d = step.gs_dist[p.b * n_gs + p.a];
                p.latency_ms.push(if d.is_finite() {
                    d / 299_792_458.0 * 1e3
                } else {
                    f64::NAN
                });
                let path = step
                    .path(n_nodes, n_sats, n_sats + p.a, p.b)
                    .unwrap_or_default();
                if p.paths.last().map(|l| &l.1) != Some(&path) {
                    p.paths.push((step.t_ns, path));
                }
            }
            Ok(())
        },
        |_, _| {},
    )?;
    let dir = out.join("schedule");
    sched.write(&dir)?;
    scenario.write(&dir)?;
    let swaps = sched.schedules().iter().map(|s| s.deltas.len()).sum();
    let mut instants = vec![Vec::new(); n_nodes];
    for s in sched.schedules() {
        if let Some(v) = instants.get_mut(s.node as usize) {
            v.push(s.initial.activate_at_ns);
            v.extend(s.deltas.iter().map(|d| d.activate_at_ns));
        }
    }
    Ok(Predicted {
        topo,
        pairs,
        names,
        step_ns: model.window.step_ns,
        window_ns: (model.window.start_ns, model.window.end_ns),
        swaps,
        instants,
        net: model.net,
    })
}

/// Every pair of stations (smaller index first), nothing traced yet.
fn station_pairs(names: &[String]) -> Vec<PairTrace> {
    let mut pairs = Vec::new();
    for x in 0..names.len() {
        for y in x + 1..names.len() {
            pairs.push(PairTrace {
                a: x,
                b: y,
                name: format!("{}-{}", names[x], names[y]),
                ..Default::default()
            });
        }
    }
    pairs
}

/// Mean predicted one-way latency (ms) between stations `x` and `y` over
/// the steps where they are reachable.
pub fn predicted_mean(pairs: &[PairTrace], x: usize, y: usize) -> Option<f64> {
    let p = pairs.iter().find(|p| (p.a, p.b) == (x.min(y), x.max(y)))?;
    let v: Vec<f64> = p
        .latency_ms
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The scenario as the report names it (presets, Walker shells, TLE file).
pub fn scenario_name(s: &Scenario) -> String {
    let mut parts: Vec<String> = s.preset.clone();
    parts.extend(s.walker.iter().map(|w| format!("Walker {w}")));
    if let Some(t) = &s.tle {
        parts.push(t.display().to_string());
    }
    parts.join(" + ")
}
