//! Per-time-step routing: latency-weighted shortest paths where traffic between
//! ground stations transits satellites only, with a loop-free alternate per entry.
//!
//! This is Hypatia's `algorithm_free_one_only_over_isls` (Kassing et al., IMC
//! 2020, section 3.2; satgenpy `calculate_fstate_shortest_path_without_gs_relaying`):
//! - edge weight = straight-line length (propagation delay = length / c, so
//!   minimising length minimises latency);
//! - a satellite's next hop towards ground station D is on the shortest path
//!   `sat -> ... -> sat' -> D` over ISLs, ending with one GSL of D;
//! - a ground station S picks the in-range satellite `a` minimising
//!   `GSL(S, a) + dist(a, D)`; ground stations never relay.
//!
//! satgenpy runs Floyd-Warshall over all satellites; here one multi-source
//! Dijkstra per destination station (sources: the satellites in range of D,
//! seeded with their GSL length) over the ISL graph gives the same distances and
//! next hops in O(E log V), with a binary heap and buffers reused across steps.
//! A ground station's first satellite is chosen as satgenpy chooses it, by
//! `(distance, satellite id)`, so exact ties go to the lower id (they occur
//! with `--geometry hypatia`'s float32 ranges; see `best_two`). Other exact
//! float ties between equal-length paths may be broken differently from
//! satgenpy; none was seen in the comparisons (bench/results/predictor.md).
//! Near-ties (two +Grid paths within metres, common in symmetric Walker
//! shells) follow the computed positions, which with the default geometry
//! differ from satgenpy's pyephem ones by metres, so a few such decisions
//! differ (see bench/results/predictor.md);
//! with `--geometry hypatia` the link lengths are satgenpy's own
//! ([`super::hypatia`]) and the decisions match.
//!
//! Fast reroute (RFC 5286, loop-free alternates): for node S with primary next
//! hop P towards D, a neighbour N != P is a loop-free alternate when
//! `dist(N, D) < dist(N, S) + dist(S, D)` (inequality 1). Link weights here are
//! Euclidean distances between points, so the shortest path between neighbours
//! is their direct link (triangle inequality) and `dist(N, S)` = the link length.
//! Among the loop-free neighbours the one with the least `link + dist(N, D)` is
//! chosen. A satellite in range of D has D itself as a candidate; a ground
//! station's alternate is its second-best satellite (ground stations never
//! relay, so that is always loop-free).
//!
//! A satellite that cannot be propagated at a step (see [`super::propagate`])
//! is left out of that step: no ISL and no GSL touches it, so it relays
//! nothing, nothing routes through it, and its own entries are [`NONE`].
//! [`StepResult::left_out`] lists it.
//!
//! Destinations are the ground stations (the node SIDs that carry user traffic);
//! with `sat_destinations` also every satellite (plain single-source Dijkstra over
//! the ISLs; stations reach it through their best first satellite). That costs one
//! more Dijkstra per satellite per step, so it is off by default.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use super::coords::Vec3;
use super::ground::{GroundStation, GslPolicy};
use super::hypatia::HypatiaStep;
use super::links::IslPlan;
use super::propagate::Propagator;
use super::Error;

/// "No node": unreachable destination or no alternate.
pub const NONE: u32 = u32::MAX;

/// The static description of the network that every step is computed from.
#[derive(Debug)]
pub struct Network {
    /// Satellite propagation.
    pub propagator: Propagator,
    /// Ground stations (node N + i).
    pub stations: Vec<GroundStation>,
    /// Planned ISLs.
    pub isls: IslPlan,
    /// GSL visibility.
    pub gsl: GslPolicy,
    /// Per-satellite maximum GSL length (multi-shell scenarios); empty = use
    /// `gsl.max_length_m` for every satellite.
    pub gsl_max_per_sat: Vec<f64>,
    /// Also route towards every satellite's node SID (one more Dijkstra per
    /// satellite per step: about N/G times the work of the station destinations).
    pub sat_destinations: bool,
    /// Links out of service (node pairs, smaller id first): ISLs and GSLs
    /// left out of every step, e.g. a link a dataplane reported down.
    pub failed: BTreeSet<(u32, u32)>,
}

impl Network {
    /// One Walker shell with its +Grid (4 terminals, line of sight clear
    /// of the atmosphere up to 80 km), GSLs up to the shell's maximum
    /// length, `stations` as given, no failed link: the network of
    /// satgenpy's examples, which tests and comparisons start from.
    pub fn walker(
        shell: &super::walker::WalkerShell,
        stations: Vec<GroundStation>,
        geometry: super::geometry::Geometry,
    ) -> Result<Network, Error> {
        Ok(Network {
            propagator: Propagator::with_geometry(&shell.to_tle_set()?, geometry)?,
            stations,
            isls: IslPlan::plus_grid(shell.planes, shell.sats_per_plane, 4, 80_000.0)?,
            gsl: GslPolicy {
                max_length_m: shell.max_gsl_length_m,
                min_elevation_deg: None,
            },
            gsl_max_per_sat: Vec::new(),
            sat_destinations: false,
            failed: Default::default(),
        })
    }

    /// Number of satellites N.
    pub fn n_sats(&self) -> usize {
        self.propagator.len()
    }
    /// Total nodes: satellites, then ground stations.
    pub fn n_nodes(&self) -> usize {
        self.n_sats() + self.stations.len()
    }
    /// Number of destinations: the ground stations, then (with
    /// `sat_destinations`) the satellites.
    pub fn n_dests(&self) -> usize {
        self.stations.len()
            + if self.sat_destinations {
                self.n_sats()
            } else {
                0
            }
    }
    /// Whether the link between nodes `a` and `b` is out of service.
    pub fn is_failed(&self, a: u32, b: u32) -> bool {
        !self.failed.is_empty() && self.failed.contains(&(a.min(b), a.max(b)))
    }
    /// Node id of destination index `d`.
    pub fn dest_node(&self, d: usize) -> usize {
        dest_node(self.n_sats(), self.stations.len(), d)
    }
}

/// Node id of destination index `d`: stations `0..G` are nodes `N..N+G`, then
/// satellites `G..G+N` are nodes `0..N`.
pub fn dest_node(n_sats: usize, n_gs: usize, d: usize) -> usize {
    if d < n_gs {
        n_sats + d
    } else {
        d - n_gs
    }
}

/// Routing state of one time step.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    /// Nanoseconds since the scenario epoch.
    pub t_ns: i64,
    /// `next_hop[d * n_nodes + node]`: next hop of `node` towards destination
    /// `d` (see [`dest_node`]: ground station d is node N + d), or [`NONE`]
    /// (also for the destination itself).
    pub next_hop: Vec<u32>,
    /// Loop-free alternate, same layout, or [`NONE`].
    pub backup: Vec<u32>,
    /// `gs_dist[d * G + s]`: path length in metres from station s to station d
    /// (infinite when unreachable).
    pub gs_dist: Vec<f64>,
    /// ISLs up at this step.
    pub isls_up: u32,
    /// GSLs (station, satellite in range) at this step.
    pub gsls_up: u32,
    /// Satellites left out of this step because they cannot be propagated
    /// (ascending; usually empty).
    pub left_out: Vec<u32>,
}

impl StepResult {
    /// Follows next hops from node `src` to ground station `dst_gs`; `None` when
    /// unreachable (or, defensively, on a forwarding loop).
    pub fn path(
        &self,
        n_nodes: usize,
        n_sats: usize,
        src: usize,
        dst_gs: usize,
    ) -> Option<Vec<u32>> {
        let dst = (n_sats + dst_gs) as u32;
        let base = dst_gs * n_nodes;
        let mut path = vec![src as u32];
        let mut cur = src as u32;
        while cur != dst {
            let nh = self.next_hop[base + cur as usize];
            if nh == NONE || path.len() > n_nodes {
                return None;
            }
            path.push(nh);
            cur = nh;
        }
        Some(path)
    }
}

/// Per-thread buffers, reused across steps so a step allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Satellite positions; `None`: left out of the step.
    pos: Vec<Option<Vec3>>,
    deg: Vec<u32>,
    adj_start: Vec<u32>,
    adj: Vec<(u32, f64)>,
    up: Vec<(u32, u32, f64)>,
    gsl: Vec<Vec<(f64, u32)>>,
    dist: Vec<f64>,
    next: Vec<u32>,
    direct: Vec<f64>,
    /// Min-heap on (distance bits, node): non-negative f64s order like their bits.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// With `--geometry hypatia`: the step's libastro geometry.
    hyp: HypatiaStep,
}

/// Computes the routing state at `t_ns` into `out` (buffers reused): the
/// positions, the ISL graph, the GSL candidates, then one shortest-path tree
/// per destination with its alternates.
pub fn compute_step(
    net: &Network,
    t_ns: i64,
    s: &mut Scratch,
    out: &mut StepResult,
) -> Result<(), Error> {
    compute_step_with(net, t_ns, None, &[], s, out)
}

/// As [`compute_step`], with the satellites' positions already computed
/// (`None`: propagate them here) and `dynamic` ISLs (chosen for this step by
/// the nearest-in-range rule, see [`super::nearest`]) beside the planned ones.
pub fn compute_step_with(
    net: &Network,
    t_ns: i64,
    pos: Option<&[Option<Vec3>]>,
    dynamic: &[(u32, u32)],
    s: &mut Scratch,
    out: &mut StepResult,
) -> Result<(), Error> {
    out.t_ns = t_ns;
    if let Some(h) = net.propagator.hypatia() {
        // Link lengths from satgenpy's geometry; `pos` holds libastro's
        // inertial positions (for the line-of-sight check and left-out
        // satellites). Positions a caller computed (the nearest rule's pass)
        // are the accurate model's, so this step propagates its own.
        h.step(t_ns, &net.stations, &mut s.hyp);
        s.pos.clear();
        s.pos.extend(
            s.hyp
                .sat_m
                .iter()
                .map(|p| p.map(|[x, y, z]| Vec3::new(x, y, z))),
        );
    } else if let Some(p) = pos {
        s.pos.clear();
        s.pos.extend_from_slice(p);
    } else {
        net.propagator.positions_or_left_out(t_ns, &mut s.pos);
    }
    out.left_out.clear();
    out.left_out.extend(
        s.pos
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .map(|(sat, _)| sat as u32),
    );
    out.isls_up = build_isl_graph(net, dynamic, s);
    out.gsls_up = build_gsl_candidates(net, s);
    reset_outputs(net, s, out);
    for d in 0..net.n_dests() {
        shortest_paths_to(net, s, d);
        let base = d * net.n_nodes();
        out.next_hop[base..base + net.n_sats()].copy_from_slice(&s.next);
        satellite_alternates(net, s, d, out);
        station_hops(net, s, d, out);
        if d < net.stations.len() {
            for &(_, sat) in &s.gsl[d] {
                s.direct[sat as usize] = f64::INFINITY;
            }
        }
    }
    Ok(())
}

/// The ISL graph of the step as CSR (`adj_start`, `adj`), neighbours in plan
/// order (satgenpy's insertion order); returns the number of ISLs up.
fn build_isl_graph(net: &Network, dynamic: &[(u32, u32)], s: &mut Scratch) -> u32 {
    let n_sats = net.n_sats();
    s.deg.clear();
    s.deg.resize(n_sats + 1, 0);
    let mut isls_up = 0u32;
    s.adj.clear();
    // First pass: which links are up, with their lengths.
    let mut up = std::mem::take(&mut s.up);
    up.clear();
    for &(a, b) in net.isls.pairs.iter().chain(dynamic) {
        if net.is_failed(a, b) {
            continue;
        }
        let (Some(pa), Some(pb)) = (s.pos[a as usize], s.pos[b as usize]) else {
            continue;
        };
        let hyp = net.propagator.hypatia().is_some();
        if let Some(w) = net.isls.link(pa, pb) {
            let w = if hyp {
                s.hyp.isl_m(a as usize, b as usize)
            } else {
                w
            };
            s.deg[a as usize] += 1;
            s.deg[b as usize] += 1;
            up.push((a, b, w));
            isls_up += 1;
        }
    }
    s.adj_start.clear();
    s.adj_start.resize(n_sats + 1, 0);
    for i in 0..n_sats {
        s.adj_start[i + 1] = s.adj_start[i] + s.deg[i];
    }
    s.adj.clear();
    s.adj.resize(s.adj_start[n_sats] as usize, (NONE, 0.0));
    // Reuse `deg` as fill cursors.
    for i in 0..n_sats {
        s.deg[i] = s.adj_start[i];
    }
    for &(a, b, w) in &up {
        s.adj[s.deg[a as usize] as usize] = (b, w);
        s.deg[a as usize] += 1;
        s.adj[s.deg[b as usize] as usize] = (a, w);
        s.deg[b as usize] += 1;
    }
    s.up = up;
    isls_up
}

/// The satellites in range of each station (`gsl`), sorted like satgenpy's
/// candidate tuples (distance, sat); returns the number of GSLs up.
fn build_gsl_candidates(net: &Network, s: &mut Scratch) -> u32 {
    let n_sats = net.n_sats();
    s.gsl.resize_with(net.stations.len(), Vec::new);
    let mut gsls_up = 0u32;
    for (g, gs) in net.stations.iter().enumerate() {
        let list = &mut s.gsl[g];
        list.clear();
        if net.propagator.hypatia().is_some() {
            // satgenpy: in range when the f32 range is <= the maximum.
            for (sat, p) in s.pos.iter().enumerate() {
                let max = net
                    .gsl_max_per_sat
                    .get(sat)
                    .copied()
                    .unwrap_or(net.gsl.max_length_m);
                if p.is_none() || net.is_failed(sat as u32, (n_sats + g) as u32) {
                    continue;
                }
                let d = s.hyp.gsl_m(g, sat);
                if d <= max {
                    list.push((d, sat as u32));
                }
            }
        } else if net.gsl_max_per_sat.is_empty() {
            for (sat, &p) in s.pos.iter().enumerate() {
                let Some(p) = p else { continue };
                if net.is_failed(sat as u32, (n_sats + g) as u32) {
                    continue;
                }
                if let Some(d) = net.gsl.link(gs, p) {
                    list.push((d, sat as u32));
                }
            }
        } else {
            for (sat, (&p, &max)) in s.pos.iter().zip(&net.gsl_max_per_sat).enumerate() {
                let Some(p) = p else { continue };
                if net.is_failed(sat as u32, (n_sats + g) as u32) {
                    continue;
                }
                if let Some(d) = net.gsl.link_within(gs, p, max) {
                    list.push((d, sat as u32));
                }
            }
        }
        list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        gsls_up += list.len() as u32;
    }
    gsls_up
}

/// Sizes the step's tables and the per-destination buffers, all unreachable.
fn reset_outputs(net: &Network, s: &mut Scratch, out: &mut StepResult) {
    let (n_sats, n_gs, n_nodes) = (net.n_sats(), net.stations.len(), net.n_nodes());
    let n_dests = net.n_dests();
    out.next_hop.clear();
    out.next_hop.resize(n_dests * n_nodes, NONE);
    out.backup.clear();
    out.backup.resize(n_dests * n_nodes, NONE);
    out.gs_dist.clear();
    out.gs_dist.resize(n_gs * n_gs, f64::INFINITY);
    s.dist.resize(n_sats, f64::INFINITY);
    s.next.resize(n_sats, NONE);
    s.direct.clear();
    s.direct.resize(n_sats, f64::INFINITY);
}

/// Dijkstra over the ISL graph towards destination index `d`: fills `dist`,
/// `next` and (for a station) `direct`, the GSL length of each satellite in
/// range of it.
fn shortest_paths_to(net: &Network, s: &mut Scratch, d: usize) {
    let d_node = net.dest_node(d) as u32;
    s.dist.fill(f64::INFINITY);
    s.next.fill(NONE);
    s.heap.clear();
    if d < net.stations.len() {
        // A station: every satellite in range is a source, at its GSL length.
        for &(len, sat) in &s.gsl[d] {
            s.direct[sat as usize] = len;
            if len < s.dist[sat as usize] {
                s.dist[sat as usize] = len;
                s.next[sat as usize] = d_node;
                s.heap.push(Reverse((len.to_bits(), sat)));
            }
        }
    } else {
        // A satellite: the single source, at distance 0, no next hop.
        s.dist[d_node as usize] = 0.0;
        s.heap.push(Reverse((0f64.to_bits(), d_node)));
    }
    // Lazy deletion: a popped entry whose key is above the node's current
    // distance is stale. (Measured alternatives, Starlink S1 + 100 stations,
    // one thread: an indexed heap with decrease-key ~25% slower, its
    // comparisons go through `dist`; a radix heap on the f64 bits ~40% slower.)
    while let Some(Reverse((bits, u))) = s.heap.pop() {
        let du = f64::from_bits(bits);
        if du > s.dist[u as usize] {
            continue;
        }
        let (lo, hi) = (
            s.adj_start[u as usize] as usize,
            s.adj_start[u as usize + 1] as usize,
        );
        for &(v, w) in &s.adj[lo..hi] {
            let nd = du + w;
            if nd < s.dist[v as usize] {
                s.dist[v as usize] = nd;
                s.next[v as usize] = u;
                s.heap.push(Reverse((nd.to_bits(), v)));
            }
        }
    }
}

/// Loop-free alternates of the satellites towards destination index `d`
/// (RFC 5286 inequality 1, see the module note).
fn satellite_alternates(net: &Network, s: &Scratch, d: usize, out: &mut StepResult) {
    let d_node = net.dest_node(d) as u32;
    let base = d * net.n_nodes();
    for sat in 0..net.n_sats() {
        let primary = s.next[sat];
        if primary == NONE {
            continue;
        }
        let ds = s.dist[sat];
        let mut best = (f64::INFINITY, NONE);
        if primary != d_node && s.direct[sat].is_finite() {
            best = (s.direct[sat], d_node);
        }
        let (lo, hi) = (s.adj_start[sat] as usize, s.adj_start[sat + 1] as usize);
        for &(nb, w) in &s.adj[lo..hi] {
            if nb == primary {
                continue;
            }
            let dn = s.dist[nb as usize];
            if dn.is_finite() && dn < w + ds && w + dn < best.0 {
                best = (w + dn, nb);
            }
        }
        out.backup[base + sat] = best.1;
    }
}

/// The best and second-best finite `(distance, satellite)` candidates, in
/// satgenpy's order: sorted `(distance, satellite id)` tuples, so equal
/// distances go to the lower satellite id whatever order they come in.
/// Exact ties do happen with `--geometry hypatia`: ranges are float32, and a
/// satellite in range of both stations offers `GSL(S, a) + GSL(a, D)`, two
/// float32 values whose sums collide (Kuiper K1, 100 stations, t = 37.6 s:
/// 1207 -> 1241 via 250 or 616, both 1,638,597.125 m; satgenpy takes 250).
fn best_two(cands: impl Iterator<Item = (f64, u32)>) -> ((f64, u32), (f64, u32)) {
    let precedes = |a: (f64, u32), b: (f64, u32)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
    let mut first = (f64::INFINITY, NONE);
    let mut second = (f64::INFINITY, NONE);
    for c in cands.filter(|c| c.0.is_finite()) {
        if precedes(c, first) {
            second = first;
            first = c;
        } else if precedes(c, second) {
            second = c;
        }
    }
    (first, second)
}

/// Ground stations towards destination index `d`: the best first satellite
/// is the next hop, the second best the alternate.
fn station_hops(net: &Network, s: &Scratch, d: usize, out: &mut StepResult) {
    let (n_sats, n_gs) = (net.n_sats(), net.stations.len());
    let base = d * net.n_nodes();
    for h in 0..n_gs {
        if h == d && d < n_gs {
            continue;
        }
        let (first, second) = best_two(
            s.gsl[h]
                .iter()
                .map(|&(len, sat)| (len + s.dist[sat as usize], sat)),
        );
        out.next_hop[base + n_sats + h] = first.1;
        out.backup[base + n_sats + h] = second.1;
        if d < n_gs {
            out.gs_dist[d * n_gs + h] = first.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_distances_go_to_the_lower_satellite_id_as_in_satgenpy() {
        // The Kuiper K1 tie (t = 37.6 s, 1207 -> 1241), in the order the
        // GSL list holds them (by range: 616 is nearer) and reversed.
        let tie = [
            (1_638_597.125, 616),
            (1_638_597.125, 250),
            (1_925_009.25, 582),
        ];
        for order in [tie, [tie[2], tie[1], tie[0]]] {
            let (first, second) = best_two(order.into_iter());
            assert_eq!((first.1, second.1), (250, 616), "{order:?}");
        }
        // A strictly shorter distance still wins over a lower id.
        let (first, second) = best_two([(5.0, 9), (4.0, 10)].into_iter());
        assert_eq!((first, second), ((4.0, 10), (5.0, 9)));
        // Unreachable candidates are none; with none, NONE.
        let (first, second) = best_two([(f64::INFINITY, 1), (7.0, 3)].into_iter());
        assert_eq!((first, second.1), ((7.0, 3), NONE));
        assert_eq!(best_two(std::iter::empty()).0 .1, NONE);
    }
}
