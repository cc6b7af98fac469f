//! Kernel busy polling of an AF_XDP socket from user space: a non-blocking
//! `recvfrom` on a socket with `SO_BUSY_POLL` set runs `sk_busy_loop` on the
//! socket's NAPI instance (net/xdp/xsk.c, `xsk_recvmsg`), so the receive
//! work runs in the caller's system call on the caller's core. With
//! `SO_PREFER_BUSY_POLL` and the interface's `napi_defer_hard_irqs` /
//! `gro_flush_timeout` set, the kernel leaves that NAPI to the busy poller
//! and wakes nothing for it while it polls: what DPDK's net_af_xdp does by
//! default (its `busy_budget`), and what the sink does here.

use std::os::fd::RawFd;

/// NAPI budget of every busy poller the bench runs or starts (the sink,
/// xdp-min-busy, the orbitmesh-dp busy DUTs): net_af_xdp's default.
pub const BUDGET: u32 = 64;

/// One busy-poll round on `fd`'s NAPI instance: received frames land on
/// the socket's RX ring. The result is ignored (EAGAIN: nothing to read;
/// the RX ring is read separately).
pub fn busy_poll(fd: RawFd) {
    // SAFETY: a zero-length receive into a null buffer with null address
    // arguments: the kernel copies nothing out (len 0, no address
    // requested), and MSG_DONTWAIT keeps the call from blocking. A stale
    // or wrong `fd` makes the call fail with EBADF/ENOTSOCK, touching no
    // memory of ours.
    unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}
