//! A worker: one thread pinned to one core, polling the rings of every
//! port it serves, running the pipeline over each received batch, and
//! sending each forwarded frame out of its port without copying it.
//!
//! The rings sit behind [`PacketIo`] (frames as [`Buf`] handles, moved in
//! [`Batch`]es): [`crate::sys::xsk::XskIo`] over AF_XDP, or the same ring
//! logic over the in-memory fake [`crate::sys::ring::MemRings`] in tests,
//! optionally wrapped in the emulation's [`crate::delay_line::DelayLine`].
//! What a verdict means is decided here, once: a forwarded frame joins its
//! output port's batch, a dropped or punted one goes back to the pool.
//!
//! Per iteration (DPDK l3fwd's shape): reclaim TX completions and refill the
//! fill rings in batches; for each port, receive up to `batch` frames, pin
//! the epoch once, load the FIB for this batch's timestamp, run
//! [`pipeline::process`], and hand forwarded frames to their ports' TX rings
//! grouped by port; publish the counters. When a whole pass finds no work
//! the worker either spins (busy), or blocks in `poll()` (sleep-when-idle),
//! which is what lets dozens of dataplanes share two cores in an emulation.

use crate::ring::{Batch, Buf, PacketIo};
use crate::shared::{Node, WorkerStats, KERNEL_STATS_EVERY_NS};
use orbitmesh_core::pipeline::{self, Frame, Verdict, MAX_BATCH};
use orbitmesh_core::stats::{Counters, DropReason};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a worker waits when there is no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PollMode {
    /// Never sleep (lowest latency, one core at 100%).
    Busy,
    /// Sleep in poll() after an idle pass (default: CPU use follows load).
    SleepWhenIdle,
}

/// Where punted frames go: `None` drops them (counted by reason in the
/// pipeline's counters); `Some` copies each into a bounded queue that a
/// punt thread drains into a TAP interface (slow path; a full queue drops
/// and counts, the worker never waits).
pub type PuntQueue = std::sync::mpsc::SyncSender<Vec<u8>>;

/// Longest sleep of an idle worker in sleep-when-idle mode.
pub const IDLE_WAIT_MS: i32 = 100;

/// Default receive coalescing of a sleeping worker (see `WorkerSpec::coalesce`):
/// off. Measured on copy-mode veth at 0.1 Mpps, 50 µs saved about 10% of
/// the DUT core's time per frame and doubled the median latency
/// (bench/results/veth-analysis.md), so it is a choice, not a default.
pub const DEFAULT_COALESCE_US: u32 = 0;

/// One worker's per-port I/O tallies (totals since start, published as is).
#[derive(Debug)]
struct PortTally {
    rx: Vec<u64>,
    tx: Vec<u64>,
    rx_bytes: Vec<u64>,
    tx_bytes: Vec<u64>,
    tx_ring_full: Vec<u64>,
    fill_short: Vec<u64>,
    /// Drops by reason of the frames that arrived on each port: the
    /// pipeline's drop counters' growth over each of the port's batches.
    drops: Vec<[u64; DropReason::COUNT]>,
}

impl PortTally {
    fn new(ports: usize) -> PortTally {
        PortTally {
            rx: vec![0; ports],
            tx: vec![0; ports],
            rx_bytes: vec![0; ports],
            tx_bytes: vec![0; ports],
            tx_ring_full: vec![0; ports],
            fill_short: vec![0; ports],
            drops: vec![[0; DropReason::COUNT]; ports],
        }
    }

    /// Adds the growth of the pipeline's drop counters from `before` to
    /// `after` (one batch received on `port`) to that port's drops.
    #[inline]
    fn add_drops(&mut self, port: usize, before: &[u64], after: &[u64]) {
        for ((d, a), b) in self.drops[port].iter_mut().zip(after).zip(before) {
            *d += a - b;
        }
    }

    fn publish(&self, stats: &WorkerStats) {
        for (p, c) in stats.ports.iter().enumerate().take(self.rx.len()) {
            c.rx.store(self.rx[p], Ordering::Relaxed);
            c.tx.store(self.tx[p], Ordering::Relaxed);
            c.rx_bytes.store(self.rx_bytes[p], Ordering::Relaxed);
            c.tx_bytes.store(self.tx_bytes[p], Ordering::Relaxed);
            for (cell, v) in c.drops.iter().zip(&self.drops[p]) {
                cell.store(*v, Ordering::Relaxed);
            }
            c.tx_ring_full
                .store(self.tx_ring_full[p], Ordering::Relaxed);
            c.fill_ring_empty
                .store(self.fill_short[p], Ordering::Relaxed);
        }
    }
}

/// The batches a worker reuses: nothing is allocated per packet or per pass.
struct Batches {
    rx: Batch,
    /// Per output port: the frames forwarded to it from one received batch.
    out: Vec<Batch>,
    /// Dropped and punted frames, back to the pool.
    done: Batch,
    verdicts: [Verdict; MAX_BATCH],
}

/// The worker loop; returns when `stop` is set.
pub fn run_worker(io: &mut dyn PacketIo, node: &Node, spec: &WorkerSpec, stop: &AtomicBool) {
    let stats = &node.workers[spec.index];
    let ports = io.ports();
    let mut counters = Counters::default();
    let mut tally = PortTally::new(ports);
    let mut b = Batches {
        rx: Batch::with_limit(spec.batch.clamp(1, MAX_BATCH)),
        out: (0..ports).map(|_| Batch::new()).collect(),
        done: Batch::new(),
        verdicts: [Verdict::Drop(DropReason::Malformed); MAX_BATCH],
    };
    let mut kernel_stats_due = 0u64;
    while !stop.load(Ordering::Relaxed) {
        io.reclaim_and_refill(&mut tally.fill_short);
        // One clock read per pass: it picks the FIB in force (a staged one
        // activates at its instant) for every port's batch of this pass.
        let now = orbitmesh_core::time::now_ns();
        if now >= kernel_stats_due {
            kernel_stats_due = now + KERNEL_STATS_EVERY_NS;
            // Also on idle passes: a port starved of fill frames receives nothing.
            tally.publish(stats);
            for p in 0..ports {
                if let Some(k) = io.kernel_stats(p) {
                    stats.ports[p].kernel.store(&k);
                }
            }
        }
        let mut work = 0;
        for p in 0..ports {
            let n = io.rx(p, &mut b.rx);
            if n == 0 {
                continue;
            }
            work += n;
            tally.rx[p] += n as u64;
            tally.rx_bytes[p] += bytes(&b.rx);
            let before = counters.drops;
            let version = process(io, &mut b, node, now, &mut counters, spec.punt.as_ref());
            tally.add_drops(p, &before, &counters.drops);
            stats.fib_version.store(version, Ordering::Relaxed);
            dispatch(io, &mut b, &mut tally);
        }
        if work > 0 {
            stats.pipeline.publish(&counters);
            tally.publish(stats);
        } else if spec.poll == PollMode::SleepWhenIdle {
            // poll() returns as soon as a frame arrives; the timeout only
            // bounds how long a stop request waits (the I/O shortens it
            // while transmitted frames await completion).
            io.wait(IDLE_WAIT_MS);
            // Receive coalescing (a NIC's rx-usecs): let frames gather for
            // a moment after the first one wakes us, so one wake-up, one
            // pass and one transmit call serve a batch rather than a frame.
            if !spec.coalesce.is_zero() {
                std::thread::sleep(spec.coalesce);
            }
        } else {
            io.busy_poll();
        }
    }
    stats.pipeline.publish(&counters);
    tally.publish(stats);
}

/// Runs the pipeline over the received batch `b.rx` in place, writing
/// `b.verdicts`; copies punted frames to the punt queue. Returns the
/// version of the FIB used.
fn process(
    io: &mut dyn PacketIo,
    b: &mut Batches,
    node: &Node,
    now: u64,
    counters: &mut Counters,
    punt: Option<&PuntQueue>,
) -> u64 {
    let live = node.live.mask();
    let mut version = 0;
    let verdicts = &mut b.verdicts;
    io.with_data(&mut b.rx, &mut |bufs, chunks| {
        let mut frames: SmallVec<[Frame<'_>; MAX_BATCH]> = chunks
            .iter_mut()
            .zip(bufs.iter())
            // Frame i must stay buf i: a frame the I/O could not show
            // (never the case) is an empty one, dropped as malformed.
            .map(|(c, buf)| match Frame::new(c, buf.head(), buf.len()) {
                Some(f) => f,
                None => Frame::new(&mut [], 0, 0).expect("empty is in bounds"),
            })
            .collect();
        let n = frames.len();
        let guard = crossbeam_epoch::pin();
        let fib = node.fib.load(now, &guard);
        version = fib.version();
        pipeline::process(fib, live, &mut frames, &mut verdicts[..n], counters);
        if let Some(q) = punt {
            for (f, v) in frames.iter().zip(verdicts.iter()) {
                if matches!(v, Verdict::Punt(_)) && q.try_send(f.data().to_vec()).is_err() {
                    node.punt.queue_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for (buf, f) in bufs.iter_mut().zip(&frames) {
            let moved = buf.set_data(f.start(), f.len());
            debug_assert!(moved, "a frame stays inside its buffer");
        }
    });
    version
}

/// Groups the processed batch by verdict: forwarded frames to their output
/// port's TX ring (one `tx` per port per batch, counted per port), the rest
/// back to the pool.
fn dispatch(io: &mut dyn PacketIo, b: &mut Batches, tally: &mut PortTally) {
    let ports = b.out.len();
    let n = b.rx.len();
    for (buf, v) in b.rx.drain().zip(&b.verdicts[..n]) {
        let to: Result<(), Buf> = match *v {
            Verdict::Forward(q) if (q as usize) < ports => b.out[q as usize].push(buf),
            _ => Err(buf),
        };
        if let Err(buf) = to {
            // Room for a whole batch: never refused.
            let kept = b.done.push(buf);
            debug_assert!(kept.is_ok());
        }
    }
    if !b.done.is_empty() {
        io.free(&mut b.done);
    }
    for (q, out) in b.out.iter_mut().enumerate() {
        if out.is_empty() {
            continue;
        }
        let want = out.len();
        let want_bytes = bytes(out);
        let sent = io.tx(q, out);
        tally.tx[q] += sent as u64;
        if sent < want {
            // What stays in the batch was not sent.
            tally.tx_bytes[q] += want_bytes - bytes(out);
            tally.tx_ring_full[q] += (want - sent) as u64;
            io.free(out);
        } else {
            tally.tx_bytes[q] += want_bytes;
        }
    }
}

/// The bytes of a batch's frames (read from the handles, not the frames).
#[inline]
fn bytes(b: &Batch) -> u64 {
    b.bufs().iter().map(|f| f.len() as u64).sum()
}

/// How one worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Worker index = the queue it serves on every port.
    pub index: usize,
    /// Core to pin to, if any.
    pub core: Option<usize>,
    pub batch: usize,
    pub poll: PollMode,
    /// Sleep-when-idle only: after a wake-up, wait this long before
    /// receiving, so frames arrive in batches at low rates (bounds the
    /// added latency; zero: receive at once).
    pub coalesce: std::time::Duration,
    pub punt: Option<PuntQueue>,
}

impl WorkerSpec {
    /// Worker `index` with the defaults: no core, batches of 32, busy.
    pub fn new(index: usize) -> WorkerSpec {
        WorkerSpec {
            index,
            core: None,
            batch: 32,
            poll: PollMode::Busy,
            coalesce: std::time::Duration::ZERO,
            punt: None,
        }
    }
}

/// Spawns `run_worker` on its own thread, pinned to its core when given.
pub fn spawn(
    mut io: Box<dyn PacketIo + Send>,
    node: Arc<Node>,
    spec: WorkerSpec,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("om-worker-{}", spec.index))
        .spawn(move || {
            if let Some(c) = spec.core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                    tracing::warn!(core = c, "could not pin worker to core");
                }
            }
            if spec.poll == PollMode::SleepWhenIdle && !spec.coalesce.is_zero() {
                // Sleeps as short as the coalescing time need a timer slack
                // below the default 50 µs.
                crate::sys::clock::set_timer_slack_ns(1_000);
            }
            run_worker(io.as_mut(), &node, &spec, &stop);
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ring::{MemRings, RingIo};
    use orbitmesh_core::fib::{FibBuilder, IlmAction, NextHop, PortConfig};
    use orbitmesh_core::stats::KernelStats;
    use orbitmesh_core::wire::mpls::Lse;

    /// Two ports of in-memory rings: 256 chunks of 2 KiB, rings of 64.
    fn mem_io() -> RingIo<MemRings> {
        RingIo::with_rings(MemRings::new(2, 256, 2048, 64), true)
    }

    /// A two-port node whose FIB (built from `b`) swaps label 16001 to
    /// 16002 out of port 1.
    fn swap_16001_to_port_1(mut b: FibBuilder) -> Node {
        b.port(0, PortConfig::default())
            .port(1, PortConfig::default());
        let nh = b.next_hop(NextHop {
            port: 1,
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            vlan: None,
            push: vec![],
            backup: None,
        });
        let g = b.group(&[nh]);
        b.label(
            16001,
            IlmAction::Swap {
                out_label: 16002,
                nhg: g,
            },
        );
        Node::new("t", vec!["a".into(), "b".into()], b.build().unwrap(), 1)
    }

    #[test]
    fn the_worker_loop_forwards_between_memory_rings() {
        let node = swap_16001_to_port_1(FibBuilder::new().version(3));
        let mut io = mem_io();
        let mut frame = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x88, 0x47];
        frame.extend_from_slice(&Lse::new(16001, 0, true, 9).to_bytes());
        frame.extend_from_slice(&[0x45; 8]);
        for _ in 0..100 {
            io.rings_mut().arrive(0, &frame);
        }
        io.rings_mut().arrive(0, &[0; 5]); // malformed: dropped and counted
        let mut alert = frame.clone();
        alert[14..18].copy_from_slice(&Lse::new(1, 0, true, 9).to_bytes());
        io.rings_mut().arrive(0, &alert); // router alert: punted
        let (ptx, prx) = std::sync::mpsc::sync_channel(8);
        let stop = AtomicBool::new(false);
        // Run until the RX queue is drained, then stop.
        std::thread::scope(|s| {
            s.spawn(|| {
                while node.counters().rx < 102 {
                    std::thread::yield_now();
                }
                stop.store(true, Ordering::Relaxed);
            });
            let spec = WorkerSpec {
                punt: Some(ptx.clone()),
                ..WorkerSpec::new(0)
            };
            run_worker(&mut io, &node, &spec, &stop);
        });
        assert_eq!(io.rings().sent(1).len(), 100);
        let out = &io.rings().sent(1)[0];
        assert_eq!(&out[..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(
            Lse::from_bytes(out[14..18].try_into().unwrap()),
            Lse::new(16002, 0, true, 8)
        );
        let c = node.counters();
        assert_eq!(
            (c.rx, c.forwarded, c.dropped(), c.punted()),
            (102, 100, 1, 1)
        );
        assert_eq!(
            prx.try_recv().unwrap(),
            alert,
            "the punted frame, unchanged"
        );
        assert_eq!(node.port_totals()[1].tx, 100);
        assert_eq!(node.port_totals()[0].rx, 102);
        // Bytes as on the ring: 100 + 1 frames of 26 bytes and one of 5 in,
        // the 100 swapped (same length) out.
        assert_eq!(frame.len(), 26);
        assert_eq!(node.port_totals()[0].rx_bytes, 101 * 26 + 5);
        assert_eq!(node.port_totals()[1].tx_bytes, 100 * 26);
        assert_eq!(
            (
                node.port_totals()[1].rx_bytes,
                node.port_totals()[0].tx_bytes
            ),
            (0, 0)
        );
        // The malformed frame's drop is the port it arrived on's.
        let mut want = [0; DropReason::COUNT];
        want[DropReason::Malformed as usize] = 1;
        assert_eq!(node.port_drops(0), want);
        assert_eq!(node.port_drops(1), [0; DropReason::COUNT]);
        assert_eq!(node.workers[0].fib_version.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_kernels_socket_drops_reach_the_port_totals() {
        let mut b = FibBuilder::new();
        b.port(0, PortConfig::default())
            .port(1, PortConfig::default());
        let node = Node::new("t", vec!["a".into(), "b".into()], b.build().unwrap(), 1);
        let k = KernelStats {
            rx_ring_full: 7,
            rx_fill_empty: 5,
            rx_dropped: 3,
            invalid_descs: 1,
        };
        // Port 1 reports kernel socket drops, port 0 none.
        let mut io = mem_io();
        io.rings_mut().kernel[1] = Some(k);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let t0 = std::time::Instant::now();
                while node.port_totals()[1].kernel.total() < 16
                    && t0.elapsed() < std::time::Duration::from_secs(10)
                {
                    std::thread::yield_now();
                }
                stop.store(true, Ordering::Relaxed);
            });
            run_worker(&mut io, &node, &WorkerSpec::new(0), &stop);
        });
        let t = node.port_totals();
        let k1 = t[1].kernel;
        assert_eq!(
            (
                k1.rx_ring_full,
                k1.rx_fill_empty,
                k1.rx_dropped,
                k1.invalid_descs
            ),
            (7, 5, 3, 1)
        );
        assert_eq!(k1.total(), 16);
        assert_eq!(t[0].kernel.total(), 0, "port 0 has no kernel statistics");
    }

    #[test]
    fn a_port_that_runs_out_of_fill_frames_is_the_one_counted() {
        // Port 0 receives frames switched to port 1, whose link sends
        // nothing: its TX ring keeps every frame, the pool runs dry, and
        // port 0's fill ring cannot be refilled. Port 1 never needed one.
        let node = swap_16001_to_port_1(FibBuilder::new());
        // 64 chunks: 16 per fill ring, 32 in the pool.
        let mut io = RingIo::with_rings(MemRings::new(2, 64, 2048, 64), true);
        io.rings_mut().stall_tx(1, true);
        let mut frame = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x88, 0x47];
        frame.extend_from_slice(&Lse::new(16001, 0, true, 9).to_bytes());
        frame.extend_from_slice(&[0x45; 8]);
        for _ in 0..100 {
            io.rings_mut().arrive(0, &frame);
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let t0 = std::time::Instant::now();
                while node.port_totals()[0].fill_ring_empty == 0
                    && t0.elapsed() < std::time::Duration::from_secs(10)
                {
                    std::thread::yield_now();
                }
                stop.store(true, Ordering::Relaxed);
            });
            run_worker(&mut io, &node, &WorkerSpec::new(0), &stop);
        });
        let t = node.port_totals();
        assert!(t[0].fill_ring_empty > 0, "port 0 ran short");
        assert_eq!(t[1].fill_ring_empty, 0, "port 1's fill ring stayed full");
        assert_eq!(
            (t[0].rx, t[1].tx),
            (48, 48),
            "every frame of the UMEM but port 1's fill share"
        );
    }
}
