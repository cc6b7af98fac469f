//! SIGINT/SIGTERM set a flag the main loop polls (async-signal-safe: the
//! handler only stores to an atomic). SIGPIPE stays ignored (Rust's
//! default), except to end a program whose stdout reader has gone.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM, and makes a write to a
/// closed stdout end the program by SIGPIPE (`orbitmesh_core::cli`).
pub fn install() {
    orbitmesh_core::cli::on_broken_pipe(die_of_sigpipe);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an extern "C" fn that only performs an
        // atomic store, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// True once SIGINT or SIGTERM has arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sends SIGTERM to a process this program started (by its PID, never by
/// name), so it can clean up (detach XDP programs) before it exits.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // a positive pid names one process, never a group.
    if pid > 0 && unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Ends the process the way a Unix tool ends when the reader of its output
/// has gone: killed by SIGPIPE (a shell shows status 141), with no message.
/// Exits with 141 should the signal not end it.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: signal(2) with SIG_DFL installs no handler of ours, so no code
    // of ours runs in signal context; raise(3) sends SIGPIPE to the calling
    // thread. Neither reads or writes memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}
