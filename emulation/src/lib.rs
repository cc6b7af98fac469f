//! Constellation emulation on one Linux box (`orbitmesh-emu`): every node of
//! a predicted scenario (satellites and ground stations) is a network
//! namespace running `orbitmesh-dp` in sleep-when-idle mode, every link it
//! will ever use is a veth pair, a host namespace behind each ground station
//! sends and receives test traffic, and `orbitmesh-ctl run` swaps every
//! node's FIB at the predicted instants (time-variant routing, RFC 9657),
//! faster than real time with `--time-scale`.
//!
//! - this module: the topology to build (which links, names, addresses);
//! - [`session`]: one run from start to end, calling its seven parts in
//!   order: [`predicted`], [`slice`], [`dataplanes`], [`controller`],
//!   [`agents`], [`live`] and [`summarize`]; [`faults`] plans the faults;
//! - [`lab`]: namespaces, veths and child processes, torn down on drop;
//! - [`mgmt`]: how the control process reaches the nodes: signed orders
//!   over the remote channel on a management network (the default), or
//!   unsigned over the unix sockets (`--unsigned`);
//! - [`traffic`]: the UDP test flows with sequence numbers and timestamps;
//! - [`report`]: the live view's traces and the summary table;
//!   [`timeline`]: the run plotted over time (`timeline.svg`);
//!   [`host`]: the host's load (others' processes) during the run and
//!   where the CPU went.
//!
//! Links: all planned ISLs, and every ground link that any step's routing
//! uses (as next hop or backup). Each carries frames only while the
//! prediction says it exists ([`geometry`]: out of range or below the
//! horizon, every frame sent on it is dropped and counted), so a FIB that
//! switches late loses traffic; a link taken down on purpose (`--fail-isl`)
//! is a fault (carrier lost) that the dataplanes' backups and the control
//! process's recomputation handle.
//! Propagation delay: the kernel here has no netem, so the dataplanes hold
//! frames for it themselves (an emulation-only delay line per port, set
//! over the control socket): every second each link's length at that
//! schedule instant gives its delay, and the measured one-way latency
//! follows the predicted one (`--no-delay` forwards at once).
//! Forwarding: by default every frame goes through the dataplanes' AF_XDP
//! workers (where the delay line is). `--fast-path xdp --no-delay` runs
//! them with the XDP transit fast path instead (issue 16): transit
//! satellites switch labels in the kernel and those frames never reach a
//! worker, so that mode has no delay line: links hold no propagation delay
//! (the latency measured is the host's only, not the orbits'; hence
//! `--no-delay` is required) and do not follow the geometry.
//! CPU per packet hop counts the kernel's packet work wherever it ran
//! (softirq in the senders' context or in ksoftirqd): [`host`].

pub mod agents;
pub mod controller;
pub mod dataplanes;
pub mod faults;
pub mod geometry;
pub mod host;
pub mod in_force;
pub mod lab;
pub mod live;
pub mod mgmt;
pub mod os;
pub mod outages;
pub mod predicted;
pub mod procs;
pub mod report;
pub mod session;
pub mod slice;
pub mod summarize;
pub mod timeline;
pub mod traffic;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use control::predict::schedule::Ipv4Prefix;
use control::predict::{StepResult, NONE};
use orbitmesh_core::wire::ethernet::format_mac;

/// CLOCK_REALTIME in ns (the dataplanes' activation clock).
pub fn now_ns() -> u64 {
    orbitmesh_core::time::now_ns()
}

/// What to build, derived from the prediction.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub n_sats: usize,
    pub n_gs: usize,
    /// Node pairs (smaller id first).
    pub links: BTreeSet<(u32, u32)>,
    /// Ground station g's prefix (its host is .2, the station's LAN side .1).
    pub gs_prefixes: Vec<Ipv4Prefix>,
}

impl Topology {
    pub fn new(
        n_sats: usize,
        n_gs: usize,
        isls: &[(u32, u32)],
        gs_prefixes: Vec<Ipv4Prefix>,
    ) -> Self {
        Topology {
            n_sats,
            n_gs,
            links: isls.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect(),
            gs_prefixes,
        }
    }

    /// Adds every link a step routes over (next hops and backups).
    pub fn add_used_links(&mut self, step: &StepResult) {
        let n = self.n_sats + self.n_gs;
        for (i, (&nh, &bk)) in step.next_hop.iter().zip(&step.backup).enumerate() {
            let node = (i % n) as u32;
            for h in [nh, bk] {
                if h != NONE {
                    self.links.insert((node.min(h), node.max(h)));
                }
            }
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = u32> {
        0..(self.n_sats + self.n_gs) as u32
    }

    pub fn is_gs(&self, node: u32) -> bool {
        node as usize >= self.n_sats
    }

    /// Neighbours of `node`, in id order.
    pub fn neighbors(&self, node: u32) -> Vec<u32> {
        self.links
            .iter()
            .filter_map(|&(a, b)| {
                if a == node {
                    Some(b)
                } else if b == node {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Host address behind ground station `g` (0-based) and its gateway.
    pub fn host_addr(&self, g: usize) -> (Ipv4Addr, Ipv4Addr) {
        let base = u32::from(self.gs_prefixes[g].addr);
        (Ipv4Addr::from(base + 2), Ipv4Addr::from(base + 1))
    }
}

/// Names and addresses, in one place so that every part agrees.
#[derive(Debug, Clone)]
pub struct Names {
    /// Prefix of every namespace (several emulations can run side by side).
    pub prefix: String,
}

impl Names {
    pub fn node_ns(&self, node: u32) -> String {
        format!("{}-n{node}", self.prefix)
    }
    pub fn host_ns(&self, g: usize) -> String {
        format!("{}-h{g}", self.prefix)
    }
    /// The port of `node` towards `neighbor`.
    pub fn port(neighbor: u32) -> String {
        format!("p{neighbor}")
    }
    /// A ground station's port to its host.
    pub const LAN: &'static str = "lan";
    /// The host's port to its ground station.
    pub const HOST: &'static str = "eth0";

    /// MAC of `node`'s port towards `peer` (u16::MAX: its LAN port).
    pub fn mac(node: u32, peer: u32) -> String {
        let ([a0, a1], [b0, b1]) = (
            (node as u16).to_be_bytes(),
            (peer.min(0xffff) as u16).to_be_bytes(),
        );
        format_mac(&[0x02, 0x6e, a0, a1, b0, b1])
    }
    /// MAC of the host behind ground station `g`.
    pub fn host_mac(g: usize) -> String {
        let [g0, g1] = ((g & 0xffff) as u16).to_be_bytes();
        format_mac(&[0x02, 0x6f, 0, 0, g0, g1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_links_come_from_next_hops_and_backups() {
        // 3 satellites + 1 station (node 3); one destination (the station).
        let mut t = Topology::new(3, 1, &[(1, 0)], Vec::new());
        let step = StepResult {
            next_hop: vec![3, 0, 1, NONE],
            backup: vec![NONE, 3, NONE, NONE],
            ..Default::default()
        };
        t.add_used_links(&step);
        let want: BTreeSet<(u32, u32)> = [(0, 1), (0, 3), (1, 2), (1, 3)].into_iter().collect();
        assert_eq!(t.links, want);
        assert_eq!(t.neighbors(1), vec![0, 2, 3]);
        assert!(t.is_gs(3) && !t.is_gs(2));
    }

    #[test]
    fn names_and_macs_are_unique_per_side() {
        assert_eq!(Names::mac(3, 300), "02:6e:00:03:01:2c");
        assert_ne!(Names::mac(3, 4), Names::mac(4, 3));
        assert_eq!(Names::mac(5, u32::MAX), "02:6e:00:05:ff:ff");
        assert_eq!(Names::host_mac(258), "02:6f:00:00:01:02");
        let n = Names {
            prefix: "ome".into(),
        };
        assert_eq!(
            (n.node_ns(7), n.host_ns(1)),
            ("ome-n7".into(), "ome-h1".into())
        );
    }
}
