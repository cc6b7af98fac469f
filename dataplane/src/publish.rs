//! Lock-free publication of FIB snapshots to the workers, with scheduled
//! activation (time-variant routing, RFC 9657: the next FIB is installed
//! ahead of time and takes effect at a predicted instant).
//!
//! # Why crossbeam-epoch and not arc-swap
//! Both give wait-free reads and O(1) publication. With epochs a reader's
//! per-batch cost is one `pin()` (a thread-local counter and one fence) and a
//! plain `Acquire` load; the loaded `&FibSnapshot` needs no reference count,
//! so no cache line is written by every worker on every batch. arc-swap's
//! `load` is as cheap in the common case, but a reader that ends up holding
//! the last `Arc` of a replaced snapshot frees it on the fast path, and its
//! fallback path under contention is lock-free rather than wait-free.
//!
//! Either way a replaced snapshot (up to hundreds of MiB) must never be freed
//! by a worker. So the epoch collector only frees a small `Slot` (a `Box`
//! holding an `Arc`); the writer keeps its own `Arc` of every retired
//! snapshot and frees the big tables in [`FibHandle::reclaim`], on the
//! writer's thread, once the slot's `Arc` is gone (strong count back to one).
//!
//! # Staging
//! The handle holds the current snapshot and at most one staged snapshot with
//! an activation time `T` (nanoseconds of the clock the worker passes in as
//! the batch timestamp). A reader uses the staged snapshot as soon as its
//! batch timestamp is `>= T`, so each worker flips at its first batch at or
//! after `T`, with no writer action at `T`. The writer later promotes the
//! staged snapshot to current (on the next `stage`/`publish`, or in
//! `promote_due`), which readers cannot observe: both slots then name the
//! same snapshot.
//!
//! Publication cost does not depend on the FIB's size: one small allocation
//! and one atomic swap. An [`Observer`] (the XDP fast path's publisher,
//! `crate::fast_publish`) is told of every change under the writer lock,
//! so it sees them in order. A FIB made current now is told BEFORE the
//! readers' slot is swapped: the kernel's fast path switches first and the
//! workers a few µs later (the observer's cost, e.g. writing a 2^20-label
//! bank, delays both rather than leaving the engines on different FIBs). A
//! staged FIB is told AFTER: the workers must flip at its instant whatever
//! the observer costs, and the kernel flips per frame at the same instant
//! once its bank is written.

use crate::sys::epoch::EpochCell;
use crossbeam_epoch::Guard;
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::stats::LatenessHistogram;
use std::sync::{Arc, Mutex, MutexGuard};

struct Slot {
    fib: Arc<FibSnapshot>,
    at: u64,
}

/// A snapshot staged for activation at `at`.
#[derive(Debug, Clone)]
pub struct Staged {
    pub fib: Arc<FibSnapshot>,
    pub at: u64,
}

/// Told of the current and staged snapshot after every change, under the
/// writer lock.
pub type Observer = Box<dyn FnMut(&Arc<FibSnapshot>, Option<&Staged>) + Send>;

#[derive(Default)]
struct ObserverSlot(Option<Observer>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

#[derive(Debug, Default)]
struct Writer {
    current: Option<Arc<FibSnapshot>>,
    staged: Option<Staged>,
    previous: Option<Arc<FibSnapshot>>,
    retired: Vec<Arc<FibSnapshot>>,
    observer: ObserverSlot,
}

impl ObserverSlot {
    /// Tells the observer, if any, what will be current and staged.
    fn tell(&mut self, cur: &Arc<FibSnapshot>, staged: Option<&Staged>) {
        if let Some(o) = self.0.as_mut() {
            o(cur, staged);
        }
    }
}

impl Writer {
    /// Tells the observer, if any, what is current and staged now.
    fn notify(&mut self) {
        if let Some(cur) = self.current.as_ref() {
            self.observer.tell(cur, self.staged.as_ref());
        }
    }
}

/// Where workers find the FIB. Readers never lock; writers serialise on a
/// mutex among themselves (the control socket, the liveness watcher).
#[derive(Debug)]
pub struct FibHandle {
    current: EpochCell<Slot>,
    staged: EpochCell<Slot>,
    writer: Mutex<Writer>,
    /// How late after their instant staged FIBs were promoted (the
    /// writer's side: workers use a due staged FIB from their first batch
    /// at or after the instant, promoted or not).
    pub lateness: LatenessHistogram,
}

impl FibHandle {
    pub fn new(initial: FibSnapshot) -> FibHandle {
        let fib = Arc::new(initial);
        FibHandle {
            current: EpochCell::new(Some(Slot {
                fib: fib.clone(),
                at: 0,
            })),
            staged: EpochCell::new(None),
            writer: Mutex::new(Writer {
                current: Some(fib),
                ..Writer::default()
            }),
            lateness: LatenessHistogram::default(),
        }
    }

    /// The snapshot in force for a batch stamped `now`. Wait-free; the
    /// reference lives as long as the guard (pin once per batch).
    #[inline(always)]
    pub fn load<'g>(&self, now: u64, guard: &'g Guard) -> &'g FibSnapshot {
        if let Some(s) = self.staged.load(guard) {
            if now >= s.at {
                return &s.fib;
            }
        }
        // The current slot is never empty: `new` fills it and writers only
        // replace it with another snapshot.
        &self
            .current
            .load(guard)
            .expect("FibHandle always holds a current snapshot")
            .fib
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A writer that panicked left the state consistent (every field is
        // updated after the atomic swaps succeed), so poisoning is ignored.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `fib` current now and drops any staged snapshot. Returns its
    /// version. O(1) in the size of the FIB.
    pub fn publish(&self, fib: FibSnapshot) -> u64 {
        self.publish_arc(Arc::new(fib))
    }

    pub fn publish_arc(&self, fib: Arc<FibSnapshot>) -> u64 {
        let mut w = self.lock();
        self.install(&mut w, fib, true)
    }

    /// Makes `fib` current, drops any staged snapshot, and keeps the
    /// replaced one as the rollback target when `keep_previous` (otherwise
    /// there is none afterwards). Returns the version.
    fn install(&self, w: &mut Writer, fib: Arc<FibSnapshot>, keep_previous: bool) -> u64 {
        w.observer.tell(&fib, None);
        let g = crossbeam_epoch::pin();
        let v = fib.version();
        self.current.replace(
            Some(Slot {
                fib: fib.clone(),
                at: 0,
            }),
            &g,
        );
        if let Some(s) = w.staged.take() {
            self.staged.replace(None, &g);
            retire(&mut w.retired, s.fib);
        }
        if let Some(old) = w.current.replace(fib) {
            retire(&mut w.retired, old.clone());
            w.previous = keep_previous.then_some(old);
        }
        drop(g);
        Self::reclaim_locked(w);
        v
    }

    /// Stages `fib` to take effect at the first batch stamped `>= at`.
    /// A snapshot already staged and due is promoted first; one not yet due
    /// is replaced (the schedule moved).
    pub fn stage(&self, fib: FibSnapshot, at: u64, now: u64) {
        self.stage_arc(Arc::new(fib), at, now)
    }

    pub fn stage_arc(&self, fib: Arc<FibSnapshot>, at: u64, now: u64) {
        self.promote_due(now);
        let mut w = self.lock();
        let next = Staged {
            fib: fib.clone(),
            at,
        };
        let w = &mut *w;
        let g = crossbeam_epoch::pin();
        self.staged.replace(
            Some(Slot {
                fib: fib.clone(),
                at,
            }),
            &g,
        );
        if let Some(old) = w.staged.replace(next) {
            retire(&mut w.retired, old.fib);
        }
        drop(g);
        Self::reclaim_locked(w);
        // Staged: the workers' slot first, so they flip at the instant
        // whatever the observer costs (a bank write may wait for an RCU
        // grace period); the kernel flips per frame at the same instant
        // once its bank is written, normally long before.
        w.notify();
    }

    /// Promotes a staged snapshot whose time has come to current. Readers see
    /// no change (they already use it). Returns true when it promoted.
    /// Logged at info level (the audit trail): the versions and how late
    /// the promotion came.
    pub fn promote_due(&self, now: u64) -> bool {
        self.promote(now, true)
    }

    fn promote(&self, now: u64, at_its_time: bool) -> bool {
        let mut w = self.lock();
        let due = matches!(&w.staged, Some(s) if now >= s.at);
        if !due {
            return false;
        }
        let s = w.staged.take().expect("checked above");
        if at_its_time {
            self.lateness.observe(now.saturating_sub(s.at));
            tracing::info!(
                version = s.fib.version(),
                replaced = w.current.as_ref().map(|c| c.version()),
                at_ns = s.at,
                late_ms = now.saturating_sub(s.at) as f64 / 1e6,
                "staged FIB activated at its time"
            );
        }
        w.observer.tell(&s.fib, None);
        let g = crossbeam_epoch::pin();
        // Current first, then clear staged: a reader in between sees the new
        // snapshot through either slot.
        self.current.replace(
            Some(Slot {
                fib: s.fib.clone(),
                at: 0,
            }),
            &g,
        );
        self.staged.replace(None, &g);
        if let Some(old) = w.current.replace(s.fib.clone()) {
            retire(&mut w.retired, old.clone());
            w.previous = Some(old);
        }
        retire(&mut w.retired, s.fib);
        drop(g);
        Self::reclaim_locked(&mut w);
        true
    }

    /// Drops a staged snapshot that is not yet due (one that is due is
    /// promoted: workers may already forward with it). Returns the version
    /// dropped, if any.
    pub fn unstage(&self, now: u64) -> Option<u64> {
        self.promote_due(now);
        let mut w = self.lock();
        let s = w.staged.take()?;
        let w = &mut *w;
        if let Some(cur) = w.current.as_ref() {
            w.observer.tell(cur, None);
        }
        let g = crossbeam_epoch::pin();
        self.staged.replace(None, &g);
        let v = s.fib.version();
        retire(&mut w.retired, s.fib);
        drop(g);
        Self::reclaim_locked(w);
        Some(v)
    }

    /// Swaps the staged snapshot in now, whatever its time.
    pub fn activate_staged(&self) -> Option<u64> {
        let s = self.lock().staged.clone()?;
        // Compared against its own time, a staged snapshot is always due.
        self.promote(s.at, false);
        Some(s.fib.version())
    }

    /// Makes the previous snapshot (the one the last publish, activation or
    /// swap replaced) current again, and drops any staged one. One step
    /// back only: the rolled-back snapshot is not kept, so a second
    /// rollback finds no previous snapshot (rather than going forward
    /// again) until another FIB is activated. Returns the version now
    /// current, or `None` when there is no previous snapshot.
    pub fn rollback(&self) -> Option<u64> {
        let mut w = self.lock();
        let prev = w.previous.take()?;
        Some(self.install(&mut w, prev, false))
    }

    /// Swaps the current and the previous snapshot (and drops any staged
    /// one): two FIBs alternate with one pointer swap each, which is what
    /// the relay harness measures under load. Operators roll back instead.
    /// Returns the version now current, or `None` with no previous one.
    pub fn exchange(&self) -> Option<u64> {
        let mut w = self.lock();
        let prev = w.previous.clone()?;
        Some(self.install(&mut w, prev, true))
    }

    /// Sets the observer and tells it the present state at once.
    pub fn set_observer(&self, o: Observer) {
        let mut w = self.lock();
        w.observer = ObserverSlot(Some(o));
        w.notify();
    }

    /// Tells the observer the present state again (housekeeping: a
    /// staged instant re-read against a clock that moved).
    pub fn notify(&self) {
        self.lock().notify();
    }

    /// The current snapshot (as the writer knows it; a due staged snapshot
    /// counts as current only after `promote_due`).
    pub fn current(&self) -> Arc<FibSnapshot> {
        self.lock()
            .current
            .clone()
            .expect("FibHandle always holds a current snapshot")
    }

    pub fn staged(&self) -> Option<Staged> {
        self.lock().staged.clone()
    }

    pub fn previous(&self) -> Option<Arc<FibSnapshot>> {
        self.lock().previous.clone()
    }

    /// Frees retired snapshots that no reader can reach any more; returns
    /// how many are still waiting. Call from a housekeeping thread.
    pub fn reclaim(&self) -> usize {
        crossbeam_epoch::pin().flush();
        let mut w = self.lock();
        Self::reclaim_locked(&mut w)
    }

    fn reclaim_locked(w: &mut Writer) -> usize {
        // Each snapshot sits in `retired` at most once (see `retire`).
        // Strong count 1: only `retired` holds it; 2 when it is also the
        // previous (kept for rollback) or current/staged, which retain it.
        let keep: Vec<*const FibSnapshot> = [&w.current, &w.previous]
            .into_iter()
            .flatten()
            .chain(w.staged.as_ref().map(|s| &s.fib))
            .map(Arc::as_ptr)
            .collect();
        w.retired.retain(|r| {
            let held_by_writer = keep.iter().filter(|&&p| p == Arc::as_ptr(r)).count();
            Arc::strong_count(r) > 1 + held_by_writer
        });
        w.retired.len()
    }
}

/// Remembers a snapshot whose slot was unlinked, once per snapshot, so that
/// `reclaim_locked` can count references exactly.
fn retire(retired: &mut Vec<Arc<FibSnapshot>>, fib: Arc<FibSnapshot>) {
    if !retired.iter().any(|r| Arc::ptr_eq(r, &fib)) {
        retired.push(fib);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fib(v: u64) -> FibSnapshot {
        FibSnapshot::empty(v)
    }

    fn version_at(h: &FibHandle, now: u64) -> u64 {
        h.load(now, &crossbeam_epoch::pin()).version()
    }

    #[test]
    fn the_observer_sees_every_change_in_order() {
        let h = FibHandle::new(fib(1));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        h.set_observer(Box::new(move |cur, staged| {
            s2.lock()
                .unwrap()
                .push((cur.version(), staged.map(|s| (s.fib.version(), s.at))));
        }));
        h.publish(fib(2));
        h.stage(fib(3), 100, 50);
        h.stage(fib(4), 200, 60);
        h.promote_due(250);
        h.rollback();
        h.stage(fib(5), 300, 260);
        h.unstage(270);
        h.publish(fib(6));
        h.exchange();
        let got = seen.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                (1, None),
                (2, None),
                (2, Some((3, 100))),
                (2, Some((4, 200))),
                (4, None),
                (2, None),
                (2, Some((5, 300))),
                (2, None),
                (6, None),
                (2, None),
            ]
        );
    }

    #[test]
    fn publish_and_rollback() {
        let h = FibHandle::new(fib(1));
        assert_eq!(version_at(&h, 0), 1);
        assert_eq!(h.rollback(), None);
        h.publish(fib(2));
        assert_eq!(version_at(&h, 0), 2);
        assert_eq!(h.rollback(), Some(1));
        assert_eq!(version_at(&h, 0), 1);
        // Not a toggle: one step back, then nothing older to go to.
        assert_eq!(h.rollback(), None);
        assert_eq!(h.current().version(), 1);
        assert!(h.previous().is_none());
        // A new FIB makes the rolled-back one the rollback target again.
        h.publish(fib(3));
        assert_eq!(h.rollback(), Some(1));
    }

    #[test]
    fn exchange_alternates_two_snapshots() {
        let h = FibHandle::new(fib(1));
        assert_eq!(h.exchange(), None);
        h.publish(fib(2));
        for want in [1, 2, 1, 2] {
            assert_eq!(h.exchange(), Some(want));
            assert_eq!(version_at(&h, 0), want);
        }
    }

    #[test]
    fn rollback_drops_a_staged_snapshot_and_frees_the_abandoned_ones() {
        let h = FibHandle::new(fib(1));
        let (two, three) = (Arc::new(fib(2)), Arc::new(fib(3)));
        let gone = [Arc::downgrade(&two), Arc::downgrade(&three)];
        h.stage_arc(two, 100, 0);
        assert!(h.promote_due(100));
        h.stage_arc(three, 1_000, 100);
        assert_eq!(h.rollback(), Some(1));
        assert!(h.staged().is_none());
        assert_eq!(version_at(&h, 2_000), 1, "the staged FIB never activates");
        for _ in 0..10_000 {
            h.reclaim();
            if gone.iter().all(|w| w.upgrade().is_none()) {
                break;
            }
        }
        assert!(
            gone.iter().all(|w| w.upgrade().is_none()),
            "2 and 3 are freed: nothing keeps them"
        );
    }

    #[test]
    fn staged_snapshot_takes_effect_at_its_time() {
        let h = FibHandle::new(fib(1));
        h.stage(fib(2), 1_000, 0);
        assert_eq!(version_at(&h, 999), 1);
        assert_eq!(version_at(&h, 1_000), 2);
        assert_eq!(h.current().version(), 1);
        assert!(!h.promote_due(999));
        assert!(h.promote_due(1_000));
        assert_eq!(h.current().version(), 2);
        assert_eq!(
            version_at(&h, 0),
            2,
            "after promotion the flip is permanent"
        );
        assert_eq!(h.previous().unwrap().version(), 1);
        assert!(h.staged().is_none());
    }

    #[test]
    fn a_promotion_at_its_time_is_counted_by_lateness_and_a_swap_is_not() {
        let h = FibHandle::new(fib(1));
        h.stage(fib(2), 1_000, 0);
        assert!(h.promote_due(1_000 + 2_000_000)); // 2 ms late
        h.stage(fib(3), u64::MAX, 0);
        assert_eq!(h.activate_staged(), Some(3)); // by hand: no instant to be late for
        let r = h.lateness.read();
        assert_eq!(r.cumulative.last(), Some(&1));
        assert_eq!((r.cumulative[1], r.cumulative[2]), (0, 1), "in (1, 5] ms");
        assert_eq!(r.sum_ns, 2_000_000);
    }

    #[test]
    fn restaging_before_due_replaces_and_after_due_promotes() {
        let h = FibHandle::new(fib(1));
        h.stage(fib(2), 100, 0);
        h.stage(fib(3), 200, 50); // 2 not due: replaced
        assert_eq!(version_at(&h, 150), 1);
        assert_eq!(version_at(&h, 200), 3);
        h.stage(fib(4), 300, 250); // 3 due: promoted first
        assert_eq!(h.current().version(), 3);
        assert_eq!(version_at(&h, 299), 3);
        assert_eq!(h.activate_staged(), Some(4));
        assert_eq!(version_at(&h, 0), 4);
    }

    #[test]
    fn retired_snapshots_are_freed_on_the_writer() {
        let h = FibHandle::new(fib(0));
        let first = h.current();
        for v in 1..=200 {
            h.publish(fib(v));
        }
        drop(first);
        let mut left = usize::MAX;
        for _ in 0..10_000 {
            left = h.reclaim();
            if left <= 1 {
                break;
            }
        }
        // Only the previous snapshot (kept for rollback) may remain.
        assert!(left <= 1, "{left} retired snapshots still held");
    }

    #[test]
    fn stage_promote_cycles_do_not_leak() {
        let h = FibHandle::new(fib(0));
        for v in 1..=300u64 {
            h.stage(fib(v), v * 10, v * 10 - 5);
            let _ = version_at(&h, v * 10);
            if v % 3 == 0 {
                h.promote_due(v * 10);
            }
        }
        h.promote_due(u64::MAX);
        let mut left = usize::MAX;
        for _ in 0..10_000 {
            left = h.reclaim();
            if left <= 2 {
                break;
            }
        }
        assert!(left <= 2, "{left} retired snapshots still held");
        assert_eq!(h.current().version(), 300);
    }
}
