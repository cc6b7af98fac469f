//! AF_XDP rings for one worker (xsk-rs): one UMEM shared by one socket per
//! port, so a frame received on one port is transmitted on another by
//! handing its descriptor over, without a copy (the AF_XDP-forwarding model
//! of xdp-project/bpf-examples: one fill/completion ring pair per (netdev,
//! queue), RX/TX rings per socket).
//!
//! Labels are pushed and popped by moving the frame's start inside its UMEM
//! chunk (`Umem::adjust_head`, our xsk-rs patch): the pipeline sees the whole
//! chunk with the packet at offset `headroom`, and the TX descriptor starts
//! wherever the pipeline left the frame.
//!
//! Sockets are created with XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD: the
//! dataplane loads its own XDP program (sys::xdp) and fills its XSKMAP, so
//! libxdp's dispatcher and bpffs are not needed (also inside `ip netns exec`).

use crate::worker::{BatchIo, Io};
use orbitmesh_core::pipeline::{Frame, Verdict, MAX_BATCH};
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
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 8192,
            frame_size: CHUNK_SIZE,
            ring_size: 2048,
            mode: XdpMode::Auto,
            busy_poll_budget: None,
        }
    }
}

struct Port {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    /// Frames handed to the TX ring and not yet completed.
    in_flight: usize,
}

/// One worker's UMEM and sockets.
pub struct XskIo {
    umem: Umem,
    ports: Vec<Port>,
    free: Vec<FrameDesc>,
    frame_size: usize,
    ring_size: u32,
    /// Frames each port's fill ring holds at most: a fair share of the
    /// UMEM, so with many ports (a ground station sees dozens of
    /// satellites) the first ports cannot take every frame.
    fill_target: u32,
    /// Whether the kernel bound the sockets in zero-copy mode.
    pub zero_copy: bool,
    rxbuf: Vec<FrameDesc>,
    cqbuf: Vec<FrameDesc>,
    txq: Vec<SmallVec<[FrameDesc; MAX_BATCH]>>,
    /// Emulation delay line: per port, the delay and the frames held with
    /// the time they may leave (FIFO; capacity reserved when set).
    delay_ns: Vec<u64>,
    held: Vec<std::collections::VecDeque<(FrameDesc, u64)>>,
    /// Some port was ever given a delay: only then does a batch read the
    /// clock or look at the held queues.
    delay_line: bool,
}

impl std::fmt::Debug for XskIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskIo")
            .field("ports", &self.ports.len())
            .field("free", &self.free.len())
            .field("zero_copy", &self.zero_copy)
            .finish()
    }
}

impl XskIo {
    /// Creates the UMEM and one socket per interface on `queue`.
    pub fn new(ifaces: &[String], queue: u32, cfg: XskConfig) -> anyhow::Result<XskIo> {
        use anyhow::Context;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(cfg.frame_size).context("frame size")?)
            .fill_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .comp_queue_size(QueueSize::new(cfg.ring_size).context("ring size")?)
            .frame_headroom(0)
            .build()
            .context("UMEM config")?;
        let count = cfg.frames.try_into().context("frame count must be > 0")?;
        let (umem, descs) = Umem::new(umem_cfg, count, false)
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
            // SAFETY: `Socket::new`'s one precondition (xsk-rs docs): when
            // the UMEM is shared and (interface, queue) is already bound,
            // XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD must be set, or dropping
            // the sockets may double-free libxdp's program. Every socket
            // here shares `umem` and `sock_cfg` sets that flag
            // unconditionally, so it holds whether or not the pair is bound
            // already (a repeated interface is refused just below). The
            // UMEM's memory needs no argument from us: each socket keeps its
            // own clone of the `Umem` handle and every queue returned keeps
            // its socket, so the mapping lives as long as any queue
            // does, whatever order XskIo's fields drop in.
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
            ports.push(Port {
                tx,
                rx,
                fq,
                cq,
                in_flight: 0,
            });
        }
        if let Some(budget) = cfg.busy_poll_budget {
            for p in &ports {
                let fd = p.rx.fd().as_raw_fd();
                for (opt, val) in [
                    (libc::SO_PREFER_BUSY_POLL, 1),
                    (libc::SO_BUSY_POLL, 20),
                    (libc::SO_BUSY_POLL_BUDGET, budget as i32),
                ] {
                    if let Err(e) = set_sock_opt(fd, opt, val) {
                        tracing::warn!(option = opt, error = %e, "busy polling option refused; interrupts drive reception");
                    }
                }
            }
        }
        let zero_copy = ports
            .first()
            .map(|p| sys_zero_copy(p.rx.fd().as_raw_fd()))
            .unwrap_or(false);
        let n = ports.len();
        Ok(XskIo {
            umem,
            ports,
            free: descs,
            frame_size: cfg.frame_size as usize,
            ring_size: cfg.ring_size,
            // Half the UMEM for the fill rings, half for frames in flight.
            fill_target: cfg.ring_size.min(cfg.frames / (2 * n.max(1) as u32)).max(1),
            zero_copy,
            rxbuf: vec![FrameDesc::default(); MAX_BATCH],
            cqbuf: vec![FrameDesc::default(); MAX_BATCH * 4],
            txq: (0..n).map(|_| SmallVec::new()).collect(),
            delay_ns: vec![0; n],
            held: (0..n).map(|_| Default::default()).collect(),
            delay_line: false,
        })
    }

    /// The socket fd of a port, for the XSKMAP and for poll().
    pub fn fd(&self, port: usize) -> i32 {
        self.ports[port].rx.fd().as_raw_fd()
    }

    fn reclaim(&mut self, p: usize) -> usize {
        // SAFETY: `consume`'s precondition is that the descriptors belong to
        // the UMEM the ring is tied to: every ring here was created from
        // `self.umem`, the only UMEM of this XskIo. The frames handed back
        // are ones the kernel has finished transmitting: ours from now on.
        let n = unsafe { self.ports[p].cq.consume(&mut self.cqbuf) };
        self.free.extend_from_slice(&self.cqbuf[..n]);
        self.ports[p].in_flight -= n.min(self.ports[p].in_flight);
        n
    }

    fn send(&mut self, q: usize) -> usize {
        // The queue stays in place (moving a 64-descriptor SmallVec out and
        // back cost two 2 KB copies per call).
        let total = self.txq[q].len();
        let mut sent = 0;
        for _ in 0..4 {
            let port = &mut self.ports[q];
            // SAFETY: every descriptor names a frame of `self.umem` (the UMEM
            // this TX ring is tied to) that we own: received and on no ring,
            // so not on a fill ring at the same time (the data race
            // `produce` warns of); `adjust_head` moved it only within its
            // chunk. Ownership passes to the kernel until completion.
            let k = unsafe { port.tx.produce(&self.txq[q][sent..]) };
            sent += k;
            port.in_flight += k;
            if port.tx.needs_wakeup() {
                let _ = port.tx.wakeup();
            }
            if sent == total {
                break;
            }
            self.reclaim(q);
        }
        // What the TX ring would not take goes back to the free list.
        self.free.extend_from_slice(&self.txq[q][sent..]);
        self.txq[q].clear();
        sent
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

impl Io for XskIo {
    fn ports(&self) -> usize {
        self.ports.len()
    }

    fn rx_process_tx(
        &mut self,
        port: usize,
        max: usize,
        tx: &mut [u64],
        run: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> BatchIo {
        let max = max.min(MAX_BATCH);
        // SAFETY: the RX ring is tied to `self.umem`, the only UMEM whose
        // descriptors `rxbuf` ever holds (`consume`'s precondition); the
        // frames it hands us are ours until they go to a TX or fill ring.
        let n = unsafe { self.ports[port].rx.consume(&mut self.rxbuf[..max]) };
        if n == 0 {
            return BatchIo::default();
        }
        let fs = self.frame_size;
        let mut head = [0usize; MAX_BATCH];
        let mut bounds = [(0usize, 0usize); MAX_BATCH];
        let mut verdicts = [Verdict::Drop(orbitmesh_core::stats::DropReason::Malformed); MAX_BATCH];
        // Widen each descriptor to the start of its chunk so the pipeline
        // sees the headroom (aligned UMEM: chunks start at multiples of fs).
        for (d, h) in self.rxbuf[..n].iter_mut().zip(head.iter_mut()) {
            *h = d.addr() % fs;
            let ok = self.umem.adjust_head(d, -(*h as isize));
            debug_assert!(ok, "a chunk's start is inside the chunk");
        }
        {
            let umem = &self.umem;
            let mut data: SmallVec<[xsk_rs::umem::frame::DataMut<'_>; MAX_BATCH]> = self.rxbuf[..n]
                .iter_mut()
                // SAFETY: each descriptor names a distinct frame we own (just
                // consumed from the RX ring), so the mutable views never alias
                // each other or memory the kernel is writing.
                .map(|d| unsafe { umem.data_mut(d) })
                .collect();
            let mut frames: SmallVec<[Frame<'_>; MAX_BATCH]> = data
                .iter_mut()
                .zip(head.iter())
                .map(|(dm, &h)| {
                    // Frame i must stay descriptor i: never skip one.
                    let b = dm.contents_mut();
                    let h = h.min(b.len());
                    let len = b.len() - h;
                    Frame::new(b, h, len).expect("h + len is exactly the buffer")
                })
                .collect();
            let k = frames.len();
            run(&mut frames, &mut verdicts[..k]);
            for (b, f) in bounds.iter_mut().zip(frames.iter()) {
                *b = (f.start(), f.len());
            }
        }
        let mut out = BatchIo {
            rx: n,
            ..Default::default()
        };
        // Only with an emulated delay on some port: one clock read per batch.
        let now = if self.delay_line {
            orbitmesh_core::time::now_ns()
        } else {
            0
        };
        for i in 0..n {
            let mut d = self.rxbuf[i];
            match verdicts[i] {
                Verdict::Forward(q) if (q as usize) < self.ports.len() => {
                    let ok = self.umem.adjust_head(&mut d, bounds[i].0 as isize);
                    debug_assert!(ok && d.lengths().data() == bounds[i].1);
                    let q = q as usize;
                    if self.delay_ns[q] == 0 {
                        self.txq[q].push(d);
                    } else if self.held[q].len() < self.held[q].capacity() {
                        // Counted as sent now: it left the pipeline for the link.
                        self.held[q].push_back((d, now + self.delay_ns[q]));
                        tx[q] += 1;
                        out.forwarded += 1;
                    } else {
                        let _ = self.umem.adjust_head(&mut d, -(bounds[i].0 as isize));
                        let _ = self.umem.adjust_head(&mut d, head[i] as isize);
                        self.free.push(d);
                        out.tx_ring_full += 1;
                    }
                }
                _ => {
                    // Dropped or punted: back to the free list as a whole chunk.
                    let _ = self.umem.adjust_head(&mut d, head[i] as isize);
                    self.free.push(d);
                }
            }
        }
        for (q, count) in tx.iter_mut().enumerate().take(self.ports.len()) {
            let want = self.txq[q].len();
            if want > 0 {
                let sent = self.send(q);
                *count += sent as u64;
                out.forwarded += sent;
                out.tx_ring_full += want - sent;
            }
        }
        out
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

    fn set_delays(&mut self, delays_ns: &[u64]) {
        for (q, &d) in delays_ns.iter().enumerate().take(self.ports.len()) {
            self.delay_ns[q] = d;
            if d > 0 && self.held[q].capacity() == 0 {
                // Reserved once, off the per-packet path.
                self.held[q].reserve_exact(self.ring_size as usize);
                self.delay_line = true;
            }
        }
    }

    fn service(&mut self) -> u64 {
        // Release held frames whose time has come (delay line).
        if self.delay_line && self.held.iter().any(|h| !h.is_empty()) {
            let now = orbitmesh_core::time::now_ns();
            for q in 0..self.ports.len() {
                let mut due = false;
                while let Some(&(d, at)) = self.held[q].front() {
                    if at > now || self.txq[q].len() == MAX_BATCH {
                        break;
                    }
                    self.held[q].pop_front();
                    self.txq[q].push(d);
                    due = true;
                }
                if due {
                    self.send(q);
                }
            }
        }
        let mut empty = 0;
        for p in 0..self.ports.len() {
            self.reclaim(p);
            let port = &mut self.ports[p];
            let filled = self
                .ring_size
                .saturating_sub(port.fq.nb_free(self.ring_size));
            let want = self
                .fill_target
                .saturating_sub(filled)
                .min(self.free.len() as u32) as usize;
            if want == 0 && self.free.is_empty() {
                empty += 1;
                continue;
            }
            if want >= MAX_BATCH.min(self.free.len()).max(1) {
                let from = self.free.len() - want;
                // SAFETY: frames on the free list belong to `self.umem`, the
                // UMEM this fill ring is tied to, and are on no other ring
                // (no TX race, as `produce` requires); the fill ring lends
                // them to the kernel for reception.
                let k = unsafe { port.fq.produce(&self.free[from..]) };
                self.free.truncate(self.free.len() - k);
            }
            if port.fq.needs_wakeup() {
                let fd = port.rx.fd_mut();
                let _ = port.fq.wakeup(fd, 0);
            }
            // Copy mode transmits in sendto(): kick only while frames wait.
            if port.in_flight > 0 && port.tx.needs_wakeup() {
                let _ = port.tx.wakeup();
            }
        }
        empty
    }

    fn kick(&mut self) {
        // A zero-timeout poll() runs the driver's NAPI when busy polling is on.
        self.wait(0);
    }

    fn wait(&mut self, timeout_ms: i32) {
        // Frames still in flight need their completions reaped and, in copy
        // mode, another kick soon: sleep 1 ms at most then.
        let timeout_ms = if self.ports.iter().any(|p| p.in_flight > 0) {
            timeout_ms.min(1)
        } else {
            timeout_ms
        };
        // Wake for the first held frame that falls due (at least 1 ms: poll()'s unit).
        let next_due = self
            .held
            .iter()
            .filter_map(|h| h.front().map(|f| f.1))
            .min();
        let timeout_ms = match next_due {
            Some(at) => {
                let ms = at
                    .saturating_sub(orbitmesh_core::time::now_ns())
                    .div_ceil(1_000_000);
                timeout_ms.min(ms.clamp(1, i32::MAX as u64) as i32)
            }
            None => timeout_ms,
        };
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
