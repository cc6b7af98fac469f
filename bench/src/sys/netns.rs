//! Moves the calling thread into a named network namespace (`setns(2)` with
//! CLONE_NEWNET on /run/netns/NAME, what `ip netns exec` does for a whole
//! process). The namespace is per thread, so the harness runs its traffic
//! thread inside the generator's namespace while the main thread stays in
//! the host's and drives the DUT.

use anyhow::{bail, Context, Result};
use std::os::fd::AsRawFd;

/// Enters `/run/netns/<name>` for the calling thread only.
pub fn enter(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: `f` is an open namespace file for the duration of the call;
    // setns only changes the calling thread's network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        bail!("setns into {path}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
