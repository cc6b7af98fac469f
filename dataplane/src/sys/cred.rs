//! Peer credentials of a unix socket (SO_PEERCRED, unix(7)), and the
//! process's effective uid. std's `UnixStream::peer_cred` is not stable yet.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// (pid, uid, gid) of the process at the other end of `s`.
pub fn peer_cred(s: &UnixStream) -> std::io::Result<(i32, u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid, writable and sized for SO_PEERCRED's
    // `struct ucred`; the fd is owned by `s` and open for the whole call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
