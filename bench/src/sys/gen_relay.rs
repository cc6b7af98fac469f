//! Loads the harness's relay generator (bench/bpf/gen_relay.c, built by
//! build.rs): an XDP program on the veth peer of the generator's socket
//! that redirects every frame to the generator's port, so the DUT receives
//! XDP frames, as from a NIC, rather than socket buffers. aya attaches
//! through a BPF link, so the program goes when [`GenRelay`] is dropped or
//! the process dies.

use anyhow::{Context, Result};
use aya::maps::DevMap;
use aya::programs::{Xdp, XdpMode};
use aya::{include_bytes_aligned, Ebpf};

static OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gen_relay.o"));

/// The attached relay.
pub struct GenRelay {
    _bpf: Ebpf,
}

impl std::fmt::Debug for GenRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenRelay")
    }
}

impl GenRelay {
    /// Attaches the relay to `from` (native mode), sending every frame it
    /// receives out of `to`.
    pub fn attach(from: &str, to: &str) -> Result<GenRelay> {
        let mut bpf = load_to(OBJ, "gen_relay", "relay_port", to)?;
        let p: &mut Xdp = bpf
            .program_mut("gen_relay")
            .context("gen_relay")?
            .try_into()?;
        p.attach(from, XdpMode::Driver)
            .with_context(|| format!("attaching gen_relay to {from} in native mode"))?;
        Ok(GenRelay { _bpf: bpf })
    }
}

/// Loads object `obj` with its XDP program `prog`, the one slot of its
/// DEVMAP `map` set to interface `to`: the relay's and the live
/// generator's shared start (every frame redirected out of `to`).
pub(super) fn load_to(obj: &[u8], prog: &str, map: &str, to: &str) -> Result<Ebpf> {
    let mut bpf = Ebpf::load(obj).with_context(|| format!("loading {prog}.o"))?;
    let mut m: DevMap<_> =
        DevMap::try_from(bpf.map_mut(map).with_context(|| format!("{map} map"))?)?;
    m.set(0, dataplane::sys::xdp::ifindex(to)?, None, 0)
        .with_context(|| format!("{map} -> {to}"))?;
    let p: &mut Xdp = bpf
        .program_mut(prog)
        .with_context(|| format!("{prog} missing from {prog}.o"))?
        .try_into()?;
    p.load()
        .with_context(|| format!("the kernel refused {prog}"))?;
    Ok(bpf)
}
