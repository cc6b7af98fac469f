//! Loads the harness's in-kernel limit peer (bench/bpf/xdp_min.c, built by
//! build.rs) with aya, fills its label array and next hops, and attaches it
//! in native (driver) mode: `xdp_min` on the ingress port, `xdp_pass` on
//! each egress port. aya attaches through BPF links, so the programs go
//! when [`XdpMin`] is dropped or the process dies.
//!
//! The map values are byte arrays laid out as the C structs in xdp_min.c
//! (`struct min_label` = two u32, `struct min_nh` = 6 + 6 bytes of MACs and
//! a u32 ifindex), in the machine's byte order, so no `Pod` impl is needed.

use anyhow::{bail, Context, Result};
use aya::maps::Array;
use aya::programs::{Xdp, XdpMode};
use aya::{include_bytes_aligned, Ebpf};

static OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_min.o"));

/// Entries of the label array (= MIN_LABELS in xdp_min.c).
pub const LABELS: u32 = 1 << 20;
/// Next hops the program can hold (= MIN_NHS).
pub const MAX_NHS: usize = 64;

/// One next hop: MACs and the egress interface.
#[derive(Debug, Clone)]
pub struct MinNextHop {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub port: String,
}

/// One bound label: swapped to `out`, sent to next hop `nh` (an index
/// into the next hops given to [`XdpMin::load`]).
#[derive(Debug, Clone, Copy)]
pub struct MinLabel {
    pub label: u32,
    pub out: u32,
    pub nh: usize,
}

/// The loaded and attached program.
pub struct XdpMin {
    _bpf: Ebpf,
}

impl std::fmt::Debug for XdpMin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XdpMin")
    }
}

impl XdpMin {
    /// Loads, fills and attaches; `ingress` gets the switch, `egress` the
    /// pass program (an interface in both lists gets the switch only).
    pub fn load(
        ingress: &str,
        egress: &[String],
        nhs: &[MinNextHop],
        labels: &[MinLabel],
    ) -> Result<XdpMin> {
        let mut bpf = filled(nhs, labels)?;
        for (prog, ifs) in [
            ("xdp_min", vec![ingress.to_string()]),
            (
                "xdp_pass",
                egress.iter().filter(|e| *e != ingress).cloned().collect(),
            ),
        ] {
            let p: &mut Xdp = bpf
                .program_mut(prog)
                .with_context(|| format!("{prog} missing from xdp_min.o"))?
                .try_into()?;
            p.load()
                .with_context(|| format!("the kernel refused {prog}"))?;
            for i in ifs {
                p.attach(&i, XdpMode::Driver)
                    .with_context(|| format!("attaching {prog} to {i} in native mode"))?;
            }
        }
        Ok(XdpMin { _bpf: bpf })
    }
}

/// xdp_min.o loaded into aya (its programs not yet in the kernel) with
/// its maps filled.
fn filled(nhs: &[MinNextHop], labels: &[MinLabel]) -> Result<Ebpf> {
    if nhs.len() > MAX_NHS {
        bail!("{} next hops; xdp_min holds {MAX_NHS}", nhs.len());
    }
    let mut bpf = Ebpf::load(OBJ).context("loading xdp_min.o")?;
    {
        let mut m: Array<_, [u8; 16]> =
            Array::try_from(bpf.map_mut("min_nhs").context("min_nhs map")?)?;
        for (i, nh) in nhs.iter().enumerate() {
            let mut v = [0u8; 16];
            v[..6].copy_from_slice(&nh.dst_mac);
            v[6..12].copy_from_slice(&nh.src_mac);
            v[12..].copy_from_slice(&dataplane::sys::xdp::ifindex(&nh.port)?.to_ne_bytes());
            m.set(i as u32, v, 0)?;
        }
    }
    {
        let mut m: Array<_, [u32; 2]> =
            Array::try_from(bpf.map_mut("min_labels").context("min_labels map")?)?;
        for l in labels {
            if l.label >= LABELS || l.out >= LABELS || l.nh >= nhs.len() {
                bail!(
                    "label {} -> {} via next hop {} does not fit",
                    l.label,
                    l.out,
                    l.nh
                );
            }
            m.set(l.label, [l.out, l.nh as u32 + 1], 0)?;
        }
    }
    Ok(bpf)
}

/// xdp_min loaded for timing against the fast path with BPF_PROG_TEST_RUN
/// (bench/examples/xdp_prog_cost.rs): attached nowhere, or held on an
/// interface ([`XdpMinTest::hold`]).
pub struct XdpMinTest {
    bpf: Ebpf,
}

impl std::fmt::Debug for XdpMinTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XdpMinTest")
    }
}

impl XdpMinTest {
    /// Loads xdp_min with `nhs` and `labels` (as [`XdpMin::load`]) into
    /// the kernel, attached nowhere.
    pub fn load(nhs: &[MinNextHop], labels: &[MinLabel]) -> Result<XdpMinTest> {
        let mut bpf = filled(nhs, labels)?;
        let p: &mut Xdp = bpf
            .program_mut("xdp_min")
            .context("xdp_min missing from xdp_min.o")?
            .try_into()?;
        p.load().context("the kernel refused xdp_min")?;
        Ok(XdpMinTest { bpf })
    }

    /// Attaches the program in generic (SKB) mode to `iface` until this
    /// value is dropped, so test runs find it in the XDP dispatcher (as
    /// `dataplane::sys::fast_maps::FastPath::hold`).
    pub fn hold(&mut self, iface: &str) -> Result<()> {
        let p: &mut Xdp = self
            .bpf
            .program_mut("xdp_min")
            .context("xdp_min missing")?
            .try_into()?;
        p.attach(iface, XdpMode::Skb)
            .with_context(|| format!("attaching xdp_min to {iface} (generic mode)"))?;
        Ok(())
    }

    /// Runs the program `repeat` times on `frame` in one BPF_PROG_TEST_RUN
    /// (the frame is not reset between runs) and returns its action and
    /// the kernel's mean time per run.
    pub fn time_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration)> {
        let p: &Xdp = self
            .bpf
            .program("xdp_min")
            .context("xdp_min missing")?
            .try_into()?;
        dataplane::sys::xdp::time_run(p, frame, repeat)
    }
}
