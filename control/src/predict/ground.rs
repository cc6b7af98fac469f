//! Ground stations and ground-to-satellite links (GSLs).
//!
//! Stations are read from Hypatia's "basic" format, one per line:
//! `id,name,latitude_deg,longitude_deg,elevation_m`, ids counting 0, 1, 2, ...
//! (satgenpy `read_ground_stations_basic`). Their Earth-fixed positions use
//! satgenpy's WGS72 `geodetic2cartesian` ([`super::coords::geodetic_to_ecef`]).
//! Node numbering follows satgenpy: station `i` is node `N + i` for N satellites.
//!
//! Visibility as in satgenpy's `generate_dynamic_state`: a station can use every
//! satellite whose straight-line distance is at most the maximum GSL length
//! (the "free" model of `algorithm_free_one_only_over_isls`: one GSL interface
//! per station that may send to any satellite in range). Optionally a minimum
//! elevation angle above the local ellipsoid horizon is applied as well.

use super::coords::{elevation_rad, geodetic_to_ecef, Vec3};
use super::Error;

/// One ground station.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundStation {
    /// Station index (0-based; node id is N + index).
    pub index: usize,
    /// City name.
    pub name: String,
    /// Geodetic latitude, degrees.
    pub lat_deg: f64,
    /// Geodetic longitude, degrees.
    pub lon_deg: f64,
    /// Height above the WGS72 ellipsoid, metres.
    pub elevation_m: f64,
    /// Earth-fixed position, metres.
    pub ecef: Vec3,
}

impl GroundStation {
    /// A station from its geodetic position; refuses out-of-range coordinates.
    pub fn new(
        index: usize,
        name: &str,
        lat_deg: f64,
        lon_deg: f64,
        elevation_m: f64,
    ) -> Result<Self, Error> {
        if !(-90.0..=90.0).contains(&lat_deg) {
            return Err(Error::GroundStation {
                line: index + 1,
                reason: format!("{name}: latitude {lat_deg} is outside -90..90 degrees"),
            });
        }
        if !(-180.0..=180.0).contains(&lon_deg) {
            return Err(Error::GroundStation {
                line: index + 1,
                reason: format!("{name}: longitude {lon_deg} is outside -180..180 degrees"),
            });
        }
        if !(-1_000.0..=100_000.0).contains(&elevation_m) {
            return Err(Error::GroundStation {
                line: index + 1,
                reason: format!("{name}: elevation {elevation_m} m is outside -1000..100000 m"),
            });
        }
        Ok(Self {
            index,
            name: name.to_string(),
            lat_deg,
            lon_deg,
            elevation_m,
            ecef: geodetic_to_ecef(lat_deg, lon_deg, elevation_m),
        })
    }
}

/// `s` quoted for an error message, cut after 60 characters: a 3 MB line
/// is not echoed whole.
fn quoted(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}... ({} bytes)", &s[..cut], s.len()),
        None => format!("{s:?}"),
    }
}

/// Parses the basic ground-station format.
pub fn parse(text: &str) -> Result<Vec<GroundStation>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| Error::GroundStation {
            line: i + 1,
            reason,
        };
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 5 {
            return Err(bad(format!(
                "expected 5 fields id,name,lat,lon,elevation, got {}: {}",
                f.len(),
                quoted(line)
            )));
        }
        let id: usize = f[0]
            .trim()
            .parse()
            .map_err(|_| bad(format!("id {} is not a non-negative integer", quoted(f[0]))))?;
        if id != out.len() {
            return Err(bad(format!(
                "id {id} must be {} (ids count up from 0)",
                out.len()
            )));
        }
        let num = |what: &str, s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("{what} {} is not a number", quoted(s))))
        };
        let lat = num("latitude", f[2])?;
        let lon = num("longitude", f[3])?;
        let ele = num("elevation", f[4])?;
        out.push(
            GroundStation::new(id, f[1].trim(), lat, lon, ele).map_err(|e| match e {
                Error::GroundStation { reason, .. } => bad(reason),
                other => other,
            })?,
        );
    }
    Ok(out)
}

/// Reads a ground-station file.
pub fn read(path: &std::path::Path) -> Result<Vec<GroundStation>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    parse(&text).map_err(|e| match e {
        Error::GroundStation { line, reason } => Error::GroundStation {
            line,
            reason: format!("{}: {reason}", path.display()),
        },
        other => other,
    })
}

/// Which satellites a ground station may link to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GslPolicy {
    /// Maximum slant range, metres (satgenpy `max_gsl_length_m`).
    pub max_length_m: f64,
    /// Optional minimum elevation angle, degrees.
    pub min_elevation_deg: Option<f64>,
}

impl GslPolicy {
    /// The slant range if `sat` is usable from `gs`, else `None`.
    #[inline]
    pub fn link(&self, gs: &GroundStation, sat: Vec3) -> Option<f64> {
        self.link_within(gs, sat, self.max_length_m)
    }

    /// As [`GslPolicy::link`] with another maximum slant range (a satellite of
    /// a shell whose range differs, in a multi-shell scenario).
    #[inline]
    pub fn link_within(&self, gs: &GroundStation, sat: Vec3, max_length_m: f64) -> Option<f64> {
        let d = gs.ecef.dist(sat);
        if d > max_length_m {
            return None;
        }
        if let Some(min_el) = self.min_elevation_deg {
            if elevation_rad(gs.ecef, gs.lat_deg, gs.lon_deg, sat).to_degrees() < min_el {
                return None;
            }
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let gs = parse("0,Tokyo,35.6895,139.69171,0\n1,Delhi,28.66667,77.21667,0\n").unwrap();
        assert_eq!(gs.len(), 2);
        assert_eq!(gs[1].name, "Delhi");
        let e = parse("0,Nowhere,95.0,10.0,0\n").unwrap_err().to_string();
        assert!(e.contains("latitude") && e.contains("95"), "{e}");
        let e = parse("0,Nowhere,45.0,190.0,0\n").unwrap_err().to_string();
        assert!(e.contains("longitude"), "{e}");
        assert!(parse("0,A,1,2\n").is_err());
        assert!(parse("1,A,1,2,0\n").is_err());
        assert!(parse("0,A,x,2,0\n").is_err());
        let long = "a".repeat(3_000_000);
        for text in [
            long.clone(),
            format!("0,A,{long},2,0"),
            format!("{long},A,1,2,0"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.len() < 300 && e.contains("(3000000 bytes)"),
                "{}",
                e.len()
            );
        }
    }

    #[test]
    fn zenith_satellite_slant_range_equals_altitude() {
        let gs = GroundStation::new(0, "x", 47.0, 8.0, 0.0).unwrap();
        let sat = geodetic_to_ecef(47.0, 8.0, 630_000.0);
        let policy = GslPolicy {
            max_length_m: 1_260_000.0,
            min_elevation_deg: Some(30.0),
        };
        let d = policy.link(&gs, sat).unwrap();
        assert!((d - 630_000.0).abs() < 1e-6, "{d}");
        // The antipode is never linked, even with an unbounded slant range.
        let far = geodetic_to_ecef(-47.0, -172.0, 630_000.0);
        let open = GslPolicy {
            max_length_m: f64::INFINITY,
            min_elevation_deg: Some(0.0),
        };
        assert!(open.link(&gs, far).is_none());
    }
}
