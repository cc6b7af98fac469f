//! Whether each dataplane forwards with the FIB its schedule holds for now,
//! checked by the emulator itself: once a second while the run lasts and
//! once at its end. With schedule windows (issue 14, RFC 9657's
//! time-variant routing) a node activates its entries on its own, so this
//! is what shows that forwarding stays right while the control process is
//! gone: the control process's own read-backs stop with it.
//!
//! A reading is the node's active FIB version (`Version`) taken between
//! wall times `t0` and `t1`. It is right when the version is one of the
//! held schedule's entries in force at some moment of `[t0 - slack,
//! t1 + slack]` (an entry falling due during the call may or may not have
//! flipped yet). The held entries (`ShowSchedule`) are cached and fetched
//! again only when a reading does not match them, so a second's check
//! costs each node one `Version` call, as the live view's line already did.
//!
//! A node has *run out* when the window it holds has ended (its serial
//! stamps the window's start, `control::windows::stamp`, and windows are
//! `--window` long) and an instant of its predicted plan has passed since:
//! it forwards with its last entry while the plan has moved on. (After a
//! repair under failed links the plan's instants may move by a step; the
//! check uses the instants predicted without failures, so it can be off by
//! a step at the window's end.) Nodes that hold no schedule
//! (`--one-ahead`) are not checked.

use serde::Serialize;

use super::controller::Clock;
use super::dataplanes::{ask_schedule, ask_version, Sockets};
use super::now_ns;
use control::windows::stamp_instant_us;

/// Entries falling due this close to a reading may or may not have
/// flipped yet.
const SLACK_NS: u64 = 5_000_000;

/// One node's active version and when it was read.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub active: u64,
    pub t0: u64,
    pub t1: u64,
}

/// Reads `node`'s active FIB version; `None` if it does not answer.
pub fn read(sockets: &Sockets, node: u32) -> Option<Reading> {
    let t0 = now_ns();
    let v = ask_version(&sockets.of(node))?;
    Some(Reading {
        active: v.active,
        t0,
        t1: now_ns(),
    })
}

/// What a reading says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The entry in force is active.
    Right,
    /// Another version is active (`expected` is the entry in force).
    Wrong { active: u64, expected: u64 },
    /// The held window ended before a predicted instant that has passed.
    RanOut { held_until: u64, missed: u64 },
    /// The node holds no schedule.
    NoSchedule,
}

/// The readings' tally (in the summary).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Readings of nodes holding a schedule.
    pub checked: u64,
    pub wrong: u64,
    pub ran_out: u64,
    /// The first few that were not right, as lines.
    pub examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, node: u32, v: Verdict, when: &str) {
        let line = match v {
            Verdict::NoSchedule => return,
            Verdict::Right => {
                self.checked += 1;
                return;
            }
            Verdict::Wrong { active, expected } => {
                self.wrong += 1;
                format!("{when}: n{node} had version {active} active, its schedule {expected}")
            }
            Verdict::RanOut { held_until, missed } => {
                self.ran_out += 1;
                format!(
                    "{when}: n{node}'s window ended at wall {held_until} ns, before the plan's instant at {missed} ns"
                )
            }
        };
        self.checked += 1;
        if self.examples.len() < 10 {
            self.examples.push(line);
        }
    }
}

/// A node's schedule as last fetched: its entries (wall ns, version) and
/// the wall time its window ends.
#[derive(Debug, Clone)]
pub struct Held {
    pub entries: Vec<(u64, u64)>,
    pub ends: u64,
}

/// The checker: every node's predicted instants (wall ns) and the
/// schedules last fetched.
#[derive(Debug)]
pub struct Checker {
    plan_wall: Vec<Vec<u64>>,
    held: Vec<Option<Held>>,
    window_ns: i64,
    clock: Clock,
    pub during: Tally,
}

impl Checker {
    /// `instants[n]`: node `n`'s predicted FIB instants (schedule ns,
    /// sorted); windows are `window_ns` long; `clock` maps schedule time
    /// to wall time.
    pub fn new(instants: &[Vec<i64>], window_ns: i64, clock: Clock) -> Checker {
        Checker {
            plan_wall: instants
                .iter()
                .map(|ts| ts.iter().map(|&t| clock.to_wall(t)).collect())
                .collect(),
            held: vec![None; instants.len()],
            window_ns,
            clock,
            during: Tally::default(),
        }
    }

    /// Judges a reading of `node` taken during the run, `wall_s` into it.
    pub fn during(&mut self, sockets: &Sockets, node: u32, r: Reading, wall_s: f64) {
        let v = self.judge(sockets, node, r);
        self.during.add(node, v, &format!("{wall_s:.1} s"));
    }

    /// Reads and judges every node once more (at the end of the run).
    pub fn at_end(&mut self, sockets: &Sockets) -> Tally {
        let mut t = Tally::default();
        for node in 0..self.held.len() as u32 {
            if let Some(r) = read(sockets, node) {
                let v = self.judge(sockets, node, r);
                t.add(node, v, "at the end");
            }
        }
        t
    }

    fn judge(&mut self, sockets: &Sockets, node: u32, r: Reading) -> Verdict {
        let i = node as usize;
        let cached = self.held[i]
            .as_ref()
            .map(|h| verdict(h, &self.plan_wall[i], r));
        if cached == Some(Verdict::Right) {
            return Verdict::Right;
        }
        // Fetched again: the node may hold a newer window than the cache.
        self.held[i] = ask_schedule(&sockets.of(node)).and_then(|info| {
            let serial = info.serial?;
            let start_ns = stamp_instant_us(serial).saturating_mul(1000) as i64;
            Some(Held {
                entries: info.entries,
                ends: self.clock.to_wall(start_ns.saturating_add(self.window_ns)),
            })
        });
        let Some(held) = &self.held[i] else {
            return cached.unwrap_or(Verdict::NoSchedule);
        };
        let v = verdict(held, &self.plan_wall[i], r);
        if !matches!(v, Verdict::Wrong { .. }) {
            return v;
        }
        // Read before a window that had just come in was applied (a
        // repair's entry in force is due at once): read once more.
        std::thread::sleep(std::time::Duration::from_millis(20));
        match read(sockets, node) {
            Some(again) => verdict(held, &self.plan_wall[i], again),
            None => Verdict::NoSchedule,
        }
    }
}

/// Judges reading `r` against the held schedule and the plan's instants
/// (wall ns).
pub fn verdict(held: &Held, plan_wall: &[u64], r: Reading) -> Verdict {
    let held_until = held.ends;
    let held = &held.entries[..];
    if held.is_empty() {
        return Verdict::NoSchedule;
    }
    let (from, to) = (r.t0.saturating_sub(SLACK_NS), r.t1 + SLACK_NS);
    // The entries in force at some moment of [from, to]: the one in force
    // at `from` and every one falling due up to `to`.
    let first = held.partition_point(|e| e.0 <= from).saturating_sub(1);
    let end = held.partition_point(|e| e.0 <= to).max(first + 1);
    if held[first..end].iter().any(|e| e.1 == r.active) {
        if let Some(&missed) = plan_wall.iter().find(|&&t| t >= held_until && t < from) {
            return Verdict::RanOut { held_until, missed };
        }
        return Verdict::Right;
    }
    Verdict::Wrong {
        active: r.active,
        expected: held[end - 1].1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn held(entries: &[(u64, u64)], ends: u64) -> Held {
        Held {
            entries: entries.to_vec(),
            ends,
        }
    }

    fn at(t: u64, active: u64) -> Reading {
        Reading {
            active,
            t0: t,
            t1: t + MS,
        }
    }

    #[test]
    fn the_entry_in_force_is_right_and_any_other_is_wrong() {
        let held = held(
            &[(1000 * MS, 11), (2000 * MS, 12), (3000 * MS, 13)],
            9000 * MS,
        );
        let plan = [1000 * MS, 2000 * MS, 3000 * MS];
        assert_eq!(verdict(&held, &plan, at(1500 * MS, 11)), Verdict::Right);
        assert_eq!(
            verdict(&held, &plan, at(2500 * MS, 11)),
            Verdict::Wrong {
                active: 11,
                expected: 12
            }
        );
        // Before the first entry: the first is expected.
        assert_eq!(
            verdict(&held, &plan, at(500 * MS, 99)),
            Verdict::Wrong {
                active: 99,
                expected: 11
            }
        );
    }

    #[test]
    fn an_entry_falling_due_during_the_reading_may_or_may_not_be_active() {
        let held = held(&[(1000 * MS, 11), (2000 * MS, 12)], 9000 * MS);
        let r = at(1999 * MS, 11);
        assert_eq!(verdict(&held, &[], r), Verdict::Right);
        let r = at(1999 * MS, 12);
        assert_eq!(verdict(&held, &[], r), Verdict::Right);
        // Well after it, the old one is wrong.
        assert!(matches!(
            verdict(&held, &[], at(2100 * MS, 11)),
            Verdict::Wrong { .. }
        ));
    }

    #[test]
    fn a_window_that_ended_before_a_passed_instant_ran_out() {
        // The window [0, 2500 ms) holds two entries; the plan changes at 3 s.
        let w = held(&[(1000 * MS, 11), (2000 * MS, 12)], 2500 * MS);
        let plan = [1000 * MS, 2000 * MS, 3000 * MS];
        assert_eq!(verdict(&w, &plan, at(2900 * MS, 12)), Verdict::Right);
        assert_eq!(
            verdict(&w, &plan, at(3100 * MS, 12)),
            Verdict::RanOut {
                held_until: 2500 * MS,
                missed: 3000 * MS
            }
        );
        // A window that reaches past the plan's change is not run out,
        // although its last entry is older than the change.
        let longer = held(&[(1000 * MS, 11), (2000 * MS, 12)], 5000 * MS);
        assert_eq!(verdict(&longer, &plan, at(3100 * MS, 12)), Verdict::Right);
        assert_eq!(
            verdict(&held(&[], 5000 * MS), &plan, at(3100 * MS, 12)),
            Verdict::NoSchedule
        );
    }

    #[test]
    fn the_tally_counts_and_keeps_a_few_examples() {
        let mut t = Tally::default();
        t.add(1, Verdict::Right, "1.0 s");
        t.add(1, Verdict::NoSchedule, "1.0 s");
        for _ in 0..12 {
            t.add(
                2,
                Verdict::Wrong {
                    active: 1,
                    expected: 2,
                },
                "2.0 s",
            );
        }
        assert_eq!((t.checked, t.wrong, t.ran_out), (13, 12, 0));
        assert_eq!(t.examples.len(), 10);
        assert_eq!(
            t.examples[0],
            "2.0 s: n2 had version 1 active, its schedule 2"
        );
    }
}
