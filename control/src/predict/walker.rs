//! Walker-delta shells generated from parameters, and the named presets.
//!
//! A Walker delta shell (J. G. Walker, "Satellite constellations", JBIS 37, 1984)
//! has P planes equally spaced in right ascension (RAAN = p * 360/P) and S
//! satellites equally spaced in mean anomaly per plane. The elements are written
//! as TLE text with exactly the conventions of Hypatia's satgenpy
//! (`generate_tles_from_scratch_manual`, Kassing et al., "Exploring the Internet
//! from space with Hypatia", IMC 2020), so that both tools propagate bit-identical
//! element sets:
//! - epoch 2000-01-01 00:00:00 UTC (`00001.00000000`), zero drag terms;
//! - eccentricity 1e-7 (pyephem does not accept 0), argument of perigee 0;
//! - odd planes shifted by half a slot (360 / (2 S) degrees), satgenpy's
//!   `phase_diff` ([`Phasing::HalfSlotOddPlanes`], the default); classic Walker
//!   phasing factor F (plane p shifted by p F 360 / (P S) degrees) or none are
//!   also available;
//! - satellite id = plane * S + slot, catalogue number id + 1, name
//!   `<constellation> <id>`;
//! - angles printed with 4 decimals, mean motion with 8 (so elements are rounded
//!   the same way).
//!
//! Presets take Hypatia's published parameters (its `paper/satellite_networks_state`
//! scripts) where Hypatia has them: maximum GSL length = altitude / sin(minimum
//! elevation), maximum ISL length so that the line of sight stays above 80 km.

use super::tle::{self, checksum, TleSet};
use super::Error;

/// WGS72 gravitational parameter, km^3/s^2 (the SGP4 model's constant).
pub const WGS72_MU_KM3_S2: f64 = 398_600.8;

/// Phase offset between the planes of a shell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phasing {
    /// Odd planes shifted by half a slot (satgenpy `phase_diff = True`).
    HalfSlotOddPlanes,
    /// No offset (satgenpy `phase_diff = False`).
    None,
    /// Walker delta i:t/p/F: plane p shifted by p * F * 360 / (P * S) degrees.
    WalkerF(u32),
}

impl Phasing {
    /// Mean-anomaly offset in degrees of plane `orbit` of a P x S shell.
    pub fn offset_deg(self, orbit: usize, planes: usize, sats_per_plane: usize) -> f64 {
        match self {
            Phasing::HalfSlotOddPlanes if orbit % 2 == 1 => 360.0 / (sats_per_plane as f64 * 2.0),
            Phasing::HalfSlotOddPlanes | Phasing::None => 0.0,
            Phasing::WalkerF(f) => {
                (orbit as f64 * f64::from(f) * 360.0 / (planes * sats_per_plane) as f64) % 360.0
            }
        }
    }
}

/// Parameters of one Walker-delta shell.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkerShell {
    /// Name used in the TLE name lines (`<name> <id>`).
    pub name: String,
    /// Number of orbital planes P.
    pub planes: usize,
    /// Satellites per plane S.
    pub sats_per_plane: usize,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// Nominal altitude, metres (used for link-length limits).
    pub altitude_m: f64,
    /// Mean motion, revolutions per day.
    pub mean_motion_rev_per_day: f64,
    /// Phase offset between planes.
    pub phasing: Phasing,
    /// Eccentricity (satgenpy uses 1e-7).
    pub eccentricity: f64,
    /// Argument of perigee, degrees.
    pub arg_of_perigee_deg: f64,
    /// Maximum ground-to-satellite slant range, metres.
    pub max_gsl_length_m: f64,
}

/// Mean motion (rev/day) of a circular orbit at `altitude_m` above the WGS72
/// equatorial radius (two-body, WGS72 mu).
pub fn mean_motion_for_altitude(altitude_m: f64) -> f64 {
    let a_km = (super::coords::WGS72_A_M + altitude_m) / 1000.0;
    (WGS72_MU_KM3_S2 / (a_km * a_km * a_km)).sqrt() * 86_400.0 / std::f64::consts::TAU
}

/// Maximum slant range for a minimum elevation, as Hypatia computes it
/// (`sqrt(cone_radius^2 + altitude^2)` with `cone_radius = altitude / tan(elevation)`).
pub fn max_gsl_for_min_elevation(altitude_m: f64, min_elevation_deg: f64) -> f64 {
    let cone = altitude_m / min_elevation_deg.to_radians().tan();
    (cone * cone + altitude_m * altitude_m).sqrt()
}

/// Maximum ISL length such that the straight line between two satellites at
/// `altitude_m` stays above `min_los_altitude_m` (Hypatia: 80 km).
pub fn max_isl_length(altitude_m: f64, min_los_altitude_m: f64) -> f64 {
    let r = super::coords::WGS72_A_M;
    2.0 * ((r + altitude_m).powi(2) - (r + min_los_altitude_m).powi(2)).sqrt()
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["starlink-s1", "kuiper-k1", "telesat-t1", "transport-layer"];

impl WalkerShell {
    /// A built-in preset by name; the error lists the known ones.
    pub fn preset(name: &str) -> Result<Self, Error> {
        let shell = |n: &str, p, s, inc, alt: f64, mm, gsl| WalkerShell {
            name: n.to_string(),
            planes: p,
            sats_per_plane: s,
            inclination_deg: inc,
            altitude_m: alt,
            mean_motion_rev_per_day: mm,
            phasing: Phasing::HalfSlotOddPlanes,
            eccentricity: 1e-7,
            arg_of_perigee_deg: 0.0,
            max_gsl_length_m: gsl,
        };
        Ok(match name {
            // Hypatia main_starlink_550.py: cone radius 940.7 km at 550 km.
            "starlink-s1" => shell(
                "Starlink-550",
                72,
                22,
                53.0,
                550_000.0,
                15.19,
                (940_700.0f64.powi(2) + 550_000.0f64.powi(2)).sqrt(),
            ),
            // Hypatia main_kuiper_630.py: 30 degrees minimum elevation.
            "kuiper-k1" => shell(
                "Kuiper-630",
                34,
                34,
                51.9,
                630_000.0,
                14.80,
                max_gsl_for_min_elevation(630_000.0, 30.0),
            ),
            // Hypatia main_telesat_1015.py: 10 degrees minimum elevation.
            "telesat-t1" => shell(
                "Telesat-1015",
                27,
                13,
                98.98,
                1_015_000.0,
                13.66,
                max_gsl_for_min_elevation(1_015_000.0, 10.0),
            ),
            // A proliferated transport layer: 6 x 21 near-polar at ~1000 km,
            // 4 optical terminals each; 20 degrees minimum elevation assumed.
            "transport-layer" => shell(
                "Transport-1000",
                6,
                21,
                81.0,
                1_000_000.0,
                mean_motion_for_altitude(1_000_000.0),
                max_gsl_for_min_elevation(1_000_000.0, 20.0),
            ),
            other => {
                return Err(Error::Scenario(format!(
                    "unknown preset {other:?}; known presets: {}",
                    PRESETS.join(", ")
                )))
            }
        })
    }

    /// Checks that the parameters describe a usable shell.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Scenario(format!("walker shell {}: {m}", self.name)));
        if self.planes == 0 || self.sats_per_plane == 0 {
            return bad(format!(
                "planes ({}) and satellites per plane ({}) must be at least 1",
                self.planes, self.sats_per_plane
            ));
        }
        if self
            .planes
            .checked_mul(self.sats_per_plane)
            .is_none_or(|n| n > 99_999)
        {
            return bad("more than 99,999 satellites do not fit TLE catalogue numbers".into());
        }
        if !(0.0..=180.0).contains(&self.inclination_deg) {
            return bad(format!(
                "inclination {} deg is outside 0..180",
                self.inclination_deg
            ));
        }
        if !(self.mean_motion_rev_per_day > 0.0 && self.mean_motion_rev_per_day < 100.0) {
            return bad(format!(
                "mean motion {} rev/day is not in (0, 100)",
                self.mean_motion_rev_per_day
            ));
        }
        if !(self.eccentricity > 0.0 && self.eccentricity < 1.0) {
            return bad(format!(
                "eccentricity {} is not in (0, 1)",
                self.eccentricity
            ));
        }
        Ok(())
    }

    /// Total number of satellites.
    pub fn len(&self) -> usize {
        self.planes * self.sats_per_plane
    }

    /// True when the shell has no satellites.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shell as satgenpy's `tles.txt` text (header line `P S`, then 3 lines
    /// per satellite), byte for byte what `generate_tles_from_scratch_manual` writes.
    pub fn to_tle_text(&self) -> Result<String, Error> {
        let (p, s) = (self.planes, self.sats_per_plane);
        Ok(format!("{p} {s}\n{}", self.tle_blocks(0)?))
    }

    /// The 3-line blocks of the shell's satellites, numbered from `first`
    /// (satellite id `first + plane * S + slot`, catalogue number id + 1).
    pub fn tle_blocks(&self, first: usize) -> Result<String, Error> {
        self.validate()?;
        if first + self.len() > 99_999 {
            return Err(Error::Scenario(format!(
                "shell {}: satellites {first}.. do not fit TLE catalogue numbers (max 99,999)",
                self.name
            )));
        }
        let (p, s) = (self.planes, self.sats_per_plane);
        let mut out = String::new();
        let mut counter = first;
        for orbit in 0..p {
            let raan = orbit as f64 * 360.0 / p as f64;
            let shift = self.phasing.offset_deg(orbit, p, s);
            for n_sat in 0..s {
                let ma = shift + (n_sat as f64 * 360.0 / s as f64);
                let l1 = format!(
                    "1 {:05}U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    0",
                    counter + 1
                );
                let ecc = format!("{:.7}", self.eccentricity);
                let l2 = format!(
                    "2 {:05} {:>8} {:>8} {} {:>8} {:>8} {:>11}    0",
                    counter + 1,
                    format!("{:.4}", self.inclination_deg),
                    format!("{:.4}", raan),
                    &ecc[2..],
                    format!("{:.4}", self.arg_of_perigee_deg),
                    format!("{:.4}", ma),
                    format!("{:.8}", self.mean_motion_rev_per_day),
                );
                out.push_str(&format!("{} {}\n", self.name, first + orbit * s + n_sat));
                out.push_str(&format!("{l1}{}\n", checksum(&l1)));
                out.push_str(&format!("{l2}{}\n", checksum(&l2)));
                counter += 1;
            }
        }
        Ok(out)
    }

    /// The shell as a parsed TLE set (through the same text, so the rounding
    /// of the elements is the one satgenpy applies).
    pub fn to_tle_set(&self) -> Result<TleSet, Error> {
        tle::parse(&format!("walker shell {}", self.name), &self.to_tle_text()?)
    }

    /// Several shells in one scenario, satellites numbered shell after shell.
    /// Returns the TLE set, each shell's `(first satellite, planes, satellites
    /// per plane)` for the +Grid, and each satellite's maximum GSL length.
    #[allow(clippy::type_complexity)]
    pub fn combine(
        shells: &[WalkerShell],
    ) -> Result<(TleSet, Vec<(usize, usize, usize)>, Vec<f64>), Error> {
        if shells.is_empty() {
            return Err(Error::Scenario("no shells in the constellation".into()));
        }
        let mut text = String::new();
        let mut grids = Vec::new();
        let mut max_gsl = Vec::new();
        for shell in shells {
            let first = max_gsl.len();
            text.push_str(&shell.tle_blocks(first)?);
            grids.push((first, shell.planes, shell.sats_per_plane));
            max_gsl.resize(first + shell.len(), shell.max_gsl_length_m);
        }
        let mut set = tle::parse("walker shells", &text)?;
        if let [(_, p, s)] = grids[..] {
            set.grid = Some((p, s));
        }
        Ok((set, grids, max_gsl))
    }

    /// Parses the CLI form `P:S:INC_DEG:ALT_KM[:REV_PER_DAY[:PHASING]]`; an empty
    /// REV_PER_DAY means "from the altitude"; PHASING is `half` (satgenpy, the
    /// default), `none`, or a Walker phasing factor F (an integer).
    pub fn from_spec(spec: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = |m: &str| {
            Error::Scenario(format!(
                "walker spec {spec:?}: {m} (expected P:S:INC_DEG:ALT_KM[:REV_PER_DAY[:PHASING]])"
            ))
        };
        if !(4..=6).contains(&parts.len()) {
            return Err(bad("wrong number of fields"));
        }
        let planes: usize = parts[0].parse().map_err(|_| bad("P is not an integer"))?;
        let sats: usize = parts[1].parse().map_err(|_| bad("S is not an integer"))?;
        let inc: f64 = parts[2]
            .parse()
            .map_err(|_| bad("inclination is not a number"))?;
        let alt_km: f64 = parts[3]
            .parse()
            .map_err(|_| bad("altitude is not a number"))?;
        if !(alt_km > 100.0 && alt_km < 40_000.0) {
            return Err(bad("altitude must be between 100 and 40000 km"));
        }
        let mm = match parts.get(4).filter(|m| !m.is_empty()) {
            Some(m) => m.parse().map_err(|_| bad("mean motion is not a number"))?,
            None => mean_motion_for_altitude(alt_km * 1000.0),
        };
        let phasing = match parts.get(5).copied() {
            None | Some("half") => Phasing::HalfSlotOddPlanes,
            Some("none") => Phasing::None,
            Some(f) => Phasing::WalkerF(
                f.parse()
                    .map_err(|_| bad("phasing must be half, none or an integer F"))?,
            ),
        };
        let shell = WalkerShell {
            name: format!("Walker-{planes}x{sats}"),
            planes,
            sats_per_plane: sats,
            inclination_deg: inc,
            altitude_m: alt_km * 1000.0,
            mean_motion_rev_per_day: mm,
            phasing,
            eccentricity: 1e-7,
            arg_of_perigee_deg: 0.0,
            max_gsl_length_m: max_gsl_for_min_elevation(alt_km * 1000.0, 25.0),
        };
        shell.validate()?;
        Ok(shell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuiper_first_lines_match_satgenpy() {
        // Produced by satgenpy 0.4.0 generate_tles_from_scratch_manual(
        //   ..., "Kuiper-630", 34, 34, True, 51.9, 0.0000001, 0.0, 14.80).
        let text = WalkerShell::preset("kuiper-k1")
            .unwrap()
            .to_tle_text()
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "34 34");
        assert_eq!(lines[1], "Kuiper-630 0");
        assert_eq!(
            lines[2],
            "1 00001U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    04"
        );
        assert_eq!(
            lines[3],
            "2 00001  51.9000   0.0000 0000001   0.0000   0.0000 14.80000000    02"
        );
        assert_eq!(lines.len(), 1 + 3 * 34 * 34);
    }

    #[test]
    fn unknown_preset_lists_known_ones() {
        let e = WalkerShell::preset("oneweb").unwrap_err().to_string();
        assert!(e.contains("oneweb") && e.contains("kuiper-k1"), "{e}");
    }

    #[test]
    fn shells_combine_with_offsets() {
        let a = WalkerShell::preset("transport-layer").unwrap();
        let b = WalkerShell::preset("telesat-t1").unwrap();
        let (set, grids, gsl) = WalkerShell::combine(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(set.sats.len(), 126 + 351);
        assert_eq!(grids, vec![(0, 6, 21), (126, 27, 13)]);
        assert_eq!(gsl[125], a.max_gsl_length_m);
        assert_eq!(gsl[126], b.max_gsl_length_m);
        assert_eq!(set.sats[126].name, "Telesat-1015 126");
        assert!(set.grid.is_none());
        let (one, _, _) = WalkerShell::combine(&[a]).unwrap();
        assert_eq!(one.grid, Some((6, 21)));
    }

    #[test]
    fn mean_motion_is_plausible() {
        let mm = mean_motion_for_altitude(550_000.0);
        assert!((mm - 15.05).abs() < 0.05, "{mm}");
        assert!(WalkerShell::from_spec("6:21:81:1000").is_ok());
        assert!(WalkerShell::from_spec("0:21:81:1000").is_err());
        assert!(WalkerShell::from_spec("6:21:81").is_err());
        let f1 = WalkerShell::from_spec("6:21:81:1000::1").unwrap();
        assert_eq!(f1.phasing, Phasing::WalkerF(1));
        assert!((f1.phasing.offset_deg(2, 6, 21) - 2.0 * 360.0 / 126.0).abs() < 1e-12);
        assert_eq!(
            WalkerShell::from_spec("6:21:81:1000:13.4:none")
                .unwrap()
                .phasing,
            Phasing::None
        );
        assert!(WalkerShell::from_spec("6:21:81:1000::x").is_err());
        assert!(WalkerShell::from_spec("6:21:181:1000").is_err());
        // Used to panic: attempt to multiply with overflow.
        let e = WalkerShell::from_spec("18446744073709551615:2:53:550").unwrap_err();
        assert!(e.to_string().contains("99,999"), "{e}");
    }
}
