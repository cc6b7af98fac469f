//! ISLs for TLE sets without a +Grid header: shells and orbital planes
//! inferred from the orbits, then +Grid inside each shell.
//!
//! Every satellite's osculating orbit at the scenario epoch (SGP4 position and
//! velocity, so satellites whose TLE epochs differ are compared at one
//! instant, after their nodes have precessed): inclination and right
//! ascension of the ascending node (RAAN) from the angular momentum, altitude
//! from the semi-major axis (vis-viva, WGS72), argument of latitude from the
//! position in the orbit plane.
//!
//! - Shells: satellites sorted by altitude and split where consecutive
//!   altitudes differ by more than [`SHELL_ALTITUDE_GAP_KM`]; each part sorted
//!   by inclination and split at gaps above [`SHELL_INCLINATION_GAP_DEG`].
//!   Satellites still raising their orbit form small shells of their own.
//! - Planes: inside a shell, RAANs sorted (on the circle) and split at gaps
//!   above [`PLANE_RAAN_GAP_DEG`]; planes ordered by RAAN.
//! - Links, in this order (terminals are handed out first come, first served,
//!   at most `max_terminals` per satellite): in each plane, satellites ordered
//!   by argument of latitude form a ring (a plane of two is one link, of one
//!   none); then each satellite links to the satellite of the next plane
//!   (by RAAN, wrapping round when the shell has three planes or more) whose
//!   argument of latitude is nearest. This is +Grid when planes are regular.
//!
//! Irregular planes, the policy by name: **ring over the gaps, nearest slot
//! across, first come first served**.
//! - A missing satellite (decayed, not yet raised, a spare elsewhere): the
//!   ring closes over the gap, so its two neighbours link directly (a link
//!   about twice as long); across planes nothing changes, the satellite of
//!   the previous plane that faced the gap picks the nearest of the two.
//! - An extra satellite (a plane holding more than its neighbours, uneven
//!   spacing): it is in its plane's ring like any other; across, two
//!   satellites may pick the same one in the next plane. Links are made in
//!   plan order (rings first, then planes by RAAN, each by argument of
//!   latitude) and one that would give a satellite more than
//!   `max_terminals` is dropped, so a few satellites keep fewer than four
//!   links rather than gaining a link that crosses the grid diagonally.
//! - Rings always win over links across: a plane stays connected whatever
//!   its neighbours do.
//!
//! Why this and not a re-pairing (say, a matching between adjacent planes):
//! it keeps +Grid's two properties that matter for routing, in-plane links
//! that never break and cross-plane links to the nearest slot, it is
//! deterministic (ties by order), and the cost of irregularity is a
//! handful of missing links, visible in the plan's size. Sets too irregular
//! for a grid (many shells, satellites still raising) are what the
//! nearest-in-range policy ([`super::nearest`], `--isl-policy nearest`) is
//! for; between shells this module makes no links (`--inter-shell-terminals`
//! adds them by that rule).
//!
//! A satellite that cannot be propagated at the epoch is in no plane (no ISL).
//! Near-equatorial orbits (geostationary satellites) have no meaningful RAAN,
//! so their planes are arbitrary; the rule is meant for LEO shells.
//! Links are still only up while their line of sight clears the atmosphere
//! (see [`super::links`]).

use super::links::IslPlan;
use super::propagate::Propagator;

/// Shells: largest altitude gap inside one shell, km.
pub const SHELL_ALTITUDE_GAP_KM: f64 = 10.0;
/// Shells: largest inclination gap inside one shell, degrees.
pub const SHELL_INCLINATION_GAP_DEG: f64 = 1.0;
/// Planes: largest RAAN gap inside one plane, degrees.
pub const PLANE_RAAN_GAP_DEG: f64 = 2.0;

/// WGS72 gravitational parameter, km^3/s^2.
const MU_KM3_S2: f64 = 398_600.8;
/// WGS72 equatorial radius, km.
const RADIUS_KM: f64 = 6_378.135;

/// One satellite's orbit at the epoch.
#[derive(Debug, Clone, Copy)]
struct Orbit {
    sat: u32,
    altitude_km: f64,
    inclination_deg: f64,
    raan_deg: f64,
    arg_latitude_deg: f64,
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

impl Orbit {
    fn from_state(sat: u32, r: [f64; 3], v: [f64; 3]) -> Option<Self> {
        let h = cross(r, v);
        let (rn, hn, v2) = (norm(r), norm(h), v.iter().map(|c| c * c).sum::<f64>());
        let a = 1.0 / (2.0 / rn - v2 / MU_KM3_S2);
        if !(hn > 0.0 && a.is_finite() && a > 0.0) {
            return None;
        }
        let inc = (h[2] / hn).clamp(-1.0, 1.0).acos();
        let raan = h[0].atan2(-h[1]);
        // Argument of latitude: angle from the ascending node to r in the plane.
        let u = if inc.sin().abs() < 1e-9 {
            r[1].atan2(r[0]) - raan
        } else {
            (r[2] / inc.sin()).atan2(r[0] * raan.cos() + r[1] * raan.sin())
        };
        Some(Self {
            sat,
            altitude_km: a - RADIUS_KM,
            inclination_deg: inc.to_degrees(),
            raan_deg: raan.to_degrees().rem_euclid(360.0),
            arg_latitude_deg: u.to_degrees().rem_euclid(360.0),
        })
    }
}

/// Splits `items` (sorted by `key`) where consecutive keys differ by more than `gap`.
fn split_at_gaps(items: Vec<Orbit>, key: impl Fn(&Orbit) -> f64, gap: f64) -> Vec<Vec<Orbit>> {
    let mut out: Vec<Vec<Orbit>> = Vec::new();
    for o in items {
        match out.last_mut() {
            Some(cur) if key(&o) - key(cur.last().expect("non-empty")) <= gap => cur.push(o),
            _ => out.push(vec![o]),
        }
    }
    out
}

/// Planes of one shell, ordered by RAAN (on the circle: the widest gap is the cut).
fn planes(mut shell: Vec<Orbit>) -> Vec<Vec<Orbit>> {
    shell.sort_by(|a, b| a.raan_deg.total_cmp(&b.raan_deg));
    let n = shell.len();
    // Start after the widest gap, so no plane straddles 0/360 degrees.
    let start = (0..n)
        .max_by(|&i, &j| {
            let gap =
                |k: usize| (shell[(k + 1) % n].raan_deg - shell[k].raan_deg).rem_euclid(360.0);
            gap(i).total_cmp(&gap(j))
        })
        .map_or(0, |i| (i + 1) % n);
    shell.rotate_left(start);
    let base = shell.first().map_or(0.0, |o| o.raan_deg);
    let unwrapped = |o: &Orbit| (o.raan_deg - base).rem_euclid(360.0);
    let mut planes = split_at_gaps(shell, unwrapped, PLANE_RAAN_GAP_DEG);
    for p in &mut planes {
        p.sort_by(|a, b| a.arg_latitude_deg.total_cmp(&b.arg_latitude_deg));
    }
    planes
}

/// Shells of the constellation, each a list of planes.
fn shells(orbits: Vec<Orbit>) -> Vec<Vec<Vec<Orbit>>> {
    let mut orbits = orbits;
    orbits.sort_by(|a, b| a.altitude_km.total_cmp(&b.altitude_km));
    let mut out = Vec::new();
    for by_alt in split_at_gaps(orbits, |o| o.altitude_km, SHELL_ALTITUDE_GAP_KM) {
        let mut by_alt = by_alt;
        by_alt.sort_by(|a, b| a.inclination_deg.total_cmp(&b.inclination_deg));
        for shell in split_at_gaps(by_alt, |o| o.inclination_deg, SHELL_INCLINATION_GAP_DEG) {
            out.push(planes(shell));
        }
    }
    out
}

/// Angle between two arguments of latitude, degrees in 0..=180.
fn angle(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// Candidate links of one shell, in plan order (rings first, then planes).
fn shell_links(planes: &[Vec<Orbit>], out: &mut Vec<(u32, u32)>) {
    for plane in planes {
        let n = plane.len();
        let ring = if n >= 3 { n } else { n.saturating_sub(1) };
        for k in 0..ring {
            out.push((plane[k].sat, plane[(k + 1) % n].sat));
        }
    }
    let p = planes.len();
    let across = if p >= 3 { p } else { p.saturating_sub(1) };
    for k in 0..across {
        let next = &planes[(k + 1) % p];
        for o in &planes[k] {
            let nearest = next.iter().min_by(|a, b| {
                angle(a.arg_latitude_deg, o.arg_latitude_deg)
                    .total_cmp(&angle(b.arg_latitude_deg, o.arg_latitude_deg))
            });
            if let Some(nb) = nearest {
                out.push((o.sat, nb.sat));
            }
        }
    }
}

/// What the inference found, for the run's messages and inter-shell links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// Shells.
    pub shells: usize,
    /// Planes over all shells.
    pub planes: usize,
    /// Shell of each satellite (shells numbered by altitude, then
    /// inclination); a satellite that cannot be propagated at the epoch is
    /// in a shell of its own, numbered after the others.
    pub shell_of: Vec<u32>,
}

/// Infers shells and planes from the orbits at the scenario epoch and plans
/// +Grid ISLs inside each shell (see the module notes).
pub fn plane_grid(
    prop: &Propagator,
    max_terminals: usize,
    min_los_altitude_m: f64,
) -> (IslPlan, Inferred) {
    let orbits: Vec<Orbit> = (0..prop.len())
        .filter_map(|sat| {
            let (r, v) = prop.teme_state(sat, 0)?;
            Orbit::from_state(sat as u32, r, v)
        })
        .collect();
    let shells = shells(orbits);
    let mut candidates = Vec::new();
    for s in &shells {
        shell_links(s, &mut candidates);
    }
    let plan = IslPlan::from_candidates(prop.len(), &candidates, max_terminals, min_los_altitude_m);
    let mut shell_of = vec![shells.len() as u32; prop.len()];
    for (k, shell) in shells.iter().enumerate() {
        for o in shell.iter().flatten() {
            shell_of[o.sat as usize] = k as u32;
        }
    }
    let inferred = Inferred {
        shells: shells.len(),
        planes: shells.iter().map(Vec::len).sum(),
        shell_of,
    };
    (plan, inferred)
}
