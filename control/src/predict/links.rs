//! Inter-satellite links (ISLs) in the +Grid pattern.
//!
//! +Grid (Bhattacherjee and Singla, "Network topology design at 27,000 km/hour",
//! CoNEXT 2019; Hypatia's `generate_plus_grid_isls` with `isl_shift = 0`): each
//! satellite links to the next satellite in its own plane (a ring) and to the
//! satellite in the same slot of the next plane (plane P-1 wraps to plane 0).
//! That gives every satellite up to 4 links, listed in satgenpy's order so that
//! neighbour iteration (and so tie-breaking) matches it.
//!
//! Per time step a listed ISL is only up while the straight line between the two
//! satellites stays above 80 km altitude (Hypatia's `MAX_ISL_LENGTH_M` rationale:
//! no link through the atmosphere, let alone through the Earth). A satellite has
//! at most `max_terminals` laser terminals (default 4); links beyond that, in list
//! order, are not planned.
//!
//! Beside these static links a plan may carry links chosen at every step by
//! the nearest-in-range rule ([`super::nearest`]): all of them (the
//! `nearest` ISL policy) or only those between shells (the `grid` policy
//! with `--inter-shell-terminals`).

use super::coords::{segment_min_radius, Vec3, WGS72_A_M};
use super::nearest::{DynamicIsls, NearestRule};
use super::Error;

/// How a scenario's ISLs are chosen (`--isl-policy`).
///
/// - `grid`: +Grid inside each shell (below; for TLE sets the shells and
///   planes come from a `P S` header, `--grid` or `--infer-grid`), the
///   topology of Hypatia and of most LEO routing papers: four links per
///   satellite that last (in-plane links forever, cross-plane links until a
///   polar crossing breaks their line of sight), so routes change mostly
///   because ground links do. It needs a regular grid: real sets with
///   raising, spare and decaying satellites only approximate one
///   ([`super::infer`] names its policy for irregular planes), and no +Grid
///   links shells. `inter_shell`: links between shells by the nearest rule,
///   on terminals of their own.
/// - `nearest`: every satellite links to up to `terminals` of its nearest
///   satellites within `max_range_m`, with hysteresis ([`super::nearest`]).
///   It needs no structure (any TLE set, any mix of shells, links between
///   shells come by themselves) and uses short links, but its topology
///   changes as satellites pass each other, and it may leave terminals
///   idle or partition where +Grid would not.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IslPolicy {
    /// +Grid per shell, optionally nearest-in-range links between shells.
    Grid {
        /// The rule for links between shells (`None`: no such links).
        inter_shell: Option<NearestRule>,
    },
    /// Nearest satellites within range, with hysteresis.
    Nearest(NearestRule),
}

/// The planned (static) ISLs of a constellation.
#[derive(Debug, Clone, Default)]
pub struct IslPlan {
    /// Satellite pairs (a < b), in satgenpy order, without duplicates.
    pub pairs: Vec<(u32, u32)>,
    /// Minimum altitude of the line of sight, metres.
    pub min_los_altitude_m: f64,
    /// Links chosen at every step by the nearest-in-range rule, beside `pairs`.
    pub dynamic: Option<DynamicIsls>,
}

impl IslPlan {
    /// +Grid for `planes` x `sats_per_plane` satellites numbered plane-major.
    pub fn plus_grid(
        planes: usize,
        sats_per_plane: usize,
        max_terminals: usize,
        min_los_altitude_m: f64,
    ) -> Result<Self, Error> {
        Self::plus_grid_shells(
            &[(0, planes, sats_per_plane)],
            max_terminals,
            min_los_altitude_m,
        )
    }

    /// +Grid inside each shell `(first satellite, planes, satellites per plane)`
    /// of a multi-shell constellation (satgenpy's `idx_offset`); no ISLs between shells.
    pub fn plus_grid_shells(
        shells: &[(usize, usize, usize)],
        max_terminals: usize,
        min_los_altitude_m: f64,
    ) -> Result<Self, Error> {
        let total = shells.iter().map(|&(o, p, s)| o + p * s).max().unwrap_or(0);
        let mut terminals = vec![0usize; total];
        let mut seen = std::collections::HashSet::new();
        let mut pairs = Vec::new();
        for &(offset, planes, sats_per_plane) in shells {
            Self::add_shell(
                &mut pairs,
                &mut seen,
                &mut terminals,
                offset,
                planes,
                sats_per_plane,
                max_terminals,
            )?;
        }
        Ok(Self {
            pairs,
            min_los_altitude_m,
            dynamic: None,
        })
    }

    fn add_shell(
        pairs: &mut Vec<(u32, u32)>,
        seen: &mut std::collections::HashSet<(usize, usize)>,
        terminals: &mut [usize],
        offset: usize,
        planes: usize,
        sats_per_plane: usize,
        max_terminals: usize,
    ) -> Result<(), Error> {
        if planes == 0 || sats_per_plane == 0 {
            return Err(Error::Scenario(
                "+Grid needs at least one plane and one satellite".into(),
            ));
        }
        let mut add = |a: usize, b: usize| {
            let (a, b) = (offset + a.min(b), offset + a.max(b));
            if a == b || !seen.insert((a, b)) {
                return;
            }
            if terminals[a] >= max_terminals || terminals[b] >= max_terminals {
                return;
            }
            terminals[a] += 1;
            terminals[b] += 1;
            pairs.push((a as u32, b as u32));
        };
        for i in 0..planes {
            for j in 0..sats_per_plane {
                let sat = i * sats_per_plane + j;
                let same = i * sats_per_plane + (j + 1) % sats_per_plane;
                let adjacent = ((i + 1) % planes) * sats_per_plane + j;
                add(sat, same);
                add(sat, adjacent);
            }
        }
        Ok(())
    }

    /// A plan from candidate links in order: duplicates and self-links
    /// dropped, a link left out once either end has `max_terminals` links.
    pub fn from_candidates(
        n_sats: usize,
        candidates: &[(u32, u32)],
        max_terminals: usize,
        min_los_altitude_m: f64,
    ) -> Self {
        let mut terminals = vec![0usize; n_sats];
        let mut seen = std::collections::HashSet::new();
        let mut pairs = Vec::new();
        for &(a, b) in candidates {
            let (a, b) = (a.min(b), a.max(b));
            if a == b || (b as usize) >= n_sats || !seen.insert((a, b)) {
                continue;
            }
            if terminals[a as usize] >= max_terminals || terminals[b as usize] >= max_terminals {
                continue;
            }
            terminals[a as usize] += 1;
            terminals[b as usize] += 1;
            pairs.push((a, b));
        }
        Self {
            pairs,
            min_los_altitude_m,
            dynamic: None,
        }
    }

    /// The plan in words, for messages: the planned links, and the rule for
    /// the links chosen at every step.
    pub fn describe(&self) -> String {
        let mut s = format!("{} planned ISLs", self.pairs.len());
        if let Some(d) = &self.dynamic {
            let r = d.rule;
            s += &format!(
                "{} chosen every step: up to {} per satellite to the nearest within {} km, hysteresis {}",
                if d.shell_of.is_empty() { ", ISLs" } else { ", ISLs between shells" },
                r.terminals,
                r.max_range_m / 1e3,
                r.hysteresis
            );
        }
        s
    }

    /// Whether the ISL between two satellite positions can be up now, and its length.
    #[inline]
    pub fn link(&self, a: Vec3, b: Vec3) -> Option<f64> {
        if segment_min_radius(a, b) < WGS72_A_M + self.min_los_altitude_m {
            None
        } else {
            Some(a.dist(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::coords::geodetic_to_ecef;

    #[test]
    fn plus_grid_degrees() {
        let plan = IslPlan::plus_grid(6, 21, 4, 80_000.0).unwrap();
        assert_eq!(plan.pairs.len(), 6 * 21 * 2);
        let mut deg = vec![0; 126];
        for &(a, b) in &plan.pairs {
            deg[a as usize] += 1;
            deg[b as usize] += 1;
        }
        assert!(deg.iter().all(|&d| d == 4));
        // satgenpy order: (0,1) then (0,21).
        assert_eq!(&plan.pairs[..2], &[(0, 1), (0, 21)]);
        let two = IslPlan::plus_grid(6, 21, 2, 80_000.0).unwrap();
        let mut deg = vec![0; 126];
        for &(a, b) in &two.pairs {
            deg[a as usize] += 1;
            deg[b as usize] += 1;
        }
        assert!(deg.iter().all(|&d| d <= 2));
    }

    #[test]
    fn link_through_the_earth_is_never_made() {
        let plan = IslPlan::plus_grid(3, 3, 4, 80_000.0).unwrap();
        let a = geodetic_to_ecef(0.0, 0.0, 550_000.0);
        let b = geodetic_to_ecef(0.0, 120.0, 550_000.0);
        assert!(plan.link(a, b).is_none());
        let c = geodetic_to_ecef(0.0, 10.0, 550_000.0);
        assert!(plan.link(a, c).is_some());
    }
}
