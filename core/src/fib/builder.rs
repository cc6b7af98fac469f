//! Building and validating a [`FibSnapshot`].
//!
//! The builder takes entries in any order, then `build` checks the whole
//! table and either returns a consistent snapshot or refuses it with the first
//! problem found, named by entry and field, e.g.
//! `label 16005: out_label: 5 is a reserved label (RFC 3032) ...`.
//! Nothing is half-built: the caller's running FIB is untouched either way.

use super::lpm::{self, Lpm4, Lpm6};
use super::*;
use crate::wire::mpls::label;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a FIB was refused: which entry, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {field}: {problem}")]
pub struct FibError {
    pub entry: String,
    pub field: &'static str,
    pub problem: String,
}

fn err(entry: impl Into<String>, field: &'static str, problem: impl Into<String>) -> FibError {
    FibError {
        entry: entry.into(),
        field,
        problem: problem.into(),
    }
}

/// A port the FIB may forward to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// Largest L3 packet (bytes after the Ethernet header, labels included).
    pub mtu: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { mtu: DEFAULT_MTU }
    }
}

/// A next hop (NHLFE, RFC 3031 section 3.10) in its readable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub port: PortId,
    pub dst_mac: MacBytes,
    pub src_mac: MacBytes,
    /// 802.1Q VLAN id to tag with (1..=4094), or untagged.
    pub vlan: Option<u16>,
    /// Labels to push, top of stack first (at most [`MAX_PUSH`]).
    pub push: Vec<Label>,
    /// Next hop to use while `port` is down.
    pub backup: Option<NhId>,
}

/// Collects entries, then validates and builds a [`FibSnapshot`].
#[derive(Debug, Clone, Default)]
pub struct FibBuilder {
    version: u64,
    ports: Vec<(PortId, PortConfig)>,
    nhs: Vec<NextHop>,
    groups: Vec<Vec<NhId>>,
    ilm: Vec<(Label, IlmAction)>,
    v4: Vec<(Ipv4Addr, u8, NhgId)>,
    v6: Vec<(Ipv6Addr, u8, NhgId)>,
    ingress_ttl: TtlModel,
    egress_ttl: TtlModel,
    hash_seed: u32,
    names: EntryNames,
}

/// The names a FIB file gave its entries, so that errors name them as the
/// file does (`next hop "sat2"`) rather than by index; entries built in
/// code without names are named by index.
#[derive(Debug, Clone, Default)]
struct EntryNames {
    ports: Vec<(PortId, String)>,
    nhs: Vec<(u32, String)>,
    groups: Vec<(u32, String)>,
    /// Ids given by a FIB file, as (entry index, id).
    nh_ids: Vec<(u32, u32)>,
    group_ids: Vec<(u32, u32)>,
}

impl EntryNames {
    /// The names `fib show` gives next hops and groups: the file's, by id
    /// (the first given where several are), `None` where none was given.
    fn shown(&self, nhs: usize, groups: usize) -> super::ShownNames {
        let by_id = |list: &[(u32, String)], n: usize| -> Box<[Option<Box<str>>]> {
            let mut v = vec![None; n];
            for (i, name) in list.iter().rev() {
                if let Some(slot) = v.get_mut(*i as usize) {
                    *slot = Some(name.as_str().into());
                }
            }
            v.into_boxed_slice()
        };
        let ids = |list: &[(u32, u32)], n: usize| -> Box<[u32]> {
            let mut v = vec![0; n];
            for &(i, id) in list {
                if let Some(slot) = v.get_mut(i as usize) {
                    *slot = id;
                }
            }
            v.into_boxed_slice()
        };
        super::ShownNames {
            nhs: by_id(&self.nhs, nhs),
            groups: by_id(&self.groups, groups),
            nh_ids: ids(&self.nh_ids, nhs),
            group_ids: ids(&self.group_ids, groups),
        }
    }
    fn find<K: PartialEq>(list: &[(K, String)], k: K) -> Option<&str> {
        list.iter().find(|(i, _)| *i == k).map(|(_, n)| n.as_str())
    }
    fn port(&self, id: PortId) -> String {
        Self::find(&self.ports, id).map_or_else(|| format!("port {id}"), |n| format!("port {n:?}"))
    }
    fn nh(&self, i: usize) -> String {
        Self::find(&self.nhs, i as u32)
            .map_or_else(|| format!("next hop {i}"), |n| format!("next hop {n:?}"))
    }
    fn group(&self, i: usize) -> String {
        Self::find(&self.groups, i as u32)
            .map_or_else(|| format!("next-hop group {i}"), |n| format!("group {n:?}"))
    }
}

impl FibBuilder {
    pub fn new() -> FibBuilder {
        FibBuilder::default()
    }

    /// The version workers report while this FIB is active.
    pub fn version(mut self, v: u64) -> Self {
        self.version = v;
        self
    }

    pub fn ttl_models(mut self, ingress: TtlModel, egress: TtlModel) -> Self {
        self.ingress_ttl = ingress;
        self.egress_ttl = egress;
        self
    }

    /// Seed mixed into the ECMP hash; give each node its own so that
    /// consecutive hops do not make correlated choices (hash polarisation).
    pub fn hash_seed(mut self, seed: u32) -> Self {
        self.hash_seed = seed;
        self
    }

    /// Names a port, next hop or group for error messages (see [`EntryNames`]).
    pub fn name_port(&mut self, id: PortId, name: &str) {
        self.names.ports.push((id, name.to_string()));
    }
    pub fn name_next_hop(&mut self, nh: NhId, name: &str) {
        self.names.nhs.push((nh.0, name.to_string()));
    }
    pub fn name_group(&mut self, g: NhgId, name: &str) {
        self.names.groups.push((g.0, name.to_string()));
    }
    /// Records the id a FIB file gave a next hop or group (for `fib show`).
    pub fn id_next_hop(&mut self, nh: NhId, id: u32) {
        self.names.nh_ids.push((nh.0, id));
    }
    pub fn id_group(&mut self, g: NhgId, id: u32) {
        self.names.group_ids.push((g.0, id));
    }

    pub fn set_version(&mut self, v: u64) {
        self.version = v;
    }

    pub fn port(&mut self, id: PortId, cfg: PortConfig) -> &mut Self {
        self.ports.push((id, cfg));
        self
    }

    pub fn next_hop(&mut self, nh: NextHop) -> NhId {
        self.nhs.push(nh);
        NhId(self.nhs.len() as u32 - 1)
    }

    /// Sets (or clears) the backup of a next hop added earlier.
    pub fn set_backup(&mut self, nh: NhId, backup: Option<NhId>) {
        if let Some(n) = self.nhs.get_mut(nh.0 as usize) {
            n.backup = backup;
        }
    }

    pub fn group(&mut self, members: &[NhId]) -> NhgId {
        self.groups.push(members.to_vec());
        NhgId(self.groups.len() as u32 - 1)
    }

    pub fn label(&mut self, l: Label, action: IlmAction) -> &mut Self {
        self.ilm.push((l, action));
        self
    }

    pub fn route_v4(&mut self, prefix: Ipv4Addr, len: u8, nhg: NhgId) -> &mut Self {
        self.v4.push((prefix, len, nhg));
        self
    }

    pub fn route_v6(&mut self, prefix: Ipv6Addr, len: u8, nhg: NhgId) -> &mut Self {
        self.v6.push((prefix, len, nhg));
        self
    }

    /// Validates everything and builds the snapshot.
    pub fn build(&self) -> Result<FibSnapshot, FibError> {
        super::spec::check_version(self.version).map_err(|m| err("FIB", "version", m))?;
        let mtu = self.check_ports()?;
        let mut nhs = Vec::with_capacity(self.nhs.len());
        for (i, nh) in self.nhs.iter().enumerate() {
            nhs.push(check_next_hop(
                &|| self.names.nh(i),
                i,
                nh,
                &mtu,
                self.nhs.len(),
            )?);
        }
        let (groups, members) = self.check_groups(nhs.len())?;
        let (ilm, labels_bound) = self.build_ilm(&groups, &members, &nhs)?;
        let (v4, v6) = self.check_routes(groups.len())?;
        let single_nh = groups
            .iter()
            .map(|g| {
                if g.len == 1 {
                    members[g.start as usize]
                } else {
                    u32::MAX
                }
            })
            .collect();
        Ok(FibSnapshot {
            version: self.version,
            single_nh,
            labels_bound,
            ilm: ilm.into_boxed_slice(),
            groups: groups.into_boxed_slice(),
            members: members.into_boxed_slice(),
            nhs: nhs.into_boxed_slice(),
            v4: Lpm4::build(&v4),
            routes4: v4.into_boxed_slice(),
            routes6: v6.clone().into_boxed_slice(),
            v6: Lpm6::build(&v6),
            mtu,
            ingress_ttl: self.ingress_ttl,
            egress_ttl: self.egress_ttl,
            hash_seed: self.hash_seed,
            names: self.names.shown(self.nhs.len(), self.groups.len()),
        })
    }

    /// Each port once, below [`MAX_PORTS`], with an MTU in 68..=9216; the
    /// MTU per port id (0: not declared).
    fn check_ports(&self) -> Result<[u16; MAX_PORTS], FibError> {
        let mut mtu = [0u16; MAX_PORTS];
        for &(id, cfg) in &self.ports {
            let e = || self.names.port(id);
            if id as usize >= MAX_PORTS {
                return Err(err(e(), "id", format!("must be below {MAX_PORTS}")));
            }
            if mtu[id as usize] != 0 {
                return Err(err(e(), "id", "declared twice"));
            }
            if !(68..=9216).contains(&cfg.mtu) {
                return Err(err(e(), "mtu", format!("{} is outside 68..=9216", cfg.mtu)));
            }
            mtu[id as usize] = cfg.mtu;
        }
        Ok(mtu)
    }

    /// Next-hop groups: 1..=[`MAX_ECMP`] existing next hops each, laid out
    /// as ranges of one members array.
    fn check_groups(&self, n_nhs: usize) -> Result<(Vec<NhgEntry>, Vec<u32>), FibError> {
        if self.groups.len() > IlmEntry::MAX_GROUP as usize
            || self.groups.len() > lpm::MAX_VALUE as usize
        {
            return Err(err("next-hop groups", "count", "too many groups"));
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        let mut members = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let e = || self.names.group(i);
            if g.is_empty() {
                return Err(err(e(), "members", "a group needs at least one next hop"));
            }
            if g.len() > MAX_ECMP {
                return Err(err(
                    e(),
                    "members",
                    format!("{} paths; at most {MAX_ECMP}", g.len()),
                ));
            }
            for m in g {
                if m.0 as usize >= n_nhs {
                    return Err(err(
                        e(),
                        "members",
                        format!("next hop {} does not exist", m.0),
                    ));
                }
            }
            groups.push(NhgEntry {
                start: members.len() as u32,
                len: g.len() as u32,
            });
            members.extend(g.iter().map(|m| m.0));
        }
        Ok((groups, members))
    }

    /// The ILM, indexed by label, and the number of labels bound. A swap is
    /// marked fast when every path of its group is untagged and pushes nothing.
    fn build_ilm(
        &self,
        groups: &[NhgEntry],
        members: &[u32],
        nhs: &[NhEntry],
    ) -> Result<(Vec<IlmEntry>, usize), FibError> {
        // Every label is checked before the table is sized from the largest
        // (a label of 2^32 - 1 must be an error, not a 32 GiB allocation).
        let mut bound = HashSet::with_capacity(self.ilm.len());
        for &(l, _) in &self.ilm {
            check_in_label(l, &mut bound)?;
        }
        let top = self.ilm.iter().map(|e| e.0).max();
        let mut ilm = vec![IlmEntry::default(); top.map_or(0, |t| t as usize + 1)];
        for &(l, action) in &self.ilm {
            let e = || format!("label {l}");
            ilm[l as usize] = match action {
                IlmAction::Pop => IlmEntry {
                    word: IlmEntry::POP << 30,
                    out_label: 0,
                },
                IlmAction::Swap { out_label, nhg } => {
                    group_ok(&e, nhg, groups.len())?;
                    check_out_label(&e, "out_label", out_label)?;
                    // Fast when every path is untagged and pushes nothing.
                    let g = groups[nhg.0 as usize];
                    let fast = out_label != label::IMPLICIT_NULL
                        && members[g.start as usize..(g.start + g.len) as usize]
                            .iter()
                            .all(|&m| {
                                let nh = &nhs[m as usize];
                                nh.n_push == 0 && nh.vlan == NhEntry::UNTAGGED
                            });
                    IlmEntry {
                        word: (IlmEntry::SWAP << 30)
                            | if fast { IlmEntry::FAST } else { 0 }
                            | nhg.0,
                        out_label,
                    }
                }
            };
        }
        Ok((ilm, bound.len()))
    }

    /// The IPv4 and IPv6 routes as (address bits, length, group): no host
    /// bits, each prefix once, an existing group.
    #[allow(clippy::type_complexity)]
    fn check_routes(
        &self,
        n_groups: usize,
    ) -> Result<(Vec<(u32, u8, u32)>, Vec<(u128, u8, u32)>), FibError> {
        // Both families go through one check, on the address as a u128.
        let mut seen = HashSet::with_capacity(self.v4.len() + self.v6.len());
        let mut route = |e: &dyn Fn() -> String, bits: u128, len: u8, width: u8, nhg: NhgId| {
            if len > width {
                return Err(err(e(), "prefix_len", format!("longer than {width}")));
            }
            let host = if len >= width {
                0
            } else {
                (u128::MAX >> (128 - width as u32)) >> len
            };
            if bits & host != 0 {
                return Err(err(e(), "prefix", "host bits set beyond the prefix length"));
            }
            if !seen.insert((width, bits, len)) {
                return Err(err(e(), "prefix", "listed twice"));
            }
            group_ok(e, nhg, n_groups)
        };
        let mut v4 = Vec::with_capacity(self.v4.len());
        for &(p, len, nhg) in &self.v4 {
            route(
                &|| format!("route {p}/{len}"),
                p.to_bits() as u128,
                len,
                32,
                nhg,
            )?;
            v4.push((p.to_bits(), len, nhg.0));
        }
        let mut v6 = Vec::with_capacity(self.v6.len());
        for &(p, len, nhg) in &self.v6 {
            route(&|| format!("route {p}/{len}"), p.to_bits(), len, 128, nhg)?;
            v6.push((p.to_bits(), len, nhg.0));
        }
        Ok((v4, v6))
    }
}

/// A route's or swap's group must exist.
fn group_ok(e: &dyn Fn() -> String, g: NhgId, n_groups: usize) -> Result<(), FibError> {
    if (g.0 as usize) < n_groups {
        Ok(())
    } else {
        Err(err(
            e(),
            "nhg",
            format!("next-hop group {} does not exist", g.0),
        ))
    }
}

/// A label bound in the ILM: 16..=2^20-1 (0-15 are reserved), once.
fn check_in_label(l: Label, bound: &mut HashSet<Label>) -> Result<(), FibError> {
    let e = || format!("label {l}");
    if l > label::MAX {
        return Err(err(e(), "label", "larger than 20 bits (1048575)"));
    }
    if label::is_reserved(l) {
        return Err(err(
            e(),
            "label",
            "0-15 are reserved (RFC 3032, RFC 7274) and handled by the dataplane itself",
        ));
    }
    if !bound.insert(l) {
        return Err(err(e(), "label", "bound twice"));
    }
    Ok(())
}

/// Labels a next hop may push or a swap may write: 16.. and the explicit
/// nulls 0/2 (an egress that asked for explicit null, RFC 3032 section 2.1).
fn check_out_label(e: &dyn Fn() -> String, field: &'static str, l: Label) -> Result<(), FibError> {
    if l > label::MAX {
        return Err(err(e(), field, format!("{l} is larger than 20 bits")));
    }
    if label::is_reserved(l)
        && l != label::IPV4_EXPLICIT_NULL
        && l != label::IPV6_EXPLICIT_NULL
        && !(field == "out_label" && l == label::IMPLICIT_NULL)
    {
        return Err(err(e(),
            field,
            format!("{l} is a reserved label (RFC 3032/7274); only 0, 2 (explicit null) and 3 (implicit null, swap only) may be used"),
        ));
    }
    Ok(())
}

fn check_next_hop(
    e: &dyn Fn() -> String,
    i: usize,
    nh: &NextHop,
    mtu: &[u16; MAX_PORTS],
    count: usize,
) -> Result<NhEntry, FibError> {
    if nh.port as usize >= MAX_PORTS || mtu[nh.port as usize] == 0 {
        return Err(err(
            e(),
            "port",
            format!("port {} is not declared in this FIB", nh.port),
        ));
    }
    if nh.src_mac[0] & 1 != 0 || nh.src_mac == [0; 6] {
        return Err(err(e(), "src_mac", "must be a non-zero unicast address"));
    }
    if nh.dst_mac == [0; 6] {
        return Err(err(e(), "dst_mac", "must not be all zeros"));
    }
    if let Some(v) = nh.vlan {
        if !(1..=4094).contains(&v) {
            return Err(err(e(), "vlan", format!("{v} is outside 1..=4094")));
        }
    }
    if nh.push.len() > MAX_PUSH {
        return Err(err(
            e(),
            "push",
            format!(
                "{} labels; a next hop pushes at most {MAX_PUSH}",
                nh.push.len()
            ),
        ));
    }
    for &l in &nh.push {
        check_out_label(e, "push", l)?;
    }
    if let Some(b) = nh.backup {
        if b.0 as usize >= count {
            return Err(err(
                e(),
                "backup",
                format!("next hop {} does not exist", b.0),
            ));
        }
        if b.0 as usize == i {
            return Err(err(e(), "backup", "a next hop cannot back itself up"));
        }
    }
    let mut push = [0; MAX_PUSH];
    push[..nh.push.len()].copy_from_slice(&nh.push);
    Ok(NhEntry {
        dst_mac: nh.dst_mac,
        src_mac: nh.src_mac,
        port: nh.port,
        vlan: nh.vlan.unwrap_or(NhEntry::UNTAGGED),
        n_push: nh.push.len() as u8,
        _pad: [0; 3],
        push,
        backup: nh.backup.map_or(NhEntry::NO_BACKUP, |b| b.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nh(port: PortId) -> NextHop {
        NextHop {
            port,
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            vlan: None,
            push: vec![],
            backup: None,
        }
    }

    fn base() -> (FibBuilder, NhgId) {
        let mut b = FibBuilder::new();
        b.port(0, PortConfig::default());
        let n = b.next_hop(nh(0));
        let g = b.group(&[n]);
        (b, g)
    }

    fn refused(b: &FibBuilder) -> FibError {
        b.build().expect_err("the builder should refuse this FIB")
    }

    #[test]
    fn a_valid_fib_reads_back() {
        let (mut b, g) = base();
        b.label(
            16001,
            IlmAction::Swap {
                out_label: 16001,
                nhg: g,
            },
        )
        .label(16002, IlmAction::Pop)
        .route_v4("10.1.0.0".parse().unwrap(), 16, g);
        let f = b.clone().version(7).build().unwrap();
        assert_eq!(f.version(), 7);
        assert_eq!(f.labels_bound(), 2);
        assert_eq!(f.label_table_len(), 16003);
        assert_eq!(
            f.ilm(16001),
            Some(IlmAction::Swap {
                out_label: 16001,
                nhg: g
            })
        );
        assert_eq!(f.ilm(16002), Some(IlmAction::Pop));
        assert_eq!(f.ilm(16000), None);
        assert_eq!(f.ilm(99_999_999), None);
        assert_eq!(f.lookup_v4("10.1.2.3".parse().unwrap()), Some(g));
        assert_eq!(f.next_hop(NhId(0)), Some(nh(0)));
        assert_eq!(f.ilm_entries().count(), 2);
    }

    #[test]
    fn reserved_and_out_of_range_labels_are_refused() {
        let (mut b, g) = base();
        b.label(15, IlmAction::Pop);
        let e = refused(&b);
        assert_eq!((e.entry.as_str(), e.field), ("label 15", "label"));

        let (mut b, g2) = base();
        b.label(1 << 20, IlmAction::Pop);
        assert_eq!(refused(&b).field, "label");
        let _ = g2;

        let (mut b, _) = base();
        b.label(
            16005,
            IlmAction::Swap {
                out_label: 5,
                nhg: g,
            },
        );
        let e = refused(&b);
        assert_eq!((e.entry.as_str(), e.field), ("label 16005", "out_label"));
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn dangling_references_are_refused() {
        let (mut b, _) = base();
        b.label(
            16001,
            IlmAction::Swap {
                out_label: 16001,
                nhg: NhgId(9),
            },
        );
        assert_eq!(refused(&b).field, "nhg");

        let (mut b, _) = base();
        b.group(&[NhId(4)]);
        assert_eq!(refused(&b).entry, "next-hop group 1");

        let (mut b, _) = base();
        b.next_hop(NextHop { port: 3, ..nh(0) });
        let e = refused(&b);
        assert_eq!((e.entry.as_str(), e.field), ("next hop 1", "port"));

        let (mut b, _) = base();
        b.next_hop(NextHop {
            backup: Some(NhId(1)),
            ..nh(0)
        });
        assert_eq!(refused(&b).field, "backup");
    }

    #[test]
    fn shapes_are_checked() {
        let (mut b, _) = base();
        b.next_hop(NextHop {
            push: vec![16000; MAX_PUSH + 1],
            ..nh(0)
        });
        assert_eq!(refused(&b).field, "push");

        let (mut b, _) = base();
        b.group(&[]);
        assert_eq!(refused(&b).field, "members");

        let (mut b, _) = base();
        b.group(&vec![NhId(0); MAX_ECMP + 1]);
        assert_eq!(refused(&b).field, "members");

        let (mut b, g) = base();
        b.route_v4("10.1.0.1".parse().unwrap(), 16, g);
        assert_eq!(refused(&b).field, "prefix");

        let (mut b, g) = base();
        b.route_v6("2001:db8::".parse().unwrap(), 129, g);
        assert_eq!(refused(&b).field, "prefix_len");

        let (mut b, g) = base();
        b.label(16001, IlmAction::Pop).label(
            16001,
            IlmAction::Swap {
                out_label: 3,
                nhg: g,
            },
        );
        assert!(refused(&b).to_string().contains("bound twice"));

        let (mut b, _) = base();
        b.port(1, PortConfig { mtu: 20 });
        assert_eq!(refused(&b).field, "mtu");

        let (mut b, _) = base();
        b.next_hop(NextHop {
            src_mac: [1, 0, 0, 0, 0, 1],
            ..nh(0)
        });
        assert_eq!(refused(&b).field, "src_mac");
    }
}
