//! Part 2 of an emulation: the slice in network namespaces. One namespace
//! per node and one per host behind a ground station, a veth pair per link
//! (named after the neighbour, MACs from [`Names::mac`]) and per station's
//! LAN, interfaces up and the hosts' addresses and routes set.

use anyhow::{anyhow, Result};

use super::lab::Lab;
use super::{Names, Topology};

/// What was built, for the log line.
#[derive(Debug, Clone, Copy)]
pub struct SliceSize {
    pub namespaces: usize,
    pub veths: usize,
}

/// Builds `topo` in `lab` (namespaces named by `names`).
pub fn build(lab: &mut Lab, topo: &Topology, names: &Names) -> Result<SliceSize> {
    let mut nss: Vec<String> = topo.nodes().map(|n| names.node_ns(n)).collect();
    nss.extend((0..topo.n_gs).map(|g| names.host_ns(g)));
    lab.add_namespaces(&nss)?;
    let veths = veth_pairs(topo, names);
    lab.add_veths(&veths)?;
    for n in topo.nodes() {
        lab.ip_in(&names.node_ns(n), &node_commands(topo, n))?;
    }
    for g in 0..topo.n_gs {
        configure_host(lab, topo, names, g)?;
    }
    Ok(SliceSize {
        namespaces: nss.len(),
        veths: veths.len(),
    })
}

/// Every link's veth pair, then every station's LAN pair to its host.
fn veth_pairs(topo: &Topology, names: &Names) -> Vec<[(String, String, String); 2]> {
    let mut veths = Vec::new();
    for &(x, y) in &topo.links {
        veths.push([
            (names.node_ns(x), Names::port(y), Names::mac(x, y)),
            (names.node_ns(y), Names::port(x), Names::mac(y, x)),
        ]);
    }
    for g in 0..topo.n_gs {
        let gs = gs_node(topo, g);
        veths.push([
            (
                names.node_ns(gs),
                Names::LAN.into(),
                Names::mac(gs, u32::MAX),
            ),
            (names.host_ns(g), Names::HOST.into(), Names::host_mac(g)),
        ]);
    }
    veths
}

/// The node id of ground station `g`.
fn gs_node(topo: &Topology, g: usize) -> u32 {
    (topo.n_sats + g) as u32
}

/// `ip` commands bringing node `n`'s ports up (and a station's LAN address).
fn node_commands(topo: &Topology, n: u32) -> Vec<String> {
    let mut cmds: Vec<String> = vec!["link set lo up".into()];
    cmds.extend(
        topo.neighbors(n)
            .iter()
            .map(|&b| format!("link set {} up", Names::port(b))),
    );
    if topo.is_gs(n) {
        let g = n as usize - topo.n_sats;
        let (_, gw) = topo.host_addr(g);
        let len = topo.gs_prefixes[g].len;
        cmds.push(format!("link set {} up", Names::LAN));
        cmds.push(format!("addr add {gw}/{len} dev {}", Names::LAN));
    }
    cmds
}

/// The host behind station `g`: address, default route, its gateway's MAC.
fn configure_host(lab: &Lab, topo: &Topology, names: &Names, g: usize) -> Result<()> {
    let (host, gw) = topo.host_addr(g);
    let len = topo.gs_prefixes[g].len;
    let cmds = vec![
        "link set lo up".to_string(),
        format!("link set {} up", Names::HOST),
        format!("addr add {host}/{len} dev {}", Names::HOST),
        format!("route add default via {gw}"),
        format!(
            "neigh replace {gw} lladdr {} dev {} nud permanent",
            Names::mac(gs_node(topo, g), u32::MAX),
            Names::HOST
        ),
    ];
    lab.ip_in(&names.host_ns(g), &cmds)?;
    // veth leaves UDP/TCP checksums to "hardware" (CHECKSUM_PARTIAL); a
    // frame relayed through AF_XDP never gets them filled in, so the
    // hosts compute their own, as they would in front of a real NIC.
    lab.exec(
        &names.host_ns(g),
        &["ethtool", "-K", Names::HOST, "tx", "off"],
    )
    .map_err(|e| anyhow!("{e} (apt-get install ethtool)"))
}
