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
//! starts at the repair's instant, computed without the failed links, in
//! two steps, because recomputing a whole window takes long (0.2-0.7 s in
//! release for the demo's 40 nodes, seconds in debug; one step 1-3 ms,
//! bench/results/windows.md):
//!
//! 1. Only the step in force is recomputed, and each node whose FIB in
//!    force changes gets it at once (the `links_down` event is emitted
//!    then), followed by the rest of the window it holds, computed before
//!    the failure: until the rest comes, every node follows its old plan
//!    after the step in force, as all did before, and the dataplanes'
//!    backups carry what crosses the failed link.
//! 2. In the next pass the rest is recomputed and every node gets its
//!    whole repaired window.
//!
//! Uploads due in the same pass (a repair's, or a top-up's at a grid
//! point) go to up to [`UPLOADS_AT_ONCE`] nodes at once, the nodes whose
//! FIB in force changes first: a dataplane answers after keeping the
//! window on disk (fsync), which one after the other added up to 0.5 s.
//!
//! ## Serials and versions: the same upload from any controller
//!
//! A window's serial and its entries' FIB versions are [`stamp`]s: the
//! instant in schedule time (µs) shifted left 16 bits, plus a 16-bit salt
//! of the set of failed links the plan was computed under (0 for none),
//! plus 1. A window's serial stamps its start (its grid point, or the
//! repair's instant; a repair's whole window, which follows its first
//! window (step 1 above) from the same instant, stamps that instant plus
//! 1 µs); an entry's version stamps its instant, with the salt of the plan
//! it comes from (in a repair's first window, the old plan's entries keep
//! their old salt, so the whole window's replace them). So:
//!
//! - Two controllers (or one restarted) with the same schedules, wiring and
//!   `--start` that see the same links down compute byte-identical windows
//!   with identical serials: the second upload finds the serial held
//!   (`ShowSchedule`) and sends nothing (`WindowHeld`); the dataplane
//!   would anyway take a repeat as a no-op (unsigned) or refuse it as a
//!   replay (signed), and neither disturbs forwarding. When both find it
//!   missing at the same moment and both send it, the signed node refuses
//!   the second as a replay; that controller reads the serial again and
//!   takes it as held ([`held_meanwhile`]), not as a failure.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The default window: 10 minutes of schedule time.
pub const DEFAULT_WINDOW_NS: i64 = 600_000_000_000;

/// Signs a window (`--key`); called from the threads that upload.
pub type Signer<'a> = &'a (dyn Fn(&Schedule) -> Result<Signed, String> + Sync);

/// Most nodes a pass uploads to at once (see the module docs).
pub const UPLOADS_AT_ONCE: usize = 32;

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

/// The serial of a repair's whole window from `t_ns` (see the module
/// docs): above its first window's, `stamp(t_ns, salt)`.
pub fn rest_serial(t_ns: i64, salt: u16) -> u64 {
    stamp(t_ns.max(0).saturating_add(1_000), salt)
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
    versioned_window(name, serial, plan, range, |k| stamp(plan[k].0, salt), wall)
}

/// [`window_schedule`] with entry `k`'s version given by `version(k)`.
fn versioned_window(
    name: &str,
    serial: u64,
    plan: &Plan,
    range: std::ops::Range<usize>,
    version: impl Fn(usize) -> u64,
    wall: impl Fn(i64) -> u64,
) -> Schedule {
    let fibs: Vec<(u64, FibSpec)> = range
        .map(|k| {
            let (t, f) = &plan[k];
            let mut f = f.clone();
            f.version = version(k);
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
    /// The next window's serial when it is not `stamp(next, salt)` (a
    /// repair's whole window).
    serial: Option<u64>,
    /// The next window is due at once (the first one, or a repair).
    urgent: bool,
    /// The next upload is this node's repair (counted, told).
    repair: bool,
    /// The plan is a repair's step in force (and the old plan after it),
    /// until the rest is recomputed.
    quick: bool,
    /// Plan entries from this index on are the plan from before a repair,
    /// stamped with this salt (see the module docs).
    stale: Option<(usize, u16)>,
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
        rest: None,
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
            serial: None,
            urgent: true,
            repair: false,
            quick: false,
            stale: None,
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
        for i in d.order.clone() {
            d.verify(i, now, &mut wake, &mut pending);
        }
        d.uploads(now, &mut wake, &mut pending);
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
    /// The order nodes are served in each pass: after a repair, the nodes
    /// whose FIB in force changes first.
    order: Vec<usize>,
    failed: BTreeSet<(u32, u32)>,
    /// A repair whose rest is to be recomputed.
    rest: Option<PendingRest>,
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

    /// Uploads every node's next window that is due, to up to
    /// [`UPLOADS_AT_ONCE`] nodes at once, in `order` (see the module docs).
    fn uploads(&mut self, now: u64, wake: &mut u64, pending: &mut bool) {
        let mut jobs = Vec::new();
        for &i in &self.order {
            let s = &self.st[i];
            let Some(start) = s.next else { continue };
            *pending = true;
            let due = if s.urgent { 0 } else { self.wall(start) }.max(s.retry_at);
            if now < due {
                *wake = (*wake).min(due);
                continue;
            }
            let range = window_range(&s.plan, start, self.win.window_ns);
            let serial = s.serial.unwrap_or_else(|| stamp(start, s.salt));
            jobs.push(Job {
                i,
                start,
                serial,
                range,
            });
        }
        let sent = self.exchanges(&jobs);
        for (job, x) in jobs.into_iter().zip(sent) {
            let outcome = self.settle(job.i, job.serial, x);
            self.uploaded(job, now, outcome, wake);
        }
    }

    /// Sends each job's window (unless its node holds it or a later one),
    /// several at once; the answers in the jobs' order.
    fn exchanges(&self, jobs: &[Job]) -> Vec<Exchange> {
        let (call, sign) = (self.call, self.win.sign);
        let (start_ns, scale) = (self.start_ns, self.time_scale);
        let (st, plans) = (&self.st, self.plans);
        let one = |job: &Job| {
            let s = &st[job.i];
            exchange(call, sign, &plans[job.i].1, job.serial, |node| {
                s.window(node, job.serial, job.range.clone(), |t| {
                    wall_ns(start_ns, t, scale)
                })
            })
        };
        at_once(jobs.len(), |k| one(&jobs[k]))
    }

    /// Tells what came back from node `i` (events, report): `Ok(true)`
    /// when the node has the window now, `Ok(false)` when it refused it
    /// (told), `Err` when the node cannot be reached.
    fn settle(&mut self, i: usize, serial: u64, x: Exchange) -> Result<bool, String> {
        let node = self.plans[i].0;
        self.unreachable.answered(node, &x.show, &mut *self.emit);
        match x.show? {
            Response::Schedule(_) => {}
            other => {
                (self.emit)(Event::Unexpected {
                    node,
                    answer: format!("{other:?}"),
                });
                return Ok(false);
            }
        }
        let (entries, bytes, answer) = match x.sent {
            Sent::Nothing => return Ok(false),
            Sent::Held(held) => {
                (self.emit)(Event::WindowHeld { node, serial, held });
                return Ok(true);
            }
            Sent::NotSigned(message) => {
                self.reports[i].failed += 1;
                (self.emit)(Event::Refused {
                    node,
                    version: serial,
                    message: format!("cannot sign the window: {message}"),
                });
                return Ok(false);
            }
            Sent::Loaded {
                entries,
                bytes,
                answer,
            } => (entries, bytes, answer),
        };
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

    /// After an upload to node `i`: its instants to read back, and when its
    /// next window is due (or its retry, when it could not be reached).
    fn uploaded(&mut self, job: Job, now: u64, outcome: Result<bool, String>, wake: &mut u64) {
        let Job {
            i, start, range, ..
        } = job;
        let node = self.plans[i].0;
        let s = &mut self.st[i];
        let after = (start / self.half + 1) * self.half;
        match outcome {
            Err(e) => {
                self.reports[i].failed += 1;
                s.backoff_ns = (s.backoff_ns * 2).clamp(200_000_000, 5_000_000_000);
                s.retry_at = now + s.backoff_ns;
                self.unreachable.failed(node, &e);
                // Retried until the next window is due, which supersedes
                // it; after the plan's end, given up.
                if now >= wall_ns(self.start_ns, after, self.time_scale) {
                    let last = s.plan.last().map_or(i64::MIN, |p| p.0);
                    s.next = (after <= last).then_some(after);
                    s.serial = None;
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
                    s.verify.push_back((at, s.version(k)));
                    s.queued_to = Some(t);
                    self.reports[i].staged += 1;
                }
                if s.repair {
                    self.reports[i].repairs += 1;
                    (self.emit)(Event::RepairPushed {
                        node,
                        version: s.version(range.start),
                    });
                }
            }
        }
        let last = s.plan.last().map_or(i64::MIN, |p| p.0);
        s.next = (range.end < s.plan.len() || after <= last).then_some(after);
        s.serial = None;
        s.urgent = false;
        s.repair = false;
        if let Some(n) = s.next {
            *wake = (*wake).min(wall_ns(self.start_ns, n, self.time_scale));
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
    /// replans the step in force, and each node whose FIB in force changes
    /// gets it at once; the pass after, the rest (see the module docs).
    fn watch(&mut self, now: u64, wake: &mut u64) {
        let Some(r) = self.repair else { return };
        if let Some(PendingRest { down, t, salt }) = self.rest.take() {
            self.repair_rest(r, &down, t, salt);
            return;
        }
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
        match (r.replan)(&down, t, Some(1)) {
            Ok(new) => {
                (self.emit)(Event::LinksDown {
                    links,
                    schedule_t_ns: t,
                    recompute_ms: t0.elapsed().as_secs_f64() * 1e3,
                });
                let salt = salt(&down);
                let mut changed = vec![false; self.plans.len()];
                for (i, (node, _, _)) in self.plans.iter().enumerate() {
                    let Some((_, _, p)) = new.iter().find(|n| n.0 == *node) else {
                        continue;
                    };
                    let s = &mut self.st[i];
                    changed[i] = fib_in_force(&s.plan, t) != fib_in_force(p, t);
                    if changed[i] {
                        // The old plan after the step in force, as it was.
                        let mut plan = p.clone();
                        let from = plan.len();
                        if s.stale.is_none() && from > 0 {
                            plan.extend(s.plan.iter().filter(|e| e.0 > t).cloned());
                        }
                        s.stale = (plan.len() > from).then_some((from, s.salt));
                        s.next = (!plan.is_empty()).then_some(t);
                        s.plan = plan;
                        s.salt = salt;
                        s.serial = None;
                        s.urgent = true;
                        s.repair = true;
                        s.quick = true;
                        s.verify.clear();
                        s.queued_to = None;
                    }
                }
                self.rest = Some(PendingRest {
                    down: down.clone(),
                    t,
                    salt,
                });
                self.failed = down;
                self.order.sort_by_key(|&i| (!changed[i], i));
            }
            Err(e) => (self.emit)(Event::RepairFailed {
                links,
                error: e.to_string(),
            }),
        }
    }

    /// A repair's second step: every node's plan from `t` without the
    /// links `down`, each node's whole window due at once.
    fn repair_rest(&mut self, r: &Repair, down: &BTreeSet<(u32, u32)>, t: i64, salt: u16) {
        let links: Vec<(u32, u32)> = down.iter().copied().collect();
        let t0 = std::time::Instant::now();
        let new = match (r.replan)(down, t, None) {
            Ok(new) => new,
            Err(e) => {
                (self.emit)(Event::RestNotRecomputed {
                    links,
                    error: e.to_string(),
                });
                return;
            }
        };
        (self.emit)(Event::RestRecomputed {
            links,
            recompute_ms: t0.elapsed().as_secs_f64() * 1e3,
        });
        for (i, (node, _, _)) in self.plans.iter().enumerate() {
            let Some((_, _, p)) = new.iter().find(|n| n.0 == *node) else {
                continue;
            };
            let s = &mut self.st[i];
            if s.quick {
                // Only its step in force is read back as it is now.
                let k = s.plan.first().map(|e| e.0);
                s.verify
                    .retain(|(_, v)| k.is_some_and(|k| *v == stamp(k, salt)));
                s.queued_to = k.filter(|_| !s.verify.is_empty());
            } else {
                // Its instants still queued are the old plan's.
                s.verify.clear();
                s.queued_to = None;
                s.repair = true;
            }
            s.quick = false;
            s.stale = None;
            s.plan = p.clone();
            s.salt = salt;
            s.next = (!p.is_empty()).then_some(t);
            s.serial = Some(rest_serial(t, salt));
            s.urgent = true;
        }
    }
}

impl NodeWin {
    /// The version of plan entry `k`: its instant stamped with the salt it
    /// was computed under.
    fn version(&self, k: usize) -> u64 {
        let salt = match self.stale {
            Some((from, old)) if k >= from => old,
            _ => self.salt,
        };
        stamp(self.plan[k].0, salt)
    }

    /// The window of plan entries `range` for node `name`, as
    /// [`window_schedule`] makes it, each entry with its [`NodeWin::version`].
    fn window(
        &self,
        name: &str,
        serial: u64,
        range: std::ops::Range<usize>,
        wall: impl Fn(i64) -> u64,
    ) -> Schedule {
        versioned_window(name, serial, &self.plan, range, |k| self.version(k), wall)
    }
}

/// `f(0)`, ..., `f(n - 1)` on up to [`UPLOADS_AT_ONCE`] threads; the
/// results in order.
fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if n <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..n.min(UPLOADS_AT_ONCE) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let x = f(k);
                *out[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(x);
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every job ran")
        })
        .collect()
}

/// A repair's second step, due in the pass after its first: the links
/// down, the repair's instant (schedule ns) and their salt.
struct PendingRest {
    down: BTreeSet<(u32, u32)>,
    t: i64,
    salt: u16,
}

/// One node's upload in a pass.
struct Job {
    i: usize,
    /// The window's start (schedule ns).
    start: i64,
    serial: u64,
    /// The plan entries it holds.
    range: std::ops::Range<usize>,
}

/// What one node answered in a pass.
struct Exchange {
    show: Result<Response, String>,
    sent: Sent,
}

/// What was done after `ShowSchedule`.
#[derive(Debug)]
enum Sent {
    /// Nothing: `ShowSchedule` failed or made no sense.
    Nothing,
    /// The node holds this serial, at or above the window's: not sent.
    Held(u64),
    /// The window could not be signed: not sent.
    NotSigned(String),
    /// Sent: its entries, its bytes, the answer.
    Loaded {
        entries: usize,
        bytes: usize,
        answer: Result<Response, String>,
    },
}

/// Asks the node at `socket` which serial it holds and, unless it holds
/// `serial` or a later one, sends it the window `make` builds for the
/// node's name (signed with `sign`). Runs on the uploading threads.
fn exchange(
    call: Call,
    sign: Option<Signer>,
    socket: &Endpoint,
    serial: u64,
    make: impl Fn(&str) -> Schedule,
) -> Exchange {
    let show = call(socket, Request::ShowSchedule);
    let info: &ScheduleInfo = match &show {
        Ok(Response::Schedule(info)) => info,
        _ => {
            return Exchange {
                show,
                sent: Sent::Nothing,
            }
        }
    };
    let sent = if let Some(held) = info.serial.filter(|h| *h >= serial) {
        Sent::Held(held)
    } else {
        let schedule = make(&info.node);
        let entries = schedule.entries.len();
        match sign.map(|f| f(&schedule)).transpose() {
            Err(message) => Sent::NotSigned(message),
            Ok(signed) => {
                let req = Request::LoadSchedule {
                    schedule,
                    allow_empty: false,
                    signed,
                };
                let bytes = serde_json::to_vec(&req).map_or(0, |v| v.len());
                let answer = call(socket, req);
                match held_meanwhile(call, socket, serial, &answer) {
                    Some(held) => Sent::Held(held),
                    None => Sent::Loaded {
                        entries,
                        bytes,
                        answer,
                    },
                }
            }
        }
    };
    Exchange { show, sent }
}

/// After a refusal: the serial the node holds now, if it is at or above
/// `serial`. Two controllers of a redundant pair can both find a window
/// missing and both send it; the node takes the first and, with signed
/// orders, refuses the second as a replay. The window is there all the
/// same (the same serial is the same window, see the module docs), so the
/// second controller takes it as held rather than as a failure.
fn held_meanwhile(
    call: Call,
    socket: &Endpoint,
    serial: u64,
    answer: &Result<Response, String>,
) -> Option<u64> {
    if !matches!(answer, Ok(Response::Error { .. })) {
        return None;
    }
    match call(socket, Request::ShowSchedule) {
        Ok(Response::Schedule(info)) => info.serial.filter(|h| *h >= serial),
        _ => None,
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

    /// A node that holds `serial` after its first `ShowSchedule` (another
    /// controller's upload came in between) and refuses every load.
    fn raced_node(serial: Option<u64>) -> impl Fn(&Endpoint, Request) -> Result<Response, String> {
        let shows = std::sync::atomic::AtomicUsize::new(0);
        move |_: &Endpoint, r: Request| match r {
            Request::ShowSchedule => {
                let first = shows.fetch_add(1, Ordering::SeqCst) == 0;
                Ok(Response::Schedule(ScheduleInfo {
                    node: "n0".into(),
                    serial: if first { None } else { serial },
                    entries: vec![],
                    in_force: None,
                    now_ns: 0,
                    state_dir: None,
                    signed_orders: true,
                }))
            }
            _ => Ok(Response::Error {
                message: "replayed or older".into(),
            }),
        }
    }

    #[test]
    fn a_window_another_controller_sent_first_is_held_not_failed() {
        let at = Endpoint::Socket("n0.sock".into());
        let make = |node: &str| Schedule::delta_encoded(node, 7, &[(1, FibSpec::default())]);
        let x = exchange(&raced_node(Some(7)), None, &at, 7, make);
        assert!(matches!(x.sent, Sent::Held(7)), "{:?}", x.sent);
        // Still a failure when the node holds nothing newer: a real refusal.
        let x = exchange(&raced_node(Some(6)), None, &at, 7, make);
        assert!(matches!(x.sent, Sent::Loaded { .. }), "{:?}", x.sent);
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
