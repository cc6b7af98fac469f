//! Analysis output for `--pairs`: RTT and path time series (CSV, in satgenpy's
//! numbering and units so they diff directly against satgenpy's
//! `print_routes_and_rtt` data), an SVG plot of RTT over time, and the run summary.
//!
//! Files, per pair `a:b` (both ground-station node ids):
//! - `pairs/rtt_<a>_to_<b>.csv`: header `time_ns,rtt_ns`, one row per step;
//!   RTT = (length a->b + length b->a) / c; the RTT field is empty when unreachable;
//! - `pairs/path_<a>_to_<b>.csv`: header `time_ns,path`, one row per step,
//!   path = node ids joined by `-`, or `Unreachable`;
//! - `pairs/rtt_<a>_to_<b>.svg`: RTT (ms) over time (s);
//! - `summary.md` / `summary.json`: nodes, links per step, FIB changes per node per
//!   minute, station pairs reachable (at some step, at every step), satellites
//!   left out because they could not be propagated, unreachable intervals per
//!   pair, timing.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::coords::SPEED_OF_LIGHT_M_S;
use super::routing::StepResult;
use super::{Error, LeftOut};

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Parses `a:b,c:d` into node pairs, checking both ends are ground stations.
pub fn parse_pairs(spec: &str, n_sats: usize, n_gs: usize) -> Result<Vec<(usize, usize)>, Error> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = item
            .split_once(':')
            .ok_or_else(|| Error::Scenario(format!("pair {item:?} is not of the form a:b")))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| Error::Scenario(format!("pair {item:?}: {s:?} is not a node id")))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        for n in [a, b] {
            if n < n_sats || n >= n_sats + n_gs {
                return Err(Error::Scenario(format!(
                    "pair {item:?}: node {n} is not a ground station (ground stations are nodes {n_sats}..{})",
                    (n_sats + n_gs).saturating_sub(1)
                )));
            }
        }
        if a == b {
            return Err(Error::Scenario(format!(
                "pair {item:?}: both ends are the same node"
            )));
        }
        out.push((a, b));
    }
    if out.is_empty() {
        return Err(Error::Scenario(format!("--pairs {spec:?} names no pair")));
    }
    Ok(out)
}

/// One sample of a pair's time series.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSample {
    /// ns since the epoch.
    pub t_ns: i64,
    /// RTT in ns, `None` when unreachable.
    pub rtt_ns: Option<f64>,
    /// Path a -> b, `None` when unreachable.
    pub path: Option<Vec<u32>>,
}

/// An interval `[start, end)` in ns during which a pair was unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// First unreachable step.
    pub start_ns: i64,
    /// First reachable step after it (or the window end).
    pub end_ns: i64,
}

/// Records the pairs' time series and the per-step link counts.
#[derive(Debug)]
pub struct Recorder {
    n_sats: usize,
    n_gs: usize,
    /// The pairs (node ids).
    pub pairs: Vec<(usize, usize)>,
    /// One series per pair.
    pub series: Vec<Vec<PairSample>>,
    /// (ISLs up, GSLs) per step.
    pub links: Vec<(u32, u32)>,
    /// Per unordered station pair (see [`pair_index`]): reachable at some
    /// step so far, and at every step so far.
    reach: Vec<(bool, bool)>,
}

/// Index of the unordered station pair `{a, b}` (`a < b`) in a list of the
/// `G (G - 1) / 2` pairs (0,1), (0,2), ..., (1,2), ...
fn pair_index(n_gs: usize, a: usize, b: usize) -> usize {
    a * n_gs - a * (a + 1) / 2 + (b - a - 1)
}

/// How many station pairs could reach each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reachability {
    /// Unordered station pairs, G (G - 1) / 2.
    pub station_pairs: usize,
    /// Pairs with a route both ways at one step or more.
    pub reachable_at_some_step: usize,
    /// Pairs with a route both ways at every step.
    pub reachable_at_every_step: usize,
}

impl Recorder {
    /// A recorder for the given pairs.
    pub fn new(n_sats: usize, n_gs: usize, pairs: Vec<(usize, usize)>) -> Self {
        let series = vec![Vec::new(); pairs.len()];
        Self {
            n_sats,
            n_gs,
            pairs,
            series,
            links: Vec::new(),
            reach: vec![(false, true); n_gs * n_gs.saturating_sub(1) / 2],
        }
    }

    /// Station pairs reachable so far.
    pub fn reachability(&self) -> Reachability {
        let stepped = !self.links.is_empty();
        Reachability {
            station_pairs: self.reach.len(),
            reachable_at_some_step: self.reach.iter().filter(|r| r.0).count(),
            reachable_at_every_step: self.reach.iter().filter(|r| stepped && r.1).count(),
        }
    }

    fn push_reachability(&mut self, step: &StepResult) {
        let g = self.n_gs;
        for a in 0..g {
            for b in a + 1..g {
                let up = step.gs_dist[a * g + b].is_finite() && step.gs_dist[b * g + a].is_finite();
                let r = &mut self.reach[pair_index(g, a, b)];
                r.0 |= up;
                r.1 &= up;
            }
        }
    }

    /// Adds a step.
    pub fn push(&mut self, step: &StepResult) {
        let n_nodes = self.n_sats + self.n_gs;
        self.links.push((step.isls_up, step.gsls_up));
        self.push_reachability(step);
        for (k, &(a, b)) in self.pairs.iter().enumerate() {
            let (ga, gb) = (a - self.n_sats, b - self.n_sats);
            let there = step.gs_dist[gb * self.n_gs + ga];
            let back = step.gs_dist[ga * self.n_gs + gb];
            let path = step.path(n_nodes, self.n_sats, a, gb);
            let rtt = (there.is_finite() && back.is_finite() && path.is_some())
                .then(|| (there + back) * 1e9 / SPEED_OF_LIGHT_M_S);
            self.series[k].push(PairSample {
                t_ns: step.t_ns,
                rtt_ns: rtt,
                path: if rtt.is_some() { path } else { None },
            });
        }
    }

    /// Unreachable intervals of pair `k`, given the window end.
    pub fn unreachable(&self, k: usize, end_ns: i64) -> Vec<Interval> {
        let mut out = Vec::new();
        let mut start = None;
        for s in &self.series[k] {
            match (s.rtt_ns.is_none(), start) {
                (true, None) => start = Some(s.t_ns),
                (false, Some(st)) => {
                    out.push(Interval {
                        start_ns: st,
                        end_ns: s.t_ns,
                    });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(st) = start {
            out.push(Interval {
                start_ns: st,
                end_ns,
            });
        }
        out
    }

    /// Writes the CSV and SVG files into `<dir>/pairs/`.
    pub fn write_pairs(&self, dir: &Path) -> Result<(), Error> {
        let dir = dir.join("pairs");
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for (k, &(a, b)) in self.pairs.iter().enumerate() {
            let mut rtt = String::from("time_ns,rtt_ns\n");
            let mut path = String::from("time_ns,path\n");
            for s in &self.series[k] {
                match s.rtt_ns {
                    Some(r) => writeln!(rtt, "{},{:.3}", s.t_ns, r),
                    None => writeln!(rtt, "{},", s.t_ns),
                }
                .ok();
                let p = match &s.path {
                    Some(p) => p.iter().map(u32::to_string).collect::<Vec<_>>().join("-"),
                    None => "Unreachable".into(),
                };
                writeln!(path, "{},{p}", s.t_ns).ok();
            }
            let f = dir.join(format!("rtt_{a}_to_{b}.csv"));
            std::fs::write(&f, rtt).map_err(|e| io(&f, e))?;
            let f = dir.join(format!("path_{a}_to_{b}.csv"));
            std::fs::write(&f, path).map_err(|e| io(&f, e))?;
            let f = dir.join(format!("rtt_{a}_to_{b}.svg"));
            std::fs::write(&f, svg_plot(&format!("RTT {a} -> {b}"), &self.series[k]))
                .map_err(|e| io(&f, e))?;
        }
        Ok(())
    }
}

/// A hand-written SVG line plot of RTT (ms) over time (s); gaps where unreachable.
pub fn svg_plot(title: &str, series: &[PairSample]) -> String {
    let (w, h, ml, mr, mt, mb) = (800.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let pts: Vec<(f64, f64)> = series
        .iter()
        .filter_map(|s| s.rtt_ns.map(|r| (s.t_ns as f64 / 1e9, r / 1e6)))
        .collect();
    let t0 = series.first().map_or(0.0, |s| s.t_ns as f64 / 1e9);
    let t1 = series
        .last()
        .map_or(1.0, |s| s.t_ns as f64 / 1e9)
        .max(t0 + 1e-9);
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.1).max(0.5);
    let (y0, y1) = ((y0 - pad).max(0.0), y1 + pad);
    let x = |t: f64| ml + (t - t0) / (t1 - t0) * (w - ml - mr);
    let y = |v: f64| mt + (1.0 - (v - y0) / (y1 - y0)) * (h - mt - mb);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    let _ = writeln!(
        s,
        r#"<rect x="{ml}" y="{mt}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        w - ml - mr,
        h - mt - mb
    );
    for i in 0..=5 {
        let v = y0 + (y1 - y0) * i as f64 / 5.0;
        let t = t0 + (t1 - t0) * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{v:.2}</text>"#,
            ml - 5.0,
            y(v) + 4.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{t:.1}</text>"#,
            x(t),
            h - mb + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">time since epoch (s)</text>"#,
        (ml + w - mr) / 2.0,
        h - 8.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">RTT (ms)</text>"#,
        h / 2.0,
        h / 2.0
    );
    // One polyline per reachable run.
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, s: &mut String| {
        if !run.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="steelblue" stroke-width="1.5" points="{}"/>"#,
                run.join(" ")
            );
            run.clear();
        }
    };
    for p in series {
        match p.rtt_ns {
            Some(r) => run.push(format!("{:.1},{:.1}", x(p.t_ns as f64 / 1e9), y(r / 1e6))),
            None => flush(&mut run, &mut s),
        }
    }
    flush(&mut run, &mut s);
    s.push_str("</svg>\n");
    s
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The run summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Satellites.
    pub satellites: usize,
    /// Ground stations.
    pub ground_stations: usize,
    /// Steps computed.
    pub steps: usize,
    /// Step, ns.
    pub step_ns: i64,
    /// ISLs up per step: min, mean, max.
    pub isls_per_step: (u32, f64, u32),
    /// GSLs per step: min, mean, max.
    pub gsls_per_step: (u32, f64, u32),
    /// FIB entry changes (next hop or backup) per node per minute: mean over
    /// nodes, max over nodes.
    pub fib_changes_per_node_per_minute: Option<(f64, f64)>,
    /// Primary next-hop changes per node per minute: mean, max.
    pub primary_changes_per_node_per_minute: Option<(f64, f64)>,
    /// Station pairs reachable (both ways) at some step and at every step.
    pub reachability: Reachability,
    /// Satellites left out of steps because SGP4 could not propagate them.
    pub left_out: LeftOut,
    /// Unreachable intervals per pair `a:b`.
    pub unreachable: Vec<(String, Vec<Interval>)>,
    /// Wall-clock seconds for the prediction (propagation + routing + recording).
    pub compute_seconds: f64,
    /// Milliseconds per step.
    pub ms_per_step: f64,
}

impl Summary {
    /// Link statistics from a recorder.
    pub fn link_stats(links: &[(u32, u32)]) -> ((u32, f64, u32), (u32, f64, u32)) {
        let stat = |f: &dyn Fn(&(u32, u32)) -> u32| {
            let v: Vec<u32> = links.iter().map(f).collect();
            let n = v.len().max(1) as f64;
            (
                v.iter().copied().min().unwrap_or(0),
                v.iter().map(|&x| f64::from(x)).sum::<f64>() / n,
                v.iter().copied().max().unwrap_or(0),
            )
        };
        (stat(&|l| l.0), stat(&|l| l.1))
    }

    /// Writes `summary.json` and `summary.md` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let f = dir.join("summary.json");
        let json =
            serde_json::to_string_pretty(self).map_err(|e| io(&f, std::io::Error::other(e)))?;
        std::fs::write(&f, json).map_err(|e| io(&f, e))?;
        let f = dir.join("summary.md");
        std::fs::write(&f, self.to_markdown()).map_err(|e| io(&f, e))
    }

    /// Human-readable summary.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# orbitmesh predict: summary\n\n");
        let _ = writeln!(
            s,
            "- nodes: {} satellites + {} ground stations",
            self.satellites, self.ground_stations
        );
        let _ = writeln!(
            s,
            "- steps: {} at {} ms",
            self.steps,
            self.step_ns as f64 / 1e6
        );
        let (a, b, c) = self.isls_per_step;
        let _ = writeln!(s, "- ISLs up per step: min {a}, mean {b:.1}, max {c}");
        let (a, b, c) = self.gsls_per_step;
        let _ = writeln!(s, "- GSLs per step: min {a}, mean {b:.1}, max {c}");
        if let Some((m, x)) = self.fib_changes_per_node_per_minute {
            let _ = writeln!(
                s,
                "- FIB entry changes (next hop or backup) per node per minute: mean {m:.2}, max {x:.2}"
            );
        }
        if let Some((m, x)) = self.primary_changes_per_node_per_minute {
            let _ = writeln!(
                s,
                "- primary next-hop changes per node per minute: mean {m:.2}, max {x:.2}"
            );
        }
        let r = &self.reachability;
        let _ = writeln!(
            s,
            "- station pairs reachable: {} of {} at some step ({:.1}%), {} at every step ({:.1}%)",
            r.reachable_at_some_step,
            r.station_pairs,
            percent(r.reachable_at_some_step, r.station_pairs),
            r.reachable_at_every_step,
            percent(r.reachable_at_every_step, r.station_pairs)
        );
        let _ = writeln!(
            s,
            "- satellites left out (SGP4 cannot propagate them): {} (at {} instant-satellite pairs)",
            self.left_out.satellites.len(),
            self.left_out.instants
        );
        let _ = writeln!(
            s,
            "- compute: {:.2} s ({:.2} ms/step)",
            self.compute_seconds, self.ms_per_step
        );
        for (pair, iv) in &self.unreachable {
            if iv.is_empty() {
                let _ = writeln!(s, "- pair {pair}: reachable at every step");
            } else {
                let list: Vec<String> = iv
                    .iter()
                    .map(|i| format!("[{} ns, {} ns)", i.start_ns, i.end_ns))
                    .collect();
                let _ = writeln!(s, "- pair {pair}: unreachable {}", list.join(", "));
            }
        }
        s
    }
}
