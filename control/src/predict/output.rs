//! Analysis output for `--pairs`: RTT and path time series (CSV, in satgenpy's
//! numbering and units so they diff directly against satgenpy's
//! `print_routes_and_rtt` data), an SVG plot of RTT over time, and the run summary.
//!
//! Files, per pair `a:b` (both ground-station node ids):
//! - `pairs/rtt_<a>_to_<b>.csv`: header `time_ns,rtt_ns`, one row per step;
//!   RTT = (length a->b + length b->a) / c; the RTT field is empty when unreachable;
//! - `pairs/path_<a>_to_<b>.csv`: header `time_ns,path`, one row per step,
//!   path = node ids joined by `-`, or `Unreachable`;
//! - `pairs/rtt_<a>_to_<b>.svg`: RTT (ms) over time (s), cities in the title,
//!   ticks at 1-2-5 steps with a grid, outages shaded, path changes marked;
//! - `summary.md` / `summary.json`: the inputs (constellation, epoch, window,
//!   GSL rule, ISL policy, geometry model), nodes, links per step, FIB changes
//!   per node per minute, station pairs reachable (at some step, at every
//!   step), satellites left out because they could not be propagated, and per
//!   pair (city names beside node ids): RTT min/mean/p50/p99/max, path
//!   changes, hop counts, outage intervals; timing.
//!
//! Percentiles are nearest-rank (the smallest sample with at least p% of the
//! samples at or below it) over the steps at which the pair is reachable. A
//! path change is a step whose path differs from the previous step's, both
//! reachable (becoming unreachable or reachable again is an outage edge, not
//! a change). Hops count links: station -> satellite -> station is 2.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::coords::SPEED_OF_LIGHT_M_S;
use super::links::IslPolicy;
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
    /// Station names (empty: unknown), for titles and the summary.
    names: Vec<String>,
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
            names: Vec::new(),
        }
    }

    /// The stations' names (station i = node N + i), for titles and the summary.
    pub fn with_names(mut self, names: Vec<String>) -> Self {
        self.names = names;
        self
    }

    /// `node (name)` for a station node id, or just the id.
    fn node_name(&self, node: usize) -> String {
        match self.names.get(node.wrapping_sub(self.n_sats)) {
            Some(n) => format!("{node} ({n})"),
            None => node.to_string(),
        }
    }

    /// The statistics of pair `k` over the window ending at `end_ns`.
    pub fn pair_stats(&self, k: usize, end_ns: i64) -> PairStats {
        let (a, b) = self.pairs[k];
        let series = &self.series[k];
        let name = |n: usize| self.names.get(n.wrapping_sub(self.n_sats)).cloned();
        let mut rtt_ms: Vec<f64> = series
            .iter()
            .filter_map(|s| s.rtt_ns)
            .map(|r| r / 1e6)
            .collect();
        rtt_ms.sort_by(f64::total_cmp);
        let hops: Vec<usize> = series
            .iter()
            .filter_map(|s| s.path.as_ref().map(|p| p.len().saturating_sub(1)))
            .collect();
        let outages = self.unreachable(k, end_ns);
        PairStats {
            pair: format!("{a}:{b}"),
            from: StationRef {
                node: a,
                name: name(a),
            },
            to: StationRef {
                node: b,
                name: name(b),
            },
            steps: series.len(),
            reachable_steps: rtt_ms.len(),
            rtt_ms: Spread::of_sorted(&rtt_ms),
            path_changes: path_changes(series).len(),
            hops: (!hops.is_empty()).then(|| HopStats {
                min: hops.iter().copied().min().unwrap_or(0),
                mean: hops.iter().sum::<usize>() as f64 / hops.len() as f64,
                max: hops.iter().copied().max().unwrap_or(0),
            }),
            outage_seconds: outages
                .iter()
                .fold(0.0, |s, i| s + (i.end_ns - i.start_ns) as f64 / 1e9),
            outages,
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

    /// The step between the first two samples (0 with fewer than two).
    fn step_ns(&self) -> i64 {
        match self.series.first().map(Vec::as_slice) {
            Some([x, y, ..]) => y.t_ns - x.t_ns,
            _ => 0,
        }
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
            let title = format!("RTT {} -> {}", self.node_name(a), self.node_name(b));
            let end = self.series[k].last().map_or(0, |s| s.t_ns) + self.step_ns();
            let plot = svg_plot(&title, &self.series[k], &self.unreachable(k, end));
            std::fs::write(&f, plot).map_err(|e| io(&f, e))?;
        }
        Ok(())
    }
}

/// A station in the summary: its node id and (when known) its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StationRef {
    /// Node id (N + station index).
    pub node: usize,
    /// City or station name from the ground-stations file.
    pub name: Option<String>,
}

/// Spread of a sample: min, mean, nearest-rank p50 and p99, max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of an ascending sample; `None` when it is empty.
    pub fn of_sorted(v: &[f64]) -> Option<Self> {
        let (first, last) = (*v.first()?, *v.last()?);
        Some(Self {
            min: first,
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: nearest_rank(v, 50.0),
            p99: nearest_rank(v, 99.0),
            max: last,
        })
    }
}

/// Nearest-rank percentile `p` (0 < p <= 100) of a non-empty ascending sample.
pub fn nearest_rank(v: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Hop counts (links) over the reachable steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HopStats {
    /// Fewest.
    pub min: usize,
    /// Mean.
    pub mean: f64,
    /// Most.
    pub max: usize,
}

/// One pair's figures over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairStats {
    /// `a:b` (node ids).
    pub pair: String,
    /// Source station.
    pub from: StationRef,
    /// Destination station.
    pub to: StationRef,
    /// Steps in the window.
    pub steps: usize,
    /// Steps at which the pair was reachable (both ways).
    pub reachable_steps: usize,
    /// RTT in ms over the reachable steps; `None` if never reachable.
    pub rtt_ms: Option<Spread>,
    /// Steps whose path differs from the previous step's (both reachable).
    pub path_changes: usize,
    /// Links on the path a -> b over the reachable steps.
    pub hops: Option<HopStats>,
    /// Unreachable intervals `[start, end)`, ns since the epoch.
    pub outages: Vec<Interval>,
    /// Their total length, s.
    pub outage_seconds: f64,
}

/// Times of the steps whose path differs from the previous step's, both reachable.
pub fn path_changes(series: &[PairSample]) -> Vec<i64> {
    series
        .windows(2)
        .filter(|w| matches!((&w[0].path, &w[1].path), (Some(x), Some(y)) if x != y))
        .map(|w| w[1].t_ns)
        .collect()
}

/// Axis ticks at 1-2-5 steps covering `[lo, hi]`, about `n` of them.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    (first..)
        .map(|k| k as f64 * step)
        .take_while(|&v| v <= hi + step * 1e-9)
        .collect()
}

/// A tick label with as many decimals as the tick step needs.
fn tick_label(v: f64, ticks: &[f64]) -> String {
    let step = match ticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// A hand-written SVG line plot of RTT (ms) over time (s): ticks at 1-2-5
/// steps with grid lines, `outages` shaded, path changes marked by dashed
/// vertical lines, gaps in the line where unreachable.
pub fn svg_plot(title: &str, series: &[PairSample], outages: &[Interval]) -> String {
    let (w, h, ml, mr, mt, mb) = (900.0, 440.0, 70.0, 20.0, 60.0, 50.0);
    let pts: Vec<f64> = series
        .iter()
        .filter_map(|s| s.rtt_ns.map(|r| r / 1e6))
        .collect();
    let t0 = series.first().map_or(0.0, |s| s.t_ns as f64 / 1e9);
    let t1 = outages
        .iter()
        .map(|i| i.end_ns as f64 / 1e9)
        .chain(series.last().map(|s| s.t_ns as f64 / 1e9))
        .fold(t0 + 1e-9, f64::max);
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &p| {
            (lo.min(p), hi.max(p))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.1).max(0.5);
    let (y0, y1) = ((y0 - pad).max(0.0), y1 + pad);
    let x = |t: f64| ml + (t - t0) / (t1 - t0) * (w - ml - mr);
    let y = |v: f64| mt + (1.0 - (v - y0) / (y1 - y0)) * (h - mt - mb);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
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
    // Outages first, under everything else.
    for i in outages {
        let (a, b) = (x(i.start_ns as f64 / 1e9), x(i.end_ns as f64 / 1e9));
        let _ = writeln!(
            s,
            r##"<rect x="{a:.1}" y="{mt}" width="{:.1}" height="{ph}" fill="#f4b6b6" fill-opacity="0.6"><title>unreachable {:.3} s to {:.3} s</title></rect>"##,
            (b - a).max(0.5),
            i.start_ns as f64 / 1e9,
            i.end_ns as f64 / 1e9
        );
    }
    let yt = nice_ticks(y0, y1, 6);
    for &v in &yt {
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" x2="{0}" y1="{1:.1}" y2="{1:.1}" stroke="#dddddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            ml + pw,
            y(v),
            ml - 5.0,
            y(v) + 4.0,
            tick_label(v, &yt)
        );
    }
    let xt = nice_ticks(t0, t1, 8);
    for &t in &xt {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{mt}" y2="{1}" stroke="#dddddd"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}</text>"##,
            x(t),
            mt + ph,
            h - mb + 18.0,
            tick_label(t, &xt)
        );
    }
    for t in path_changes(series) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{mt}" y2="{1}" stroke="#e08a00" stroke-dasharray="4 3"><title>path change at {2:.3} s</title></line>"##,
            x(t as f64 / 1e9),
            mt + ph,
            t as f64 / 1e9
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">time since epoch (s)</text>"#,
        ml + pw / 2.0,
        h - 8.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">RTT (ms)</text>"#,
        h / 2.0,
        h / 2.0
    );
    let _ = writeln!(
        s,
        r##"<g font-size="11"><line x1="{ml}" x2="{}" y1="44" y2="44" stroke="steelblue" stroke-width="2"/><text x="{}" y="48">RTT</text><rect x="{}" y="38" width="14" height="12" fill="#f4b6b6"/><text x="{}" y="48">unreachable</text><line x1="{}" x2="{}" y1="38" y2="50" stroke="#e08a00" stroke-dasharray="4 3"/><text x="{}" y="48">path change</text></g>"##,
        ml + 20.0,
        ml + 25.0,
        ml + 70.0,
        ml + 90.0,
        ml + 175.0,
        ml + 175.0,
        ml + 182.0
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

/// The GSL rule of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GslRule {
    /// Longest ground-satellite link, m (the largest shell's with several).
    pub max_length_m: f64,
    /// Lowest elevation above the horizon, degrees (`None`: range only).
    pub min_elevation_deg: Option<f64>,
    /// Each shell has its own longest link (several shells, no --max-gsl-m).
    pub per_shell: bool,
}

/// What a run was computed from: enough to rerun it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    /// The constellation: `preset NAME`, `walker SPEC` (in shell order) or `tle FILE`.
    pub constellation: Vec<String>,
    /// Its epoch (time 0), RFC 3339 UTC.
    pub epoch_utc: String,
    /// First instant, ns since the epoch.
    pub start_ns: i64,
    /// Window end (exclusive), ns since the epoch.
    pub end_ns: i64,
    /// Step, ns.
    pub step_ns: i64,
    /// Ground-stations file, and how many of its stations.
    pub ground_stations: Option<String>,
    /// GSL visibility.
    pub gsl_rule: GslRule,
    /// ISL policy.
    pub isl_policy: IslPolicy,
    /// The ISL plan in words (planned links, the per-step rule).
    pub isls: String,
    /// Geometry model (positions, station coordinates, ranges).
    pub geometry: super::geometry::Geometry,
}

/// The run summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What the run was computed from.
    pub inputs: Inputs,
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
    /// Per `--pairs` pair: RTT, path changes, hops, outages.
    pub pairs: Vec<PairStats>,
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

    /// The inputs as Markdown list items.
    fn inputs_markdown(&self, s: &mut String) {
        let i = &self.inputs;
        let _ = writeln!(s, "- constellation: {}", i.constellation.join(", "));
        let _ = writeln!(s, "- epoch: {}", i.epoch_utc);
        let _ = writeln!(
            s,
            "- window: {} s to {} s after the epoch, step {} ms",
            i.start_ns as f64 / 1e9,
            i.end_ns as f64 / 1e9,
            i.step_ns as f64 / 1e6
        );
        if let Some(g) = &i.ground_stations {
            let _ = writeln!(s, "- ground stations: {g}");
        }
        let g = &i.gsl_rule;
        let _ = writeln!(
            s,
            "- GSL rule: slant range <= {} m{}{}",
            g.max_length_m,
            if g.per_shell {
                " (each shell its own)"
            } else {
                ""
            },
            g.min_elevation_deg
                .map(|e| format!(", elevation >= {e} deg"))
                .unwrap_or_default()
        );
        let policy = match i.isl_policy {
            IslPolicy::Grid { inter_shell: None } => "grid".to_string(),
            IslPolicy::Grid {
                inter_shell: Some(_),
            } => "grid, nearest-in-range between shells".into(),
            IslPolicy::Nearest(_) => "nearest-in-range".into(),
        };
        let _ = writeln!(s, "- ISL policy: {policy} ({})", i.isls);
        let _ = writeln!(s, "- geometry: {}", i.geometry.name());
    }

    /// The per-pair table.
    fn pairs_markdown(&self, s: &mut String) {
        if self.pairs.is_empty() {
            return;
        }
        s.push_str("\n## Pairs\n\n");
        s.push_str("| pair | from | to | reachable steps | RTT ms min / mean / p50 / p99 / max | path changes | hops min / mean / max | outages |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for p in &self.pairs {
            let name = |r: &StationRef| r.name.clone().unwrap_or_else(|| "-".into());
            let rtt = p.rtt_ms.map_or("-".into(), |r| {
                format!(
                    "{:.3} / {:.3} / {:.3} / {:.3} / {:.3}",
                    r.min, r.mean, r.p50, r.p99, r.max
                )
            });
            let hops = p.hops.map_or("-".into(), |h| {
                format!("{} / {:.2} / {}", h.min, h.mean, h.max)
            });
            let outages = if p.outages.is_empty() {
                "none".to_string()
            } else {
                let list: Vec<String> = p
                    .outages
                    .iter()
                    .map(|i| {
                        format!(
                            "[{} s, {} s)",
                            i.start_ns as f64 / 1e9,
                            i.end_ns as f64 / 1e9
                        )
                    })
                    .collect();
                format!(
                    "{} ({:.3} s): {}",
                    p.outages.len(),
                    p.outage_seconds,
                    list.join(", ")
                )
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} of {} | {rtt} | {} | {hops} | {outages} |",
                p.pair,
                name(&p.from),
                name(&p.to),
                p.reachable_steps,
                p.steps,
                p.path_changes
            );
        }
    }

    /// Human-readable summary.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# orbitmesh predict: summary\n\n");
        self.inputs_markdown(&mut s);
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
        self.pairs_markdown(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Ten steps of 1 s for pair 3:4 (N = 3): RTT 10, 20, ..., unreachable at
    /// steps 3-4 and 9, the path 3-0-4 then 3-0-1-4 from step 6 on.
    fn recorder() -> Recorder {
        let mut rec =
            Recorder::new(3, 2, vec![(3, 4)]).with_names(vec!["Paris".into(), "Lima".into()]);
        for k in 0..10i64 {
            let up = !matches!(k, 3 | 4 | 9);
            let path = if k < 6 {
                vec![3, 0, 4]
            } else {
                vec![3, 0, 1, 4]
            };
            rec.series[0].push(PairSample {
                t_ns: k * S,
                rtt_ns: up.then(|| (k + 1) as f64 * 10e6),
                path: up.then_some(path),
            });
        }
        rec
    }

    #[test]
    fn pair_stats_are_computed_from_the_series() {
        let p = recorder().pair_stats(0, 10 * S);
        assert_eq!(p.pair, "3:4");
        assert_eq!(p.from.name.as_deref(), Some("Paris"));
        assert_eq!((p.to.node, p.to.name.as_deref()), (4, Some("Lima")));
        assert_eq!((p.steps, p.reachable_steps), (10, 7));
        // Reachable RTTs (ms): 10 20 30 60 70 80 90.
        let r = p.rtt_ms.unwrap();
        assert_eq!((r.min, r.max), (10.0, 90.0));
        assert!((r.mean - 360.0 / 7.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.p50, 60.0, "rank ceil(3.5) = 4");
        assert_eq!(r.p99, 90.0);
        // 3-0-4 -> 3-0-1-4 between steps 5 and 6 (both reachable) only.
        assert_eq!(p.path_changes, 1);
        let h = p.hops.unwrap();
        assert_eq!((h.min, h.max), (2, 3));
        assert!((h.mean - 17.0 / 7.0).abs() < 1e-9);
        let iv = |a: i64, b: i64| Interval {
            start_ns: a * S,
            end_ns: b * S,
        };
        assert_eq!(p.outages, [iv(3, 5), iv(9, 10)]);
        assert_eq!(p.outage_seconds, 3.0);
        let json = serde_json::to_value(&p).unwrap();
        for k in ["min", "mean", "p50", "p99", "max"] {
            assert!(json["rtt_ms"][k].is_number(), "{k}: {json}");
        }
        assert_eq!(json["outages"][0]["start_ns"], 3 * S);
    }

    #[test]
    fn never_reachable_pair_has_no_rtt() {
        let mut rec = Recorder::new(3, 2, vec![(3, 4)]);
        rec.series[0].push(PairSample {
            t_ns: 0,
            rtt_ns: None,
            path: None,
        });
        let p = rec.pair_stats(0, S);
        assert!(p.rtt_ms.is_none() && p.hops.is_none() && p.from.name.is_none());
        assert_eq!(
            p.outages,
            [Interval {
                start_ns: 0,
                end_ns: S
            }]
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 50.0), 50.0);
        assert_eq!(nearest_rank(&v, 99.0), 99.0);
        assert_eq!(nearest_rank(&v, 100.0), 100.0);
        assert_eq!(nearest_rank(&[7.0], 99.0), 7.0);
        assert_eq!(nearest_rank(&[1.0, 2.0], 50.0), 1.0);
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(nice_ticks(0.0, 200.0, 8), [0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(nice_ticks(49.4, 55.7, 6), [50.0, 52.0, 54.0]);
        let t = nice_ticks(0.2, 2.9, 6);
        assert_eq!(t, [0.5, 1.0, 1.5, 2.0, 2.5]);
        assert_eq!(tick_label(1.5, &t), "1.5");
        assert_eq!(tick_label(150.0, &[100.0, 150.0]), "150");
    }

    #[test]
    fn svg_shades_outages_and_marks_path_changes() {
        let rec = recorder();
        let svg = svg_plot(
            "RTT 3 (Paris) -> 4 (Lima)",
            &rec.series[0],
            &rec.unreachable(0, 10 * S),
        );
        assert!(svg.contains("Paris") && svg.contains("Lima"));
        assert_eq!(svg.matches("<title>unreachable").count(), 2);
        assert_eq!(svg.matches("<title>path change").count(), 1);
        assert_eq!(
            svg.matches("<polyline").count(),
            2,
            "one line per reachable run"
        );
    }
}
