//! A scenario: everything the predictor needs to rebuild the same network
//! (constellation, ground stations, link rules, window, label plan).
//!
//! `orbitmesh-ctl predict` takes these as flags and writes them beside the
//! schedules (`schedule/scenario.json`), so the control process can
//! recompute routes later from the same model, for example without a link
//! that a dataplane reported down (docs/design.md, "5. The control process").

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::geometry::Geometry;
use super::links::{IslPlan, IslPolicy};
use super::nearest::{DynamicIsls, NearestRule};
use super::propagate::Propagator;
use super::schedule::{self, Ipv4Prefix, ScheduleBuilder};
use super::tle::TleSet;
use super::walker::WalkerShell;
use super::{ground, infer, output, tle, Error, Network, Window};

/// The file name beside the node schedules.
pub const FILE: &str = "scenario.json";

/// The modelling flags of `predict` (also its on-disk scenario).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Built-in shell: starlink-s1, kuiper-k1, telesat-t1, transport-layer.
    /// Repeat (or comma-separate) for several shells in one scenario.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub preset: Vec<String>,
    /// Walker shell P:S:INC_DEG:ALT_KM, optionally :REV_PER_DAY (empty = from the
    /// altitude) and :PHASING (half = satgenpy's half slot on odd planes, the
    /// default; none; or a Walker phasing factor F). Repeatable.
    /// Shells are numbered presets first, then walkers, in the given order.
    #[arg(long)]
    #[serde(default)]
    pub walker: Vec<String>,
    /// 3-line TLE file (checksums verified). satgenpy's 'P S' header gives the +Grid.
    #[arg(long, conflicts_with_all = ["preset", "walker"])]
    pub tle: Option<PathBuf>,
    /// +Grid structure PxS of a TLE file without header (satellites plane-major).
    #[arg(long)]
    pub grid: Option<String>,
    /// For a TLE file without +Grid structure (real sets): infer shells and
    /// orbital planes from the orbits and plan +Grid ISLs in each shell.
    #[arg(long, conflicts_with_all = ["grid", "preset", "walker"])]
    #[serde(default)]
    pub infer_grid: bool,
    /// Ground stations file (id,name,lat,lon,elevation).
    #[arg(long)]
    pub ground_stations: Option<PathBuf>,
    /// Use only the first N ground stations.
    #[arg(long)]
    pub gs_count: Option<usize>,
    /// Start of the window after the epoch (e.g. 0s, 1500ms).
    #[arg(long, default_value = "0s", allow_hyphen_values = true)]
    pub start: String,
    /// Length of the window (e.g. 200s, 2min).
    #[arg(long, default_value = "200s", allow_hyphen_values = true)]
    pub duration: String,
    /// Time step (e.g. 100ms, 50ms).
    #[arg(long, default_value = "100ms", allow_hyphen_values = true)]
    pub step: String,
    /// Maximum GSL slant range in metres (default: the preset's / shell's).
    #[arg(long)]
    pub max_gsl_m: Option<f64>,
    /// Minimum elevation angle in degrees for GSLs (in addition to the range).
    #[arg(long)]
    pub min_elevation_deg: Option<f64>,
    /// Laser terminals per satellite (ISLs per satellite at most).
    #[arg(long, default_value_t = 4)]
    pub max_terminals: usize,
    /// ISL policy: grid (+Grid per shell) or nearest (each satellite links
    /// to up to --max-terminals nearest satellites within --isl-range-km,
    /// with --isl-hysteresis; any constellation, links between shells too).
    #[arg(long, value_enum, default_value_t = IslPolicyKind::Grid)]
    #[serde(default)]
    pub isl_policy: IslPolicyKind,
    /// Nearest rule (nearest policy, inter-shell links): longest ISL, km.
    #[arg(long, default_value_t = DEFAULT_ISL_RANGE_KM)]
    #[serde(default = "default_isl_range_km")]
    pub isl_range_km: f64,
    /// Nearest rule: a link that is up stays up unless a candidate shorter
    /// by this fraction takes one of its terminals (0 = none).
    #[arg(long, default_value_t = DEFAULT_ISL_HYSTERESIS)]
    #[serde(default = "default_isl_hysteresis")]
    pub isl_hysteresis: f64,
    /// Grid policy with several shells: extra laser terminals per satellite
    /// for links to other shells by the nearest rule (0 = no such links).
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub inter_shell_terminals: usize,
    /// ISL lines of sight must stay above this altitude (km).
    #[arg(long, default_value_t = 80.0)]
    pub min_los_altitude_km: f64,
    /// SRGB base: node SID label = base + node index.
    #[arg(long, default_value_t = 16000)]
    pub srgb_base: u32,
    /// IPv4 block for the ground stations' prefixes (each station is a label
    /// edge router for one prefix): station i (0-based) gets the i-th
    /// --gs-prefix-len block inside it.
    #[arg(long, default_value = "10.128.0.0/9")]
    pub gs_prefix_base: String,
    /// Length of each ground station's prefix (default /24: station i gets
    /// 10.<128 + i / 256>.<i % 256>.0/24 with the default base).
    #[arg(long, default_value_t = 24)]
    pub gs_prefix_len: u8,
    /// Also compute next hops towards every satellite's node SID (one more
    /// Dijkstra per satellite per step; off by default: stations are the
    /// destinations that carry traffic).
    #[arg(long)]
    #[serde(default)]
    pub sat_destinations: bool,
    /// Link geometry: accurate (Vallado SGP4, WGS72) or hypatia (satgenpy
    /// 0.4.0 through PyEphem/libastro, f32 ranges, to reproduce its results
    /// step for step).
    #[arg(long, value_enum, default_value_t = Geometry::Accurate)]
    #[serde(default)]
    pub geometry: Geometry,
}

/// `--isl-policy`'s values (the typed policy is [`IslPolicy`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IslPolicyKind {
    /// +Grid per shell.
    #[default]
    Grid,
    /// Nearest satellites within range, with hysteresis.
    Nearest,
}

/// Default longest ISL of the nearest rule, km: about the longest line of
/// sight between two satellites at 550 km that clears 80 km of atmosphere
/// (2 x sqrt(6928^2 - 6458^2) = 5,016 km).
pub const DEFAULT_ISL_RANGE_KM: f64 = 5000.0;
/// Default hysteresis of the nearest rule: 10%.
pub const DEFAULT_ISL_HYSTERESIS: f64 = 0.1;

fn default_isl_range_km() -> f64 {
    DEFAULT_ISL_RANGE_KM
}

fn default_isl_hysteresis() -> f64 {
    DEFAULT_ISL_HYSTERESIS
}

/// A scenario made concrete: the network of satellites and stations, the
/// time window, the epoch and the stations' prefixes, ready to simulate.
#[derive(Debug)]
pub struct ScenarioModel {
    pub net: Network,
    pub window: Window,
    /// The constellation's epoch (schedule time 0), RFC 3339 UTC.
    pub epoch_utc: String,
    pub gs_prefixes: Vec<Ipv4Prefix>,
    /// The satellites as TLEs (for `--dump-tles`).
    pub tles: String,
}

impl ScenarioModel {
    /// An empty schedule builder for this network, window and label plan.
    pub fn schedule_builder(&self, srgb_base: u32) -> Result<ScheduleBuilder, Error> {
        ScheduleBuilder::new(
            self.net.n_sats(),
            self.net.stations.len(),
            self.net.n_dests(),
            srgb_base,
            self.epoch_utc.clone(),
            self.window.step_ns,
        )
        .with_gs_prefixes(self.gs_prefixes.clone())
    }
}

/// Parses a duration (`100ms`, `2min`, `1h`; a bare number is seconds):
/// [`crate::duration::parse_ns`], the parser every option shares.
pub fn parse_duration_ns(s: &str) -> Result<i64, Error> {
    crate::duration::parse_ns(s).map_err(Error::Scenario)
}

/// Node SIDs `srgb_base + 0 ..= srgb_base + nodes - 1` must be ordinary
/// MPLS labels: above the reserved 0..=15 and within 20 bits.
fn check_srgb(srgb_base: u32, nodes: usize) -> Result<(), Error> {
    let last = u32::try_from(nodes.saturating_sub(1))
        .ok()
        .and_then(|n| srgb_base.checked_add(n));
    match last {
        Some(last) if srgb_base >= 16 && last <= schedule::MAX_LABEL => Ok(()),
        _ => Err(Error::Scenario(format!(
            "--srgb-base {srgb_base}: the {nodes} node SIDs from it must lie in 16..={}",
            schedule::MAX_LABEL
        ))),
    }
}

/// A scenario error with this message.
fn scen(m: String) -> Error {
    Error::Scenario(m)
}

impl Scenario {
    /// Reads `dir/scenario.json`; `None` when there is none.
    pub fn read(dir: &std::path::Path) -> Result<Option<Scenario>, Error> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Scenario(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes `dir/scenario.json` with absolute file paths, so it can be
    /// rebuilt from any working directory.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), Error> {
        let mut s = self.clone();
        for p in [&mut s.tle, &mut s.ground_stations].into_iter().flatten() {
            if let Ok(abs) = std::fs::canonicalize(&*p) {
                *p = abs;
            }
        }
        let path = dir.join(FILE);
        let text = serde_json::to_string_pretty(&s).expect("serialisable");
        std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Builds the network, the window and the label plan; `failed` links
    /// (node pairs, either order) are left out of every step.
    pub fn build(&self, failed: &BTreeSet<(u32, u32)>) -> Result<ScenarioModel, Error> {
        let step_ns = parse_duration_ns(&self.step)?;
        let start_ns = parse_duration_ns(&self.start)?;
        let duration_ns = parse_duration_ns(&self.duration)?;
        let window = Window::new(start_ns, start_ns.saturating_add(duration_ns), step_ns)?;
        let (set, shell_grids, shell_gsl, n_shells) = self.constellation()?;
        let grid = self.grid(&set)?;
        if !(0.0..=10_000.0).contains(&self.min_los_altitude_km) {
            return Err(scen(format!(
                "--min-los-altitude-km must be in 0..10000, got {}",
                self.min_los_altitude_km
            )));
        }
        let min_los_m = self.min_los_altitude_km * 1000.0;
        if self.geometry == Geometry::Hypatia && self.min_elevation_deg.is_some() {
            return Err(scen(
                "--min-elevation-deg is not part of satgenpy's model: \
                 it cannot be used with --geometry hypatia"
                    .into(),
            ));
        }
        let propagator = Propagator::with_geometry(&set, self.geometry)?;
        let isls = self.isl_plan(grid, &shell_grids, &propagator, min_los_m, start_ns)?;
        let (gsl, gsl_max_per_sat) = self.gsl_policy(shell_gsl, n_shells)?;
        let stations = self.stations()?;
        let tles = tle::to_text(&set);
        let epoch_utc = propagator
            .epoch
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let n_gs = stations.len();
        check_srgb(self.srgb_base, set.sats.len() + n_gs)?;
        let net = Network {
            propagator,
            stations,
            isls,
            gsl,
            gsl_max_per_sat,
            sat_destinations: self.sat_destinations,
            failed: failed.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect(),
        };
        let gs_prefixes = schedule::gs_prefixes(&self.gs_prefix_base, self.gs_prefix_len, n_gs)?;
        Ok(ScenarioModel {
            net,
            window,
            epoch_utc,
            gs_prefixes,
            tles,
        })
    }

    /// The satellites: a TLE file, or the presets and Walker shells combined
    /// (with their +Grid per shell, maximum GSL length per satellite, and the
    /// number of shells).
    #[allow(clippy::type_complexity)]
    fn constellation(
        &self,
    ) -> Result<(TleSet, Vec<(usize, usize, usize)>, Vec<f64>, usize), Error> {
        let mut shells = Vec::new();
        for p in &self.preset {
            shells.push(WalkerShell::preset(p)?);
        }
        for w in &self.walker {
            shells.push(WalkerShell::from_spec(w)?);
        }
        let (set, shell_grids, shell_gsl) = match &self.tle {
            Some(path) => (tle::read(path)?, Vec::new(), Vec::new()),
            None if shells.is_empty() => {
                return Err(scen(
                    "no constellation: give --preset, --walker or --tle".into(),
                ))
            }
            None => WalkerShell::combine(&shells)?,
        };
        Ok((set, shell_grids, shell_gsl, shells.len()))
    }

    /// The +Grid shape: `--grid PxS` (checked against the satellite count)
    /// or the TLE file's header.
    fn grid(&self, set: &TleSet) -> Result<Option<(usize, usize)>, Error> {
        let Some(g) = &self.grid else {
            return Ok(set.grid);
        };
        let bad = || scen(format!("--grid {g:?}: expected PxS, e.g. 6x6"));
        let (p, s) = g.split_once(['x', 'X', ':']).ok_or_else(bad)?;
        let (p, s): (usize, usize) = (p.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?);
        if p.checked_mul(s) != Some(set.sats.len()) {
            return Err(scen(format!(
                "--grid {g}: {p} x {s} is not the constellation's {} satellites",
                set.sats.len()
            )));
        }
        Ok(Some((p, s)))
    }

    /// What a run of this scenario is computed from, for its summary.
    pub fn inputs(&self, model: &ScenarioModel) -> Result<output::Inputs, Error> {
        let mut constellation: Vec<String> = self
            .preset
            .iter()
            .map(|p| format!("preset {p}"))
            .chain(self.walker.iter().map(|w| format!("walker {w}")))
            .collect();
        if let Some(t) = &self.tle {
            constellation.push(format!("tle {}", t.display()));
        }
        let net = &model.net;
        Ok(output::Inputs {
            constellation,
            epoch_utc: model.epoch_utc.clone(),
            start_ns: model.window.start_ns,
            end_ns: model.window.end_ns,
            step_ns: model.window.step_ns,
            ground_stations: self
                .ground_stations
                .as_ref()
                .map(|g| format!("{} ({} stations)", g.display(), net.stations.len())),
            gsl_rule: output::GslRule {
                max_length_m: net.gsl.max_length_m,
                min_elevation_deg: net.gsl.min_elevation_deg,
                per_shell: !net.gsl_max_per_sat.is_empty(),
            },
            isl_policy: self.isl_policy()?,
            isls: net.isls.describe(),
            geometry: net.propagator.geometry(),
        })
    }

    /// The typed ISL policy of the flags.
    pub fn isl_policy(&self) -> Result<IslPolicy, Error> {
        let rule =
            |terminals| NearestRule::new(terminals, self.isl_range_km * 1e3, self.isl_hysteresis);
        Ok(match self.isl_policy {
            IslPolicyKind::Nearest => {
                if self.inter_shell_terminals > 0 {
                    return Err(scen(
                        "--inter-shell-terminals is for --isl-policy grid; the nearest policy links shells with its own terminals".into(),
                    ));
                }
                IslPolicy::Nearest(rule(self.max_terminals)?)
            }
            IslPolicyKind::Grid => IslPolicy::Grid {
                inter_shell: match self.inter_shell_terminals {
                    0 => None,
                    n => Some(rule(n)?),
                },
            },
        })
    }

    /// The planned ISLs of the policy: +Grid per shell (the given grid, the
    /// file's, an inferred one, or none with a warning) with links between
    /// shells, or the nearest rule.
    fn isl_plan(
        &self,
        grid: Option<(usize, usize)>,
        shell_grids: &[(usize, usize, usize)],
        propagator: &Propagator,
        min_los_m: f64,
        start_ns: i64,
    ) -> Result<IslPlan, Error> {
        let inter_shell = match self.isl_policy()? {
            IslPolicy::Nearest(rule) => {
                if self.infer_grid || self.grid.is_some() {
                    return Err(scen(
                        "--infer-grid and --grid give +Grid links: they go with --isl-policy grid, not nearest".into(),
                    ));
                }
                return Ok(IslPlan {
                    pairs: Vec::new(),
                    min_los_altitude_m: min_los_m,
                    dynamic: Some(DynamicIsls {
                        rule,
                        shell_of: Vec::new(),
                        history_from_ns: start_ns,
                    }),
                });
            }
            IslPolicy::Grid { inter_shell } => inter_shell,
        };
        let (mut plan, shell_of) = self.grid_plan(grid, shell_grids, propagator, min_los_m)?;
        if let Some(rule) = inter_shell {
            let shells = shell_of.iter().collect::<BTreeSet<_>>().len();
            if shells < 2 {
                orbitmesh_core::errln!(
                    "warning: --inter-shell-terminals: the constellation has one shell, no links between shells"
                );
            }
            plan.dynamic = Some(DynamicIsls {
                rule,
                shell_of,
                history_from_ns: start_ns,
            });
        }
        Ok(plan)
    }

    /// +Grid per shell and the shell of each satellite.
    fn grid_plan(
        &self,
        grid: Option<(usize, usize)>,
        shell_grids: &[(usize, usize, usize)],
        propagator: &Propagator,
        min_los_m: f64,
    ) -> Result<(IslPlan, Vec<u32>), Error> {
        let one_shell = vec![0; propagator.len()];
        Ok(match grid {
            _ if !shell_grids.is_empty() => {
                let mut shell_of = one_shell;
                for (k, &(offset, p, s)) in shell_grids.iter().enumerate() {
                    shell_of[offset..offset + p * s].fill(k as u32);
                }
                let plan = IslPlan::plus_grid_shells(shell_grids, self.max_terminals, min_los_m)?;
                (plan, shell_of)
            }
            Some((p, s)) if self.infer_grid => {
                let why = format!("the constellation already has a {p} x {s} +Grid");
                return Err(scen(format!("--infer-grid: {why}, nothing to infer")));
            }
            Some((p, s)) => (
                IslPlan::plus_grid(p, s, self.max_terminals, min_los_m)?,
                one_shell,
            ),
            None if self.infer_grid => {
                let (plan, found) = infer::plane_grid(propagator, self.max_terminals, min_los_m);
                orbitmesh_core::errln!(
                    "inferred {} shells and {} orbital planes: {} ISLs planned",
                    found.shells,
                    found.planes,
                    plan.pairs.len()
                );
                (plan, found.shell_of)
            }
            None => {
                orbitmesh_core::errln!(
                    "warning: no +Grid structure (no 'P S' header, no --grid, no --infer-grid): no +Grid ISLs are planned (--isl-policy nearest needs none)"
                );
                let plan = IslPlan {
                    pairs: Vec::new(),
                    min_los_altitude_m: min_los_m,
                    dynamic: None,
                };
                (plan, one_shell)
            }
        })
    }

    /// GSL visibility: the maximum length (given, or the shells' largest) and
    /// elevation, and the per-satellite ranges of a multi-shell scenario.
    fn gsl_policy(
        &self,
        shell_gsl: Vec<f64>,
        n_shells: usize,
    ) -> Result<(ground::GslPolicy, Vec<f64>), Error> {
        let default_gsl = shell_gsl.iter().copied().reduce(f64::max);
        let max_gsl = match self.max_gsl_m.or(default_gsl) {
            Some(m) if m > 0.0 => m,
            Some(m) => return Err(scen(format!("--max-gsl-m must be positive, got {m}"))),
            None => {
                return Err(scen(
                    "--max-gsl-m is required for a TLE constellation".into(),
                ))
            }
        };
        // Per-shell ranges only matter with several shells and no override.
        let gsl_max_per_sat = if self.max_gsl_m.is_none() && n_shells > 1 {
            shell_gsl
        } else {
            Vec::new()
        };
        if let Some(e) = self.min_elevation_deg {
            if !(0.0..90.0).contains(&e) {
                return Err(scen(format!(
                    "--min-elevation-deg must be in 0..90, got {e}"
                )));
            }
        }
        Ok((
            ground::GslPolicy {
                max_length_m: max_gsl,
                min_elevation_deg: self.min_elevation_deg,
            },
            gsl_max_per_sat,
        ))
    }

    /// The ground stations of the file, the first `--gs-count` of them.
    fn stations(&self) -> Result<Vec<ground::GroundStation>, Error> {
        let mut stations = match &self.ground_stations {
            Some(p) => ground::read(p)?,
            None => Vec::new(),
        };
        if let Some(n) = self.gs_count {
            if n > stations.len() {
                return Err(scen(format!(
                    "--gs-count {n}: only {} ground stations in the file",
                    stations.len()
                )));
            }
            stations.truncate(n);
        }
        if stations.is_empty() {
            return Err(scen(
                "no ground stations: give --ground-stations FILE (destinations are ground stations)"
                    .into(),
            ));
        }
        Ok(stations)
    }
}
