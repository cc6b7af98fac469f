//! What the control tools ask of the operating system, through safe
//! wrappers (`signal-hook`, `rustix`), so that this crate has no `unsafe`
//! and needs no BPF toolchain: a stop flag that SIGINT/SIGTERM set, SIGTERM
//! to a child it started, the effective uid, and ending the way a Unix tool
//! ends when its output's reader has gone.

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
    orbitmesh_core::cli::on_broken_pipe(die_of_sigpipe);
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

/// Ends the process as a Unix tool does when the reader of its output has
/// gone: by SIGPIPE's default action (a shell shows status 141).
pub fn die_of_sigpipe() -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    std::process::exit(141)
}
