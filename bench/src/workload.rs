//! Benchmark workloads: FIBs and pools of template frames.

use orbitmesh_core::fib::{FibBuilder, FibSnapshot, IlmAction, NextHop, NhgId, PortConfig};
use orbitmesh_core::pipeline::{process, Frame, Verdict};
use orbitmesh_core::stats::{Counters, DropReason};
use orbitmesh_core::wire::ethernet::{self, ethertype};
use orbitmesh_core::wire::ipv4;
use orbitmesh_core::wire::mpls::{label, Lse};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smallvec::SmallVec;

/// First label of the node-SID block (SRGB base, as in the label plan).
pub const SRGB: u32 = 16000;
/// Frames in a template pool: large enough that consecutive batches touch
/// different labels and addresses.
pub const POOL: usize = 8192;
/// Headroom in each buffer, as AF_XDP gives.
pub const HEADROOM: usize = 256;
/// Frame size on the wire (64-byte frames without the FCS).
pub const FRAME: usize = 60;

const PORTS: u16 = 4;

fn next_hop(port: u16, push: Vec<u32>) -> NextHop {
    NextHop {
        port,
        dst_mac: [2, 0, 0, 0, port as u8, 1],
        src_mac: [2, 0, 0, 0, port as u8, 2],
        vlan: None,
        push,
        backup: None,
    }
}

fn builder() -> FibBuilder {
    let mut b = FibBuilder::new().version(1).hash_seed(0x5eed);
    for p in 0..PORTS {
        b.port(p, PortConfig::default());
    }
    b
}

/// One single-path group per port, each next hop pushing `push` labels.
fn port_groups(b: &mut FibBuilder, push: &[u32]) -> Vec<NhgId> {
    (0..PORTS)
        .map(|p| {
            let n = b.next_hop(next_hop(p, push.to_vec()));
            b.group(&[n])
        })
        .collect()
}

/// A transit LSR with `n` node SIDs bound, each swapped to itself.
pub fn transit_fib(n: u32) -> FibSnapshot {
    let mut b = builder();
    let g = port_groups(&mut b, &[]);
    for i in 0..n {
        let l = SRGB + i;
        b.label(
            l,
            IlmAction::Swap {
                out_label: l,
                nhg: g[(i % PORTS as u32) as usize],
            },
        );
    }
    b.build().expect("valid transit FIB")
}

/// A transit LSR whose labels all go to one 8-way ECMP group.
pub fn ecmp_fib(n: u32) -> FibSnapshot {
    let mut b = builder();
    let nhs: Vec<_> = (0..8)
        .map(|i| b.next_hop(next_hop(i % PORTS, vec![])))
        .collect();
    let g = b.group(&nhs);
    for i in 0..n {
        let l = SRGB + i;
        b.label(
            l,
            IlmAction::Swap {
                out_label: l,
                nhg: g,
            },
        );
    }
    b.build().expect("valid ECMP FIB")
}

/// An egress LER: `n` labels popped, the inner IPv4 forwarded by a small table.
pub fn egress_fib(n: u32) -> FibSnapshot {
    let mut b = builder();
    let g = port_groups(&mut b, &[]);
    for i in 0..n {
        b.label(SRGB + i, IlmAction::Pop);
    }
    for (k, gk) in g.iter().enumerate() {
        b.route_v4(std::net::Ipv4Addr::new(10, k as u8, 0, 0), 16, *gk);
    }
    b.build().expect("valid egress FIB")
}

/// `n` unique IPv4 prefixes with the length mix of a BGP table: about 53%
/// /24, 10% /23, 13% /22, the rest spread over /16../21.
pub fn bgp_like_prefixes(n: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut r = StdRng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x: f64 = r.gen();
        let len = if x < 0.53 {
            24
        } else if x < 0.63 {
            23
        } else if x < 0.76 {
            22
        } else {
            r.gen_range(16..=21)
        };
        // Unicast space 1.0.0.0 - 223.255.255.255.
        let a: u32 = r.gen_range(0x0100_0000..0xe000_0000);
        let p = a & (u32::MAX << (32 - len));
        if seen.insert((p, len)) {
            out.push((p, len as u8));
        }
    }
    out
}

/// An ingress LER: `prefixes` each pushing a node SID (one per port group).
pub fn ingress_fib(prefixes: &[(u32, u8)]) -> FibSnapshot {
    let mut b = builder();
    let groups: Vec<NhgId> = (0..64u32)
        .map(|k| {
            let n = b.next_hop(next_hop((k % PORTS as u32) as u16, vec![SRGB + k]));
            b.group(&[n])
        })
        .collect();
    for (i, &(p, l)) in prefixes.iter().enumerate() {
        b.route_v4(
            std::net::Ipv4Addr::from_bits(p),
            l,
            groups[i % groups.len()],
        );
    }
    b.build().expect("valid ingress FIB")
}

fn ipv4_packet(dst: u32, sport: u16, total: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(total);
    ipv4::Repr {
        src: [192, 0, 2, 1],
        dst: dst.to_be_bytes(),
        protocol: 17,
        ttl: 64,
        tos: 0,
        payload_len: total - 20,
    }
    .emit(&mut v);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&5001u16.to_be_bytes());
    v.resize(total, 0);
    v
}

fn eth(et: u16) -> Vec<u8> {
    let mut v = Vec::new();
    ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 0xaa],
        src: [2, 0, 0, 0, 0, 0xbb],
        vlan: None,
        ethertype: et,
    }
    .emit(&mut v);
    v
}

/// 60-byte labelled frames: Ethernet, the given stack, an IPv4/UDP packet.
fn labelled(stack: &[Lse], dst: u32, sport: u16) -> Vec<u8> {
    let mut f = eth(ethertype::MPLS);
    for (i, e) in stack.iter().enumerate() {
        f.extend_from_slice(&e.with_bos(i + 1 == stack.len()).to_bytes());
    }
    let room = FRAME - f.len();
    f.extend_from_slice(&ipv4_packet(dst, sport, room));
    f
}

/// Frames with a random bound label each (uniform over `n` labels).
pub fn transit_frames(n: u32, seed: u64) -> Vec<Vec<u8>> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..POOL)
        .map(|_| {
            labelled(
                &[Lse::new(SRGB + r.gen_range(0..n), 0, true, 64)],
                0x0a00_0001,
                r.gen(),
            )
        })
        .collect()
}

/// Frames with a random label over an entropy label (RFC 6790) per flow.
pub fn ecmp_frames(n: u32, seed: u64) -> Vec<Vec<u8>> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..POOL)
        .map(|_| {
            let stack = [
                Lse::new(SRGB + r.gen_range(0..n), 0, false, 64),
                Lse::new(label::ELI, 0, false, 0),
                Lse::new(r.gen_range(16..1 << 20), 0, true, 0),
            ];
            labelled(&stack, 0x0a00_0001, r.gen())
        })
        .collect()
}

/// Frames to pop at the egress, inner destinations in the routed /16s.
pub fn egress_frames(n: u32, seed: u64) -> Vec<Vec<u8>> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..POOL)
        .map(|_| {
            let dst =
                ((r.gen_range(0..PORTS as u32)) << 16) | 0x0a00_0000 | r.gen_range(0..0x1_0000);
            labelled(
                &[Lse::new(SRGB + r.gen_range(0..n), 0, true, 64)],
                dst,
                r.gen(),
            )
        })
        .collect()
}

/// IPv4 frames to random addresses inside random prefixes of the table.
pub fn ingress_frames(prefixes: &[(u32, u8)], seed: u64) -> Vec<Vec<u8>> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..POOL)
        .map(|_| {
            let (p, l) = prefixes[r.gen_range(0..prefixes.len())];
            let host = r.gen::<u32>() & (u32::MAX >> l);
            let mut f = eth(ethertype::IPV4);
            f.extend_from_slice(&ipv4_packet(p | host, r.gen(), FRAME - 14));
            f
        })
        .collect()
}

/// A pool of buffers processed in place, batch after batch, for rewrites
/// that keep the frame's shape (transit swap, ECMP): nothing is copied; only
/// the top label's TTL is reset before each pass (one byte per frame) so the
/// frames never expire. This is the setting of the "bare loop" reference.
#[derive(Debug)]
pub struct InPlace {
    pub bufs: Vec<Vec<u8>>,
    verdicts: Vec<Verdict>,
    pub counters: Counters,
    next: usize,
    batch: usize,
}

/// Offset of the top label's TTL byte in a pool buffer.
pub const TTL_AT: usize = HEADROOM + 14 + 3;

impl InPlace {
    pub fn new(pool: &[Vec<u8>], batch: usize) -> InPlace {
        let bufs = pool
            .iter()
            .map(|t| {
                let mut b = vec![0u8; HEADROOM + t.len()];
                b[HEADROOM..].copy_from_slice(t);
                b
            })
            .collect();
        InPlace {
            bufs,
            verdicts: vec![Verdict::Drop(DropReason::Malformed); batch],
            counters: Counters::default(),
            next: 0,
            batch,
        }
    }

    /// The next batch's frames (past the headroom), TTLs reset: what the
    /// bare baseline rewrites.
    #[inline]
    pub fn next_frames(&mut self) -> SmallVec<[&mut [u8]; 64]> {
        next_batch(&mut self.bufs, &mut self.next, self.batch)
            .iter_mut()
            .map(|b| &mut b[HEADROOM..])
            .collect()
    }

    #[inline]
    pub fn run(&mut self, fib: &FibSnapshot) -> Verdict {
        let mut frames: SmallVec<[Frame<'_>; 64]> = SmallVec::new();
        for b in next_batch(&mut self.bufs, &mut self.next, self.batch) {
            let n = b.len() - HEADROOM;
            frames.extend(Frame::new(b, HEADROOM, n));
        }
        process(
            fib,
            u64::MAX,
            &mut frames,
            &mut self.verdicts,
            &mut self.counters,
        );
        self.verdicts[0]
    }
}

/// What a worker tallies per port beside the pipeline's counters (issue
/// 18): bytes in and out, and drops by reason of the port's batches.
#[derive(Debug, Default)]
pub struct PortTallies {
    pub rx_bytes: u64,
    pub tx_bytes: [u64; 4],
    pub drops: [u64; orbitmesh_core::stats::DropReason::COUNT],
}

impl InPlace {
    /// [`InPlace::run`] plus the worker's per-batch work for the per-port
    /// byte and drop counters: sum the batch's lengths in, diff the drop
    /// counters over the batch, add each forwarded frame's length to its
    /// output port.
    #[inline]
    pub fn run_with_port_tallies(&mut self, fib: &FibSnapshot, t: &mut PortTallies) -> Verdict {
        let mut frames: SmallVec<[Frame<'_>; 64]> = SmallVec::new();
        for b in next_batch(&mut self.bufs, &mut self.next, self.batch) {
            let n = b.len() - HEADROOM;
            frames.extend(Frame::new(b, HEADROOM, n));
        }
        t.rx_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        let before = self.counters.drops;
        process(
            fib,
            u64::MAX,
            &mut frames,
            &mut self.verdicts,
            &mut self.counters,
        );
        for ((d, a), b) in t.drops.iter_mut().zip(&self.counters.drops).zip(&before) {
            *d += a - b;
        }
        for (f, v) in frames.iter().zip(&self.verdicts) {
            if let Verdict::Forward(q) = v {
                t.tx_bytes[*q as usize & 3] += f.len() as u64;
            }
        }
        self.verdicts[0]
    }

    /// [`InPlace::run`] plus a per-label packet counter: one increment per
    /// frame in a table indexed by the arriving top label (`counts` as
    /// long as the label space used), and a per-output counter standing
    /// for per-next-hop ones (a small table).
    #[inline]
    pub fn run_with_label_counters(
        &mut self,
        fib: &FibSnapshot,
        counts: &mut [u64],
        per_nh: &mut [u64; 64],
    ) -> Verdict {
        let mut frames: SmallVec<[Frame<'_>; 64]> = SmallVec::new();
        let mask = counts.len() - 1;
        for b in next_batch(&mut self.bufs, &mut self.next, self.batch) {
            let n = b.len() - HEADROOM;
            let at = HEADROOM + 14;
            let label = u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]]) >> 4;
            counts[label as usize & mask] += 1;
            frames.extend(Frame::new(b, HEADROOM, n));
        }
        process(
            fib,
            u64::MAX,
            &mut frames,
            &mut self.verdicts,
            &mut self.counters,
        );
        for v in &self.verdicts[..frames.len()] {
            if let Verdict::Forward(q) = v {
                per_nh[*q as usize & 63] += 1;
            }
        }
        self.verdicts[0]
    }
}

/// Moves `next` on by one batch of `bufs` and returns that batch, TTLs reset.
#[inline]
fn next_batch<'a>(bufs: &'a mut [Vec<u8>], next: &mut usize, batch: usize) -> &'a mut [Vec<u8>] {
    let start = *next;
    *next = (start + batch) % bufs.len();
    let b = &mut bufs[start..start + batch];
    for x in b.iter_mut() {
        x[TTL_AT] = 64;
    }
    b
}

/// Buffers for one batch, reused across iterations like UMEM frames.
#[derive(Debug)]
pub struct BatchRunner {
    bufs: Vec<Vec<u8>>,
    verdicts: Vec<Verdict>,
    pub counters: Counters,
    next: usize,
}

impl BatchRunner {
    pub fn new(batch: usize) -> BatchRunner {
        BatchRunner {
            bufs: vec![vec![0u8; HEADROOM + 128]; batch],
            verdicts: vec![Verdict::Drop(DropReason::Malformed); batch],
            counters: Counters::default(),
            next: 0,
        }
    }

    pub fn batch(&self) -> usize {
        self.bufs.len()
    }

    /// Copies the next `batch` templates into the buffers (the "NIC DMA")
    /// and runs the pipeline on them. Returns the first verdict.
    #[inline]
    pub fn run(&mut self, fib: &FibSnapshot, pool: &[Vec<u8>]) -> Verdict {
        let n = self.bufs.len();
        let start = self.next;
        self.next = (self.next + n) % pool.len();
        let mut frames: SmallVec<[Frame<'_>; 64]> = SmallVec::new();
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            let t = &pool[(start + i) % pool.len()];
            buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
            frames.extend(Frame::new(buf, HEADROOM, t.len()));
        }
        process(
            fib,
            u64::MAX,
            &mut frames,
            &mut self.verdicts,
            &mut self.counters,
        );
        self.verdicts[0]
    }
}
