//! Reference frames: TEME (the output of SGP4) -> Earth-fixed (ECEF) -> geodetic,
//! and ground positions given in geodetic coordinates -> ECEF.
//!
//! Follows Vallado, Crawford, Hujsak and Kelso, "Revisiting Spacetrack Report #3"
//! (AIAA 2006-6753), section "Coordinate systems": TEME is rotated into a
//! pseudo-Earth-fixed frame by the Greenwich mean sidereal time (GMST, IAU-82
//! expression, `gstime` in Vallado's code), with UT1 taken equal to UTC and polar
//! motion ignored. Ground stations are converted with satgenpy's own
//! `geodetic2cartesian`: the WGS72 ellipsoid, a = 6378135 m, f = 1/298.26.
//!
//! This is NOT what satgenpy's link lengths come from: satgenpy takes them from
//! PyEphem (libastro), whose SGP4, Earth radius, sidereal time and station
//! ellipsoid all differ from these, and which stores ranges as f32 (see
//! [`super::geometry`] for the differences and their size, and
//! [`super::hypatia`] for that model, `--geometry hypatia`).
//!
//! All positions are in metres.

/// WGS72 equatorial radius in metres (satgenpy `EARTH_RADIUS`).
pub const WGS72_A_M: f64 = 6_378_135.0;
/// WGS72 flattening.
pub const WGS72_F: f64 = 1.0 / 298.26;
/// Speed of light in vacuum, m/s (satgenpy uses the same value for RTTs).
pub const SPEED_OF_LIGHT_M_S: f64 = 299_792_458.0;
/// Julian date of the J2000 epoch (2000-01-01 12:00 TT, used here as UTC).
pub const JD_J2000: f64 = 2_451_545.0;

/// A Cartesian position in metres.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vec3 {
    /// x (towards the Greenwich meridian on the equator, in ECEF)
    pub x: f64,
    /// y
    pub y: f64,
    /// z (towards the north pole)
    pub z: f64,
}

impl Vec3 {
    /// A vector from its three components.
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }
    /// Dot product.
    pub fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    /// Euclidean norm.
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    /// Straight-line distance between two points.
    pub fn dist(self, o: Self) -> f64 {
        (self - o).norm()
    }
}

impl std::ops::Sub for Vec3 {
    type Output = Vec3;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

/// Greenwich mean sidereal time in radians for a Julian date (UT1 = UTC),
/// IAU-82 expression (Vallado `gstime`).
pub fn gmst_rad(jd_ut1: f64) -> f64 {
    let tut1 = (jd_ut1 - JD_J2000) / 36_525.0;
    let secs = -6.2e-6 * tut1 * tut1 * tut1
        + 0.093_104 * tut1 * tut1
        + (876_600.0 * 3600.0 + 8_640_184.812_866) * tut1
        + 67_310.548_41;
    (secs.to_radians() / 240.0).rem_euclid(std::f64::consts::TAU)
}

/// Rotates a TEME position (km, as SGP4 returns it) into ECEF (metres) at the
/// given GMST: a rotation about z by -GMST.
pub fn teme_km_to_ecef_m(teme_km: [f64; 3], gmst: f64) -> Vec3 {
    let (s, c) = gmst.sin_cos();
    let [x, y, z] = teme_km;
    Vec3::new(
        (c * x + s * y) * 1000.0,
        (-s * x + c * y) * 1000.0,
        z * 1000.0,
    )
}

/// satgenpy's `geodetic2cartesian`: WGS72 geodetic (degrees, metres) -> ECEF (metres).
pub fn geodetic_to_ecef(lat_deg: f64, lon_deg: f64, elevation_m: f64) -> Vec3 {
    let e2 = 2.0 * WGS72_F - WGS72_F * WGS72_F;
    let lat = lat_deg.to_radians();
    let lon = lon_deg.to_radians();
    let v = WGS72_A_M / (1.0 - e2 * lat.sin() * lat.sin()).sqrt();
    Vec3::new(
        (v + elevation_m) * lat.cos() * lon.cos(),
        (v + elevation_m) * lat.cos() * lon.sin(),
        (v * (1.0 - e2) + elevation_m) * lat.sin(),
    )
}

/// ECEF (metres) -> WGS72 geodetic (latitude deg, longitude deg, height m),
/// by Bowring's iteration (converges to sub-millimetre in a few rounds for LEO).
pub fn ecef_to_geodetic(p: Vec3) -> (f64, f64, f64) {
    let e2 = 2.0 * WGS72_F - WGS72_F * WGS72_F;
    let lon = p.y.atan2(p.x);
    let r = (p.x * p.x + p.y * p.y).sqrt();
    let mut lat = p.z.atan2(r * (1.0 - e2));
    let mut h = 0.0;
    for _ in 0..6 {
        let n = WGS72_A_M / (1.0 - e2 * lat.sin() * lat.sin()).sqrt();
        h = if lat.cos().abs() > 1e-9 {
            r / lat.cos() - n
        } else {
            p.z.abs() - n * (1.0 - e2)
        };
        lat = p.z.atan2(r * (1.0 - e2 * n / (n + h)));
    }
    (lat.to_degrees(), lon.to_degrees(), h)
}

/// Elevation angle (radians) of `target` seen from `observer` on the WGS72
/// ellipsoid at geodetic latitude/longitude (degrees): the angle between the
/// line of sight and the local horizontal plane (the plane normal to the
/// ellipsoid normal).
pub fn elevation_rad(observer: Vec3, lat_deg: f64, lon_deg: f64, target: Vec3) -> f64 {
    let (lat, lon) = (lat_deg.to_radians(), lon_deg.to_radians());
    let up = Vec3::new(lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin());
    let los = target - observer;
    (los.dot(up) / los.norm()).clamp(-1.0, 1.0).asin()
}

/// Smallest distance from the Earth's centre to the segment `a`-`b`: a link
/// whose segment comes closer than R + 80 km is not made (it would graze the
/// atmosphere or go through the Earth).
pub fn segment_min_radius(a: Vec3, b: Vec3) -> f64 {
    let d = b - a;
    let len2 = d.dot(d);
    if len2 == 0.0 {
        return a.norm();
    }
    let t = (-a.dot(d) / len2).clamp(0.0, 1.0);
    Vec3::new(a.x + t * d.x, a.y + t * d.y, a.z + t * d.z).norm()
}

/// Julian date (UTC) of a calendar instant.
pub fn julian_date(dt: &chrono::NaiveDateTime) -> f64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .unwrap_or_default();
    let delta = dt.signed_duration_since(epoch);
    let ns = delta
        .num_nanoseconds()
        .map(|n| n as f64 / 1e9)
        .unwrap_or(delta.num_milliseconds() as f64 / 1e3);
    JD_J2000 + ns / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodetic_round_trip() {
        for &(lat, lon, h) in &[
            (35.6895, 139.69171, 0.0),
            (-60.0, -120.0, 550_000.0),
            (89.9, 10.0, 1000.0),
        ] {
            let p = geodetic_to_ecef(lat, lon, h);
            let (la, lo, hh) = ecef_to_geodetic(p);
            assert!((la - lat).abs() < 1e-9, "{la} {lat}");
            assert!((lo - lon).abs() < 1e-9);
            assert!((hh - h).abs() < 1e-3, "{hh} {h}");
        }
    }

    #[test]
    fn gmst_at_j2000() {
        // Vallado example 3-5 family: GMST at J2000.0 is 280.46061837 deg.
        let g = gmst_rad(JD_J2000).to_degrees();
        assert!((g - 280.460_618_37).abs() < 1e-6, "{g}");
    }

    #[test]
    fn zenith_elevation_is_90_degrees() {
        let gs = geodetic_to_ecef(10.0, 20.0, 0.0);
        let sat = geodetic_to_ecef(10.0, 20.0, 550_000.0);
        let el = elevation_rad(gs, 10.0, 20.0, sat).to_degrees();
        assert!((el - 90.0).abs() < 1e-6, "{el}");
        assert!((gs.dist(sat) - 550_000.0).abs() < 1e-6);
    }

    #[test]
    fn segment_through_earth_is_low() {
        let a = geodetic_to_ecef(0.0, 0.0, 550_000.0);
        let b = geodetic_to_ecef(0.0, 180.0, 550_000.0);
        assert!(segment_min_radius(a, b) < 1.0);
        let c = geodetic_to_ecef(0.0, 1.0, 550_000.0);
        assert!(segment_min_radius(a, c) > WGS72_A_M + 500_000.0);
    }
}
