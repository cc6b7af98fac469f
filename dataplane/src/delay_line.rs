//! The emulation's delay line: a [`PacketIo`] decorator that holds the
//! frames sent on port p for `Node::delay_ns[p]` nanoseconds (the
//! propagation delay of the satellite link the port stands for, set with
//! `orbitmesh-ctl port delay`) before they reach the TX ring, the way
//! netem's delay qdisc would on a kernel interface.
//!
//! Only a dataplane started with `--delay-line` (what the emulator does)
//! wraps its I/O in one, so a relay pays nothing for it: no delay read per
//! pass, no clock read per batch. Frames held are counted as sent when
//! they enter the line (they left the relay for the link); when the line
//! is full, `tx` leaves them with the caller, which counts a full TX ring.
//!
//! It also stands for links that come and go with the geometry: while
//! `Node::link_gone[p]` is set (the emulator sets it at every schedule
//! instant the prediction says the link does not exist), every frame sent
//! on p is dropped, counted in `Node::gone_drops[p]` (one atomic add per
//! batch), and counted as sent by the relay: lost in space, as on a laser
//! link out of range. The veth stays up on purpose: taking it down would
//! drop carrier, which the dataplane's fast reroute and the controller's
//! port watch take as a failure and route around, hiding what a late or
//! frozen FIB costs; a link gone by the geometry is the schedule's job.

use crate::ring::{Batch, Buf, DataFn, PacketIo};
use crate::shared::Node;
use orbitmesh_core::stats::KernelStats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A [`PacketIo`] with a per-port delay line in front of its TX rings.
#[derive(Debug)]
pub struct DelayLine<I> {
    inner: I,
    node: Arc<Node>,
    /// The delays in force (read from `node` once per pass).
    delay_ns: Vec<u64>,
    /// The links gone (read from `node` once per pass).
    gone: Vec<bool>,
    /// Per port: frames held, with the time they may leave (FIFO: one
    /// port's delay is the same for every frame).
    held: Vec<VecDeque<(Buf, u64)>>,
    /// Frames a port may hold (reserved on its first delay, off the
    /// per-packet path).
    capacity: usize,
    /// Frames falling due, on their way to the inner `tx`.
    due: Batch,
}

impl<I: PacketIo> DelayLine<I> {
    /// Wraps `inner`; each port holds at most `capacity` frames (a TX
    /// ring's worth is a natural choice).
    pub fn new(inner: I, node: Arc<Node>, capacity: usize) -> DelayLine<I> {
        let n = inner.ports();
        DelayLine {
            inner,
            node,
            delay_ns: vec![0; n],
            gone: vec![false; n],
            held: (0..n).map(|_| VecDeque::new()).collect(),
            capacity,
            due: Batch::new(),
        }
    }

    pub fn inner(&self) -> &I {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// Frames held on `port` now.
    pub fn held(&self, port: usize) -> usize {
        self.held[port].len()
    }

    fn read_delays(&mut self) {
        for (q, (d, a)) in self
            .delay_ns
            .iter_mut()
            .zip(&self.node.delay_ns)
            .enumerate()
        {
            *d = a.load(Ordering::Relaxed);
            self.gone[q] = self.node.link_gone[q].load(Ordering::Relaxed);
            if *d > 0 && self.held[q].capacity() == 0 {
                self.held[q].reserve_exact(self.capacity);
            }
        }
    }

    /// Sends the frames whose time has come, in order, a batch at a time.
    fn release(&mut self, now: u64) {
        for q in 0..self.held.len() {
            loop {
                while let Some(&(_, at)) = self.held[q].front() {
                    if at > now || self.due.is_full() {
                        break;
                    }
                    let (b, _) = self.held[q].pop_front().expect("looked at");
                    let _ = self.due.push(b);
                }
                if self.due.is_empty() {
                    break;
                }
                let full = self.due.is_full();
                self.inner.tx(q, &mut self.due);
                // Counted as sent when held; what the ring refuses is lost
                // on the link.
                self.inner.free(&mut self.due);
                if !full {
                    break;
                }
            }
        }
    }
}

impl<I: PacketIo> PacketIo for DelayLine<I> {
    fn ports(&self) -> usize {
        self.inner.ports()
    }

    fn rx(&mut self, port: usize, batch: &mut Batch) -> usize {
        self.inner.rx(port, batch)
    }

    fn tx(&mut self, port: usize, batch: &mut Batch) -> usize {
        if self.gone[port] {
            // Lost on a link that is not there: sent, as far as the relay knows.
            let k = batch.len();
            self.node.gone_drops[port].fetch_add(k as u64, Ordering::Relaxed);
            self.inner.free(batch);
            return k;
        }
        let d = self.delay_ns[port];
        if d == 0 && self.held[port].is_empty() {
            return self.inner.tx(port, batch);
        }
        // Behind frames still held (also after the delay drops to 0): keep order.
        let at = orbitmesh_core::time::now_ns() + d;
        let room = self.held[port].capacity() - self.held[port].len();
        let k = batch.len().min(room);
        for i in 0..k {
            self.held[port].push_back((batch.take(i), at));
        }
        batch.consume_front(k);
        k
    }

    fn alloc(&mut self, batch: &mut Batch, n: usize) -> usize {
        self.inner.alloc(batch, n)
    }

    fn free(&mut self, batch: &mut Batch) {
        self.inner.free(batch)
    }

    fn with_data(&mut self, batch: &mut Batch, f: &mut DataFn<'_>) {
        self.inner.with_data(batch, f)
    }

    fn reclaim_and_refill(&mut self, fill_short: &mut [u64]) {
        self.read_delays();
        if self.held.iter().any(|h| !h.is_empty()) {
            self.release(orbitmesh_core::time::now_ns());
        }
        self.inner.reclaim_and_refill(fill_short)
    }

    fn wait(&mut self, timeout_ms: i32) {
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
        self.inner.wait(timeout_ms)
    }

    fn busy_poll(&mut self) {
        self.inner.busy_poll()
    }

    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        self.inner.kernel_stats(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ring::{MemRings, RingIo};
    use orbitmesh_core::fib::{FibBuilder, PortConfig};
    use std::time::{Duration, Instant};

    fn node() -> Arc<Node> {
        let mut b = FibBuilder::new();
        b.port(0, PortConfig::default())
            .port(1, PortConfig::default());
        Arc::new(Node::new(
            "t",
            vec!["a".into(), "b".into()],
            b.build().unwrap(),
            1,
        ))
    }

    /// Receives `n` frames on port 0 (frame i starts with byte i).
    fn received(io: &mut DelayLine<RingIo<MemRings>>, n: u8) -> Batch {
        for i in 0..n {
            io.inner_mut().rings_mut().arrive(0, &[i; 60]);
        }
        let mut short = [0u64; 2];
        io.reclaim_and_refill(&mut short);
        let mut b = Batch::new();
        assert_eq!(io.rx(0, &mut b), n as usize);
        b
    }

    #[test]
    fn frames_wait_for_their_ports_delay_and_leave_in_order() {
        let node = node();
        let inner = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        let mut io = DelayLine::new(inner, node.clone(), 64);
        node.delay_ns[1].store(30_000_000, Ordering::Relaxed); // 30 ms
        let mut b = received(&mut io, 10);
        let t0 = Instant::now();
        assert_eq!(io.tx(1, &mut b), 10, "held frames count as sent");
        assert_eq!(io.held(1), 10);
        let mut short = [0u64; 2];
        io.reclaim_and_refill(&mut short);
        assert!(
            io.inner().rings().sent(1).is_empty(),
            "not before the delay"
        );
        while io.inner().rings().sent(1).len() < 10 {
            assert!(t0.elapsed() < Duration::from_secs(5), "released in time");
            io.wait(100);
            io.reclaim_and_refill(&mut short);
        }
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let first: Vec<u8> = io.inner().rings().sent(1).iter().map(|f| f[0]).collect();
        assert_eq!(first, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn a_port_without_delay_sends_at_once_and_a_full_line_refuses() {
        let node = node();
        let inner = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        let mut io = DelayLine::new(inner, node.clone(), 4);
        let mut short = [0u64; 2];
        let mut b = received(&mut io, 3);
        assert_eq!(io.tx(1, &mut b), 3);
        assert_eq!(
            io.inner().rings().sent(1).len(),
            3,
            "no delay: straight out"
        );
        node.delay_ns[1].store(1_000_000_000, Ordering::Relaxed);
        io.reclaim_and_refill(&mut short);
        let mut b = received(&mut io, 6);
        assert_eq!(io.tx(1, &mut b), 4, "a line of 4 frames");
        assert_eq!(b.len(), 2, "the rest stays with the caller");
        io.free(&mut b);
    }

    #[test]
    fn a_gone_link_drops_and_counts_every_frame_until_it_is_back() {
        let node = node();
        let inner = RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true);
        let mut io = DelayLine::new(inner, node.clone(), 64);
        let mut short = [0u64; 2];
        node.link_gone[1].store(true, Ordering::Relaxed);
        let mut b = received(&mut io, 5);
        assert_eq!(io.tx(1, &mut b), 5, "sent, as far as the relay knows");
        assert!(b.is_empty());
        io.reclaim_and_refill(&mut short);
        assert!(io.inner().rings().sent(1).is_empty(), "nothing on the wire");
        assert_eq!(node.gone_drops[1].load(Ordering::Relaxed), 5);
        node.link_gone[1].store(false, Ordering::Relaxed);
        let mut b = received(&mut io, 3);
        assert_eq!(io.tx(1, &mut b), 3);
        assert_eq!(io.inner().rings().sent(1).len(), 3, "back: straight out");
        assert_eq!(node.gone_drops[1].load(Ordering::Relaxed), 5);
    }
}
