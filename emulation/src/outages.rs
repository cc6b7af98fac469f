//! Process faults an emulation injects: the control process stopped
//! (`--kill-controller-at T[+DUR]`, restarted DUR later if given) and a
//! node's dataplane stopped and restarted from its state directory
//! (`--kill-node N@T[+DUR]`, 1 s of wall time later when no DUR is given),
//! and what each cost: the traffic delivered while it lasted and, for a
//! node, how long after its restart it forwarded with the FIB its schedule
//! has in force.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::dataplanes::{ask_schedule, ask_version};
use control::predict::scenario::parse_duration_ns;

use super::report::PairTrace;

/// What stops (and maybe starts again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Controller,
    Node(u32),
}

/// One process fault: `target` stops at schedule time `at_ns` and starts
/// again at `back_ns` (`None`: never; a node is then back 1 s of wall
/// time later).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    pub target: Target,
    pub at_ns: i64,
    pub back_ns: Option<i64>,
}

/// `T` or `T+DUR` in schedule time.
fn times(spec: &str, when: &str) -> Result<(i64, Option<i64>)> {
    let t = |s: &str| parse_duration_ns(s).map_err(|e| anyhow::anyhow!("{spec:?}: {e}"));
    Ok(match when.split_once('+') {
        Some((a, d)) => {
            let a = t(a)?;
            (a, Some(a + t(d)?))
        }
        None => (t(when)?, None),
    })
}

/// Parses `--kill-controller-at T[+DUR]`.
pub fn parse_controller(spec: &str) -> Result<Outage> {
    let (at_ns, back_ns) = times(spec, spec).context("--kill-controller-at")?;
    Ok(Outage {
        target: Target::Controller,
        at_ns,
        back_ns,
    })
}

/// Parses `--kill-node N@T[+DUR]`; `nodes` is how many nodes there are.
pub fn parse_node(spec: &str, nodes: usize) -> Result<Outage> {
    let (n, when) = spec
        .split_once('@')
        .with_context(|| format!("--kill-node {spec:?}: expected N@T or N@T+DUR"))?;
    let n: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (*n as usize) < nodes)
        .with_context(|| format!("--kill-node {spec:?}: {n:?} is not one of the {nodes} nodes"))?;
    let (at_ns, back_ns) = times(spec, when).context("--kill-node")?;
    Ok(Outage {
        target: Target::Node(n),
        at_ns,
        back_ns,
    })
}

/// A process fault and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct OutageReport {
    /// "controller" or "node N".
    pub what: String,
    /// Schedule time it stopped (s), and started again (s) if it did.
    pub at_s: f64,
    pub back_at_s: Option<f64>,
    /// Wall seconds of the emulation when it stopped and when it was back.
    pub wall_s: f64,
    pub back_wall_s: Option<f64>,
    /// Packets delivered from the stop to 3 s after it was back (to the
    /// end of the traffic if it never was), and how many fewer than were
    /// sent at the flows' rate: a black hole leaves no sequence gap to
    /// count, so the loss is what did not arrive.
    pub delivered_during: u64,
    pub lost_during: u64,
    /// A node: wall ms from its restart to forwarding with the FIB its
    /// schedule has in force (`None`: not within 10 s).
    pub right_fib_after_ms: Option<f64>,
}

impl OutageReport {
    pub fn new(o: &Outage, wall_s: f64) -> OutageReport {
        OutageReport {
            what: match o.target {
                Target::Controller => "controller".into(),
                Target::Node(n) => format!("node {n}"),
            },
            at_s: o.at_ns as f64 / 1e9,
            back_at_s: None,
            wall_s,
            back_wall_s: None,
            delivered_during: 0,
            lost_during: 0,
            right_fib_after_ms: None,
        }
    }

    /// Counts the traffic of the samples that overlap it (see the
    /// fields). `rate`: packets per second of each direction of each pair.
    pub fn count(&mut self, pairs: &[PairTrace], rate: u32) {
        let to = self.back_wall_s.map_or(f64::INFINITY, |b| b + 3.0);
        let (mut delivered, mut secs) = (0u64, 0.0);
        for p in pairs {
            // The last sample is the traffic's partial one: left out.
            let whole = &p.samples[..p.samples.len().saturating_sub(1)];
            for s in whole.iter().filter(|s| s.overlaps(self.wall_s, to)) {
                delivered += s.delivered;
                secs += s.secs();
            }
        }
        self.delivered_during = delivered;
        let sent = (secs * f64::from(rate) * 2.0).round() as u64;
        self.lost_during = sent.saturating_sub(delivered);
    }
}

/// Waits until the dataplane at `socket` forwards with the FIB its held
/// schedule has in force (or, holding none, answers at all); the wall time
/// that took from `since`, at most `limit`.
pub fn right_fib_after(socket: &Path, since: Instant, limit: Duration) -> Option<Duration> {
    while since.elapsed() < limit {
        let Some(s) = ask_schedule(socket) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let want = s.in_force.and_then(|i| s.entries.get(i)).map(|e| e.1);
        if let Some(v) = ask_version(socket) {
            if want.is_none_or(|w| v.active == w) {
                return Some(since.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A node's state directory under the emulation's output.
pub fn state_dir(out: &Path, node: u32) -> PathBuf {
    out.join("state").join(format!("n{node}"))
}

/// Refuses outages outside the window.
pub fn check(outages: &[Outage], window: (i64, i64)) -> Result<()> {
    for o in outages {
        if o.at_ns < window.0 || o.at_ns >= window.1 {
            bail!(
                "a fault at {} s is outside the window ({} s .. {} s)",
                o.at_ns as f64 / 1e9,
                window.0 as f64 / 1e9,
                window.1 as f64 / 1e9
            );
        }
    }
    Ok(())
}

/// What restarting processes takes: the binaries, the wiring, the control
/// process's extra arguments, and the geometry to set again on a node that
/// comes back (its links' state lives in its dataplane).
#[derive(Debug)]
pub struct Restarts {
    pub dp: super::dataplanes::DpProgram,
    pub ctl_bin: PathBuf,
    /// The namespace the control process runs in.
    pub ctl_ns: String,
    pub wiring: PathBuf,
    pub ctl_extra: Vec<String>,
    pub geometry: super::geometry::Geometry,
    /// The windows the control process uploads (schedule ns); `None` when
    /// it runs `--one-ahead` (nodes hold no schedule).
    pub window_ns: Option<i64>,
}

/// Every stop and start in wall time order: (wall ns, outage index, start).
pub fn actions(outages: &[Outage], to_wall: impl Fn(i64) -> u64) -> Vec<(u64, usize, bool)> {
    let mut v = Vec::new();
    for (i, o) in outages.iter().enumerate() {
        let stop = to_wall(o.at_ns);
        v.push((stop, i, false));
        match (o.back_ns, o.target) {
            (Some(b), _) => v.push((to_wall(b).max(stop + 1), i, true)),
            (None, Target::Node(_)) => v.push((stop + 1_000_000_000, i, true)),
            (None, Target::Controller) => {}
        }
    }
    v.sort_by_key(|a| (a.0, a.2));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_parse_and_order_their_stops_and_starts() {
        let c = parse_controller("120s+60s").unwrap();
        assert_eq!(
            (c.at_ns, c.back_ns),
            (120_000_000_000, Some(180_000_000_000))
        );
        let n = parse_node("5@300s", 40).unwrap();
        assert_eq!((n.target, n.back_ns), (Target::Node(5), None));
        assert!(parse_node("40@1s", 40).is_err(), "no node 40 of 40");
        assert!(parse_node("5", 40).is_err());
        assert!(parse_controller("soon").is_err());
        let never = parse_controller("10s").unwrap();
        // Wall = schedule ns / 10: a node is back 1 s of wall time later,
        // a controller without DUR never.
        let a = actions(&[n, never], |t| t as u64 / 10);
        assert_eq!(
            a,
            vec![
                (1_000_000_000, 1, false),
                (30_000_000_000, 0, false),
                (31_000_000_000, 0, true)
            ]
        );
        assert!(
            check(&[n], (0, 200_000_000_000)).is_err(),
            "outside the window"
        );
    }
}
