//! Peer credentials of a unix socket (SO_PEERCRED, unix(7)), the process's
//! effective uid, and whether input waits on a stream socket, unix or TCP
//! (for the control server's choice of an idle connection to close).

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

/// recv(MSG_PEEK) of one byte: whether bytes wait to be read (`false` at
/// end of file), leaving them in the socket.
fn peek(s: &impl AsRawFd, flags: libc::c_int) -> std::io::Result<bool> {
    let mut b = 0u8;
    // SAFETY: `b` is a valid, writable one-byte buffer for the whole call;
    // the fd is owned by `s` (borrowed for the whole call, so open). MSG_PEEK leaves
    // the byte in the socket.
    let r = unsafe {
        libc::recv(
            s.as_raw_fd(),
            (&mut b as *mut u8).cast(),
            1,
            libc::MSG_PEEK | flags,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r > 0)
}

/// Waits for bytes to read on `s` (at most its read timeout, SO_RCVTIMEO,
/// after which the error is `WouldBlock`) without taking them: `false` at
/// end of file.
pub fn wait_for_input(s: &impl AsRawFd) -> std::io::Result<bool> {
    peek(s, 0)
}

/// Whether bytes wait to be read on `s`, without taking them or blocking.
/// End of file is not input; an error other than "nothing to read" counts
/// as input, so a socket in an unknown state is not taken for an idle one.
pub fn has_pending_input(s: &impl AsRawFd) -> bool {
    match peek(s, libc::MSG_DONTWAIT) {
        Ok(pending) => pending,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        ),
    }
}

/// Shuts a listening socket down: on Linux a thread blocked in accept(2)
/// on it returns (EINVAL), and so do later accepts. Used to stop a TCP
/// listener, which a connection cannot always wake (its own address may
/// be unreachable from its namespace, e.g. with `lo` down).
pub fn shutdown_listener(s: &impl AsRawFd) -> std::io::Result<()> {
    // SAFETY: shutdown(2) takes only the fd and a flag; the fd is owned by
    // `s`, borrowed (so open) for the whole call.
    let r = unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
