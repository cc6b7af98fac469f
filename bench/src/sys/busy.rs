//! Kernel busy polling of an AF_XDP socket from user space: a non-blocking
//! `recvfrom` on a socket with `SO_BUSY_POLL` set runs `sk_busy_loop` on the
//! socket's NAPI instance (net/xdp/xsk.c, `xsk_recvmsg`), so the receive
//! work runs in the caller's system call on the caller's core. With
//! `SO_PREFER_BUSY_POLL` and the interface's `napi_defer_hard_irqs` /
//! `gro_flush_timeout` set, the kernel leaves that NAPI to the busy poller
//! and wakes nothing for it while it polls: what DPDK's net_af_xdp does by
//! default (its `busy_budget`), and what the sink does here. The call is
//! the dataplane's own (`XskIo::busy_poll` with a busy-poll budget set).
//! Where the driver gives the socket no NAPI instance (veth: see
//! `harness::dut`), the call runs nothing and the poller only spins.

/// NAPI budget of every busy poller the bench runs or starts (the sink,
/// xdp-min-busy, the orbitmesh-dp busy DUTs): net_af_xdp's default.
pub const BUDGET: u32 = 64;
