//! Orbit propagation with SGP4 (the `sgp4` crate, a port of Vallado's revised
//! SGP4, "Revisiting Spacetrack Report #3", AIAA 2006-6753) in AFSPC
//! compatibility mode with the WGS72 constants, as the TLEs are fitted with,
//! then TEME -> ECEF by GMST (see [`super::frames`]).
//!
//! Time: the scenario epoch is a UTC instant (for Walker shells, and any set
//! whose TLEs share one epoch, the TLE epoch; otherwise the latest TLE epoch of
//! the set, so no satellite is propagated backwards far). Every instant in
//! orbitmesh is an integer number of nanoseconds since that epoch.

use super::frames::{gmst_rad, julian_date, teme_km_to_ecef_m, Vec3};
use super::tle::TleSet;
use super::Error;

/// Propagates a set of satellites to Earth-fixed positions.
#[derive(Debug)]
pub struct Propagator {
    constants: Vec<sgp4::Constants>,
    /// Minutes from each satellite's TLE epoch to the scenario epoch.
    offset_min: Vec<f64>,
    /// Julian date (UTC) of the scenario epoch.
    epoch_jd: f64,
    /// The scenario epoch.
    pub epoch: chrono::NaiveDateTime,
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
        for (i, t) in set.sats.iter().enumerate() {
            let c = sgp4::Constants::from_elements_afspc_compatibility_mode(&t.elements).map_err(
                |e| Error::Propagation {
                    sat: i,
                    reason: format!("{} ({}): {e}", t.name, t.line1.get(2..7).unwrap_or("")),
                },
            )?;
            constants.push(c);
            let d = epoch.signed_duration_since(t.elements.datetime);
            offset_min.push(d.num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6);
        }
        Ok(Self {
            constants,
            offset_min,
            epoch_jd: julian_date(&epoch),
            epoch,
        })
    }

    /// Number of satellites.
    pub fn len(&self) -> usize {
        self.constants.len()
    }

    /// True when there are no satellites.
    pub fn is_empty(&self) -> bool {
        self.constants.is_empty()
    }

    /// GMST (radians) at `t_ns` after the scenario epoch.
    pub fn gmst_at(&self, t_ns: i64) -> f64 {
        gmst_rad(self.epoch_jd + t_ns as f64 / 86_400e9)
    }

    /// The TEME position (km) of satellite `sat` at `t_ns` after the scenario epoch.
    pub fn teme_km(&self, sat: usize, t_ns: i64) -> Result<[f64; 3], Error> {
        let minutes = self.offset_min[sat] + t_ns as f64 / 60e9;
        self.constants[sat]
            .propagate_afspc_compatibility_mode(sgp4::MinutesSinceEpoch(minutes))
            .map(|p| p.position)
            .map_err(|e| Error::Propagation {
                sat,
                reason: format!("at t = {t_ns} ns: {e}"),
            })
    }

    /// ECEF positions (metres) of all satellites at `t_ns`, written into `out`
    /// (resized to the number of satellites; no allocation once it has the size).
    pub fn positions_ecef(&self, t_ns: i64, out: &mut Vec<Vec3>) -> Result<(), Error> {
        let gmst = self.gmst_at(t_ns);
        out.resize(self.constants.len(), Vec3::default());
        for (sat, slot) in out.iter_mut().enumerate() {
            *slot = teme_km_to_ecef_m(self.teme_km(sat, t_ns)?, gmst);
        }
        Ok(())
    }
}
