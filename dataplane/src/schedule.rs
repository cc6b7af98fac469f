//! The schedule a dataplane holds and follows on its own: the FIB for each
//! instant ahead (`orbitmesh_core::schedule`, RFC 9657), activated at its
//! instant with no control process present, kept on disk in the state
//! directory and resumed from there after a restart.
//!
//! - [`Held`] (in the node's shared state) is the accepted schedule. A new one is checked
//!   whole before it replaces the old: it must name this node, not be older
//!   than the one held (serial), its signature must verify (when keys are
//!   trusted), and every entry's FIB must build for this node's ports.
//!   Anything refused leaves the running schedule and FIB as they were.
//!   A sound one takes over at once (the follower makes its entry in force
//!   active), then it is written to the state directory (temporary file,
//!   fsync, rename, directory fsync), and only then (and once the follower
//!   has made its entry in force active) is the order answered.
//!   The writes took 12-16 ms per order on this VM, more under disk load
//!   (bench/results/windows.md); a repair's entry in force does not wait
//!   for them. This keeps the crash and replay story: orders are carried
//!   out one at a time, start to end, so the files on disk only ever move
//!   to a higher serial; a crash before the writes end leaves the older
//!   window and serial on disk, which a restart resumes, and the controller,
//!   unanswered, sends the order again. If the writes fail, the schedule
//!   and serial held before are put back (the follower returns to their
//!   entry in force) and the order is refused as not kept.
//! - [`follow`] runs on a thread of its own: it keeps the entry in force
//!   active and the next one staged in the [`FibHandle`] with its instant,
//!   so each worker flips at its first batch at or after the instant (the
//!   same per-batch switch as a FIB staged by hand), and the thread only
//!   prepares the following entry afterwards, off the fast path.
//!
//! While a schedule is held, FIB loads, stages, swaps and rollbacks by hand
//! are refused: two sources of truth would fight. `schedule clear` ends it
//! (the FIB in force stays; a staged next entry is dropped).
//!
//! [`FibHandle`]: crate::publish::FibHandle

use crate::publish::FibHandle;
use orbitmesh_core::fib::spec::FibSpec;
use orbitmesh_core::fib::{FibError, FibSnapshot};
use orbitmesh_core::protocol::ScheduleInfo;
use orbitmesh_core::schedule::{Schedule, ScheduleError};
use orbitmesh_core::sign::{Refusal, Signed, Trust};
use orbitmesh_core::time::now_ns;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What a schedule is followed on: the node's name, its FIB handle, how it
/// builds a FIB for its ports, and the schedule it holds. The process's
/// shared state implements it (`crate::shared::Node`), so this module
/// needs nothing above it.
pub trait Forwarder {
    fn name(&self) -> &str;
    fn fib(&self) -> &FibHandle;
    fn build_fib(&self, spec: &FibSpec) -> Result<FibSnapshot, FibError>;
    fn held(&self) -> &Held;
}

impl<T: Forwarder + ?Sized> Forwarder for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn fib(&self) -> &FibHandle {
        (**self).fib()
    }
    fn build_fib(&self, spec: &FibSpec) -> Result<FibSnapshot, FibError> {
        (**self).build_fib(spec)
    }
    fn held(&self) -> &Held {
        (**self).held()
    }
}

/// The file the schedule is kept in, inside the state directory.
pub const SCHEDULE_FILE: &str = "schedule.json";
/// The file the last accepted order's serial is kept in (it outlives a
/// clear, so an older order stays refused after a restart).
pub const SERIAL_FILE: &str = "serial";

/// Longest an order's answer waits for the follower to make its entry in
/// force active (it takes a FIB build, well under a millisecond).
const FOLLOW_WAIT: Duration = Duration::from_secs(1);

/// Largest schedule file read back at start (the largest control message).
const MAX_FILE_BYTES: usize = orbitmesh_core::protocol::MAX_MESSAGE;

/// The schedule a node holds (see the module docs).
#[derive(Debug, Default)]
pub struct Held {
    /// Held by an order (load, clear, resume) from start to end, so orders
    /// are carried out, and kept on disk, one at a time in order.
    orders: Mutex<()>,
    state: Mutex<State>,
    changed: Condvar,
    /// Signalled when the follower has acted on a generation.
    followed: Condvar,
    /// Orders refused, by [`Refusal`] kind (in [`Refusal::ALL`] order).
    refused: [AtomicU64; Refusal::ALL.len()],
    /// FIBs built to check the windows loaded (see [`check_builds`]).
    builds: AtomicU64,
    /// Tests: the next load waits for a message here before its writes.
    #[cfg(test)]
    save_gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// Why an order (a schedule or a clear) was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Not authorised (signature, key, node, serial): counted by kind.
    #[error("{0}")]
    Refused(Refusal),
    /// Unsound for this node (shape, a FIB that does not build).
    #[error("{0}")]
    Unsound(String),
    /// Not kept in the state directory, so not carried out (what was held
    /// before is held again).
    #[error("{0}")]
    Storage(String),
    #[error("no schedule is held")]
    NothingHeld,
}

#[derive(Debug, Default)]
struct State {
    schedule: Option<Arc<Schedule>>,
    /// The serial of the last schedule accepted (kept after a clear, so an
    /// older schedule is still refused).
    serial: Option<u64>,
    /// Where the schedule is kept; `None`: in memory only.
    state_dir: Option<PathBuf>,
    /// Bumped on every change, so the follower notices.
    generation: u64,
    /// A follower runs, and the last generation it acted on.
    following: bool,
    followed: u64,
    /// The keys orders must be signed with (none: unsigned orders).
    trust: Trust,
}

impl Held {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schedule held, if any.
    pub fn current(&self) -> Option<Arc<Schedule>> {
        self.lock().schedule.clone()
    }

    /// Keeps accepted schedules in `dir` from now on, and reads the serial
    /// last accepted there (a restart must not accept an older order).
    pub fn set_state_dir(&self, dir: Option<PathBuf>) -> Result<(), String> {
        let serial = match &dir {
            Some(d) => read_serial(d)?,
            None => None,
        };
        let mut s = self.lock();
        s.serial = s.serial.max(serial);
        s.state_dir = dir;
        Ok(())
    }

    /// Takes only orders signed by these keys from now on.
    pub fn set_trust(&self, trust: Trust) {
        self.lock().trust = trust;
    }

    /// True when orders must be signed.
    pub fn signed_orders(&self) -> bool {
        self.lock().trust.required()
    }

    /// Counts a refusal and returns it as an error.
    pub fn refuse(&self, r: Refusal) -> OrderError {
        let i = Refusal::ALL
            .iter()
            .position(|k| *k == r)
            .expect("every kind listed");
        self.refused[i].fetch_add(1, Ordering::Relaxed);
        OrderError::Refused(r)
    }

    /// Refusals so far, by kind (in [`Refusal::ALL`] order).
    pub fn refusals(&self) -> Vec<(Refusal, u64)> {
        Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Refusals so far of kind `r`.
    pub fn refused(&self, r: Refusal) -> u64 {
        let i = Refusal::ALL.iter().position(|k| *k == r);
        self.refused[i.expect("every kind listed")].load(Ordering::Relaxed)
    }

    /// What `schedule show` reports.
    pub fn info(&self, node: &dyn Forwarder) -> ScheduleInfo {
        let s = self.lock();
        let now = now_ns();
        ScheduleInfo {
            node: node.name().to_string(),
            serial: s.serial,
            entries: s.schedule.as_ref().map_or_else(Vec::new, |sc| {
                sc.entries
                    .iter()
                    .map(|e| e.at_ns)
                    .zip(sc.versions())
                    .collect()
            }),
            in_force: s.schedule.as_ref().and_then(|sc| sc.in_force(now)),
            now_ns: now,
            state_dir: s.state_dir.as_ref().map(|d| d.display().to_string()),
            signed_orders: s.trust.required(),
        }
    }

    /// Checks `schedule` whole for `node` (and its signature, when keys
    /// are trusted) and, if it is sound, keeps it (on disk first) and wakes
    /// the follower. `Ok(false)`: the same schedule is already held (an
    /// idempotent upload; with signed orders a repeat is refused as a
    /// replay instead).
    pub fn load(
        &self,
        node: &dyn Forwarder,
        schedule: Schedule,
        allow_empty: bool,
        signed: Option<&Signed>,
    ) -> Result<bool, OrderError> {
        let _order = self.order();
        let (trust, held_serial, held_schedule) = {
            let s = self.lock();
            (s.trust.clone(), s.serial, s.schedule.clone())
        };
        if schedule.node != node.name() {
            return Err(if trust.required() {
                self.refuse(Refusal::OtherNode)
            } else {
                OrderError::Unsound(format!(
                    "the schedule is for node {:?}; this is {:?}",
                    schedule.node,
                    node.name()
                ))
            });
        }
        if trust.required() {
            let m = orbitmesh_core::sign::schedule_message(&schedule)
                .map_err(|e| OrderError::Unsound(e.to_string()))?;
            trust
                .verify(&m, signed, now_ns())
                .map_err(|r| self.refuse(r))?;
        }
        if let Some(held) = held_serial.filter(|h| schedule.serial <= *h) {
            // Signed orders: every order is used once; a controller that
            // uploads again reads the serial held (ShowSchedule).
            if trust.required() {
                return Err(self.refuse(Refusal::Replayed));
            }
            // Compared whole only when the serials are equal.
            if schedule.serial == held && held_schedule.as_deref() == Some(&schedule) {
                return Ok(false);
            }
            return Err(OrderError::Unsound(if schedule.serial < held {
                format!(
                    "serial {} is older than the schedule held (serial {held})",
                    schedule.serial
                )
            } else {
                format!("serial {held} was accepted with other content; a changed schedule needs a higher serial")
            }));
        }
        let built = check_builds(node, &schedule, allow_empty, held_schedule.as_deref())
            .map_err(|e| OrderError::Unsound(e.to_string()))?;
        self.builds.fetch_add(built, Ordering::Relaxed);
        // In force at once; kept on disk before the answer (module docs).
        let schedule = Arc::new(schedule);
        let (dir, before, generation) = {
            let mut s = self.lock();
            let before = (s.schedule.clone(), s.serial);
            s.serial = Some(schedule.serial);
            s.schedule = Some(schedule.clone());
            s.generation += 1;
            self.changed.notify_all();
            (s.state_dir.clone(), before, s.generation)
        };
        let Some(dir) = dir else {
            self.wait_followed(generation);
            return Ok(true);
        };
        #[cfg(test)]
        self.pause_before_save();
        if let Err(e) = save(&dir, schedule.serial, Some(&schedule)) {
            let mut s = self.lock();
            (s.schedule, s.serial) = before;
            s.generation += 1;
            self.changed.notify_all();
            return Err(OrderError::Storage(format!(
                "cannot keep the schedule in {}: {e}; the schedule held before is back",
                dir.display()
            )));
        }
        self.wait_followed(generation);
        Ok(true)
    }

    /// Waits (at most [`FOLLOW_WAIT`]) until the follower, if one runs,
    /// has acted on `generation`: an answered order's entry in force is
    /// active, so a controller reading the version back right after its
    /// answer sees it.
    fn wait_followed(&self, generation: u64) {
        let end = std::time::Instant::now() + FOLLOW_WAIT;
        let mut s = self.lock();
        while s.following && s.followed < generation {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            s = self
                .followed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The follower has acted on `generation` (or stops: `None`).
    fn set_followed(&self, generation: Option<u64>) {
        let mut s = self.lock();
        s.following = generation.is_some();
        s.followed = generation.unwrap_or(0);
        self.followed.notify_all();
    }

    /// The order lock (see [`Held::orders`]).
    fn order(&self) -> MutexGuard<'_, ()> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the schedule: the FIB in force stays, a staged next entry is
    /// dropped, the file is removed. With trusted keys the clear is an
    /// order of its own: a serial above the last one and its signature.
    pub fn clear(
        &self,
        node: &dyn Forwarder,
        serial: Option<u64>,
        signed: Option<&Signed>,
    ) -> Result<(), OrderError> {
        let _order = self.order();
        let mut s = self.lock();
        if s.trust.required() {
            let serial = serial.ok_or_else(|| self.refuse(Refusal::Unsigned))?;
            let m = orbitmesh_core::sign::clear_message(node.name(), serial);
            s.trust
                .verify(&m, signed, now_ns())
                .map_err(|r| self.refuse(r))?;
            if s.serial.is_some_and(|h| serial <= h) {
                return Err(self.refuse(Refusal::Replayed));
            }
            if let Some(dir) = &s.state_dir {
                save(dir, serial, s.schedule.as_deref())
                    .map_err(|e| OrderError::Storage(e.to_string()))?;
            }
            s.serial = Some(serial);
        }
        if s.schedule.is_none() {
            return Err(OrderError::NothingHeld);
        }
        if let Some(dir) = &s.state_dir {
            match std::fs::remove_file(dir.join(SCHEDULE_FILE)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(OrderError::Storage(format!(
                        "cannot remove the kept schedule: {e}"
                    )))
                }
            }
        }
        s.schedule = None;
        s.generation += 1;
        node.fib().unstage(now_ns());
        self.changed.notify_all();
        Ok(())
    }

    /// Reads the schedule kept in `dir` (if any) and holds it, as after a
    /// restart. A kept schedule that is no longer sound (e.g. the ports
    /// changed) is refused with the reason, and nothing is held.
    pub fn resume(&self, node: &dyn Forwarder, dir: &Path) -> Result<Option<u64>, String> {
        let _order = self.order();
        let path = dir.join(SCHEDULE_FILE);
        let bytes = match orbitmesh_core::file::read_limited(&path, MAX_FILE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let schedule: Schedule = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a schedule: {e}", path.display()))?;
        let serial = schedule.serial;
        // The kept schedule was checked (and its signature verified) when
        // it was accepted; the state directory is the node's own. Its FIBs
        // are checked again: the ports may have changed since.
        if schedule.node != node.name() {
            return Err(format!(
                "{}: the schedule is for node {:?}; this is {:?}",
                path.display(),
                schedule.node,
                node.name()
            ));
        }
        check_builds(node, &schedule, true, None)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut s = self.lock();
        s.serial = s.serial.max(Some(serial));
        s.schedule = Some(Arc::new(schedule));
        s.generation += 1;
        self.changed.notify_all();
        Ok(Some(serial))
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until the schedule changes or `deadline_ns` (wall clock) comes.
    fn wait(&self, generation: u64, deadline_ns: Option<u64>) {
        let s = self.lock();
        if s.generation != generation {
            return;
        }
        // Re-checked at least once a second: the wall clock may be stepped.
        let wait = deadline_ns.map_or(Duration::from_secs(1), |d| {
            Duration::from_nanos(d.saturating_sub(now_ns())).min(Duration::from_secs(1))
        });
        let _ = self
            .changed
            .wait_timeout(s, wait)
            .unwrap_or_else(PoisonError::into_inner);
    }

    #[cfg(test)]
    fn pause_before_save(&self) {
        let gate = self
            .save_gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(rx) = gate {
            let _ = rx.recv();
        }
    }

    /// Wakes the follower (to stop).
    pub fn wake(&self) {
        let mut s = self.lock();
        s.generation += 1;
        self.changed.notify_all();
    }
}

/// Every entry's FIB builds for this node (and, unless `allow_empty`, is
/// not empty); the error names the entry. Returns the FIBs built.
///
/// An entry whose FIB, version aside, is the one in force at its instant
/// in `held` (the window this node accepted, so built for it then) is not
/// built again: a build depends only on the FIB and the node's ports,
/// which do not change while the process runs. A top-up shares most
/// entries with the window held, and a repair's whole window all but the
/// few it changes (new versions, same FIBs); a build took 0.7 ms in debug
/// (bench/results/windows.md). `held` is walked alongside, one expanded
/// FIB at a time.
fn check_builds(
    node: &dyn Forwarder,
    schedule: &Schedule,
    allow_empty: bool,
    held: Option<&Schedule>,
) -> Result<u64, ScheduleError> {
    let mut before = HeldWalk {
        held,
        next: 0,
        fib: None,
    };
    let mut built = 0;
    schedule.walk(|i, at, fib| {
        let bad = |problem: String| ScheduleError::BadEntry { entry: i, problem };
        fib.check_not_empty(allow_empty)
            .map_err(|e| bad(e.to_string()))?;
        if before.in_force_is(at, fib) {
            return Ok(());
        }
        built += 1;
        node.build_fib(fib)
            .map(drop)
            .map_err(|e| bad(e.to_string()))
    })?;
    Ok(built)
}

/// The held window's entries, expanded in order as a new window's are
/// checked (see [`check_builds`]).
struct HeldWalk<'a> {
    held: Option<&'a Schedule>,
    /// The next entry to expand.
    next: usize,
    /// The last one expanded.
    fib: Option<FibSpec>,
}

impl HeldWalk<'_> {
    /// True when the held entry in force at `at` has `fib`, version aside.
    /// Instants only grow from one call to the next.
    fn in_force_is(&mut self, at: u64, fib: &FibSpec) -> bool {
        let Some(held) = self.held else { return false };
        while held.entries.get(self.next).is_some_and(|e| e.at_ns <= at) {
            match held.expand_entry(self.next, self.fib.take()) {
                Ok(f) => self.fib = Some(f),
                Err(_) => {
                    // Cannot happen (it was accepted); compare no more.
                    self.held = None;
                    return false;
                }
            }
            self.next += 1;
        }
        match &mut self.fib {
            Some(f) => {
                f.version = fib.version;
                f == fib
            }
            None => false,
        }
    }
}

/// Keeps the serial and the schedule (if any) in `dir` so that a crash
/// leaves the old files or the new ones, never a torn file: each is written
/// to a temporary file, fsynced and renamed, then the directory fsynced.
/// The serial goes first: a schedule on disk is never newer than it.
fn save(dir: &Path, serial: u64, schedule: Option<&Schedule>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomically(dir, SERIAL_FILE, format!("{serial}\n").as_bytes())?;
    if let Some(s) = schedule {
        let bytes = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        write_atomically(dir, SCHEDULE_FILE, &bytes)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The serial kept in `dir`, if any.
fn read_serial(dir: &Path) -> Result<Option<u64>, String> {
    let path = dir.join(SERIAL_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{}: not a serial: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Entry FIBs expanded in order, keeping the last one: the follower moves
/// forward one entry at a time, so each step applies one delta.
#[derive(Debug)]
struct Expander {
    schedule: Arc<Schedule>,
    last: Option<(usize, FibSpec)>,
}

impl Expander {
    fn get(&mut self, index: usize) -> Result<&FibSpec, ScheduleError> {
        let start = match &self.last {
            Some((i, _)) if *i <= index => *i,
            _ => {
                self.last = Some((0, self.schedule.fib_at(0)?));
                0
            }
        };
        for i in start + 1..=index {
            let (_, prev) = self.last.take().expect("set above");
            self.last = Some((i, self.schedule.expand_entry(i, Some(prev))?));
        }
        Ok(&self.last.as_ref().expect("set above").1)
    }
}

/// Follows the node's schedule until `stop` is set (see the module docs).
/// Runs on its own thread; [`Held::wake`] after setting `stop`.
pub fn follow(node: &dyn Forwarder, stop: &AtomicBool) {
    let mut exp: Option<Expander> = None;
    node.held().set_followed(Some(0));
    while !stop.load(Ordering::Relaxed) {
        let generation = node.held().generation();
        let deadline = match node.held().current() {
            Some(s) => {
                if exp.as_ref().is_none_or(|e| !Arc::ptr_eq(&e.schedule, &s)) {
                    exp = Some(Expander {
                        schedule: s.clone(),
                        last: None,
                    });
                }
                step(node, exp.as_mut().expect("set above"))
            }
            None => {
                exp = None;
                None
            }
        };
        node.held().set_followed(Some(generation));
        node.held().wait(generation, deadline);
    }
    node.held().set_followed(None);
}

/// Makes the entry in force active and stages the next; returns the next
/// entry's instant (when to come back).
fn step(node: &dyn Forwarder, exp: &mut Expander) -> Option<u64> {
    let now = now_ns();
    node.fib().promote_due(now);
    let s = exp.schedule.clone();
    let versions = s.versions();
    if let Some(i) = s.in_force(now) {
        if node.fib().current().version() != versions[i] {
            match build(node, exp, i) {
                Ok(f) => {
                    node.fib().publish(f);
                    tracing::info!(
                        entry = i,
                        version = versions[i],
                        late_ms = (now - s.entries[i].at_ns) as f64 / 1e6,
                        "schedule: entry in force activated"
                    );
                }
                Err(e) => tracing::error!(entry = i, error = %e, "schedule: entry cannot be built"),
            }
        }
    }
    let next = s.in_force(now).map_or(0, |i| i + 1);
    let entry = s.entries.get(next)?;
    let staged = node.fib().staged().map(|st| (st.fib.version(), st.at));
    if staged != Some((versions[next], entry.at_ns)) {
        match build(node, exp, next) {
            Ok(f) => node.fib().stage(f, entry.at_ns, now),
            Err(e) => tracing::error!(entry = next, error = %e, "schedule: entry cannot be built"),
        }
    }
    // Just after the instant: the workers have flipped by then.
    Some(entry.at_ns.saturating_add(1_000_000))
}

fn build(
    node: &dyn Forwarder,
    exp: &mut Expander,
    index: usize,
) -> Result<orbitmesh_core::fib::FibSnapshot, String> {
    let spec = exp.get(index).map_err(|e| e.to_string())?;
    node.build_fib(spec).map_err(|e| e.to_string())
}

/// Starts [`follow`] on a thread named `om-schedule`.
pub fn spawn(
    node: Arc<dyn Forwarder + Send + Sync>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("om-schedule".into())
        .spawn(move || follow(node.as_ref(), &stop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::handle;
    use crate::shared::Node;
    use orbitmesh_core::fib::FibSnapshot;
    use orbitmesh_core::protocol::{Request, Response};

    const MS: u64 = 1_000_000;

    fn fib(version: u64, port: &str) -> FibSpec {
        FibSpec::parse(&format!(
            "version = {version}\n[[ports]]\nname = \"{port}\"\n[[next_hops]]\nname = \"n\"\nport = \"{port}\"\n\
             dst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n\
             [[labels]]\nlabel = {}\naction = \"swap\"\nnext_hop = \"n\"\n",
            16000 + version
        ))
        .unwrap()
    }

    /// Entries at `offsets_ms` from now (versions 1, 2, ...).
    fn schedule(serial: u64, offsets_ms: &[i64]) -> Schedule {
        let now = now_ns() as i64;
        let fibs: Vec<(u64, FibSpec)> = offsets_ms
            .iter()
            .enumerate()
            .map(|(i, o)| ((now + o * MS as i64) as u64, fib(i as u64 + 1, "isl0")))
            .collect();
        Schedule::delta_encoded("n0", serial, &fibs)
    }

    fn node() -> Arc<Node> {
        Arc::new(Node::new(
            "n0",
            vec!["isl0".into()],
            FibSnapshot::empty(0),
            1,
        ))
    }

    /// The version a worker's batch stamped now would use.
    fn in_force(n: &Node) -> u64 {
        let g = crossbeam_epoch::pin();
        n.fib.load(now_ns(), &g).version()
    }

    struct Follower(
        Arc<Node>,
        Arc<AtomicBool>,
        Option<std::thread::JoinHandle<()>>,
    );

    impl Follower {
        fn start(n: &Arc<Node>) -> Follower {
            let stop = Arc::new(AtomicBool::new(false));
            let h = spawn(n.clone(), stop.clone()).unwrap();
            Follower(n.clone(), stop, Some(h))
        }
    }

    impl Drop for Follower {
        fn drop(&mut self) {
            self.1.store(true, Ordering::Relaxed);
            self.0.schedule.wake();
            let _ = self.2.take().map(|h| h.join());
        }
    }

    fn wait_for(n: &Node, version: u64, within: Duration) -> bool {
        let end = std::time::Instant::now() + within;
        while std::time::Instant::now() < end {
            if in_force(n) == version {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn entries_activate_at_their_instants_with_no_controller() {
        let n = node();
        let _f = Follower::start(&n);
        let s = schedule(1, &[-1_000, 300, 600]);
        let at = [s.entries[1].at_ns, s.entries[2].at_ns];
        assert!(matches!(
            handle(
                &n,
                Request::LoadSchedule {
                    schedule: s,
                    allow_empty: false,
                    signed: None,
                }
            ),
            Response::Schedule(_)
        ));
        assert!(
            wait_for(&n, 1, Duration::from_millis(500)),
            "the entry in force"
        );
        assert!(
            now_ns() < at[0],
            "the test machine was too slow to see entry 0"
        );
        assert!(wait_for(&n, 2, Duration::from_secs(2)));
        assert!(now_ns() >= at[0], "entry 1 not before its instant");
        assert!(wait_for(&n, 3, Duration::from_secs(2)));
        assert!(now_ns() >= at[1]);
        // Past the last entry: it stays.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(in_force(&n), 3);
    }

    #[test]
    fn an_unsound_schedule_is_refused_whole_and_the_running_one_stays() {
        let n = node();
        let good = schedule(5, &[-1_000, 60_000]);
        n.schedule.load(&n, good.clone(), false, None).unwrap();
        let refused = |s: Schedule| {
            let e = n.schedule.load(&n, s, false, None).unwrap_err().to_string();
            assert_eq!(n.schedule.current().as_deref(), Some(&good), "{e}");
            e
        };
        let mut s = schedule(6, &[-1_000, 60_000]);
        s.entries[1].at_ns = s.entries[0].at_ns - 1;
        assert!(refused(s).contains("entry 1"));
        let mut s = schedule(6, &[-1_000, 60_000]);
        s.entries.swap(0, 1);
        assert!(refused(s).contains("first entry must be a full FIB"));
        let mut s = schedule(6, &[-1_000, 60_000, 120_000]);
        let orbitmesh_core::schedule::EntryFib::Delta(d) = &mut s.entries[2].fib else {
            panic!("a delta")
        };
        d.ports = Some(vec![orbitmesh_core::fib::spec::PortSpec {
            name: "isl9".into(),
            mtu: 1500,
        }]);
        let e = refused(s);
        assert!(e.contains("entry 2") && e.contains("isl9"), "{e}");
        let mut s = schedule(6, &[0]);
        s.node = "n1".into();
        assert!(refused(s).contains("for node \"n1\""));
        assert!(refused(schedule(4, &[0])).contains("older"));
        assert!(refused(schedule(5, &[0])).contains("other content"));
        assert_eq!(
            n.schedule.load(&n, good.clone(), false, None),
            Ok(false),
            "idempotent"
        );
        // FIB changes by hand are refused while it is held; after a clear
        // they work again, and the staged next entry is gone.
        let r = handle(
            &n,
            Request::LoadFib {
                fib: fib(9, "isl0"),
                allow_empty: false,
            },
        );
        assert!(
            matches!(&r, Response::Error { message } if message.contains("schedule clear")),
            "{r:?}"
        );
        n.fib.stage(
            n.build_fib(&fib(8, "isl0")).unwrap(),
            now_ns() + 60_000 * MS,
            now_ns(),
        );
        n.schedule.clear(&n, None, None).unwrap();
        assert!(n.fib.staged().is_none());
        let r = handle(
            &n,
            Request::LoadFib {
                fib: fib(9, "isl0"),
                allow_empty: false,
            },
        );
        assert!(matches!(r, Response::Ok { version: 9 }), "{r:?}");
        assert!(refused_after_clear(&n).contains("older"));
    }

    /// Entries at `offsets_ms` from now, versions `first`, `first + 1`, ...
    fn schedule_from(serial: u64, first: u64, offsets_ms: &[i64]) -> Schedule {
        let mut s = schedule(serial, offsets_ms);
        for (i, e) in s.entries.iter_mut().enumerate() {
            let v = first + i as u64;
            e.fib = orbitmesh_core::schedule::EntryFib::Full(fib(v, "isl0"));
        }
        s
    }

    fn kept_serial(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(SERIAL_FILE)).unwrap()
    }

    #[test]
    fn a_sound_schedule_is_in_force_before_it_is_kept_and_answered_after() {
        let dir = std::env::temp_dir().join(format!("om-sched-early-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let n = node();
        n.schedule.set_state_dir(Some(dir.clone())).unwrap();
        let _f = Follower::start(&n);
        n.schedule
            .load(&n, schedule_from(1, 1, &[-1_000, 60_000]), false, None)
            .unwrap();
        assert_eq!(
            in_force(&n),
            1,
            "its entry in force is active when answered"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        *n.schedule.save_gate.lock().unwrap() = Some(rx);
        let repaired = schedule_from(2, 11, &[-500, 60_000]);
        let (n2, r2) = (n.clone(), repaired.clone());
        let load = std::thread::spawn(move || n2.schedule.load(&n2, r2, false, None));
        // Its entry in force is active while the writes wait; the disk
        // still holds the older order.
        assert!(wait_for(&n, 11, Duration::from_secs(2)), "in force early");
        assert_eq!(kept_serial(&dir), "1\n");
        assert!(!load.is_finished(), "answered only once kept");
        tx.send(()).unwrap();
        assert_eq!(load.join().unwrap(), Ok(true));
        assert_eq!(in_force(&n), 11);
        assert_eq!(kept_serial(&dir), "2\n");
        let kept: Schedule =
            serde_json::from_slice(&std::fs::read(dir.join(SCHEDULE_FILE)).unwrap()).unwrap();
        assert_eq!(kept, repaired);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_schedule_that_cannot_be_kept_is_refused_and_the_one_before_comes_back() {
        let dir = std::env::temp_dir().join(format!("om-sched-nokeep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let n = node();
        n.schedule.set_state_dir(Some(dir.clone())).unwrap();
        let _f = Follower::start(&n);
        let held = schedule_from(5, 1, &[-1_000, 60_000]);
        n.schedule.load(&n, held.clone(), false, None).unwrap();
        assert!(wait_for(&n, 1, Duration::from_secs(1)));
        // The schedule file's temporary name is taken by a directory.
        std::fs::create_dir(dir.join(format!("{SCHEDULE_FILE}.tmp"))).unwrap();
        let next = schedule_from(6, 11, &[-500, 60_000]);
        let e = n.schedule.load(&n, next.clone(), false, None).unwrap_err();
        assert!(
            matches!(&e, OrderError::Storage(m) if m.contains("held before is back")),
            "{e}"
        );
        assert_eq!(n.schedule.current().as_deref(), Some(&held));
        assert!(wait_for(&n, 1, Duration::from_secs(2)), "back in force");
        // Once it can be kept, the same order is taken.
        std::fs::remove_dir(dir.join(format!("{SCHEDULE_FILE}.tmp"))).unwrap();
        assert_eq!(n.schedule.load(&n, next, false, None), Ok(true));
        assert!(wait_for(&n, 11, Duration::from_secs(2)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_window_sharing_fibs_with_the_held_one_builds_only_the_changed_ones() {
        let n = node();
        let builds = || n.schedule.builds.load(Ordering::Relaxed);
        let now = now_ns();
        // FIBs by label, versioned apart: what a re-stamped plan looks like.
        let at = |ms: u64| now - 1_000 * MS + ms * MS;
        let window = |serial: u64, v0: u64, labels: &[u64]| {
            let fibs: Vec<(u64, FibSpec)> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut f = fib(*l, "isl0");
                    f.version = v0 + i as u64;
                    (at(i as u64 * 60_000), f)
                })
                .collect();
            Schedule::delta_encoded("n0", serial, &fibs)
        };
        n.schedule
            .load(&n, window(1, 1, &[1, 2, 3, 4]), false, None)
            .unwrap();
        assert_eq!(builds(), 4);
        // New versions everywhere (a repair's re-stamp), entry 2 changed.
        let repaired = window(2, 11, &[1, 2, 7, 4]);
        n.schedule.load(&n, repaired.clone(), false, None).unwrap();
        assert_eq!(builds(), 5, "only the changed entry was built");
        // A changed entry that does not build is still refused whole.
        let mut bad = window(3, 21, &[1, 2, 7, 4]);
        let orbitmesh_core::schedule::EntryFib::Delta(d) = &mut bad.entries[3].fib else {
            panic!("a delta")
        };
        d.ports = Some(vec![orbitmesh_core::fib::spec::PortSpec {
            name: "isl9".into(),
            mtu: 1500,
        }]);
        let e = n
            .schedule
            .load(&n, bad, false, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 3") && e.contains("isl9"), "{e}");
        assert_eq!(n.schedule.current().as_deref(), Some(&repaired));
        // Nothing shared: every entry built.
        n.schedule
            .load(&n, window(4, 31, &[8, 9]), false, None)
            .unwrap();
        assert_eq!(builds(), 5 + 2, "the refused one counted nothing");
    }

    fn refused_after_clear(n: &Node) -> String {
        n.schedule
            .load(n, schedule(4, &[0]), false, None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_restarted_node_resumes_the_entry_in_force_from_its_state_dir() {
        let dir = std::env::temp_dir().join(format!("om-sched-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = node();
        first.schedule.set_state_dir(Some(dir.clone())).unwrap();
        let s = schedule(7, &[-2_000, -1_000, 60_000]);
        first.schedule.load(&first, s.clone(), false, None).unwrap();
        drop(first);
        // A new process: same config, nothing in memory.
        let n = node();
        n.schedule.set_state_dir(Some(dir.clone())).unwrap();
        assert_eq!(n.schedule.resume(&n, &dir), Ok(Some(7)));
        assert_eq!(n.schedule.current().as_deref(), Some(&s));
        let started = std::time::Instant::now();
        let _f = Follower::start(&n);
        assert!(
            wait_for(&n, 2, Duration::from_secs(1)),
            "entry 1 is in force"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        // The follower stages the next entry just after it publishes the
        // one in force: wait for it rather than race it.
        let end = std::time::Instant::now() + Duration::from_secs(1);
        while n.fib.staged().is_none() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(n.fib.staged().map(|s| s.fib.version()), Some(3));
        // A replay of an older schedule is still refused after the restart.
        assert!(n
            .schedule
            .load(&n, schedule(6, &[0]), false, None)
            .unwrap_err()
            .to_string()
            .contains("older"));
        // A kept file that is not a schedule is refused with its path.
        std::fs::write(dir.join(SCHEDULE_FILE), b"{\"node\":").unwrap();
        let e = node().schedule.resume(&node(), &dir).unwrap_err();
        assert!(
            e.contains(SCHEDULE_FILE) && e.contains("not a schedule"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(node().schedule.resume(&node(), &dir), Ok(None));
    }
}

/// Signed orders (issue 15): each kind of bad order is refused with its
/// reason counted, and the running schedule stays.
#[cfg(test)]
mod signed_tests {
    use super::*;
    use crate::shared::Node;
    use orbitmesh_core::fib::FibSnapshot;
    use orbitmesh_core::sign::{clear_message, SecretKey, TrustedKey};

    fn fib(version: u64) -> FibSpec {
        FibSpec::parse(&format!(
            "version = {version}\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = {}\naction = \"pop\"\n",
            16000 + version
        ))
        .unwrap()
    }

    fn schedule(node: &str, serial: u64) -> Schedule {
        let now = now_ns();
        Schedule::delta_encoded(
            node,
            serial,
            &[
                (now - 1_000_000_000, fib(serial * 10)),
                (now + 3_600_000_000_000, fib(serial * 10 + 1)),
            ],
        )
    }

    fn node(ground: &SecretKey, valid_until: Option<u64>) -> Node {
        let n = Node::new("n0", vec!["isl0".into()], FibSnapshot::empty(0), 1);
        n.schedule.set_trust(Trust {
            keys: vec![TrustedKey {
                name: "ground-1".into(),
                key: ground.public(),
                not_before_ns: None,
                not_after_ns: valid_until,
            }],
            revoked: vec![],
        });
        n
    }

    fn count(n: &Node, r: Refusal) -> u64 {
        n.schedule.refused(r)
    }

    #[test]
    fn every_kind_of_bad_order_is_refused_counted_and_changes_nothing() {
        let ground = SecretKey::from_bytes([1; 32]);
        let n = node(&ground, None);
        let held = schedule("n0", 5);
        let sig = ground.sign_schedule(&held).unwrap();
        assert_eq!(
            n.schedule.load(&n, held.clone(), false, Some(&sig)),
            Ok(true)
        );
        let refuse = |s: Schedule, signed: Option<Signed>, r: Refusal| {
            let before = count(&n, r);
            assert_eq!(
                n.schedule.load(&n, s, false, signed.as_ref()),
                Err(OrderError::Refused(r))
            );
            assert_eq!(count(&n, r), before + 1, "{r:?} counted");
            assert_eq!(
                n.schedule.current().as_deref(),
                Some(&held),
                "{r:?}: the running one stays"
            );
        };
        let next = schedule("n0", 6);
        refuse(next.clone(), None, Refusal::Unsigned);
        let attacker = SecretKey::from_bytes([2; 32]);
        refuse(
            next.clone(),
            Some(attacker.sign_schedule(&next).unwrap()),
            Refusal::UnknownKey,
        );
        let mut tampered = next.clone();
        tampered.entries[0].at_ns += 1;
        refuse(
            tampered,
            Some(ground.sign_schedule(&next).unwrap()),
            Refusal::BadSignature,
        );
        let other = schedule("n1", 6);
        refuse(
            other.clone(),
            Some(ground.sign_schedule(&other).unwrap()),
            Refusal::OtherNode,
        );
        refuse(held.clone(), Some(sig), Refusal::Replayed);
        let older = schedule("n0", 4);
        refuse(
            older.clone(),
            Some(ground.sign_schedule(&older).unwrap()),
            Refusal::Replayed,
        );
        // Hand-made FIB changes are not signed orders.
        let r = crate::ctl::handle(
            &n,
            orbitmesh_core::protocol::Request::SetPort {
                port: "isl0".into(),
                up: false,
            },
        );
        assert!(
            matches!(r, orbitmesh_core::protocol::Response::Error { .. }),
            "{r:?}"
        );
        assert_eq!(count(&n, Refusal::Unsigned), 2);
        assert!(n.live.admin(0), "the port stays up");
        // A signed clear needs a fresh serial.
        assert_eq!(
            n.schedule
                .clear(&n, Some(5), Some(&ground.sign(&clear_message("n0", 5)))),
            Err(OrderError::Refused(Refusal::Replayed))
        );
        assert_eq!(
            n.schedule
                .clear(&n, Some(7), Some(&attacker.sign(&clear_message("n0", 7)))),
            Err(OrderError::Refused(Refusal::UnknownKey))
        );
        assert_eq!(
            n.schedule
                .clear(&n, Some(7), Some(&ground.sign(&clear_message("n0", 7)))),
            Ok(())
        );
        assert!(n.schedule.current().is_none());
    }

    #[test]
    fn an_expired_or_revoked_key_is_refused() {
        let ground = SecretKey::from_bytes([1; 32]);
        let n = node(&ground, Some(now_ns() - 1));
        let s = schedule("n0", 1);
        let sig = ground.sign_schedule(&s).unwrap();
        assert_eq!(
            n.schedule.load(&n, s.clone(), false, Some(&sig)),
            Err(OrderError::Refused(Refusal::Expired))
        );
        let n = node(&ground, None);
        let trust = n.schedule.lock().trust.clone();
        n.schedule.set_trust(Trust {
            revoked: vec![ground.public()],
            ..trust
        });
        assert_eq!(
            n.schedule.load(&n, s, false, Some(&sig)),
            Err(OrderError::Refused(Refusal::Revoked))
        );
        assert!(n.schedule.current().is_none());
    }

    #[test]
    fn a_restarted_node_refuses_a_replay_of_the_last_accepted_order() {
        let dir = std::env::temp_dir().join(format!("om-signed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ground = SecretKey::from_bytes([1; 32]);
        let s = schedule("n0", 9);
        let sig = ground.sign_schedule(&s).unwrap();
        let first = node(&ground, None);
        first.schedule.set_state_dir(Some(dir.clone())).unwrap();
        first
            .schedule
            .load(&first, s.clone(), false, Some(&sig))
            .unwrap();
        first
            .schedule
            .clear(
                &first,
                Some(10),
                Some(&ground.sign(&clear_message("n0", 10))),
            )
            .unwrap();
        drop(first);
        let n = node(&ground, None);
        n.schedule.set_state_dir(Some(dir.clone())).unwrap();
        assert_eq!(
            n.schedule.resume(&n, &dir),
            Ok(None),
            "cleared before the restart"
        );
        assert_eq!(
            n.schedule.load(&n, s, false, Some(&sig)),
            Err(OrderError::Refused(Refusal::Replayed))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
