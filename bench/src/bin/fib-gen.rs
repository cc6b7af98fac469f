//! Writes a large transit FIB file (JSON) for the relay benchmarks: `n`
//! node SIDs from 16000, each swapped to itself towards one next hop.
//! `fib-gen OUT N IN_PORT OUT_PORT DST_MAC SRC_MAC`

use anyhow::{bail, Context, Result};
use orbitmesh_core::fib::spec::{ActionSpec, FibSpec, LabelSpec, NextHopId, NextHopSpec, PortSpec};

fn main() -> Result<()> {
    if bench::version_asked("fib-gen") {
        return Ok(());
    }
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        bail!("usage: fib-gen OUT N IN_PORT OUT_PORT DST_MAC SRC_MAC");
    }
    let n: u32 = a[2].parse().context("N must be a number")?;
    let spec = FibSpec {
        version: 1,
        ports: vec![
            PortSpec {
                name: a[3].clone(),
                mtu: 1500,
            },
            PortSpec {
                name: a[4].clone(),
                mtu: 1500,
            },
        ],
        next_hops: vec![NextHopSpec {
            id: NextHopId(1),
            name: "out".into(),
            port: a[4].clone(),
            dst_mac: a[5].parse().map_err(|e| anyhow::anyhow!("DST_MAC: {e}"))?,
            src_mac: a[6].parse().map_err(|e| anyhow::anyhow!("SRC_MAC: {e}"))?,
            vlan: None,
            push: vec![],
            backup: None,
        }],
        labels: (0..n)
            .map(|i| LabelSpec {
                label: 16000 + i,
                action: ActionSpec::Swap,
                out_label: None,
                group: None,
                next_hop: Some(NextHopId(1)),
            })
            .collect(),
        ..FibSpec::default()
    };
    spec.build()
        .map_err(|e| anyhow::anyhow!("generated FIB invalid: {e}"))?;
    std::fs::write(&a[1], spec.to_json()).with_context(|| a[1].clone())?;
    Ok(())
}
