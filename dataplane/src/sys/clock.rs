//! Whether the host clock is synchronized (adjtimex(2)): activation times
//! are CLOCK_REALTIME instants agreed across nodes, so an unsynchronized
//! clock makes every scheduled FIB swap happen at the wrong moment. Also a
//! thread's timer slack (prctl), for a worker's short coalescing sleeps;
//! CLOCK_MONOTONIC, the clock of the XDP fast path's scheduled flips.

/// `Some(true)` when the kernel considers the clock synchronized (NTP/PTP
/// disciplined), `Some(false)` when not, `None` when it cannot tell.
pub fn synchronized() -> Option<bool> {
    // SAFETY: timex is plain old data for which all-zero is valid; with
    // modes = 0 adjtimex only reads the kernel's state into it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable timex for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0)
}

/// Sets the calling thread's timer slack (how late the kernel may end its
/// sleeps to group wake-ups; 50 µs by default). Returns false on error.
pub fn set_timer_slack_ns(ns: u64) -> bool {
    // SAFETY: PR_SET_TIMERSLACK takes the slack as an unsigned long value
    // and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) == 0 }
}

/// CLOCK_MONOTONIC now, in ns: the clock XDP programs read with
/// bpf_ktime_get_ns (ktime_get_mono_fast_ns).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call;
    // CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernel_answers() {
        assert!(super::synchronized().is_some(), "adjtimex failed");
    }
}
