//! The AF_XDP ring mechanics every user of a UMEM needs, over any set of
//! rings that behave like the kernel's ([`Rings`]): the pool of free
//! chunks, receive (a descriptor widened to its chunk, so labels can be
//! pushed into the kernel's headroom), transmit with retry when the TX
//! ring is full, the completion ring back into the pool, and each port's
//! fair share of the fill rings. [`RingIo`] implements
//! [`crate::ring::PacketIo`] on top; it knows nothing of verdicts.
//!
//! Two ring sets exist: [`crate::sys::xsk::XskRings`] (the kernel's, via
//! xsk-rs) and [`MemRings`], an in-memory fake that behaves like the
//! kernel in copy mode (receives into fill-ring frames, transmits on
//! wake-up), against which this module's logic is unit-tested without root.
//! The model is the kernel's AF_XDP documentation
//! (Documentation/networking/af_xdp.rst) and xdp-project's AF_XDP-forwarding
//! example: one fill/completion pair per (netdev, queue), one UMEM.

use crate::ring::{Batch, Buf, DataFn, PacketIo, MAX_BATCH};
use orbitmesh_core::stats::KernelStats;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, Ordering};

/// A descriptor as the RX and TX rings carry it: `len` bytes at UMEM offset `addr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u32,
    pub len: u32,
}

/// The rings of a set of ports sharing one UMEM: mechanics only.
///
/// # Safety
///
/// [`RingIo`] hands out `&mut` views of the chunks the rings give back, so
/// an implementation must keep the kernel's promises: `rx_consume` and
/// `comp_consume` return only chunks of this UMEM that were on its fill
/// (resp. TX) ring and will not be touched again by whatever is behind the
/// rings until they are produced onto a ring once more; `with_chunks`
/// gives exactly the chunks asked for, each `chunk_size()` bytes.
pub unsafe trait Rings {
    fn ports(&self) -> usize;
    /// Chunks in the UMEM; chunk `i` starts at offset `i * chunk_size()`.
    fn chunks(&self) -> u32;
    fn chunk_size(&self) -> u32;
    /// Slots in each ring.
    fn ring_size(&self) -> u32;
    /// Where in its chunk a received packet starts (the kernel's headroom).
    fn rx_headroom(&self) -> u32;
    /// Received frames, at most `out.len()`.
    fn rx_consume(&mut self, port: usize, out: &mut [Desc]) -> usize;
    /// Addresses of frames the kernel finished sending, at most `out.len()`.
    fn comp_consume(&mut self, port: usize, out: &mut [u32]) -> usize;
    /// Frames on `port`'s fill ring now.
    fn fill_count(&mut self, port: usize) -> u32;
    /// Lends chunks to the kernel to receive into; returns how many the ring took.
    ///
    /// # Safety
    ///
    /// Each address is the start of a distinct chunk of this UMEM that the
    /// caller owns: on no ring and not borrowed.
    unsafe fn fill_produce(&mut self, port: usize, chunks: &[u32]) -> usize;
    /// Hands frames to the kernel to send; returns how many the ring took.
    ///
    /// # Safety
    ///
    /// As for `fill_produce`, and each `addr + len` stays inside its chunk.
    unsafe fn tx_produce(&mut self, port: usize, descs: &[Desc]) -> usize;
    fn fill_needs_wakeup(&self, port: usize) -> bool;
    fn wake_fill(&mut self, port: usize);
    fn tx_needs_wakeup(&self, port: usize) -> bool;
    fn wake_tx(&mut self, port: usize);
    /// Calls `f` with the chunks at `addrs` (an address of `u32::MAX`
    /// gives an empty slice).
    ///
    /// # Safety
    ///
    /// Each address other than `u32::MAX` is the start of a distinct chunk
    /// of this UMEM that the caller owns: on no ring and not borrowed.
    unsafe fn with_chunks(&mut self, addrs: &[u32], f: &mut dyn FnMut(&mut [&mut [u8]]));
    /// Blocks until some port has received frames or `timeout_ms` passes.
    fn poll(&mut self, timeout_ms: i32);
    /// Busy mode, idle pass: lets the kernel run the ports' receive in this
    /// call (a zero-timeout [`Rings::poll`] unless the rings know better).
    fn busy_poll(&mut self) {
        self.poll(0)
    }
    fn kernel_stats(&self, _port: usize) -> Option<KernelStats> {
        None
    }
}

/// Tells pools apart, so a frame is never returned to a UMEM it is not from.
static NEXT_POOL: AtomicU16 = AtomicU16::new(0);

/// [`PacketIo`] over a set of [`Rings`]: the free pool and the ring logic.
pub struct RingIo<R: Rings> {
    rings: R,
    pool: u16,
    /// Chunks owned and idle (chunk start offsets); capacity for all of them.
    free: Vec<u32>,
    /// Per port: frames on the TX ring not yet completed.
    in_flight: Vec<usize>,
    /// Frames each port's fill ring holds at most: a fair share of the
    /// UMEM, so with many ports (a ground station sees dozens of
    /// satellites) the first ports cannot take every frame. 0: transmit only.
    fill_target: u32,
    chunk: u32,
    rxbuf: [Desc; MAX_BATCH],
    cqbuf: Vec<u32>,
    /// Frames the kernel reported sent since creation.
    completed: u64,
}

impl<R: Rings> std::fmt::Debug for RingIo<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingIo")
            .field("ports", &self.rings.ports())
            .field("free", &self.free.len())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl<R: Rings> RingIo<R> {
    /// Owns every chunk of `rings`' UMEM (all free: none may be on a ring
    /// yet). `receive`: keep the fill rings topped up (false for a
    /// transmit-only socket such as the bench generator's).
    pub fn with_rings(rings: R, receive: bool) -> RingIo<R> {
        let (n, chunks, chunk) = (rings.ports(), rings.chunks(), rings.chunk_size());
        let fill_target = if receive {
            // Half the UMEM for the fill rings, half for frames in flight.
            rings.ring_size().min(chunks / (2 * n.max(1) as u32)).max(1)
        } else {
            0
        };
        RingIo {
            pool: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
            free: (0..chunks).map(|i| i * chunk).collect(),
            in_flight: vec![0; n],
            fill_target,
            chunk,
            rxbuf: [Desc::default(); MAX_BATCH],
            cqbuf: vec![0; MAX_BATCH * 4],
            completed: 0,
            rings,
        }
    }

    pub fn rings(&self) -> &R {
        &self.rings
    }

    pub fn rings_mut(&mut self) -> &mut R {
        &mut self.rings
    }

    /// Frames the kernel reported sent since creation (all ports).
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Frames on TX rings, not yet completed (all ports).
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().sum()
    }

    /// Free chunks in the pool.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The fill ring share of each port (0: transmit only).
    pub fn fill_target(&self) -> u32 {
        self.fill_target
    }

    fn reclaim(&mut self, p: usize) -> usize {
        let n = self.rings.comp_consume(p, &mut self.cqbuf);
        let c = self.chunk;
        self.free.extend(self.cqbuf[..n].iter().map(|a| a - a % c));
        self.in_flight[p] -= n.min(self.in_flight[p]);
        self.completed += n as u64;
        n
    }

    fn refill(&mut self, p: usize, fill_short: &mut [u64]) {
        let filled = self.rings.fill_count(p);
        let need = self.fill_target.saturating_sub(filled);
        if need > 0 && self.free.is_empty() {
            if let Some(s) = fill_short.get_mut(p) {
                *s += 1;
            }
            return;
        }
        let want = need.min(self.free.len() as u32) as usize;
        // In batches: a lone frame per call would cost a wake-up each. (A
        // share below a batch is topped up whole: with dozens of ports it
        // is, and a threshold above it would never be reached.)
        let threshold = MAX_BATCH
            .min(self.free.len())
            .min(self.fill_target as usize);
        if want > 0 && want >= threshold {
            let from = self.free.len() - want;
            // SAFETY: chunks on the free list are distinct chunk starts of
            // this UMEM (created so, and every chunk returns to the list
            // at most once: from the completion ring, or from a `Buf`,
            // which is unique) that no ring and no view holds.
            let k = unsafe { self.rings.fill_produce(p, &self.free[from..]) };
            self.free.truncate(self.free.len() - k);
        }
        if self.rings.fill_needs_wakeup(p) {
            self.rings.wake_fill(p);
        }
    }

    fn owns(&self, b: &Buf) -> bool {
        b.pool() == self.pool && b.capacity() == self.chunk as usize
    }
}

impl<R: Rings> PacketIo for RingIo<R> {
    fn ports(&self) -> usize {
        self.rings.ports()
    }

    fn rx(&mut self, port: usize, batch: &mut Batch) -> usize {
        let max = batch.room();
        let n = self.rings.rx_consume(port, &mut self.rxbuf[..max]);
        let c = self.chunk;
        let mut got = 0;
        for d in &self.rxbuf[..n] {
            // Widen to the chunk: the packet sits after the kernel's
            // headroom, which is where pushed labels go.
            let (chunk, head) = (d.addr - d.addr % c, (d.addr % c) as usize);
            match Buf::new(self.pool, chunk, c as u16, head, d.len as usize) {
                Some(b) => {
                    let _ = batch.push(b);
                    got += 1;
                }
                // Longer than its chunk: the kernel never does this.
                None => self.free.push(chunk),
            }
        }
        got
    }

    fn tx(&mut self, port: usize, batch: &mut Batch) -> usize {
        let mut descs = [Desc::default(); MAX_BATCH];
        // Only our own frames, and only up to the first foreign one.
        let total = batch
            .bufs()
            .iter()
            .take_while(|b| self.owns(b))
            .zip(descs.iter_mut())
            .map(|(b, d)| {
                *d = Desc {
                    addr: b.addr() + b.head() as u32,
                    len: b.len() as u32,
                }
            })
            .count();
        let mut sent = 0;
        for _ in 0..4 {
            // SAFETY: each descriptor is a `Buf` of this pool (checked
            // above), so a distinct chunk of this UMEM the caller owned and
            // hands over now; `Buf` keeps `head + len` inside the chunk.
            let k = unsafe { self.rings.tx_produce(port, &descs[sent..total]) };
            sent += k;
            self.in_flight[port] += k;
            if self.rings.tx_needs_wakeup(port) {
                self.rings.wake_tx(port);
            }
            if sent == total {
                break;
            }
            // The TX ring is full: take back what the kernel has sent, retry.
            self.reclaim(port);
        }
        for i in 0..sent {
            let _ = batch.take(i);
        }
        batch.consume_front(sent);
        sent
    }

    fn alloc(&mut self, batch: &mut Batch, n: usize) -> usize {
        let n = n.min(batch.room()).min(self.free.len());
        let (c, head) = (self.chunk as u16, self.rings.rx_headroom() as usize);
        for _ in 0..n {
            let addr = self.free.pop().expect("counted above");
            let b = Buf::new(self.pool, addr, c, head, 0).expect("the headroom is inside a chunk");
            let _ = batch.push(b);
        }
        n
    }

    fn free(&mut self, batch: &mut Batch) {
        let pool = self.pool;
        for b in batch.drain() {
            // A foreign frame cannot come back here; it is forgotten.
            if b.pool() == pool {
                self.free.push(b.addr());
            }
        }
    }

    fn with_data(&mut self, batch: &mut Batch, f: &mut DataFn<'_>) {
        let mut addrs = [u32::MAX; MAX_BATCH];
        for (a, b) in addrs.iter_mut().zip(batch.bufs()) {
            if self.owns(b) {
                *a = b.addr();
            }
        }
        let n = batch.len();
        // SAFETY: every address but u32::MAX is that of a `Buf` of this
        // pool, so a distinct chunk of this UMEM the caller owns (not on a
        // ring) and, the batch being borrowed mutably here, not viewed
        // elsewhere.
        unsafe {
            self.rings
                .with_chunks(&addrs[..n], &mut |chunks| f(batch.bufs_mut(), chunks))
        };
    }

    fn reclaim_and_refill(&mut self, fill_short: &mut [u64]) {
        for p in 0..self.rings.ports() {
            self.reclaim(p);
            if self.fill_target > 0 {
                self.refill(p, fill_short);
            }
            // Copy mode transmits in sendto(): kick only while frames wait.
            if self.in_flight[p] > 0 && self.rings.tx_needs_wakeup(p) {
                self.rings.wake_tx(p);
            }
        }
    }

    fn wait(&mut self, timeout_ms: i32) {
        // Frames still in flight need their completions reaped and, in copy
        // mode, another kick soon: sleep 1 ms at most then.
        let timeout_ms = if self.in_flight.iter().any(|&n| n > 0) {
            timeout_ms.min(1)
        } else {
            timeout_ms
        };
        self.rings.poll(timeout_ms);
    }

    fn busy_poll(&mut self) {
        self.rings.busy_poll();
    }

    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        self.rings.kernel_stats(port)
    }
}

/// Rings in memory that behave like the kernel's in copy mode: a frame
/// that [`MemRings::arrive`]s on a port is written into the next chunk of
/// its fill ring (after [`MemRings::RX_HEADROOM`]) and appears on its RX
/// ring; a TX wake-up "sends" every frame on the TX ring (recorded in
/// [`MemRings::sent`]) and hands it to the completion ring.
#[derive(Debug)]
pub struct MemRings {
    mem: Vec<u8>,
    chunk: u32,
    ring: u32,
    /// TX ring slots (at most `ring`; smaller to make it fill up).
    tx_slots: usize,
    ports: Vec<MemPort>,
    /// What `kernel_stats` reports per port.
    pub kernel: Vec<Option<KernelStats>>,
}

#[derive(Debug, Default)]
struct MemPort {
    wire: VecDeque<Vec<u8>>,
    fill: VecDeque<u32>,
    rx: VecDeque<Desc>,
    tx: VecDeque<Desc>,
    comp: VecDeque<u32>,
    sent: Vec<Vec<u8>>,
    tx_wakeups: u64,
    /// The link sends nothing (a TX wake-up is counted and does nothing).
    stalled: bool,
}

impl MemRings {
    /// Where received packets start in their chunk (as XDP_PACKET_HEADROOM).
    pub const RX_HEADROOM: u32 = 256;

    /// `chunks` chunks of `chunk` bytes, rings of `ring` slots, `ports` ports.
    pub fn new(ports: usize, chunks: u32, chunk: u32, ring: u32) -> MemRings {
        MemRings {
            mem: vec![0; (chunks * chunk) as usize],
            chunk,
            ring,
            tx_slots: ring as usize,
            ports: (0..ports).map(|_| MemPort::default()).collect(),
            kernel: vec![None; ports],
        }
    }

    /// Makes the TX rings this small (to test a full ring).
    pub fn set_tx_slots(&mut self, slots: usize) {
        self.tx_slots = slots.min(self.ring as usize);
    }

    /// Stops (or restarts) transmission on `port`'s link.
    pub fn stall_tx(&mut self, port: usize, stalled: bool) {
        self.ports[port].stalled = stalled;
    }

    /// A frame arrives on `port`'s link: received as soon as its fill ring
    /// has a chunk and its RX ring room (lossless, unlike a NIC).
    pub fn arrive(&mut self, port: usize, frame: &[u8]) {
        assert!(frame.len() + Self::RX_HEADROOM as usize <= self.chunk as usize);
        self.ports[port].wire.push_back(frame.to_vec());
    }

    /// Frames waiting on `port`'s link, not yet received.
    pub fn on_wire(&self, port: usize) -> usize {
        self.ports[port].wire.len()
    }

    /// Frames sent on `port`, in order.
    pub fn sent(&self, port: usize) -> &[Vec<u8>] {
        &self.ports[port].sent
    }

    /// Frames on `port`'s TX ring, not yet sent.
    pub fn tx_pending(&self, port: usize) -> usize {
        self.ports[port].tx.len()
    }

    /// TX wake-ups on `port` (sendto() calls, in the kernel's terms).
    pub fn tx_wakeups(&self, port: usize) -> u64 {
        self.ports[port].tx_wakeups
    }

    /// Chunks on `port`'s fill ring.
    pub fn fill_len(&self, port: usize) -> usize {
        self.ports[port].fill.len()
    }

    fn receive(&mut self, port: usize) {
        let ring = self.ring as usize;
        let p = &mut self.ports[port];
        while p.rx.len() < ring && !p.wire.is_empty() {
            let Some(chunk) = p.fill.pop_front() else {
                break;
            };
            let f = p.wire.pop_front().expect("checked");
            let at = (chunk + Self::RX_HEADROOM) as usize;
            self.mem[at..at + f.len()].copy_from_slice(&f);
            p.rx.push_back(Desc {
                addr: at as u32,
                len: f.len() as u32,
            });
        }
    }
}

// SAFETY: this fake keeps the kernel's promises by construction: a chunk
// comes back from `rx_consume` only after it was produced onto the fill
// ring, from `comp_consume` only after it was produced onto the TX ring,
// and nothing else touches `mem` while a chunk is out; `with_chunks` hands
// out `chunks_mut` pieces of `chunk` bytes (safe code: overlapping
// requests would panic, not alias).
unsafe impl Rings for MemRings {
    fn ports(&self) -> usize {
        self.ports.len()
    }
    fn chunks(&self) -> u32 {
        self.mem.len() as u32 / self.chunk
    }
    fn chunk_size(&self) -> u32 {
        self.chunk
    }
    fn ring_size(&self) -> u32 {
        self.ring
    }
    fn rx_headroom(&self) -> u32 {
        Self::RX_HEADROOM
    }
    fn rx_consume(&mut self, port: usize, out: &mut [Desc]) -> usize {
        self.receive(port);
        let p = &mut self.ports[port];
        let n = out.len().min(p.rx.len());
        for (o, d) in out.iter_mut().zip(p.rx.drain(..n)) {
            *o = d;
        }
        n
    }
    fn comp_consume(&mut self, port: usize, out: &mut [u32]) -> usize {
        let p = &mut self.ports[port];
        let n = out.len().min(p.comp.len());
        for (o, a) in out.iter_mut().zip(p.comp.drain(..n)) {
            *o = a;
        }
        n
    }
    fn fill_count(&mut self, port: usize) -> u32 {
        self.ports[port].fill.len() as u32
    }
    unsafe fn fill_produce(&mut self, port: usize, chunks: &[u32]) -> usize {
        let p = &mut self.ports[port];
        let k = chunks.len().min(self.ring as usize - p.fill.len());
        p.fill.extend(&chunks[..k]);
        k
    }
    unsafe fn tx_produce(&mut self, port: usize, descs: &[Desc]) -> usize {
        let p = &mut self.ports[port];
        let k = descs.len().min(self.tx_slots.saturating_sub(p.tx.len()));
        p.tx.extend(&descs[..k]);
        k
    }
    fn fill_needs_wakeup(&self, _port: usize) -> bool {
        false
    }
    fn wake_fill(&mut self, _port: usize) {}
    fn tx_needs_wakeup(&self, port: usize) -> bool {
        !self.ports[port].tx.is_empty()
    }
    fn wake_tx(&mut self, port: usize) {
        let p = &mut self.ports[port];
        p.tx_wakeups += 1;
        if p.stalled {
            return;
        }
        let room = self.ring as usize - p.comp.len();
        let n = p.tx.len().min(room);
        for d in p.tx.drain(..n) {
            let (a, l) = (d.addr as usize, d.len as usize);
            p.sent.push(self.mem[a..a + l].to_vec());
            p.comp.push_back(d.addr);
        }
    }
    unsafe fn with_chunks(&mut self, addrs: &[u32], f: &mut dyn FnMut(&mut [&mut [u8]])) {
        let c = self.chunk;
        let mut all: Vec<Option<&mut [u8]>> = self.mem.chunks_mut(c as usize).map(Some).collect();
        let mut views: Vec<&mut [u8]> = addrs
            .iter()
            .map(|&a| {
                if a == u32::MAX {
                    return <&mut [u8]>::default();
                }
                assert_eq!(a % c, 0, "a chunk start");
                all[(a / c) as usize]
                    .take()
                    .expect("each chunk handed out once")
            })
            .collect();
        f(&mut views);
    }
    fn poll(&mut self, _timeout_ms: i32) {
        std::thread::yield_now();
    }
    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        self.kernel.get(port).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u8, len: usize) -> Vec<u8> {
        (0..len).map(|k| i.wrapping_add(k as u8)).collect()
    }

    /// Receives one batch on `port` (after a refill pass).
    fn rx(io: &mut RingIo<MemRings>, port: usize) -> Batch {
        let mut short = [0u64; 8];
        io.reclaim_and_refill(&mut short);
        let mut b = Batch::new();
        io.rx(port, &mut b);
        b
    }

    #[test]
    fn a_received_frame_has_the_kernels_headroom_for_pushed_labels() {
        let mut io = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        io.rings_mut().arrive(0, &frame(1, 60));
        let mut b = rx(&mut io, 0);
        assert_eq!(b.len(), 1);
        assert_eq!(b.bufs()[0].head(), MemRings::RX_HEADROOM as usize);
        assert_eq!(b.bufs()[0].len(), 60);
        // Push an 8-byte label stack in front, in place, as the pipeline does.
        io.with_data(&mut b, &mut |bufs, chunks| {
            assert_eq!(chunks[0].len(), 2048, "the whole chunk is visible");
            let (h, l) = (bufs[0].head(), bufs[0].len());
            assert_eq!(&chunks[0][h..h + l], &frame(1, 60)[..]);
            chunks[0][h - 8..h].copy_from_slice(&[0xaa; 8]);
            assert!(bufs[0].set_data(h - 8, l + 8));
        });
        assert_eq!(io.tx(1, &mut b), 1);
        assert!(b.is_empty());
        let sent = &io.rings().sent(1)[0];
        assert_eq!(sent.len(), 68);
        assert_eq!(&sent[..8], &[0xaa; 8]);
        assert_eq!(&sent[8..], &frame(1, 60)[..]);
    }

    #[test]
    fn a_full_tx_ring_is_retried_after_reclaiming_completions() {
        let mut io = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        io.rings_mut().set_tx_slots(8);
        for i in 0..20 {
            io.rings_mut().arrive(0, &frame(i, 64));
        }
        let mut b = rx(&mut io, 0);
        assert_eq!(b.len(), 20);
        // 8 slots: the first produce takes 8, the wake-up sends them, the
        // completions free the ring, and the retries take the rest.
        assert_eq!(io.tx(1, &mut b), 20);
        assert!(b.is_empty());
        let sent: Vec<u8> = io.rings().sent(1).iter().map(|f| f[0]).collect();
        assert_eq!(sent, (0..20).collect::<Vec<u8>>(), "in order");
        assert!(io.rings().tx_wakeups(1) >= 3);
    }

    #[test]
    fn what_the_tx_ring_does_not_take_stays_with_the_caller() {
        let mut io = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        io.rings_mut().set_tx_slots(8);
        io.rings_mut().stall_tx(1, true);
        for i in 0..20 {
            io.rings_mut().arrive(0, &frame(i, 64));
        }
        let mut b = rx(&mut io, 0);
        let free = io.free_frames();
        // The link sends nothing, so no completion frees the 8 slots.
        assert_eq!(io.tx(1, &mut b), 8);
        assert_eq!(b.len(), 12, "the rest is handed back, in order");
        io.with_data(&mut b, &mut |bufs, chunks| {
            let first: Vec<u8> = bufs
                .iter()
                .zip(chunks.iter())
                .map(|(b, c)| c[b.head()])
                .collect();
            assert_eq!(first, (8..20).collect::<Vec<u8>>());
        });
        io.free(&mut b);
        assert_eq!(io.free_frames(), free + 12);
        io.rings_mut().stall_tx(1, false);
        let mut short = [0u64; 2];
        io.reclaim_and_refill(&mut short);
        io.reclaim_and_refill(&mut short);
        assert_eq!(io.rings().sent(1).len(), 8);
        assert_eq!((io.completed(), io.in_flight()), (8, 0));
    }

    #[test]
    fn each_port_gets_its_share_of_the_fill_rings() {
        // 4 ports, 256 chunks: each fill ring holds at most 256 / (2 * 4) = 32.
        let mut io = RingIo::with_rings(MemRings::new(4, 256, 2048, 2048), true);
        assert_eq!(io.fill_target(), 32);
        let mut short = [0u64; 4];
        io.reclaim_and_refill(&mut short);
        for p in 0..4 {
            assert_eq!(io.rings().fill_len(p), 32, "port {p}");
        }
        assert_eq!(
            io.free_frames(),
            128,
            "half the UMEM stays for frames in flight"
        );
        assert_eq!(short, [0; 4]);
        // Hold every free frame: a port that then receives cannot refill.
        let mut held = [Batch::new(), Batch::new()];
        for h in &mut held {
            io.alloc(h, 64);
        }
        assert_eq!(io.free_frames(), 0);
        for i in 0..10 {
            io.rings_mut().arrive(2, &frame(i, 60));
        }
        let mut got = Batch::new();
        io.rx(2, &mut got);
        assert_eq!(got.len(), 10);
        io.reclaim_and_refill(&mut short);
        assert_eq!(short, [0, 0, 1, 0], "only port 2 needed frames");
        io.free(&mut got);
        io.reclaim_and_refill(&mut short);
        assert_eq!(io.rings().fill_len(2), 32, "refilled once frames came back");
    }

    #[test]
    fn a_transmit_only_io_keeps_its_frames_off_the_fill_rings() {
        let mut io = RingIo::with_rings(MemRings::new(1, 64, 2048, 64), false);
        let mut short = [0u64; 1];
        io.reclaim_and_refill(&mut short);
        assert_eq!(io.rings().fill_len(0), 0);
        let mut b = Batch::new();
        assert_eq!(io.alloc(&mut b, 64), 64);
        io.with_data(&mut b, &mut |bufs, chunks| {
            for (i, (buf, c)) in bufs.iter_mut().zip(chunks.iter_mut()).enumerate() {
                let h = buf.head();
                c[h..h + 60].fill(i as u8);
                assert!(buf.set_data(h, 60));
            }
        });
        assert_eq!(io.tx(0, &mut b), 64);
        assert_eq!(io.rings().sent(0).len(), 64);
        assert_eq!(io.rings().sent(0)[5], vec![5u8; 60]);
        io.reclaim_and_refill(&mut short);
        assert_eq!(
            (io.completed(), io.in_flight(), io.free_frames()),
            (64, 0, 64)
        );
    }

    #[test]
    fn a_frame_of_another_io_is_not_taken() {
        let mut a = RingIo::with_rings(MemRings::new(1, 64, 2048, 64), false);
        let mut b = RingIo::with_rings(MemRings::new(1, 64, 2048, 64), false);
        let mut batch = Batch::new();
        a.alloc(&mut batch, 4);
        assert_eq!(b.tx(0, &mut batch), 0, "b cannot send a's frames");
        b.with_data(&mut batch, &mut |_, chunks| {
            assert!(chunks.iter().all(|c| c.is_empty()), "nor show them");
        });
        assert_eq!(batch.len(), 4);
        a.free(&mut batch);
        assert_eq!(a.free_frames(), 64);
    }
}
