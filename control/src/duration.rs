//! Durations as operators write them, one parser for every option that
//! takes one (`predict --duration 2min --step 100ms`, `fib load --at +1h`,
//! `run --watch-ports 200ms`, `stats --watch 1s`, `port delay 12ms`,
//! `orbitmesh-emu --fail-isl 18-23@600s+90min`): a decimal number and a
//! unit, `ns`, `us` (or `µs`), `ms`, `s`, `m` or `min`, `h`; a bare number
//! is seconds.

/// Parses a duration into nanoseconds. Signed: callers that need a
/// positive one say so in their own words. The error is a sentence that
/// names the text.
pub fn parse_ns(s: &str) -> Result<i64, String> {
    let bad = |why: String| format!("duration {s:?}: {why}");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| bad(format!("{num:?} is not a number")))?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        u => {
            return Err(bad(format!(
                "unknown unit {u:?} (use ns, us, ms, s, min or h)"
            )))
        }
    };
    let ns = (v * scale).round();
    if !ns.is_finite() || ns.abs() > 9.0e18 {
        return Err(bad("out of range".into()));
    }
    Ok(ns as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_ns;

    #[test]
    fn every_unit_an_operator_writes() {
        let cases = [
            ("500ms", 500_000_000),
            ("2s", 2_000_000_000),
            ("2", 2_000_000_000),
            ("2min", 120_000_000_000),
            ("+90min", 5_400_000_000_000),
            ("+1h", 3_600_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("1m", 60_000_000_000),
            ("800us", 800_000),
            ("800µs", 800_000),
            ("12ns", 12),
            ("-1s", -1_000_000_000),
        ];
        for (s, ns) in cases {
            assert_eq!(parse_ns(s), Ok(ns), "{s}");
        }
        assert_eq!(
            parse_ns("2 fortnights").unwrap_err(),
            "duration \"2 fortnights\": unknown unit \"fortnights\" (use ns, us, ms, s, min or h)"
        );
        assert!(parse_ns("xs").unwrap_err().contains("\"\" is not a number"));
        assert!(parse_ns("9999999999h")
            .unwrap_err()
            .contains("out of range"));
    }
}
