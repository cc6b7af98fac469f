//! The label-switching fast path: one pure function over a batch of frames.
//!
//! [`process`] is what every worker, test and benchmark runs. It takes a FIB
//! snapshot, the port liveness mask and a batch of frames, rewrites each frame
//! in place, and returns one [`Verdict`] per frame; it performs no I/O, no
//! allocation, no locking and no system call, and it never panics on frame
//! contents (the property tests feed it arbitrary bytes).
//!
//! Like DPDK's `l3fwd`, the batch goes through stages so that the table
//! lookups of different frames overlap in the memory system:
//! 1. *classify*: parse the L2 header, read the first lookup key (top label,
//!    or IPv4/IPv6 destination) and look it up, for every frame;
//! 2. *forward*: apply the MPLS rules (RFC 3031/3032) or the IP edge rules
//!    (RFC 1812) frame by frame, using the lookup from stage 1;
//! 3. the worker groups the verdicts by output port and transmits.
//!
//! Rules (see also `fib` for the table semantics):
//! - MPLS TTL <= 1 on arrival: drop (`TtlExpired`). Swap writes TTL - 1.
//! - Reserved labels on top (RFC 3032, 7274): 0/2 explicit null pop and
//!   continue (RFC 4182), 1 router alert and 13/14 (GAL, OAM alert) punt,
//!   3 drop, 7 ELI pops ELI + entropy label and continues (RFC 6790), the
//!   rest drop.
//! - TTL at the edges per RFC 3443: uniform (copy IP TTL into pushed labels,
//!   copy the label TTL back at pop) or pipe (push 255, leave inner TTL).
//! - IPv4/IPv6 at the edge: malformed headers dropped, TTL/hop limit <= 1
//!   dropped, otherwise decremented (IPv4 checksum by RFC 1624) and the next
//!   hop's labels pushed (none: plain IP forwarding).
//! - ECMP: the path is chosen by a hash of the label stack, the entropy
//!   label and the inner 5-tuple (mixed with the FIB's per-node seed), so a
//!   flow keeps its path and order.
//! - Fast reroute: a next hop whose port is down is replaced by its backup,
//!   or failing that by another live path of the same group.
//! - MTU: the rewritten L3 length (labels included) must fit the port's MTU.

use crate::fib::{FibSnapshot, IlmEntry, NhEntry, NhgEntry, PortId, TtlModel, MAX_PUSH};
use crate::stats::{Counters, DropReason, PuntReason};
use crate::wire::ethernet::{self, ethertype};
use crate::wire::mpls::{label, Lse, LSE_LEN, MAX_DEPTH};
use crate::wire::{be16, be32, ipv4, ipv6, l4};

/// Frames processed per stage at most (a longer slice is done in chunks).
pub const MAX_BATCH: usize = 64;

/// Headroom the pipeline needs in front of a frame to push a full stack of
/// labels and add a VLAN tag.
pub const MIN_HEADROOM: usize = (MAX_PUSH + 1) * LSE_LEN + 4;

/// A frame in a buffer with headroom: `buf[start .. start + len]` is the
/// frame, `buf[.. start]` is room for pushed labels.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// `None` when `start + len` is outside `buf`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Option<Frame<'a>> {
        (start.checked_add(len)? <= buf.len()).then_some(Frame { buf, start, len })
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn start(&self) -> usize {
        self.start
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What happens to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame on this port.
    Forward(PortId),
    Drop(DropReason),
    /// Hand to the control plane / host (or drop, as the worker is told).
    Punt(PuntReason),
}

/// What stage 1 (`classify`) found in one frame: a verdict already, or
/// the ILM entry / route group stage 2 forwards it by.
#[derive(Clone, Copy)]
enum Classified {
    Done(Verdict),
    Mpls { l2: u8, entry: IlmEntry },
    Ip { l2: u8, nhg: Option<u32> },
}

/// Processes `frames` against `fib`, writing `verdicts[i]` for `frames[i]`.
///
/// `live_ports` has bit `p` set when port `p` is up. `verdicts` must be at
/// least as long as `frames` (extra entries are left alone).
pub fn process(
    fib: &FibSnapshot,
    live_ports: u64,
    frames: &mut [Frame<'_>],
    verdicts: &mut [Verdict],
    counters: &mut Counters,
) {
    assert!(verdicts.len() >= frames.len(), "one verdict per frame");
    for (fs, vs) in frames
        .chunks_mut(MAX_BATCH)
        .zip(verdicts.chunks_mut(MAX_BATCH))
    {
        process_chunk(fib, live_ports, fs, vs, counters);
    }
}

fn process_chunk(
    fib: &FibSnapshot,
    live: u64,
    frames: &mut [Frame<'_>],
    verdicts: &mut [Verdict],
    c: &mut Counters,
) {
    let n = frames.len().min(MAX_BATCH);
    let (frames, verdicts) = (&mut frames[..n], &mut verdicts[..n]);
    let mut pre = [Classified::Done(Verdict::Drop(DropReason::Malformed)); MAX_BATCH];
    let pre = &mut pre[..n];
    for i in 0..n {
        pre[i] = classify(fib, frames[i].data());
    }
    c.rx += n as u64;
    for i in 0..n {
        let f = &mut frames[i];
        let verdict = match pre[i] {
            Classified::Done(v) => v,
            Classified::Mpls { l2, entry }
                if entry.is_fast() && l2 as usize == ethernet::HEADER_LEN =>
            {
                fast_swap(fib, live, f, entry, c)
            }
            Classified::Mpls { l2, entry } => mpls(fib, live, f, l2 as usize, entry, c),
            Classified::Ip { l2, nhg } => {
                let at = f.start + l2 as usize;
                ip(fib, live, f, at, None, nhg, c)
            }
        };
        match verdict {
            Verdict::Forward(_) => c.forwarded += 1,
            Verdict::Drop(r) => c.drops[r as usize] += 1,
            Verdict::Punt(r) => c.punts[r as usize] += 1,
        }
        verdicts[i] = verdict;
    }
}

/// Stage 1: L2 parse and first lookup.
#[inline(always)]
fn classify(fib: &FibSnapshot, d: &[u8]) -> Classified {
    const MALFORMED: Classified = Classified::Done(Verdict::Drop(DropReason::Malformed));
    if d.len() < ethernet::HEADER_LEN {
        return MALFORMED;
    }
    let mut et = be16(d, ethernet::field::ETHERTYPE);
    let mut l2 = ethernet::HEADER_LEN;
    if et == ethertype::VLAN {
        if d.len() < ethernet::TAGGED_HEADER_LEN {
            return MALFORMED;
        }
        et = be16(d, ethernet::field::INNER_ETHERTYPE);
        l2 = ethernet::TAGGED_HEADER_LEN;
    }
    match et {
        ethertype::MPLS => {
            if d.len() < l2 + LSE_LEN {
                return MALFORMED;
            }
            let l = Lse::read(d, l2).label();
            let entry = fib.ilm.get(l as usize).copied().unwrap_or_default();
            Classified::Mpls {
                l2: l2 as u8,
                entry,
            }
        }
        ethertype::IPV4 => {
            if d.len() < l2 + ipv4::MIN_HEADER_LEN {
                return MALFORMED;
            }
            let dst = be32(d, l2 + ipv4::field::DST.start);
            Classified::Ip {
                l2: l2 as u8,
                nhg: fib.v4.lookup(dst),
            }
        }
        ethertype::IPV6 => {
            if d.len() < l2 + ipv6::HEADER_LEN {
                return MALFORMED;
            }
            let a = l2 + ipv6::field::DST.start;
            let dst = u128::from_be_bytes(d[a..a + 16].try_into().unwrap_or([0; 16]));
            Classified::Ip {
                l2: l2 as u8,
                nhg: fib.v6.lookup(dst),
            }
        }
        // MPLS with EtherType 0x8848 uses a context-specific label space
        // (RFC 5332) that this relay does not implement.
        _ => Classified::Done(Verdict::Drop(DropReason::UnsupportedEthertype)),
    }
}

/// The common transit case, as `mpls` + `swap` would do it with fewer
/// steps: an untagged frame whose top label swaps to untagged next hops
/// that push nothing (one, or an ECMP group). The frame keeps its size; only the MACs and the top
/// entry change. A down port takes the general path (fast reroute).
#[inline(always)]
fn fast_swap(
    fib: &FibSnapshot,
    live: u64,
    f: &mut Frame<'_>,
    entry: IlmEntry,
    c: &mut Counters,
) -> Verdict {
    const L2: usize = ethernet::HEADER_LEN;
    let g = fib.groups[entry.group()];
    let nh = if g.len == 1 {
        &fib.nhs[fib.single_nh[entry.group()] as usize]
    } else {
        // The same path `choose` would take (hash only for real ECMP).
        let h = mpls_hash(f.buf, f.start + L2, f.start + f.len, fib.hash_seed);
        let idx = ((h as u64 * g.len as u64) >> 32) as u32;
        &fib.nhs[fib.members[(g.start + idx) as usize] as usize]
    };
    if live >> nh.port & 1 == 0 {
        return mpls(fib, live, f, L2, entry, c);
    }
    let len = f.len;
    let b = &mut f.buf[f.start..f.start + L2 + LSE_LEN];
    let lse = Lse::read(b, L2);
    let ttl = lse.ttl();
    if ttl <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    if len - L2 > fib.mtu[nh.port as usize] as usize {
        return Verdict::Drop(DropReason::Mtu);
    }
    b[ethernet::field::DST].copy_from_slice(&nh.dst_mac);
    b[ethernet::field::SRC].copy_from_slice(&nh.src_mac);
    lse.with_label(entry.out_label)
        .with_ttl(ttl - 1)
        .write(b, L2);
    Verdict::Forward(nh.port)
}

/// Labelled frame: walk the stack from the top, popping as the rules say,
/// until a swap, an IP forward, a punt or a drop.
fn mpls(
    fib: &FibSnapshot,
    live: u64,
    f: &mut Frame<'_>,
    l2: usize,
    first: IlmEntry,
    c: &mut Counters,
) -> Verdict {
    let end = f.start + f.len;
    let top = f.start + l2;
    let mut off = top;
    let mut lse = Lse::read(f.buf, off);
    let mut ttl = lse.ttl();
    if ttl <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    let mut entry = first;
    loop {
        let l = lse.label();
        let mut popped = LSE_LEN;
        if label::is_reserved(l) {
            match l {
                label::IPV4_EXPLICIT_NULL | label::IPV6_EXPLICIT_NULL => {}
                label::ROUTER_ALERT => return Verdict::Punt(PuntReason::RouterAlert),
                label::IMPLICIT_NULL => return Verdict::Drop(DropReason::ImplicitNullOnWire),
                label::ELI => {
                    // ELI is followed by the entropy label; both go.
                    if lse.bos() || off + 2 * LSE_LEN > end {
                        return Verdict::Drop(DropReason::Malformed);
                    }
                    lse = Lse::read(f.buf, off + LSE_LEN);
                    popped = 2 * LSE_LEN;
                }
                label::GAL | label::OAM_ALERT => return Verdict::Punt(PuntReason::Oam),
                _ => return Verdict::Drop(DropReason::ReservedLabel),
            }
        } else {
            match entry.action() {
                IlmEntry::SWAP => return swap(fib, live, f, l2, off, lse, ttl, entry, c),
                IlmEntry::POP => {}
                _ => return Verdict::Drop(DropReason::NoLabelRoute),
            }
        }
        // Pop `popped` bytes and go on with what is beneath.
        off += popped;
        if lse.bos() {
            return ip(fib, live, f, off, Some(ttl), None, c);
        }
        if off + LSE_LEN > end {
            return Verdict::Drop(DropReason::Malformed);
        }
        if (off - top) / LSE_LEN >= MAX_DEPTH {
            return Verdict::Drop(DropReason::StackTooDeep);
        }
        lse = Lse::read(f.buf, off);
        if fib.egress_ttl == TtlModel::Pipe {
            // The inner LSP keeps its own TTL (RFC 3443 pipe model).
            ttl = lse.ttl();
            if ttl <= 1 {
                return Verdict::Drop(DropReason::TtlExpired);
            }
        }
        entry = fib
            .ilm
            .get(lse.label() as usize)
            .copied()
            .unwrap_or_default();
    }
}

/// Swap (or PHP pop) the entry at `off` and push the next hop's labels.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn swap(
    fib: &FibSnapshot,
    live: u64,
    f: &mut Frame<'_>,
    l2: usize,
    off: usize,
    lse: Lse,
    ttl: u8,
    entry: IlmEntry,
    c: &mut Counters,
) -> Verdict {
    let g = fib.groups[entry.group()];
    let end = f.start + f.len;
    let top = f.start + l2;
    let Some(nh) = choose(
        fib,
        live,
        g,
        || mpls_hash(f.buf, top, end, fib.hash_seed),
        c,
    ) else {
        return Verdict::Drop(DropReason::PortDown);
    };
    let new_ttl = ttl - 1;
    let rest = off + LSE_LEN;
    let php = entry.out_label == label::IMPLICIT_NULL;
    // What the pop exposes must be sound before anything is rewritten.
    let et = if !php {
        ethertype::MPLS
    } else if lse.bos() {
        // Penultimate-hop pop exposes the IP header.
        let inner = f.buf.get(rest..end).unwrap_or(&[]);
        match inner.first().map(|b| b >> 4) {
            Some(4) if ipv4::Packet::new_checked(inner).is_ok() => ethertype::IPV4,
            Some(6) if ipv6::Packet::new_checked(inner).is_ok() => ethertype::IPV6,
            _ => return Verdict::Drop(DropReason::Malformed),
        }
    } else if rest + LSE_LEN > end {
        return Verdict::Drop(DropReason::Malformed);
    } else {
        ethertype::MPLS
    };
    let n = nh.n_push as usize + usize::from(!php);
    let start = match fit(fib, f, rest, n, nh) {
        Ok(s) => s,
        Err(r) => return Verdict::Drop(r),
    };
    let mut stack = [Lse(0); MAX_PUSH + 1];
    for (i, &p) in nh.push[..nh.n_push as usize].iter().enumerate() {
        stack[i] = Lse::new(p, lse.tc(), false, new_ttl);
    }
    let uniform = fib.egress_ttl == TtlModel::Uniform;
    if !php {
        stack[n - 1] = Lse::new(entry.out_label, lse.tc(), lse.bos(), new_ttl);
    } else if lse.bos() {
        if uniform {
            if et == ethertype::IPV4 {
                ipv4::set_ttl_in_place(&mut f.buf[rest..end], new_ttl);
            } else {
                f.buf[rest + ipv6::field::HOP_LIMIT] = new_ttl;
            }
        }
        if n > 0 {
            stack[n - 1] = stack[n - 1].with_bos(true);
        }
    } else if uniform {
        // PHP of an outer label: the next entry carries this hop's TTL.
        Lse::read(f.buf, rest).with_ttl(new_ttl).write(f.buf, rest);
    }
    emit(f, start, rest, &stack[..n], nh, et)
}

/// Forward by an IPv4/IPv6 header at `at` (ingress, or after an egress pop
/// when `label_ttl` is the TTL of the popped label).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn ip(
    fib: &FibSnapshot,
    live: u64,
    f: &mut Frame<'_>,
    at: usize,
    label_ttl: Option<u8>,
    pre_nhg: Option<u32>,
    c: &mut Counters,
) -> Verdict {
    let end = f.start + f.len;
    if at >= end {
        return Verdict::Drop(DropReason::Malformed);
    }
    // After an egress pop in the uniform model the label TTL becomes the IP
    // TTL; otherwise (ingress, pipe) the IP header's own TTL counts.
    let carried = match (label_ttl, fib.egress_ttl) {
        (Some(t), TtlModel::Uniform) => Some(t),
        _ => None,
    };
    let from_label = label_ttl.is_some();
    let (ttl_in, tc, nhg) = match f.buf[at] >> 4 {
        4 => {
            let Ok(p) = ipv4::Packet::new_checked(&f.buf[at..end]) else {
                return Verdict::Drop(DropReason::Malformed);
            };
            let nhg = if from_label {
                fib.v4.lookup(u32::from_be_bytes(p.dst()))
            } else {
                pre_nhg
            };
            (carried.unwrap_or(p.ttl()), p.tos() >> 5, nhg)
        }
        6 => {
            let Ok(p) = ipv6::Packet::new_checked(&f.buf[at..end]) else {
                return Verdict::Drop(DropReason::Malformed);
            };
            let nhg = if from_label {
                fib.v6.lookup(u128::from_be_bytes(p.dst()))
            } else {
                pre_nhg
            };
            (
                carried.unwrap_or(p.hop_limit()),
                p.traffic_class() >> 5,
                nhg,
            )
        }
        _ => return Verdict::Drop(DropReason::Malformed),
    };
    if ttl_in <= 1 {
        return Verdict::Drop(DropReason::TtlExpired);
    }
    let Some(nhg) = nhg else {
        return Verdict::Drop(DropReason::NoIpRoute);
    };
    let g = fib.groups[nhg as usize];
    let Some(nh) = choose(fib, live, g, || ip_hash(f.buf, at, end, fib.hash_seed), c) else {
        return Verdict::Drop(DropReason::PortDown);
    };
    let n = nh.n_push as usize;
    let start = match fit(fib, f, at, n, nh) {
        Ok(s) => s,
        Err(r) => return Verdict::Drop(r),
    };
    let new_ttl = ttl_in - 1;
    let et = if f.buf[at] >> 4 == 4 {
        ipv4::set_ttl_in_place(&mut f.buf[at..end], new_ttl);
        ethertype::IPV4
    } else {
        f.buf[at + ipv6::field::HOP_LIMIT] = new_ttl;
        ethertype::IPV6
    };
    let label_ttl = match fib.ingress_ttl {
        TtlModel::Uniform => new_ttl,
        TtlModel::Pipe => 255,
    };
    let mut stack = [Lse(0); MAX_PUSH];
    for (i, &p) in nh.push[..n].iter().enumerate() {
        stack[i] = Lse::new(p, tc, i + 1 == n, label_ttl);
    }
    let et = if n > 0 { ethertype::MPLS } else { et };
    emit(f, start, at, &stack[..n], nh, et)
}

/// Picks the group member by hash (only computed for real ECMP), then
/// applies fast reroute when its port is down.
#[inline(always)]
fn choose<'f>(
    fib: &'f FibSnapshot,
    live: u64,
    g: NhgEntry,
    hash: impl FnOnce() -> u32,
    c: &mut Counters,
) -> Option<&'f NhEntry> {
    let idx = if g.len == 1 {
        0
    } else {
        ((hash() as u64 * g.len as u64) >> 32) as u32
    };
    let nh = &fib.nhs[fib.members[(g.start + idx) as usize] as usize];
    if live >> nh.port & 1 == 1 {
        return Some(nh);
    }
    choose_alternate(fib, live, g, idx, nh, c)
}

#[cold]
fn choose_alternate<'f>(
    fib: &'f FibSnapshot,
    live: u64,
    g: NhgEntry,
    idx: u32,
    nh: &'f NhEntry,
    c: &mut Counters,
) -> Option<&'f NhEntry> {
    let up = |n: &NhEntry| live >> n.port & 1 == 1;
    if nh.backup != NhEntry::NO_BACKUP {
        let b = &fib.nhs[nh.backup as usize];
        if up(b) {
            c.backup_used += 1;
            return Some(b);
        }
    }
    for k in 1..g.len {
        let m = &fib.nhs[fib.members[(g.start + (idx + k) % g.len) as usize] as usize];
        if up(m) {
            c.backup_used += 1;
            return Some(m);
        }
    }
    None
}

/// Where the rewritten frame will start: checks that `n_labels` labels and
/// the next hop's L2 header fit in front of `rest` (an absolute offset;
/// everything from there on is kept) and that the result fits the port MTU.
/// Called before anything is written, so a dropped frame is left untouched.
#[inline(always)]
fn fit(
    fib: &FibSnapshot,
    f: &Frame<'_>,
    rest: usize,
    n_labels: usize,
    nh: &NhEntry,
) -> Result<usize, DropReason> {
    let l2 = if nh.vlan != NhEntry::UNTAGGED {
        ethernet::TAGGED_HEADER_LEN
    } else {
        ethernet::HEADER_LEN
    };
    let start = rest
        .checked_sub(l2 + n_labels * LSE_LEN)
        .ok_or(DropReason::NoHeadroom)?;
    let end = f.start + f.len;
    if end - start - l2 > fib.mtu[nh.port as usize] as usize {
        return Err(DropReason::Mtu);
    }
    Ok(start)
}

/// Writes `labels` (top first) and the next hop's Ethernet header from
/// `start` (as returned by [`fit`]) up to `rest`, and sets the frame's new
/// bounds.
#[inline(always)]
fn emit(
    f: &mut Frame<'_>,
    start: usize,
    rest: usize,
    labels: &[Lse],
    nh: &NhEntry,
    et: u16,
) -> Verdict {
    let vlan = (nh.vlan != NhEntry::UNTAGGED).then_some(nh.vlan);
    // One bounds check for the whole new header.
    let hdr = &mut f.buf[start..rest];
    let l2 = ethernet::write_header(hdr, &nh.dst_mac, &nh.src_mac, vlan, et);
    for (dst, l) in hdr[l2..].chunks_exact_mut(LSE_LEN).zip(labels) {
        dst.copy_from_slice(&l.to_bytes());
    }
    let end = f.start + f.len;
    f.start = start;
    f.len = end - start;
    Verdict::Forward(nh.port)
}

#[inline(always)]
fn mix(h: u32, x: u32) -> u32 {
    (h ^ x).wrapping_mul(0x9e37_79b1).rotate_left(13)
}

/// murmur3's finaliser: spreads every input bit over the output.
#[inline(always)]
fn finish(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The ECMP hash of a labelled packet: `stack` starts at the top label as
/// received. Public so that tests and tools can predict path choices.
pub fn mpls_flow_hash(stack: &[u8], seed: u32) -> u32 {
    mpls_hash(stack, 0, stack.len(), seed)
}

/// The ECMP hash of an IP packet (`packet` starts at the IP header).
pub fn ip_flow_hash(packet: &[u8], seed: u32) -> u32 {
    ip_hash(packet, 0, packet.len(), seed)
}

/// Flow hash of a labelled frame: every label of the stack (the entropy
/// label included, RFC 6790 section 4.3) and the inner 5-tuple.
fn mpls_hash(b: &[u8], top: usize, end: usize, seed: u32) -> u32 {
    let mut h = seed;
    let mut off = top;
    let mut depth = 0;
    while off + LSE_LEN <= end && depth < MAX_DEPTH {
        let lse = Lse::read(b, off);
        h = mix(h, lse.label());
        off += LSE_LEN;
        depth += 1;
        if lse.bos() {
            return finish(flow_hash(b, off, end, h));
        }
    }
    finish(h)
}

fn ip_hash(b: &[u8], at: usize, end: usize, seed: u32) -> u32 {
    finish(flow_hash(b, at, end, seed))
}

/// Mixes the IP 5-tuple at `at` into `h` (addresses, protocol, ports; the
/// IPv6 flow label). Fragments other than unfragmented packets hash without
/// ports so all fragments of a datagram stay together.
#[inline(always)]
fn flow_hash(b: &[u8], at: usize, end: usize, mut h: u32) -> u32 {
    if at >= end {
        return h;
    }
    let d = &b[at..end];
    match d[0] >> 4 {
        4 if d.len() >= ipv4::MIN_HEADER_LEN => {
            let p = ipv4::Packet::new_unchecked(d);
            h = mix(h, be32(d, ipv4::field::SRC.start));
            h = mix(h, be32(d, ipv4::field::DST.start));
            h = mix(h, p.protocol() as u32);
            let hl = p.header_len();
            if !p.is_fragment() && hl >= ipv4::MIN_HEADER_LEN && d.len() > hl {
                if let Some((s, t)) = l4::ports(p.protocol(), &d[hl..]) {
                    h = mix(h, (s as u32) << 16 | t as u32);
                }
            }
            h
        }
        6 if d.len() >= ipv6::HEADER_LEN => {
            let p = ipv6::Packet::new_unchecked(d);
            for w in (8..40).step_by(4) {
                h = mix(h, be32(d, w));
            }
            h = mix(h, p.flow_label());
            h = mix(h, p.next_header() as u32);
            if let Some((s, t)) = l4::ports(p.next_header(), &d[ipv6::HEADER_LEN..]) {
                h = mix(h, (s as u32) << 16 | t as u32);
            }
            h
        }
        _ => h,
    }
}
