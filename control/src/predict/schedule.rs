//! Per-node FIB schedules: a full next-hop table at the first instant, then
//! deltas with activation times, only where something changes (time-variant
//! routing, RFC 9657 section 3: the schedule is known ahead of time).
//!
//! Label plan (SR-MPLS, RFC 8660, see DESIGN.md): every node's node SID is
//! `srgb_base + node index` (default base 16000); a transit node swaps the
//! destination's node SID to the same label and sends it to `next_hop`.
//!
//! On disk: one JSON file per node, `<out>/schedule/node-<id>.json`, holding one
//! [`NodeSchedule`]. Times are `activate_at_ns`: integer nanoseconds since the
//! scenario epoch (`epoch_utc`, ISO 8601 UTC, also in the file). A node applies
//! `initial` at its `activate_at_ns`, then each delta in order at its instant;
//! a delta lists only the entries that change. An entry whose `next_hop` is
//! `null` withdraws the destination (unreachable from this node from then on).
//! Destinations are the ground stations (nodes N..N+G-1), then, when the
//! prediction ran with satellite destinations, the satellites (nodes 0..N-1); a
//! node has no entry for itself.
//!
//! Example (Starlink S1 + 100 stations, satellite 0, shortened; real files are
//! written without indentation):
//!
//! ```json
//! {
//!   "format": "orbitmesh-fib-schedule/1",
//!   "node": 0, "node_label": 16000, "kind": "satellite", "srgb_base": 16000,
//!   "epoch_utc": "2000-01-01T00:00:00.000000Z", "step_ns": 100000000,
//!   "initial": { "activate_at_ns": 0, "entries": [
//!     { "destination": 1584, "label": 17584, "next_hop": 1, "backup": 22 },
//!     { "destination": 1585, "label": 17585, "next_hop": 1, "backup": 22 } ] },
//!   "deltas": [
//!     { "activate_at_ns": 2200000000, "changes": [
//!       { "destination": 1680, "label": 17680, "next_hop": 1, "backup": 1562 } ] } ]
//! }
//! ```
//!
//! Node ids name neighbours, not ports: the dataplane maps a next-hop node to the
//! ISL/GSL port that reaches it. Entries change only when the next hop or the
//! backup changes, so a delta may list an entry whose `next_hop` is unchanged.

use serde::{Deserialize, Serialize};

use super::routing::{dest_node, StepResult, NONE};
use super::Error;

/// Schema identifier written in every file.
pub const FORMAT: &str = "orbitmesh-fib-schedule/1";

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
            epoch_utc,
            step_ns,
            prev_next: Vec::new(),
            prev_backup: Vec::new(),
            schedules: Vec::new(),
            changes_per_node: vec![0; n_sats + n_gs],
            primary_changes_per_node: vec![0; n_sats + n_gs],
        }
    }

    fn entry(&self, step: &StepResult, d: usize, node: usize) -> FibEntry {
        let i = d * (self.n_sats + self.n_gs) + node;
        let dest = dest_node(self.n_sats, self.n_gs, d) as u32;
        FibEntry {
            destination: dest,
            label: self.srgb_base + dest,
            next_hop: opt(step.next_hop[i]),
            backup: opt(step.backup[i]),
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
