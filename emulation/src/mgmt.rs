//! How the control process reaches the nodes, and with what authority
//! (signed orders, issue "Signed orders and a remote control channel").
//!
//! By default an emulation runs as a real network would be run: the
//! emulator makes a controller key (`OUT/keys/ctl.key`, Ed25519,
//! `orbitmesh_core::sign`), every dataplane's configuration
//! (`OUT/conf/n<id>.toml`) trusts only its public key and opens the remote
//! control channel (`remote_listen`, TCP, signed orders only) on the node's
//! management address, and `orbitmesh-ctl run --key` signs every window it
//! sends there. With `--unsigned` the nodes trust no key and the control
//! process reaches them through their unix sockets from the first node's
//! namespace, as before: the comparison.
//!
//! ## The management network: out of band, argued
//!
//! The control process runs in a namespace of its own, `PREFIX-mgmt`, with
//! a Linux bridge (`br0`, 10.99.255.254/16) and one veth to each node's
//! namespace (`mgmt` there, 10.99.0.0/16 + node id + 1), like a ground
//! controller's out-of-band network (a TT&C or ground-segment link to every
//! spacecraft) rather than in band through the mesh itself (a label to the
//! node's own address). Why:
//!
//! - it keeps what is measured what it was: the controller's orders do not
//!   share the mesh with the test traffic, so delivery, activations and
//!   repair times stay comparable with the runs before signing; the cost of
//!   signing itself is measured apart (bench/results/signed-orders.md);
//! - repair has to reach nodes whose path through the mesh is the one that
//!   just broke; in band, a repair order would wait for the very routes it
//!   carries (and a node cut off by the failure could not be told at all).
//!   Real constellations keep a command link apart from the payload mesh
//!   for the same reason;
//! - in band would need each node to terminate TCP on its own label-switched
//!   address (a punt path to the host stack per node), which this emulation
//!   does not model.
//!
//! The channel's authority does not depend on the network being private:
//! only signed orders change anything on it (`dataplane::ctl::remote`).
//! In band remains possible with the same code (a `remote` address the
//! mesh routes to); nothing here assumes the bridge is trusted.
//!
//! The emulator's own calls (link delays and link-gone from the geometry,
//! version and stats reads) stay on each node's unix socket: they are the
//! emulation's physics and instruments, not orders. A dataplane started
//! with `--delay-line` takes the two emulation-only requests over its
//! uid-checked socket even when it trusts keys; everything else unsigned
//! (FIB loads, stages, port changes) is refused as on any node.
//!
//! At the end, an unsigned order is sent from the management network to
//! the first node ([`probe`]): it must be refused, counted, and leave the
//! node's schedule as it was.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::dataplanes::{ask_schedule, ask_stats, Sockets};
use super::lab::Lab;
use super::{Names, Topology};
use control::distribute::Wiring;

/// The remote channel's TCP port on every node.
pub const PORT: u16 = 7470;
/// The management network: 10.99.0.0/16.
const NET: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 0);
const PREFIX_LEN: u8 = 16;
/// The control process's address (the bridge's).
pub const CONTROLLER: Ipv4Addr = Ipv4Addr::new(10, 99, 255, 254);
/// The bridge in the management namespace.
const BRIDGE: &str = "br0";
/// Each node's interface to the management network.
const NODE_IFACE: &str = "mgmt";

/// Node `n`'s management address.
pub fn addr(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(NET) + n + 1)
}

/// Node `n`'s remote control channel, HOST:PORT.
pub fn remote(n: u32) -> String {
    format!("{}:{PORT}", addr(n))
}

/// The management namespace of the emulation `names`.
pub fn namespace(names: &Names) -> String {
    format!("{}-mgmt", names.prefix)
}

/// How the control process reaches the nodes.
#[derive(Debug, Clone)]
pub enum Channel {
    /// Signed orders over the remote channel, on the management network.
    Remote {
        /// The namespace the control process runs in.
        ns: String,
        /// The controller's secret key (`orbitmesh-ctl run --key`).
        key: PathBuf,
        /// Its public key, hex (what every node trusts).
        public: String,
    },
    /// Unsigned orders over the unix sockets (`--unsigned`), from the
    /// first node's namespace.
    Unsigned { ns: String },
}

impl Channel {
    /// The namespace `orbitmesh-ctl run` runs in.
    pub fn ctl_ns(&self) -> &str {
        match self {
            Channel::Remote { ns, .. } | Channel::Unsigned { ns } => ns,
        }
    }

    /// `orbitmesh-ctl run`'s arguments for it.
    pub fn ctl_args(&self) -> Vec<String> {
        match self {
            Channel::Remote { key, .. } => vec!["--key".into(), key.display().to_string()],
            Channel::Unsigned { .. } => Vec::new(),
        }
    }

    /// In words, for the log and the summary.
    pub fn describe(&self) -> String {
        match self {
            Channel::Remote { .. } => format!(
                "signed orders (Ed25519) over the remote channel (TCP :{PORT}), \
                 management network {NET}/{PREFIX_LEN}"
            ),
            Channel::Unsigned { .. } => {
                "unsigned orders over the unix sockets (--unsigned)".to_string()
            }
        }
    }
}

/// Builds the management network (signed) or picks the first node's
/// namespace (`unsigned`); makes the controller key in `OUT/keys`.
pub fn setup(
    lab: &mut Lab,
    topo: &Topology,
    names: &Names,
    out: &Path,
    unsigned: bool,
) -> Result<Channel> {
    if unsigned {
        return Ok(Channel::Unsigned {
            ns: names.node_ns(0),
        });
    }
    let n = topo.nodes().count() as u32;
    if n + 1 >= u32::from(CONTROLLER) - u32::from(NET) {
        bail!("{n} nodes do not fit the management network {NET}/{PREFIX_LEN}");
    }
    let ns = namespace(names);
    lab.add_namespaces(std::slice::from_ref(&ns))?;
    lab.ip_in(
        &ns,
        &[
            "link set lo up".to_string(),
            format!("link add {BRIDGE} type bridge"),
            format!("addr add {CONTROLLER}/{PREFIX_LEN} dev {BRIDGE}"),
            format!("link set {BRIDGE} up"),
        ],
    )?;
    let veths: Vec<orbitmesh_lab::Veth> = topo
        .nodes()
        .map(|n| {
            orbitmesh_lab::Veth::new(
                orbitmesh_lab::VethEnd::new(names.node_ns(n), NODE_IFACE)
                    .addr(format!("{}/{PREFIX_LEN}", addr(n))),
                orbitmesh_lab::VethEnd::new(&ns, format!("m{n}")),
            )
            .up()
        })
        .collect();
    lab.add_lab_veths(&veths)?;
    let ports: Vec<String> = topo
        .nodes()
        .map(|n| format!("link set m{n} master {BRIDGE}"))
        .collect();
    lab.ip_in(&ns, &ports)?;

    let keys = out.join("keys");
    let _ = std::fs::remove_dir_all(&keys);
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
    let key = keys.join("ctl.key");
    let public = control::fib_ops::keygen(&key)
        .map_err(|e| anyhow::anyhow!("making the controller key: {e}"))?
        .to_string();
    Ok(Channel::Remote { ns, key, public })
}

/// Every node's configuration, `OUT/conf/n<id>.toml` (what `orbitmesh-dp
/// --config` reads; the rest is on its command line): signed, it trusts
/// the controller's key and listens on its management address.
pub fn write_configs(topo: &Topology, channel: &Channel, out: &Path) -> Result<()> {
    let dir = out.join("conf");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for n in topo.nodes() {
        let mut text = format!("name = \"n{n}\"\n");
        if let Channel::Remote { public, .. } = channel {
            text += &format!(
                "remote_listen = \"{}\"\nremote_reads = true\n\n\
                 [[trusted_keys]]\nname = \"emulation-controller\"\nkey = \"{public}\"\n",
                remote(n)
            );
        }
        let p = config_path(out, n);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// Node `n`'s configuration file.
pub fn config_path(out: &Path, n: u32) -> PathBuf {
    out.join(format!("conf/n{n}.toml"))
}

/// Points every node of the wiring at its remote channel (signed), or
/// leaves it at its socket.
pub fn rewire(wiring: &mut Wiring, topo: &Topology, channel: &Channel) {
    if let Channel::Remote { .. } = channel {
        for n in topo.nodes() {
            if let Some(w) = wiring.node_mut(n) {
                w.socket = None;
                w.remote = Some(remote(n));
            }
        }
    }
}

/// An unsigned order sent from the management network, and what came of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The node it was sent to.
    pub node: u32,
    /// `orbitmesh-ctl` was told no (the dataplane's answer).
    pub refused: bool,
    /// The node's `order_unsigned` counter went up by one.
    pub counted: bool,
    /// The node holds the same schedule serial as before.
    pub schedule_kept: bool,
    /// The refusal as `orbitmesh-ctl` printed it.
    pub message: String,
}

/// Sends `orbitmesh-ctl schedule clear --remote` to node 0 from the
/// management namespace, without a key: what an attacker on the
/// management network could send. The node's counter and schedule are
/// read over its unix socket before and after.
pub fn probe(lab: &Lab, channel: &Channel, ctl_bin: &Path, sockets: &Sockets) -> Option<Probe> {
    let Channel::Remote { ns, .. } = channel else {
        return None;
    };
    let node = 0;
    let socket = sockets.of(node);
    let read = || {
        let unsigned = ask_stats(&socket).map(|s| {
            s.counters.get(orbitmesh_core::protocol::Counter::Order(
                orbitmesh_core::sign::Refusal::Unsigned,
            ))
        });
        let serial = ask_schedule(&socket).and_then(|i| i.serial);
        (unsigned, serial)
    };
    let before = read();
    let (bin, to) = (ctl_bin.display().to_string(), remote(node));
    let argv = [bin.as_str(), "schedule", "clear", "--remote", to.as_str()];
    let (refused, message) = match lab.exec(ns, &argv) {
        Ok(()) => (false, "taken".to_string()),
        Err(e) => (true, e.to_string()),
    };
    let after = read();
    Some(Probe {
        node,
        refused: refused && message.contains("unsigned"),
        counted: matches!((before.0, after.0), (Some(b), Some(a)) if a == b + 1),
        schedule_kept: before.1.is_some() && before.1 == after.1,
        message: message
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string(),
    })
}

/// What the summary says about orders: the channel, the dataplanes'
/// refusal counters summed (`order_*`), and the probe.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Orders {
    pub signed: bool,
    pub channel: String,
    /// Every `order_*` counter summed over the dataplanes at the end.
    pub refused: Vec<(String, u64)>,
    /// Orders refused apart from the probe's one (0 when all went well).
    pub refused_apart_from_probe: u64,
    pub probe: Option<Probe>,
}

impl Orders {
    pub fn new(channel: &Channel, refused: Vec<(String, u64)>, probe: Option<Probe>) -> Orders {
        let total: u64 = refused.iter().map(|r| r.1).sum();
        let probe_counted = probe.as_ref().is_some_and(|p| p.counted) as u64;
        Orders {
            signed: matches!(channel, Channel::Remote { .. }),
            channel: channel.describe(),
            refused_apart_from_probe: total.saturating_sub(probe_counted),
            refused,
            probe,
        }
    }

    /// The summary's lines about orders.
    pub fn markdown(&self) -> String {
        let counters = if self.refused.is_empty() {
            "none read".to_string()
        } else {
            self.refused
                .iter()
                .map(|(n, v)| format!("{n} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!(
            "- orders: {}; refused by the dataplanes apart from the probe: {} ({counters})\n",
            self.channel, self.refused_apart_from_probe
        );
        if let Some(p) = &self.probe {
            s += &format!(
                "- probe: an unsigned `schedule clear` from the management network to n{}: {}, {}, {}\n",
                p.node,
                if p.refused { "refused" } else { "NOT REFUSED" },
                if p.counted { "counted (order_unsigned +1)" } else { "NOT COUNTED" },
                if p.schedule_kept { "schedule kept" } else { "SCHEDULE CHANGED" },
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_addresses_are_one_per_node_below_the_controller() {
        assert_eq!(addr(0), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(addr(300), Ipv4Addr::new(10, 99, 1, 45));
        assert_eq!(remote(39), "10.99.0.40:7470");
        assert!(u32::from(addr(65_000)) < u32::from(CONTROLLER));
        let n = Names {
            prefix: "ome".into(),
        };
        assert_eq!(namespace(&n), "ome-mgmt");
    }

    #[test]
    fn the_summary_counts_refusals_apart_from_the_probe() {
        let ch = Channel::Remote {
            ns: "x".into(),
            key: "k".into(),
            public: "p".into(),
        };
        let probe = Probe {
            node: 0,
            refused: true,
            counted: true,
            schedule_kept: true,
            message: "m".into(),
        };
        let o = Orders::new(
            &ch,
            vec![("order_unsigned".into(), 1), ("order_replayed".into(), 0)],
            Some(probe),
        );
        assert_eq!(o.refused_apart_from_probe, 0);
        assert!(o.signed);
        let md = o.markdown();
        assert!(
            md.contains("refused by the dataplanes apart from the probe: 0"),
            "{md}"
        );
        assert!(
            md.contains("refused, counted (order_unsigned +1), schedule kept"),
            "{md}"
        );
        let u = Orders::new(&Channel::Unsigned { ns: "y".into() }, vec![], None);
        assert!(!u.signed && u.markdown().contains("--unsigned"));
    }
}
