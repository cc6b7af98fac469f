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

pub use super::prefix::Prefix;
use super::{
    FibBuilder, FibError, FibSnapshot, IlmAction, NextHop, NhId, NhgId, PortConfig, TtlModel,
};
pub use crate::wire::ethernet::{format_mac, parse_mac, Mac};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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

/// A next hop: out of `port` with these MACs, optionally tagged and
/// pushing labels, with an optional backup (by name). Read from a file
/// through [`NextHopFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NextHopFile")]
pub struct NextHopSpec {
    pub name: String,
    pub port: String,
    pub dst_mac: Mac,
    pub src_mac: Mac,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub next_hops: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionSpec {
    Swap,
    Pop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    pub label: u32,
    pub action: ActionSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_label: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
}

/// A route: `prefix` to a group or one next hop (by name). Read from a
/// file through [`RouteFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RouteFile")]
pub struct RouteSpec {
    pub prefix: Prefix,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
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

/// A whole FIB: what a file says, with MACs and prefixes as values. Read
/// through [`FibFile`] (serde's `try_from`), so a bad value is an error
/// naming its entry and field wherever the FIB comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
/// prefixes still text. [`FibSpec`]'s `TryFrom` turns it into values, each
/// bad one an error naming the entry and field ("next hop \"s0\": dst_mac:
/// ..."), the same text whether the FIB came from a file or a request.
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
    groups: Vec<GroupSpec>,
    #[serde(default)]
    labels: Vec<LabelSpec>,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

/// A next hop as a file writes it (see [`NextHopSpec`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopFile {
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

/// A route as a file writes it (see [`RouteSpec`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    prefix: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    next_hop: Option<String>,
}

impl TryFrom<NextHopFile> for NextHopSpec {
    type Error = FibError;

    fn try_from(f: NextHopFile) -> Result<NextHopSpec, FibError> {
        let mac = |field: &'static str, text: &str| {
            text.parse::<Mac>()
                .map_err(|e| ferr(format!("next hop {:?}", f.name), field, e.to_string()))
        };
        let (dst_mac, src_mac) = (mac("dst_mac", &f.dst_mac)?, mac("src_mac", &f.src_mac)?);
        Ok(NextHopSpec {
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

impl TryFrom<RouteFile> for RouteSpec {
    type Error = FibError;

    fn try_from(f: RouteFile) -> Result<RouteSpec, FibError> {
        let prefix = f.prefix.parse().map_err(|e: super::prefix::PrefixError| {
            ferr(format!("route {}", f.prefix), "prefix", e.to_string())
        })?;
        Ok(RouteSpec {
            prefix,
            group: f.group,
            next_hop: f.next_hop,
        })
    }
}

impl TryFrom<FibFile> for FibSpec {
    type Error = FibError;

    fn try_from(f: FibFile) -> Result<FibSpec, FibError> {
        Ok(FibSpec {
            version: f.version,
            ttl_ingress: f.ttl_ingress,
            ttl_egress: f.ttl_egress,
            hash_seed: f.hash_seed,
            ports: f.ports,
            next_hops: f
                .next_hops
                .into_iter()
                .map(NextHopSpec::try_from)
                .collect::<Result<_, _>>()?,
            groups: f.groups,
            labels: f.labels,
            routes: f
                .routes
                .into_iter()
                .map(RouteSpec::try_from)
                .collect::<Result<_, _>>()?,
        })
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

    /// Resolves every name and returns the builder (not yet validated).
    pub fn builder(&self, port_names: &[String]) -> Result<FibBuilder, FibError> {
        let mut b = FibBuilder::new()
            .version(self.version)
            .ttl_models(self.ttl_ingress.into(), self.ttl_egress.into())
            .hash_seed(self.hash_seed);
        let ports = self.add_ports(&mut b, port_names)?;
        let nhs = self.add_next_hops(&mut b, &ports)?;
        let groups = self.add_groups(&mut b, &nhs)?;
        // `next_hop = "x"` is shorthand for a one-member group, made once.
        let mut singles: HashMap<String, NhgId> = HashMap::new();
        let mut target = |b: &mut FibBuilder,
                          e: &dyn Fn() -> String,
                          group: &Option<String>,
                          nh: &Option<String>|
         -> Result<NhgId, FibError> {
            match (group, nh) {
                (Some(g), None) => groups
                    .get(g.as_str())
                    .copied()
                    .ok_or_else(|| ferr(e(), "group", format!("no group named {g:?}"))),
                (None, Some(n)) => {
                    if let Some(&g) = singles.get(n) {
                        return Ok(g);
                    }
                    let id = *nhs
                        .get(n.as_str())
                        .ok_or_else(|| ferr(e(), "next_hop", format!("no next hop named {n:?}")))?;
                    let g = b.group(&[id]);
                    singles.insert(n.clone(), g);
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
                    nhg: target(&mut b, &e, &l.group, &l.next_hop)?,
                },
            };
            b.label(l.label, action);
        }
        for r in &self.routes {
            let e = || format!("route {}", r.prefix);
            let (addr, len) = (r.prefix.addr(), r.prefix.length());
            let g = target(&mut b, &e, &r.group, &r.next_hop)?;
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

    /// Next hops by name, out of listed ports, then their backups.
    fn add_next_hops<'a>(
        &'a self,
        b: &mut FibBuilder,
        ports: &HashMap<&str, u16>,
    ) -> Result<HashMap<&'a str, NhId>, FibError> {
        let mut nhs: HashMap<&str, NhId> = HashMap::new();
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
            if nhs.insert(&nh.name, id).is_some() {
                return Err(ferr(e(), "name", "defined twice"));
            }
            b.name_next_hop(id, &nh.name);
        }
        for nh in &self.next_hops {
            if let Some(bk) = &nh.backup {
                let id = *nhs.get(bk.as_str()).ok_or_else(|| {
                    ferr(
                        format!("next hop {:?}", nh.name),
                        "backup",
                        format!("no next hop named {bk:?}"),
                    )
                })?;
                b.set_backup(nhs[nh.name.as_str()], Some(id));
            }
        }
        Ok(nhs)
    }

    /// Groups by name, of named next hops.
    fn add_groups<'a>(
        &'a self,
        b: &mut FibBuilder,
        nhs: &HashMap<&str, NhId>,
    ) -> Result<HashMap<&'a str, NhgId>, FibError> {
        let mut groups: HashMap<&str, NhgId> = HashMap::new();
        for g in &self.groups {
            let e = || format!("group {:?}", g.name);
            check_name(&e, "name", &g.name)?;
            let mut members = Vec::with_capacity(g.next_hops.len());
            for m in &g.next_hops {
                members.push(
                    *nhs.get(m.as_str()).ok_or_else(|| {
                        ferr(e(), "next_hops", format!("no next hop named {m:?}"))
                    })?,
                );
            }
            let id = b.group(&members);
            if groups.insert(&g.name, id).is_some() {
                return Err(ferr(e(), "name", "defined twice"));
            }
            b.name_group(id, &g.name);
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
        let nh_name = |i: u32| {
            f.next_hop_name(NhId(i))
                .map_or_else(|| format!("nh{i}"), str::to_string)
        };
        let group_name = |g: u32| {
            f.group_name(NhgId(g))
                .map_or_else(|| format!("g{g}"), str::to_string)
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
        for i in 0..f.next_hops_len() as u32 {
            let nh = f.next_hop(NhId(i)).expect("in range");
            spec.next_hops.push(NextHopSpec {
                name: nh_name(i),
                port: pname(nh.port),
                dst_mac: Mac(nh.dst_mac),
                src_mac: Mac(nh.src_mac),
                vlan: nh.vlan,
                push: nh.push,
                backup: nh.backup.map(|b| nh_name(b.0)),
            });
        }
        // A group is named only when it has several paths.
        let target = |g: NhgId| -> (Option<String>, Option<String>) {
            let m = f.group(g).unwrap_or_default();
            if m.len() == 1 {
                (None, Some(nh_name(m[0].0)))
            } else {
                (Some(group_name(g.0)), None)
            }
        };
        for g in 0..f.groups_len() as u32 {
            let m = f.group(NhgId(g)).unwrap_or_default();
            if m.len() > 1 {
                spec.groups.push(GroupSpec {
                    name: group_name(g),
                    next_hops: m.iter().map(|n| nh_name(n.0)).collect(),
                });
            }
        }
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
                .as_deref(),
            Some("east")
        );
        assert_eq!(
            back.routes
                .iter()
                .find(|r| r.prefix.to_string() == "2001:db8::/32")
                .unwrap()
                .next_hop
                .as_deref(),
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
}
