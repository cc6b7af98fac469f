//! Laser-terminal ISLs: each satellite links to up to N of its nearest
//! satellites within a maximum range, with link-stability hysteresis.
//!
//! The alternative to +Grid ([`super::links`], [`super::infer`]) for sets
//! that do not form a regular grid (real TLE sets with raising, decaying and
//! spare satellites, several shells) and for links between shells. Lasers
//! point at whatever satellites are near and in view, not at a grid slot
//! (Handley, "Delay is Not an Option: Low Latency Routing in Space",
//! HotNets 2018, argues for links to nearby satellites beyond the grid's
//! four); this rule is the simplest such scheduler, made deterministic and
//! stable:
//!
//! 1. Candidates: for every satellite, its `terminals + 2` nearest satellites
//!    within `max_range_m` whose line of sight clears the minimum altitude
//!    (ties broken by id). Found with a k-d tree of the step's positions
//!    (built in O(N log N), each query O(log N + k) in practice), not all
//!    N^2 pairs. A uniform grid of range-wide cells was tried first: with a
//!    5,000 km range the 27 cells around a satellite hold a third of the
//!    constellation, and Starlink took minutes for 2,000 steps.
//! 2. Hysteresis: every link up at the previous step that is still in range,
//!    clear of the atmosphere and not failed is a candidate too, with its
//!    length counted `(1 - hysteresis)` times shorter.
//! 3. Greedy matching: candidates in order of (weighted length, lower id,
//!    higher id); a link is made when both ends still have a free terminal.
//!
//! So a link, once up, stays up while it is within range and no candidate
//! shorter by more than the hysteresis margin claims one of its terminals;
//! with `hysteresis = 0` the links are recomputed from scratch every step and
//! two neighbours at nearly equal distance make a link flap at every step.
//! The scenario's first step starts with no links (a cold start); a later
//! window replays the choices from the scenario's start
//! ([`DynamicIsls::history_from_ns`]), so a step's links do not depend on
//! the window it is computed in.
//!
//! Greedy matching is not a maximum matching: a satellite whose nearest
//! neighbours are all taken may keep a terminal free. It matches how
//! terminals are paired in practice (shortest first, no global re-plan),
//! and it is deterministic.
//!
//! Pairing: any two satellites ([`DynamicIsls::shell_of`] empty), or only
//! satellites of different shells (+Grid inside shells, this rule between
//! them, with its own terminals).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coords::{segment_min_radius, Vec3, WGS72_A_M};
use super::{Error, NONE};

/// The nearest-in-range rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NearestRule {
    /// Laser terminals per satellite (links at most).
    pub terminals: usize,
    /// Longest link, metres.
    pub max_range_m: f64,
    /// Fraction by which a link that is up counts as shorter than it is
    /// (0 = no hysteresis).
    pub hysteresis: f64,
}

/// Most terminals one satellite may have under this rule.
pub const MAX_TERMINALS: usize = 16;

impl NearestRule {
    /// Checks the parameters: 1..=16 terminals, a positive finite range
    /// up to 100,000 km, hysteresis in [0, 1).
    pub fn new(terminals: usize, max_range_m: f64, hysteresis: f64) -> Result<Self, Error> {
        if !(1..=MAX_TERMINALS).contains(&terminals) {
            return Err(Error::Scenario(format!(
                "ISL terminals per satellite must be in 1..={MAX_TERMINALS}, got {terminals}"
            )));
        }
        if !(max_range_m > 0.0 && max_range_m <= 1e8) {
            return Err(Error::Scenario(format!(
                "--isl-range-km must be in (0, 100000], got {}",
                max_range_m / 1e3
            )));
        }
        if !(0.0..1.0).contains(&hysteresis) {
            return Err(Error::Scenario(format!(
                "--isl-hysteresis must be in [0, 1), got {hysteresis}"
            )));
        }
        Ok(Self {
            terminals,
            max_range_m,
            hysteresis,
        })
    }
}

/// ISLs chosen at every step by the nearest-in-range rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicIsls {
    /// The rule.
    pub rule: NearestRule,
    /// Shell of each satellite: when not empty, only satellites of different
    /// shells are linked (inter-shell links beside a +Grid per shell).
    pub shell_of: Vec<u32>,
    /// The scenario's first instant, ns: a run over a later window (the
    /// control process recomputing routes from time t) first replays the
    /// choices from here at the window's step, so its links carry the same
    /// history as the prediction's (with the run's failed links left out).
    pub history_from_ns: i64,
}

impl DynamicIsls {
    fn allowed(&self, a: u32, b: u32) -> bool {
        self.shell_of.is_empty() || self.shell_of[a as usize] != self.shell_of[b as usize]
    }
}

/// The links of the previous step and buffers reused across steps.
#[derive(Debug, Default)]
pub struct NearestState {
    current: Vec<(u32, u32)>,
    /// The step's k-d tree: (position, satellite), median-split by axis.
    tree: Vec<(Vec3, u32)>,
    /// (weighted length, a, b) with a < b.
    cand: Vec<(f64, u32, u32)>,
    /// `terminals + 2` nearest (length, satellite) per satellite.
    found: Vec<(f64, u32)>,
    deg: Vec<u32>,
}

/// Coordinate `axis` (0 x, 1 y, 2 z) of a position.
fn coord(p: Vec3, axis: usize) -> f64 {
    match axis {
        0 => p.x,
        1 => p.y,
        _ => p.z,
    }
}

/// Arranges `pts` as an implicit k-d tree: the median (by the axis of the
/// depth) at the middle, the smaller half before it, the larger after.
fn build(pts: &mut [(Vec3, u32)], depth: usize) {
    if pts.len() <= 1 {
        return;
    }
    let axis = depth % 3;
    let mid = pts.len() / 2;
    pts.select_nth_unstable_by(mid, |a, b| {
        coord(a.0, axis)
            .total_cmp(&coord(b.0, axis))
            .then(a.1.cmp(&b.1))
    });
    let (lo, hi) = pts.split_at_mut(mid);
    build(lo, depth + 1);
    build(&mut hi[1..], depth + 1);
}

/// One nearest-neighbour query: the point, the bound and the best so far
/// (`best[..len]`, ascending; `best.len()` is how many to keep).
struct Query<'a, F: Fn(u32, Vec3) -> Option<f64>> {
    at: Vec3,
    range: f64,
    usable: F,
    best: &'a mut [(f64, u32)],
    len: usize,
}

impl<F: Fn(u32, Vec3) -> Option<f64>> Query<'_, F> {
    /// Current search radius: the range, or the worst kept candidate.
    fn bound(&self) -> f64 {
        if self.len == self.best.len() {
            self.best[self.len - 1].0
        } else {
            self.range
        }
    }

    /// Keeps `(d, b)` if it is among the best so far.
    fn offer(&mut self, d: f64, b: u32) {
        let keep = self.best.len();
        let at = self.best[..self.len].partition_point(|w| *w < (d, b));
        if at == keep {
            return;
        }
        let last = self.len.min(keep - 1);
        self.best.copy_within(at..last, at + 1);
        self.best[at] = (d, b);
        self.len = (self.len + 1).min(keep);
    }

    fn visit(&mut self, pts: &[(Vec3, u32)], depth: usize) {
        if pts.is_empty() {
            return;
        }
        let mid = pts.len() / 2;
        let (p, b) = pts[mid];
        let d = self.at.dist(p);
        let full = self.len == self.best.len();
        if d <= self.range && !(full && (d, b) >= self.best[self.len - 1]) {
            if let Some(d) = (self.usable)(b, p) {
                self.offer(d, b);
            }
        }
        let diff = coord(self.at, depth % 3) - coord(p, depth % 3);
        let (near, far) = if diff < 0.0 {
            (&pts[..mid], &pts[mid + 1..])
        } else {
            (&pts[mid + 1..], &pts[..mid])
        };
        self.visit(near, depth + 1);
        if diff.abs() <= self.bound() {
            self.visit(far, depth + 1);
        }
    }
}

impl NearestState {
    /// The step's k-d tree over every satellite that has a position. (One
    /// tree per shell for links between shells was tried: no faster on
    /// Starlink's 15 inferred shells, 1.33-1.44 s against 1.35-1.37 s of
    /// CPU for 100 steps, so the simpler single tree stays.)
    fn build_tree(&mut self, pos: &[Option<Vec3>]) {
        self.tree.clear();
        self.tree.extend(
            pos.iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|p| (p, i as u32))),
        );
        build(&mut self.tree, 0);
    }

    /// The links of the previous step (a < b, ascending).
    pub fn current(&self) -> &[(u32, u32)] {
        &self.current
    }

    /// Chooses this step's links from the positions (`None`: satellite left
    /// out) and the previous step's links; `failed(a, b)` links are never
    /// made. Writes them to `out` (a < b, ascending) and remembers them.
    pub fn step(
        &mut self,
        cfg: &DynamicIsls,
        min_los_altitude_m: f64,
        pos: &[Option<Vec3>],
        failed: impl Fn(u32, u32) -> bool + Sync,
        out: &mut Vec<(u32, u32)>,
    ) {
        let rule = cfg.rule;
        let range = rule.max_range_m;
        let min_radius = WGS72_A_M + min_los_altitude_m;
        let usable = |a: u32, b: u32, pa: Vec3, pb: Vec3| -> Option<f64> {
            let d = pa.dist(pb);
            (d <= range && !failed(a, b) && segment_min_radius(pa, pb) >= min_radius).then_some(d)
        };
        self.cand.clear();
        // Links up at the previous step, weighted shorter.
        for &(a, b) in &self.current {
            if let (Some(pa), Some(pb)) = (pos[a as usize], pos[b as usize]) {
                if let Some(d) = usable(a, b, pa, pb) {
                    self.cand.push((d * (1.0 - rule.hysteresis), a, b));
                }
            }
        }
        self.build_tree(pos);
        // Each satellite's nearest, in parallel (rayon; `found` holds `keep`
        // slots per satellite, unused ones NONE).
        let keep = rule.terminals + 2;
        self.found.clear();
        self.found.resize(pos.len() * keep, (f64::INFINITY, NONE));
        let tree = &self.tree;
        self.found
            .par_chunks_mut(keep)
            .zip(pos.par_iter())
            .enumerate()
            .for_each(|(a, (slot, pa))| {
                let Some(pa) = *pa else { return };
                let a = a as u32;
                let mut q = Query {
                    at: pa,
                    range,
                    usable: |b: u32, pb: Vec3| {
                        (b != a && cfg.allowed(a, b))
                            .then(|| usable(a, b, pa, pb))
                            .flatten()
                    },
                    best: slot,
                    len: 0,
                };
                q.visit(tree, 0);
            });
        for (a, slot) in self.found.chunks(keep).enumerate() {
            let a = a as u32;
            for &(d, b) in slot.iter().take_while(|f| f.1 != NONE) {
                self.cand.push((d, a.min(b), a.max(b)));
            }
        }
        // One candidate per pair, the lowest weight; then greedy by weight.
        self.cand
            .sort_unstable_by(|x, y| (x.1, x.2).cmp(&(y.1, y.2)).then(x.0.total_cmp(&y.0)));
        self.cand.dedup_by_key(|c| (c.1, c.2));
        self.cand
            .sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
        self.deg.clear();
        self.deg.resize(pos.len(), 0);
        out.clear();
        let t = rule.terminals as u32;
        for &(_, a, b) in &self.cand {
            if self.deg[a as usize] < t && self.deg[b as usize] < t {
                self.deg[a as usize] += 1;
                self.deg[b as usize] += 1;
                out.push((a, b));
            }
        }
        out.sort_unstable();
        self.current.clear();
        self.current.extend_from_slice(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::coords::geodetic_to_ecef;

    fn cfg(terminals: usize, range_km: f64, h: f64) -> DynamicIsls {
        DynamicIsls {
            rule: NearestRule::new(terminals, range_km * 1e3, h).unwrap(),
            shell_of: Vec::new(),
            history_from_ns: 0,
        }
    }

    fn at(lat: f64, lon: f64) -> Option<Vec3> {
        Some(geodetic_to_ecef(lat, lon, 550_000.0))
    }

    #[test]
    fn rule_parameters_are_checked() {
        assert!(NearestRule::new(0, 1e6, 0.1).is_err());
        assert!(NearestRule::new(17, 1e6, 0.1).is_err());
        assert!(NearestRule::new(4, 0.0, 0.1).is_err());
        assert!(NearestRule::new(4, f64::NAN, 0.1).is_err());
        assert!(NearestRule::new(4, 1e6, 1.0).is_err());
        assert!(NearestRule::new(4, 1e6, -0.1).is_err());
        assert!(NearestRule::new(4, 1e6, 0.0).is_ok());
    }

    /// One terminal each; 1 and 2 sit on either side of 0 at distances that
    /// swap by 0.04% every step. Without hysteresis the link flips every
    /// step; with 5% it stays with the first choice.
    #[test]
    fn hysteresis_keeps_a_link_when_the_nearest_changes_marginally() {
        let run = |h: f64| {
            let c = cfg(1, 2000.0, h);
            let mut st = NearestState::default();
            let mut out = Vec::new();
            let mut seen = Vec::new();
            for k in 0..10 {
                let wobble = if k % 2 == 0 { 0.001 } else { -0.001 };
                let pos = [at(0.0, 0.0), at(0.0, 5.0 + wobble), at(0.0, -5.0 + wobble)];
                st.step(&c, 80_000.0, &pos, |_, _| false, &mut out);
                assert_eq!(out.len(), 1, "one terminal on satellite 0: {out:?}");
                seen.push(out[0]);
            }
            seen
        };
        let flapping = run(0.0);
        let changes = flapping.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes, 9, "{flapping:?}");
        let stable = run(0.05);
        assert!(stable.iter().all(|&l| l == (0, 2)), "{stable:?}");
    }

    /// A link that is up is displaced by a candidate shorter by more than the
    /// margin, and dropped once out of range.
    #[test]
    fn clearly_better_candidate_or_range_ends_a_link() {
        let c = cfg(1, 1000.0, 0.1);
        let mut st = NearestState::default();
        let mut out = Vec::new();
        st.step(
            &c,
            80_000.0,
            &[at(0.0, 0.0), at(0.0, 5.0), at(0.0, -6.0)],
            |_, _| false,
            &mut out,
        );
        assert_eq!(out, [(0, 1)]);
        // Satellite 2 comes to half the distance: clearly better.
        st.step(
            &c,
            80_000.0,
            &[at(0.0, 0.0), at(0.0, 5.0), at(0.0, -2.5)],
            |_, _| false,
            &mut out,
        );
        assert_eq!(out, [(0, 2)]);
        // Out of range (1,000 km is about 8 degrees at 550 km).
        st.step(
            &c,
            80_000.0,
            &[at(0.0, 0.0), at(0.0, 20.0), at(0.0, -20.0)],
            |_, _| false,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    /// A random-ish cloud: no satellite exceeds its terminals, no link is
    /// longer than the range or crosses the atmosphere, failed links are
    /// not made, and the result is the same whatever the run.
    #[test]
    fn terminals_range_and_failures_are_respected() {
        let mut pos = Vec::new();
        for i in 0..300u32 {
            let lat = f64::from((i * 37) % 160) - 80.0;
            let lon = f64::from((i * 91) % 360) - 180.0;
            pos.push(at(lat, lon));
        }
        pos[7] = None;
        let c = cfg(3, 3000.0, 0.1);
        let failed = |a: u32, b: u32| a == 0 || b == 0;
        let mut st = NearestState::default();
        let mut out = Vec::new();
        let mut first = None;
        for _ in 0..3 {
            st.step(&c, 80_000.0, &pos, failed, &mut out);
            first.get_or_insert_with(|| out.clone());
            let mut deg = vec![0; pos.len()];
            for &(a, b) in &out {
                assert!(a < b);
                deg[a as usize] += 1;
                deg[b as usize] += 1;
                let (pa, pb) = (pos[a as usize].unwrap(), pos[b as usize].unwrap());
                assert!(pa.dist(pb) <= 3_000_000.0);
                assert!(segment_min_radius(pa, pb) >= WGS72_A_M + 80_000.0);
            }
            assert!(deg.iter().all(|&d| d <= 3));
            assert_eq!(deg[0], 0);
            assert_eq!(deg[7], 0);
            assert!(out.len() > 200, "{} links", out.len());
        }
        assert_eq!(first.as_ref(), Some(&out));
    }

    /// The k-d tree finds exactly the nearest within range, ties by id.
    #[test]
    fn kd_tree_query_equals_brute_force() {
        let mut pts = Vec::new();
        for i in 0..500u32 {
            let lat = f64::from((i * 53) % 170) - 85.0;
            let lon = f64::from((i * 97) % 360) - 180.0 + f64::from(i % 7) * 0.1;
            pts.push((at(lat, lon).unwrap(), i));
        }
        // Two points at the same place: ties broken by id.
        pts.push((pts[10].0, 500));
        let mut tree = pts.clone();
        build(&mut tree, 0);
        let range = 2_000_000.0;
        for &(pa, a) in &pts {
            let mut want: Vec<(f64, u32)> = pts
                .iter()
                .filter(|&&(pb, b)| b != a && pa.dist(pb) <= range)
                .map(|&(pb, b)| (pa.dist(pb), b))
                .collect();
            want.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            want.truncate(5);
            let mut best = [(0.0, 0); 5];
            let mut q = Query {
                at: pa,
                range,
                usable: |b: u32, pb: Vec3| (b != a).then(|| pa.dist(pb)),
                best: &mut best,
                len: 0,
            };
            q.visit(&tree, 0);
            let len = q.len;
            assert_eq!(best[..len], want[..], "satellite {a}");
        }
    }

    /// Links between shells equal a brute-force run of the same rule
    /// (candidates, dedup, greedy) on 300 points in 3 shells.
    #[test]
    fn inter_shell_links_equal_brute_force() {
        let pos: Vec<Option<Vec3>> = (0..300u32)
            .map(|i| {
                at(
                    f64::from((i * 37) % 160) - 80.0,
                    f64::from((i * 91) % 360) - 180.0,
                )
            })
            .collect();
        let mut c = cfg(2, 3000.0, 0.0);
        c.shell_of = (0..300).map(|i| i % 3).collect();
        let (mut st, mut out) = (NearestState::default(), Vec::new());
        st.step(&c, 80_000.0, &pos, |_, _| false, &mut out);
        let min_r = WGS72_A_M + 80_000.0;
        let mut cand = Vec::new();
        for a in 0..300u32 {
            let pa = pos[a as usize].unwrap();
            let mut near: Vec<(f64, u32)> = (0..300u32)
                .filter(|&b| b != a && c.shell_of[a as usize] != c.shell_of[b as usize])
                .map(|b| (pa.dist(pos[b as usize].unwrap()), b))
                .filter(|&(d, b)| {
                    d <= 3_000_000.0 && segment_min_radius(pa, pos[b as usize].unwrap()) >= min_r
                })
                .collect();
            near.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            cand.extend(near.iter().take(4).map(|&(d, b)| (d, a.min(b), a.max(b))));
        }
        cand.sort_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
        cand.dedup_by_key(|x| (x.1, x.2));
        let mut deg = [0; 300];
        let mut want = Vec::new();
        for (_, a, b) in cand {
            if deg[a as usize] < 2 && deg[b as usize] < 2 {
                deg[a as usize] += 1;
                deg[b as usize] += 1;
                want.push((a, b));
            }
        }
        want.sort_unstable();
        assert!(want.len() > 100, "{}", want.len());
        assert_eq!(out, want);
    }

    #[test]
    fn across_shells_only_links_different_shells() {
        let mut c = cfg(2, 3000.0, 0.0);
        c.shell_of = vec![0, 0, 1, 1];
        let pos = [at(0.0, 0.0), at(0.0, 1.0), at(0.0, 3.0), at(0.0, 4.0)];
        let mut st = NearestState::default();
        let mut out = Vec::new();
        st.step(&c, 80_000.0, &pos, |_, _| false, &mut out);
        assert!(!out.is_empty());
        assert!(out
            .iter()
            .all(|&(a, b)| c.shell_of[a as usize] != c.shell_of[b as usize]));
    }
}
