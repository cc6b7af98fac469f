//! The forwarding information base: immutable snapshots and their builder.
//!
//! A [`FibSnapshot`] is what a worker forwards from. Its layout follows the
//! MPLS architecture's terms (RFC 3031 section 3.10-3.12) and the design card:
//!
//! ```text
//!  label ──► ILM[label] ──► (action, next-hop group) ──► group members ──► NHLFE
//!            direct index    swap / pop                 ECMP (<= 64)      port, MACs,
//!            (<= 2^20)                                  by flow hash      labels to push,
//!                                                                         backup NHLFE
//!  IPv4/IPv6 dst ──► LPM (DIR-24-8 / stride trie) ──► next-hop group ──► ...  (ingress push, FEC-to-NHLFE)
//! ```
//!
//! - The incoming label map ([`IlmAction`]) is a flat array indexed by label,
//!   like Linux's `platform_labels` and VPP's MPLS FIB: one memory access.
//!   Its actions cover RFC 3031's operations: `Swap` replaces the top label
//!   (with [`label::IMPLICIT_NULL`] it pops instead: penultimate-hop popping,
//!   RFC 3031 section 3.16), and the next hop's `push` labels are pushed on
//!   top ("swap and push more"); `Pop` removes the top label and continues
//!   with the next one, or, at the bottom of the stack, forwards by the inner
//!   IP header through the LPM tables (egress pop, explicit null).
//! - Next-hop groups are contiguous slices of next-hop ids (ECMP); each next
//!   hop may name a precomputed backup (loop-free alternate, RFC 5286) that
//!   workers switch to as soon as the primary port is marked down.
//! - TTL handling at the edges follows RFC 3443 (uniform or pipe model).
//!
//! A snapshot is built once, off the fast path, by [`FibBuilder`], which
//! validates everything and refuses the whole table with a [`FibError`]
//! naming the entry and field; a snapshot that exists is therefore always
//! consistent, and the pipeline never checks indices it got from the FIB.
//! The dataplane runtime publishes snapshots to its workers lock-free
//! (`dataplane::publish`); this crate only builds and reads them.

pub mod binary;
mod builder;
pub mod lpm;
pub mod prefix;
pub mod spec;

pub use builder::{FibBuilder, FibError, NextHop, PortConfig};
pub use prefix::{Prefix, PrefixError};
pub use spec::FibSpec;

use crate::wire::ethernet::MacBytes;
use crate::wire::mpls::{label, Label};
use lpm::{Lpm4, Lpm6};

/// Ports (interfaces) a FIB may name: one bit each in the liveness mask.
pub const MAX_PORTS: usize = 64;
/// Labels one next hop may push.
pub const MAX_PUSH: usize = 6;
/// Paths in one ECMP group.
pub const MAX_ECMP: usize = 64;
/// Default port MTU (bytes of L3 payload after the Ethernet header).
pub const DEFAULT_MTU: u16 = 1500;

/// A port index (0..MAX_PORTS).
pub type PortId = u16;

/// Index of a next hop (NHLFE) in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhId(pub u32);

/// Index of a next-hop group in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhgId(pub u32);

/// What to do with a packet whose top label is bound in the ILM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IlmAction {
    /// Replace the top label by `out_label` (the TTL decremented), push the
    /// chosen next hop's labels, and send. `out_label` 3 (implicit null) pops
    /// instead (penultimate-hop popping); 0/2 (explicit null) are allowed.
    Swap { out_label: Label, nhg: NhgId },
    /// Pop the top label; continue with the next label, or, at the bottom of
    /// the stack, forward by the inner IPv4/IPv6 header.
    Pop,
}

/// The TTL model at a label edge (RFC 3443 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlModel {
    /// Ingress copies the IP TTL into pushed labels; egress copies the label
    /// TTL back into the IP header: the LSP counts as hops to traceroute.
    #[default]
    Uniform,
    /// Ingress pushes TTL 255; egress leaves the inner TTL as it was (and
    /// decrements it for its own IP hop, short pipe): the LSP is one hop.
    Pipe,
}

/// The hot-path form of an ILM entry: 8 bytes, zero = not bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct IlmEntry {
    /// Bits 31..30: action (0 none, 1 swap, 2 pop); bit 29: fast (a swap
    /// whose paths are all untagged and push nothing: the pipeline's fast
    /// path); bits 28..0: group id.
    pub word: u32,
    pub out_label: u32,
}

impl IlmEntry {
    pub const SWAP: u32 = 1;
    pub const POP: u32 = 2;
    pub const FAST: u32 = 1 << 29;
    pub const MAX_GROUP: u32 = (1 << 29) - 1;

    #[inline(always)]
    pub fn action(self) -> u32 {
        self.word >> 30
    }
    #[inline(always)]
    pub fn is_fast(self) -> bool {
        self.word & Self::FAST != 0
    }
    #[inline(always)]
    pub fn group(self) -> usize {
        (self.word & Self::MAX_GROUP) as usize
    }
}

/// The hot-path form of a next hop (NHLFE), 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct NhEntry {
    pub dst_mac: MacBytes,
    pub src_mac: MacBytes,
    pub port: PortId,
    /// 802.1Q VLAN id to tag with, or [`NhEntry::UNTAGGED`].
    pub vlan: u16,
    pub n_push: u8,
    pub _pad: [u8; 3],
    /// Labels to push, top of stack first.
    pub push: [Label; MAX_PUSH],
    /// Backup next hop index, or [`NhEntry::NO_BACKUP`].
    pub backup: u32,
}

impl NhEntry {
    pub const UNTAGGED: u16 = u16::MAX;
    pub const NO_BACKUP: u32 = u32::MAX;
}

/// A group's members: `members[start .. start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct NhgEntry {
    pub start: u32,
    pub len: u32,
}

/// One immutable, validated FIB.
#[derive(Debug)]
pub struct FibSnapshot {
    pub(crate) version: u64,
    pub(crate) ilm: Box<[IlmEntry]>,
    pub(crate) groups: Box<[NhgEntry]>,
    pub(crate) members: Box<[u32]>,
    /// Per group: its only next hop when it has exactly one, else u32::MAX.
    pub(crate) single_nh: Box<[u32]>,
    pub(crate) nhs: Box<[NhEntry]>,
    pub(crate) v4: Lpm4,
    /// The routes the LPM tables were built from, for show/export.
    pub(crate) routes4: Box<[(u32, u8, u32)]>,
    pub(crate) routes6: Box<[(u128, u8, u32)]>,
    pub(crate) v6: Lpm6,
    /// Per-port MTU; 0 for ports the FIB does not declare.
    pub(crate) mtu: [u16; MAX_PORTS],
    pub(crate) ingress_ttl: TtlModel,
    pub(crate) egress_ttl: TtlModel,
    pub(crate) hash_seed: u32,
    pub(crate) labels_bound: usize,
    /// The names the FIB file gave (for `fib show`; never read per packet).
    pub(crate) names: ShownNames,
}

/// The names a FIB file gave its next hops and groups, by id; `None` for
/// entries built in code without a name.
#[derive(Debug, Default)]
pub(crate) struct ShownNames {
    pub(crate) nhs: Box<[Option<Box<str>>]>,
    pub(crate) groups: Box<[Option<Box<str>>]>,
    /// The ids a FIB file gave (`spec::NextHopId`, `spec::GroupId`), 0
    /// where none was given.
    pub(crate) nh_ids: Box<[u32]>,
    pub(crate) group_ids: Box<[u32]>,
}

impl FibSnapshot {
    /// An empty FIB: every packet is dropped with "no route".
    pub fn empty(version: u64) -> FibSnapshot {
        FibBuilder::new()
            .version(version)
            .build()
            .expect("an empty FIB is valid")
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of bound labels.
    pub fn labels_bound(&self) -> usize {
        self.labels_bound
    }

    /// Size of the direct-indexed label table (highest bound label + 1).
    pub fn label_table_len(&self) -> usize {
        self.ilm.len()
    }

    pub fn ipv4_routes(&self) -> usize {
        self.v4.len()
    }

    pub fn ipv6_routes(&self) -> usize {
        self.v6.len()
    }

    pub fn ingress_ttl(&self) -> TtlModel {
        self.ingress_ttl
    }

    pub fn egress_ttl(&self) -> TtlModel {
        self.egress_ttl
    }

    /// The per-node ECMP hash seed (for engines that must hash alike, such
    /// as the XDP fast path's map compiler).
    pub fn hash_seed(&self) -> u32 {
        self.hash_seed
    }

    /// The action bound to `l`, if any (slow path: `fib show`, tests).
    pub fn ilm(&self, l: Label) -> Option<IlmAction> {
        let e = *self.ilm.get(l as usize)?;
        match e.action() {
            IlmEntry::SWAP => Some(IlmAction::Swap {
                out_label: e.out_label,
                nhg: NhgId(e.group() as u32),
            }),
            IlmEntry::POP => Some(IlmAction::Pop),
            _ => None,
        }
    }

    /// Every bound label with its action, in label order.
    pub fn ilm_entries(&self) -> impl Iterator<Item = (Label, IlmAction)> + '_ {
        (0..self.ilm.len() as Label).filter_map(|l| self.ilm(l).map(|a| (l, a)))
    }

    /// The members of a group.
    pub fn group(&self, g: NhgId) -> Option<Vec<NhId>> {
        let e = self.groups.get(g.0 as usize)?;
        Some(
            self.members[e.start as usize..(e.start + e.len) as usize]
                .iter()
                .map(|&m| NhId(m))
                .collect(),
        )
    }

    pub fn groups_len(&self) -> usize {
        self.groups.len()
    }

    /// A next hop in its builder form.
    pub fn next_hop(&self, id: NhId) -> Option<NextHop> {
        let e = self.nhs.get(id.0 as usize)?;
        Some(NextHop {
            port: e.port,
            dst_mac: e.dst_mac,
            src_mac: e.src_mac,
            vlan: (e.vlan != NhEntry::UNTAGGED).then_some(e.vlan),
            push: e.push[..e.n_push as usize].to_vec(),
            backup: (e.backup != NhEntry::NO_BACKUP).then_some(NhId(e.backup)),
        })
    }

    /// The name the FIB file gave next hop `nh`, if any.
    pub fn next_hop_name(&self, nh: NhId) -> Option<&str> {
        self.names.nhs.get(nh.0 as usize)?.as_deref()
    }

    /// The name the FIB file gave group `g`, if any.
    pub fn group_name(&self, g: NhgId) -> Option<&str> {
        self.names.groups.get(g.0 as usize)?.as_deref()
    }

    /// The id the FIB file gave next hop `nh`, if any.
    pub fn next_hop_id(&self, nh: NhId) -> Option<u32> {
        self.names
            .nh_ids
            .get(nh.0 as usize)
            .copied()
            .filter(|&i| i != 0)
    }

    /// The id the FIB file gave group `g`, if any.
    pub fn group_id(&self, g: NhgId) -> Option<u32> {
        self.names
            .group_ids
            .get(g.0 as usize)
            .copied()
            .filter(|&i| i != 0)
    }

    pub fn next_hops_len(&self) -> usize {
        self.nhs.len()
    }

    /// Longest-prefix match (slow-path helper; the pipeline inlines its own).
    pub fn lookup_v4(&self, dst: std::net::Ipv4Addr) -> Option<NhgId> {
        self.v4.lookup(dst.to_bits()).map(NhgId)
    }

    pub fn lookup_v6(&self, dst: std::net::Ipv6Addr) -> Option<NhgId> {
        self.v6.lookup(dst.to_bits()).map(NhgId)
    }

    /// Every IPv4 route: (prefix, length, group).
    pub fn routes_v4(&self) -> impl Iterator<Item = (std::net::Ipv4Addr, u8, NhgId)> + '_ {
        self.routes4
            .iter()
            .map(|&(p, l, g)| (std::net::Ipv4Addr::from_bits(p), l, NhgId(g)))
    }

    /// Every IPv6 route: (prefix, length, group).
    pub fn routes_v6(&self) -> impl Iterator<Item = (std::net::Ipv6Addr, u8, NhgId)> + '_ {
        self.routes6
            .iter()
            .map(|&(p, l, g)| (std::net::Ipv6Addr::from_bits(p), l, NhgId(g)))
    }

    /// Declared ports with their MTUs.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, u16)> + '_ {
        self.mtu
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0)
            .map(|(i, &m)| (i as PortId, m))
    }

    /// MTU of a declared port.
    pub fn port_mtu(&self, p: PortId) -> Option<u16> {
        self.mtu.get(p as usize).copied().filter(|&m| m != 0)
    }

    /// True when `l` may be bound in an ILM (RFC 3032: 16..=2^20-1).
    pub fn bindable(l: Label) -> bool {
        (label::FIRST_UNRESERVED..=label::MAX).contains(&l)
    }
}
