//! The state one dataplane process shares between its workers, its control
//! socket and its port watcher: the FIB handle, the ports, their liveness,
//! and every worker's counters.
//!
//! Workers only read shared state here (the FIB through the epoch-protected
//! handle, liveness as one relaxed load per batch) and only write their own
//! cache-padded counters, so nothing on the fast path is contended.

use crate::publish::FibHandle;
use crate::sys::xsk;
use crossbeam_utils::CachePadded;
use orbitmesh_core::fib::{FibError, FibSnapshot, FibSpec, MAX_PORTS};
use orbitmesh_core::stats::{Counters, DropReason, SharedCounters};
use orbitmesh_core::stats::{FastPathCounters, KernelStats, PortTotals};
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-port counters of one worker (I/O side; the pipeline's are in
/// [`SharedCounters`]).
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Bytes of the frames counted in `rx` / `tx` (Ethernet header to the
    /// end of the payload, as on the ring: no preamble, no FCS).
    pub rx_bytes: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Frames that arrived on this port and that the pipeline dropped, by
    /// reason (the sum over ports is the pipeline's drop counters).
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Frames dropped because the TX ring was full.
    pub tx_ring_full: AtomicU64,
    /// Times the fill ring could not be refilled (no free frames).
    pub fill_ring_empty: AtomicU64,
    /// The kernel's own drops on this port's socket (XDP_STATISTICS), read
    /// by the worker every [`KERNEL_STATS_EVERY_NS`] off the per-packet path.
    pub kernel: KernelCounters,
}

/// How often a worker reads its sockets' kernel statistics.
pub const KERNEL_STATS_EVERY_NS: u64 = 100_000_000;

/// What the kernel counts on an AF_XDP socket (getsockopt XDP_STATISTICS):
/// frames it could not hand to the relay. Absolute values since the socket
/// was bound, stored as read.
#[derive(Debug, Default)]
pub struct KernelCounters {
    /// Received frames dropped because the socket's RX ring was full (the
    /// worker did not keep up).
    pub rx_ring_full: AtomicU64,
    /// Received frames dropped because the fill ring held no free frame.
    pub rx_fill_empty: AtomicU64,
    /// Received frames dropped for other reasons (e.g. larger than a frame).
    pub rx_dropped: AtomicU64,
    /// RX and TX descriptors the kernel refused as invalid.
    pub invalid_descs: AtomicU64,
}

impl KernelCounters {
    pub fn store(&self, s: &KernelStats) {
        self.rx_ring_full.store(s.rx_ring_full, Ordering::Relaxed);
        self.rx_fill_empty.store(s.rx_fill_empty, Ordering::Relaxed);
        self.rx_dropped.store(s.rx_dropped, Ordering::Relaxed);
        self.invalid_descs.store(s.invalid_descs, Ordering::Relaxed);
    }

    pub fn load(&self) -> KernelStats {
        KernelStats {
            rx_ring_full: self.rx_ring_full.load(Ordering::Relaxed),
            rx_fill_empty: self.rx_fill_empty.load(Ordering::Relaxed),
            rx_dropped: self.rx_dropped.load(Ordering::Relaxed),
            invalid_descs: self.invalid_descs.load(Ordering::Relaxed),
        }
    }
}

/// Everything one worker publishes.
#[derive(Debug)]
pub struct WorkerStats {
    pub pipeline: SharedCounters,
    pub ports: Box<[CachePadded<PortCounters>]>,
    /// Version of the FIB the worker's last batch used.
    pub fib_version: AtomicU64,
}

impl WorkerStats {
    pub fn new(ports: usize) -> WorkerStats {
        WorkerStats {
            pipeline: SharedCounters::default(),
            ports: (0..ports)
                .map(|_| CachePadded::new(PortCounters::default()))
                .collect(),
            fib_version: AtomicU64::new(0),
        }
    }
}

/// Port liveness: a port is up when its carrier is up and an operator has
/// not set it administratively down. Workers read [`Liveness::mask`] once
/// per batch. A port whose interface has gone (deleted under the running
/// dataplane) also has its carrier down, for good.
#[derive(Debug)]
pub struct Liveness {
    carrier: AtomicU64,
    admin: AtomicU64,
    gone: AtomicU64,
}

impl Liveness {
    pub fn all_up() -> Liveness {
        Liveness {
            carrier: AtomicU64::new(u64::MAX),
            admin: AtomicU64::new(u64::MAX),
            gone: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    pub fn mask(&self) -> u64 {
        self.carrier.load(Ordering::Relaxed) & self.admin.load(Ordering::Relaxed)
    }

    fn set(bits: &AtomicU64, port: usize, up: bool) {
        if up {
            bits.fetch_or(1 << port, Ordering::Relaxed);
        } else {
            bits.fetch_and(!(1 << port), Ordering::Relaxed);
        }
    }

    pub fn set_carrier(&self, port: usize, up: bool) {
        Self::set(&self.carrier, port, up)
    }

    pub fn set_admin(&self, port: usize, up: bool) {
        Self::set(&self.admin, port, up)
    }

    pub fn carrier(&self, port: usize) -> bool {
        self.carrier.load(Ordering::Relaxed) >> port & 1 == 1
    }

    pub fn admin(&self, port: usize) -> bool {
        self.admin.load(Ordering::Relaxed) >> port & 1 == 1
    }

    /// Marks the port's interface gone: carrier down, and stays so.
    pub fn set_gone(&self, port: usize) {
        Self::set(&self.gone, port, true);
        self.set_carrier(port, false);
    }

    /// True once the port's interface has gone (see [`crate::watch`]).
    pub fn gone(&self, port: usize) -> bool {
        self.gone.load(Ordering::Relaxed) >> port & 1 == 1
    }
}

/// Builds a FIB for a dataplane with these ports: the path of every FIB the
/// dataplane installs (at start, and on load and stage). On top of the FIB's
/// own checks, which an offline `fib check` runs too, it refuses a port MTU
/// the AF_XDP buffers cannot carry ([`xsk::MAX_L3`]): frames that long would
/// be dropped by the kernel, unseen.
pub fn build_fib(spec: &FibSpec, port_names: &[String]) -> Result<FibSnapshot, FibError> {
    if let Some(p) = spec.ports.iter().find(|p| p.mtu > xsk::MAX_L3) {
        return Err(FibError {
            entry: format!("port {:?}", p.name),
            field: "mtu",
            problem: format!(
                "{} exceeds {}, the largest L3 packet this dataplane's AF_XDP buffers carry \
                 ({}-byte UMEM chunks, less {} bytes of kernel headroom and a VLAN-tagged \
                 Ethernet header)",
                p.mtu,
                xsk::MAX_L3,
                xsk::CHUNK_SIZE,
                xsk::XDP_PACKET_HEADROOM,
            ),
        });
    }
    // The LPM's 64 MiB table is faulted in as huge pages (see lpm).
    orbitmesh_core::fib::lpm::set_large_table_advice(crate::sys::mem::advise_huge_pages::<u32>);
    spec.build_for_ports(port_names)
}

/// Frames handed to the host (punt policy "host"): slow path, counted here.
#[derive(Debug, Default)]
pub struct PuntCounters {
    /// Written to the TAP interface.
    pub delivered: AtomicU64,
    /// Dropped because the punt queue was full (the host is not keeping up).
    pub queue_full: AtomicU64,
    /// Dropped because writing to the TAP interface failed.
    pub write_failed: AtomicU64,
}

/// The XDP fast path's counters as the control socket and the metrics
/// endpoint read them: housekeeping sums the kernel's per-CPU map and
/// stores the sum here every 20 ms while the fast path is on. One writer,
/// rare readers, never a worker: a short lock, off the fast path.
#[derive(Debug, Default)]
pub struct FastPathStats {
    last: std::sync::Mutex<Option<FastPathCounters>>,
    off: std::sync::Mutex<Option<String>>,
}

impl FastPathStats {
    /// Records the latest reading of the kernel's per-CPU sum (totals
    /// since the program was loaded) for this node's `ports`, in place: the
    /// per-port vectors are reused, not allocated again every 20 ms.
    pub fn store(&self, c: &crate::sys::fast_maps::FastCounters, ports: usize) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        fast_path_counters_into(c, ports, last.get_or_insert_with(Default::default));
    }

    /// Why the loaded fast path switches nothing now (None: it runs).
    pub fn set_off(&self, why: Option<&str>) {
        let mut off = self.off.lock().unwrap_or_else(|p| p.into_inner());
        if off.as_deref() != why {
            *off = why.map(str::to_string);
        }
    }

    pub fn off(&self) -> Option<String> {
        self.off.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest reading; `None` until the first store (the fast path is
    /// off).
    pub fn load(&self) -> Option<FastPathCounters> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The kernel's per-CPU sum ([`crate::sys::fast_maps::FastPath`]'s
/// counters) as [`FastPathStats`] keeps it: the drop slots the
/// pipeline names (the program writes only those, fast_maps.rs asserts
/// `DropReason::COUNT <= FAST_DROP_SLOTS`) and the first `ports` slots of
/// the per-port counters.
pub fn fast_path_counters(
    c: &crate::sys::fast_maps::FastCounters,
    ports: usize,
) -> FastPathCounters {
    let mut out = FastPathCounters::default();
    fast_path_counters_into(c, ports, &mut out);
    out
}

/// As [`fast_path_counters`], into `out` (its vectors reused). Every field
/// is written: `out` is destructured whole, so a field added later cannot
/// be missed.
fn fast_path_counters_into(
    c: &crate::sys::fast_maps::FastCounters,
    ports: usize,
    out: &mut FastPathCounters,
) {
    let FastPathCounters {
        forwarded,
        backup_used,
        punted,
        drops,
        tx,
        tx_bytes,
        rx,
        rx_bytes,
        rx_unknown_port,
    } = out;
    let n = ports.min(crate::sys::fast_maps::FAST_MAX_PORTS);
    (*forwarded, *backup_used, *punted) = (c.forwarded, c.backup_used, c.punted);
    drops.copy_from_slice(&c.drops[..DropReason::COUNT]);
    for (v, from) in [
        (tx, &c.tx[..]),
        (tx_bytes, &c.tx_bytes),
        (rx, &c.rx),
        (rx_bytes, &c.rx_bytes),
    ] {
        v.clear();
        v.extend_from_slice(&from[..n]);
    }
    // The slot for interfaces rx_ports does not name, and any beyond this
    // dataplane's ports (none are registered there).
    *rx_unknown_port = c.rx[n..].iter().sum();
}

/// One dataplane's shared state.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub fib: FibHandle,
    /// The schedule this node follows on its own, if any.
    pub schedule: crate::schedule::Held,
    pub port_names: Vec<String>,
    pub live: Liveness,
    pub workers: Vec<WorkerStats>,
    pub punt: PuntCounters,
    /// Emulation only: hold frames sent on port p for `delay_ns[p]` ns
    /// (propagation delay of the link it stands for); 0 = send at once.
    pub delay_ns: Vec<AtomicU64>,
    /// Emulation only: the link behind port p is gone (out of range in
    /// orbit): the delay line drops what is sent on it.
    pub link_gone: Vec<std::sync::atomic::AtomicBool>,
    /// Frames dropped on each port while its link was gone (added once per
    /// batch by the delay line, emulation only).
    pub gone_drops: Vec<AtomicU64>,
    /// The raw totals when `stats` counters were last cleared
    /// (`ClearCounters`); `stats` reports the growth since. Only the control
    /// server takes this lock, never a worker.
    pub stats_baseline: std::sync::Mutex<Option<orbitmesh_core::protocol::StatsInfo>>,
    /// Whether the workers' I/O is wrapped in a
    /// [`crate::delay_line::DelayLine`] that reads `delay_ns` (emulation
    /// only; otherwise a delay is refused, not silently ignored).
    pub delay_line: bool,
    /// The XDP fast path's counters, when it runs (see [`FastPathStats`]).
    pub fast: FastPathStats,
}

impl crate::schedule::Forwarder for Node {
    fn name(&self) -> &str {
        &self.name
    }
    fn fib(&self) -> &FibHandle {
        &self.fib
    }
    fn build_fib(&self, spec: &FibSpec) -> Result<FibSnapshot, FibError> {
        Node::build_fib(self, spec)
    }
    fn held(&self) -> &crate::schedule::Held {
        &self.schedule
    }
}

impl Node {
    pub fn new(name: &str, port_names: Vec<String>, fib: FibSnapshot, workers: usize) -> Node {
        assert!(port_names.len() <= MAX_PORTS);
        let n = port_names.len();
        Node {
            name: name.to_string(),
            fib: FibHandle::new(fib),
            schedule: crate::schedule::Held::default(),
            port_names,
            live: Liveness::all_up(),
            workers: (0..workers).map(|_| WorkerStats::new(n)).collect(),
            punt: PuntCounters::default(),
            delay_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            link_gone: (0..n)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            gone_drops: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stats_baseline: std::sync::Mutex::new(None),
            delay_line: false,
            fast: FastPathStats::default(),
        }
    }

    /// [`build_fib`] for this node's ports.
    pub fn build_fib(&self, spec: &FibSpec) -> Result<FibSnapshot, FibError> {
        build_fib(spec, &self.port_names)
    }

    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.port_names.iter().position(|p| p == name)
    }

    /// Pipeline counters summed over workers.
    pub fn counters(&self) -> Counters {
        SharedCounters::sum(self.workers.iter().map(|w| &w.pipeline))
    }

    /// Per-port I/O counters summed over workers.
    pub fn port_totals(&self) -> Vec<PortTotals> {
        (0..self.port_names.len())
            .map(|p| {
                let mut t = PortTotals::default();
                for w in &self.workers {
                    let c = &w.ports[p];
                    t.rx += c.rx.load(Ordering::Relaxed);
                    t.tx += c.tx.load(Ordering::Relaxed);
                    t.rx_bytes += c.rx_bytes.load(Ordering::Relaxed);
                    t.tx_bytes += c.tx_bytes.load(Ordering::Relaxed);
                    t.tx_ring_full += c.tx_ring_full.load(Ordering::Relaxed);
                    t.fill_ring_empty += c.fill_ring_empty.load(Ordering::Relaxed);
                    t.kernel.add(&c.kernel.load());
                }
                t
            })
            .collect()
    }

    /// Port `port`'s drops by reason (frames that arrived on it), summed
    /// over workers.
    pub fn port_drops(&self, port: usize) -> [u64; DropReason::COUNT] {
        let mut d = [0; DropReason::COUNT];
        for w in &self.workers {
            for (t, c) in d.iter_mut().zip(&w.ports[port].drops) {
                *t += c.load(Ordering::Relaxed);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::handle;
    use orbitmesh_core::protocol::{Request, Response};

    /// One port with this MTU, and a label switched to it.
    fn spec(version: u64, mtu: u16) -> FibSpec {
        FibSpec::parse(&format!(
            "version = {version}\n[[ports]]\nname = \"isl0\"\nmtu = {mtu}\n\
             [[next_hops]]\nname = \"n\"\nport = \"isl0\"\n\
             dst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n\
             [[labels]]\nlabel = 16000\naction = \"swap\"\nnext_hop = \"n\"\n"
        ))
        .unwrap()
    }

    fn node() -> Node {
        Node::new("t", vec!["isl0".into()], FibSnapshot::empty(1), 1)
    }

    fn versions(node: &Node) -> (u64, Option<u64>) {
        let Response::Version(v) = handle(node, Request::Version) else {
            panic!("no version reply")
        };
        (v.active, v.staged.map(|s| s.0))
    }

    #[test]
    fn a_port_mtu_the_umem_cannot_carry_is_refused_on_load_and_stage() {
        let node = node();
        let want = "port \"isl0\": mtu: 9000 exceeds 1774, the largest L3 packet this \
                    dataplane's AF_XDP buffers carry (2048-byte UMEM chunks";
        for req in [
            Request::LoadFib {
                fib: spec(2, 9000),
                allow_empty: false,
            },
            Request::StageFib {
                fib: spec(2, 9000),
                at_ns: u64::MAX,
                allow_empty: false,
            },
        ] {
            match handle(&node, req) {
                Response::Error { message } => assert!(message.contains(want), "{message}"),
                r => panic!("accepted: {r:?}"),
            }
        }
        assert_eq!(versions(&node), (1, None), "the running FIB stays");
    }

    #[test]
    fn a_port_mtu_of_exactly_the_limit_is_accepted() {
        let node = node();
        assert_eq!(xsk::MAX_L3, 1774);
        let r = handle(
            &node,
            Request::LoadFib {
                fib: spec(2, xsk::MAX_L3),
                allow_empty: false,
            },
        );
        assert_eq!(r, Response::Ok { version: 2 });
        assert_eq!(node.fib.current().port_mtu(0), Some(xsk::MAX_L3));
    }

    #[test]
    fn fast_path_stats_are_none_until_stored_then_the_last_store() {
        let f = FastPathStats::default();
        assert_eq!(f.load(), None);
        let mut k = crate::sys::fast_maps::FastCounters {
            forwarded: 5,
            punted: 1,
            ..Default::default()
        };
        k.tx[..3].copy_from_slice(&[2, 3, 7]);
        k.rx[1] = 8;
        k.drops[DropReason::Mtu as usize] = 4;
        f.store(&k, 3);
        assert_eq!(f.load(), Some(fast_path_counters(&k, 3)));
        let mut k = crate::sys::fast_maps::FastCounters {
            forwarded: 9,
            backup_used: 2,
            ..Default::default()
        };
        k.tx[..2].copy_from_slice(&[4, 5]);
        k.rx[2] = 6;
        f.store(&k, 2);
        let d = f.load().unwrap();
        assert_eq!(d, fast_path_counters(&k, 2), "every field replaced");
        assert_eq!((d.tx.len(), d.rx_unknown_port, d.punted), (2, 6, 0));
        assert_eq!(d.drops, [0; DropReason::COUNT]);
    }

    #[test]
    fn the_kernels_sum_keeps_the_named_reasons_and_this_nodes_ports() {
        let mut k = crate::sys::fast_maps::FastCounters {
            forwarded: 7,
            backup_used: 1,
            punted: 2,
            ..Default::default()
        };
        k.drops[DropReason::TtlExpired as usize] = 3;
        k.tx[0] = 4;
        k.tx[1] = 3;
        let c = fast_path_counters(&k, 2);
        assert_eq!((c.forwarded, c.backup_used, c.punted), (7, 1, 2));
        assert_eq!(c.drop_count(DropReason::TtlExpired), 3);
        assert_eq!(c.dropped(), 3);
        assert_eq!(c.tx, [4, 3]);
    }

    #[test]
    fn clearing_counters_rebases_stats_but_not_the_metrics() {
        let node = node();
        let port = &node.workers[0].ports[0];
        port.rx.store(10, Ordering::Relaxed);
        port.rx_bytes.store(640, Ordering::Relaxed);
        let mut c = Counters {
            rx: 10,
            ..Counters::default()
        };
        node.workers[0].pipeline.publish(&c);
        let stats = |node: &Node| match handle(node, Request::Stats) {
            Response::Stats(s) => s,
            r => panic!("{r:?}"),
        };
        assert_eq!(stats(&node).cleared_at_ns, None);
        assert_eq!(
            handle(&node, Request::ClearCounters),
            Response::Ok { version: 1 }
        );
        let s = stats(&node);
        assert!(s.cleared_at_ns.is_some());
        assert_eq!(
            (s.ports[0].counters.rx, s.ports[0].counters.rx_bytes),
            (0, 0)
        );
        assert_eq!(s.counters.get(orbitmesh_core::protocol::Counter::Rx), 0);
        // The workers count on, untouched; stats shows the growth.
        port.rx.store(13, Ordering::Relaxed);
        port.rx_bytes.store(832, Ordering::Relaxed);
        c.rx = 13;
        node.workers[0].pipeline.publish(&c);
        let s = stats(&node);
        assert_eq!(
            (s.ports[0].counters.rx, s.ports[0].counters.rx_bytes),
            (3, 192)
        );
        assert_eq!(s.counters.get(orbitmesh_core::protocol::Counter::Rx), 3);
        // Scrapers keep the raw totals: they never go backwards.
        let m = crate::metrics::render(&node);
        assert!(
            m.contains("orbitmesh_port_rx_bytes_total{port=\"isl0\"} 832\n"),
            "{m}"
        );
        assert!(m.contains("orbitmesh_rx_packets_total 13\n"), "{m}");
    }

    #[test]
    fn the_offline_check_keeps_the_protocol_bound() {
        // No dataplane, no UMEM: `fib check` still accepts jumbo MTUs.
        let f = spec(2, 9000).build_for_ports(&["isl0".into()]).unwrap();
        assert_eq!(f.port_mtu(0), Some(9000));
    }
}
