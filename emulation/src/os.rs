//! What the emulator asks of the operating system, through safe wrappers
//! (`signal-hook`, `rustix`, the lab): a stop flag that SIGINT/SIGTERM set,
//! SIGTERM to a child it started, and the effective uid.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn stop_flag() -> &'static Arc<AtomicBool> {
    STOP.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Makes SIGINT and SIGTERM set the flag [`stop_requested`] reads (the
/// handler only stores to an atomic), and makes a write to a closed stdout
/// end the program by SIGPIPE (see `orbitmesh_core::cli`).
pub fn install() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(stop_flag()))?;
    }
    orbitmesh_core::cli::on_broken_pipe(control::os::die_of_sigpipe);
    Ok(())
}

/// True once SIGINT or SIGTERM has arrived (after [`install`]).
pub fn stop_requested() -> bool {
    stop_flag().load(Ordering::Relaxed)
}

/// Sends SIGTERM to a process this program started (by its PID, never by
/// name), so it can clean up (detach XDP programs) before it exits.
pub use orbitmesh_lab::terminate;

/// The effective user id (0: root, who may create namespaces).
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
