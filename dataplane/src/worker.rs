//! A worker: one thread pinned to one core, polling the AF_XDP rings of every
//! port it serves, running the pipeline over each received batch, and
//! sending each forwarded frame out of its port without copying it.
//!
//! The rings sit behind the [`Io`] trait: [`crate::sys::xsk::XskIo`] is the
//! AF_XDP implementation, [`MemIo`] an in-memory one for tests, so the loop
//! below is the same code in both.
//!
//! Per iteration (DPDK l3fwd's shape): reclaim TX completions and refill the
//! fill rings in batches; for each port, receive up to `batch` frames, pin
//! the epoch once, load the FIB for this batch's timestamp, run
//! [`pipeline::process`], and hand forwarded frames to their ports' TX rings
//! grouped by port; publish the counters. When a whole pass finds no work
//! the worker either spins (busy), or blocks in `poll()` (sleep-when-idle),
//! which is what lets dozens of dataplanes share two cores in an emulation.

use crate::node::{Node, KERNEL_STATS_EVERY_NS};
use orbitmesh_core::pipeline::{self, Frame, Verdict, MAX_BATCH};
use orbitmesh_core::stats::Counters;
use orbitmesh_core::stats::KernelStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a batch did on one port.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchIo {
    pub rx: usize,
    pub forwarded: usize,
    pub tx_ring_full: usize,
}

/// Ring access for one worker.
pub trait Io {
    fn ports(&self) -> usize;
    /// Receives up to `max` frames on `port`, lets `run` rewrite them and
    /// give each a verdict, sends the forwarded ones (counted per output
    /// port in `tx`), and recycles the rest.
    fn rx_process_tx(
        &mut self,
        port: usize,
        max: usize,
        tx: &mut [u64],
        run: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> BatchIo;
    /// Reclaims completed TX frames and refills fill rings; returns how many
    /// fill-ring refills found no free frame.
    fn service(&mut self) -> u64;
    /// Blocks until a port has frames or `timeout_ms` passes.
    fn wait(&mut self, timeout_ms: i32);
    /// Busy mode, idle pass: lets the kernel busy-poll the device (no-op by default).
    fn kick(&mut self) {}
    /// Emulation delay line: hold frames sent on port p for `delays_ns[p]`
    /// before they go out (not supported by default: sent at once).
    fn set_delays(&mut self, _delays_ns: &[u64]) {}
    /// The kernel's statistics of a port's socket (a syscall: called every
    /// [`KERNEL_STATS_EVERY_NS`], never per batch); `None` where there is no kernel.
    fn kernel_stats(&self, _port: usize) -> Option<KernelStats> {
        None
    }
}

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

/// The worker loop; returns when `stop` is set.
pub fn run_worker(io: &mut dyn Io, node: &Node, spec: &WorkerSpec, stop: &AtomicBool) {
    let stats = &node.workers[spec.index];
    let batch = spec.batch.clamp(1, MAX_BATCH);
    let (poll, punt) = (spec.poll, spec.punt.as_ref());
    let mut counters = Counters::default();
    let ports = io.ports();
    let mut tx = vec![0u64; ports];
    let mut rx = vec![0u64; ports];
    let mut full = vec![0u64; ports];
    let mut fill_empty = 0u64;
    let mut delays = vec![0u64; ports];
    let mut kernel_stats_due = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Emulated link delays (set over the control socket; rarely change).
        let mut changed = false;
        for (d, a) in delays.iter_mut().zip(&node.delay_ns) {
            let v = a.load(Ordering::Relaxed);
            changed |= *d != v;
            *d = v;
        }
        if changed {
            io.set_delays(&delays);
        }
        fill_empty += io.service();
        // One clock read per pass: it picks the FIB in force (a staged one
        // activates at its instant) for every port's batch of this pass.
        let now = orbitmesh_core::time::now_ns();
        if now >= kernel_stats_due {
            kernel_stats_due = now + KERNEL_STATS_EVERY_NS;
            for p in 0..ports {
                if let Some(k) = io.kernel_stats(p) {
                    stats.ports[p].kernel.store(&k);
                }
            }
        }
        let mut work = 0;
        for p in 0..ports {
            let live = node.live.mask();
            let mut version = 0;
            let b = io.rx_process_tx(p, batch, &mut tx, &mut |frames, verdicts| {
                let guard = crossbeam_epoch::pin();
                let fib = node.fib.load(now, &guard);
                version = fib.version();
                pipeline::process(fib, live, frames, verdicts, &mut counters);
                if let Some(q) = punt {
                    for (f, v) in frames.iter().zip(verdicts.iter()) {
                        if matches!(v, Verdict::Punt(_)) && q.try_send(f.data().to_vec()).is_err() {
                            node.punt.queue_full.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
            if b.rx > 0 {
                work += b.rx;
                rx[p] += b.rx as u64;
                full[p] += b.tx_ring_full as u64;
                stats.fib_version.store(version, Ordering::Relaxed);
            }
        }
        if work > 0 {
            stats.pipeline.publish(&counters);
            for p in 0..ports {
                let c = &stats.ports[p];
                c.rx.store(rx[p], Ordering::Relaxed);
                c.tx.store(tx[p], Ordering::Relaxed);
                c.tx_ring_full.store(full[p], Ordering::Relaxed);
                c.fill_ring_empty.store(fill_empty, Ordering::Relaxed);
            }
        } else if poll == PollMode::SleepWhenIdle {
            // poll() returns as soon as a frame arrives; the timeout only
            // bounds how long a stop request waits (the Io shortens it
            // while transmitted frames await completion).
            io.wait(IDLE_WAIT_MS);
            // Receive coalescing (a NIC's rx-usecs): let frames gather for
            // a moment after the first one wakes us, so one wake-up, one
            // pass and one transmit call serve a batch rather than a frame.
            if !spec.coalesce.is_zero() {
                std::thread::sleep(spec.coalesce);
            }
        } else {
            io.kick();
        }
    }
    stats.pipeline.publish(&counters);
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
    mut io: Box<dyn Io + Send>,
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

/// In-memory rings: each port has an RX queue of frames to receive and a
/// TX list of frames sent. Frames live in buffers with headroom like UMEM
/// frames, and are rewritten in place by the pipeline.
#[derive(Debug, Default)]
pub struct MemIo {
    pub rx: Vec<std::collections::VecDeque<Vec<u8>>>,
    pub sent: Vec<Vec<Vec<u8>>>,
    pub headroom: usize,
    /// What `kernel_stats` reports per port (tests of the counters' path).
    pub kernel: Vec<Option<KernelStats>>,
}

impl MemIo {
    pub fn new(ports: usize, headroom: usize) -> MemIo {
        MemIo {
            rx: (0..ports).map(|_| Default::default()).collect(),
            sent: vec![Vec::new(); ports],
            headroom,
            kernel: vec![None; ports],
        }
    }
}

impl Io for MemIo {
    fn ports(&self) -> usize {
        self.rx.len()
    }

    fn rx_process_tx(
        &mut self,
        port: usize,
        max: usize,
        tx: &mut [u64],
        run: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> BatchIo {
        let n = self.rx[port].len().min(max);
        if n == 0 {
            return BatchIo::default();
        }
        let h = self.headroom;
        let mut bufs: Vec<Vec<u8>> = self.rx[port]
            .drain(..n)
            .map(|f| {
                let mut b = vec![0u8; h + f.len()];
                b[h..].copy_from_slice(&f);
                b
            })
            .collect();
        let mut verdicts = vec![Verdict::Drop(orbitmesh_core::stats::DropReason::Malformed); n];
        let mut bounds = vec![(0usize, 0usize); n];
        {
            let mut frames: Vec<Frame<'_>> = bufs
                .iter_mut()
                .map(|b| {
                    let len = b.len() - h;
                    Frame::new(b, h, len).expect("in bounds")
                })
                .collect();
            run(&mut frames, &mut verdicts);
            for (b, f) in bounds.iter_mut().zip(&frames) {
                *b = (f.start(), f.len());
            }
        }
        let mut out = BatchIo {
            rx: n,
            ..Default::default()
        };
        for ((buf, v), (s, l)) in bufs.into_iter().zip(verdicts).zip(bounds) {
            if let Verdict::Forward(p) = v {
                let p = p as usize;
                if p < self.sent.len() {
                    self.sent[p].push(buf[s..s + l].to_vec());
                    tx[p] += 1;
                    out.forwarded += 1;
                }
            }
        }
        out
    }

    fn service(&mut self) -> u64 {
        0
    }

    fn wait(&mut self, _timeout_ms: i32) {
        std::thread::yield_now();
    }

    fn kernel_stats(&self, port: usize) -> Option<KernelStats> {
        self.kernel.get(port).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitmesh_core::fib::{FibBuilder, IlmAction, NextHop, PortConfig};
    use orbitmesh_core::wire::mpls::Lse;

    #[test]
    fn the_worker_loop_forwards_between_memory_rings() {
        let mut b = FibBuilder::new().version(3);
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
        let node = Node::new("t", vec!["a".into(), "b".into()], b.build().unwrap(), 1);
        let mut io = MemIo::new(2, 64);
        let mut frame = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x88, 0x47];
        frame.extend_from_slice(&Lse::new(16001, 0, true, 9).to_bytes());
        frame.extend_from_slice(&[0x45; 8]);
        for _ in 0..100 {
            io.rx[0].push_back(frame.clone());
        }
        io.rx[0].push_back(vec![0; 5]); // malformed: dropped and counted
        let mut alert = frame.clone();
        alert[14..18].copy_from_slice(&Lse::new(1, 0, true, 9).to_bytes());
        io.rx[0].push_back(alert.clone()); // router alert: punted
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
        assert_eq!(io.sent[1].len(), 100);
        let out = &io.sent[1][0];
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
        let mut io = MemIo::new(2, 64);
        io.kernel[1] = Some(k);
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
}
