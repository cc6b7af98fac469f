//! The `hypatia` geometry: satellite positions, ground-station sites, GSL
//! ranges and ISL lengths computed exactly as Hypatia's satgenpy 0.4.0 computes
//! them through PyEphem 4.2.1 (libastro), so every in-range decision and every
//! link weight equals satgenpy's, float32 storage included.
//!
//! Followed, function by function (our own code, written from the published
//! sources):
//! - TLE reading: libastro `dbfmt.c` `db_tle` (`tle_fld`, `tle_expfld`):
//!   inclination, RAAN, eccentricity, argument of perigee, mean anomaly, decay
//!   and drag are stored as `float` (f32), the mean motion and epoch as `double`;
//!   the epoch via `mjd.c` `cal_mjd`.
//! - Dates: satgenpy passes `str(astropy Time)` (milliseconds) to PyEphem, which
//!   parses it (`_libastro.c` `parse_mjd_from_string`, `scansexa`) into a
//!   modified Julian date (days since 1899-12-31 12:00) with `cal_mjd`.
//! - Propagation: `earthsat.c` `esat_prop` -> `sgp4.c` `sgp4`, the original
//!   Spacetrack Report #3 near-earth SGP4 with its own constants (`TOTHRD`
//!   = .66666667, `TWOPI` = 6.2831853, no eccentricity clamp), elements
//!   converted to f32 radians, output in Earth radii scaled by libastro's
//!   `ERAD` = 6378.16 km (not WGS72's 6378.135 km).
//! - Sites and range: `earthsat.c` `obj_earthsat`, `InitOrbitRoutines` (the
//!   sidereal reference of the N3EMO `orbit` program, Newcomb's expression
//!   for the day), `GetSitPosition` (libastro's ellipsoid R = 6378.16 km,
//!   f = 1/298.25, with its latitude adjustment
//!   `atan(tan(lat) / (1 - f^2))`), `GetRange`, `GetBearings`; the range is
//!   stored as f32 metres (`s_range`).
//! - ISL lengths: satgenpy `distance_m_between_satellites`: both satellites
//!   seen from an observer at latitude 0, longitude 0, elevation 0, their
//!   angular separation (`_libastro.c` `separation` on the topocentric
//!   `s_ra`/`s_dec` that `obj_earthsat` derives with `aa_hadec.c` from the
//!   f32 azimuth), then the law of cosines on the two f32 ranges.
//! - GSL lengths: satgenpy `distance_m_ground_station_to_satellite`: the f32
//!   range from an observer at the station, whose latitude and longitude are
//!   the "%f" strings of satgenpy's `extend_ground_stations`.
//!
//! Two things are not reproduced, both without effect on any decision: the
//! nutation term of the local sidereal time (`now_lst`) shifts the right
//! ascension of both satellites of an ISL by the same angle, so it changes
//! their separation only by rounding (below 1e-8 m of ISL length); and
//! deep-space (SDP4, period >= 225 min) satellites are refused, satgenpy's
//! scenarios being LEO.
//!
//! As in satgenpy, a satellite is left out of a step only where libastro
//! gives no position (NaN, or more than 365 days from its TLE epoch,
//! `crazyOp`); a decayed object keeps the position libastro computes.

use super::coords::Vec3;
use super::ground::GroundStation;
use super::tle::TleSet;
use super::Error;

/// libastro `PI` (astro.h: 3.141592653589793, the same double).
const PI: f64 = std::f64::consts::PI;
/// libastro `ERAD`, the Earth's equatorial radius, metres.
const ERAD: f64 = 6.37816e6;
/// `earthsat.c` `EarthRadius`, km.
const EARTH_RADIUS_KM: f64 = 6378.16;
/// `earthsat.c` `EarthFlat`.
const EARTH_FLAT: f64 = 1.0 / 298.25;
/// `earthsat.c` `SiderealSolar`.
const SIDEREAL_SOLAR: f64 = 1.002_737_909_3;
/// libastro `SIDRATE`.
const SIDRATE: f64 = 0.997_269_567_7;
/// libastro `MJD0` and `J2000` (as an mjd).
const MJD0: f64 = 2_415_020.0;
const J2000_MJD: f64 = 2_451_545.0 - MJD0;
/// Minutes per day (`esat_prop` `MPD`).
const MPD: f64 = 1440.0;

// sgp4.c's own constants (not deepconst.h's).
const CK2: f64 = 5.413080e-04;
const CK4: f64 = 6.209887e-07;
const QOMS2T: f64 = 1.880279e-09;
const S: f64 = 1.012229e+00;
const AE: f64 = 1.0;
const E6A: f64 = 1.0e-12;
const TOTHRD: f64 = 0.666_666_67;
/// sgp4.c's truncated 2 pi, which its Kepler solve reduces angles by.
#[allow(clippy::approx_constant)]
const TWOPI_SGP4: f64 = 6.283_185_3;
const XJ3: f64 = -0.253881e-5;
const XKE: f64 = 0.743669161e-1;
const XKMPER: f64 = 6378.135;

/// `misc.c`/`mjd.c` `range`: `v - r * floor(v / r)`.
fn range(v: f64, r: f64) -> f64 {
    v - r * (v / r).floor()
}

/// libastro `degrad`: `x * PI / 180.`.
fn degrad(x: f64) -> f64 {
    x * PI / 180.0
}

/// `mjd.c` `cal_mjd` for a Gregorian date: month, day (with fraction), year.
fn cal_mjd(mn: i32, dy: f64, yr: i32) -> f64 {
    let (mut m, mut y) = (mn, if yr < 0 { yr + 1 } else { yr });
    if mn < 3 {
        m += 12;
        y -= 1;
    }
    let b = if yr < 1582 || (yr == 1582 && (mn < 10 || (mn == 10 && dy < 15.0))) {
        0
    } else {
        let a = y / 100;
        2 - a + a / 4
    };
    let c: i64 = if y < 0 {
        ((365.25 * f64::from(y)) - 0.75) as i64 - 694_025
    } else {
        (365.25 * f64::from(y)) as i64 - 694_025
    };
    let d = (30.6001 * f64::from(m + 1)) as i32;
    // C: `b + c + d + dy - 0.5`, integers summed first.
    (i64::from(b) + c + i64::from(d)) as f64 + dy - 0.5
}

/// The elements of one satellite as libastro holds them, with the SGP4
/// initialisation (`sgp4.c`, the block under `if(!sat->prop.sgp4)`).
#[derive(Debug, Clone)]
struct Sat {
    /// `es_epoch`, mjd.
    epoch_mjd: f64,
    xmo: f32,
    xnodeo: f32,
    omegao: f32,
    eo: f32,
    xincl: f32,
    bstar: f32,
    xno: f64,
    init: Sgp4Init,
}

/// sgp4.c's per-satellite constants.
#[derive(Debug, Clone, Default)]
struct Sgp4Init {
    simple: bool,
    aodp: f64,
    aycof: f64,
    c1: f64,
    c4: f64,
    c5: f64,
    cosio: f64,
    d2: f64,
    d3: f64,
    d4: f64,
    delmo: f64,
    eta: f64,
    omgcof: f64,
    omgdot: f64,
    sinio: f64,
    sinmo: f64,
    t2cof: f64,
    t3cof: f64,
    t4cof: f64,
    t5cof: f64,
    x1mth2: f64,
    x3thm1: f64,
    x7thm1: f64,
    xlcof: f64,
    xmcof: f64,
    xmdot: f64,
    xnodcf: f64,
    xnodot: f64,
    xnodp: f64,
}

/// A TLE field, columns `from..=thru` (1-based), as `tle_fld` reads it.
fn tle_fld(l: &str, from: usize, thru: usize) -> Result<f64, String> {
    let s = l
        .get(from - 1..thru.min(l.len()))
        .ok_or_else(|| format!("line too short for columns {from}-{thru}"))?
        .trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return Ok(0.0);
    }
    // strtod reads "-.5" and ".5"; Rust does too (and "inf", "NaN",
    // which no TLE holds: refused).
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("columns {from}-{thru} ({s:?}) are not a number"))
}

/// `tle_expfld`: an implied-decimal field with exponent, e.g. ` 12345-3`.
fn tle_expfld(l: &str, start: usize) -> Result<f64, String> {
    let mant = l
        .get(start..start + 5)
        .ok_or_else(|| format!("line too short at column {start}"))?;
    let mant = if mant.trim().is_empty() {
        0.0
    } else {
        format!(".{}", mant.trim_end())
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("field at column {} ({mant:?}) is not a number", start + 1))?
    };
    let mut v = mant * 10f64.powf(tle_fld(l, start + 6, start + 7)?);
    if l.as_bytes().get(start - 1) == Some(&b'-') {
        v = -v;
    }
    Ok(v)
}

impl Sat {
    /// From a TLE's two lines, as `db_tle` then `esat_prop` convert them.
    fn from_tle(l1: &str, l2: &str) -> Result<Self, String> {
        let drag = tle_expfld(l1, 54)? as f32;
        let mut yr = tle_fld(l1, 19, 20)? as i32;
        if yr < 57 {
            yr += 100;
        }
        let epoch_mjd = cal_mjd(1, tle_fld(l1, 21, 32)?, yr + 1900);
        let es_n = tle_fld(l2, 53, 63)?;
        let es_inc = tle_fld(l2, 9, 16)? as f32;
        let es_raan = tle_fld(l2, 18, 25)? as f32;
        let es_e = (tle_fld(l2, 27, 33)? * 1e-7) as f32;
        let es_ap = tle_fld(l2, 35, 42)? as f32;
        let es_m = tle_fld(l2, 44, 51)? as f32;
        if es_e <= 0.0 || es_e >= 1.0 {
            // SGP4's initialisation divides by the eccentricity (c3,
            // xmcof): e = 0 gives NaN positions, so the satellite would
            // vanish without a word. satgenpy writes e >= 1e-7 for this.
            return Err(format!(
                "eccentricity {es_e} is outside ]0, 1[, which libastro's SGP4 cannot \
                 propagate"
            ));
        }
        let xno = es_n * (2.0 * PI / MPD);
        if xno < 1.0 / 225.0 {
            return Err(format!(
                "{es_n} revolutions per day is a deep-space orbit (SDP4), which the hypatia \
                 geometry does not model"
            ));
        }
        let mut sat = Sat {
            epoch_mjd,
            xmo: degrad(f64::from(es_m)) as f32,
            xnodeo: degrad(f64::from(es_raan)) as f32,
            omegao: degrad(f64::from(es_ap)) as f32,
            eo: es_e,
            xincl: degrad(f64::from(es_inc)) as f32,
            bstar: drag,
            xno,
            init: Sgp4Init::default(),
        };
        sat.init = sat.sgp4_init();
        Ok(sat)
    }

    /// sgp4.c initialisation. Operator order and float/double promotion as
    /// in C (`EO * EO` is a float product).
    #[allow(clippy::many_single_char_names)]
    fn sgp4_init(&self) -> Sgp4Init {
        let (eo, xincl, omegao, xmo) = (
            f64::from(self.eo),
            f64::from(self.xincl),
            f64::from(self.omegao),
            f64::from(self.xmo),
        );
        let bstar = f64::from(self.bstar);
        let xno = self.xno;
        let mut k = Sgp4Init::default();
        let a1 = (XKE / xno).powf(TOTHRD);
        k.cosio = xincl.cos();
        let theta2 = k.cosio * k.cosio;
        k.x3thm1 = 3.0 * theta2 - 1.0;
        let eosq = f64::from(self.eo * self.eo);
        let betao2 = 1.0 - eosq;
        let betao = betao2.sqrt();
        let del1 = 1.5 * CK2 * k.x3thm1 / (a1 * a1 * betao * betao2);
        let ao = a1 * (1.0 - del1 * (0.5 * TOTHRD + del1 * (1.0 + 134.0 / 81.0 * del1)));
        let delo = 1.5 * CK2 * k.x3thm1 / (ao * ao * betao * betao2);
        k.xnodp = xno / (1.0 + delo);
        k.aodp = ao / (1.0 - delo);
        k.simple = (k.aodp * (1.0 - eo) / AE) < (220.0 / XKMPER + AE);
        let mut s4 = S;
        let mut qoms24 = QOMS2T;
        let perige = (k.aodp * (1.0 - eo) - AE) * XKMPER;
        if perige < 156.0 {
            s4 = perige - 78.0;
            if perige <= 98.0 {
                s4 = 20.0;
            }
            qoms24 = ((120.0 - s4) * AE / XKMPER).powf(4.0);
            s4 = s4 / XKMPER + AE;
        }
        let pinvsq = 1.0 / (k.aodp * k.aodp * betao2 * betao2);
        let tsi = 1.0 / (k.aodp - s4);
        k.eta = k.aodp * eo * tsi;
        let etasq = k.eta * k.eta;
        let eeta = eo * k.eta;
        let psisq = (1.0 - etasq).abs();
        let coef = qoms24 * tsi.powf(4.0);
        let coef1 = coef / psisq.powf(3.5);
        let c2 = coef1
            * k.xnodp
            * (k.aodp * (1.0 + 1.5 * etasq + eeta * (4.0 + etasq))
                + 0.75 * CK2 * tsi / psisq * k.x3thm1 * (8.0 + 3.0 * etasq * (8.0 + etasq)));
        k.c1 = bstar * c2;
        k.sinio = xincl.sin();
        let a3ovk2 = -XJ3 / CK2 * AE.powf(3.0);
        let c3 = coef * tsi * a3ovk2 * k.xnodp * AE * k.sinio / eo;
        k.x1mth2 = 1.0 - theta2;
        k.c4 = 2.0
            * k.xnodp
            * coef1
            * k.aodp
            * betao2
            * (k.eta * (2.0 + 0.5 * etasq) + eo * (0.5 + 2.0 * etasq)
                - 2.0 * CK2 * tsi / (k.aodp * psisq)
                    * (-3.0 * k.x3thm1 * (1.0 - 2.0 * eeta + etasq * (1.5 - 0.5 * eeta))
                        + 0.75
                            * k.x1mth2
                            * (2.0 * etasq - eeta * (1.0 + etasq))
                            * (2.0 * omegao).cos()));
        k.c5 = 2.0 * coef1 * k.aodp * betao2 * (1.0 + 2.75 * (etasq + eeta) + eeta * etasq);
        let theta4 = theta2 * theta2;
        let temp1 = 3.0 * CK2 * pinvsq * k.xnodp;
        let temp2 = temp1 * CK2 * pinvsq;
        let temp3 = 1.25 * CK4 * pinvsq * pinvsq * k.xnodp;
        k.xmdot = k.xnodp
            + 0.5 * temp1 * betao * k.x3thm1
            + 0.0625 * temp2 * betao * (13.0 - 78.0 * theta2 + 137.0 * theta4);
        let x1m5th = 1.0 - 5.0 * theta2;
        k.omgdot = -0.5 * temp1 * x1m5th
            + 0.0625 * temp2 * (7.0 - 114.0 * theta2 + 395.0 * theta4)
            + temp3 * (3.0 - 36.0 * theta2 + 49.0 * theta4);
        let xhdot1 = -temp1 * k.cosio;
        k.xnodot = xhdot1
            + (0.5 * temp2 * (4.0 - 19.0 * theta2) + 2.0 * temp3 * (3.0 - 7.0 * theta2)) * k.cosio;
        k.omgcof = bstar * c3 * omegao.cos();
        k.xmcof = -TOTHRD * coef * bstar * AE / eeta;
        k.xnodcf = 3.5 * betao2 * xhdot1 * k.c1;
        k.t2cof = 1.5 * k.c1;
        k.xlcof = 0.125 * a3ovk2 * k.sinio * (3.0 + 5.0 * k.cosio) / (1.0 + k.cosio);
        k.aycof = 0.25 * a3ovk2 * k.sinio;
        k.delmo = (1.0 + k.eta * xmo.cos()).powf(3.0);
        k.sinmo = xmo.sin();
        k.x7thm1 = 7.0 * theta2 - 1.0;
        if !k.simple {
            let c1sq = k.c1 * k.c1;
            k.d2 = 4.0 * k.aodp * tsi * c1sq;
            let temp = k.d2 * tsi * k.c1 / 3.0;
            k.d3 = (17.0 * k.aodp + s4) * temp;
            k.d4 = 0.5 * temp * k.aodp * tsi * (221.0 * k.aodp + 31.0 * s4) * k.c1;
            k.t3cof = k.d2 + 2.0 * c1sq;
            k.t4cof = 0.25 * (3.0 * k.d3 + k.c1 * (12.0 * k.d2 + 10.0 * c1sq));
            k.t5cof = 0.2
                * (3.0 * k.d4
                    + 12.0 * k.c1 * k.d3
                    + 6.0 * k.d2 * k.d2
                    + 15.0 * c1sq * (2.0 * k.d2 + c1sq));
        }
        k
    }

    /// sgp4.c propagation, `tsince` minutes after the epoch: the position in
    /// Earth radii (TEME-like "RA based" frame of `earthsat.c`).
    fn sgp4(&self, tsince: f64) -> [f64; 3] {
        let k = &self.init;
        let (eo, xincl, omegao, xmo, xnodeo) = (
            f64::from(self.eo),
            f64::from(self.xincl),
            f64::from(self.omegao),
            f64::from(self.xmo),
            f64::from(self.xnodeo),
        );
        let bstar = f64::from(self.bstar);
        let xmdf = xmo + k.xmdot * tsince;
        let omgadf = omegao + k.omgdot * tsince;
        let xnoddf = xnodeo + k.xnodot * tsince;
        let mut omega = omgadf;
        let mut xmp = xmdf;
        let tsq = tsince * tsince;
        let xnode = xnoddf + k.xnodcf * tsq;
        let mut tempa = 1.0 - k.c1 * tsince;
        let mut tempe = bstar * k.c4 * tsince;
        let mut templ = k.t2cof * tsq;
        if !k.simple {
            let delomg = k.omgcof * tsince;
            let delm = k.xmcof * ((1.0 + k.eta * xmdf.cos()).powf(3.0) - k.delmo);
            let temp = delomg + delm;
            xmp = xmdf + temp;
            omega = omgadf - temp;
            let tcube = tsq * tsince;
            let tfour = tsince * tcube;
            tempa = tempa - k.d2 * tsq - k.d3 * tcube - k.d4 * tfour;
            tempe += bstar * k.c5 * (xmp.sin() - k.sinmo);
            templ = templ + k.t3cof * tcube + tfour * (k.t4cof + tsince * k.t5cof);
        }
        let a = k.aodp * tempa * tempa;
        let e = eo - tempe;
        let xl = xmp + omega + xnode + k.xnodp * templ;
        let beta = (1.0 - e * e).sqrt();
        let _xn = XKE / a.powf(1.5);
        // Long period periodics.
        let axn = e * omega.cos();
        let temp = 1.0 / (a * beta * beta);
        let xll = temp * k.xlcof * axn;
        let aynl = temp * k.aycof;
        let xlt = xl + xll;
        let ayn = e * omega.sin() + aynl;
        // Kepler's equation.
        let capu = (xlt - xnode) % TWOPI_SGP4;
        let mut temp2 = capu;
        let (mut sinepw, mut cosepw) = (0.0, 0.0);
        let (mut temp3, mut temp4, mut temp5, mut temp6) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..10 {
            sinepw = temp2.sin();
            cosepw = temp2.cos();
            temp3 = axn * sinepw;
            temp4 = ayn * cosepw;
            temp5 = axn * cosepw;
            temp6 = ayn * sinepw;
            let epw = (capu - temp4 + temp3 - temp2) / (1.0 - temp5 - temp6) + temp2;
            if (epw - temp2).abs() <= E6A {
                break;
            }
            temp2 = epw;
        }
        // Short period preliminary quantities.
        let ecose = temp5 + temp6;
        let esine = temp3 - temp4;
        let elsq = axn * axn + ayn * ayn;
        let temp = 1.0 - elsq;
        let pl = a * temp;
        let r = a * (1.0 - ecose);
        let temp1 = 1.0 / r;
        let temp2 = a * temp1;
        let betal = temp.sqrt();
        let temp3 = 1.0 / (1.0 + betal);
        let cosu = temp2 * (cosepw - axn + ayn * esine * temp3);
        let sinu = temp2 * (sinepw - ayn - axn * esine * temp3);
        let u = actan(sinu, cosu);
        let sin2u = 2.0 * sinu * cosu;
        let cos2u = 2.0 * cosu * cosu - 1.0;
        let temp = 1.0 / pl;
        let temp1 = CK2 * temp;
        let temp2 = temp1 * temp;
        // Short periodics.
        let rk = r * (1.0 - 1.5 * temp2 * betal * k.x3thm1) + 0.5 * temp1 * k.x1mth2 * cos2u;
        let uk = u - 0.25 * temp2 * k.x7thm1 * sin2u;
        let xnodek = xnode + 1.5 * temp2 * k.cosio * sin2u;
        let xinck = xincl + 1.5 * temp2 * k.cosio * k.sinio * cos2u;
        // Orientation vectors.
        let (sinuk, cosuk) = (uk.sin(), uk.cos());
        let (sinik, cosik) = (xinck.sin(), xinck.cos());
        let (sinnok, cosnok) = (xnodek.sin(), xnodek.cos());
        let xmx = -sinnok * cosik;
        let xmy = cosnok * cosik;
        let ux = xmx * sinuk + cosnok * cosuk;
        let uy = xmy * sinuk + sinnok * cosuk;
        let uz = sinik * sinuk;
        [rk * ux, rk * uy, rk * uz]
    }
}

/// `actan.c`: the angle of (cos, sin) in 0..2pi.
fn actan(sinx: f64, cosx: f64) -> f64 {
    const M_PI: f64 = std::f64::consts::PI;
    let mut ret = 0.0;
    if cosx < 0.0 {
        ret = M_PI;
    } else if cosx == 0.0 {
        return if sinx < 0.0 {
            3.0 * std::f64::consts::FRAC_PI_2
        } else if sinx == 0.0 {
            ret
        } else {
            std::f64::consts::FRAC_PI_2
        };
    } else if sinx < 0.0 {
        ret = 2.0 * M_PI;
    } else if sinx == 0.0 {
        return ret;
    }
    ret + (sinx / cosx).atan()
}

/// An observer (`Now`): latitude and longitude in radians, elevation in Earth
/// radii, with `GetSitPosition`'s per-site constants.
#[derive(Debug, Clone, Copy)]
struct Site {
    site_long: f64,
    cos_lat: f64,
    sin_lat: f64,
    g1: f64,
    g2: f64,
}

impl Site {
    /// `GetSiteParams` + the cached half of `GetSitPosition`.
    fn new(lat: f64, lng: f64, n_elev: f64) -> Self {
        let site_long = 2.0 * PI - lng;
        let site_altitude = n_elev * ERAD / 1000.0;
        let adj = (1.0 / (1.0 - EARTH_FLAT * EARTH_FLAT) * lat.tan()).atan();
        let (sin_lat, cos_lat) = (adj.sin(), adj.cos());
        let mut g1 = EARTH_RADIUS_KM
            / (1.0 - (2.0 * EARTH_FLAT - EARTH_FLAT * EARTH_FLAT) * (sin_lat * sin_lat)).sqrt();
        let mut g2 = g1 * ((1.0 - EARTH_FLAT) * (1.0 - EARTH_FLAT));
        g1 += site_altitude;
        g2 += site_altitude;
        Self {
            site_long,
            cos_lat,
            sin_lat,
            g1,
            g2,
        }
    }

    /// `GetSitPosition`'s per-instant half: the site in the inertial frame
    /// (km) and the topocentric matrix, at sidereal angle `sid` (radians,
    /// `PI2 * ((CrntTime - SidDay) * SiderealSolar + SidReference)`).
    fn position(&self, sid: f64) -> ([f64; 3], [[f64; 3]; 3]) {
        let site_ra = sid - self.site_long;
        let (sin_ra, cos_ra) = (site_ra.sin(), site_ra.cos());
        let p = [
            self.g1 * self.cos_lat * cos_ra,
            self.g1 * self.cos_lat * sin_ra,
            self.g2 * self.sin_lat,
        ];
        let m = [
            [self.sin_lat * cos_ra, self.sin_lat * sin_ra, -self.cos_lat],
            [-sin_ra, cos_ra, 0.0],
            [cos_ra * self.cos_lat, sin_ra * self.cos_lat, self.sin_lat],
        ];
        (p, m)
    }
}

/// `GetRange` (km) as `obj_earthsat` stores it: f32 metres.
fn range_m_f32(site: [f64; 3], sat: [f64; 3]) -> f64 {
    let (dx, dy, dz) = (sat[0] - site[0], sat[1] - site[1], sat[2] - site[2]);
    let range_km = (dx * dx + dy * dy + dz * dz).sqrt();
    f64::from((range_km * 1000.0) as f32)
}

/// The date PyEphem gets from satgenpy at an instant, as an mjd: astropy's
/// `str(Time)` (rounded to the millisecond), parsed by
/// `parse_mjd_from_string` (`f_sscandate`, `scansexa`, `cal_mjd`).
fn ephem_mjd(at: chrono::NaiveDateTime) -> f64 {
    use chrono::{Datelike, Timelike};
    let ms_total = at.and_utc().timestamp_millis()
        + i64::from(at.and_utc().timestamp_subsec_nanos() % 1_000_000 >= 500_000);
    let at = chrono::DateTime::from_timestamp_millis(ms_total)
        .map(|d| d.naive_utc())
        .unwrap_or(at);
    let secs = f64::from(at.second() * 1000 + at.nanosecond() / 1_000_000) / 1000.0;
    let mut hours = secs;
    hours = hours / 60.0 + f64::from(at.minute());
    hours = hours / 60.0 + f64::from(at.hour());
    let day = f64::from(at.day()) + hours / 24.0;
    cal_mjd(at.month() as i32, day, at.year())
}

/// The sidereal reference of `InitOrbitRoutines` and the angle
/// `PI2 * ((CrntTime - SidDay) * SiderealSolar + SidReference)` of
/// `GetSitPosition` at `mjd`.
fn orbit_sidereal_angle(mjd: f64) -> f64 {
    let crnt = mjd + 0.5;
    let t = (crnt.floor() - 0.5) / 36525.0;
    let t2 = t * t;
    let sid_day = crnt.floor();
    let mut sid_ref = (6.646_065_6 + 2_400.051_262 * t + 0.000_025_81 * t2) / 24.0;
    sid_ref -= sid_ref.floor();
    (PI * 2.0) * ((crnt - sid_day) * SIDEREAL_SOLAR + sid_ref)
}

/// `utc_gst` (Newcomb/IAU GMST at 0h plus the day's hours), hours: the local
/// sidereal time of the ISL observer (longitude 0), without `now_lst`'s
/// nutation term (see the module note).
fn lst_hours(mjd: f64) -> f64 {
    let mj_day = (mjd - 0.5).floor() + 0.5;
    let utc = (mjd - mj_day) * 24.0;
    let t = (f64::from((mj_day - 0.5) as i32) + 0.5 - J2000_MJD) / 36525.0;
    let mut x = 24110.54841 + (8640184.812866 + (0.093104 - 6.2e-6 * t) * t) * t;
    x /= 3600.0;
    let t0 = range(x, 24.0);
    range((1.0 / SIDRATE) * utc + t0, 24.0)
}

/// `solve_sphere` + `aaha_aux` + `aa_hadec` for an observer at latitude 0:
/// (hour angle, declination) of altitude `alt`, azimuth `az`.
fn aa_hadec_lat0(alt: f64, az: f64) -> (f64, f64) {
    let (slt, clt) = (0f64.sin(), 0f64.cos());
    let (a, b, cc, sc) = (-az, PI / 2.0 - alt, slt, clt);
    let (cb, sb) = (b.cos(), b.sin());
    let ca_ = a.cos();
    let ca = (cb * cc + sb * sc * ca_).clamp(-1.0, 1.0);
    let bb = if sc < 1e-7 {
        if cc < 0.0 {
            a
        } else {
            PI - a
        }
    } else {
        let sa = a.sin();
        let y = sa * sb * sc;
        let x = cb - ca * cc;
        if y != 0.0 {
            if x != 0.0 {
                y.atan2(x)
            } else if y > 0.0 {
                PI / 2.0
            } else {
                -PI / 2.0
            }
        } else if x >= 0.0 {
            0.0
        } else {
            PI
        }
    };
    let mut ha = range(bb, 2.0 * PI);
    let dec = PI / 2.0 - ca.acos();
    if ha > PI {
        ha -= 2.0 * PI;
    }
    (ha, dec)
}

/// What the ISL observer (0, 0, 0) sees of a satellite: f32 range (m),
/// topocentric right ascension and declination (radians).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seen {
    range_m: f64,
    ra: f64,
    dec: f64,
}

/// `GetBearings` then the PREF_TOPO branch of `obj_earthsat` for the ISL
/// observer: `site`/`m` its position and matrix, `lst_rad` its sidereal time.
fn seen_from(site: [f64; 3], m: &[[f64; 3]; 3], lst_rad: f64, sat: [f64; 3]) -> Seen {
    let (dx, dy, dz) = (sat[0] - site[0], sat[1] - site[1], sat[2] - site[2]);
    let x = m[0][0] * dx + m[0][1] * dy + m[0][2] * dz;
    let y = m[1][0] * dx + m[1][1] * dy + m[1][2] * dz;
    let z = m[2][0] * dx + m[2][1] * dy + m[2][2] * dz;
    let elevation = (z / (x * x + y * y).sqrt()).atan();
    let mut azimuth = PI - y.atan2(x);
    if azimuth < 0.0 {
        azimuth += PI;
    }
    let az_f32 = f64::from(azimuth as f32);
    let (ha, dec) = aa_hadec_lat0(elevation, az_f32);
    let ra = range(lst_rad - ha, 2.0 * PI);
    Seen {
        range_m: range_m_f32(site, sat),
        ra,
        dec,
    }
}

/// satgenpy `distance_m_between_satellites`: `_libastro.c` `separation`,
/// then the law of cosines on the f32 ranges.
pub fn isl_length_m(p: Seen, q: Seen) -> f64 {
    let angle = if p.dec == q.dec && p.ra == q.ra {
        0.0
    } else {
        let cosine = p.dec.sin() * q.dec.sin() + p.dec.cos() * q.dec.cos() * (p.ra - q.ra).cos();
        if cosine >= 1.0 {
            0.0
        } else {
            cosine.acos()
        }
    };
    let (a, b) = (p.range_m, q.range_m);
    (a.powf(2.0) + b.powf(2.0) - (2.0 * a * b * angle.cos())).sqrt()
}

/// The hypatia geometry of a constellation: its satellites as libastro holds
/// them. Stations become PyEphem observers at each step ([`HypatiaModel::step`]).
#[derive(Debug, Clone)]
pub struct HypatiaModel {
    sats: Vec<Sat>,
    /// The scenario epoch (t = 0), UTC.
    epoch: chrono::NaiveDateTime,
}

/// One instant of the hypatia geometry, buffers reused across steps.
#[derive(Debug, Default, Clone)]
pub struct HypatiaStep {
    /// Satellite positions in libastro's inertial frame, metres; `None`
    /// when libastro cannot compute one (NaN, or more than a year from the
    /// TLE epoch: `crazyOp`).
    pub sat_m: Vec<Option<[f64; 3]>>,
    /// What the ISL observer sees of each satellite.
    seen: Vec<Seen>,
    /// The stations as observers (from their "%f" coordinates), made once.
    sites: Vec<Site>,
    /// Station sites in the inertial frame, km.
    site_km: Vec<[f64; 3]>,
    /// Satellite positions, km.
    sat_km: Vec<[f64; 3]>,
    /// The `orbit` program's sidereal angle of the instant, radians.
    sid: f64,
}

impl HypatiaStep {
    /// satgenpy's ISL length between satellites `a` and `b`, metres.
    pub fn isl_m(&self, a: usize, b: usize) -> f64 {
        isl_length_m(self.seen[a], self.seen[b])
    }

    /// satgenpy's GSL length (f32 range) from station `g` to satellite `sat`.
    pub fn gsl_m(&self, g: usize, sat: usize) -> f64 {
        range_m_f32(self.site_km[g], self.sat_km[sat])
    }

    /// Satellite `sat` in the Earth-fixed frame (metres): libastro's inertial
    /// position rotated by the sidereal angle its sites are placed with. For
    /// comparing the two geometries; links never use it.
    pub fn sat_ecef_m(&self, sat: usize) -> Option<Vec3> {
        let [x, y, z] = self.sat_m.get(sat).copied().flatten()?;
        let (s, c) = self.sid.sin_cos();
        Some(Vec3::new(c * x + s * y, -s * x + c * y, z))
    }
}

/// A station as satgenpy's PyEphem observer: `extend_ground_stations` writes
/// its coordinates with "%f", the observer parses the strings (`scansexa`,
/// degrees / `raddeg(1)`), and its elevation is kept in Earth radii.
fn station_site(g: &GroundStation) -> Site {
    let f6 = |v: f64| format!("{v:.6}").parse::<f64>().unwrap_or(v);
    let raddeg1 = 180.0 / PI;
    Site::new(
        f6(g.lat_deg) / raddeg1,
        f6(g.lon_deg) / raddeg1,
        f6(g.elevation_m) / ERAD,
    )
}

impl HypatiaModel {
    /// The satellites of `set` (its TLE text, as libastro reads it); time 0
    /// is `epoch`.
    pub fn new(set: &TleSet, epoch: chrono::NaiveDateTime) -> Result<Self, Error> {
        let sats = set
            .sats
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Sat::from_tle(&t.line1, &t.line2).map_err(|reason| {
                    Error::Scenario(format!(
                        "--geometry hypatia: satellite {i} ({}): {reason}",
                        t.name
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { sats, epoch })
    }

    /// Number of satellites.
    pub fn len(&self) -> usize {
        self.sats.len()
    }

    /// True without satellites.
    pub fn is_empty(&self) -> bool {
        self.sats.is_empty()
    }

    /// Computes the geometry of the satellites and `stations` at `t_ns` after
    /// the epoch into `out`.
    pub fn step(&self, t_ns: i64, stations: &[GroundStation], out: &mut HypatiaStep) {
        let at = self.epoch + chrono::Duration::nanoseconds(t_ns);
        let mjd = ephem_mjd(at);
        let sid = orbit_sidereal_angle(mjd);
        out.sid = sid;
        out.sat_m.clear();
        out.sat_km.clear();
        out.seen.clear();
        out.site_km.clear();
        let (obs, m) = Site::new(0.0, 0.0, 0.0).position(sid);
        let lst = degrad(lst_hours(mjd) * 15.0);
        for sat in &self.sats {
            let km = if (sat.epoch_mjd - mjd).abs() > 365.0 {
                None
            } else {
                let p = sat.sgp4((mjd - sat.epoch_mjd) * MPD);
                let k = ERAD / 1000.0;
                let km = [k * p[0], k * p[1], k * p[2]];
                (!km.iter().any(|c| c.is_nan())).then_some(km)
            };
            let km_or_0 = km.unwrap_or([0.0; 3]);
            out.sat_km.push(km_or_0);
            out.sat_m
                .push(km.map(|k| [k[0] * 1000.0, k[1] * 1000.0, k[2] * 1000.0]));
            out.seen.push(seen_from(obs, &m, lst, km_or_0));
        }
        if out.sites.len() != stations.len() {
            out.sites = stations.iter().map(station_site).collect();
        }
        for site in &out.sites {
            out.site_km.push(site.position(sid).0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cal_mjd_matches_libastro() {
        // 2000-01-01 00:00 is mjd 36524.5 (days since 1899-12-31 12:00).
        assert_eq!(cal_mjd(1, 1.0, 2000), 36_524.5);
        // PyEphem: ephem.Date('2000-01-01 00:00:00.100') == 36524.50000115741
        let at = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_milli_opt(0, 0, 0, 100))
            .expect("valid date");
        assert_eq!(ephem_mjd(at), 36_524.500_001_157_41);
    }

    #[test]
    fn tle_fields_are_read_as_libastro_reads_them() {
        let l1 = "1 00001U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    04";
        let l2 = "2 00001  51.9000   0.0000 0000001   0.0000   0.0000 14.80000000    02";
        let s = Sat::from_tle(l1, l2).expect("valid TLE");
        assert_eq!(s.epoch_mjd, 36_524.5);
        assert_eq!(s.eo, 1e-7f32);
        // db_tle stores 51.9 as f32 first; esat_prop converts that to radians.
        assert_eq!(s.xincl, (f64::from(51.9f32) * PI / 180.0) as f32);
        assert_ne!(s.xincl, (51.9f64 * PI / 180.0) as f32);
        assert_eq!(s.bstar, 0.0);
        let drag = "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927";
        assert!((tle_expfld(drag, 54).expect("field") + 0.11606e-4).abs() < 1e-12);
    }

    /// What libastro's SGP4 would turn into NaN positions (a satellite that
    /// vanishes without a word) is refused, naming the field.
    #[test]
    fn tles_libastro_cannot_propagate_are_refused() {
        let l1 = "1 00001U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    04";
        let l2 = "2 00001  51.9000   0.0000 0000001   0.0000   0.0000 14.80000000    02";
        let e0 = l2.replace(" 0000001 ", " 0000000 ");
        let err = Sat::from_tle(l1, &e0).expect_err("e = 0");
        assert!(err.contains("eccentricity 0"), "{err}");
        let nan = l2.replace("14.80000000", "NaN        ");
        let err = Sat::from_tle(l1, &nan).expect_err("NaN mean motion");
        assert!(err.contains("not a number"), "{err}");
        let inf = l2.replace(" 51.9000", "     inf");
        assert!(Sat::from_tle(l1, &inf).is_err());
    }
}
