//! Which geometry model turns orbits and station coordinates into link
//! lengths: `accurate` (the default) or `hypatia` (bit-for-bit satgenpy 0.4.0).
//!
//! - `accurate` ([`super::propagate`], [`super::coords`]): Vallado's revised
//!   SGP4 (the `sgp4` crate, WGS72 constants, AFSPC mode), TEME -> ECEF by the
//!   IAU-82 GMST, stations on the WGS72 ellipsoid (satgenpy's
//!   `geodetic2cartesian`), all lengths straight-line distances in f64.
//! - `hypatia` ([`super::hypatia`]): what satgenpy gets from PyEphem 4.2.1
//!   (libastro): the 1980 Spacetrack Report #3 SGP4 with elements stored as
//!   f32 and no eccentricity clamp, scaled by libastro's Earth radius
//!   6378.16 km instead of 6378.135 km (satellites ~27.5 m higher), the
//!   N3EMO `orbit` program's Newcomb sidereal time, stations on libastro's
//!   own ellipsoid (R 6378.16 km, f = 1/298.25, latitude adjusted by
//!   `atan(tan(lat) / (1 - f^2))`), GSL ranges stored as f32 metres, and ISL
//!   lengths from satgenpy's law of cosines on two f32 ranges and an angular
//!   separation seen from (0 N, 0 E).
//!
//! The two differ by tens of metres per link (measured: bench/results/
//! predictor.md, "Geometry models"): GSL lengths by up to ~50 m with a sign
//! that changes from station to station, ISL lengths by a few metres (the
//! f32 azimuth behind the separation angle alone is ~5e-7 rad, metres at
//! 10,000 km). RTTs agree within ~0.5 us, but a link within metres of the
//! GSL range limit, or two near-equal paths, can be decided differently.
//! Use `hypatia` to reproduce satgenpy's results step for step; `accurate`
//! otherwise (it also propagates deep-space TLEs, which `hypatia` refuses).

use serde::{Deserialize, Serialize};

/// The geometry model of a scenario (`predict --geometry`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Geometry {
    /// Vallado's SGP4 (WGS72), IAU-82 GMST, WGS72 stations, f64 lengths.
    #[default]
    Accurate,
    /// satgenpy 0.4.0 through PyEphem/libastro, f32 ranges included.
    Hypatia,
}

impl Geometry {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Geometry::Accurate => "accurate",
            Geometry::Hypatia => "hypatia",
        }
    }
}
