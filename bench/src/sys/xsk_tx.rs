//! The generator's AF_XDP socket: a UMEM of its own, one socket, and only
//! its TX and completion rings in use (xsk-rs 0.11, as the dataplane's
//! `XskIo`, which has no API to transmit frames it did not receive).
//!
//! Frames are written straight into UMEM chunks: each chunk remembers which
//! template (flow, size) it last held, so a recycled chunk usually needs only
//! its 14-byte stamp rewritten. A batch is posted with one `produce` and, in
//! copy mode, one `sendto` wake-up (the kernel's generic transmit takes up
//! to 32 frames per call, so the caller kicks again while frames are in
//! flight). No allocation, no per-packet system call.

use anyhow::{Context, Result};
use std::os::fd::AsRawFd;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Largest batch [`XskTx::send`] posts at once.
pub const MAX_TX_BATCH: usize = 64;

/// A transmit-only AF_XDP socket with its UMEM.
pub struct XskTx {
    // Each queue keeps its socket and the socket its `Umem` handle, so the
    // UMEM outlives the rings whatever the field order.
    tx: TxQueue,
    _rx: RxQueue,
    _fq: FillQueue,
    cq: CompQueue,
    umem: Umem,
    free: Vec<FrameDesc>,
    cqbuf: Vec<FrameDesc>,
    batch: Vec<FrameDesc>,
    /// Template id each chunk holds (u32::MAX: none).
    held: Vec<u32>,
    frame_size: usize,
    in_flight: usize,
    /// Frames completed by the kernel since creation.
    pub completed: u64,
    pub zero_copy: bool,
}

impl std::fmt::Debug for XskTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskTx")
            .field("free", &self.free.len())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl XskTx {
    /// Binds a socket to `iface` queue 0 with `frames` UMEM chunks of 2 KiB.
    pub fn new(iface: &str, frames: u32, ring: u32, copy: bool) -> Result<XskTx> {
        let frame_size = 2048u32;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(frame_size).context("frame size")?)
            .fill_queue_size(QueueSize::new(ring).context("ring size")?)
            .comp_queue_size(QueueSize::new(ring).context("ring size")?)
            .frame_headroom(0)
            .build()
            .context("UMEM config")?;
        let count = frames.try_into().context("frame count must be > 0")?;
        let (umem, descs) = Umem::new(umem_cfg, count, false)
            .context("creating the generator's UMEM (is RLIMIT_MEMLOCK high enough?)")?;
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        if copy {
            bind |= BindFlags::XDP_COPY;
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(QueueSize::new(ring).context("ring size")?)
            .tx_queue_size(QueueSize::new(ring).context("ring size")?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let ifname: Interface = iface
            .parse()
            .with_context(|| format!("interface name {iface:?}"))?;
        // SAFETY: `Socket::new`'s one precondition (xsk-rs docs): when the
        // UMEM is shared and (interface, queue) is already bound,
        // XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD must be set. This is the first
        // and only socket of a UMEM created just above, so it is not shared;
        // `sock_cfg` sets the flag all the same. The UMEM's memory needs no
        // argument: the socket keeps its own clone of the `Umem` handle and
        // every queue keeps the socket, whatever order XskTx's fields drop in.
        let (tx, rx, rings) = unsafe { Socket::new(sock_cfg, &umem, &ifname, 0) }
            .with_context(|| format!("AF_XDP socket on {iface} queue 0 (does it exist, is it up, is another AF_XDP socket bound to it?)"))?;
        let (fq, cq) = rings.context("no fill/completion rings for the generator's socket")?;
        let zero_copy = dataplane::sys::xsk::sys_zero_copy(tx.fd().as_raw_fd());
        let n = descs.len();
        Ok(XskTx {
            tx,
            _rx: rx,
            _fq: fq,
            cq,
            umem,
            free: descs,
            cqbuf: vec![FrameDesc::default(); ring as usize],
            batch: Vec::with_capacity(MAX_TX_BATCH),
            held: vec![u32::MAX; n],
            frame_size: frame_size as usize,
            in_flight: 0,
            completed: 0,
            zero_copy,
        })
    }

    /// Forgets which template each chunk holds (call when the templates change).
    pub fn forget_templates(&mut self) {
        self.held.fill(u32::MAX);
    }

    /// Frames posted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes completed frames back; returns how many.
    pub fn reclaim(&mut self) -> usize {
        // SAFETY: `cqbuf` only ever holds descriptors of `self.umem`, the
        // UMEM this ring is tied to (`consume`'s precondition); the frames
        // returned are ones the kernel has finished transmitting: ours again.
        let n = unsafe { self.cq.consume(&mut self.cqbuf) };
        self.free.extend_from_slice(&self.cqbuf[..n]);
        self.in_flight -= n.min(self.in_flight);
        self.completed += n as u64;
        n
    }

    /// Posts up to `n` frames. The `i`-th is `templates[pick(i)]` (copied
    /// only if its chunk holds another template), then `stamp(i, frame)`
    /// writes the per-frame fields. Returns how many frames went onto the
    /// TX ring.
    #[inline]
    pub fn send(
        &mut self,
        n: usize,
        templates: &[Vec<u8>],
        mut pick: impl FnMut(usize) -> usize,
        mut stamp: impl FnMut(usize, &mut [u8]),
    ) -> usize {
        let n = n.min(MAX_TX_BATCH).min(self.free.len());
        if n == 0 {
            return 0;
        }
        self.batch.clear();
        for i in 0..n {
            let mut d = self.free.pop().expect("counted above");
            let chunk = d.addr() / self.frame_size;
            let id = pick(i);
            let bytes = &templates[id][..];
            let id = id as u32;
            // SAFETY: `d` came from our free list: a chunk of this UMEM that
            // neither the kernel (not on any ring) nor another view holds.
            let mut data = unsafe { self.umem.data_mut(&mut d) };
            {
                let mut c = data.cursor();
                c.set_pos(bytes.len());
            }
            let buf = data.contents_mut();
            if self.held[chunk] != id {
                buf.copy_from_slice(bytes);
                self.held[chunk] = id;
            }
            stamp(i, buf);
            self.batch.push(d);
        }
        // SAFETY: every descriptor names a distinct chunk of `self.umem`
        // (the UMEM this TX ring is tied to) taken from our free list and
        // written above; the fill ring is never used, so no frame is on both
        // (the race `produce` warns of). Ownership passes to the kernel until
        // the completion ring hands it back.
        let k = unsafe { self.tx.produce(&self.batch) };
        self.in_flight += k;
        // What the ring would not take goes back (its template stays valid).
        self.free.extend_from_slice(&self.batch[k..]);
        self.kick();
        k
    }

    /// Wakes the kernel to transmit (copy mode: sendto does the work).
    #[inline]
    pub fn kick(&mut self) {
        if self.in_flight > 0 && self.tx.needs_wakeup() {
            let _ = self.tx.wakeup();
        }
    }
}
