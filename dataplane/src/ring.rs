//! Frames as handles and the batch I/O a worker (or the bench generator)
//! drives, in the shape of ixy's `IxyDevice::rx_batch`/`tx_batch` and
//! DPDK's `rte_eth_rx_burst`/`rte_eth_tx_burst`: a frame is a [`Buf`] (a
//! UMEM chunk, where the packet starts in it, its length), frames move in
//! [`Batch`]es of up to [`MAX_BATCH`], and the [`PacketIo`] trait receives
//! and transmits whole batches on one port.
//!
//! What a frame becomes (dropped, punted, sent on port p) is the worker's
//! business, not the I/O's: the I/O only moves handles between its rings,
//! its pool of free frames and the caller. [`crate::sys::ring::RingIo`] is
//! the implementation over AF_XDP rings (or their in-memory fake);
//! [`crate::delay_line::DelayLine`] wraps any `PacketIo` to hold frames for
//! an emulated propagation delay.
//!
//! A `Buf` is neither `Copy` nor `Clone` and only the I/O creates one, so a
//! frame has exactly one owner at a time: the caller, or the I/O (its free
//! pool, a fill or TX ring). That is what lets the I/O hand out the bytes
//! of a batch's frames mutably without the kernel writing them meanwhile.

pub use orbitmesh_core::pipeline::MAX_BATCH;
use orbitmesh_core::stats::KernelStats;

/// One frame: a UMEM chunk the holder owns, with the packet at
/// `chunk[head .. head + len]` and `chunk[.. head]` free for pushed labels.
#[derive(Debug, PartialEq, Eq)]
pub struct Buf {
    /// Offset of the chunk in its UMEM.
    addr: u32,
    head: u16,
    len: u16,
    /// Chunk size: `head + len <= cap` always holds.
    cap: u16,
    /// Which I/O the chunk belongs to (an I/O refuses another's frames).
    pool: u16,
}

impl Buf {
    /// A handle the I/O `pool` hands out; `None` when the packet would not
    /// fit in the chunk.
    pub(crate) fn new(pool: u16, addr: u32, cap: u16, head: usize, len: usize) -> Option<Buf> {
        let (head, len) = (u16::try_from(head).ok()?, u16::try_from(len).ok()?);
        (head as usize + len as usize <= cap as usize).then_some(Buf {
            addr,
            head,
            len,
            cap,
            pool,
        })
    }

    /// Placeholder of an empty slot in a batch (owns no chunk).
    const EMPTY: Buf = Buf {
        addr: 0,
        head: 0,
        len: 0,
        cap: 0,
        pool: u16::MAX,
    };

    /// Offset of the chunk in its UMEM (chunk index = addr / chunk size).
    pub fn addr(&self) -> u32 {
        self.addr
    }

    /// Where the packet starts in the chunk: bytes of headroom in front of it.
    pub fn head(&self) -> usize {
        self.head as usize
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the chunk.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    pub(crate) fn pool(&self) -> u16 {
        self.pool
    }

    /// Moves the packet to `chunk[head .. head + len]` (labels pushed or
    /// popped, a frame written); `false`, unchanged, if that leaves the chunk.
    pub fn set_data(&mut self, head: usize, len: usize) -> bool {
        match head.checked_add(len) {
            Some(end) if end <= self.cap as usize => {
                // Both fit in u16: they are at most `cap`.
                self.head = head as u16;
                self.len = len as u16;
                true
            }
            _ => false,
        }
    }
}

/// Up to [`MAX_BATCH`] frames (or a smaller limit), in order.
pub struct Batch {
    bufs: [Buf; MAX_BATCH],
    len: usize,
    limit: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.bufs()).finish()
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub const fn new() -> Batch {
        Batch::with_limit(MAX_BATCH)
    }

    /// A batch that holds at most `limit` frames (1 ..= [`MAX_BATCH`]).
    pub const fn with_limit(limit: usize) -> Batch {
        let limit = if limit == 0 {
            1
        } else if limit > MAX_BATCH {
            MAX_BATCH
        } else {
            limit
        };
        Batch {
            bufs: [Buf::EMPTY; MAX_BATCH],
            len: 0,
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.limit
    }

    /// Room left.
    pub fn room(&self) -> usize {
        self.limit - self.len
    }

    pub fn bufs(&self) -> &[Buf] {
        &self.bufs[..self.len]
    }

    pub fn bufs_mut(&mut self) -> &mut [Buf] {
        &mut self.bufs[..self.len]
    }

    /// Appends `b`; hands it back when the batch is full.
    pub fn push(&mut self, b: Buf) -> Result<(), Buf> {
        if self.len == self.limit {
            return Err(b);
        }
        self.bufs[self.len] = b;
        self.len += 1;
        Ok(())
    }

    /// Takes the last frame.
    pub fn pop(&mut self) -> Option<Buf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(std::mem::replace(&mut self.bufs[self.len], Buf::EMPTY))
    }

    /// Takes every frame, in order, leaving the batch empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Buf> + '_ {
        let n = std::mem::take(&mut self.len);
        self.bufs[..n]
            .iter_mut()
            .map(|b| std::mem::replace(b, Buf::EMPTY))
    }

    /// Removes the first `n` frames (they were handed on); the rest move to the front.
    pub(crate) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        for b in &mut self.bufs[..n] {
            debug_assert_eq!(b.pool, u16::MAX, "the frames handed on were taken");
        }
        self.bufs[..self.len].rotate_left(n);
        self.len -= n;
    }

    /// Takes frame `i` out for handing on, leaving an empty slot; the caller
    /// then calls [`Batch::consume_front`].
    pub(crate) fn take(&mut self, i: usize) -> Buf {
        std::mem::replace(&mut self.bufs[i], Buf::EMPTY)
    }
}

/// What [`PacketIo::with_data`] calls: the batch's handles, and the chunk
/// of each.
pub type DataFn<'f> = dyn FnMut(&mut [Buf], &mut [&mut [u8]]) + 'f;

/// Batch I/O over the ports of one worker.
///
/// Names follow ixy and DPDK: `rx`/`tx` are `rx_batch`/`tx_batch`
/// (`rte_eth_rx_burst`/`rte_eth_tx_burst`); `alloc`/`free` are the frame
/// pool's (`rte_pktmbuf_alloc_bulk`/`rte_pktmbuf_free_bulk`);
/// [`PacketIo::reclaim_and_refill`] is ixy's TX clean-up (taking back
/// frames the device has sent) followed by its RX refill (handing the
/// device free frames to receive into), which AF_XDP does through the
/// completion and fill rings.
pub trait PacketIo {
    fn ports(&self) -> usize;

    /// Receives up to `batch.room()` frames on `port`, appended to `batch`;
    /// returns how many.
    fn rx(&mut self, port: usize, batch: &mut Batch) -> usize;

    /// Puts `batch`'s frames on `port`'s TX ring, as many as it takes
    /// (after reclaiming completions if it is full), and removes them from
    /// the batch; what stays in the batch was not sent (the caller frees
    /// it, usually counting it as a full TX ring). Returns how many went.
    fn tx(&mut self, port: usize, batch: &mut Batch) -> usize;

    /// Appends up to `n` free frames (empty, packet start after the
    /// headroom) to `batch`; returns how many (fewer when the pool runs low).
    fn alloc(&mut self, batch: &mut Batch, n: usize) -> usize;

    /// Returns every frame of `batch` to the pool.
    fn free(&mut self, batch: &mut Batch);

    /// Lets `f` read and write the frames of `batch`: `chunks[i]` is the
    /// whole chunk of `batch.bufs()[i]` (packet at its `head()`, length
    /// `len()`; `f` moves them with [`Buf::set_data`]).
    fn with_data(&mut self, batch: &mut Batch, f: &mut DataFn<'_>);

    /// Takes back frames the kernel finished sending and tops up the fill
    /// rings (see the trait's note on names). Adds to `fill_short[p]` when
    /// port `p`'s fill ring needed frames and the pool had none.
    fn reclaim_and_refill(&mut self, fill_short: &mut [u64]);

    /// Blocks until a port has frames or `timeout_ms` passes.
    fn wait(&mut self, timeout_ms: i32);

    /// Busy mode, idle pass: lets the kernel run the ports' receive in this
    /// call (with SO_PREFER_BUSY_POLL busy polling, the driver's NAPI on
    /// this core). Nothing by default.
    fn busy_poll(&mut self) {}

    /// The kernel's statistics of a port's socket (a syscall: read every
    /// [`crate::shared::KERNEL_STATS_EVERY_NS`], never per batch); `None`
    /// where there is no kernel.
    fn kernel_stats(&self, _port: usize) -> Option<KernelStats> {
        None
    }
}

impl<T: PacketIo + ?Sized> PacketIo for Box<T> {
    fn ports(&self) -> usize {
        (**self).ports()
    }
    fn rx(&mut self, port: usize, batch: &mut Batch) -> usize {
        (**self).rx(port, batch)
    }
    fn tx(&mut self, port: usize, batch: &mut Batch) -> usize {
        (**self).tx(port, batch)
    }
    fn alloc(&mut self, batch: &mut Batch, n: usize) -> usize {
        (**self).alloc(batch, n)
    }
    fn free(&mut self, batch: &mut Batch) {
        (**self).free(batch)
    }
    fn with_data(&mut self, batch: &mut Batch, f: &mut DataFn<'_>) {
        (**self).with_data(batch, f)
    }
    fn reclaim_and_refill(&mut self, fill_short: &mut [u64]) {
        (**self).reclaim_and_refill(fill_short)
    }
    fn wait(&mut self, timeout_ms: i32) {
        (**self).wait(timeout_ms)
    }
    fn busy_poll(&mut self) {
        (**self).busy_poll()
    }
    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        (**self).kernel_stats(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buf_stays_inside_its_chunk() {
        let mut b = Buf::new(0, 4096, 2048, 256, 60).unwrap();
        assert!(b.set_data(248, 68), "8 bytes pushed into the headroom");
        assert_eq!((b.head(), b.len()), (248, 68));
        assert!(!b.set_data(2000, 100), "past the chunk's end");
        assert!(!b.set_data(usize::MAX, 2), "overflow");
        assert_eq!(
            (b.head(), b.len()),
            (248, 68),
            "a refused move changes nothing"
        );
        assert!(Buf::new(0, 0, 2048, 2000, 49).is_none());
    }

    #[test]
    fn a_batch_keeps_order_and_bounds() {
        let mut batch = Batch::new();
        for i in 0..MAX_BATCH as u32 {
            batch
                .push(Buf::new(0, i * 2048, 2048, 0, 1).unwrap())
                .unwrap();
        }
        let extra = Buf::new(0, 0, 2048, 0, 1).unwrap();
        assert!(
            batch.push(extra).is_err(),
            "a full batch hands the frame back"
        );
        let mut small = Batch::with_limit(2);
        for i in 0..2 {
            small
                .push(Buf::new(0, i * 2048, 2048, 0, 1).unwrap())
                .unwrap();
        }
        assert_eq!((small.room(), small.is_full()), (0, true));
        assert!(small.push(Buf::new(0, 0, 2048, 0, 1).unwrap()).is_err());
        for i in 0..3 {
            let _ = batch.take(i);
        }
        batch.consume_front(3);
        assert_eq!(batch.len(), MAX_BATCH - 3);
        assert_eq!(batch.bufs()[0].addr(), 3 * 2048);
        let addrs: Vec<u32> = batch.drain().map(|b| b.addr()).collect();
        assert_eq!(addrs.len(), MAX_BATCH - 3);
        assert!(batch.is_empty());
        assert_eq!(addrs.last(), Some(&((MAX_BATCH as u32 - 1) * 2048)));
    }
}
