//! The control process (`orbitmesh-ctl run`): turns predicted per-node
//! schedules (predict::schedule) into FIBs and keeps every dataplane one
//! snapshot ahead, each staged with its activation time, so a predicted
//! topology change costs no control-plane latency at the instant it happens
//! (time-variant routing, RFC 9657).
//!
//! A schedule names neighbours by node id; a *wiring* file says how each
//! node reaches each neighbour (port and MACs) and where the control process
//! reaches the node: its control socket (`socket`, on the same host) or its
//! remote control channel (`remote = "HOST:PORT"`, the dataplane's
//! `remote_listen`, TCP: signed orders only, so run with `--key`), one of
//! the two:
//!
//! ```toml
//! [nodes.17]
//! socket = "/run/orbitmesh/n17.sock"
//! links = [ { neighbor = 18, port = "isl0", dst_mac = "02:00:00:00:12:00", src_mac = "02:00:00:00:11:00" } ]
//! # A ground station: where its own prefix is delivered (egress).
//! # local = { port = "lan0", dst_mac = "02:..", src_mac = "02:.." }
//!
//! [nodes.18]
//! remote = "10.99.0.18:7470"
//! links = [ { neighbor = 17, port = "isl0", dst_mac = "02:00:00:00:11:00", src_mac = "02:00:00:00:12:00" } ]
//! ```
//!
//! FIB per instant (docs/design.md, "2. Label plan": RFC 8660 node SIDs): every
//! reachable destination's label swaps to itself towards the next hop (with
//! the loop-free alternate as backup when it is wired); the node's own label
//! pops; a ground station also pushes each remote station's label for that
//! station's prefix (ingress) and routes its own prefix to `local` (egress).
//! Next hops that are not wired are left out and counted.
//!
//! Time: schedule time 0 is mapped to `start` (ns since the Unix epoch,
//! CLOCK_REALTIME), divided by `time_scale` (2.0 = twice as fast as real
//! time, for emulations). After each instant the dataplane's active version
//! is read back; late or failed activations are reported.
//!
//! What [`drive`] does and finds is told as typed [`Event`]s (activations
//! verified or late, links down, repairs pushed, dataplanes unreachable);
//! `orbitmesh-ctl run` logs their lines and, with `--events`, writes them
//! as JSON lines (crate::events).

use crate::events::Event;
use crate::predict::scenario::Scenario;
use crate::predict::schedule::{FibEntry, NodeSchedule};
use crate::predict::Window;
use orbitmesh_core::fib::spec::{
    ActionSpec, FibSpec, LabelSpec, NextHopId, NextHopSpec, PortSpec, RouteSpec,
};
use orbitmesh_core::protocol::endpoint::{is_host_port, Endpoint};
use orbitmesh_core::protocol::{Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub neighbor: u32,
    pub port: String,
    pub dst_mac: String,
    pub src_mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPort {
    pub port: String,
    pub dst_mac: String,
    pub src_mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeWiring {
    /// The node's control socket (the control process on the same host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// The node's remote control channel, HOST:PORT (TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub local: Option<LocalPort>,
}

/// A wiring file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Not TOML, or not the wiring's fields.
    #[error("{0}")]
    Toml(toml::de::Error),
    /// A `[nodes.KEY]` whose key is not a node id written plainly.
    #[error("[nodes.{key}]: {key:?} is not a node id")]
    NotANodeId { key: String },
    /// A node's wiring does not hold.
    #[error("[nodes.{key}]: {error}")]
    Node { key: String, error: NodeWiringError },
}

/// What is wrong with one node's wiring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeWiringError {
    #[error("socket is empty")]
    EmptySocket,
    #[error("neither socket nor remote: give one, where the node's dataplane is reached")]
    NoEndpoint,
    #[error(
        "both socket and remote: give one (remote for the remote channel, signed orders only)"
    )]
    TwoEndpoints,
    #[error("remote {0:?}: expected HOST:PORT, e.g. 10.99.0.17:7470 or [fd00::11]:7470")]
    BadRemote(String),
    #[error("links[{index}]: neighbor {node} is the node itself")]
    LinkToItself { index: usize, node: u32 },
    #[error("links[{index}]: neighbor {neighbor} is above {MAX_NEIGHBOUR}, the largest node id a next-hop id is made from")]
    NeighbourTooLarge { index: usize, neighbor: u32 },
    #[error("links[{index}]: neighbor {neighbor} is linked twice")]
    LinkedTwice { index: usize, neighbor: u32 },
    #[error("links[{index}]: {error}")]
    Link { index: usize, error: PortError },
    #[error("local: {0}")]
    Local(PortError),
}

/// What is wrong with a link's or the local port's name or MACs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port is empty")]
    EmptyPort,
    /// `field` is `dst_mac` or `src_mac`.
    #[error("{field} {mac:?} is not a MAC address like 02:00:00:00:00:01")]
    BadMac { field: &'static str, mac: String },
}

impl NodeWiring {
    /// Node `id`'s wiring: a socket or a remote channel (not both), named
    /// ports, MACs the dataplane will take, and at most one link to each
    /// neighbour, never to itself.
    pub fn check(&self, id: u32) -> Result<(), NodeWiringError> {
        match (&self.socket, &self.remote) {
            (None, None) => return Err(NodeWiringError::NoEndpoint),
            (Some(_), Some(_)) => return Err(NodeWiringError::TwoEndpoints),
            (Some(s), None) if s.as_os_str().is_empty() => {
                return Err(NodeWiringError::EmptySocket)
            }
            (None, Some(r)) if !is_host_port(r) => {
                return Err(NodeWiringError::BadRemote(r.clone()))
            }
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for (index, l) in self.links.iter().enumerate() {
            if l.neighbor == id {
                return Err(NodeWiringError::LinkToItself { index, node: id });
            }
            if l.neighbor > MAX_NEIGHBOUR {
                return Err(NodeWiringError::NeighbourTooLarge {
                    index,
                    neighbor: l.neighbor,
                });
            }
            if !seen.insert(l.neighbor) {
                return Err(NodeWiringError::LinkedTwice {
                    index,
                    neighbor: l.neighbor,
                });
            }
            check_port(&l.port, &l.dst_mac, &l.src_mac)
                .map_err(|error| NodeWiringError::Link { index, error })?;
        }
        if let Some(p) = &self.local {
            check_port(&p.port, &p.dst_mac, &p.src_mac).map_err(NodeWiringError::Local)?;
        }
        Ok(())
    }

    /// Where the node is reached: its remote channel or its socket (a
    /// checked wiring has exactly one; an unchecked one with neither gets
    /// the empty path, which no connection reaches).
    pub fn endpoint(&self) -> Endpoint {
        match (&self.remote, &self.socket) {
            (Some(r), _) => Endpoint::Tcp(r.clone()),
            (None, Some(s)) => Endpoint::Socket(s.clone()),
            (None, None) => Endpoint::Socket(PathBuf::new()),
        }
    }

    /// A node reached at its control socket `socket`.
    pub fn at_socket(socket: PathBuf, links: Vec<Link>, local: Option<LocalPort>) -> NodeWiring {
        NodeWiring {
            socket: Some(socket),
            remote: None,
            links,
            local,
        }
    }
}

/// Largest neighbour node id a wiring may name: the next hop towards
/// neighbour `n` has id `n + 1` in every FIB the control process makes
/// (see [`fib_for`]), below the ids of ingress and local next hops.
pub const MAX_NEIGHBOUR: u32 = (1 << 30) - 3;
/// The id of the next hop out of the local port (a ground station's).
const LOCAL_HOP: NextHopId = NextHopId((1 << 30) - 1);
/// Ingress next hops: the one pushing label `l` has id `PUSH_HOPS + l`
/// (labels are 20 bits, so these stay below `spec::MAX_ID`).
const PUSH_HOPS: u32 = 1 << 30;

/// The next-hop id towards neighbour node `n` (`n` <= [`MAX_NEIGHBOUR`]).
pub fn neighbour_hop(n: u32) -> NextHopId {
    NextHopId(n + 1)
}

/// A next hop out of a wired port (no VLAN, no backup yet), its MACs
/// (destination, source) as the wiring gives them.
fn wired_hop(
    (id, name): (NextHopId, String),
    port: &str,
    (dst, src): (&str, &str),
    push: Vec<u32>,
) -> NextHopSpec {
    NextHopSpec {
        id,
        name,
        port: port.to_string(),
        dst_mac: wired_mac(dst),
        src_mac: wired_mac(src),
        vlan: None,
        push,
        backup: None,
    }
}

/// A wiring MAC as a value; [`NodeWiring::check`] refuses a wiring with
/// any that is not one before a FIB is made from it.
fn wired_mac(s: &str) -> orbitmesh_core::wire::ethernet::Mac {
    s.parse()
        .expect("wiring MACs are checked (NodeWiring::check)")
}

/// A port name and the two MACs of a link or local port.
fn check_port(port: &str, dst_mac: &str, src_mac: &str) -> Result<(), PortError> {
    if port.is_empty() {
        return Err(PortError::EmptyPort);
    }
    for (field, mac) in [("dst_mac", dst_mac), ("src_mac", src_mac)] {
        if orbitmesh_core::wire::ethernet::parse_mac(mac).is_none() {
            return Err(PortError::BadMac {
                field,
                mac: mac.to_string(),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiring {
    /// Keyed by node id (TOML keys are strings: `[nodes.17]`).
    nodes: BTreeMap<String, NodeWiring>,
}

impl Wiring {
    /// Parses a wiring file; every key must be a node id written plainly
    /// (not "+17" or "017", which would name node 17 twice), and every
    /// node's wiring must hold (NodeWiring::check).
    pub fn parse(text: &str) -> Result<Wiring, WiringError> {
        let w: Wiring = toml::from_str(text).map_err(WiringError::Toml)?;
        for (k, nw) in &w.nodes {
            let id = k
                .parse::<u32>()
                .ok()
                .filter(|id| id.to_string() == *k)
                .ok_or_else(|| WiringError::NotANodeId { key: k.clone() })?;
            nw.check(id).map_err(|error| WiringError::Node {
                key: k.clone(),
                error,
            })?;
        }
        Ok(w)
    }

    /// The nodes in id order.
    pub fn nodes(&self) -> Vec<(u32, &NodeWiring)> {
        let mut v: Vec<(u32, &NodeWiring)> = self
            .nodes
            .iter()
            .map(|(k, w)| (k.parse().expect("checked in parse"), w))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// A wiring from its nodes (by id).
    pub fn from_nodes(nodes: impl IntoIterator<Item = (u32, NodeWiring)>) -> Wiring {
        Wiring {
            nodes: nodes.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    pub fn node_mut(&mut self, id: u32) -> Option<&mut NodeWiring> {
        self.nodes.get_mut(&id.to_string())
    }
}

/// The FIB of `sched`'s node for `table`, with `version`; returns it and
/// how many entries had a next hop that is not wired.
pub fn fib_for(
    sched: &NodeSchedule,
    table: &[FibEntry],
    wiring: &NodeWiring,
    version: u64,
) -> (FibSpec, usize) {
    let mut spec = FibSpec {
        version,
        hash_seed: sched.node,
        ..FibSpec::default()
    };
    let mut ports = BTreeSet::new();
    let wired: BTreeMap<u32, &Link> = wiring.links.iter().map(|l| (l.neighbor, l)).collect();
    // The next hop towards each wired neighbour, by its position in
    // `spec.next_hops`. Its id is the neighbour's node id + 1, the same in
    // every FIB of the node, so that the deltas between them are keyed by
    // ids that never change; its name ("n<id>") is a label for people.
    let mut hop: BTreeMap<u32, usize> = BTreeMap::new();
    for l in &wiring.links {
        if ports.insert(l.port.clone()) {
            spec.ports.push(PortSpec {
                name: l.port.clone(),
                mtu: 1500,
            });
        }
        hop.insert(l.neighbor, spec.next_hops.len());
        spec.next_hops.push(wired_hop(
            (neighbour_hop(l.neighbor), format!("n{}", l.neighbor)),
            &l.port,
            (&l.dst_mac, &l.src_mac),
            vec![],
        ));
    }
    spec.labels.push(LabelSpec {
        label: sched.node_label,
        action: ActionSpec::Pop,
        out_label: None,
        group: None,
        next_hop: None,
    });
    let mut unwired = 0;
    let is_gs = sched.local_prefix.is_some();
    for e in table {
        let Some(h) = e.next_hop else { continue };
        let Some(&i) = hop.get(&h) else {
            unwired += 1;
            continue;
        };
        // One backup per neighbour: the first entry's wired alternate
        // (other than the neighbour itself) wins.
        let backup = e.backup.and_then(|b| hop.get(&b)).filter(|&&b| b != i);
        if let (None, Some(&b)) = (&spec.next_hops[i].backup, backup) {
            spec.next_hops[i].backup = Some(spec.next_hops[b].id);
        }
        spec.labels.push(LabelSpec {
            label: e.label,
            action: ActionSpec::Swap,
            out_label: None,
            group: None,
            next_hop: Some(spec.next_hops[i].id),
        });
        if let (true, Some(p)) = (is_gs, e.prefix) {
            // Ingress: push the remote station's label towards the next hop.
            let l = &wired[&h];
            // One per destination label, so its id is made from the label.
            let id = NextHopId(PUSH_HOPS.saturating_add(e.label));
            spec.next_hops.push(wired_hop(
                (id, format!("n{h}-push{}", e.label)),
                &l.port,
                (&l.dst_mac, &l.src_mac),
                vec![e.label],
            ));
            spec.routes.push(RouteSpec {
                prefix: p.into(),
                group: None,
                next_hop: Some(id),
            });
        }
    }
    if let (Some(p), Some(local)) = (sched.local_prefix, &wiring.local) {
        if ports.insert(local.port.clone()) {
            spec.ports.push(PortSpec {
                name: local.port.clone(),
                mtu: 1500,
            });
        }
        spec.next_hops.push(wired_hop(
            (LOCAL_HOP, "local".into()),
            &local.port,
            (&local.dst_mac, &local.src_mac),
            vec![],
        ));
        spec.routes.push(RouteSpec {
            prefix: p.into(),
            group: None,
            next_hop: Some(LOCAL_HOP),
        });
    }
    (spec, unwired)
}

/// Every instant of a schedule (schedule ns) with its FIB; version = index + 1.
pub fn plan(sched: &NodeSchedule, wiring: &NodeWiring) -> (Plan, usize) {
    let mut out = Vec::with_capacity(1 + sched.deltas.len());
    let mut unwired = 0;
    let mut table = sched.initial.entries.clone();
    let mut push = |t: i64, table: &[FibEntry], out: &mut Plan| {
        let (f, u) = fib_for(sched, table, wiring, out.len() as u64 + 1);
        unwired = unwired.max(u);
        out.push((t, f));
    };
    push(sched.initial.activate_at_ns, &table, &mut out);
    for d in &sched.deltas {
        for c in &d.changes {
            if let Some(e) = table.iter_mut().find(|e| e.destination == c.destination) {
                *e = *c;
            }
        }
        push(d.activate_at_ns, &table, &mut out);
    }
    (out, unwired)
}

/// One node's FIBs: (schedule instant in ns, FIB), version = index + 1.
pub type Plan = Vec<(i64, FibSpec)>;

/// A node to drive: id, where it is reached, plan.
pub type NodePlan = (u32, Endpoint, Plan);

/// Sends one request to a node and returns its answer (the real control
/// socket or remote channel in the CLI, anything in tests); shared by the
/// threads that upload windows to several nodes at once.
pub type Call<'a> = &'a (dyn Fn(&Endpoint, Request) -> Result<Response, String> + Sync);

/// What happened to one node during a run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: u32,
    pub staged: usize,
    pub verified: usize,
    /// Instants whose version was not active when read back after them.
    pub late: usize,
    /// Requests the dataplane refused or could not be sent.
    pub failed: usize,
    pub max_unwired: usize,
    /// Unscheduled updates pushed after a link went down or came back.
    #[serde(default)]
    pub repairs: usize,
    /// Schedule windows the node took (crate::windows; 0 when FIBs are
    /// staged one at a time).
    #[serde(default)]
    pub windows: usize,
}

/// Link repair: how the run learns of failed links and recomputes.
pub struct Repair<'a> {
    /// How often each dataplane's ports are read (wall ns).
    pub poll_every_ns: u64,
    /// (node, port name) -> the neighbour behind that port (from the wiring).
    pub ports: BTreeMap<(u32, String), u32>,
    /// Every node's plan from schedule time `t` (ns) on, with `failed` links
    /// (smaller id first) out of service, for at most `steps` instants (all
    /// the rest of the window with `None`). The first instant of each plan
    /// is the one in force at `t`.
    #[allow(clippy::type_complexity)]
    pub replan: &'a dyn Fn(
        &BTreeSet<(u32, u32)>,
        i64,
        Option<usize>,
    ) -> Result<Vec<NodePlan>, ScenarioError>,
}

impl std::fmt::Debug for Repair<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repair")
            .field("poll_every_ns", &self.poll_every_ns)
            .field("ports", &self.ports.len())
            .finish()
    }
}

/// Per-node progress of [`drive`].
struct NodeState {
    plan: Plan,
    /// Index of the next instant to stage.
    next: usize,
    /// Last version sent (every FIB sent gets the next one).
    version: u64,
    /// (wall time, version) to read back once the time has passed.
    verify: std::collections::VecDeque<(u64, u64)>,
    /// Unreachable dataplane: next attempt not before this (wall ns), and
    /// the current backoff (doubling from 200 ms to 5 s).
    retry_at: u64,
    backoff_ns: u64,
}

/// How often the list of unreachable dataplanes is repeated while it does
/// not change.
pub const UNREACHABLE_REPEAT_NS: u64 = 5_000_000_000;

/// Dataplanes that cannot be reached, told as one line when the set grows
/// (and again every [`UNREACHABLE_REPEAT_NS`] while it lasts) and one line
/// per node when it is back, instead of a line per node per attempt: 40
/// unreachable dataplanes retried with backoff made 322 lines in 20 s.
#[derive(Debug, Default)]
pub struct Unreachable {
    /// Node id -> the last error.
    down: BTreeMap<u32, String>,
    grown: bool,
    told_at: Option<u64>,
}

impl Unreachable {
    /// A call to `node` failed with `error`.
    pub fn failed(&mut self, node: u32, error: &str) {
        if self.down.insert(node, error.to_string()).is_none() {
            self.grown = true;
        }
    }

    /// A call to `node` succeeded: an event when it was unreachable.
    pub fn reached(&mut self, node: u32) -> Option<Event> {
        self.down.remove(&node).map(|_| Event::Reachable { node })
    }

    /// A call to `node` was answered (`Ok`): says so if it was unreachable.
    pub fn answered<T>(
        &mut self,
        node: u32,
        answer: &Result<T, String>,
        emit: &mut dyn FnMut(Event),
    ) {
        if let Some(e) = answer.is_ok().then(|| self.reached(node)).flatten() {
            emit(e);
        }
    }

    /// The event to tell at `now` (wall ns), if one is due: when nodes
    /// joined the set, or the last one is [`UNREACHABLE_REPEAT_NS`] old.
    pub fn summary(&mut self, now: u64) -> Option<Event> {
        let repeat = self
            .told_at
            .is_none_or(|t| now >= t.saturating_add(UNREACHABLE_REPEAT_NS));
        let (&node, error) = self.down.iter().next()?;
        if !(self.grown || repeat) {
            return None;
        }
        let event = Event::Unreachable {
            nodes: self.down.keys().copied().collect(),
            node,
            error: error.clone(),
        };
        self.grown = false;
        self.told_at = Some(now);
        Some(event)
    }
}

/// Counts one read-back of `node`'s FIB version, taken once the instant of
/// version `v` had passed, and says it: verified when `in_force(active)`
/// (the FIB of `v`'s instant or a later one is active), late when not,
/// failed when the answer is not a version or the node is unreachable.
/// Both distributors (one FIB ahead, and windows) verify this way.
pub(crate) fn tally_readback(
    node: u32,
    v: u64,
    answer: Result<Response, String>,
    in_force: impl Fn(u64) -> bool,
    report: &mut NodeReport,
    unreachable: &mut Unreachable,
    emit: &mut dyn FnMut(Event),
) {
    unreachable.answered(node, &answer, &mut *emit);
    match answer {
        Ok(Response::Version(info)) if in_force(info.active) => {
            report.verified += 1;
            emit(Event::Verified { node, version: v });
        }
        Ok(Response::Version(info)) => {
            report.late += 1;
            emit(Event::Late {
                node,
                version: v,
                active: info.active,
            });
        }
        Ok(r) => {
            report.failed += 1;
            emit(Event::Unexpected {
                node,
                answer: format!("{r:?}"),
            });
        }
        Err(e) => {
            report.failed += 1;
            unreachable.failed(node, &e);
        }
    }
}

/// The wall time (ns since the Unix epoch) of schedule time `t_ns` when
/// schedule time 0 is `start_ns` and `time_scale` schedule seconds pass per
/// wall second; the end of time rather than an overflow for instants past it
/// (`--start 18446744073709551615`, `--time-scale 1e-300`).
pub fn wall_ns(start_ns: u64, t_ns: i64, time_scale: f64) -> u64 {
    start_ns.saturating_add((t_ns.max(0) as f64 / time_scale) as u64)
}

/// The links whose port is down (no carrier or set down) at either end,
/// read from every dataplane's stats.
pub(crate) fn links_down(plans: &[NodePlan], call: Call<'_>, r: &Repair) -> BTreeSet<(u32, u32)> {
    let mut down = BTreeSet::new();
    for (node, socket, _) in plans {
        if let Ok(Response::Stats(s)) = call(socket, Request::Stats) {
            for p in s.ports.iter().filter(|p| !(p.carrier && p.admin_up)) {
                if let Some(&nb) = r.ports.get(&(*node, p.name.clone())) {
                    down.insert((*node.min(&nb), *node.max(&nb)));
                }
            }
        }
    }
    down
}

/// Drives every node's plan. `call` sends a request to a socket (the real
/// control socket in the CLI, anything in tests); `now_ns` is the clock.
/// With `repair`, the ports of every dataplane are watched: when the set of
/// links down changes, routes are recomputed without them and every node
/// gets the repaired FIB at once (an unscheduled update), then the repaired
/// schedule.
pub fn drive(
    plans: &[NodePlan],
    start_ns: u64,
    time_scale: f64,
    call: Call<'_>,
    now_ns: &dyn Fn() -> u64,
    repair: Option<&Repair>,
    emit: &mut dyn FnMut(Event),
) -> Vec<NodeReport> {
    let mut d = Distributor::new(plans, start_ns, time_scale, call, repair, emit);
    loop {
        let now = now_ns();
        let mut pass = Pass {
            wake: u64::MAX,
            pending: false,
        };
        d.watch(now, &mut pass);
        for i in 0..plans.len() {
            d.verify(i, now, &mut pass);
            d.stage(i, now, &mut pass);
        }
        if let Some(e) = d.unreachable.summary(now) {
            (d.emit)(e);
        }
        if !pass.pending {
            return d.reports;
        }
        let now = now_ns();
        if pass.wake > now {
            // Sleeping between instants: the process costs nothing meanwhile.
            std::thread::sleep(std::time::Duration::from_nanos(
                (pass.wake - now).min(1_000_000_000),
            ));
        }
    }
}

/// What one pass over the nodes leaves to do: the next wall time anything
/// is due, and whether anything is left at all.
struct Pass {
    wake: u64,
    pending: bool,
}

/// The state of [`drive`]: every node's progress and report, and the
/// links known to be down.
struct Distributor<'a> {
    plans: &'a [NodePlan],
    start_ns: u64,
    time_scale: f64,
    call: Call<'a>,
    repair: Option<&'a Repair<'a>>,
    emit: &'a mut dyn FnMut(Event),
    reports: Vec<NodeReport>,
    st: Vec<NodeState>,
    failed_links: BTreeSet<(u32, u32)>,
    unreachable: Unreachable,
    next_poll: u64,
    /// Wall time of the last instant of any plan: the ports are not
    /// watched after it.
    end_wall: u64,
}

impl<'a> Distributor<'a> {
    fn new(
        plans: &'a [NodePlan],
        start_ns: u64,
        time_scale: f64,
        call: Call<'a>,
        repair: Option<&'a Repair<'a>>,
        emit: &'a mut dyn FnMut(Event),
    ) -> Distributor<'a> {
        let end_wall = plans
            .iter()
            .filter_map(|p| p.2.last())
            .map(|(t, _)| wall_ns(start_ns, *t, time_scale))
            .max()
            .unwrap_or(0);
        Distributor {
            plans,
            start_ns,
            time_scale,
            call,
            repair,
            emit,
            reports: plans
                .iter()
                .map(|p| NodeReport {
                    node: p.0,
                    ..Default::default()
                })
                .collect(),
            st: plans
                .iter()
                .map(|p| NodeState {
                    plan: p.2.clone(),
                    next: 0,
                    version: 0,
                    verify: Default::default(),
                    retry_at: 0,
                    backoff_ns: 0,
                })
                .collect(),
            failed_links: BTreeSet::new(),
            unreachable: Unreachable::default(),
            next_poll: 0,
            end_wall,
        }
    }

    /// Wall ns of schedule time `t`.
    fn wall(&self, t: i64) -> u64 {
        wall_ns(self.start_ns, t, self.time_scale)
    }

    /// Link watch: every `poll_every_ns` until the last instant, the
    /// dataplanes' ports are read; a changed set of links down triggers a
    /// repair.
    fn watch(&mut self, now: u64, pass: &mut Pass) {
        let Some(r) = self.repair else { return };
        if now >= self.end_wall {
            return;
        }
        if now < self.next_poll {
            pass.wake = pass.wake.min(self.next_poll);
            return;
        }
        self.next_poll = now + r.poll_every_ns;
        pass.wake = pass.wake.min(self.next_poll);
        let down = self.links_down(r);
        if down != self.failed_links {
            self.repair(r, down, now);
        }
    }

    fn links_down(&self, r: &Repair) -> BTreeSet<(u32, u32)> {
        links_down(self.plans, self.call, r)
    }

    /// Routes without the links `down`: first the instant in force (one
    /// step: fast), pushed at once; then the rest of the window, staged one
    /// ahead like the schedule.
    fn repair(&mut self, r: &Repair, down: BTreeSet<(u32, u32)>, now: u64) {
        let t = ((now.saturating_sub(self.start_ns)) as f64 * self.time_scale) as i64;
        let t0 = std::time::Instant::now();
        let links: Vec<(u32, u32)> = down.iter().copied().collect();
        let new = match (r.replan)(&down, t, Some(1)) {
            Ok(new) => new,
            Err(e) => {
                (self.emit)(Event::RepairFailed {
                    links,
                    error: e.to_string(),
                });
                return;
            }
        };
        (self.emit)(Event::LinksDown {
            links: links.clone(),
            schedule_t_ns: t,
            recompute_ms: t0.elapsed().as_secs_f64() * 1e3,
        });
        self.push_repaired(&new, now);
        self.failed_links = down.clone();
        let t1 = std::time::Instant::now();
        match (r.replan)(&down, t, None) {
            Ok(rest) => {
                for (i, (node, _, _)) in self.plans.iter().enumerate() {
                    if let Some((_, _, p)) = rest.iter().find(|n| n.0 == *node) {
                        self.st[i].plan = p.clone();
                        // Its first instant is the one just pushed.
                        self.st[i].next = 1;
                    }
                }
                (self.emit)(Event::RestRecomputed {
                    links,
                    recompute_ms: t1.elapsed().as_secs_f64() * 1e3,
                });
            }
            Err(e) => (self.emit)(Event::RestNotRecomputed {
                links,
                error: e.to_string(),
            }),
        }
    }

    /// Pushes each node's first repaired FIB for activation `now` (an
    /// unscheduled update) and clears its plan until the rest is computed.
    fn push_repaired(&mut self, new: &[NodePlan], now: u64) {
        for (i, (node, socket, _)) in self.plans.iter().enumerate() {
            let Some((_, f)) = new.iter().find(|n| n.0 == *node).and_then(|n| n.2.first()) else {
                continue;
            };
            let s = &mut self.st[i];
            let mut fib = f.clone();
            fib.version = s.version + 1;
            let req = Request::StageFib {
                fib,
                at_ns: now,
                allow_empty: false,
            };
            match (self.call)(socket, req) {
                Ok(Response::Ok { .. }) => {
                    s.version += 1;
                    s.verify.push_back((now, s.version));
                    self.reports[i].repairs += 1;
                    (self.emit)(Event::RepairPushed {
                        node: *node,
                        version: s.version,
                    });
                }
                other => {
                    self.reports[i].failed += 1;
                    (self.emit)(Event::RepairNotTaken {
                        node: *node,
                        answer: format!("{other:?}"),
                    });
                }
            }
            // Until the rest is computed: nothing more to stage.
            s.plan.clear();
            s.next = 0;
        }
    }

    /// Reads back node `i`'s versions whose time has passed.
    fn verify(&mut self, i: usize, now: u64, pass: &mut Pass) {
        let (node, socket, _) = &self.plans[i];
        while let Some(&(due, v)) = self.st[i].verify.front() {
            if now < due {
                pass.pending = true;
                pass.wake = pass.wake.min(due);
                break;
            }
            self.st[i].verify.pop_front();
            let answer = (self.call)(socket, Request::Version);
            tally_readback(
                *node,
                v,
                answer,
                |active| active >= v,
                &mut self.reports[i],
                &mut self.unreachable,
                &mut *self.emit,
            );
        }
    }

    /// Stages node `i`'s next FIB as soon as the one before it is in force
    /// (one snapshot ahead); a repaired plan's first FIB is in force
    /// already: it goes now. An unreachable node is retried with backoff.
    fn stage(&mut self, i: usize, now: u64, pass: &mut Pass) {
        let k = self.st[i].next;
        if k >= self.st[i].plan.len() {
            return;
        }
        pass.pending = true;
        let s = &self.st[i];
        let prev_due = if k == 0 {
            0
        } else {
            self.wall(s.plan[k - 1].0)
        };
        if now < prev_due.max(s.retry_at) {
            pass.wake = pass.wake.min(prev_due.max(s.retry_at));
            return;
        }
        let (t, fib) = &s.plan[k];
        let at_ns = self.wall(*t).max(if k == 0 { 0 } else { now });
        let mut fib = fib.clone();
        fib.version = s.version + 1;
        let (node, socket, _) = &self.plans[i];
        let req = Request::StageFib {
            fib,
            at_ns,
            allow_empty: false,
        };
        let answer = (self.call)(socket, req);
        self.unreachable.answered(*node, &answer, &mut *self.emit);
        let (s, report) = (&mut self.st[i], &mut self.reports[i]);
        match answer {
            Ok(Response::Ok { .. }) => {
                report.staged += 1;
                s.version += 1;
                s.verify.push_back((at_ns.max(now), s.version));
                s.backoff_ns = 0;
            }
            Ok(Response::Error { message }) => {
                report.failed += 1;
                (self.emit)(Event::Refused {
                    node: *node,
                    version: s.version + 1,
                    message,
                });
            }
            Ok(r) => {
                report.failed += 1;
                (self.emit)(Event::Unexpected {
                    node: *node,
                    answer: format!("{r:?}"),
                });
            }
            Err(e) => {
                report.failed += 1;
                s.backoff_ns = (s.backoff_ns * 2).clamp(200_000_000, 5_000_000_000);
                s.retry_at = now + s.backoff_ns;
                self.unreachable.failed(*node, &e);
                pass.wake = pass.wake.min(s.retry_at);
                return;
            }
        }
        s.next += 1;
        pass.wake = pass.wake.min(at_ns);
    }
}

/// Recomputes every wired node's plan from schedule time `t_ns` to the end
/// of the scenario's window (or for `steps` steps) with `failed` links out
/// of service. The first instant of each plan is the step in force at `t_ns`.
pub fn replan(
    scenario: &Scenario,
    failed: &BTreeSet<(u32, u32)>,
    t_ns: i64,
    steps: Option<usize>,
    wiring: &Wiring,
) -> Result<Vec<NodePlan>, ScenarioError> {
    let model = scenario.build(failed)?;
    let w = model.window;
    // The step in force at t (steps are start + k * step).
    let k = (t_ns.max(w.start_ns) - w.start_ns) / w.step_ns;
    let from = w.start_ns + k * w.step_ns;
    if from >= w.end_ns {
        return Ok(Vec::new());
    }
    let end = match steps {
        Some(n) => w
            .end_ns
            .min(from.saturating_add(w.step_ns.saturating_mul(n as i64))),
        None => w.end_ns,
    };
    let window = Window::new(from, end, w.step_ns)?;
    let net = &model.net;
    let mut b = model.schedule_builder(scenario.srgb_base)?;
    crate::predict::simulate(
        net,
        window,
        0,
        |step| {
            b.push(step);
            Ok(())
        },
        |_, _| {},
    )?;
    Ok(wiring
        .nodes()
        .into_iter()
        .filter_map(|(id, nw)| {
            let sched = b.schedules().iter().find(|s| s.node == id)?;
            Some((id, nw.endpoint(), plan(sched, nw).0))
        })
        .collect())
}

/// Builds `scenario` once (as [`replan`] will when a link fails) and checks
/// that it is the one the `schedules` were predicted from: same SRGB base
/// and step, and every scheduled node in its network. A scenario that
/// cannot be built or does not match is refused at start, not at the first
/// link failure.
pub fn check_scenario(
    scenario: &Scenario,
    schedules: &[NodeSchedule],
) -> Result<(), ScenarioError> {
    let model = scenario.build(&BTreeSet::new())?;
    let nodes = model.net.n_sats() + model.net.stations.len();
    for s in schedules {
        let differs = |what, schedule: i64, scenario: i64| {
            Err(ScenarioError::Differs {
                node: s.node,
                what,
                schedule,
                scenario,
            })
        };
        if s.srgb_base != scenario.srgb_base {
            return differs("srgb_base", s.srgb_base.into(), scenario.srgb_base.into());
        }
        if s.step_ns != model.window.step_ns {
            return differs("step_ns", s.step_ns, model.window.step_ns);
        }
        if s.node as usize >= nodes {
            return Err(ScenarioError::NotInNetwork {
                node: s.node,
                nodes,
            });
        }
    }
    Ok(())
}

/// A scenario that cannot be built, or is not the one the schedules were
/// predicted from.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Building or simulating the scenario failed.
    #[error(transparent)]
    Predict(#[from] crate::predict::Error),
    /// A schedule's `what` (srgb_base, step_ns) is not the scenario's.
    #[error("node {node}'s schedule has {what} {schedule} but the scenario has {scenario}")]
    Differs {
        node: u32,
        what: &'static str,
        schedule: i64,
        scenario: i64,
    },
    #[error("node {node} is not in the scenario's network of {nodes} nodes")]
    NotInNetwork { node: u32, nodes: usize },
}

/// A schedule directory or file that cannot be used; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: no node-<id>.json schedules", dir.display())]
    Empty { dir: PathBuf },
    #[error("{}: {error}", path.display())]
    Json {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// The schedule does not hold (NodeSchedule::check's reason).
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// `node-<id>.json` holds another node's schedule.
    #[error("{}: node {node} is not the node its name says", path.display())]
    WrongNode { path: PathBuf, node: u32 },
}

/// Reads every node-<id>.json in `dir`.
pub fn read_schedules(dir: &Path) -> Result<Vec<NodeSchedule>, ScheduleError> {
    let io = |error| ScheduleError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("node-") && name.ends_with(".json") {
            out.push(read_schedule(&p, name)?);
        }
    }
    out.sort_by_key(|s| s.node);
    if out.is_empty() {
        return Err(ScheduleError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(out)
}

/// Reads and checks one schedule file `node-<id>.json` (NodeSchedule::check);
/// its `node` must be the id in its name, so no two files claim one node.
fn read_schedule(p: &Path, name: &str) -> Result<NodeSchedule, ScheduleError> {
    let path = || p.to_path_buf();
    let text = std::fs::read_to_string(p).map_err(|error| ScheduleError::Io {
        path: path(),
        error,
    })?;
    let s: NodeSchedule = serde_json::from_str(&text).map_err(|error| ScheduleError::Json {
        path: path(),
        error,
    })?;
    s.check().map_err(|reason| ScheduleError::Invalid {
        path: path(),
        reason,
    })?;
    if name != format!("node-{}.json", s.node) {
        return Err(ScheduleError::WrongNode {
            path: path(),
            node: s.node,
        });
    }
    Ok(s)
}

/// The schedule and wiring the distributor's tests share (also the
/// end-to-end tests', which drive in-process dataplanes: feature
/// `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use super::*;
    use crate::predict::schedule::{FibDelta, FibTable, FORMAT};

    pub fn entry(next_hop: Option<u32>, backup: Option<u32>) -> FibEntry {
        FibEntry {
            destination: 5,
            label: 16005,
            next_hop,
            backup,
            prefix: None,
        }
    }

    pub fn schedule() -> NodeSchedule {
        NodeSchedule {
            format: FORMAT.into(),
            node: 0,
            node_label: 16000,
            kind: "satellite".into(),
            srgb_base: 16000,
            local_prefix: None,
            epoch_utc: "2000-01-01T00:00:00Z".into(),
            step_ns: 100_000_000,
            initial: FibTable {
                activate_at_ns: 0,
                entries: vec![entry(Some(1), Some(2))],
            },
            deltas: vec![
                FibDelta {
                    activate_at_ns: 100_000_000,
                    changes: vec![entry(Some(2), None)],
                },
                FibDelta {
                    activate_at_ns: 200_000_000,
                    changes: vec![entry(None, None)],
                },
            ],
        }
    }

    pub fn wiring(socket: PathBuf) -> NodeWiring {
        let link = |n: u32, port: &str| Link {
            neighbor: n,
            port: port.into(),
            dst_mac: format!("02:00:00:00:00:0{n}"),
            src_mac: "02:00:00:00:00:10".into(),
        };
        NodeWiring::at_socket(socket, vec![link(1, "isl0"), link(2, "isl1")], None)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_neighbours_backup_is_the_first_wired_alternate_other_than_itself() {
        let table = |entries: &[(u32, Option<u32>, Option<u32>)]| -> Vec<FibEntry> {
            entries
                .iter()
                .map(|&(label, next_hop, backup)| FibEntry {
                    label,
                    ..entry(next_hop, backup)
                })
                .collect()
        };
        let w = wiring("s".into());
        let backup = |t: &[FibEntry]| -> Vec<Option<String>> {
            let (spec, _) = fib_for(&schedule(), t, &w, 1);
            let name = |b| spec.next_hop_name(b).map(String::from);
            spec.next_hops
                .iter()
                .map(|n| n.backup.and_then(name))
                .collect()
        };
        // Itself, then unwired (9), then 2: n1's backup is n2.
        let t = table(&[
            (16001, Some(1), Some(1)),
            (16002, Some(1), Some(9)),
            (16003, Some(1), Some(2)),
            (16004, Some(1), None),
        ]);
        assert_eq!(backup(&t), [Some("n2".into()), None]);
        // The first alternate wins; an unwired next hop is counted, not used.
        let t = table(&[
            (16001, Some(2), Some(1)),
            (16002, Some(9), Some(1)),
            (16003, Some(2), None),
        ]);
        assert_eq!(backup(&t), [None, Some("n1".into())]);
        let (spec, unwired) = fib_for(&schedule(), &t, &w, 1);
        assert_eq!(unwired, 1);
        let to: Vec<_> = spec
            .labels
            .iter()
            .map(|l| {
                l.next_hop
                    .and_then(|n| spec.next_hop_name(n))
                    .map(String::from)
            })
            .collect();
        assert_eq!(to, [None, Some("n2".into()), Some("n2".into())]);
    }

    #[test]
    fn the_documented_wiring_parses() {
        let example = orbitmesh_core::file::doc_toml_example(include_str!("distribute.rs"));
        let w = Wiring::parse(&example).unwrap();
        let nodes = w.nodes();
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].0, nodes[0].1.links[0].neighbor), (17, 18));
        assert_eq!(
            nodes[1].1.endpoint(),
            Endpoint::Tcp("10.99.0.18:7470".into())
        );
        let e = Wiring::parse("[nodes.x]\nsocket = \"s\"").unwrap_err();
        assert!(
            matches!(&e, WiringError::NotANodeId { key } if key == "x"),
            "{e}"
        );
        assert!(e.to_string().contains("not a node id"), "{e}");
    }

    #[test]
    fn nonsense_in_a_schedule_is_refused_naming_the_field() {
        assert_eq!(schedule().check(), Ok(()));
        let refused = |f: &dyn Fn(&mut NodeSchedule), want: &str| {
            let mut s = schedule();
            f(&mut s);
            let e = s.check().unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        };
        refused(&|s| s.format = "x".into(), "format");
        refused(&|s| s.kind = "martian".into(), "kind");
        refused(&|s| s.step_ns = 0, "step_ns 0");
        refused(&|s| s.node_label = u32::MAX, "node_label");
        refused(&|s| s.srgb_base = u32::MAX, "node_label");
        let over = |s: &mut NodeSchedule| {
            s.srgb_base = 1 << 20;
            s.node_label = 1 << 20;
        };
        refused(&over, "node_label 1048576 is not an ordinary MPLS label");
        let reserved = |s: &mut NodeSchedule| {
            s.srgb_base = 0;
            s.node_label = 0;
        };
        refused(&reserved, "node_label 0 is not an ordinary MPLS label");
        fn e0(s: &mut NodeSchedule) -> &mut FibEntry {
            &mut s.initial.entries[0]
        }
        refused(&|s| e0(s).label = 3, "initial.entries[0]: label 3");
        refused(&|s| e0(s).destination = 0, "node itself");
        refused(
            &|s| e0(s).next_hop = Some(0),
            "next_hop 0 is the node itself",
        );
        refused(&|s| e0(s).backup = Some(0), "backup 0");
        refused(
            &|s| s.initial.entries.push(s.initial.entries[0]),
            "destination 5 is listed twice",
        );
        refused(&|s| s.deltas.swap(0, 1), "deltas[1]: activate_at_ns");
        refused(
            &|s| {
                let c = s.deltas[0].changes[0];
                s.deltas[0].changes.push(c);
            },
            "deltas[0].changes[1]: destination 5 changes twice",
        );
        refused(&|s| s.deltas[0].activate_at_ns = 0, "deltas[0]");
        refused(
            &|s| {
                s.deltas[1].changes[0].destination = 9;
                s.deltas[1].changes[0].label = 16009;
            },
            "deltas[1].changes[0]: destination 9 is not in the initial table",
        );
        refused(
            &|s| s.deltas[0].changes[0].label = u32::MAX,
            "deltas[0].changes[0]: label",
        );
    }

    #[test]
    fn a_scenario_that_cannot_be_built_or_does_not_match_is_refused_at_start() {
        let gs = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/ground_stations/cities_top100.basic.txt"
        );
        let json = |walker: &str, step: &str, srgb: u32| {
            format!(
                r#"{{"walker": ["{walker}"], "ground_stations": "{gs}", "gs_count": 3,
                "start": "0s", "duration": "1s", "step": "{step}", "max_gsl_m": null,
                "min_elevation_deg": null, "max_terminals": 4, "min_los_altitude_km": 80.0,
                "srgb_base": {srgb}, "gs_prefix_base": "10.128.0.0/9", "gs_prefix_len": 24,
                "tle": null, "grid": null}}"#
            )
        };
        let scen = |w: &str, step: &str, srgb: u32| -> Scenario {
            serde_json::from_str(&json(w, step, srgb)).unwrap()
        };
        // schedule(): node 0, srgb_base 16000, step 100 ms.
        let ok = scen("4:4:53:550", "100ms", 16000);
        assert!(check_scenario(&ok, &[schedule()]).is_ok());
        let e = check_scenario(&scen("4:4:53:550", "1s", 16000), &[schedule()]).unwrap_err();
        assert!(
            matches!(
                e,
                ScenarioError::Differs {
                    node: 0,
                    what: "step_ns",
                    schedule: 100_000_000,
                    scenario: 1_000_000_000
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("step_ns 100000000"), "{e}");
        let e = check_scenario(&scen("4:4:53:550", "100ms", 17000), &[schedule()]).unwrap_err();
        assert!(
            matches!(
                e,
                ScenarioError::Differs {
                    what: "srgb_base",
                    schedule: 16000,
                    scenario: 17000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("srgb_base 16000"), "{e}");
        let e = check_scenario(&scen("4:4:53:550", "0s", 16000), &[schedule()]).unwrap_err();
        assert!(
            matches!(
                e,
                ScenarioError::Predict(crate::predict::Error::Scenario(_))
            ),
            "{e}"
        );
        assert!(e.to_string().contains("step"), "{e}");
        let e = check_scenario(&scen("1000:1000:53:550", "100ms", 16000), &[schedule()]);
        let e = e.unwrap_err();
        assert!(matches!(e, ScenarioError::Predict(_)), "{e}");
        assert!(e.to_string().contains("99,999"), "{e}");
        let far = NodeSchedule {
            node: 40,
            node_label: 16040,
            ..schedule()
        };
        let e = check_scenario(&ok, &[far]).unwrap_err();
        assert!(
            matches!(
                e,
                ScenarioError::NotInNetwork {
                    node: 40,
                    nodes: 19
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("node 40 is not") && e.to_string().contains("19 nodes"),
            "{e}"
        );
        let unknown = json("4:4:53:550", "100ms", 16000).replacen('{', r#"{"bogus": 1, "#, 1);
        assert!(serde_json::from_str::<Scenario>(&unknown).is_err());
    }

    #[test]
    fn a_schedule_file_must_hold_the_node_its_name_says() {
        let dir = std::env::temp_dir().join(format!("om-sched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = serde_json::to_string(&schedule()).unwrap();
        std::fs::write(dir.join("node-0.json"), &text).unwrap();
        assert_eq!(read_schedules(&dir).unwrap(), vec![schedule()]);
        std::fs::write(dir.join("node-7.json"), &text).unwrap();
        let e = read_schedules(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(&e, ScheduleError::WrongNode { path, node: 0 } if path.ends_with("node-7.json")),
            "{e}"
        );
        assert!(e.to_string().contains("node-7.json: node 0 is not"), "{e}");
        let e = read_schedules(&dir).unwrap_err();
        assert!(matches!(e, ScheduleError::Io { .. }), "{e}");
    }

    #[test]
    fn a_wiring_that_cannot_work_is_refused_naming_the_node_and_field() {
        let link = |nb: u32, port: &str, mac: &str| {
            format!(
                "{{ neighbor = {nb}, port = \"{port}\", dst_mac = \"{mac}\", src_mac = \"02:00:00:00:00:10\" }}"
            )
        };
        let node = |key: &str, socket: &str, links: &[String]| {
            format!(
                "[nodes.{key}]\nsocket = \"{socket}\"\nlinks = [{}]\n",
                links.join(", ")
            )
        };
        let good = link(1, "isl0", "02:00:00:00:00:01");
        assert!(Wiring::parse(&node("16", "s", std::slice::from_ref(&good))).is_ok());
        use NodeWiringError as N;
        let key = |k: &str| WiringError::NotANodeId { key: k.into() };
        let in16 = |error| WiringError::Node {
            key: "16".into(),
            error,
        };
        let bad_mac = |field, mac: &str| PortError::BadMac {
            field,
            mac: mac.into(),
        };
        let cases = [
            (node("016", "s", &[]), key("016"), "\"016\" is not a node id"),
            (node("\"+16\"", "s", &[]), key("+16"), "\"+16\" is not a node id"),
            (node("16", "", &[]), in16(N::EmptySocket), "[nodes.16]: socket is empty"),
            (
                node("16", "s", &[link(16, "isl0", "02:00:00:00:00:01")]),
                in16(N::LinkToItself { index: 0, node: 16 }),
                "links[0]: neighbor 16 is the node itself",
            ),
            (
                node("16", "s", &[good.clone(), link(1, "isl1", "02:00:00:00:00:02")]),
                in16(N::LinkedTwice { index: 1, neighbor: 1 }),
                "links[1]: neighbor 1 is linked twice",
            ),
            (
                node("16", "s", &[link(1, "", "02:00:00:00:00:01")]),
                in16(N::Link { index: 0, error: PortError::EmptyPort }),
                "links[0]: port is empty",
            ),
            (
                node("16", "s", &[link(1, "isl0", "zz")]),
                in16(N::Link { index: 0, error: bad_mac("dst_mac", "zz") }),
                "links[0]: dst_mac \"zz\"",
            ),
            (
                node("16", "s", &[]) + "local = { port = \"lan0\", dst_mac = \"02:00:00:00:00:01\", src_mac = \"x\" }\n",
                in16(N::Local(bad_mac("src_mac", "x"))),
                "[nodes.16]: local: src_mac \"x\"",
            ),
            (
                "[nodes.16]\nlinks = []\n".to_string(),
                in16(N::NoEndpoint),
                "[nodes.16]: neither socket nor remote",
            ),
            (
                node("16", "s", &[]) + "remote = \"10.99.0.16:7470\"\n",
                in16(N::TwoEndpoints),
                "[nodes.16]: both socket and remote",
            ),
            (
                "[nodes.16]\nremote = \"10.99.0.16\"\n".to_string(),
                in16(N::BadRemote("10.99.0.16".into())),
                "[nodes.16]: remote \"10.99.0.16\": expected HOST:PORT",
            ),
        ];
        for (text, kind, want) in cases {
            let e = Wiring::parse(&text).unwrap_err();
            let same = match (&e, &kind) {
                (WiringError::NotANodeId { key: a }, WiringError::NotANodeId { key: b }) => a == b,
                (
                    WiringError::Node { key: a, error: x },
                    WiringError::Node { key: b, error: y },
                ) => a == b && x == y,
                _ => false,
            };
            assert!(same, "{text}: {e:?}, want {kind:?}");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let e = Wiring::parse("nodes = 3").unwrap_err();
        assert!(matches!(e, WiringError::Toml(_)), "{e}");
    }

    #[test]
    fn a_node_is_reached_at_its_socket_or_its_remote_channel() {
        let w = Wiring::parse(
            "[nodes.1]\nsocket = \"/run/n1.sock\"\n[nodes.2]\nremote = \"10.99.0.2:7470\"\n",
        )
        .unwrap();
        let at: Vec<_> = w
            .nodes()
            .iter()
            .map(|(id, n)| (*id, n.endpoint()))
            .collect();
        assert_eq!(
            at,
            [
                (1, Endpoint::Socket("/run/n1.sock".into())),
                (2, Endpoint::Tcp("10.99.0.2:7470".into())),
            ]
        );
        // Written back as read: one of the two, no empty field.
        let text = toml::to_string(&w).unwrap();
        assert!(
            !text.contains("remote = \"\"") && text.contains("remote = \"10.99.0.2:7470\""),
            "{text}"
        );
        assert_eq!(Wiring::parse(&text).unwrap(), w);
    }

    #[test]
    fn wall_times_past_the_end_of_time_saturate() {
        assert_eq!(wall_ns(1_000, 2_000, 2.0), 2_000);
        assert_eq!(wall_ns(1_000, -5, 1.0), 1_000);
        assert_eq!(wall_ns(u64::MAX, 1_000_000_000, 1.0), u64::MAX);
        assert_eq!(wall_ns(1_000, 1_000_000_000, 1e-300), u64::MAX);
    }

    #[test]
    fn unreachable_dataplanes_are_summarised_not_listed_per_attempt() {
        let mut u = Unreachable::default();
        let err = "cannot connect to /run/orbitmesh/n0.sock: Connection refused";
        let mut lines = Vec::new();
        // 40 dataplanes down for 20 s, each retried every 200 ms.
        for round in 0..100u64 {
            let now = round * 200_000_000;
            for node in 0..40 {
                u.failed(node, err);
            }
            lines.extend(u.summary(now).and_then(|e| e.line()));
        }
        assert_eq!(lines.len(), 4, "at 0, 5, 10 and 15 s: {lines:?}");
        assert_eq!(
            lines[0],
            format!("40 dataplanes unreachable (nodes 0, 1, 2, 3, 4, 5, 6, 7, and 32 more); node 0: {err}; retrying")
        );
        // Back: one line per node, once; a node lost again is told at once.
        assert_eq!(
            u.reached(3).and_then(|e| e.line()).as_deref(),
            Some("node 3: reachable again")
        );
        assert_eq!(u.reached(3), None);
        assert_eq!(
            u.summary(19_900_000_000),
            None,
            "the set shrank: nothing new"
        );
        u.failed(3, err);
        assert!(u
            .summary(19_950_000_000)
            .and_then(|e| e.line())
            .unwrap()
            .starts_with("40 dataplanes"));
        for node in 0..40 {
            u.reached(node);
        }
        assert_eq!(u.summary(40_000_000_000), None, "all back: nothing to say");
    }

    /// A small random generator (xorshift64*), so the check is repeatable.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u32 {
            (self.next() % n) as u32
        }
    }

    /// A random node: its schedule (satellite or ground station), wiring
    /// (0-5 links, ports sometimes shared) and one table.
    fn random_node(rng: &mut Rng) -> (NodeSchedule, NodeWiring, Vec<FibEntry>) {
        let node = rng.below(40);
        let mac =
            |rng: &mut Rng| format!("02:00:00:00:{:02x}:{:02x}", rng.below(256), rng.below(256));
        let mut neighbours: Vec<u32> = (0..rng.below(6)).map(|_| rng.below(40)).collect();
        neighbours.retain(|&n| n != node);
        neighbours.sort_unstable();
        neighbours.dedup();
        let links = neighbours
            .iter()
            .map(|&n| Link {
                neighbor: n,
                port: format!("isl{}", rng.below(4)),
                dst_mac: mac(rng),
                src_mac: mac(rng),
            })
            .collect();
        let gs = rng.below(2) == 0;
        let local = (gs && rng.below(4) != 0).then(|| LocalPort {
            port: if rng.below(3) == 0 {
                "isl0".into()
            } else {
                "gsl".into()
            },
            dst_mac: mac(rng),
            src_mac: mac(rng),
        });
        let wiring = NodeWiring::at_socket("s".into(), links, local);
        let pick = |rng: &mut Rng| match rng.below(5) {
            0 => None,
            1 => Some(rng.below(40)),
            _ if neighbours.is_empty() => None,
            _ => Some(neighbours[rng.below(neighbours.len() as u64) as usize]),
        };
        let prefix = |d: u32| crate::predict::schedule::Ipv4Prefix {
            addr: std::net::Ipv4Addr::new(10, d as u8, 0, 0),
            len: 16,
        };
        let mut table = Vec::new();
        for d in (0..40).filter(|&d| d != node) {
            if rng.below(4) == 0 {
                continue;
            }
            table.push(FibEntry {
                destination: d,
                label: 16000 + d,
                next_hop: pick(rng),
                backup: pick(rng),
                prefix: (gs && rng.below(2) == 0).then(|| prefix(d)),
            });
        }
        let mut sched = schedule();
        sched.node = node;
        sched.node_label = 16000 + node;
        sched.local_prefix = gs.then(|| prefix(node));
        (sched, wiring, table)
    }

    /// The FIB file `fib_for` made before next hops had ids (references
    /// by name), written out by the rules it followed.
    fn by_name(sched: &NodeSchedule, table: &[FibEntry], w: &NodeWiring) -> String {
        let mut ports = Vec::new();
        // (name, port, dst_mac, src_mac, push, backup)
        type Hop = (String, String, String, String, Vec<u32>, Option<String>);
        let mut hops: Vec<Hop> = Vec::new();
        let mut port = |p: &str| {
            if !ports.contains(&p.to_string()) {
                ports.push(p.to_string());
            }
        };
        for l in &w.links {
            port(&l.port);
            let name = format!("n{}", l.neighbor);
            hops.push((
                name,
                l.port.clone(),
                l.dst_mac.clone(),
                l.src_mac.clone(),
                vec![],
                None,
            ));
        }
        let at = |n: u32| w.links.iter().position(|l| l.neighbor == n);
        let mut labels = format!(
            "[[labels]]\nlabel = {}\naction = \"pop\"\n",
            sched.node_label
        );
        let mut routes = String::new();
        for e in table {
            let Some(h) = e.next_hop else { continue };
            let Some(i) = at(h) else { continue };
            let backup = e.backup.and_then(at).filter(|&b| b != i);
            if let (None, Some(b)) = (&hops[i].5, backup) {
                hops[i].5 = Some(hops[b].0.clone());
            }
            labels += &format!(
                "[[labels]]\nlabel = {}\naction = \"swap\"\nnext_hop = \"{}\"\n",
                e.label, hops[i].0
            );
            if let (true, Some(p)) = (sched.local_prefix.is_some(), e.prefix) {
                let l = &w.links[i];
                let name = format!("n{h}-push{}", e.label);
                hops.push((
                    name.clone(),
                    l.port.clone(),
                    l.dst_mac.clone(),
                    l.src_mac.clone(),
                    vec![e.label],
                    None,
                ));
                routes += &format!("[[routes]]\nprefix = \"{p}\"\nnext_hop = \"{name}\"\n");
            }
        }
        if let (Some(p), Some(local)) = (sched.local_prefix, &w.local) {
            port(&local.port);
            hops.push((
                "local".into(),
                local.port.clone(),
                local.dst_mac.clone(),
                local.src_mac.clone(),
                vec![],
                None,
            ));
            routes += &format!("[[routes]]\nprefix = \"{p}\"\nnext_hop = \"local\"\n");
        }
        let mut t = format!("version = 1\nhash_seed = {}\n", sched.node);
        for p in &ports {
            t += &format!("[[ports]]\nname = \"{p}\"\nmtu = 1500\n");
        }
        for (name, port, dst, src, push, backup) in &hops {
            t += &format!("[[next_hops]]\nname = \"{name}\"\nport = \"{port}\"\ndst_mac = \"{dst}\"\nsrc_mac = \"{src}\"\npush = {push:?}\n");
            if let Some(b) = backup {
                t += &format!("backup = \"{b}\"\n");
            }
        }
        t + &labels + &routes
    }

    /// What a built FIB does with each label and prefix: the next hops'
    /// ports, MACs, tags and pushes (and their backups'), not their ids.
    fn forwarding(f: &orbitmesh_core::fib::FibSnapshot) -> Vec<String> {
        use orbitmesh_core::fib::{IlmAction, NhId, NhgId};
        let hop = |id: NhId| {
            let n = f.next_hop(id).expect("a member");
            let b = n.backup.map(|b| f.next_hop(b).expect("a backup"));
            let key = |n: &orbitmesh_core::fib::NextHop| {
                (n.port, n.dst_mac, n.src_mac, n.vlan, n.push.clone())
            };
            format!("{:?} backup {:?}", key(&n), b.as_ref().map(key))
        };
        let group = |g: NhgId| {
            f.group(g)
                .expect("a group")
                .into_iter()
                .map(hop)
                .collect::<Vec<_>>()
        };
        let mut out: Vec<String> = f
            .ilm_entries()
            .map(|(l, a)| match a {
                IlmAction::Pop => format!("{l} pop"),
                IlmAction::Swap { out_label, nhg } => {
                    format!("{l} swap {out_label} {:?}", group(nhg))
                }
            })
            .collect();
        out.extend(
            f.routes_v4()
                .map(|(p, l, g)| format!("{p}/{l} {:?}", group(g))),
        );
        out.extend(f.ports().map(|(p, mtu)| format!("port {p} mtu {mtu}")));
        out.push(format!("version {}", f.version()));
        out
    }

    #[test]
    fn fibs_with_next_hop_ids_forward_as_the_fibs_by_name_did() {
        // 3000 random nodes and tables: the FIB fib_for makes (next hops
        // by id) builds to the same forwarding as the FIB it made before
        // (next hops by name), and is the same file apart from the ids.
        let mut rng = Rng(0x0005_eed0_f1d5);
        let (mut gs, mut backups, mut pushes) = (0, 0, 0);
        for case in 0..3000 {
            let (sched, w, table) = random_node(&mut rng);
            w.check(sched.node).unwrap();
            let (spec, _) = fib_for(&sched, &table, &w, 1);
            let old = FibSpec::parse(&by_name(&sched, &table, &w)).unwrap();
            let (f, g) = (spec.build().unwrap(), old.build().unwrap());
            assert_eq!(forwarding(&f), forwarding(&g), "case {case}");
            let (mut a, b) = (spec.written(), old.written());
            a.next_hops.iter_mut().for_each(|n| n.id = None);
            assert_eq!(a, b, "case {case}");
            // Ids: the neighbour's node id + 1, stable whatever the table.
            for (n, l) in spec.next_hops.iter().zip(&w.links) {
                assert_eq!(n.id, neighbour_hop(l.neighbor), "case {case}");
            }
            gs += usize::from(sched.local_prefix.is_some());
            backups += spec.next_hops.iter().filter(|n| n.backup.is_some()).count();
            pushes += spec.next_hops.iter().filter(|n| !n.push.is_empty()).count();
        }
        // The cases exercised what they are meant to.
        assert!(
            gs > 1000 && backups > 1000 && pushes > 1000,
            "{gs} {backups} {pushes}"
        );
    }
}
