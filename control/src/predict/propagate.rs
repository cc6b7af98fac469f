//! Orbit propagation with SGP4 (the `sgp4` crate, a port of Vallado's revised
//! SGP4, "Revisiting Spacetrack Report #3", AIAA 2006-6753) in AFSPC
//! compatibility mode with the WGS72 constants, as the TLEs are fitted with,
//! then TEME -> ECEF by GMST (see [`super::coords`]).
//!
//! Time: the scenario epoch is a UTC instant (for Walker shells, and any set
//! whose TLEs share one epoch, the TLE epoch; otherwise the latest TLE epoch of
//! the set, so no satellite is propagated backwards far). Every instant in
//! orbitmesh is an integer number of nanoseconds since that epoch.
//!
//! A satellite that cannot be propagated at an instant (SGP4 diverges: a
//! decaying satellite, or debris, propagated far from its TLE epoch; or the
//! position is below the Earth's surface, Vallado's error 6 "satellite has
//! decayed", which the `sgp4` crate does not report) has no position then:
//! [`Propagator::positions_or_left_out`] gives `None` for it, and routing
//! leaves it out of that step (no ISLs, no GSLs, not a relay).

use super::coords::{gmst_rad, julian_date, teme_km_to_ecef_m, Vec3, WGS72_A_M};
use super::geometry::Geometry;
use super::hypatia::HypatiaModel;
use super::tle::TleSet;
use super::Error;

/// Propagates a set of satellites to Earth-fixed positions.
#[derive(Debug)]
pub struct Propagator {
    constants: Vec<sgp4::Constants>,
    /// Minutes from each satellite's TLE epoch to the scenario epoch.
    offset_min: Vec<f64>,
    /// Each satellite's name and catalogue number, for messages.
    labels: Vec<String>,
    /// Julian date (UTC) of the scenario epoch.
    epoch_jd: f64,
    /// The scenario epoch.
    pub epoch: chrono::NaiveDateTime,
    /// With `--geometry hypatia`: the libastro model routing takes link
    /// lengths from (positions above stay the accurate ones).
    hypatia: Option<HypatiaModel>,
}

impl Propagator {
    /// Prepares SGP4 for every satellite; the scenario epoch is the latest TLE epoch.
    pub fn new(set: &TleSet) -> Result<Self, Error> {
        let epoch = set
            .sats
            .iter()
            .map(|t| t.elements.datetime)
            .max()
            .ok_or_else(|| Error::Scenario("the constellation has no satellites".into()))?;
        let mut constants = Vec::with_capacity(set.sats.len());
        let mut offset_min = Vec::with_capacity(set.sats.len());
        let mut labels = Vec::with_capacity(set.sats.len());
        for (i, t) in set.sats.iter().enumerate() {
            let label = format!("{} ({})", t.name, t.line1.get(2..7).unwrap_or("").trim());
            let c = sgp4::Constants::from_elements_afspc_compatibility_mode(&t.elements).map_err(
                |e| Error::Propagation {
                    sat: i,
                    reason: format!("{label}: {e}"),
                },
            )?;
            constants.push(c);
            labels.push(label);
            let d = epoch.signed_duration_since(t.elements.datetime);
            offset_min.push(d.num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6);
        }
        Ok(Self {
            constants,
            offset_min,
            labels,
            epoch_jd: julian_date(&epoch),
            epoch,
            hypatia: None,
        })
    }

    /// As [`Propagator::new`], with the link geometry of `geometry` (see
    /// [`super::geometry`]).
    pub fn with_geometry(set: &TleSet, geometry: Geometry) -> Result<Self, Error> {
        let mut p = Self::new(set)?;
        if geometry == Geometry::Hypatia {
            p.hypatia = Some(HypatiaModel::new(set, p.epoch)?);
        }
        Ok(p)
    }

    /// The geometry model link lengths come from.
    pub fn geometry(&self) -> Geometry {
        match self.hypatia {
            Some(_) => Geometry::Hypatia,
            None => Geometry::Accurate,
        }
    }

    /// The hypatia model, with `--geometry hypatia`.
    pub fn hypatia(&self) -> Option<&HypatiaModel> {
        self.hypatia.as_ref()
    }

    /// Number of satellites.
    pub fn len(&self) -> usize {
        self.constants.len()
    }

    /// True when there are no satellites.
    pub fn is_empty(&self) -> bool {
        self.constants.is_empty()
    }

    /// Satellite `sat`'s name and catalogue number, e.g. `STARLINK-24 (44238)`.
    pub fn label(&self, sat: usize) -> &str {
        self.labels.get(sat).map_or("", String::as_str)
    }

    /// GMST (radians) at `t_ns` after the scenario epoch.
    pub fn gmst_at(&self, t_ns: i64) -> f64 {
        gmst_rad(self.epoch_jd + t_ns as f64 / 86_400e9)
    }

    /// The TEME position (km) of satellite `sat` at `t_ns` after the scenario
    /// epoch; an error when SGP4 fails or the position is not above the
    /// Earth's surface.
    pub fn teme_km(&self, sat: usize, t_ns: i64) -> Result<[f64; 3], Error> {
        let minutes = self.offset_min[sat] + t_ns as f64 / 60e9;
        let bad = |why: String| Error::Propagation {
            sat,
            reason: format!("{} at t = {t_ns} ns: {why}", self.label(sat)),
        };
        let p = self.constants[sat]
            .propagate_afspc_compatibility_mode(sgp4::MinutesSinceEpoch(minutes))
            .map_err(|e| bad(e.to_string()))?
            .position;
        let r_km = p.iter().map(|c| c * c).sum::<f64>().sqrt();
        if r_km.is_nan() || r_km < WGS72_A_M / 1000.0 {
            return Err(bad(format!(
                "the satellite has decayed: SGP4 puts it {r_km:.1} km from the Earth's centre, \
                 below the surface ({} km)",
                WGS72_A_M / 1000.0
            )));
        }
        Ok(p)
    }

    /// The TEME position (km) and velocity (km/s) of satellite `sat` at `t_ns`
    /// after the scenario epoch, or `None` where [`Propagator::teme_km`] fails.
    pub fn teme_state(&self, sat: usize, t_ns: i64) -> Option<([f64; 3], [f64; 3])> {
        let p = self.teme_km(sat, t_ns).ok()?;
        let minutes = self.offset_min[sat] + t_ns as f64 / 60e9;
        let v = self.constants[sat]
            .propagate_afspc_compatibility_mode(sgp4::MinutesSinceEpoch(minutes))
            .ok()?
            .velocity;
        Some((p, v))
    }

    /// ECEF positions (metres) of all satellites at `t_ns`, written into `out`
    /// (resized to the number of satellites; no allocation once it has the
    /// size); `None` for a satellite that cannot be propagated then.
    pub fn positions_or_left_out(&self, t_ns: i64, out: &mut Vec<Option<Vec3>>) {
        let gmst = self.gmst_at(t_ns);
        out.resize(self.constants.len(), None);
        for (sat, slot) in out.iter_mut().enumerate() {
            *slot = self
                .teme_km(sat, t_ns)
                .ok()
                .map(|p| teme_km_to_ecef_m(p, gmst));
        }
    }

    /// As [`Propagator::positions_or_left_out`], but every satellite must
    /// propagate: the first that cannot is an error.
    pub fn positions_ecef(&self, t_ns: i64, out: &mut Vec<Vec3>) -> Result<(), Error> {
        let gmst = self.gmst_at(t_ns);
        out.resize(self.constants.len(), Vec3::default());
        for (sat, slot) in out.iter_mut().enumerate() {
            *slot = teme_km_to_ecef_m(self.teme_km(sat, t_ns)?, gmst);
        }
        Ok(())
    }
}
