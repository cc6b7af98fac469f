//! Per-node FIB schedules: a full next-hop table at the first instant, then
//! deltas with activation times, only where something changes (time-variant
//! routing, RFC 9657 section 3: the schedule is known ahead of time).
//!
//! Label plan (SR-MPLS, RFC 8660; docs/design.md, "2. Label plan"): every
//! node's node SID is `srgb_base + node index` (default base 16000); a
//! transit node swaps the destination's node SID to the same label and sends
//! it to `next_hop`.
//!
//! Prefix plan: each ground station is a label edge router (LER) for one IPv4
//! prefix, the networks behind it. Station i (0-based among the stations) owns
//! the i-th block of length `--gs-prefix-len` inside `--gs-prefix-base`
//! ([`gs_prefixes`]; by default the i-th /24 of 10.128.0.0/9, so station 3 owns
//! 10.128.3.0/24). Every entry whose destination is a ground station carries
//! that station's `prefix`; a ground station's schedule also carries its own
//! `local_prefix`.
//!
//! A ground station's schedule is thus its LER table: an IPv4 packet whose
//! destination matches a remote station's `prefix` (longest match) gets that
//! entry's `label` pushed and goes to `next_hop` (ingress push). A packet that
//! arrives with the station's own `node_label` is popped and delivered by IP
//! into `local_prefix` (egress; there is no entry for the node itself).
//! Satellites only swap; on them `prefix` just says what a label stands for.
//!
//! On disk: one JSON file per node, `<out>/schedule/node-<id>.json`, holding one
//! [`NodeSchedule`]. Times are `activate_at_ns`: integer nanoseconds since the
//! scenario epoch (`epoch_utc`, ISO 8601 UTC, also in the file). A node applies
//! `initial` at its `activate_at_ns`, then each delta in order at its instant;
//! a delta lists only the entries that change. An entry whose `next_hop` is
//! `null` withdraws the destination (unreachable from this node from then on).
//! Destinations are the ground stations (nodes N..N+G-1), then, when the
//! prediction ran with satellite destinations, the satellites (nodes 0..N-1); a
//! node has no entry for itself. `prefix` and `local_prefix` are absent where
//! they do not apply (satellite destinations, satellite nodes).
//!
//! Example (Starlink S1 + 100 stations, ground station 1584 (station 0),
//! shortened; real files are written without indentation):
//!
//! ```json
//! {
//!   "format": "orbitmesh-fib-schedule/2",
//!   "node": 1584, "node_label": 17584, "kind": "ground_station", "srgb_base": 16000,
//!   "local_prefix": "10.128.0.0/24",
//!   "epoch_utc": "2000-01-01T00:00:00.000000Z", "step_ns": 100000000,
//!   "initial": { "activate_at_ns": 0, "entries": [
//!     { "destination": 1585, "label": 17585, "next_hop": 1, "backup": 22,
//!       "prefix": "10.128.1.0/24" },
//!     { "destination": 1586, "label": 17586, "next_hop": 1, "backup": null,
//!       "prefix": "10.128.2.0/24" } ] },
//!   "deltas": [
//!     { "activate_at_ns": 2200000000, "changes": [
//!       { "destination": 1680, "label": 17680, "next_hop": 23, "backup": 1,
//!         "prefix": "10.128.96.0/24" } ] } ]
//! }
//! ```
//!
//! Node ids name neighbours, not ports: the dataplane maps a next-hop node to the
//! ISL/GSL port that reaches it. Entries change only when the next hop or the
//! backup changes, so a delta may list an entry whose `next_hop` is unchanged.
//!
//! Format history: `/1` had no `prefix` / `local_prefix`; `/2` adds them.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::routing::{dest_node, StepResult, NONE};
use super::Error;

/// Schema identifier written in every file.
pub const FORMAT: &str = "orbitmesh-fib-schedule/2";

/// An IPv4 prefix, written as `a.b.c.d/len` (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Prefix {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Ipv4Prefix {
    /// The netmask as an integer (`len` leading ones).
    pub fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0)
    }

    /// Whether `other` lies inside this prefix.
    pub fn contains(&self, other: &Ipv4Prefix) -> bool {
        other.len >= self.len && u32::from(other.addr) & self.mask() == u32::from(self.addr)
    }
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for Ipv4Prefix {
    type Err = String;

    /// Parses `a.b.c.d/len` (orbitmesh_core::fib::Prefix); refuses host bits set,
    /// lengths over 32 and IPv6.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &dyn std::fmt::Display| format!("{s:?} is not an IPv4 prefix a.b.c.d/len: {why}");
        let p: orbitmesh_core::fib::Prefix = s.parse().map_err(|e| bad(&e))?;
        match p.addr() {
            std::net::IpAddr::V4(addr) => Ok(Ipv4Prefix {
                addr,
                len: p.length(),
            }),
            std::net::IpAddr::V6(_) => Err(bad(&"it is an IPv6 prefix")),
        }
    }
}

impl TryFrom<String> for Ipv4Prefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Ipv4Prefix> for orbitmesh_core::fib::Prefix {
    fn from(p: Ipv4Prefix) -> orbitmesh_core::fib::Prefix {
        orbitmesh_core::fib::Prefix::new(p.addr.into(), p.len)
            .expect("an Ipv4Prefix has no host bits and at most 32 bits")
    }
}

impl From<Ipv4Prefix> for String {
    fn from(p: Ipv4Prefix) -> String {
        p.to_string()
    }
}

/// The ground stations' prefix plan: station i (0-based among the `n_gs`
/// stations) owns the i-th `/prefix_len` block inside `base` (CLI
/// `--gs-prefix-base`, default `10.128.0.0/9`, and `--gs-prefix-len`, default
/// 24: station i gets `10.<128 + i / 256>.<i % 256>.0/24`). Errors name the
/// option that is wrong: a malformed base, a length outside `base_len..=32`, or
/// a base with fewer blocks than stations.
pub fn gs_prefixes(base: &str, prefix_len: u8, n_gs: usize) -> Result<Vec<Ipv4Prefix>, Error> {
    let base: Ipv4Prefix = base
        .parse()
        .map_err(|e| Error::Scenario(format!("--gs-prefix-base: {e}")))?;
    if prefix_len > 32 || prefix_len < base.len {
        return Err(Error::Scenario(format!(
            "--gs-prefix-len {prefix_len} must be in {}..=32 (at least the length of --gs-prefix-base {base})",
            base.len
        )));
    }
    let bits = u32::from(prefix_len - base.len);
    let capacity = 1u64 << bits;
    if n_gs as u64 > capacity {
        return Err(Error::Scenario(format!(
            "--gs-prefix-base {base} holds {capacity} /{prefix_len} prefixes but there are {n_gs} ground stations; \
             use a larger base or a longer --gs-prefix-len"
        )));
    }
    let step = 1u64 << (32 - u32::from(prefix_len));
    Ok((0..n_gs as u64)
        .map(|i| Ipv4Prefix {
            // In range: i < capacity, so base + i * step stays inside the base.
            addr: Ipv4Addr::from((u64::from(u32::from(base.addr)) + i * step) as u32),
            len: prefix_len,
        })
        .collect())
}

/// One label-table entry of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibEntry {
    /// Destination node index (satgenpy numbering).
    pub destination: u32,
    /// The destination's node SID label (`srgb_base + destination`).
    pub label: u32,
    /// Next-hop node index; `null` = destination unreachable (withdrawn).
    pub next_hop: Option<u32>,
    /// RFC 5286 loop-free alternate next-hop node, if one exists.
    pub backup: Option<u32>,
    /// The destination ground station's IPv4 prefix (ingress: packets to it get
    /// `label` pushed); absent for satellite destinations or without a prefix plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Ipv4Prefix>,
}

/// The full table at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FibTable {
    /// Activation time, ns since the scenario epoch.
    pub activate_at_ns: i64,
    /// One entry per destination (reachable or not).
    pub entries: Vec<FibEntry>,
}

/// The entries that change at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FibDelta {
    /// Activation time, ns since the scenario epoch.
    pub activate_at_ns: i64,
    /// Changed entries (replace the entry for that destination).
    pub changes: Vec<FibEntry>,
}

/// The schedule of one node: what its dataplane should hold over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSchedule {
    /// Always [`FORMAT`].
    pub format: String,
    /// This node's index.
    pub node: u32,
    /// This node's own node SID label.
    pub node_label: u32,
    /// `"satellite"` or `"ground_station"`.
    pub kind: String,
    /// SRGB base (node SID = base + index).
    pub srgb_base: u32,
    /// A ground station's own IPv4 prefix (egress: its label is popped and the
    /// packet delivered by IP); absent for satellites or without a prefix plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_prefix: Option<Ipv4Prefix>,
    /// Scenario epoch, ISO 8601 UTC; all times count from it.
    pub epoch_utc: String,
    /// Step of the prediction, ns (changes are accurate to one step).
    pub step_ns: i64,
    /// Table at the first instant.
    pub initial: FibTable,
    /// Changes after it, in time order.
    pub deltas: Vec<FibDelta>,
}

impl NodeSchedule {
    /// The table in force at `t_ns` (initial table with every delta up to `t_ns` applied).
    pub fn table_at(&self, t_ns: i64) -> Vec<FibEntry> {
        let mut table = self.initial.entries.clone();
        for delta in self.deltas.iter().take_while(|d| d.activate_at_ns <= t_ns) {
            for c in &delta.changes {
                if let Some(e) = table.iter_mut().find(|e| e.destination == c.destination) {
                    *e = *c;
                }
            }
        }
        table
    }
}

/// The largest MPLS label (20 bits).
pub const MAX_LABEL: u32 = (1 << 20) - 1;

impl NodeSchedule {
    /// Checks what a schedule read from a file claims before anything is
    /// built from it: the format, the kind, labels that are `srgb_base + id`
    /// in 16..=2^20-1, a positive step, one entry per destination (never
    /// the node itself, nor itself as next hop), and deltas after the
    /// initial table, in strictly increasing time, naming known
    /// destinations. The error names the entry and field.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT:?}", self.format));
        }
        if !matches!(self.kind.as_str(), "satellite" | "ground_station") {
            return Err(format!(
                "kind {:?} is neither \"satellite\" nor \"ground_station\"",
                self.kind
            ));
        }
        if self.step_ns <= 0 {
            return Err(format!("step_ns {} must be positive", self.step_ns));
        }
        self.check_label("node_label", self.node, self.node_label)?;
        let mut dests = std::collections::BTreeSet::new();
        for (i, e) in self.initial.entries.iter().enumerate() {
            self.check_entry(e)
                .map_err(|m| format!("initial.entries[{i}]: {m}"))?;
            if !dests.insert(e.destination) {
                return Err(format!(
                    "initial.entries[{i}]: destination {} is listed twice",
                    e.destination
                ));
            }
        }
        let mut last = self.initial.activate_at_ns;
        for (k, d) in self.deltas.iter().enumerate() {
            if d.activate_at_ns <= last {
                return Err(format!(
                    "deltas[{k}]: activate_at_ns {} is not after the previous instant {last}",
                    d.activate_at_ns
                ));
            }
            last = d.activate_at_ns;
            let mut changed = std::collections::BTreeSet::new();
            for (i, c) in d.changes.iter().enumerate() {
                let at = || format!("deltas[{k}].changes[{i}]");
                self.check_entry(c).map_err(|m| format!("{}: {m}", at()))?;
                if !dests.contains(&c.destination) {
                    return Err(format!(
                        "{}: destination {} is not in the initial table",
                        at(),
                        c.destination
                    ));
                }
                if !changed.insert(c.destination) {
                    return Err(format!(
                        "{}: destination {} changes twice at one instant",
                        at(),
                        c.destination
                    ));
                }
            }
        }
        Ok(())
    }

    /// `label` (field `what`) must be node `id`'s node SID, above the
    /// reserved labels 0..=15 and within 20 bits.
    fn check_label(&self, what: &str, id: u32, label: u32) -> Result<(), String> {
        match self.srgb_base.checked_add(id) {
            Some(l) if l == label && (16..=MAX_LABEL).contains(&l) => Ok(()),
            Some(l) if l == label => Err(format!(
                "{what} {label} is not an ordinary MPLS label (16..={MAX_LABEL})"
            )),
            _ => Err(format!(
                "{what} {label} is not srgb_base {} + {id}",
                self.srgb_base
            )),
        }
    }

    fn check_entry(&self, e: &FibEntry) -> Result<(), String> {
        if e.destination == self.node {
            return Err(format!("destination {} is the node itself", e.destination));
        }
        self.check_label("label", e.destination, e.label)?;
        for (what, hop) in [("next_hop", e.next_hop), ("backup", e.backup)] {
            if hop == Some(self.node) {
                return Err(format!("{what} {} is the node itself", self.node));
            }
        }
        Ok(())
    }
}

fn opt(v: u32) -> Option<u32> {
    (v != NONE).then_some(v)
}

/// Accumulates step results into per-node schedules.
#[derive(Debug)]
pub struct ScheduleBuilder {
    n_sats: usize,
    n_gs: usize,
    n_dests: usize,
    srgb_base: u32,
    gs_prefixes: Vec<Ipv4Prefix>,
    epoch_utc: String,
    step_ns: i64,
    prev_next: Vec<u32>,
    prev_backup: Vec<u32>,
    schedules: Vec<NodeSchedule>,
    /// FIB entry changes per node (excluding the initial table): entries whose
    /// next hop or backup changed.
    pub changes_per_node: Vec<u64>,
    /// Of those, entries whose primary next hop changed.
    pub primary_changes_per_node: Vec<u64>,
}

impl ScheduleBuilder {
    /// A builder for `n_sats` satellites and `n_gs` stations; `n_dests` is the
    /// number of destinations of the step results ([`super::Network::n_dests`]).
    pub fn new(
        n_sats: usize,
        n_gs: usize,
        n_dests: usize,
        srgb_base: u32,
        epoch_utc: String,
        step_ns: i64,
    ) -> Self {
        Self {
            n_sats,
            n_gs,
            n_dests,
            srgb_base,
            gs_prefixes: Vec::new(),
            epoch_utc,
            step_ns,
            prev_next: Vec::new(),
            prev_backup: Vec::new(),
            schedules: Vec::new(),
            changes_per_node: vec![0; n_sats + n_gs],
            primary_changes_per_node: vec![0; n_sats + n_gs],
        }
    }

    /// Sets the ground stations' prefixes (from [`gs_prefixes`], one per
    /// station, in station order); call before the first [`Self::push`].
    /// Without it, schedules carry no `prefix` / `local_prefix`.
    pub fn with_gs_prefixes(mut self, prefixes: Vec<Ipv4Prefix>) -> Result<Self, Error> {
        if prefixes.len() != self.n_gs {
            return Err(Error::Scenario(format!(
                "{} ground-station prefixes for {} ground stations",
                prefixes.len(),
                self.n_gs
            )));
        }
        self.gs_prefixes = prefixes;
        Ok(self)
    }

    /// The prefix of node `node`, if it is a ground station with one.
    fn prefix_of(&self, node: usize) -> Option<Ipv4Prefix> {
        node.checked_sub(self.n_sats)
            .and_then(|g| self.gs_prefixes.get(g).copied())
    }

    fn entry(&self, step: &StepResult, d: usize, node: usize) -> FibEntry {
        let i = d * (self.n_sats + self.n_gs) + node;
        let dest = dest_node(self.n_sats, self.n_gs, d) as u32;
        FibEntry {
            destination: dest,
            label: self.srgb_base + dest,
            next_hop: opt(step.next_hop[i]),
            backup: opt(step.backup[i]),
            prefix: self.prefix_of(dest as usize),
        }
    }

    /// Adds the next step (steps must come in time order).
    pub fn push(&mut self, step: &StepResult) {
        let n_nodes = self.n_sats + self.n_gs;
        if self.schedules.is_empty() {
            for node in 0..n_nodes {
                let entries = (0..self.n_dests)
                    .filter(|&d| dest_node(self.n_sats, self.n_gs, d) != node)
                    .map(|d| self.entry(step, d, node))
                    .collect();
                self.schedules.push(NodeSchedule {
                    format: FORMAT.to_string(),
                    node: node as u32,
                    node_label: self.srgb_base + node as u32,
                    kind: if node < self.n_sats {
                        "satellite"
                    } else {
                        "ground_station"
                    }
                    .into(),
                    srgb_base: self.srgb_base,
                    local_prefix: self.prefix_of(node),
                    epoch_utc: self.epoch_utc.clone(),
                    step_ns: self.step_ns,
                    initial: FibTable {
                        activate_at_ns: step.t_ns,
                        entries,
                    },
                    deltas: Vec::new(),
                });
            }
        } else {
            for node in 0..n_nodes {
                let mut changes = Vec::new();
                for d in 0..self.n_dests {
                    let i = d * n_nodes + node;
                    if dest_node(self.n_sats, self.n_gs, d) == node {
                        continue;
                    }
                    let primary = step.next_hop[i] != self.prev_next[i];
                    if primary || step.backup[i] != self.prev_backup[i] {
                        self.primary_changes_per_node[node] += u64::from(primary);
                        changes.push(self.entry(step, d, node));
                    }
                }
                if !changes.is_empty() {
                    self.changes_per_node[node] += changes.len() as u64;
                    self.schedules[node].deltas.push(FibDelta {
                        activate_at_ns: step.t_ns,
                        changes,
                    });
                }
            }
        }
        self.prev_next.clone_from(&step.next_hop);
        self.prev_backup.clone_from(&step.backup);
    }

    /// The schedules built so far.
    pub fn schedules(&self) -> &[NodeSchedule] {
        &self.schedules
    }

    /// Writes `<dir>/node-<id>.json` for every node.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), Error> {
        let io = |path: &std::path::Path, e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for s in &self.schedules {
            let path = dir.join(format!("node-{}.json", s.node));
            let f = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
            serde_json::to_writer(std::io::BufWriter::new(f), s)
                .map_err(|e| io(&path, std::io::Error::other(e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn default_plan_is_the_ith_slash_24() {
        let v = gs_prefixes("10.128.0.0/9", 24, 300).unwrap();
        assert_eq!(v[0].to_string(), "10.128.0.0/24");
        assert_eq!(v[3].to_string(), "10.128.3.0/24");
        assert_eq!(v[255].to_string(), "10.128.255.0/24");
        assert_eq!(v[256].to_string(), "10.129.0.0/24");
        assert_eq!(v[299].to_string(), "10.129.43.0/24");
        // The whole /9 is 32768 /24s; the last one is 10.255.255.0/24.
        let all = gs_prefixes("10.128.0.0/9", 24, 32768).unwrap();
        assert_eq!(all.last().unwrap().to_string(), "10.255.255.0/24");
        let base = p("10.128.0.0/9");
        assert!(all.iter().all(|x| base.contains(x)));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn other_lengths_and_edges() {
        let v = gs_prefixes("192.168.0.0/24", 26, 4).unwrap();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "192.168.0.0/26",
                "192.168.0.64/26",
                "192.168.0.128/26",
                "192.168.0.192/26"
            ]
        );
        assert_eq!(gs_prefixes("0.0.0.0/0", 0, 1).unwrap(), [p("0.0.0.0/0")]);
        assert_eq!(
            gs_prefixes("255.255.255.254/31", 32, 2).unwrap(),
            [p("255.255.255.254/32"), p("255.255.255.255/32")]
        );
        assert!(gs_prefixes("10.0.0.0/8", 24, 0).unwrap().is_empty());
    }

    #[test]
    fn bad_plans_are_errors_naming_the_option() {
        let err =
            |base: &str, len: u8, n: usize| gs_prefixes(base, len, n).unwrap_err().to_string();
        let e = err("10.128.0.0/22", 24, 5);
        assert!(
            e.contains("--gs-prefix-base") && e.contains("holds 4"),
            "{e}"
        );
        for bad in [
            "10.128.0.0",
            "10.128.0/9",
            "10.128.0.0/33",
            "10.128.0.0/x",
            "",
            "10.200.0.0/9",
            "10.128.0.1/9",
            "::/0",
        ] {
            let e = err(bad, 24, 1);
            assert!(e.contains("--gs-prefix-base"), "{bad}: {e}");
        }
        let e = err("10.128.0.0/9", 8, 1);
        assert!(e.contains("--gs-prefix-len 8"), "{e}");
        let e = err("10.128.0.0/9", 33, 1);
        assert!(e.contains("--gs-prefix-len 33"), "{e}");
    }

    #[test]
    fn prefix_serializes_as_a_string() {
        let e = FibEntry {
            destination: 5,
            label: 16005,
            next_hop: Some(1),
            backup: None,
            prefix: Some(p("10.128.1.0/24")),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""prefix":"10.128.1.0/24""#), "{json}");
        assert_eq!(serde_json::from_str::<FibEntry>(&json).unwrap(), e);
        let none = FibEntry { prefix: None, ..e };
        let json = serde_json::to_string(&none).unwrap();
        assert!(!json.contains("prefix"), "{json}");
        assert_eq!(serde_json::from_str::<FibEntry>(&json).unwrap(), none);
        assert!(
            serde_json::from_str::<FibEntry>(&json.replace('}', r#","prefix":"10.1.1.1/8"}"#))
                .is_err()
        );
    }
}
