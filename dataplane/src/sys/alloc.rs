//! A counting global allocator, for the tests that bound what an input may
//! make the code allocate (FIB files, control frames). A test binary
//! declares it with
//! `#[global_allocator] static A: dataplane::sys::alloc::Counting = dataplane::sys::alloc::Counting;`
//! and measures with [`measure`]. The counts are per thread, so tests that
//! run beside each other do not disturb them, and only while [`measure`]
//! runs, so a program that declares it pays one thread-local read per
//! allocation otherwise.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts, per thread and only while asked to, the bytes allocated and not
/// yet freed, their peak, and the largest single allocation.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(alloc: usize, free: usize) {
    // try_with: the thread's locals may be gone while it exits.
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let live = LIVE.get() + alloc as isize - free as isize;
            LIVE.set(live);
            PEAK.set(PEAK.get().max(live));
            LARGEST.set(LARGEST.get().max(alloc));
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// bookkeeping touches only const-initialised thread locals (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 0);
        // SAFETY: the caller's contract for `alloc` is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 0);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, layout.size());
        // SAFETY: `ptr` was allocated by System with `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Old and new blocks may both be live during the copy.
        note(new_size, 0);
        note(0, layout.size());
        // SAFETY: `ptr` was allocated by System with `layout`; the caller's
        // contract for `realloc` is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f`, returning its result, the peak of the bytes it held (above
/// what was held when it began) and its largest single allocation.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LIVE.set(0);
    PEAK.set(0);
    LARGEST.set(0);
    TRACKING.set(true);
    let r = f();
    TRACKING.set(false);
    (r, PEAK.get().max(0) as usize, LARGEST.get())
}
