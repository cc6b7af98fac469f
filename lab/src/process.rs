//! Stopping a process this program started, by its own PID (never by name,
//! which could hit another user's processes): SIGTERM, so a dataplane can
//! detach its XDP programs and remove its socket, then SIGKILL if it has not
//! exited within a timeout.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Sends SIGTERM to the process `pid` (one this program started).
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("{pid} is not a process id")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(Into::into)
}

/// How often a stopping child is polled.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `child` exits or `deadline` passes; `None` if it is running.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Err(_) => return None,
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(POLL),
        }
    }
}

/// Stops `child`: SIGTERM by its PID, then SIGKILL if it has not exited
/// after `timeout`. Returns its exit status (at once if it had exited).
pub fn stop(child: &mut Child, timeout: Duration) -> std::io::Result<ExitStatus> {
    if let Some(st) = child.try_wait()? {
        return Ok(st);
    }
    terminate(child.id())?;
    if let Some(st) = wait_until(child, Instant::now() + timeout) {
        return Ok(st);
    }
    child.kill()?;
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    const SIGTERM: i32 = 15;
    const SIGKILL: i32 = 9;

    #[test]
    fn a_child_is_terminated_by_its_pid() {
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        terminate(c.id()).unwrap();
        assert_eq!(c.wait().unwrap().signal(), Some(SIGTERM));
        assert!(
            terminate(0).is_err(),
            "0 names a process group, not a process"
        );
        assert!(terminate(u32::MAX).is_err());
    }

    #[test]
    fn stop_kills_a_child_that_ignores_sigterm_after_the_timeout() {
        let mut c = Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The trap is set once it has said so.
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(c.stdout.as_mut().unwrap(), &mut buf).unwrap();
        let t = Instant::now();
        let st = stop(&mut c, Duration::from_millis(300)).unwrap();
        assert_eq!(st.signal(), Some(SIGKILL));
        assert!(t.elapsed() >= Duration::from_millis(300));

        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let st = stop(&mut c, Duration::from_secs(10)).unwrap();
        assert_eq!(st.signal(), Some(SIGTERM));
        // Stopping an exited child returns its status again.
        assert_eq!(
            stop(&mut c, Duration::ZERO).unwrap().signal(),
            Some(SIGTERM)
        );
    }
}
