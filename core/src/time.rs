//! Wall-clock instants: nanoseconds since the Unix epoch on CLOCK_REALTIME,
//! the time base of FIB activations. Time-variant routing (RFC 9657) plans
//! changes at absolute instants agreed across nodes, so every node, the
//! control process and the emulation read the same clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ns since the Unix epoch (0 for a clock set before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads an RFC 3339 UTC instant ("2026-12-01T00:00:00Z", optional
/// fraction of a second) as ns since the Unix epoch; the form operators
/// write in configuration files.
pub fn parse_utc(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[b.len() - 1] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u64, String> {
        let t = &s[r];
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &s[19..s.len() - 1];
    let nanos = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - f.len() as u32)
        }
        _ => return Err(bad()),
    };
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let month_days = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970
        || !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[mo as usize - 1]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return Err(bad());
    }
    let days = (1970..y)
        .map(|y| if leap(y) { 366 } else { 365 })
        .sum::<u64>()
        + month_days[..mo as usize - 1].iter().sum::<u64>()
        + (d - 1);
    Ok((((days * 24 + h) * 60 + mi) * 60 + sec) * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_read_as_the_unix_clock_counts() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_utc("2000-03-01T00:00:00Z"),
            Ok(951_868_800_000_000_000)
        );
        assert_eq!(
            parse_utc("2026-12-01T12:30:05.25Z"),
            Ok(1_796_128_205_250_000_000)
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-12-01 00:00:00Z",
            "2026-12-01T00:00:00",
            "1969-12-31T23:59:59Z",
            "2026-12-01T00:00:00.Z",
            "x",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }
}
