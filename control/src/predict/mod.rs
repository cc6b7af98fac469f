//! Topology predictor: from orbits to per-node FIB schedules.
//!
//! Pipeline (one module per stage, in the field's words):
//! - [`tle`] / [`walker`]: the constellation, from TLE files or Walker shells
//!   generated with Hypatia satgenpy's conventions;
//! - [`propagate`] + [`coords`]: SGP4 (WGS72, AFSPC mode) -> TEME -> ECEF (GMST);
//!   or, with `--geometry hypatia` ([`geometry`], [`hypatia`]), satgenpy's
//!   own PyEphem/libastro geometry, bit for bit;
//! - [`links`] (+Grid ISLs; [`infer`]: shells and planes of a TLE set
//!   without a grid header) and [`ground`] (stations, GSL visibility);
//! - [`routing`]: per step, latency-weighted shortest paths over ISLs only
//!   (satgenpy `algorithm_free_one_only_over_isls`) with RFC 5286 loop-free
//!   alternates;
//! - [`schedule`]: per-node next-hop tables at t0 then deltas with activation
//!   times (time-variant routing, RFC 9657), SR-MPLS node SIDs (RFC 8660);
//! - [`output`]: `--pairs` RTT / path time series (CSV, SVG) and the summary.
//!
//! Numbering follows satgenpy: satellites 0..N-1, ground station i is node N+i.
//! Several Walker shells can form one scenario: their satellites are numbered
//! shell after shell, each shell has its own +Grid (no ISLs between shells) and
//! its own maximum GSL length.
//!
//! Destinations are the ground stations; `Network::sat_destinations` adds every
//! satellite's node SID (costly: one Dijkstra per satellite per step).
//! Time: integer nanoseconds since the scenario epoch (see [`propagate`]); steps
//! are `start, start + step, ...` while `< end` (satgenpy's `range`).
//!
//! ISLs are planned once (+Grid, [`links`]) or chosen at every step by the
//! nearest-in-range rule with hysteresis ([`nearest`]); the latter depends
//! on the previous step, so [`simulate`] chooses those links in time order
//! before it routes the steps in parallel.
//!
//! A satellite that cannot be propagated at a step is left out of it (see
//! [`routing`]); [`simulate`] warns once per such satellite and counts them
//! ([`LeftOut`]), so a real TLE file with decayed objects runs to the end.
//!
//! Steps are independent, so [`simulate`] computes them in parallel (rayon) in
//! chunks, then hands them to a sequential consumer in time order: memory is
//! bounded by the chunk, not by the window.

pub mod coords;
pub mod geometry;
pub mod ground;
pub mod hypatia;
pub mod infer;
pub mod links;
pub mod nearest;
pub mod output;
pub mod propagate;
pub mod routing;
pub mod scenario;
pub mod schedule;
pub mod tle;
pub mod walker;

use rayon::prelude::*;

pub use routing::{Network, StepResult, NONE};

/// Everything that can go wrong while predicting; messages name the input that
/// is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TLE file or line is malformed.
    #[error("{file}: line {line}: {reason}")]
    Tle {
        /// File (or generated source) name.
        file: String,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A ground-station line is malformed or out of range.
    #[error("ground stations: line {line}: {reason}")]
    GroundStation {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A scenario parameter is invalid.
    #[error("{0}")]
    Scenario(String),
    /// SGP4 failed for a satellite (e.g. decayed orbit).
    #[error("propagation of satellite {sat} failed: {reason}")]
    Propagation {
        /// Satellite index.
        sat: usize,
        /// The sgp4 error.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Most steps one run accepts (the list of instants is held in memory).
pub const MAX_STEPS: u64 = 100_000_000;

/// The time window of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant, ns since the epoch.
    pub start_ns: i64,
    /// End (exclusive), ns since the epoch.
    pub end_ns: i64,
    /// Step, ns.
    pub step_ns: i64,
}

impl Window {
    /// Checks the window: positive step, non-empty.
    pub fn new(start_ns: i64, end_ns: i64, step_ns: i64) -> Result<Self, Error> {
        if step_ns <= 0 {
            return Err(Error::Scenario(format!(
                "time step must be positive, got {step_ns} ns"
            )));
        }
        if end_ns <= start_ns {
            return Err(Error::Scenario(format!(
                "empty time window: end {end_ns} ns is not after start {start_ns} ns"
            )));
        }
        let steps = (i128::from(end_ns) - i128::from(start_ns) + i128::from(step_ns) - 1)
            / i128::from(step_ns);
        if steps > MAX_STEPS as i128 {
            return Err(Error::Scenario(format!(
                "{steps} time steps is more than the {MAX_STEPS} supported in one run; \
                 use a longer step or a shorter window"
            )));
        }
        Ok(Self {
            start_ns,
            end_ns,
            step_ns,
        })
    }

    /// The instants of the window.
    pub fn times(&self) -> Vec<i64> {
        (0..)
            .map(|k| self.start_ns + k * self.step_ns)
            .take_while(|&t| t < self.end_ns)
            .collect()
    }
}

/// Satellites left out of steps because they could not be propagated.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    /// The satellites left out at one step or more, ascending.
    pub satellites: std::collections::BTreeSet<u32>,
    /// (step, satellite) pairs left out.
    pub instants: u64,
}

impl LeftOut {
    /// Counts the satellites `step` left out; warns (stderr) the first time a
    /// satellite is left out, with SGP4's reason.
    pub fn record(&mut self, net: &Network, step: &StepResult) {
        self.instants += step.left_out.len() as u64;
        for &sat in &step.left_out {
            if self.satellites.insert(sat) {
                let why = match net.propagator.teme_km(sat as usize, step.t_ns) {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("satellite {sat} cannot be propagated"),
                };
                orbitmesh_core::errln!(
                    "warning: {why}; it is left out (no links, not a relay) at every step it cannot be propagated"
                );
            }
        }
    }
}

/// Most worker threads `simulate` starts: each holds routing scratch space,
/// and a typo such as `--threads 100000` must be an error, not 100,000
/// threads.
pub const MAX_THREADS: usize = 1024;

/// Computes every step of `window` (in parallel, `threads` workers, 0 = all
/// cores) and calls `consume` with each step in time order. `progress` is
/// called after each chunk with (steps done, total). Returns the satellites
/// that were left out of steps (warned about once each).
pub fn simulate(
    net: &Network,
    window: Window,
    threads: usize,
    mut consume: impl FnMut(&StepResult) -> Result<(), Error>,
    mut progress: impl FnMut(usize, usize),
) -> Result<LeftOut, Error> {
    if threads > MAX_THREADS {
        return Err(Error::Scenario(format!(
            "{threads} worker threads: at most {MAX_THREADS} (0 = one per core)"
        )));
    }
    let times = window.times();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Scenario(format!("cannot start worker threads: {e}")))?;
    let workers = pool.current_num_threads().max(1);
    let chunk = (workers * 8).max(8);
    let scratches: Vec<std::sync::Mutex<routing::Scratch>> =
        (0..workers).map(|_| Default::default()).collect();
    let mut results: Vec<StepResult> = Vec::new();
    let mut done = 0;
    let mut left_out = LeftOut::default();
    let mut dynamic = DynamicSteps::default();
    for ts in times.chunks(chunk) {
        // Reuse the result buffers of the previous chunk.
        results.resize_with(ts.len(), StepResult::default);
        pool.install(|| dynamic.choose(net, ts, window.step_ns));
        pool.install(|| {
            results
                .par_iter_mut()
                .zip(ts.par_iter())
                .enumerate()
                .try_for_each(|(k, (out, &t))| {
                    // One scratch per worker thread, reused for every step it
                    // computes (uncontended lock: only that thread uses it).
                    let i = rayon::current_thread_index().unwrap_or(0) % scratches.len();
                    let mut scratch = scratches[i].lock().unwrap_or_else(|e| e.into_inner());
                    let (pos, links) = dynamic.step(k);
                    routing::compute_step_with(net, t, pos, links, &mut scratch, out)
                })
        })?;
        for r in &results {
            left_out.record(net, r);
            consume(r)?;
        }
        done += ts.len();
        progress(done, times.len());
    }
    Ok(left_out)
}

/// A satellite's position at a step, `None` when it is left out.
type Positions = Option<coords::Vec3>;

/// The ISLs chosen step by step by the nearest-in-range rule for one chunk
/// of steps: positions computed in parallel, then the links in time order
/// (each step's choice depends on the previous step's links).
#[derive(Debug, Default)]
struct DynamicSteps {
    on: bool,
    state: nearest::NearestState,
    pos: Vec<Vec<Positions>>,
    links: Vec<Vec<(u32, u32)>>,
}

impl DynamicSteps {
    /// Chooses the links of the steps `ts` (nothing without a dynamic rule);
    /// before the first, replays the steps since the scenario's start.
    fn choose(&mut self, net: &Network, ts: &[i64], step_ns: i64) {
        let Some(rule) = &net.isls.dynamic else {
            return;
        };
        let failed = |a, b| net.is_failed(a, b);
        let min_los = net.isls.min_los_altitude_m;
        if !self.on {
            let (mut pos, mut links) = (Vec::new(), Vec::new());
            let first = ts.first().copied().unwrap_or(rule.history_from_ns);
            let mut t = rule.history_from_ns;
            while t < first {
                net.propagator.positions_or_left_out(t, &mut pos);
                self.state.step(rule, min_los, &pos, failed, &mut links);
                t += step_ns;
            }
        }
        self.on = true;
        self.pos.resize_with(ts.len(), Vec::new);
        self.links.resize_with(ts.len(), Vec::new);
        self.pos
            .par_iter_mut()
            .zip(ts.par_iter())
            .for_each(|(p, &t)| net.propagator.positions_or_left_out(t, p));
        for (p, l) in self.pos.iter().zip(self.links.iter_mut()) {
            self.state.step(rule, min_los, p, failed, l);
        }
    }

    /// Positions and dynamic links of step `k` of the chunk.
    fn step(&self, k: usize) -> (Option<&[Positions]>, &[(u32, u32)]) {
        if self.on {
            (Some(&self.pos[k]), &self.links[k])
        } else {
            (None, &[])
        }
    }
}
