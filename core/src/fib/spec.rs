//! The human-readable FIB file: what `orbitmesh-dp --fib` and
//! `orbitmesh-ctl fib load/check` read (TOML, or JSON for generated files).
//!
//! ```toml
//! version = 7                       # reported by the dataplane while active
//! ttl_ingress = "uniform"           # RFC 3443: "uniform" (default) or "pipe"
//! ttl_egress = "uniform"
//! hash_seed = 1                     # ECMP hash seed; give each node its own
//!
//! [[ports]]                         # the ports this FIB forwards to, by name
//! name = "isl0"                     # = a port name in the dataplane's config
//! mtu = 1500                        # default 1500
//!
//! [[ports]]
//! name = "isl1"
//!
//! [[next_hops]]
//! name = "sat2"                     # referenced by groups, labels, routes
//! # id = 12                         # optional stable id (see FibFile)
//! port = "isl0"
//! dst_mac = "02:00:00:00:02:01"
//! src_mac = "02:00:00:00:01:01"
//! push = []                         # labels pushed, top first (<= 6)
//! backup = "sat3"                   # optional: used while isl0 is down
//! # vlan = 100                      # optional 802.1Q tag
//!
//! [[next_hops]]
//! name = "sat3"
//! port = "isl1"
//! dst_mac = "02:00:00:00:03:01"
//! src_mac = "02:00:00:00:01:02"
//! vlan = 7
//!
//! [[groups]]                        # ECMP, up to 64 next hops
//! name = "east"
//! next_hops = ["sat2", "sat3"]
//!
//! [[labels]]                        # swap: out_label (default: the same label)
//! label = 16002                     #   and group or next_hop
//! action = "swap"
//! next_hop = "sat2"
//!
//! [[labels]]
//! label = 16001                     # pop: continue with the next label, or
//! action = "pop"                    #   forward by the inner IP header
//!
//! [[routes]]                        # ingress (label edge): LPM -> push
//! prefix = "10.2.0.0/16"
//! group = "east"
//! ```
//!
//! Port indices are the dataplane's: `build_for_ports` resolves each port
//! name against the dataplane's port list (refusing unknown names); `build`
//! numbers them in the order the file lists them (for offline checks).
//! Every reference is checked, and errors name the entry and the field.
//!
//! Inside [`FibSpec`] next hops and groups are referred to by stable ids
//! ([`NextHopId`], [`GroupId`]; like `ip nexthop add id N`), so that a
//! schedule delta ([`crate::schedule::FibDelta`]) can add or remove one
//! without renumbering the rest; names are what people read and what a
//! file refers to. [`FibFile`] is the text edge: it resolves names to ids
//! and documents how ids are given when a file gives none.

pub use super::prefix::Prefix;
use super::{
    FibBuilder, FibError, FibSnapshot, IlmAction, NextHop, NhId, NhgId, PortConfig, TtlModel,
};
pub use crate::wire::ethernet::{format_mac, parse_mac, Mac};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtlSpec {
    #[default]
    Uniform,
    Pipe,
}

/// As written in a FIB file: `uniform`, `pipe`.
impl std::fmt::Display for TtlSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TtlSpec::Uniform => "uniform",
            TtlSpec::Pipe => "pipe",
        })
    }
}

impl From<TtlSpec> for TtlModel {
    fn from(t: TtlSpec) -> TtlModel {
        match t {
            TtlSpec::Uniform => TtlModel::Uniform,
            TtlSpec::Pipe => TtlModel::Pipe,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub name: String,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

fn default_mtu() -> u16 {
    super::DEFAULT_MTU
}

/// A next hop's id: stable, given by whoever writes the FIB (as with
/// Linux's `ip nexthop add id N`), so that a schedule delta can add or
/// remove one next hop without renumbering the others. 1..=[`MAX_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NextHopId(pub u32);

/// A next-hop group's id: stable like [`NextHopId`]. 1..=[`MAX_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub u32);

impl std::fmt::Display for NextHopId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Largest next-hop or group id: the largest positive 32-bit signed
/// integer, so an id is the same number in every JSON or TOML reader, and
/// `u32::MAX` stays free to mean "none" in the binary encoding.
pub const MAX_ID: u32 = i32::MAX as u32;

/// A next hop: out of `port` with these MACs, optionally tagged and
/// pushing labels, with an optional backup (by id). `name` labels it for
/// people (`fib show`, errors) and for references in a FIB file. Its own
/// serde form (in schedule deltas) carries ids; a whole [`FibSpec`] is
/// read and written with references by name (see [`FibFile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NextHopById")]
pub struct NextHopSpec {
    pub id: NextHopId,
    pub name: String,
    pub port: String,
    pub dst_mac: Mac,
    pub src_mac: Mac,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<NextHopId>,
}

/// ECMP over next hops (by id); `name` as for [`NextHopSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub id: GroupId,
    pub name: String,
    pub next_hops: Vec<NextHopId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionSpec {
    Swap,
    Pop,
}

/// An ILM entry: swap to a group or one next hop (by id), or pop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    pub label: u32,
    pub action: ActionSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_label: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHopId>,
}

/// A route: `prefix` to a group or one next hop (by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RouteById")]
pub struct RouteSpec {
    pub prefix: Prefix,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHopId>,
}

/// Largest FIB version: TOML's integers are signed 64-bit, so a larger
/// version could not be written back as TOML (`fib convert`, `fib show`).
pub const MAX_VERSION: u64 = i64::MAX as u64;
/// Longest name of a port, next hop or group, in bytes. Names are
/// identifiers; the bound also keeps a binary FIB, whose entries refer to
/// interned names by a 4-byte index, from expanding more than a few times
/// its size when decoded.
pub const MAX_NAME: usize = 64;

fn bounded_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    check_version(v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

/// Refuses a version above [`MAX_VERSION`].
pub(crate) fn check_version(v: u64) -> Result<(), String> {
    if v > MAX_VERSION {
        return Err(format!(
            "version {v} is above the largest allowed, {MAX_VERSION} (2^63 - 1)"
        ));
    }
    Ok(())
}

/// Refuses an empty name or one longer than [`MAX_NAME`] bytes.
fn check_name(e: &dyn Fn() -> String, field: &'static str, name: &str) -> Result<(), FibError> {
    if name.is_empty() {
        return Err(ferr(e(), field, "a name must not be empty"));
    }
    if name.len() > MAX_NAME {
        return Err(ferr(
            e(),
            field,
            format!("{} bytes; a name has at most {MAX_NAME}", name.len()),
        ));
    }
    Ok(())
}

/// How a FIB file is encoded, from its name: `.omfib` is read only as
/// binary, `.toml` only as TOML, `.json` only as JSON; any other name is
/// told apart by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibFormat {
    Binary,
    Toml,
    Json,
    Sniff,
}

impl FibFormat {
    pub fn of_path(path: &std::path::Path) -> FibFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("omfib") => FibFormat::Binary,
            Some("toml") => FibFormat::Toml,
            Some("json") => FibFormat::Json,
            _ => FibFormat::Sniff,
        }
    }
}

/// A whole FIB: MACs and prefixes as values, references between entries
/// by id. Read through [`FibFile`] (serde's `try_from`), so a bad value or
/// reference is an error naming its entry and field wherever the FIB comes
/// from; written (`Serialize`) the same way, references by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "FibFile")]
pub struct FibSpec {
    pub version: u64,
    pub ttl_ingress: TtlSpec,
    pub ttl_egress: TtlSpec,
    pub hash_seed: u32,
    pub ports: Vec<PortSpec>,
    pub next_hops: Vec<NextHopSpec>,
    pub groups: Vec<GroupSpec>,
    pub labels: Vec<LabelSpec>,
    pub routes: Vec<RouteSpec>,
}

/// The file model of a FIB: [`FibSpec`] as TOML/JSON carry it, MACs and
/// prefixes still text, references by name. [`FibSpec`]'s `TryFrom` turns
/// it into values, each bad one an error naming the entry and field
/// ("next hop \"s0\": dst_mac: ..."), the same text whether the FIB came
/// from a file or a request.
///
/// Ids: a next hop or group may give `id = N` (1..=[`MAX_ID`], unique
/// among next hops, resp. groups); the ones that do not are given, in file
/// order, the smallest ids from 1 that no entry gives explicitly. A file
/// with no ids thus numbers its next hops 1, 2, 3... in order, and that is
/// also the one case in which writing a FIB leaves the ids out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FibFile {
    #[serde(default, deserialize_with = "bounded_version")]
    version: u64,
    #[serde(default)]
    ttl_ingress: TtlSpec,
    #[serde(default)]
    ttl_egress: TtlSpec,
    #[serde(default)]
    hash_seed: u32,
    #[serde(default)]
    ports: Vec<PortSpec>,
    #[serde(default)]
    next_hops: Vec<NextHopFile>,
    #[serde(default)]
    groups: Vec<GroupFile>,
    #[serde(default)]
    labels: Vec<LabelFile>,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

/// A next hop as a file writes it (see [`NextHopSpec`]): backup by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopFile {
    #[serde(default)]
    id: Option<u32>,
    name: String,
    port: String,
    dst_mac: String,
    src_mac: String,
    #[serde(default)]
    vlan: Option<u16>,
    #[serde(default)]
    push: Vec<u32>,
    #[serde(default)]
    backup: Option<String>,
}

/// A group as a file writes it (see [`GroupSpec`]): members by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    #[serde(default)]
    id: Option<u32>,
    name: String,
    next_hops: Vec<String>,
}

/// A label as a file writes it (see [`LabelSpec`]): targets by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelFile {
    label: u32,
    action: ActionSpec,
    #[serde(default)]
    out_label: Option<u32>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    next_hop: Option<String>,
}

/// A route as a file writes it (see [`RouteSpec`]): targets by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    prefix: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    next_hop: Option<String>,
}

/// A next hop in its own serde form (schedule deltas): ids, MACs as text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopById {
    id: NextHopId,
    name: String,
    port: String,
    dst_mac: String,
    src_mac: String,
    #[serde(default)]
    vlan: Option<u16>,
    #[serde(default)]
    push: Vec<u32>,
    #[serde(default)]
    backup: Option<NextHopId>,
}

/// A route in its own serde form (schedule deltas): ids, prefix as text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteById {
    prefix: String,
    #[serde(default)]
    group: Option<GroupId>,
    #[serde(default)]
    next_hop: Option<NextHopId>,
}

fn mac_of(entry: &dyn Fn() -> String, field: &'static str, text: &str) -> Result<Mac, FibError> {
    text.parse::<Mac>()
        .map_err(|e| ferr(entry(), field, e.to_string()))
}

fn prefix_of(text: &str) -> Result<Prefix, FibError> {
    text.parse().map_err(|e: super::prefix::PrefixError| {
        ferr(format!("route {text}"), "prefix", e.to_string())
    })
}

impl TryFrom<NextHopById> for NextHopSpec {
    type Error = FibError;

    fn try_from(f: NextHopById) -> Result<NextHopSpec, FibError> {
        let e = || format!("next hop {:?}", f.name);
        let (dst_mac, src_mac) = (
            mac_of(&e, "dst_mac", &f.dst_mac)?,
            mac_of(&e, "src_mac", &f.src_mac)?,
        );
        Ok(NextHopSpec {
            id: f.id,
            name: f.name,
            port: f.port,
            dst_mac,
            src_mac,
            vlan: f.vlan,
            push: f.push,
            backup: f.backup,
        })
    }
}

impl TryFrom<RouteById> for RouteSpec {
    type Error = FibError;

    fn try_from(f: RouteById) -> Result<RouteSpec, FibError> {
        Ok(RouteSpec {
            prefix: prefix_of(&f.prefix)?,
            group: f.group,
            next_hop: f.next_hop,
        })
    }
}

/// Ids for entries that may give one: given ones as given, the others in
/// order the smallest from 1 that no entry gives (see [`FibFile`]).
fn assign_ids(given: impl Iterator<Item = Option<u32>> + Clone) -> Vec<u32> {
    let taken: HashSet<u32> = given.clone().flatten().collect();
    let mut next = 1u32;
    given
        .map(|g| {
            g.unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// Names to ids, refusing a name defined twice (`what` = "next hop", "group").
fn ids_by_name<'a>(
    names: impl Iterator<Item = &'a str>,
    ids: &[u32],
    what: &str,
) -> Result<HashMap<&'a str, u32>, FibError> {
    let mut by_name = HashMap::new();
    for (name, &id) in names.zip(ids) {
        if by_name.insert(name, id).is_some() {
            return Err(ferr(format!("{what} {name:?}"), "name", "defined twice"));
        }
    }
    Ok(by_name)
}

/// Resolves a file's references by name (see [`FibFile`]).
struct ByName<'a> {
    nhs: HashMap<&'a str, u32>,
    groups: HashMap<&'a str, u32>,
}

impl ByName<'_> {
    fn nh(
        &self,
        e: &dyn Fn() -> String,
        field: &'static str,
        n: &str,
    ) -> Result<NextHopId, FibError> {
        self.nhs
            .get(n)
            .map(|&i| NextHopId(i))
            .ok_or_else(|| ferr(e(), field, format!("no next hop named {n:?}")))
    }
    fn group(&self, e: &dyn Fn() -> String, g: &str) -> Result<GroupId, FibError> {
        self.groups
            .get(g)
            .map(|&i| GroupId(i))
            .ok_or_else(|| ferr(e(), "group", format!("no group named {g:?}")))
    }
    fn opt_nh(
        &self,
        e: &dyn Fn() -> String,
        n: &Option<String>,
    ) -> Result<Option<NextHopId>, FibError> {
        n.as_deref().map(|n| self.nh(e, "next_hop", n)).transpose()
    }
    fn opt_group(
        &self,
        e: &dyn Fn() -> String,
        g: &Option<String>,
    ) -> Result<Option<GroupId>, FibError> {
        g.as_deref().map(|g| self.group(e, g)).transpose()
    }
}

impl TryFrom<FibFile> for FibSpec {
    type Error = FibError;

    fn try_from(f: FibFile) -> Result<FibSpec, FibError> {
        let nh_ids = assign_ids(f.next_hops.iter().map(|n| n.id));
        let group_ids = assign_ids(f.groups.iter().map(|g| g.id));
        let by = ByName {
            nhs: ids_by_name(
                f.next_hops.iter().map(|n| n.name.as_str()),
                &nh_ids,
                "next hop",
            )?,
            groups: ids_by_name(
                f.groups.iter().map(|g| g.name.as_str()),
                &group_ids,
                "group",
            )?,
        };
        let mut next_hops = Vec::with_capacity(f.next_hops.len());
        for (n, &id) in f.next_hops.iter().zip(&nh_ids) {
            let e = || format!("next hop {:?}", n.name);
            next_hops.push(NextHopSpec {
                id: NextHopId(id),
                name: n.name.clone(),
                port: n.port.clone(),
                dst_mac: mac_of(&e, "dst_mac", &n.dst_mac)?,
                src_mac: mac_of(&e, "src_mac", &n.src_mac)?,
                vlan: n.vlan,
                push: n.push.clone(),
                backup: n
                    .backup
                    .as_deref()
                    .map(|b| by.nh(&e, "backup", b))
                    .transpose()?,
            });
        }
        let mut groups = Vec::with_capacity(f.groups.len());
        for (g, &id) in f.groups.iter().zip(&group_ids) {
            let e = || format!("group {:?}", g.name);
            groups.push(GroupSpec {
                id: GroupId(id),
                name: g.name.clone(),
                next_hops: g
                    .next_hops
                    .iter()
                    .map(|m| by.nh(&e, "next_hops", m))
                    .collect::<Result<_, _>>()?,
            });
        }
        let mut labels = Vec::with_capacity(f.labels.len());
        for l in &f.labels {
            let e = || format!("label {}", l.label);
            labels.push(LabelSpec {
                label: l.label,
                action: l.action,
                out_label: l.out_label,
                group: by.opt_group(&e, &l.group)?,
                next_hop: by.opt_nh(&e, &l.next_hop)?,
            });
        }
        let mut routes = Vec::with_capacity(f.routes.len());
        for r in &f.routes {
            let prefix = prefix_of(&r.prefix)?;
            let e = || format!("route {prefix}");
            routes.push(RouteSpec {
                prefix,
                group: by.opt_group(&e, &r.group)?,
                next_hop: by.opt_nh(&e, &r.next_hop)?,
            });
        }
        let spec = FibSpec {
            version: f.version,
            ttl_ingress: f.ttl_ingress,
            ttl_egress: f.ttl_egress,
            hash_seed: f.hash_seed,
            ports: f.ports,
            next_hops,
            groups,
            labels,
            routes,
        };
        spec.check_ids()?;
        Ok(spec)
    }
}

/// Refuses an id of 0 or above [`MAX_ID`], or one given twice (`what` =
/// "next hop", "group").
fn check_unique_ids<'a>(
    items: impl Iterator<Item = (u32, &'a str)>,
    what: &str,
) -> Result<(), FibError> {
    let mut seen: HashMap<u32, &str> = HashMap::new();
    for (id, name) in items {
        let e = || format!("{what} {name:?}");
        if id == 0 || id > MAX_ID {
            return Err(ferr(e(), "id", format!("{id} is outside 1..={MAX_ID}")));
        }
        if let Some(other) = seen.insert(id, name) {
            return Err(ferr(
                e(),
                "id",
                format!("{id} is also the id of {what} {other:?}"),
            ));
        }
    }
    Ok(())
}

/// A [`FibSpec`] as written: references by name, ids only where they are
/// not 1, 2, 3... in order (see [`FibFile`]). A reference to an id no entry
/// has (possible only in a spec made in code) is written `#<id>`, which
/// reading back refuses as a name no entry has.
/// [`FibSpec::written`] gives it, e.g. to compare two FIBs as written.
#[derive(Debug, PartialEq, Serialize)]
pub struct WrittenFib<'a> {
    pub version: u64,
    pub ttl_ingress: TtlSpec,
    pub ttl_egress: TtlSpec,
    pub hash_seed: u32,
    pub ports: &'a [PortSpec],
    pub next_hops: Vec<WrittenNextHop<'a>>,
    pub groups: Vec<WrittenGroup<'a>>,
    pub labels: Vec<WrittenTarget<'a>>,
    pub routes: Vec<WrittenTarget<'a>>,
}

/// A next hop as written (see [`WrittenFib`]).
#[derive(Debug, PartialEq, Serialize)]
pub struct WrittenNextHop<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    pub name: &'a str,
    pub port: &'a str,
    pub dst_mac: Mac,
    pub src_mac: Mac,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    pub push: &'a [u32],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<Cow<'a, str>>,
}

/// A group as written (see [`WrittenFib`]).
#[derive(Debug, PartialEq, Serialize)]
pub struct WrittenGroup<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    pub name: &'a str,
    pub next_hops: Vec<Cow<'a, str>>,
}

/// A label (`label`, `action`, `out_label`) or a route (`prefix`) as
/// written, its target by name (see [`WrittenFib`]).
#[derive(Debug, PartialEq, Serialize)]
pub struct WrittenTarget<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_label: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<Cow<'a, str>>,
}

/// A spec's names by id, for writing references by name.
struct Names<'a> {
    nhs: HashMap<NextHopId, &'a str>,
    groups: HashMap<GroupId, &'a str>,
}

impl<'a> Names<'a> {
    fn of(spec: &'a FibSpec) -> Names<'a> {
        Names {
            nhs: spec
                .next_hops
                .iter()
                .map(|n| (n.id, n.name.as_str()))
                .collect(),
            groups: spec
                .groups
                .iter()
                .map(|g| (g.id, g.name.as_str()))
                .collect(),
        }
    }
    fn nh(&self, id: NextHopId) -> Cow<'a, str> {
        self.nhs
            .get(&id)
            .map_or_else(|| Cow::Owned(format!("#{id}")), |&n| Cow::Borrowed(n))
    }
    fn group(&self, id: GroupId) -> Cow<'a, str> {
        self.groups
            .get(&id)
            .map_or_else(|| Cow::Owned(format!("#{id}")), |&n| Cow::Borrowed(n))
    }
}

/// True when `ids` are 1, 2, 3... in order: what reading gives a file
/// that writes none.
fn ids_are_implicit(ids: impl Iterator<Item = u32>) -> bool {
    ids.zip(1..).all(|(id, i)| id == i)
}

impl Serialize for FibSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.written().serialize(s)
    }
}

impl FibSpec {
    /// The FIB as its file writes it (see [`WrittenFib`]).
    pub fn written(&self) -> WrittenFib<'_> {
        let names = Names::of(self);
        let nh_ids = !ids_are_implicit(self.next_hops.iter().map(|n| n.id.0));
        let group_ids = !ids_are_implicit(self.groups.iter().map(|g| g.id.0));
        WrittenFib {
            version: self.version,
            ttl_ingress: self.ttl_ingress,
            ttl_egress: self.ttl_egress,
            hash_seed: self.hash_seed,
            ports: &self.ports,
            next_hops: self
                .next_hops
                .iter()
                .map(|n| WrittenNextHop {
                    id: nh_ids.then_some(n.id.0),
                    name: &n.name,
                    port: &n.port,
                    dst_mac: n.dst_mac,
                    src_mac: n.src_mac,
                    vlan: n.vlan,
                    push: &n.push,
                    backup: n.backup.map(|b| names.nh(b)),
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|g| WrittenGroup {
                    id: group_ids.then_some(g.id.0),
                    name: &g.name,
                    next_hops: g.next_hops.iter().map(|&m| names.nh(m)).collect(),
                })
                .collect(),
            labels: self
                .labels
                .iter()
                .map(|l| WrittenTarget {
                    label: Some(l.label),
                    action: Some(l.action),
                    out_label: l.out_label,
                    prefix: None,
                    group: l.group.map(|g| names.group(g)),
                    next_hop: l.next_hop.map(|n| names.nh(n)),
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|r| WrittenTarget {
                    label: None,
                    action: None,
                    out_label: None,
                    prefix: Some(r.prefix),
                    group: r.group.map(|g| names.group(g)),
                    next_hop: r.next_hop.map(|n| names.nh(n)),
                })
                .collect(),
        }
    }
}

/// A file that could not be read as a FIB.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Syntax(String),
    #[error(transparent)]
    Invalid(#[from] FibError),
}

/// A file with nothing but white space is refused: it is far more likely
/// a truncated or mistaken file than an intended FIB.
fn refuse_blank(text: &str) -> Result<(), SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Syntax(
            "the file is empty; an intentionally empty FIB is written as `version = N` \
             (and loaded with --allow-empty)"
                .into(),
        ));
    }
    Ok(())
}

fn ferr(entry: impl Into<String>, field: &'static str, problem: impl Into<String>) -> FibError {
    FibError {
        entry: entry.into(),
        field,
        problem: problem.into(),
    }
}

/// Largest FIB file read (256 MiB: a FIB of about a million entries in
/// JSON); also the largest control message
/// ([`crate::protocol::MAX_MESSAGE`]), so any FIB read can be sent to a
/// dataplane. `/dev/zero` or a wrong, huge file is refused.
pub const MAX_FILE_BYTES: usize = 256 << 20;

impl FibSpec {
    /// A FIB file's bytes, at most [`MAX_FILE_BYTES`] of them (a longer
    /// file is an error that says so).
    pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        crate::file::read_limited(path, MAX_FILE_BYTES)
    }

    /// Reads a FIB file: binary (`.omfib`, see [`super::binary`]), JSON or
    /// TOML, told apart by their first bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<FibSpec, SpecError> {
        FibSpec::decode(bytes, FibFormat::Sniff)
    }

    /// Reads a FIB file in the format its name says (see [`FibFormat`]).
    pub fn from_file_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<FibSpec, SpecError> {
        FibSpec::decode(bytes, FibFormat::of_path(path))
    }

    /// Reads a FIB in `format`.
    pub fn decode(bytes: &[u8], format: FibFormat) -> Result<FibSpec, SpecError> {
        let binary = super::binary::is_binary(bytes);
        match format {
            FibFormat::Binary => return super::binary::decode(bytes),
            FibFormat::Sniff if binary => return super::binary::decode(bytes),
            _ => {}
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| SpecError::Syntax(format!("neither a binary FIB nor UTF-8 text: {e}")))?;
        match format {
            FibFormat::Toml => FibSpec::parse_toml(text),
            FibFormat::Json => FibSpec::parse_json(text),
            _ => FibSpec::parse(text),
        }
    }

    /// True when the FIB binds no label and routes no prefix: every frame
    /// would be dropped.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.routes.is_empty()
    }

    /// Refuses an empty FIB (see [`FibSpec::is_empty`]): loading one is
    /// almost always a mistake (a truncated or wrong file), so it takes an
    /// explicit `allow_empty`.
    pub fn check_not_empty(&self, allow_empty: bool) -> Result<(), FibError> {
        if self.is_empty() && !allow_empty {
            return Err(ferr(
                format!("FIB version {}", self.version),
                "labels",
                "no labels and no routes: it would drop every frame \
                 (allow an empty FIB explicitly, e.g. --allow-empty, if that is intended)",
            ));
        }
        Ok(())
    }

    /// The compact binary form (see [`super::binary`]).
    pub fn to_binary(&self) -> Result<Vec<u8>, SpecError> {
        super::binary::encode(self)
    }

    /// Parses TOML, or JSON when the text starts with `{`.
    pub fn parse(text: &str) -> Result<FibSpec, SpecError> {
        if text.trim_start().starts_with('{') {
            FibSpec::parse_json(text)
        } else {
            FibSpec::parse_toml(text)
        }
    }

    fn parse_json(text: &str) -> Result<FibSpec, SpecError> {
        refuse_blank(text)?;
        let file: FibFile =
            serde_json::from_str(text).map_err(|e| SpecError::Syntax(format!("JSON: {e}")))?;
        Ok(FibSpec::try_from(file)?)
    }

    fn parse_toml(text: &str) -> Result<FibSpec, SpecError> {
        refuse_blank(text)?;
        let file: FibFile =
            toml::from_str(text).map_err(|e| SpecError::Syntax(format!("TOML: {e}")))?;
        Ok(FibSpec::try_from(file)?)
    }

    /// The TOML form. Every version a FIB may carry ([`MAX_VERSION`]) fits
    /// TOML's integers, so this cannot fail for a spec that was parsed or
    /// built; one made in code with a larger version is clamped.
    pub fn to_toml(&self) -> String {
        let mut s = std::borrow::Cow::Borrowed(self);
        if self.version > MAX_VERSION {
            s.to_mut().version = MAX_VERSION;
        }
        toml::to_string_pretty(&*s).expect("a FibSpec within MAX_VERSION always serialises")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a FibSpec always serialises")
    }

    /// Builds with ports numbered in the order this file lists them.
    pub fn build(&self) -> Result<FibSnapshot, FibError> {
        let names: Vec<String> = self.ports.iter().map(|p| p.name.clone()).collect();
        self.build_for_ports(&names)
    }

    /// Builds for a dataplane whose ports are `port_names` (index = position).
    pub fn build_for_ports(&self, port_names: &[String]) -> Result<FibSnapshot, FibError> {
        self.builder(port_names)?.build()
    }

    /// Refuses a next-hop or group id of 0, above [`MAX_ID`] or given
    /// twice, naming the entry (reading a file or a binary FIB checks
    /// this; building checks it again for a spec made in code).
    pub fn check_ids(&self) -> Result<(), FibError> {
        check_unique_ids(
            self.next_hops.iter().map(|n| (n.id.0, n.name.as_str())),
            "next hop",
        )?;
        check_unique_ids(
            self.groups.iter().map(|g| (g.id.0, g.name.as_str())),
            "group",
        )
    }

    /// The id of the next hop named `name`, if any.
    pub fn next_hop_named(&self, name: &str) -> Option<NextHopId> {
        self.next_hops.iter().find(|n| n.name == name).map(|n| n.id)
    }

    /// The id of the group named `name`, if any.
    pub fn group_named(&self, name: &str) -> Option<GroupId> {
        self.groups.iter().find(|g| g.name == name).map(|g| g.id)
    }

    /// The name of next hop `id`, if the spec has it.
    pub fn next_hop_name(&self, id: NextHopId) -> Option<&str> {
        let n = self.next_hops.iter().find(|n| n.id == id);
        n.map(|n| n.name.as_str())
    }

    /// The name of group `id`, if the spec has it.
    pub fn group_name(&self, id: GroupId) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.name.as_str())
    }

    /// Refuses a reference to a next-hop or group id no entry has, naming
    /// the entry and field (building refuses these too; this is for a FIB
    /// read from bytes that are not built, e.g. `fib convert`).
    pub fn check_references(&self) -> Result<(), FibError> {
        let nhs: HashSet<NextHopId> = self.next_hops.iter().map(|n| n.id).collect();
        let groups: HashSet<GroupId> = self.groups.iter().map(|g| g.id).collect();
        let nh = |e: &dyn Fn() -> String, field, id: NextHopId| {
            if nhs.contains(&id) {
                Ok(())
            } else {
                Err(ferr(e(), field, format!("no next hop with id {id}")))
            }
        };
        let target = |e: &dyn Fn() -> String, g: Option<GroupId>, n: Option<NextHopId>| {
            if let Some(g) = g.filter(|g| !groups.contains(g)) {
                return Err(ferr(e(), "group", format!("no group with id {g}")));
            }
            n.map_or(Ok(()), |n| nh(e, "next_hop", n))
        };
        for n in &self.next_hops {
            let e = || format!("next hop {:?}", n.name);
            n.backup.map_or(Ok(()), |b| nh(&e, "backup", b))?;
        }
        for g in &self.groups {
            let e = || format!("group {:?}", g.name);
            g.next_hops
                .iter()
                .try_for_each(|&m| nh(&e, "next_hops", m))?;
        }
        for l in &self.labels {
            target(&|| format!("label {}", l.label), l.group, l.next_hop)?;
        }
        for r in &self.routes {
            target(&|| format!("route {}", r.prefix), r.group, r.next_hop)?;
        }
        Ok(())
    }

    /// Resolves every reference and returns the builder (not yet validated).
    pub fn builder(&self, port_names: &[String]) -> Result<FibBuilder, FibError> {
        self.check_ids()?;
        let mut b = FibBuilder::new()
            .version(self.version)
            .ttl_models(self.ttl_ingress.into(), self.ttl_egress.into())
            .hash_seed(self.hash_seed);
        let ports = self.add_ports(&mut b, port_names)?;
        let nhs = self.add_next_hops(&mut b, &ports)?;
        let groups = self.add_groups(&mut b, &nhs)?;
        // `next_hop = x` is shorthand for a one-member group, made once.
        let mut singles: HashMap<NextHopId, NhgId> = HashMap::new();
        let mut target = |b: &mut FibBuilder,
                          e: &dyn Fn() -> String,
                          group: Option<GroupId>,
                          nh: Option<NextHopId>|
         -> Result<NhgId, FibError> {
            match (group, nh) {
                (Some(g), None) => groups
                    .get(&g)
                    .copied()
                    .ok_or_else(|| ferr(e(), "group", format!("no group with id {g}"))),
                (None, Some(n)) => {
                    if let Some(&g) = singles.get(&n) {
                        return Ok(g);
                    }
                    let id = *nhs
                        .get(&n)
                        .ok_or_else(|| ferr(e(), "next_hop", format!("no next hop with id {n}")))?;
                    let g = b.group(&[id]);
                    singles.insert(n, g);
                    Ok(g)
                }
                (Some(_), Some(_)) => Err(ferr(
                    e(),
                    "group",
                    "give either group or next_hop, not both",
                )),
                (None, None) => Err(ferr(e(), "group", "needs a group or a next_hop")),
            }
        };
        for l in &self.labels {
            let e = || format!("label {}", l.label);
            let action = match l.action {
                ActionSpec::Pop => {
                    if l.group.is_some() || l.next_hop.is_some() || l.out_label.is_some() {
                        return Err(ferr(
                            e(),
                            "action",
                            "pop takes no out_label, group or next_hop",
                        ));
                    }
                    IlmAction::Pop
                }
                ActionSpec::Swap => IlmAction::Swap {
                    out_label: l.out_label.unwrap_or(l.label),
                    nhg: target(&mut b, &e, l.group, l.next_hop)?,
                },
            };
            b.label(l.label, action);
        }
        for r in &self.routes {
            let e = || format!("route {}", r.prefix);
            let (addr, len) = (r.prefix.addr(), r.prefix.length());
            let g = target(&mut b, &e, r.group, r.next_hop)?;
            match addr {
                IpAddr::V4(a) => b.route_v4(a, len, g),
                IpAddr::V6(a) => b.route_v6(a, len, g),
            };
        }
        Ok(b)
    }

    /// Ports by name, resolved against the dataplane's `port_names`.
    fn add_ports<'a>(
        &'a self,
        b: &mut FibBuilder,
        port_names: &[String],
    ) -> Result<HashMap<&'a str, u16>, FibError> {
        let mut ports: HashMap<&str, u16> = HashMap::new();
        for p in &self.ports {
            let e = || format!("port {:?}", p.name);
            check_name(&e, "name", &p.name)?;
            let idx = port_names
                .iter()
                .position(|n| n == &p.name)
                .ok_or_else(|| {
                    ferr(
                        e(),
                        "name",
                        format!(
                            "no such port on this dataplane (it has: {})",
                            port_names.join(", ")
                        ),
                    )
                })?;
            if ports.insert(&p.name, idx as u16).is_some() {
                return Err(ferr(e(), "name", "listed twice"));
            }
            b.port(idx as u16, PortConfig { mtu: p.mtu });
            b.name_port(idx as u16, &p.name);
        }
        Ok(ports)
    }

    /// Next hops by id, out of listed ports, then their backups. Names
    /// are unique too: a FIB is written with references by name.
    fn add_next_hops(
        &self,
        b: &mut FibBuilder,
        ports: &HashMap<&str, u16>,
    ) -> Result<HashMap<NextHopId, NhId>, FibError> {
        let mut nhs: HashMap<NextHopId, NhId> = HashMap::new();
        let mut names: HashSet<&str> = HashSet::new();
        for nh in &self.next_hops {
            let e = || format!("next hop {:?}", nh.name);
            check_name(&e, "name", &nh.name)?;
            let port = *ports.get(nh.port.as_str()).ok_or_else(|| {
                ferr(
                    e(),
                    "port",
                    format!("port {:?} is not listed in [[ports]]", nh.port),
                )
            })?;
            let id = b.next_hop(NextHop {
                port,
                dst_mac: nh.dst_mac.0,
                src_mac: nh.src_mac.0,
                vlan: nh.vlan,
                push: nh.push.clone(),
                backup: None,
            });
            if !names.insert(&nh.name) {
                return Err(ferr(e(), "name", "defined twice"));
            }
            nhs.insert(nh.id, id);
            b.name_next_hop(id, &nh.name);
            b.id_next_hop(id, nh.id.0);
        }
        for nh in &self.next_hops {
            if let Some(bk) = nh.backup {
                let id = *nhs.get(&bk).ok_or_else(|| {
                    ferr(
                        format!("next hop {:?}", nh.name),
                        "backup",
                        format!("no next hop with id {bk}"),
                    )
                })?;
                b.set_backup(nhs[&nh.id], Some(id));
            }
        }
        Ok(nhs)
    }

    /// Groups by id, of next hops by id.
    fn add_groups(
        &self,
        b: &mut FibBuilder,
        nhs: &HashMap<NextHopId, NhId>,
    ) -> Result<HashMap<GroupId, NhgId>, FibError> {
        let mut groups: HashMap<GroupId, NhgId> = HashMap::new();
        let mut names: HashSet<&str> = HashSet::new();
        for g in &self.groups {
            let e = || format!("group {:?}", g.name);
            check_name(&e, "name", &g.name)?;
            let mut members = Vec::with_capacity(g.next_hops.len());
            for m in &g.next_hops {
                members.push(
                    *nhs.get(m).ok_or_else(|| {
                        ferr(e(), "next_hops", format!("no next hop with id {m}"))
                    })?,
                );
            }
            if !names.insert(&g.name) {
                return Err(ferr(e(), "name", "defined twice"));
            }
            let id = b.group(&members);
            groups.insert(g.id, id);
            b.name_group(id, &g.name);
            b.id_group(id, g.id.0);
        }
        Ok(groups)
    }
}

impl FibSpec {
    /// The readable form of a built snapshot (for `fib show` and export):
    /// next hops and multi-path groups by the names their FIB file gave
    /// them (`nh<i>`, `g<i>` for ones built without a name); a one-path
    /// group is written as `next_hop`. `port_names[i]` names port i.
    pub fn from_snapshot(f: &FibSnapshot, port_names: &[String]) -> FibSpec {
        let pname = |p: u16| {
            port_names
                .get(p as usize)
                .cloned()
                .unwrap_or_else(|| format!("port{p}"))
        };
        let mut spec = FibSpec {
            version: f.version(),
            ttl_ingress: if f.ingress_ttl() == TtlModel::Pipe {
                TtlSpec::Pipe
            } else {
                TtlSpec::Uniform
            },
            ttl_egress: if f.egress_ttl() == TtlModel::Pipe {
                TtlSpec::Pipe
            } else {
                TtlSpec::Uniform
            },
            hash_seed: f.hash_seed,
            ports: f
                .ports()
                .map(|(p, mtu)| PortSpec {
                    name: pname(p),
                    mtu,
                })
                .collect(),
            ..FibSpec::default()
        };
        let (next_hops, nh_ids) = shown_next_hops(f, &pname);
        let (groups, group_ids) = shown_groups(f, &nh_ids);
        (spec.next_hops, spec.groups) = (next_hops, groups);
        let nh_id = |i: NhId| NextHopId(nh_ids[i.0 as usize]);
        let target = |g: NhgId| -> (Option<GroupId>, Option<NextHopId>) {
            match group_ids.get(&g.0) {
                Some(&id) => (Some(GroupId(id)), None),
                None => (
                    None,
                    f.group(g).unwrap_or_default().first().map(|&n| nh_id(n)),
                ),
            }
        };
        for (l, a) in f.ilm_entries() {
            spec.labels.push(match a {
                IlmAction::Pop => LabelSpec {
                    label: l,
                    action: ActionSpec::Pop,
                    out_label: None,
                    group: None,
                    next_hop: None,
                },
                IlmAction::Swap { out_label, nhg } => {
                    let (group, next_hop) = target(nhg);
                    LabelSpec {
                        label: l,
                        action: ActionSpec::Swap,
                        out_label: (out_label != l).then_some(out_label),
                        group,
                        next_hop,
                    }
                }
            });
        }
        // The builder refused host bits and over-long lengths.
        let prefix =
            |a: IpAddr, l: u8| Prefix::new(a, l).expect("a built FIB's routes are prefixes");
        let routes = f
            .routes_v4()
            .map(|(p, l, g)| (prefix(p.into(), l), g))
            .chain(f.routes_v6().map(|(p, l, g)| (prefix(p.into(), l), g)));
        for (prefix, g) in routes {
            let (group, next_hop) = target(g);
            spec.routes.push(RouteSpec {
                prefix,
                group,
                next_hop,
            });
        }
        spec
    }
}

/// A snapshot's next hops as [`FibSpec::from_snapshot`] shows them, and
/// each one's id: the ids its file gave, or 1, 2, 3... for a FIB built in
/// code without them (so that they are unique either way).
fn shown_next_hops(f: &FibSnapshot, pname: &dyn Fn(u16) -> String) -> (Vec<NextHopSpec>, Vec<u32>) {
    let n = f.next_hops_len() as u32;
    let ids: Vec<u32> = (0..n)
        .map(|i| f.next_hop_id(NhId(i)))
        .collect::<Option<_>>()
        .unwrap_or_else(|| (1..=n).collect());
    let id = |i: NhId| NextHopId(ids[i.0 as usize]);
    let hops = (0..n)
        .map(|i| {
            let nh = f.next_hop(NhId(i)).expect("in range");
            NextHopSpec {
                id: id(NhId(i)),
                name: f
                    .next_hop_name(NhId(i))
                    .map_or_else(|| format!("nh{i}"), str::to_string),
                port: pname(nh.port),
                dst_mac: Mac(nh.dst_mac),
                src_mac: Mac(nh.src_mac),
                vlan: nh.vlan,
                push: nh.push,
                backup: nh.backup.map(id),
            }
        })
        .collect();
    (hops, ids)
}

/// A snapshot's groups of several paths (a one-path group is shown as
/// its next hop), and their ids by group index: as for
/// [`shown_next_hops`].
fn shown_groups(f: &FibSnapshot, nh_ids: &[u32]) -> (Vec<GroupSpec>, HashMap<u32, u32>) {
    let members = |g: u32| f.group(NhgId(g)).unwrap_or_default();
    let shown: Vec<u32> = (0..f.groups_len() as u32)
        .filter(|&g| members(g).len() > 1)
        .collect();
    let ids: HashMap<u32, u32> = match shown
        .iter()
        .map(|&g| f.group_id(NhgId(g)))
        .collect::<Option<Vec<u32>>>()
    {
        Some(ids) => shown.iter().copied().zip(ids).collect(),
        None => shown.iter().copied().zip(1..).collect(),
    };
    let groups = shown
        .iter()
        .map(|&g| GroupSpec {
            id: GroupId(ids[&g]),
            name: f
                .group_name(NhgId(g))
                .map_or_else(|| format!("g{g}"), str::to_string),
            next_hops: members(g)
                .iter()
                .map(|n| NextHopId(nh_ids[n.0 as usize]))
                .collect(),
        })
        .collect();
    (groups, ids)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_endless_fib_file_is_refused_not_read_forever() {
        let e = FibSpec::read_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the file is larger than {MAX_FILE_BYTES} bytes")
        );
    }

    use super::*;
    use crate::fib::IlmAction;

    const EXAMPLE: &str = r#"
version = 7
ttl_egress = "pipe"
hash_seed = 1

[[ports]]
name = "isl0"

[[ports]]
name = "isl1"
mtu = 9000

[[next_hops]]
name = "sat2"
port = "isl0"
dst_mac = "02:00:00:00:02:01"
src_mac = "02:00:00:00:01:01"
backup = "sat3"

[[next_hops]]
name = "sat3"
port = "isl1"
dst_mac = "02:00:00:00:03:01"
src_mac = "02:00:00:00:01:02"
push = [24001]

[[groups]]
name = "east"
next_hops = ["sat2", "sat3"]

[[labels]]
label = 16002
action = "swap"
next_hop = "sat2"

[[labels]]
label = 16003
action = "swap"
out_label = 3
group = "east"

[[labels]]
label = 16001
action = "pop"

[[routes]]
prefix = "10.2.0.0/16"
group = "east"

[[routes]]
prefix = "2001:db8::/32"
next_hop = "sat2"
"#;

    #[test]
    fn the_documented_example_builds() {
        let spec = FibSpec::parse(EXAMPLE).unwrap();
        let f = spec.build().unwrap();
        assert_eq!(f.version(), 7);
        assert_eq!(f.egress_ttl(), TtlModel::Pipe);
        assert_eq!(f.port_mtu(1), Some(9000));
        assert!(matches!(
            f.ilm(16002),
            Some(IlmAction::Swap {
                out_label: 16002,
                ..
            })
        ));
        assert_eq!(f.ilm(16001), Some(IlmAction::Pop));
        assert_eq!(f.next_hop(NhId(0)).unwrap().backup, Some(NhId(1)));
        assert!(f.lookup_v4("10.2.3.4".parse().unwrap()).is_some());
        assert!(f.lookup_v6("2001:db8::1".parse().unwrap()).is_some());
        // The shorthand group for "sat2" is made once and shared.
        assert_eq!(f.groups_len(), 2);
        // Exporting the snapshot and building it again gives the same FIB.
        let names: Vec<String> = spec.ports.iter().map(|p| p.name.clone()).collect();
        let back = FibSpec::from_snapshot(&f, &names);
        let f2 = back.build_for_ports(&names).unwrap();
        assert_eq!(FibSpec::from_snapshot(&f2, &names), back);
        // Shown by the names the file gave (issue 18), not nh0, g1.
        let nh: Vec<&str> = back.next_hops.iter().map(|n| n.name.as_str()).collect();
        let given: Vec<&str> = spec.next_hops.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(nh, given);
        assert_eq!(back.next_hops[0].backup, spec.next_hops[0].backup);
        assert_eq!(back.groups.len(), 1);
        assert_eq!(back.groups[0].name, "east");
        assert_eq!(
            back.labels
                .iter()
                .find(|l| l.label == 16003)
                .unwrap()
                .group
                .and_then(|g| back.group_name(g)),
            Some("east")
        );
        assert_eq!(
            back.routes
                .iter()
                .find(|r| r.prefix.to_string() == "2001:db8::/32")
                .unwrap()
                .next_hop
                .and_then(|n| back.next_hop_name(n)),
            Some("sat2")
        );
        assert_eq!(
            format!("{} {}", back.ttl_ingress, back.ttl_egress),
            "uniform pipe"
        );
        assert_eq!(f2.ilm(16003), f.ilm(16003));
        assert!(f2.lookup_v4("10.2.3.4".parse().unwrap()).is_some());
        // JSON and TOML round trips give the same FIB description.
        assert_eq!(FibSpec::parse(&spec.to_json()).unwrap(), spec);
        assert_eq!(FibSpec::parse(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn the_example_in_this_modules_doc_builds() {
        // It named a backup, "sat3", that it did not define.
        let doc = crate::file::doc_toml_example(include_str!("spec.rs"));
        let f = FibSpec::parse(&doc).unwrap().build().unwrap();
        assert_eq!((f.labels_bound(), f.ipv4_routes()), (2, 1));
    }

    #[test]
    fn a_label_beyond_20_bits_is_refused_before_the_table_is_sized() {
        // Used to size the label table from the largest label first: a
        // label of 2^32 - 1 aborted the process (a 32 GiB allocation) and
        // 2^27 took 1 GB before the 20-bit check refused it.
        for big in [u32::MAX, 1 << 31, 1 << 27, 1 << 21, label_max() + 1] {
            let t = EXAMPLE.replacen("label = 16001", &format!("label = {big}"), 1);
            let e = FibSpec::parse(&t).unwrap().build().unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("label {big}: label: larger than 20 bits (1048575)")
            );
            let t = EXAMPLE.replacen("out_label = 3", &format!("out_label = {big}"), 1);
            let e = FibSpec::parse(&t).unwrap().build().unwrap_err();
            assert_eq!(e.field, "out_label", "{e}");
        }
    }

    fn label_max() -> u32 {
        crate::wire::mpls::label::MAX
    }

    #[test]
    fn empty_and_blank_files_are_refused() {
        for text in ["", "  \n\t\n", "\n"] {
            let e = FibSpec::from_bytes(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("the file is empty"), "{e}");
            let e = FibSpec::decode(text.as_bytes(), FibFormat::Json).unwrap_err();
            assert!(e.to_string().starts_with("the file is empty"), "{e}");
        }
        // A FIB with neither labels nor routes is refused unless allowed.
        let spec = FibSpec::parse("version = 4").unwrap();
        let e = spec.check_not_empty(false).unwrap_err().to_string();
        assert!(
            e.starts_with("FIB version 4: labels: no labels and no routes"),
            "{e}"
        );
        assert!(spec.check_not_empty(true).is_ok());
        assert!(FibSpec::parse(EXAMPLE)
            .unwrap()
            .check_not_empty(false)
            .is_ok());
    }

    #[test]
    fn the_file_name_says_the_format() {
        let spec = FibSpec::parse(EXAMPLE).unwrap();
        let bin = spec.to_binary().unwrap();
        let path = |n: &str| std::path::PathBuf::from(n);
        // An .omfib is only ever binary: empty or text is refused, not read as TOML.
        for bytes in [&b""[..], b"version = 3\n", EXAMPLE.as_bytes()] {
            let e = FibSpec::from_file_bytes(&path("a.omfib"), bytes).unwrap_err();
            assert!(e.to_string().starts_with("binary FIB:"), "{e}");
        }
        assert_eq!(
            FibSpec::from_file_bytes(&path("a.omfib"), &bin).unwrap(),
            spec
        );
        assert!(FibSpec::from_file_bytes(&path("a.toml"), &bin).is_err());
        assert!(FibSpec::from_file_bytes(&path("a.json"), EXAMPLE.as_bytes()).is_err());
        let json = spec.to_json();
        assert_eq!(
            FibSpec::from_file_bytes(&path("a.json"), json.as_bytes()).unwrap(),
            spec
        );
        assert_eq!(
            FibSpec::from_file_bytes(&path("a.fib"), &bin).unwrap(),
            spec
        );
    }

    #[test]
    fn the_version_is_bounded_where_it_is_parsed() {
        // u64::MAX used to pass check and load, then `fib convert` to TOML
        // panicked (TOML integers are i64).
        let spec = FibSpec::parse(EXAMPLE).unwrap();
        let json =
            spec.to_json()
                .replacen("\"version\": 7", &format!("\"version\": {}", u64::MAX), 1);
        let e = FibSpec::parse(&json).unwrap_err().to_string();
        assert!(e.contains("above the largest allowed"), "{e}");
        let json = json.replacen(&u64::MAX.to_string(), &MAX_VERSION.to_string(), 1);
        let top = FibSpec::parse(&json).unwrap();
        assert_eq!(FibSpec::parse(&top.to_toml()).unwrap(), top);
        let mut over = spec.clone();
        over.version = MAX_VERSION + 1;
        let e = over.build().unwrap_err();
        assert_eq!((e.entry.as_str(), e.field), ("FIB", "version"));
        let e = FibSpec::from_bytes(&over.to_binary().unwrap()).unwrap_err();
        assert!(e.to_string().contains("above the largest allowed"), "{e}");
        // Clamped, never a panic, for one made in code.
        assert!(over.to_toml().contains(&MAX_VERSION.to_string()));
    }

    #[test]
    fn builder_errors_name_entries_as_the_file_does() {
        let t = EXAMPLE.replacen(
            "push = [24001]",
            "push = [24001, 16, 17, 18, 19, 20, 21]",
            1,
        );
        let e = FibSpec::parse(&t).unwrap().build().unwrap_err().to_string();
        assert_eq!(
            e,
            "next hop \"sat3\": push: 7 labels; a next hop pushes at most 6"
        );
        let t = EXAMPLE.replacen("mtu = 9000", "mtu = 20", 1);
        let e = FibSpec::parse(&t).unwrap().build().unwrap_err().to_string();
        assert_eq!(e, "port \"isl1\": mtu: 20 is outside 68..=9216");
        let many: Vec<String> = (0..65).map(|_| "\"sat2\"".to_string()).collect();
        let t = EXAMPLE.replacen("[\"sat2\", \"sat3\"]", &format!("[{}]", many.join(", ")), 1);
        let e = FibSpec::parse(&t).unwrap().build().unwrap_err().to_string();
        assert_eq!(e, "group \"east\": members: 65 paths; at most 64");
    }

    #[test]
    fn names_are_bounded() {
        let long = "x".repeat(MAX_NAME + 1);
        let t = EXAMPLE.replace("\"sat3\"", &format!("{long:?}"));
        let e = FibSpec::parse(&t).unwrap().build().unwrap_err().to_string();
        assert!(
            e.ends_with(&format!("name: 65 bytes; a name has at most {MAX_NAME}")),
            "{e}"
        );
        let t = EXAMPLE.replace("\"sat3\"", &format!("{:?}", "x".repeat(MAX_NAME)));
        assert!(FibSpec::parse(&t).unwrap().build().is_ok());
    }

    #[test]
    fn ports_resolve_against_the_dataplane() {
        let spec = FibSpec::parse(EXAMPLE).unwrap();
        let names = vec!["gsl0".to_string(), "isl1".into(), "isl0".into()];
        let f = spec.build_for_ports(&names).unwrap();
        assert_eq!(f.next_hop(NhId(0)).unwrap().port, 2);
        let e = spec.build_for_ports(&["isl0".to_string()]).unwrap_err();
        assert_eq!((e.entry.as_str(), e.field), ("port \"isl1\"", "name"));
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let bad = |from: &str, to: &str| {
            let t = EXAMPLE.replacen(from, to, 1);
            match FibSpec::parse(&t) {
                Ok(s) => s.build().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(
            bad("dst_mac = \"02:00:00:00:02:01\"", "dst_mac = \"02:00:00\""),
            "next hop \"sat2\": dst_mac: \"02:00:00\" is not a MAC address like 02:00:00:00:00:01"
        );
        assert!(bad("backup = \"sat3\"", "backup = \"sat9\"")
            .starts_with("next hop \"sat2\": backup: no next hop named \"sat9\""));
        assert!(bad(
            "next_hops = [\"sat2\", \"sat3\"]",
            "next_hops = [\"sat2\", \"nope\"]"
        )
        .starts_with("group \"east\": next_hops"));
        assert!(bad(
            "next_hop = \"sat2\"\n\n[[labels]]",
            "group = \"west\"\n\n[[labels]]"
        )
        .starts_with("label 16002: group: no group named"));
        assert!(bad("prefix = \"10.2.0.0/16\"", "prefix = \"10.2.0.1/16\"")
            .starts_with("route 10.2.0.1/16: prefix: host bits"));
        assert!(bad("prefix = \"10.2.0.0/16\"", "prefix = \"10.2.0.0\"")
            .contains("expected address/length"));
        assert!(bad("label = 16001", "label = 5").starts_with("label 5: label: 0-15 are reserved"));
        assert!(bad("version = 7", "versoin = 7").contains("unknown field"));
        assert!(bad("action = \"pop\"", "action = \"push\"").contains("unknown variant"));
    }

    /// EXAMPLE with `sat2` added after next hop sat2's name, and `sat3`
    /// after sat3's.
    fn with_ids(sat2: &str, sat3: &str) -> String {
        EXAMPLE
            .replacen("name = \"sat2\"", &format!("name = \"sat2\"\n{sat2}"), 1)
            .replacen("name = \"sat3\"", &format!("name = \"sat3\"\n{sat3}"), 1)
    }

    #[test]
    fn ids_round_trip_through_toml_json_and_binary() {
        // Given ids are kept; the others take the smallest no entry gives.
        let t = with_ids("id = 7", "").replacen("name = \"east\"", "name = \"east\"\nid = 40", 1);
        let spec = FibSpec::parse(&t).unwrap();
        let ids: Vec<u32> = spec.next_hops.iter().map(|n| n.id.0).collect();
        assert_eq!(ids, [7, 1]);
        assert_eq!(spec.groups[0].id, GroupId(40));
        assert_eq!(spec.groups[0].next_hops, [NextHopId(7), NextHopId(1)]);
        assert_eq!(spec.next_hops[0].backup, Some(NextHopId(1)));
        assert_eq!(spec.labels[0].next_hop, Some(NextHopId(7)));
        assert_eq!(spec.routes[0].group, Some(GroupId(40)));
        let toml = spec.to_toml();
        assert!(
            toml.contains("id = 7") && toml.contains("id = 40"),
            "{toml}"
        );
        assert_eq!(FibSpec::parse(&toml).unwrap(), spec);
        assert_eq!(FibSpec::parse(&spec.to_json()).unwrap(), spec);
        assert_eq!(
            FibSpec::from_bytes(&spec.to_binary().unwrap()).unwrap(),
            spec
        );
        // A built FIB shows the ids its file gave (fib show).
        let names: Vec<String> = spec.ports.iter().map(|p| p.name.clone()).collect();
        let shown = FibSpec::from_snapshot(&spec.build().unwrap(), &names);
        assert_eq!(
            (&shown.next_hops, &shown.groups),
            (&spec.next_hops, &spec.groups)
        );
        // A file without ids numbers its next hops 1, 2... in file order,
        // and is written without ids, as it was before ids existed.
        let plain = FibSpec::parse(EXAMPLE).unwrap();
        let ids: Vec<u32> = plain.next_hops.iter().map(|n| n.id.0).collect();
        assert_eq!(
            (ids.as_slice(), plain.groups[0].id),
            (&[1, 2][..], GroupId(1))
        );
        assert!(!plain.to_toml().contains("id ="), "{}", plain.to_toml());
        assert!(!plain.to_json().contains("\"id\""), "{}", plain.to_json());
        // An id given where the rule would give the same is not written.
        assert_eq!(
            FibSpec::parse(&with_ids("id = 1", "id = 2"))
                .unwrap()
                .to_toml(),
            plain.to_toml()
        );
    }

    #[test]
    fn zero_duplicate_and_out_of_range_ids_are_refused_naming_the_entry() {
        let err = |t: &str| FibSpec::parse(t).unwrap_err().to_string();
        let range = format!("is outside 1..={MAX_ID}");
        assert_eq!(
            err(&with_ids("id = 0", "")),
            format!("next hop \"sat2\": id: 0 {range}")
        );
        let over = u64::from(MAX_ID) + 1;
        assert_eq!(
            err(&with_ids(&format!("id = {over}"), "")),
            format!("next hop \"sat2\": id: {over} {range}")
        );
        assert_eq!(
            err(&with_ids("id = 5", "id = 5")),
            "next hop \"sat3\": id: 5 is also the id of next hop \"sat2\""
        );
        assert!(err(&with_ids("id = -1", "")).contains("id"));
        assert!(err(&with_ids("id = 1e3", "")).contains("id"));
        let t = EXAMPLE.replacen("name = \"east\"", "name = \"east\"\nid = 0", 1);
        assert_eq!(err(&t), format!("group \"east\": id: 0 {range}"));
        // The largest id is accepted.
        let top = FibSpec::parse(&with_ids(&format!("id = {MAX_ID}"), "")).unwrap();
        assert_eq!(top.next_hops[0].id, NextHopId(MAX_ID));
        top.build().unwrap();
        // A spec made in code: refused by build and by the binary decoder.
        let mut spec = FibSpec::parse(EXAMPLE).unwrap();
        spec.next_hops[1].id = NextHopId(1);
        let e = spec.build().unwrap_err();
        assert_eq!((e.entry.as_str(), e.field), ("next hop \"sat3\"", "id"));
        let e = FibSpec::from_bytes(&spec.to_binary().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "binary FIB: next hop \"sat3\": id: 1 is also the id of next hop \"sat2\""
        );
        // A reference to an id no entry has.
        let mut spec = FibSpec::parse(EXAMPLE).unwrap();
        spec.labels[0].next_hop = Some(NextHopId(99));
        let e = spec.build().unwrap_err().to_string();
        assert_eq!(e, "label 16002: next_hop: no next hop with id 99");
        let e = FibSpec::from_bytes(&spec.to_binary().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "binary FIB: label 16002: next_hop: no next hop with id 99"
        );
        let mut spec = FibSpec::parse(EXAMPLE).unwrap();
        spec.routes[0].group = Some(GroupId(3));
        let e = spec.check_references().unwrap_err().to_string();
        assert_eq!(e, "route 10.2.0.0/16: group: no group with id 3");
    }
}
