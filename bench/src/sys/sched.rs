//! Real-time scheduling of the harness's threads with `chrt` (no
//! `unsafe`): the NAPI threads of the line, the testbed check's spinning
//! thread, and the sink beside the live generator run at SCHED_FIFO.

use anyhow::{bail, Context, Result};

/// The calling thread's id (`/proc/thread-self`).
pub fn thread_id() -> Result<u32> {
    let me = std::fs::read_link("/proc/thread-self")?;
    me.file_name()
        .and_then(|t| t.to_str()?.parse().ok())
        .context("/proc/thread-self names no thread")
}

/// Puts thread `tid` at SCHED_FIFO `prio`, or back to SCHED_OTHER (None).
pub fn set_fifo(tid: u32, prio: Option<u32>) -> Result<()> {
    let (policy, prio) = match prio {
        Some(p) => ("-f", p),
        None => ("-o", 0),
    };
    let args = [
        policy.to_string(),
        "-p".into(),
        prio.to_string(),
        tid.to_string(),
    ];
    let out = std::process::Command::new("chrt")
        .args(&args)
        .output()
        .context("running chrt")?;
    if !out.status.success() {
        bail!(
            "chrt {} (root needed for SCHED_FIFO): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// [`set_fifo`] for the calling thread.
pub fn this_thread(prio: Option<u32>) -> Result<()> {
    set_fifo(thread_id()?, prio)
}
