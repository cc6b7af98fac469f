//! RFC 2544 section 26.1 throughput: the highest offered rate at which the
//! device under test forwards every frame (or loses at most a configured
//! fraction, as FD.io CSIT's "partial drop rate" does), found by a binary
//! search over the offered rate with trials of fixed length.
//!
//! The first trial runs at the maximum rate asked for; a failing trial's
//! delivered rate is a good guess for where to look next (so the search
//! tries just below it before halving), and the search stops once the
//! bracket is narrower than `resolution` (relative) or after `max_trials`.
//! The result names the limit: the generator (a lossless trial could not
//! offer the rate it was asked for), the DUT's core (saturated when frames
//! were lost, at whatever rate was actually sent), or
//! the path (frames lost while the DUT's core had time left, e.g. a receive
//! ring overflowing on another core), or the maximum rate asked for.

/// Search settings.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SearchCfg {
    /// First (and highest) offered rate, frames/s.
    pub max_pps: f64,
    /// Give up below this rate.
    pub min_pps: f64,
    /// Stop when (hi - lo) / hi is below this.
    pub resolution: f64,
    /// Accepted loss ratio (0 = RFC 2544 zero loss).
    pub loss_tolerance: f64,
    pub max_trials: usize,
}

/// What the search needs from one trial.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Outcome {
    pub offered_pps: f64,
    pub sent_pps: f64,
    pub delivered_pps: f64,
    /// The loss the search judges by: all frames lost, or those the DUT
    /// lost (without `testbed_lost`), as the harness is set.
    pub loss_ratio: f64,
    /// Frames the testbed lost before the DUT (`TrialRecord::testbed_lost`).
    #[serde(default)]
    pub testbed_lost: u64,
    /// The generator could not offer the rate.
    pub gen_limited: bool,
    /// Busy fraction of the DUT's core during the trial (0..1).
    pub dut_core_busy: f64,
    /// Busy fraction of the generator's core during the trial (0..1).
    pub gen_core_busy: f64,
    /// The loss came in a testbed stall (`harness::ring_loss_in_a_stall`)
    /// and counts against the DUT.
    #[serde(default)]
    pub stalled: bool,
}

/// Which side stopped the rate from going higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The generator could not offer a higher rate.
    Generator,
    /// Frames were lost with the DUT's core saturated.
    DutCpu,
    /// Frames were lost while the DUT's core had time left.
    Path,
    /// Frames were refused by dut0's ring while the DUT's core was away
    /// (the testbed's doing) in every attempt of the trial, and counted
    /// against the DUT (`--charge-testbed`; by default they are not).
    Testbed,
    /// The maximum rate asked for passed.
    MaxRate,
    /// Even the lowest rate lost frames.
    NoPass,
}

impl Limit {
    pub fn describe(self) -> &'static str {
        match self {
            Limit::Generator => "generator",
            Limit::DutCpu => "DUT CPU",
            Limit::Path => "path (DUT core not saturated)",
            Limit::Testbed => "testbed (DUT core away, dut0's ring overflowed)",
            Limit::MaxRate => "max rate asked",
            Limit::NoPass => "no rate passed",
        }
    }
}

/// The search's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResult {
    /// Sent rate of the best passing trial (frames/s), 0 if none passed.
    pub throughput_pps: f64,
    /// Its offered rate.
    pub offered_pps: f64,
    pub limit: Limit,
    pub trials: Vec<Outcome>,
}

/// Frames were lost in `fail`: at the rate actually sent (even if short
/// of the offered one), so the DUT side is the limit.
fn classify(fail: &Outcome) -> Limit {
    if fail.stalled {
        Limit::Testbed
    } else if fail.dut_core_busy >= 0.9 {
        Limit::DutCpu
    } else {
        Limit::Path
    }
}

/// Runs the search; `trial(rate)` runs one trial at `rate` frames/s.
pub fn search<E>(
    cfg: &SearchCfg,
    mut trial: impl FnMut(f64) -> Result<Outcome, E>,
) -> Result<SearchResult, E> {
    let mut trials = Vec::new();
    let mut best: Option<Outcome> = None;
    let mut last_fail: Option<Outcome> = None;
    let mut hi = cfg.max_pps;
    let mut lo = 0.0f64;
    let mut rate = cfg.max_pps;
    let mut limit = None;
    let mut gen_max = 0.0f64;
    while trials.len() < cfg.max_trials {
        let o = trial(rate)?;
        trials.push(o);
        gen_max = gen_max.max(o.sent_pps);
        if o.loss_ratio <= cfg.loss_tolerance {
            lo = rate;
            best = Some(o);
            if o.gen_limited {
                // Higher offered rates would not be offered either, unless
                // this was a dip (the generator sent more in another trial):
                // then the search goes on above what it sent.
                if o.sent_pps >= 0.95 * gen_max {
                    limit = Some(Limit::Generator);
                    break;
                }
                lo = o.sent_pps;
            }
            if rate >= cfg.max_pps {
                limit = Some(Limit::MaxRate);
                break;
            }
        } else {
            hi = if o.gen_limited {
                o.sent_pps.min(rate)
            } else {
                rate
            };
            last_fail = Some(o);
        }
        if hi <= lo || (hi - lo) <= cfg.resolution * hi {
            break;
        }
        let mid = (lo + hi) / 2.0;
        rate = match (best, last_fail) {
            // After the first trial failed: just below what the DUT delivered.
            (None, Some(f))
                if trials.len() == 1
                    && f.delivered_pps * 0.97 > lo
                    && f.delivered_pps * 0.97 < hi =>
            {
                f.delivered_pps * 0.97
            }
            _ => mid,
        };
        if rate < cfg.min_pps {
            if best.is_none() {
                limit = Some(Limit::NoPass);
                break;
            }
            rate = cfg.min_pps.max(lo);
        }
    }
    let limit = limit.unwrap_or_else(|| match (best, last_fail) {
        (None, _) => Limit::NoPass,
        (Some(_), Some(f)) => classify(&f),
        (Some(_), None) => Limit::MaxRate,
    });
    Ok(SearchResult {
        throughput_pps: best.map_or(0.0, |b| b.sent_pps),
        offered_pps: best.map_or(0.0, |b| b.offered_pps),
        limit,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SearchCfg {
        SearchCfg {
            max_pps: 4e6,
            min_pps: 1e4,
            resolution: 0.01,
            loss_tolerance: 0.0,
            max_trials: 30,
        }
    }

    /// A model DUT: lossless up to `cap`, then delivers `cap`; a generator
    /// that tops out at `gen`.
    fn model(cap: f64, gen: f64) -> impl FnMut(f64) -> Result<Outcome, ()> {
        move |r| {
            let sent = r.min(gen);
            let delivered = sent.min(cap);
            Ok(Outcome {
                offered_pps: r,
                sent_pps: sent,
                delivered_pps: delivered,
                loss_ratio: (sent - delivered) / sent,
                gen_limited: sent < r * 0.98,
                dut_core_busy: if sent > cap { 1.0 } else { sent / cap },
                gen_core_busy: 1.0,
                stalled: false,
                testbed_lost: 0,
            })
        }
    }

    #[test]
    fn finds_the_dut_limit_within_resolution() {
        let r = search(&cfg(), model(1.234e6, 10e6)).unwrap();
        assert!(r.throughput_pps <= 1.234e6);
        assert!(r.throughput_pps >= 1.234e6 * 0.98, "{}", r.throughput_pps);
        assert_eq!(r.limit, Limit::DutCpu);
        assert!(r.trials.len() < 12, "{} trials", r.trials.len());
    }

    #[test]
    fn a_slow_generator_is_named() {
        let r = search(&cfg(), model(3e6, 1e6)).unwrap();
        assert_eq!(r.limit, Limit::Generator);
        assert!((r.throughput_pps - 1e6).abs() < 1.0);
    }

    #[test]
    fn a_generator_dip_does_not_end_the_search() {
        let mut n = 0;
        let mut dut = model(1e6, 10e6);
        let r = search(&cfg(), |rate| {
            n += 1;
            let mut o = dut(rate)?;
            if n == 2 {
                // One trial where the generator was starved.
                o.sent_pps = rate * 0.3;
                o.delivered_pps = o.sent_pps;
                o.loss_ratio = 0.0;
                o.gen_limited = true;
            }
            Ok::<_, ()>(o)
        })
        .unwrap();
        assert_eq!(r.limit, Limit::DutCpu);
        assert!(r.throughput_pps >= 0.98e6, "{}", r.throughput_pps);
    }

    #[test]
    fn a_loss_in_a_stall_names_the_testbed() {
        // The DUT carries 1 Mpps, but above 0.3 Mpps every failing trial
        // came with the DUT's core away (its core half idle).
        let r = search(&cfg(), |rate| {
            let lossy = rate > 0.3e6;
            Ok::<_, ()>(Outcome {
                offered_pps: rate,
                sent_pps: rate,
                delivered_pps: if lossy { rate * 0.999 } else { rate },
                loss_ratio: if lossy { 0.001 } else { 0.0 },
                dut_core_busy: 0.5,
                stalled: lossy,
                ..Default::default()
            })
        })
        .unwrap();
        assert_eq!(r.limit, Limit::Testbed);
        assert!(r.throughput_pps <= 0.3e6, "{}", r.throughput_pps);
    }

    #[test]
    fn max_rate_and_no_pass() {
        let r = search(&cfg(), model(5e6, 10e6)).unwrap();
        assert_eq!(r.limit, Limit::MaxRate);
        assert_eq!(r.trials.len(), 1);
        let r = search(&cfg(), |rate| {
            Ok::<_, ()>(Outcome {
                offered_pps: rate,
                sent_pps: rate,
                delivered_pps: rate * 0.5,
                loss_ratio: 0.5,
                ..Default::default()
            })
        })
        .unwrap();
        assert_eq!(r.limit, Limit::NoPass);
        assert_eq!(r.throughput_pps, 0.0);
    }

    #[test]
    fn loss_tolerance_is_honoured() {
        let mut c = cfg();
        c.loss_tolerance = 0.01;
        // Loses 0.5% above 1 Mpps: passes with tolerance up to max.
        let r = search(&c, |rate| {
            Ok::<_, ()>(Outcome {
                offered_pps: rate,
                sent_pps: rate,
                delivered_pps: rate * 0.995,
                loss_ratio: if rate > 1e6 { 0.005 } else { 0.0 },
                ..Default::default()
            })
        })
        .unwrap();
        assert_eq!(r.limit, Limit::MaxRate);
    }
}
