//! An epoch-protected, atomically replaceable pointer: the read side of RCU
//! (McKenney and Slingwine, "Read-Copy Update", 1998) with epoch-based
//! reclamation (Fraser, "Practical lock-freedom", 2004) from crossbeam-epoch.
//!
//! Readers pin the epoch (`crossbeam_epoch::pin()`), `load` a reference that
//! stays valid while the guard lives, and never block or write shared state
//! other than their own epoch slot. A writer `replace`s the pointer with one
//! atomic swap and hands the old value to the epoch collector, which drops it
//! only after every thread pinned at the time of the swap has unpinned.

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};
use std::sync::atomic::Ordering;

/// A nullable pointer to a `T` that readers load without locks.
pub struct EpochCell<T: Send + Sync + 'static> {
    ptr: Atomic<T>,
}

impl<T: Send + Sync + 'static> std::fmt::Debug for EpochCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochCell")
    }
}

impl<T: Send + Sync + 'static> EpochCell<T> {
    pub fn new(value: Option<T>) -> Self {
        EpochCell {
            ptr: value.map_or_else(Atomic::null, Atomic::new),
        }
    }

    /// The current value, valid for as long as `guard` is pinned. Wait-free.
    #[inline(always)]
    pub fn load<'g>(&self, guard: &'g Guard) -> Option<&'g T> {
        let p: Shared<'g, T> = self.ptr.load(Ordering::Acquire, guard);
        // SAFETY: every pointer stored in `ptr` came from `Owned::new` (a live
        // heap allocation), and a value swapped out is only destroyed through
        // `defer_destroy`, i.e. after every thread that was pinned when it was
        // unlinked (this guard included) has unpinned. So while `guard` lives
        // the pointee is valid and never mutated (we only hand out `&T`).
        unsafe { p.as_ref() }
    }

    /// Publishes `value` with one atomic swap; the previous value is dropped
    /// once no reader can still see it.
    pub fn replace(&self, value: Option<T>, guard: &Guard) {
        let new = value.map_or_else(Shared::null, |v| Owned::new(v).into_shared(guard));
        let old = self.ptr.swap(new, Ordering::AcqRel, guard);
        if !old.is_null() {
            // SAFETY: `old` has just been unlinked by the swap above, so no
            // reader that pins from now on can reach it; readers pinned before
            // are waited for by the epoch collector before the destructor runs.
            // It is destroyed exactly once: only the thread whose swap
            // returned it reaches this line for it.
            unsafe { guard.defer_destroy(old) };
        }
    }
}

impl<T: Send + Sync + 'static> Drop for EpochCell<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` proves no reader holds a reference obtained
        // through this cell (loads borrow `&self` for the guard's lifetime,
        // and a guard cannot outlive the borrow), so the current value can be
        // dropped at once.
        unsafe {
            let g = crossbeam_epoch::unprotected();
            let p = self.ptr.swap(Shared::null(), Ordering::AcqRel, g);
            if !p.is_null() {
                drop(p.into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>, u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn replaced_values_are_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = EpochCell::new(Some(Counted(drops.clone(), 0)));
        for i in 1..=1000 {
            let g = crossbeam_epoch::pin();
            assert_eq!(cell.load(&g).unwrap().1, i - 1);
            cell.replace(Some(Counted(drops.clone(), i)), &g);
        }
        cell.replace(None, &crossbeam_epoch::pin());
        assert!(cell.load(&crossbeam_epoch::pin()).is_none());
        drop(cell);
        // Deferred destructors run as the global epoch advances.
        for _ in 0..10_000 {
            if drops.load(Ordering::SeqCst) == 1001 {
                break;
            }
            crossbeam_epoch::pin().flush();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1001);
    }
}
