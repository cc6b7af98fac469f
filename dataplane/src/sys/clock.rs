//! Whether the host clock is synchronized (adjtimex(2)): activation times
//! are CLOCK_REALTIME instants agreed across nodes, so an unsynchronized
//! clock makes every scheduled FIB swap happen at the wrong moment.

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernel_answers() {
        assert!(super::synchronized().is_some(), "adjtimex failed");
    }
}
