//! Two-line element sets in the 3-line form (name line + TLE lines 1 and 2),
//! as published by CelesTrak / Space-Track and as written by Hypatia's satgenpy.
//!
//! Format: NORAD/Spacetrack "Two-Line Element Set Format" (CelesTrak FAQ,
//! <https://celestrak.org/columns/v04n03/>). Every line's column 69 is a
//! modulo-10 checksum (digits count their value, '-' counts 1, all else 0); it
//! is verified here before the elements are handed to the `sgp4` crate, so a
//! corrupted file is refused with the line that is wrong.
//!
//! An element set SGP4 cannot start from is refused here too, with its line:
//! a field that is not a finite number (Rust's float parser takes `NaN` and
//! `inf`, and letters count 0 in the checksum), or elements the SGP4
//! initialisation rejects (a mean motion that is not positive, a negative
//! eccentricity). Such a set is wrong at every instant, like a bad checksum:
//! the file is at fault, not the satellite, and leaving it out silently would
//! hide a corrupted file. A set that starts but fails later (a decaying
//! satellite propagated days past its epoch) is a property of the instant, not
//! of the file: [`super::propagate`] leaves it out at that instant instead.
//!
//! satgenpy's `tles.txt` starts with an extra line `<planes> <sats per plane>`;
//! when present it is read as the +Grid structure of the set (satellite `i` is
//! slot `i % S` of plane `i / S`).

use super::Error;

/// One satellite's element set.
#[derive(Debug, Clone)]
pub struct Tle {
    /// The name line (trimmed).
    pub name: String,
    /// TLE line 1 (69 characters).
    pub line1: String,
    /// TLE line 2 (69 characters).
    pub line2: String,
    /// The parsed elements.
    pub elements: sgp4::Elements,
}

/// A parsed TLE file.
#[derive(Debug, Clone)]
pub struct TleSet {
    /// Planes x satellites per plane, from a satgenpy header line, if any.
    pub grid: Option<(usize, usize)>,
    /// The satellites, numbered 0..N-1 in file order.
    pub sats: Vec<Tle>,
}

/// The TLE checksum of the first 68 characters of a line.
pub fn checksum(line: &str) -> u32 {
    line.bytes()
        .take(68)
        .map(|b| match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'-' => 1,
            _ => 0,
        })
        .sum::<u32>()
        % 10
}

fn check_line(source: &str, lineno: usize, line: &str, want: char) -> Result<(), Error> {
    let bad = |reason: String| Error::Tle {
        file: source.to_string(),
        line: lineno,
        reason,
    };
    if line.len() != 69 || !line.is_ascii() {
        return Err(bad(format!(
            "expected a 69-character ASCII TLE line {want}, got {} characters: {line:?}",
            line.chars().count()
        )));
    }
    if !line.starts_with(want) {
        return Err(bad(format!("expected TLE line {want}, got {line:?}")));
    }
    let stated = line.as_bytes()[68];
    let computed = checksum(line);
    if !stated.is_ascii_digit() || u32::from(stated - b'0') != computed {
        return Err(bad(format!(
            "checksum mismatch: column 69 says {:?}, computed {computed}",
            stated as char
        )));
    }
    Ok(())
}

/// Refuses an element set SGP4 cannot start from (see the module notes):
/// `n1` / `n2` are the line numbers of TLE lines 1 and 2.
fn check_elements(
    source: &str,
    (n1, n2): (usize, usize),
    name: &str,
    e: &sgp4::Elements,
) -> Result<(), Error> {
    let bad = |line: usize, reason: String| Error::Tle {
        file: source.to_string(),
        line,
        reason: format!("{name}: {reason}"),
    };
    let fields = [
        (n1, "first derivative of the mean motion", e.mean_motion_dot),
        (
            n1,
            "second derivative of the mean motion",
            e.mean_motion_ddot,
        ),
        (n1, "drag term (B*)", e.drag_term),
        (n2, "inclination", e.inclination),
        (
            n2,
            "right ascension of the ascending node",
            e.right_ascension,
        ),
        (n2, "eccentricity", e.eccentricity),
        (n2, "argument of perigee", e.argument_of_perigee),
        (n2, "mean anomaly", e.mean_anomaly),
        (n2, "mean motion", e.mean_motion),
    ];
    for (line, what, v) in fields {
        if !v.is_finite() {
            return Err(bad(line, format!("the {what} {v} is not a finite number")));
        }
    }
    sgp4::Constants::from_elements_afspc_compatibility_mode(e).map_err(|err| {
        bad(
            n2,
            format!(
                "SGP4 cannot start from this element set (eccentricity {}, mean motion {} rev/day): {err}",
                e.eccentricity, e.mean_motion
            ),
        )
    })?;
    Ok(())
}

/// Parses a 3-line TLE text. `source` names the file in error messages.
pub fn parse(source: &str, text: &str) -> Result<TleSet, Error> {
    let mut lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut grid = None;
    if let Some(&(_, first)) = lines.first() {
        let parts: Vec<&str> = first.split_whitespace().collect();
        if parts.len() == 2 {
            if let (Ok(p), Ok(s)) = (parts[0].parse::<usize>(), parts[1].parse::<usize>()) {
                grid = Some((p, s));
                lines.remove(0);
            }
        }
    }
    if lines.is_empty() {
        return Err(Error::Tle {
            file: source.to_string(),
            line: 0,
            reason: "no satellites in the file".into(),
        });
    }
    if !lines.chunks_exact(3).remainder().is_empty() {
        return Err(Error::Tle {
            file: source.to_string(),
            line: lines.last().map(|l| l.0).unwrap_or(0),
            reason: format!(
                "{} non-empty lines is not a multiple of 3 (name, line 1, line 2 per satellite)",
                lines.len()
            ),
        });
    }
    let mut sats = Vec::with_capacity(lines.len() / 3);
    for chunk in lines.chunks(3) {
        let (_, name) = chunk[0];
        let (n1, l1) = chunk[1];
        let (n2, l2) = chunk[2];
        check_line(source, n1, l1, '1')?;
        check_line(source, n2, l2, '2')?;
        if l1[2..7] != l2[2..7] {
            return Err(Error::Tle {
                file: source.to_string(),
                line: n2,
                reason: format!(
                    "catalogue numbers differ between line 1 ({}) and line 2 ({})",
                    &l1[2..7],
                    &l2[2..7]
                ),
            });
        }
        let name = name.trim_start_matches("0 ").trim().to_string();
        let elements = sgp4::Elements::from_tle(Some(name.clone()), l1.as_bytes(), l2.as_bytes())
            .map_err(|e| Error::Tle {
            file: source.to_string(),
            line: n1,
            reason: format!("sgp4 refused the element set: {e}"),
        })?;
        check_elements(source, (n1, n2), &name, &elements)?;
        sats.push(Tle {
            name,
            line1: l1.to_string(),
            line2: l2.to_string(),
            elements,
        });
    }
    if let Some((p, s)) = grid {
        if p.checked_mul(s) != Some(sats.len()) {
            return Err(Error::Tle {
                file: source.to_string(),
                line: 1,
                reason: format!(
                    "header says {p} planes x {s} satellites, but the file has {} satellites",
                    sats.len()
                ),
            });
        }
    }
    Ok(TleSet { grid, sats })
}

/// Writes a set back as text (satgenpy's `tles.txt` form when it has a grid).
pub fn to_text(set: &TleSet) -> String {
    let mut out = String::new();
    if let Some((p, s)) = set.grid {
        out.push_str(&format!("{p} {s}\n"));
    }
    for t in &set.sats {
        out.push_str(&format!("{}\n{}\n{}\n", t.name, t.line1, t.line2));
    }
    out
}

/// Reads and parses a TLE file.
pub fn read(path: &std::path::Path) -> Result<TleSet, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    parse(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "ISS (ZARYA)
1 25544U 98067A   20194.88612269 -.00002218  00000-0 -31515-4 0  9992
2 25544  51.6461 221.2784 0001413  89.1723 280.4612 15.49507896236008
";

    #[test]
    fn parses_a_valid_set() {
        let set = parse("iss", ISS).unwrap();
        assert_eq!(set.sats.len(), 1);
        assert_eq!(set.sats[0].name, "ISS (ZARYA)");
        assert!(set.grid.is_none());
    }

    #[test]
    fn bad_checksum_names_the_line() {
        let bad = ISS.replace("0  9992", "0  9993");
        let e = parse("iss.tle", &bad).unwrap_err().to_string();
        assert!(
            e.contains("iss.tle") && e.contains("line 2") && e.contains("checksum"),
            "{e}"
        );
    }

    /// Replaces columns `range` (0-based) of TLE line `which` of `ISS` and
    /// fixes that line's checksum, so only the elements are wrong.
    fn iss_with(which: usize, range: std::ops::Range<usize>, field: &str) -> String {
        let mut lines: Vec<String> = ISS.lines().map(str::to_string).collect();
        let l = &mut lines[which];
        l.replace_range(range, field);
        let sum = checksum(l);
        l.replace_range(68..69, &sum.to_string());
        lines.join("\n") + "\n"
    }

    #[test]
    fn absurd_elements_are_refused_with_their_line() {
        // Mean motion 0 and negative: SGP4 cannot start (line 3 of the file).
        for mm in [" 0.00000000", "-1.00000000"] {
            let e = parse("bad.tle", &iss_with(2, 52..63, mm))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("bad.tle: line 3")
                    && e.contains("ISS (ZARYA)")
                    && e.contains("mean motion"),
                "{e}"
            );
        }
        // A negative eccentricity (the field's sign is read as a sign).
        let e = parse("bad.tle", &iss_with(2, 26..33, "-001413"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("eccentricity"), "{e}");
        // NaN passes Rust's float parser and the checksum (letters count 0).
        let e = parse("bad.tle", &iss_with(2, 8..16, "     NaN"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("inclination") && e.contains("finite"),
            "{e}"
        );
        // The unmodified set still parses (the helper only breaks what it is told).
        parse("ok.tle", &iss_with(2, 52..63, "15.49507896")).unwrap();
    }

    #[test]
    fn truncated_and_malformed_sets_are_errors() {
        let truncated: String = ISS.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(parse("t", &truncated).is_err());
        let short = ISS.replace("15.49507896236008", "15.4950789623600");
        assert!(parse("t", &short)
            .unwrap_err()
            .to_string()
            .contains("69-character"));
        assert!(parse("t", "").is_err());
        // Used to panic: attempt to multiply with overflow.
        let e = parse("t", &format!("18446744073709551615 2\n{ISS}")).unwrap_err();
        assert!(e.to_string().contains("header says"), "{e}");
        let swapped = {
            let l: Vec<&str> = ISS.lines().collect();
            format!("{}\n{}\n{}\n", l[0], l[2], l[1])
        };
        assert!(parse("t", &swapped).is_err());
    }
}
