//! Counters: plain `u64`s owned by one worker on the fast path, published to
//! readers once per batch, summed on read (the DPDK per-lcore pattern).
//!
//! The pipeline bumps a [`Counters`] that only its worker touches; the worker
//! then copies it into its cache-padded [`SharedCounters`] with relaxed
//! stores (single writer, so no read-modify-write and no shared cache line
//! written by two cores). A reader (the control socket) sums every worker's
//! `SharedCounters` into one [`Counters`].

use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the pipeline dropped a frame. Every drop has exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Truncated or inconsistent headers (Ethernet, label stack, IP lengths).
    Malformed,
    /// An EtherType the relay does not forward (the XDP program passes those
    /// to the kernel, so this counts frames that bypassed it).
    UnsupportedEthertype,
    /// MPLS TTL or IP TTL / hop limit <= 1 on arrival (RFC 3032 2.4.1, RFC 1812 5.3.1).
    TtlExpired,
    /// Top label not bound in the ILM.
    NoLabelRoute,
    /// No prefix covers the destination address.
    NoIpRoute,
    /// Reserved label 4-6, 8-12 or 15 (RFC 7274).
    ReservedLabel,
    /// Label 3 (implicit null) seen on the wire (RFC 3032 2.1).
    ImplicitNullOnWire,
    /// The chosen port, its backup and every other path of the group are down.
    PortDown,
    /// The rewritten packet exceeds the output port's MTU.
    Mtu,
    /// Not enough headroom in the buffer for the labels to push.
    NoHeadroom,
    /// More labels popped than the dataplane walks (mpls::MAX_DEPTH).
    StackTooDeep,
}

impl DropReason {
    pub const COUNT: usize = 11;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Malformed,
        DropReason::UnsupportedEthertype,
        DropReason::TtlExpired,
        DropReason::NoLabelRoute,
        DropReason::NoIpRoute,
        DropReason::ReservedLabel,
        DropReason::ImplicitNullOnWire,
        DropReason::PortDown,
        DropReason::Mtu,
        DropReason::NoHeadroom,
        DropReason::StackTooDeep,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::NoLabelRoute => "no_label_route",
            DropReason::NoIpRoute => "no_ip_route",
            DropReason::ReservedLabel => "reserved_label",
            DropReason::ImplicitNullOnWire => "implicit_null_on_wire",
            DropReason::PortDown => "port_down",
            DropReason::Mtu => "mtu_exceeded",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::StackTooDeep => "stack_too_deep",
        }
    }
}

/// Why the pipeline handed a frame to the host (or the punt policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PuntReason {
    /// Label 1, router alert (RFC 3032).
    RouterAlert,
    /// Label 13 (GAL, RFC 5586) or 14 (OAM alert, RFC 3429).
    Oam,
}

impl PuntReason {
    pub const COUNT: usize = 2;
    pub const ALL: [PuntReason; Self::COUNT] = [PuntReason::RouterAlert, PuntReason::Oam];

    pub const fn name(self) -> &'static str {
        match self {
            PuntReason::RouterAlert => "router_alert",
            PuntReason::Oam => "oam",
        }
    }
}

/// One worker's counters (or a sum of several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to the pipeline.
    pub rx: u64,
    /// Frames given a port to leave by.
    pub forwarded: u64,
    /// Of those, frames sent to a backup (or another ECMP) next hop because
    /// the chosen port was down (fast reroute).
    pub backup_used: u64,
    pub drops: [u64; DropReason::COUNT],
    pub punts: [u64; PuntReason::COUNT],
}

impl Counters {
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub fn punt_count(&self, r: PuntReason) -> u64 {
        self.punts[r as usize]
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn punted(&self) -> u64 {
        self.punts.iter().sum()
    }

    pub fn add(&mut self, o: &Counters) {
        self.rx += o.rx;
        self.forwarded += o.forwarded;
        self.backup_used += o.backup_used;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        for (a, b) in self.punts.iter_mut().zip(o.punts) {
            *a += b;
        }
    }
}

const N: usize = 3 + DropReason::COUNT + PuntReason::COUNT;

/// A worker's counters as readers see them: written by that worker only.
#[derive(Debug)]
pub struct SharedCounters {
    cells: CachePadded<[AtomicU64; N]>,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            cells: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl SharedCounters {
    /// Called by the owning worker once per batch.
    #[inline]
    pub fn publish(&self, c: &Counters) {
        let vals = [c.rx, c.forwarded, c.backup_used];
        for (cell, v) in self
            .cells
            .iter()
            .zip(vals.iter().chain(&c.drops).chain(&c.punts))
        {
            cell.store(*v, Ordering::Relaxed);
        }
    }

    pub fn read(&self) -> Counters {
        let v: Vec<u64> = self
            .cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let mut c = Counters {
            rx: v[0],
            forwarded: v[1],
            backup_used: v[2],
            ..Counters::default()
        };
        c.drops.copy_from_slice(&v[3..3 + DropReason::COUNT]);
        c.punts.copy_from_slice(&v[3 + DropReason::COUNT..]);
        c
    }

    /// The sum over several workers.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a SharedCounters>) -> Counters {
        let mut t = Counters::default();
        for s in all {
            t.add(&s.read());
        }
        t
    }
}

/// One reading of a socket's kernel statistics (or their sum over workers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStats {
    pub rx_ring_full: u64,
    pub rx_fill_empty: u64,
    pub rx_dropped: u64,
    pub invalid_descs: u64,
}

impl KernelStats {
    /// Frames the kernel dropped before the relay saw them (or, for invalid
    /// TX descriptors, after it sent them).
    pub fn total(&self) -> u64 {
        self.rx_ring_full + self.rx_fill_empty + self.rx_dropped + self.invalid_descs
    }

    pub fn add(&mut self, o: &KernelStats) {
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_empty += o.rx_fill_empty;
        self.rx_dropped += o.rx_dropped;
        self.invalid_descs += o.invalid_descs;
    }

    /// The growth since `base` (a reading taken earlier).
    pub fn since(&self, base: &KernelStats) -> KernelStats {
        KernelStats {
            rx_ring_full: self.rx_ring_full.saturating_sub(base.rx_ring_full),
            rx_fill_empty: self.rx_fill_empty.saturating_sub(base.rx_fill_empty),
            rx_dropped: self.rx_dropped.saturating_sub(base.rx_dropped),
            invalid_descs: self.invalid_descs.saturating_sub(base.invalid_descs),
        }
    }
}

/// One port's I/O counters summed over workers (what the dataplane's
/// per-worker port counters add up to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortTotals {
    pub rx: u64,
    pub tx: u64,
    /// Bytes of the frames in `rx` / `tx` (Ethernet header through
    /// payload, no FCS); 0 from a dataplane that predates them.
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
    pub tx_ring_full: u64,
    pub fill_ring_empty: u64,
    /// Kernel drops on the port's sockets (see [`KernelStats`]).
    #[serde(default)]
    pub kernel: KernelStats,
}

impl PortTotals {
    /// The growth since `base` (a reading taken earlier).
    pub fn since(&self, base: &PortTotals) -> PortTotals {
        PortTotals {
            rx: self.rx.saturating_sub(base.rx),
            tx: self.tx.saturating_sub(base.tx),
            rx_bytes: self.rx_bytes.saturating_sub(base.rx_bytes),
            tx_bytes: self.tx_bytes.saturating_sub(base.tx_bytes),
            tx_ring_full: self.tx_ring_full.saturating_sub(base.tx_ring_full),
            fill_ring_empty: self.fill_ring_empty.saturating_sub(base.fill_ring_empty),
            kernel: self.kernel.since(&base.kernel),
        }
    }
}

/// The XDP transit fast path's counters (bpf/fast_maps.h `struct
/// fast_counters`, per CPU in the kernel, summed by the dataplane), in the
/// form the control protocol and the metrics endpoint carry them.
///
/// Frames the fast path forwards or drops never reach an AF_XDP worker, so
/// they add to the workers' [`Counters`] (and to the ports' `tx`); frames it
/// punts (`punted`: every frame it hands to the steering program, for the
/// workers, which count them again when they receive them, or for the
/// kernel: ARP, neighbour discovery, traffic to the box) are never added to
/// a total.
///
/// On the wire `drops` is a list of `[reason, value]` pairs named by
/// [`DropReason::name`], as the `stats` counters are: a reason this build
/// does not know (a newer dataplane's) is skipped when read, and a reason
/// absent (an older dataplane's) reads as 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastPathCounters {
    /// Frames the fast path sent out of a port (`bpf_redirect_map`).
    pub forwarded: u64,
    /// Of those, frames sent to a backup (or another ECMP) next hop because
    /// the chosen port was down.
    pub backup_used: u64,
    /// Frames handed to the slow path (the steering program: to the AF_XDP
    /// workers, which count them again, or to the kernel).
    pub punted: u64,
    /// Frames the fast path dropped, by [`DropReason`].
    #[serde(with = "drops_by_name")]
    pub drops: [u64; DropReason::COUNT],
    /// Frames forwarded per port (the FIB's port index); one per port of
    /// the dataplane.
    #[serde(default)]
    pub tx: Vec<u64>,
    /// Their bytes as sent, per port (empty from a dataplane that predates
    /// them, as are the three below).
    #[serde(default)]
    pub tx_bytes: Vec<u64>,
    /// Frames the fast path finished (forwarded or dropped), per port they
    /// came in on, and their bytes as received. Punted frames are not in
    /// them: the AF_XDP workers count those in the ports' `rx`.
    #[serde(default)]
    pub rx: Vec<u64>,
    #[serde(default)]
    pub rx_bytes: Vec<u64>,
    /// Frames finished that came in on an interface the fast path could
    /// not name (see bpf/fast_maps.h, `rx_ports`).
    #[serde(default)]
    pub rx_unknown_port: u64,
}

impl FastPathCounters {
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Frames forwarded out of port `p` (0 for a port beyond `tx`; so
    /// for the three below).
    pub fn port_tx(&self, p: usize) -> u64 {
        self.tx.get(p).copied().unwrap_or(0)
    }

    pub fn port_tx_bytes(&self, p: usize) -> u64 {
        self.tx_bytes.get(p).copied().unwrap_or(0)
    }

    /// Frames finished (forwarded or dropped) that came in on port `p`.
    pub fn port_rx(&self, p: usize) -> u64 {
        self.rx.get(p).copied().unwrap_or(0)
    }

    pub fn port_rx_bytes(&self, p: usize) -> u64 {
        self.rx_bytes.get(p).copied().unwrap_or(0)
    }

    /// The growth since `base` (a reading taken earlier); a port `base`
    /// does not have counts from 0.
    pub fn since(&self, base: &FastPathCounters) -> FastPathCounters {
        let mut drops = self.drops;
        for (d, b) in drops.iter_mut().zip(base.drops) {
            *d = d.saturating_sub(b);
        }
        let each = |now: &[u64], at: fn(&FastPathCounters, usize) -> u64| -> Vec<u64> {
            (0..now.len())
                .map(|p| now[p].saturating_sub(at(base, p)))
                .collect()
        };
        FastPathCounters {
            forwarded: self.forwarded.saturating_sub(base.forwarded),
            backup_used: self.backup_used.saturating_sub(base.backup_used),
            punted: self.punted.saturating_sub(base.punted),
            drops,
            tx: each(&self.tx, FastPathCounters::port_tx),
            tx_bytes: each(&self.tx_bytes, FastPathCounters::port_tx_bytes),
            rx: each(&self.rx, FastPathCounters::port_rx),
            rx_bytes: each(&self.rx_bytes, FastPathCounters::port_rx_bytes),
            rx_unknown_port: self.rx_unknown_port.saturating_sub(base.rx_unknown_port),
        }
    }
}

/// [`FastPathCounters::drops`] on the wire: `[name, value]` pairs.
mod drops_by_name {
    use super::DropReason;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &[u64; DropReason::COUNT], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(DropReason::ALL.iter().map(|&r| (r.name(), d[r as usize])))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u64; DropReason::COUNT], D::Error> {
        let mut out = [0; DropReason::COUNT];
        for (name, v) in Vec::<(String, u64)>::deserialize(d)? {
            if let Some(r) = DropReason::ALL.iter().find(|r| r.name() == name) {
                out[*r as usize] = v;
            }
        }
        Ok(out)
    }
}

/// Upper bounds (ns, inclusive) of [`LatenessHistogram`]'s buckets, from
/// 100 µs to 10 s; a last bucket (+Inf) takes the rest.
pub const LATENESS_BOUNDS_NS: [u64; 11] = [
    100_000,
    1_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// How late events came after their instant (a staged FIB's activation):
/// a Prometheus-style histogram of counts per bucket, written off the fast
/// path (one writer at a time, relaxed atomics), read by the metrics
/// endpoint.
#[derive(Debug, Default)]
pub struct LatenessHistogram {
    /// Non-cumulative counts: `buckets[i]` holds observations in
    /// (`LATENESS_BOUNDS_NS[i-1]`, `LATENESS_BOUNDS_NS[i]`]; the last, above
    /// every bound.
    buckets: [AtomicU64; LATENESS_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// One reading of a [`LatenessHistogram`]: cumulative counts per bound
/// (the last is the total count), and the sum in ns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatenessReading {
    pub cumulative: [u64; LATENESS_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl LatenessHistogram {
    pub fn observe(&self, late_ns: u64) {
        let i = LATENESS_BOUNDS_NS.partition_point(|&b| b < late_ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(late_ns, Ordering::Relaxed);
    }

    pub fn read(&self) -> LatenessReading {
        let mut cumulative = [0; LATENESS_BOUNDS_NS.len() + 1];
        let mut acc = 0;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            acc += b.load(Ordering::Relaxed);
            *c = acc;
        }
        LatenessReading {
            cumulative,
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_lands_in_the_bucket_whose_bound_it_does_not_exceed() {
        let h = LatenessHistogram::default();
        for ns in [0, 100_000, 100_001, 20_000_000, 60_000_000_000] {
            h.observe(ns);
        }
        let r = h.read();
        assert_eq!(r.cumulative[0], 2, "0 and exactly 100 µs");
        assert_eq!(r.cumulative[1], 3);
        assert_eq!(r.cumulative[4], 4, "20 ms is in the 20 ms bucket");
        assert_eq!(r.cumulative[10], 4);
        assert_eq!(r.cumulative[11], 5, "one above every bound");
        assert_eq!(r.sum_ns, 60_020_200_001);
    }

    #[test]
    fn fast_path_counters_since_a_baseline_and_on_the_wire() {
        let mut base = FastPathCounters {
            forwarded: 10,
            punted: 4,
            tx: vec![6, 4],
            rx: vec![5, 5],
            rx_bytes: vec![500, 640],
            rx_unknown_port: 1,
            ..Default::default()
        };
        base.drops[DropReason::TtlExpired as usize] = 1;
        let mut now = FastPathCounters {
            forwarded: 25,
            backup_used: 2,
            punted: 9,
            tx: vec![16, 8, 1],
            tx_bytes: vec![1600, 800, 64],
            rx: vec![9, 14, 2],
            rx_bytes: vec![900, 1792, 128],
            rx_unknown_port: 4,
            ..Default::default()
        };
        now.drops[DropReason::TtlExpired as usize] = 3;
        let d = now.since(&base);
        assert_eq!((d.forwarded, d.backup_used, d.punted), (15, 2, 5));
        assert_eq!(d.tx, [10, 4, 1], "a port the baseline lacks counts from 0");
        assert_eq!((d.drop_count(DropReason::TtlExpired), d.dropped()), (2, 2));
        assert_eq!(base.port_tx(7), 0);
        assert_eq!(d.tx_bytes, [1600, 800, 64], "no baseline: from 0");
        assert_eq!(
            (&d.rx[..], &d.rx_bytes[..]),
            (&[4, 9, 2][..], &[400, 1152, 128][..])
        );
        assert_eq!(d.rx_unknown_port, 3);
        assert_eq!(
            (d.port_rx(1), d.port_rx_bytes(2), d.port_rx(3)),
            (9, 128, 0)
        );

        let json = serde_json::to_string(&now).unwrap();
        assert!(json.contains(r#"["ttl_expired",3]"#), "{json}");
        assert_eq!(
            serde_json::from_str::<FastPathCounters>(&json).unwrap(),
            now
        );
        // A newer dataplane's reason is skipped; a missing one reads 0.
        let newer = r#"{"forwarded":1,"backup_used":0,"punted":0,
            "drops":[["mtu_exceeded",2],["warp_core_breach",9]],"tx":[1]}"#;
        let n: FastPathCounters = serde_json::from_str(newer).unwrap();
        assert_eq!((n.drop_count(DropReason::Mtu), n.dropped()), (2, 2));
        // An older dataplane's reading has no byte or rx counters: 0.
        assert_eq!(
            (n.port_tx_bytes(0), n.port_rx(0), n.rx_unknown_port),
            (0, 0, 0)
        );
    }

    #[test]
    fn publish_read_and_sum() {
        let mut c = Counters {
            rx: 10,
            forwarded: 7,
            backup_used: 1,
            ..Default::default()
        };
        c.drops[DropReason::Mtu as usize] = 2;
        c.punts[PuntReason::Oam as usize] = 1;
        let a = SharedCounters::default();
        let b = SharedCounters::default();
        a.publish(&c);
        b.publish(&c);
        assert_eq!(a.read(), c);
        let s = SharedCounters::sum([&a, &b]);
        assert_eq!(s.rx, 20);
        assert_eq!(s.drop_count(DropReason::Mtu), 4);
        assert_eq!(s.punted(), 2);
        assert_eq!(s.dropped(), 4);
        assert_eq!(DropReason::ALL.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
