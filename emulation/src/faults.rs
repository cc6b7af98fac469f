//! The faults an emulation injects: ISLs taken down (and back up) at given
//! schedule times (`--fail-isl A-B@T+DUR`) or at random instants on the
//! traffic's predicted paths (`--random-failures`), and what each one is
//! reported as when it happens.

use super::report::{FaultReport, PairTrace};
use super::Topology;
use control::predict::scenario::parse_duration_ns;

/// A `--fail-isl` value that names no fault of this emulation.
#[derive(Debug, thiserror::Error)]
pub enum FaultSpecError {
    /// Not `A-B@T[+DUR]`; `why` says which part.
    #[error("--fail-isl {spec:?}: {why} (expected A-B@T or A-B@T+DUR)")]
    Malformed { spec: String, why: &'static str },
    #[error("--fail-isl {spec:?}: there is no link {a}-{b} in this emulation")]
    NoSuchLink { spec: String, a: u32, b: u32 },
    #[error("--fail-isl {spec:?}: {a}-{b} is a ground link, not an ISL")]
    GroundLink { spec: String, a: u32, b: u32 },
    /// T or DUR is not a duration.
    #[error("--fail-isl {spec:?}: {error}")]
    Time {
        spec: String,
        error: control::predict::Error,
    },
}

/// A fault to inject: at schedule time `at_ns`, `link` goes down (or up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultEvent {
    pub at_ns: i64,
    pub link: (u32, u32),
    pub up: bool,
}

/// Parses one `--fail-isl` value: `A-B@T` or `A-B@T+DUR` (the link back up
/// DUR later); the link must be an ISL of `topo`.
pub fn parse_fail(spec: &str, topo: &Topology) -> Result<Vec<FaultEvent>, FaultSpecError> {
    let bad = |why| FaultSpecError::Malformed {
        spec: spec.to_string(),
        why,
    };
    let (link, when) = spec.split_once('@').ok_or_else(|| bad("no '@'"))?;
    let (a, b) = link
        .split_once('-')
        .ok_or_else(|| bad("no '-' between the nodes"))?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad("A is not a node id"))?,
        b.trim().parse().map_err(|_| bad("B is not a node id"))?,
    );
    let link = (a.min(b), a.max(b));
    let spec = spec.to_string();
    if !topo.links.contains(&link) {
        return Err(FaultSpecError::NoSuchLink { spec, a, b });
    }
    if topo.is_gs(a) || topo.is_gs(b) {
        return Err(FaultSpecError::GroundLink { spec, a, b });
    }
    let time = |t| {
        parse_duration_ns(t).map_err(|error| FaultSpecError::Time {
            spec: spec.clone(),
            error,
        })
    };
    let (t, dur) = match when.split_once('+') {
        Some((t, d)) => (t, Some(d)),
        None => (when, None),
    };
    let at_ns = time(t)?;
    let mut v = vec![FaultEvent {
        at_ns,
        link,
        up: false,
    }];
    if let Some(d) = dur {
        let d = time(d)?;
        v.push(FaultEvent {
            at_ns: at_ns + d,
            link,
            up: true,
        });
    }
    Ok(v)
}

/// Parses one `--flap-isl` value, `A-B@T,PERIOD,COUNT`: the ISL goes down
/// at T for PERIOD/2 and comes back for PERIOD/2, COUNT times.
pub fn parse_flap(spec: &str, topo: &Topology) -> anyhow::Result<Vec<FaultEvent>> {
    let bad = || {
        anyhow::anyhow!("--flap-isl {spec:?}: expected A-B@T,PERIOD,COUNT (e.g. 3-4@300s,20s,5)")
    };
    let (first, rest) = spec.split_once(',').ok_or_else(bad)?;
    let (period, count) = rest.split_once(',').ok_or_else(bad)?;
    let period =
        parse_duration_ns(period).map_err(|e| anyhow::anyhow!("--flap-isl {spec:?}: {e}"))?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    if period < 2 || count == 0 {
        return Err(bad());
    }
    let down = parse_fail(first, topo).map_err(|e| anyhow::anyhow!("--flap-isl {spec:?}: {e}"))?;
    let (at, link) = (down[0].at_ns, down[0].link);
    Ok((0..i64::from(count))
        .flat_map(|k| {
            let t = at + k * period;
            [
                FaultEvent {
                    at_ns: t,
                    link,
                    up: false,
                },
                FaultEvent {
                    at_ns: t + period / 2,
                    link,
                    up: true,
                },
            ]
        })
        .collect())
}

/// A small deterministic generator for the random failures (SplitMix64).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Random failures of ISLs on the traffic's predicted paths.
#[derive(Debug, Clone, Copy)]
pub struct RandomFailures {
    pub count: usize,
    /// Schedule ns after which each failed ISL comes back, if it does.
    pub restore_after_ns: Option<i64>,
    pub seed: u64,
}

impl RandomFailures {
    /// `count` failures at random instants between 20% and 80% of the
    /// window `[start_ns, start_ns + len_ns)`, each of an ISL on some pair's
    /// path at that instant (none where no path uses an ISL).
    pub fn events(
        &self,
        pairs: &[PairTrace],
        topo: &Topology,
        start_ns: i64,
        len_ns: i64,
    ) -> Vec<FaultEvent> {
        let mut rng = SplitMix(self.seed);
        let mut out = Vec::new();
        for _ in 0..self.count {
            let at = start_ns + len_ns / 5 + (rng.next() % (len_ns as u64 * 3 / 5)) as i64;
            // An ISL on some pair's path at that instant.
            let on_path: Vec<(u32, u32)> = pairs
                .iter()
                .filter_map(|p| p.path_at(at))
                .flat_map(|p| p.windows(2).map(|w| (w[0].min(w[1]), w[0].max(w[1]))))
                .filter(|l| !topo.is_gs(l.1))
                .collect();
            if on_path.is_empty() {
                continue;
            }
            let link = on_path[(rng.next() % on_path.len() as u64) as usize];
            out.push(FaultEvent {
                at_ns: at,
                link,
                up: false,
            });
            if let Some(r) = self.restore_after_ns {
                out.push(FaultEvent {
                    at_ns: at + r,
                    link,
                    up: true,
                });
            }
        }
        out
    }
}

/// The report of a failure `f` injected at wall second `wall_s`: which
/// pairs' predicted paths used the link at that instant.
pub fn report_for(f: &FaultEvent, pairs: &[PairTrace], wall_s: f64) -> FaultReport {
    FaultReport {
        link: f.link,
        at_s: f.at_ns as f64 / 1e9,
        restored_at_s: None,
        wall_s,
        restored_wall_s: None,
        lost_around: 0,
        repaired_after_s: None,
        pairs_on_link: pairs
            .iter()
            .filter(|p| {
                p.path_at(f.at_ns).is_some_and(|path| {
                    path.windows(2)
                        .any(|w| (w[0].min(w[1]), w[0].max(w[1])) == f.link)
                })
            })
            .map(|p| p.name.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        // Satellites 0..3 in a line, station 3 linked to satellite 0.
        Topology::new(3, 1, &[(0, 1), (1, 2), (0, 3)], Vec::new())
    }

    #[test]
    fn a_fail_isl_value_names_an_isl_and_its_times() {
        let t = topo();
        assert_eq!(
            parse_fail("2-1@10s+5s", &t).unwrap(),
            vec![
                FaultEvent {
                    at_ns: 10_000_000_000,
                    link: (1, 2),
                    up: false
                },
                FaultEvent {
                    at_ns: 15_000_000_000,
                    link: (1, 2),
                    up: true
                }
            ]
        );
        use FaultSpecError as F;
        let malformed = |e: &F, w: &str| matches!(e, F::Malformed { why, .. } if *why == w);
        for (spec, want) in [
            ("0-1", "no '@'"),
            ("01@1s", "no '-' between the nodes"),
            ("x-1@1s", "A is not a node id"),
        ] {
            let e = parse_fail(spec, &t).unwrap_err();
            assert!(malformed(&e, want), "{spec}: {e}");
            assert!(e.to_string().contains(want), "{spec}: {e}");
        }
        let e = parse_fail("0-2@1s", &t).unwrap_err();
        assert!(matches!(e, F::NoSuchLink { a: 0, b: 2, .. }), "{e}");
        assert!(e.to_string().contains("there is no link 0-2"), "{e}");
        let e = parse_fail("3-0@1s", &t).unwrap_err();
        assert!(matches!(e, F::GroundLink { a: 3, b: 0, .. }), "{e}");
        let e = parse_fail("0-1@1s+soon", &t).unwrap_err();
        assert!(matches!(e, F::Time { .. }), "{e}");
    }

    #[test]
    fn random_failures_hit_isls_on_paths_and_repeat_with_the_seed() {
        let t = topo();
        let pair = PairTrace {
            paths: vec![(0, vec![3, 0, 1, 2])],
            ..Default::default()
        };
        let r = RandomFailures {
            count: 4,
            restore_after_ns: Some(7),
            seed: 9,
        };
        let ev = r.events(std::slice::from_ref(&pair), &t, 0, 1_000);
        assert_eq!(ev.len(), 8);
        for w in ev.chunks(2) {
            assert!(!w[0].up && w[1].up && w[1].at_ns == w[0].at_ns + 7);
            assert!([(0, 1), (1, 2)].contains(&w[0].link), "{w:?}");
            assert!((200..800).contains(&w[0].at_ns), "{w:?}");
        }
        assert_eq!(ev, r.events(std::slice::from_ref(&pair), &t, 0, 1_000));
        let rep = report_for(&ev[0], &[pair], 1.5);
        assert_eq!((rep.pairs_on_link.len(), rep.wall_s), (1, 1.5));
    }

    #[test]
    fn a_flap_is_count_downs_and_ups_half_a_period_each() {
        let t = topo();
        let (a, b) = *t.links.iter().find(|l| !t.is_gs(l.1)).unwrap();
        let v = parse_flap(&format!("{a}-{b}@10s,4s,3"), &t).unwrap();
        let s = |x: i64| x * 1_000_000_000;
        let want: Vec<(i64, bool)> = vec![
            (s(10), false),
            (s(12), true),
            (s(14), false),
            (s(16), true),
            (s(18), false),
            (s(20), true),
        ];
        let got: Vec<(i64, bool)> = v.iter().map(|f| (f.at_ns, f.up)).collect();
        assert_eq!(got, want);
        assert!(v.iter().all(|f| f.link == (a, b)));
        for bad in [
            format!("{a}-{b}@10s,4s"),
            format!("{a}-{b}@10s,4s,0"),
            format!("{a}-{b}@10s,x,2"),
            "9999-9998@1s,2s,2".to_string(),
        ] {
            assert!(parse_flap(&bad, &t).is_err(), "{bad}");
        }
    }
}
