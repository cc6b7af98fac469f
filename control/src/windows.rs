//! Schedule windows: how `orbitmesh-ctl run` keeps every dataplane able to
//! forward right with no control process present (time-variant routing,
//! RFC 9657: the topology is known ahead, so its forwarding state can be
//! installed ahead). Each node is given the next [`DEFAULT_WINDOW_NS`] of
//! its plan (`--window`) as one delta-encoded `Schedule`
//! (`orbitmesh_core::schedule`, `Request::LoadSchedule`); the dataplane
//! activates every entry at its instant on its own and keeps the window on
//! disk. The controller tops the window up every half window, so a node
//! holds between half a window and a whole window of future at any time:
//! a controller lost for up to half a window (5 min by default) costs
//! nothing, and for longer, each node still runs to the end of what it holds.
//!
//! Windows start on a grid of half windows in schedule time: window `j`
//! holds the entry in force at `j * W/2` and every entry before
//! `j * W/2 + W`, and is uploaded at `j * W/2` (the first one at once).
//! After a repair (links found down or back) every node gets a window that
//! starts at the repair's instant, computed without the failed links.
//!
//! ## Serials and versions: the same upload from any controller
//!
//! A window's serial and its entries' FIB versions are [`stamp`]s: the
//! instant in schedule time (µs) shifted left 16 bits, plus a 16-bit salt
//! of the set of failed links the plan was computed under (0 for none),
//! plus 1. A window's serial stamps its start (its grid point, or the
//! repair's instant); an entry's version stamps its instant. So:
//!
//! - Two controllers (or one restarted) with the same schedules, wiring and
//!   `--start` that see the same links down compute byte-identical windows
//!   with identical serials: the second upload finds the serial held
//!   (`ShowSchedule`) and sends nothing (`WindowHeld`); the dataplane
//!   would anyway take a repeat as a no-op (unsigned) or refuse it as a
//!   replay (signed), and neither disturbs forwarding.
//! - Serials grow with time: a top-up's start is a later grid point, a
//!   repair's start is the (later) instant it was computed at, so the
//!   dataplane's "older serial is refused" rule orders windows by the time
//!   they describe. A controller that is behind (its serial at or below the
//!   held one) leaves the node alone.
//! - The same instant under different failures has a different version, so
//!   a repaired entry in force replaces the unrepaired one at once (the
//!   follower republishes when the version differs), while a re-upload of
//!   the same plan under a new serial keeps every version and republishes
//!   nothing. Versions strictly grow within a window since instants do.
//! - Limits: 2^47 µs (4.4 years) of schedule time; two failure sets whose
//!   salts collide (1 in 65535) would not republish the entry in force
//!   until the next instant.

use crate::distribute::{
    tally_readback, wall_ns, Call, Link, LocalPort, NodePlan, NodeReport, NodeWiring, Plan, Repair,
    Unreachable,
};
use crate::events::Event;
use crate::predict::schedule::NodeSchedule;
use orbitmesh_core::fib::spec::FibSpec;
use orbitmesh_core::protocol::endpoint::Endpoint;
use orbitmesh_core::protocol::{Request, Response, ScheduleInfo};
use orbitmesh_core::schedule::Schedule;
use orbitmesh_core::sign::Signed;
use std::collections::{BTreeSet, VecDeque};

/// The default window: 10 minutes of schedule time.
pub const DEFAULT_WINDOW_NS: i64 = 600_000_000_000;

/// Signs a window (`--key`).
pub type Signer<'a> = &'a dyn Fn(&Schedule) -> Result<Signed, String>;

/// How windows are made: their length (schedule ns) and the signer.
#[derive(Clone, Copy)]
pub struct Windows<'a> {
    pub window_ns: i64,
    pub sign: Option<Signer<'a>>,
}

impl std::fmt::Debug for Windows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("window_ns", &self.window_ns)
            .field("signed", &self.sign.is_some())
            .finish()
    }
}

/// The serial or version for schedule instant `t_ns` under failure set
/// `salt` (see the module docs).
pub fn stamp(t_ns: i64, salt: u16) -> u64 {
    (((t_ns.max(0) / 1_000) as u64) << 16 | u64::from(salt)) + 1
}

/// The schedule instant (µs) a [`stamp`] stands for.
pub fn stamp_instant_us(v: u64) -> u64 {
    v.saturating_sub(1) >> 16
}

/// Whether `active` shows that the entry versioned `v` has been reached:
/// it is `v`'s instant's FIB (under any set of failed links) or a later
/// instant's.
pub fn in_force_since(active: u64, v: u64) -> bool {
    stamp_instant_us(active) >= stamp_instant_us(v)
}

/// The salt of a set of failed links: 0 for none, else 1..=65535 (FNV-1a).
pub fn salt(failed: &BTreeSet<(u32, u32)>) -> u16 {
    if failed.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (a, b) in failed {
        for byte in a.to_le_bytes().into_iter().chain(b.to_le_bytes()) {
            h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
    1 + (h % 65_535) as u16
}

/// The plan entries of the window starting at `start` of length `len`:
/// the one in force at `start` (or the first) and every one before
/// `start + len`.
pub fn window_range(plan: &Plan, start: i64, len: i64) -> std::ops::Range<usize> {
    let first = plan.partition_point(|(t, _)| *t <= start).saturating_sub(1);
    let end = plan.partition_point(|(t, _)| *t < start.saturating_add(len));
    first..end.max((first + 1).min(plan.len()))
}

/// The window of `plan` entries `range` as a delta-encoded schedule for
/// node `name`: activation instants on the wall clock, versions stamped.
pub fn window_schedule(
    name: &str,
    serial: u64,
    plan: &Plan,
    range: std::ops::Range<usize>,
    salt: u16,
    wall: impl Fn(i64) -> u64,
) -> Schedule {
    let fibs: Vec<(u64, FibSpec)> = plan[range]
        .iter()
        .map(|(t, f)| {
            let mut f = f.clone();
            f.version = stamp(*t, salt);
            (wall(*t), f)
        })
        .collect();
    Schedule::delta_encoded(name, serial, &fibs)
}

/// The FIB of `plan` in force at `t`, version aside (the same forwarding
/// under another stamp is not a change).
fn fib_in_force(plan: &Plan, t: i64) -> Option<FibSpec> {
    let k = plan.partition_point(|(at, _)| *at <= t).checked_sub(1)?;
    let mut f = plan[k].1.clone();
    f.version = 0;
    Some(f)
}

/// Per-node progress of [`drive_windows`].
struct NodeWin {
    plan: Plan,
    salt: u16,
    /// Where the next window starts (schedule ns); `None`: the plan is
    /// covered to its end.
    next: Option<i64>,
    /// The next window is due at once (the first one, or a repair).
    urgent: bool,
    repair: bool,
    /// The last instant queued for verification.
    queued_to: Option<i64>,
    /// (wall time, version) to read back once the time has passed.
    verify: VecDeque<(u64, u64)>,
    retry_at: u64,
    backoff_ns: u64,
}

/// Drives every node's plan as windows (see the module docs): like
/// `distribute::drive`, with `call` the control channel, `now_ns` the
/// clock, and `repair` the link watch; returns when every instant of every
/// plan has been uploaded and verified.
#[allow(clippy::too_many_arguments)]
pub fn drive_windows(
    plans: &[NodePlan],
    start_ns: u64,
    time_scale: f64,
    win: Windows,
    call: Call<'_>,
    now_ns: &dyn Fn() -> u64,
    repair: Option<&Repair>,
    emit: &mut dyn FnMut(Event),
) -> Vec<NodeReport> {
    let mut d = WinDriver {
        plans,
        start_ns,
        time_scale,
        win,
        half: (win.window_ns / 2).max(1),
        call,
        repair,
        emit,
        reports: plans
            .iter()
            .map(|p| NodeReport {
                node: p.0,
                ..Default::default()
            })
            .collect(),
        st: Vec::new(),
        order: (0..plans.len()).collect(),
        failed: BTreeSet::new(),
        unreachable: Unreachable::default(),
        next_poll: 0,
        end_wall: plans
            .iter()
            .filter_map(|p| p.2.last())
            .map(|(t, _)| wall_ns(start_ns, *t, time_scale))
            .max()
            .unwrap_or(0),
    };
    let first = d.grid(d.sched_t(now_ns()));
    d.st = plans
        .iter()
        .map(|p| NodeWin {
            plan: p.2.clone(),
            salt: 0,
            next: (!p.2.is_empty()).then_some(first),
            urgent: true,
            repair: false,
            queued_to: None,
            verify: VecDeque::new(),
            retry_at: 0,
            backoff_ns: 0,
        })
        .collect();
    loop {
        let now = now_ns();
        let mut wake = u64::MAX;
        let mut pending = false;
        d.watch(now, &mut wake);
        // After a repair, the nodes whose FIB in force changes go first.
        for i in d.order.clone() {
            d.verify(i, now, &mut wake, &mut pending);
            d.upload(i, now, &mut wake, &mut pending);
        }
        if let Some(e) = d.unreachable.summary(now) {
            (d.emit)(e);
        }
        if !pending {
            return d.reports;
        }
        let now = now_ns();
        if wake > now {
            std::thread::sleep(std::time::Duration::from_nanos(
                (wake - now).min(1_000_000_000),
            ));
        }
    }
}

struct WinDriver<'a> {
    plans: &'a [NodePlan],
    start_ns: u64,
    time_scale: f64,
    win: Windows<'a>,
    half: i64,
    call: Call<'a>,
    repair: Option<&'a Repair<'a>>,
    emit: &'a mut dyn FnMut(Event),
    reports: Vec<NodeReport>,
    st: Vec<NodeWin>,
    /// The order nodes are served in each pass.
    order: Vec<usize>,
    failed: BTreeSet<(u32, u32)>,
    unreachable: Unreachable,
    next_poll: u64,
    end_wall: u64,
}

impl WinDriver<'_> {
    fn wall(&self, t: i64) -> u64 {
        wall_ns(self.start_ns, t, self.time_scale)
    }

    /// Schedule time at wall time `now` (negative before schedule time 0).
    fn sched_t(&self, now: u64) -> i64 {
        ((now as i128 - self.start_ns as i128) as f64 * self.time_scale) as i64
    }

    /// The grid point at or before schedule time `t`.
    fn grid(&self, t: i64) -> i64 {
        t.max(0) / self.half * self.half
    }

    /// Uploads node `i`'s next window once it is due (see the module docs).
    fn upload(&mut self, i: usize, now: u64, wake: &mut u64, pending: &mut bool) {
        let Some(start) = self.st[i].next else { return };
        *pending = true;
        let s = &self.st[i];
        let due = if s.urgent { 0 } else { self.wall(start) }.max(s.retry_at);
        if now < due {
            *wake = (*wake).min(due);
            return;
        }
        let (node, socket, _) = &self.plans[i];
        let (node, socket) = (*node, socket.clone());
        let range = window_range(&s.plan, start, self.win.window_ns);
        let serial = stamp(start, s.salt);
        let outcome = self.send(i, &socket, serial, range.clone());
        let s = &mut self.st[i];
        match outcome {
            Err(e) => {
                self.reports[i].failed += 1;
                s.backoff_ns = (s.backoff_ns * 2).clamp(200_000_000, 5_000_000_000);
                s.retry_at = now + s.backoff_ns;
                self.unreachable.failed(node, &e);
                // Retried until the next window is due, which supersedes
                // it; after the plan's end, given up.
                let after = (start / self.half + 1) * self.half;
                if now >= wall_ns(self.start_ns, after, self.time_scale) {
                    let last = s.plan.last().map_or(i64::MIN, |p| p.0);
                    s.next = (after <= last).then_some(after);
                }
                *wake = (*wake).min(s.retry_at);
                return;
            }
            Ok(false) => {}
            Ok(true) => {
                s.backoff_ns = 0;
                let from = s.queued_to;
                for k in range.clone() {
                    let t = s.plan[k].0;
                    if from.is_some_and(|q| t <= q) {
                        continue;
                    }
                    let at = wall_ns(self.start_ns, t, self.time_scale).max(now);
                    s.verify.push_back((at, stamp(t, s.salt)));
                    s.queued_to = Some(t);
                    self.reports[i].staged += 1;
                }
                if s.repair {
                    self.reports[i].repairs += 1;
                    (self.emit)(Event::RepairPushed {
                        node,
                        version: stamp(s.plan[range.start].0, s.salt),
                    });
                }
            }
        }
        let after = (start / self.half + 1) * self.half;
        let last = s.plan.last().map_or(i64::MIN, |p| p.0);
        s.next = (range.end < s.plan.len() || after <= last).then_some(after);
        s.urgent = false;
        s.repair = false;
        if let Some(n) = s.next {
            *wake = (*wake).min(wall_ns(self.start_ns, n, self.time_scale));
        }
    }

    /// Sends one window unless the node holds it (or a later one):
    /// `Ok(true)` when the node has it now, `Ok(false)` when it refused it
    /// (told), `Err` when the node cannot be reached.
    fn send(
        &mut self,
        i: usize,
        socket: &Endpoint,
        serial: u64,
        range: std::ops::Range<usize>,
    ) -> Result<bool, String> {
        let node = self.plans[i].0;
        let answer = (self.call)(socket, Request::ShowSchedule);
        self.unreachable.answered(node, &answer, &mut *self.emit);
        let info: ScheduleInfo = match answer? {
            Response::Schedule(info) => info,
            other => {
                (self.emit)(Event::Unexpected {
                    node,
                    answer: format!("{other:?}"),
                });
                return Ok(false);
            }
        };
        if let Some(held) = info.serial.filter(|h| *h >= serial) {
            (self.emit)(Event::WindowHeld { node, serial, held });
            return Ok(true);
        }
        let s = &self.st[i];
        let (start_ns, scale) = (self.start_ns, self.time_scale);
        let schedule = window_schedule(&info.node, serial, &s.plan, range, s.salt, |t| {
            wall_ns(start_ns, t, scale)
        });
        let entries = schedule.entries.len();
        let signed = match self.win.sign.map(|f| f(&schedule)).transpose() {
            Ok(s) => s,
            Err(message) => {
                self.reports[i].failed += 1;
                (self.emit)(Event::Refused {
                    node,
                    version: serial,
                    message: format!("cannot sign the window: {message}"),
                });
                return Ok(false);
            }
        };
        let req = Request::LoadSchedule {
            schedule,
            allow_empty: false,
            signed,
        };
        let bytes = serde_json::to_vec(&req).map_or(0, |v| v.len());
        let answer = (self.call)(socket, req);
        self.unreachable.answered(node, &answer, &mut *self.emit);
        match answer? {
            Response::Schedule(_) => {
                self.reports[i].windows += 1;
                (self.emit)(Event::WindowLoaded {
                    node,
                    serial,
                    entries,
                    bytes,
                });
                Ok(true)
            }
            Response::Error { message } => {
                self.reports[i].failed += 1;
                (self.emit)(Event::Refused {
                    node,
                    version: serial,
                    message,
                });
                Ok(false)
            }
            other => {
                self.reports[i].failed += 1;
                (self.emit)(Event::Unexpected {
                    node,
                    answer: format!("{other:?}"),
                });
                Ok(false)
            }
        }
    }

    /// Reads back node `i`'s versions whose instant has passed: the one
    /// expected, or a later instant's, must be active. The same instant
    /// under another set of failed links counts as well: a second
    /// controller (or this one's own watch a moment later) may have
    /// repaired it in between.
    fn verify(&mut self, i: usize, now: u64, wake: &mut u64, pending: &mut bool) {
        let (node, socket, _) = &self.plans[i];
        while let Some(&(due, v)) = self.st[i].verify.front() {
            if now < due {
                *pending = true;
                *wake = (*wake).min(due);
                break;
            }
            self.st[i].verify.pop_front();
            let answer = (self.call)(socket, Request::Version);
            tally_readback(
                *node,
                v,
                answer,
                |active| in_force_since(active, v),
                &mut self.reports[i],
                &mut self.unreachable,
                &mut *self.emit,
            );
        }
    }

    /// Link watch, as `distribute::drive`'s: a changed set of links down
    /// replans every node from the instant in force, and each gets a window
    /// starting there at once.
    fn watch(&mut self, now: u64, wake: &mut u64) {
        let Some(r) = self.repair else { return };
        if now >= self.end_wall {
            return;
        }
        if now < self.next_poll {
            *wake = (*wake).min(self.next_poll);
            return;
        }
        self.next_poll = now + r.poll_every_ns;
        *wake = (*wake).min(self.next_poll);
        let down = crate::distribute::links_down(self.plans, self.call, r);
        if down == self.failed {
            return;
        }
        let t = self.sched_t(now).max(0);
        let links: Vec<(u32, u32)> = down.iter().copied().collect();
        let t0 = std::time::Instant::now();
        match (r.replan)(&down, t, None) {
            Ok(new) => {
                (self.emit)(Event::LinksDown {
                    links,
                    schedule_t_ns: t,
                    recompute_ms: t0.elapsed().as_secs_f64() * 1e3,
                });
                let salt = salt(&down);
                let mut changed = vec![false; self.plans.len()];
                for (i, (node, _, _)) in self.plans.iter().enumerate() {
                    if let Some((_, _, p)) = new.iter().find(|n| n.0 == *node) {
                        let s = &mut self.st[i];
                        changed[i] = fib_in_force(&s.plan, t) != fib_in_force(p, t);
                        s.plan = p.clone();
                        s.salt = salt;
                        s.next = (!p.is_empty()).then_some(t);
                        s.urgent = true;
                        s.repair = true;
                        s.verify.clear();
                        s.queued_to = None;
                    }
                }
                self.failed = down;
                self.order.sort_by_key(|&i| (!changed[i], i));
            }
            Err(e) => (self.emit)(Event::RepairFailed {
                links,
                error: e.to_string(),
            }),
        }
    }
}

/// A wiring of `sched`'s node with every neighbour its schedule names
/// (next hop or backup) on a port of its own, and a LAN port for a ground
/// station: what the emulator builds, for offline measurements.
pub fn wiring_for(sched: &NodeSchedule) -> NodeWiring {
    let named = sched
        .initial
        .entries
        .iter()
        .chain(sched.deltas.iter().flat_map(|d| d.changes.iter()))
        .flat_map(|e| [e.next_hop, e.backup])
        .flatten()
        .collect::<BTreeSet<u32>>();
    let mac = |n: u32| {
        format!(
            "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
            n >> 24,
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        )
    };
    NodeWiring {
        socket: Some(format!("n{}.sock", sched.node).into()),
        remote: None,
        links: named
            .into_iter()
            .map(|nb| Link {
                neighbor: nb,
                port: format!("p{nb}"),
                dst_mac: mac(nb),
                src_mac: mac(sched.node),
            })
            .collect(),
        local: sched.local_prefix.map(|_| LocalPort {
            port: "lan0".into(),
            dst_mac: mac(u32::MAX),
            src_mac: mac(sched.node),
        }),
    }
}

/// Bytes of the `LoadSchedule` requests that carry `plan` as windows of
/// `window_ns` over its whole length, with every entry in full (`false`)
/// or delta-encoded (`true`); and the schedule time they cover. For the
/// record in bench/results/windows.md.
pub fn encoded_bytes(plan: &Plan, window_ns: i64, delta: bool) -> u64 {
    let Some(last) = plan.last().map(|p| p.0) else {
        return 0;
    };
    let mut total = 0u64;
    let mut start = 0;
    loop {
        let range = window_range(plan, start, window_ns);
        let mut s = window_schedule("n", stamp(start, 0), plan, range, 0, |t| t.max(0) as u64);
        if !delta {
            let full: Vec<_> = (0..s.entries.len())
                .scan(None, |prev, k| {
                    let f = s.expand_entry(k, prev.take()).expect("built above");
                    *prev = Some(f.clone());
                    Some(f)
                })
                .collect();
            for (e, f) in s.entries.iter_mut().zip(full) {
                e.fib = orbitmesh_core::schedule::EntryFib::Full(f);
            }
        }
        let req = Request::LoadSchedule {
            schedule: s,
            allow_empty: false,
            signed: None,
        };
        total += serde_json::to_vec(&req).map_or(0, |v| v.len() as u64);
        start += window_ns / 2;
        if start > last {
            return total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ts: &[i64]) -> Plan {
        ts.iter()
            .map(|t| {
                (
                    *t,
                    FibSpec {
                        version: 1,
                        ..FibSpec::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_window_holds_the_entry_in_force_and_those_before_its_end() {
        let p = plan(&[0, 100, 200, 300, 400]);
        assert_eq!(window_range(&p, 0, 200), 0..2);
        assert_eq!(window_range(&p, 150, 200), 1..4);
        assert_eq!(window_range(&p, 450, 200), 4..5);
        assert_eq!(window_range(&plan(&[500]), 0, 200), 0..1);
    }

    #[test]
    fn an_entry_is_reached_by_its_instant_under_any_failures_or_a_later_one() {
        let failed: BTreeSet<(u32, u32)> = [(6, 11)].into();
        let v = stamp(5_000_000_000, 0);
        assert!(in_force_since(v, v));
        assert!(in_force_since(stamp(5_000_000_000, salt(&failed)), v));
        assert!(in_force_since(stamp(6_000_000_000, 0), v));
        assert!(!in_force_since(stamp(4_000_000_000, salt(&failed)), v));
    }

    #[test]
    fn stamps_grow_with_the_instant_and_differ_by_failures() {
        let none = BTreeSet::new();
        let one: BTreeSet<(u32, u32)> = [(3, 4)].into_iter().collect();
        let other: BTreeSet<(u32, u32)> = [(4, 5)].into_iter().collect();
        assert_eq!(salt(&none), 0);
        assert_ne!(salt(&one), 0);
        assert_ne!(salt(&one), salt(&other));
        assert!(stamp(1_000, salt(&one)) < stamp(2_000, 0));
        assert!(stamp(1_000, 0) < stamp(1_000, salt(&one)));
        assert_eq!(stamp_instant_us(stamp(7_000, 65_535)), 7);
        assert_eq!(stamp_instant_us(stamp(7_000, 0)), 7);
        assert_eq!(stamp(0, 0), 1, "never version 0 (the empty start FIB)");
    }
}
