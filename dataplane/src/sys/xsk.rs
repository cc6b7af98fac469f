//! AF_XDP rings for one worker (xsk-rs): one UMEM shared by one socket per
//! port, so a frame received on one port is transmitted on another by
//! handing its descriptor over, without a copy (the AF_XDP-forwarding model
//! of xdp-project/bpf-examples: one fill/completion ring pair per (netdev,
//! queue), RX/TX rings per socket).
//!
//! This module is only the kernel's side of [`crate::sys::ring::Rings`]:
//! creating the UMEM and sockets, and each ring's produce/consume and
//! wake-up. The pool, receive, transmit retry and fill share are
//! [`crate::sys::ring::RingIo`]'s, the same code the in-memory fake is
//! tested with; [`XskIo`] is `RingIo` over these rings.
//!
//! Sockets are created with XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD: the
//! dataplane loads its own XDP program (sys::xdp) and fills its XSKMAP, so
//! libxdp's dispatcher and bpffs are not needed (also inside `ip netns exec`).

use crate::sys::ring::{Desc, RingIo, Rings};
use orbitmesh_core::pipeline::MAX_BATCH;
use orbitmesh_core::stats::KernelStats;
use orbitmesh_core::wire::ethernet::TAGGED_HEADER_LEN;
use smallvec::SmallVec;
use std::os::fd::AsRawFd;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// How sockets bind (the first socket of a UMEM decides for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XdpMode {
    /// Zero-copy where the driver supports it, copy otherwise.
    Auto,
    ZeroCopy,
    Copy,
}

/// Bytes of one UMEM chunk: every frame, received or sent, lives in one.
pub const CHUNK_SIZE: u32 = 2048;

/// Bytes the kernel keeps in front of every received frame
/// (`XDP_PACKET_HEADROOM`; our own UMEM headroom is 0). Pushed labels go
/// there.
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// The largest L3 packet (bytes after the Ethernet header, labels included)
/// a port can receive in a chunk of `chunk_size` bytes: what is left after
/// the kernel's headroom and an Ethernet header with one 802.1Q tag. The
/// kernel drops a longer frame before the dataplane sees it (counted only
/// as the socket's "other" drops), so no port MTU may exceed this.
pub const fn max_l3(chunk_size: u32) -> u16 {
    (chunk_size - XDP_PACKET_HEADROOM - TAGGED_HEADER_LEN as u32) as u16
}

/// [`max_l3`] of this dataplane's chunks: 1774 bytes.
pub const MAX_L3: u16 = max_l3(CHUNK_SIZE);

/// Sizes of the UMEM and the rings.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    pub frames: u32,
    /// UMEM chunk size, [`CHUNK_SIZE`] (the port MTU limit, [`MAX_L3`],
    /// is computed from it).
    pub frame_size: u32,
    pub ring_size: u32,
    pub mode: XdpMode,
    /// Kernel busy polling (SO_PREFER_BUSY_POLL with this budget): the
    /// driver's NAPI runs when the worker polls, not from interrupts.
    pub busy_poll_budget: Option<u32>,
    /// Keep the fill rings topped up (false: a transmit-only socket, whose
    /// frames all stay free for sending).
    pub receive: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 8192,
            frame_size: CHUNK_SIZE,
            ring_size: 2048,
            mode: XdpMode::Auto,
            busy_poll_budget: None,
            receive: true,
        }
    }
}

struct Port {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
}

/// The kernel's rings of one worker: its UMEM and one socket per port.
pub struct XskRings {
    umem: Umem,
    ports: Vec<Port>,
    chunks: u32,
    chunk: u32,
    ring_size: u32,
    /// Whether the kernel bound the sockets in zero-copy mode.
    zero_copy: bool,
    /// Kernel busy polling was asked for ([`XskConfig::busy_poll_budget`])
    /// and every socket took its options.
    busy_polling: bool,
    /// xsk-rs descriptors for one ring operation (a fill ring's worth).
    descs: Vec<FrameDesc>,
}

/// One worker's AF_XDP I/O: [`RingIo`] over the kernel's rings.
pub type XskIo = RingIo<XskRings>;

impl std::fmt::Debug for XskRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskRings")
            .field("ports", &self.ports.len())
            .field("zero_copy", &self.zero_copy)
            .finish()
    }
}

impl XskIo {
    /// Creates the UMEM and one socket per interface on `queue`.
    pub fn new(ifaces: &[String], queue: u32, cfg: XskConfig) -> anyhow::Result<XskIo> {
        let receive = cfg.receive;
        Ok(RingIo::with_rings(
            XskRings::open(ifaces, queue, cfg)?,
            receive,
        ))
    }

    /// The socket fd of a port, for the XSKMAP and for poll().
    pub fn fd(&self, port: usize) -> i32 {
        self.rings().ports[port].rx.fd().as_raw_fd()
    }

    /// Whether the kernel bound the sockets in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.rings().zero_copy
    }
}

impl XskRings {
    fn open(ifaces: &[String], queue: u32, cfg: XskConfig) -> anyhow::Result<XskRings> {
        use anyhow::Context;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(cfg.frame_size).context("frame size")?)
            .fill_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .comp_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .frame_headroom(0)
            .build()
            .context("UMEM config")?;
        let count = cfg.frames.try_into().context("frame count must be > 0")?;
        // The descriptors Umem::new returns are chunk starts (no UMEM
        // headroom): RingIo's pool computes the same addresses itself.
        let (umem, _) = Umem::new(umem_cfg, count, false)
            .context("creating the UMEM (is RLIMIT_MEMLOCK high enough?)")?;
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        match cfg.mode {
            XdpMode::Copy => bind |= BindFlags::XDP_COPY,
            XdpMode::ZeroCopy => bind |= BindFlags::XDP_ZEROCOPY,
            XdpMode::Auto => {}
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .tx_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let mut ports = Vec::new();
        for name in ifaces {
            let ifname: Interface = name
                .parse()
                .with_context(|| format!("interface name {name:?}"))?;
            // SAFETY: `Socket::new` has one precondition
            // (vendor/xsk-rs/src/socket/mod.rs, "# Safety"): if the UMEM is
            // shared and the (interface, queue) pair is already bound, the
            // socket config must set XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD, or
            // dropping the sockets may detach (double-free) libxdp's
            // program. From the second interface on, `umem` is shared;
            // `sock_cfg` sets the flag for every socket, so the
            // precondition holds whatever is bound already (and the pair
            // could not be bound by us twice: a repeated interface fails
            // below with no fill/completion rings). The memory the rings
            // point into is not part of that contract, and needs no
            // argument from the order of our fields: `Umem` is a handle
            // to reference-counted state (`Arc<Mutex<UmemInner>>` and the
            // `Arc`'d mmap in `UmemRegion`), `Socket::new` stores a clone
            // of it in the socket, and every queue returned holds the
            // socket, so the mapping and libxdp's UMEM outlive the last
            // queue; the kernel pinned the pages at XDP_UMEM_REG in any case.
            let (tx, rx, rings) = unsafe { Socket::new(sock_cfg, &umem, &ifname, queue) }
                .with_context(|| {
                    format!(
                        "AF_XDP socket on {name} queue {queue}{}",
                        missing_queue(name, queue, rx_queues(name))
                    )
                })?;
            let (fq, cq) = rings.with_context(|| {
                format!("no fill/completion rings for {name} (one socket per interface and queue)")
            })?;
            ports.push(Port { tx, rx, fq, cq });
        }
        let mut busy_polling = cfg.busy_poll_budget.is_some();
        if let Some(budget) = cfg.busy_poll_budget {
            for (p, name) in ports.iter().zip(ifaces) {
                let fd = p.rx.fd().as_raw_fd();
                for (opt, val) in [
                    (libc::SO_PREFER_BUSY_POLL, 1),
                    (libc::SO_BUSY_POLL, 20),
                    (libc::SO_BUSY_POLL_BUDGET, budget as i32),
                ] {
                    if let Err(e) = set_sock_opt(fd, opt, val) {
                        tracing::warn!(port = %name, option = opt, error = %e, "busy polling option refused; interrupts drive reception");
                        busy_polling = false;
                    }
                }
                if napi_id(fd) == 0 {
                    tracing::warn!(port = %name, "kernel busy polling has no NAPI instance to run for this port (SO_INCOMING_NAPI_ID 0: the driver registers none for AF_XDP sockets; veth does not); the worker polls its rings without sleeping and the port's receive runs in the driver's own context (softirq or its NAPI thread)");
                }
            }
        }
        let zero_copy = ports
            .first()
            .map(|p| sys_zero_copy(p.rx.fd().as_raw_fd()))
            .unwrap_or(false);
        Ok(XskRings {
            umem,
            ports,
            chunks: cfg.frames,
            chunk: cfg.frame_size,
            ring_size: cfg.ring_size,
            zero_copy,
            busy_polling,
            descs: vec![FrameDesc::default(); (cfg.ring_size as usize).max(MAX_BATCH * 4)],
        })
    }
}

fn set_sock_opt(fd: i32, opt: libc::c_int, val: i32) -> std::io::Result<()> {
    // SAFETY: `val` is a valid int for the call and its size is passed;
    // `fd` is an open socket owned by the caller.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&val as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// SO_INCOMING_NAPI_ID (include/uapi/asm-generic/socket.h, which x86-64
/// and arm64 use).
const SO_INCOMING_NAPI_ID: libc::c_int = 56;

/// The NAPI instance kernel busy polling runs for the socket `fd`
/// (`sk_napi_id`); 0 when it has none (then a busy-poll `recvfrom` runs
/// nothing) or the kernel does not say.
fn napi_id(fd: i32) -> u32 {
    let mut id: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `id` and `len` are valid and sized for an int option;
    // `fd` is an open socket owned by the caller.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_INCOMING_NAPI_ID,
            (&mut id as *mut u32).cast(),
            &mut len,
        )
    };
    if r == 0 {
        id
    } else {
        0
    }
}

/// True when the socket was bound in zero-copy mode (XDP_OPTIONS).
pub fn sys_zero_copy(fd: i32) -> bool {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: `opts` and `len` are valid and sized for XDP_OPTIONS; `fd` is
    // an open AF_XDP socket owned by the caller.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&mut opts as *mut libc::xdp_options).cast(),
            &mut len,
        )
    };
    r == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

// SAFETY: the promises `Rings` asks for are the kernel's own (af_xdp.rst):
// the RX ring hands back only chunks we put on the fill ring, the
// completion ring only chunks we put on the TX ring, and the kernel
// touches neither until we produce it again; `with_chunks` builds each
// view from a descriptor covering exactly one chunk of `self.umem`.
unsafe impl Rings for XskRings {
    fn ports(&self) -> usize {
        self.ports.len()
    }

    fn chunks(&self) -> u32 {
        self.chunks
    }

    fn chunk_size(&self) -> u32 {
        self.chunk
    }

    fn ring_size(&self) -> u32 {
        self.ring_size
    }

    fn rx_headroom(&self) -> u32 {
        XDP_PACKET_HEADROOM
    }

    fn rx_consume(&mut self, port: usize, out: &mut [Desc]) -> usize {
        let n = out.len().min(self.descs.len());
        // SAFETY: `consume`'s precondition is that the descriptors are
        // written for the UMEM the ring is tied to: every ring here was
        // created from `self.umem`, this set's only UMEM.
        let k = unsafe { self.ports[port].rx.consume(&mut self.descs[..n]) };
        for (o, d) in out.iter_mut().zip(&self.descs[..k]) {
            *o = Desc {
                addr: d.addr() as u32,
                len: d.lengths().data() as u32,
            };
        }
        k
    }

    fn comp_consume(&mut self, port: usize, out: &mut [u32]) -> usize {
        let n = out.len().min(self.descs.len());
        // SAFETY: as in `rx_consume`: the ring is tied to `self.umem`.
        let k = unsafe { self.ports[port].cq.consume(&mut self.descs[..n]) };
        for (o, d) in out.iter_mut().zip(&self.descs[..k]) {
            *o = d.addr() as u32;
        }
        k
    }

    fn fill_count(&mut self, port: usize) -> u32 {
        let size = self.ring_size;
        size.saturating_sub(self.ports[port].fq.nb_free(size))
    }

    unsafe fn fill_produce(&mut self, port: usize, chunks: &[u32]) -> usize {
        let n = chunks.len().min(self.descs.len());
        for (d, &a) in self.descs.iter_mut().zip(&chunks[..n]) {
            *d = FrameDesc::from_parts(a as usize, 0);
        }
        // SAFETY: our caller's contract: distinct chunks of `self.umem`,
        // owned and on no other ring (no TX race, which `produce` warns
        // of); the fill ring lends them to the kernel for reception.
        unsafe { self.ports[port].fq.produce(&self.descs[..n]) }
    }

    unsafe fn tx_produce(&mut self, port: usize, descs: &[Desc]) -> usize {
        let n = descs.len().min(self.descs.len());
        for (d, s) in self.descs.iter_mut().zip(&descs[..n]) {
            *d = FrameDesc::from_parts(s.addr as usize, s.len as usize);
        }
        // SAFETY: our caller's contract: distinct chunks of `self.umem`
        // (the UMEM this TX ring is tied to), owned and on no fill ring
        // (the data race `produce` warns of), each packet inside its
        // chunk. Ownership passes to the kernel until completion.
        unsafe { self.ports[port].tx.produce(&self.descs[..n]) }
    }

    fn fill_needs_wakeup(&self, port: usize) -> bool {
        self.ports[port].fq.needs_wakeup()
    }

    fn wake_fill(&mut self, port: usize) {
        let p = &mut self.ports[port];
        let _ = p.fq.wakeup(p.rx.fd_mut(), 0);
    }

    fn tx_needs_wakeup(&self, port: usize) -> bool {
        self.ports[port].tx.needs_wakeup()
    }

    fn wake_tx(&mut self, port: usize) {
        let _ = self.ports[port].tx.wakeup();
    }

    unsafe fn with_chunks(&mut self, addrs: &[u32], f: &mut dyn FnMut(&mut [&mut [u8]])) {
        let n = addrs.len().min(MAX_BATCH);
        let chunk = self.chunk as usize;
        let mut descs = [FrameDesc::default(); MAX_BATCH];
        let umem = &self.umem;
        let mut data: SmallVec<[Option<xsk_rs::umem::frame::DataMut<'_>>; MAX_BATCH]> = descs[..n]
            .iter_mut()
            .zip(addrs)
            .map(|(d, &a)| {
                if a == u32::MAX {
                    return None;
                }
                debug_assert!((a as usize).is_multiple_of(chunk) && a < self.chunks * self.chunk);
                *d = FrameDesc::from_parts(a as usize, chunk);
                // SAFETY: our caller's contract: a distinct chunk of this
                // UMEM it owns (on no ring, so the kernel is not writing
                // it), so the mutable views never alias; the descriptor
                // covers exactly that chunk.
                Some(unsafe { umem.data_mut(d) })
            })
            .collect();
        let mut views: SmallVec<[&mut [u8]; MAX_BATCH]> = data
            .iter_mut()
            .map(|d| match d {
                Some(d) => d.contents_mut(),
                None => <&mut [u8]>::default(),
            })
            .collect();
        f(&mut views);
    }

    fn poll(&mut self, timeout_ms: i32) {
        let mut fds: SmallVec<[libc::pollfd; 8]> = self
            .ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.rx.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for the duration of the
        // call and its length is passed with it.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }

    /// With kernel busy polling: one non-blocking `recvfrom` per port, which
    /// runs the port's NAPI (up to the budget) in this call on this core
    /// (`xsk_recvmsg` -> `sk_busy_loop`) where the socket has a NAPI
    /// instance ([`napi_id`]; veth gives none, and then the call does
    /// nothing but return), as DPDK's net_af_xdp does with its
    /// `busy_budget`. Not `poll()`: it busy polls only with the global
    /// `net.core.busy_poll` sysctl, and in copy mode it runs every socket's
    /// transmit path (`xsk_poll` -> `xsk_generic_xmit`) even with nothing
    /// to send. Without busy polling, a zero-timeout `poll()` as before.
    fn busy_poll(&mut self) {
        if !self.busy_polling {
            self.poll(0);
            return;
        }
        for p in &self.ports {
            let fd = p.rx.fd().as_raw_fd();
            // SAFETY: a zero-length receive into a null buffer with null
            // address arguments: the kernel copies nothing out (len 0, no
            // address asked for) and MSG_DONTWAIT keeps it from blocking.
            // `fd` is this port's socket, open for as long as `self`. The
            // result is ignored: received frames land on the RX ring, read
            // by the next pass (EAGAIN only says none was ready).
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
    }

    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        let s = self.ports.get(port)?.rx.fd().xdp_statistics().ok()?;
        Some(KernelStats {
            rx_ring_full: s.rx_ring_full(),
            rx_fill_empty: s.rx_fill_ring_empty_descs(),
            rx_dropped: s.rx_dropped(),
            invalid_descs: s.rx_invalid_descs() + s.tx_invalid_descs(),
        })
    }
}

/// The receive queues the kernel reports for `iface`
/// (/sys/class/net/IFACE/queues/rx-N), if it can be read.
pub fn rx_queues(iface: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{iface}/queues")).ok()?;
    let n = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// Why binding `queue` of `iface` failed, when the reason is that it has
/// only `have` queues (the kernel says just "Invalid argument").
fn missing_queue(iface: &str, queue: u32, have: Option<u32>) -> String {
    match have {
        Some(n) if queue >= n => format!(
            " ({iface} has {n} receive queue{}, so --queues can be at most {n}; more need ethtool -L {iface} combined N)",
            if n == 1 { "" } else { "s" }
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod queue_tests {
    #[test]
    fn a_queue_beyond_the_interfaces_is_named() {
        let m = super::missing_queue("dpC", 1, Some(1));
        assert_eq!(m, " (dpC has 1 receive queue, so --queues can be at most 1; more need ethtool -L dpC combined N)");
        assert!(super::missing_queue("dpC", 3, Some(4)).is_empty());
        assert!(super::missing_queue("dpC", 3, None).is_empty());
        // Every interface has at least one queue; lo is everywhere.
        assert!(super::rx_queues("lo").is_some_and(|n| n >= 1));
    }
}
