//! Loads the harness's watch on dut0's receive (bench/bpf/napi_gap.c,
//! built by build.rs) with aya: the longest gap between two NAPI polls of
//! one device on one CPU, and the polls and frames, between two
//! [`NapiGap::take`] calls. aya attaches through a perf link, so the
//! program goes when [`NapiGap`] is dropped or the process dies.

use anyhow::{bail, Context, Result};
use aya::maps::Array;
use aya::programs::TracePoint;
use aya::{include_bytes_aligned, Ebpf};

static OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/napi_gap.o"));

/// What the watch saw since the last [`NapiGap::take`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct PollGaps {
    /// Longest time between two polls, ns (0: fewer than two polls).
    pub max_gap_ns: u64,
    pub polls: u64,
    pub frames: u64,
    /// Gaps at least as long as the `stall_ns` given to [`NapiGap::attach`],
    /// and their sum (ns).
    #[serde(default)]
    pub stalls: u64,
    #[serde(default)]
    pub stalled_ns: u64,
}

/// The attached watch.
pub struct NapiGap {
    bpf: Ebpf,
}

impl std::fmt::Debug for NapiGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NapiGap")
    }
}

impl NapiGap {
    /// Watches the NAPI polls of `dev` (a name of exactly 4 bytes, such as
    /// "dut0") that run on `cpu`, counting gaps of at least `stall_ns` as
    /// stalls. Needs tracefs (aya finds it under /sys/kernel/tracing or
    /// /sys/kernel/debug/tracing).
    pub fn attach(cpu: u32, dev: &str, stall_ns: u64) -> Result<NapiGap> {
        let name: [u8; 4] = dev
            .as_bytes()
            .try_into()
            .ok()
            .with_context(|| format!("napi_gap watches 4-byte device names, not {dev:?}"))?;
        let mut bpf = Ebpf::load(OBJ).context("loading napi_gap.o")?;
        {
            let mut cfg: Array<_, [u8; 16]> =
                Array::try_from(bpf.map_mut("gap_cfg").context("gap_cfg map")?)?;
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&cpu.to_ne_bytes());
            v[4..8].copy_from_slice(&name);
            v[8..].copy_from_slice(&stall_ns.to_ne_bytes());
            cfg.set(0, v, 0)?;
        }
        let p: &mut TracePoint = bpf
            .program_mut("napi_gap")
            .context("napi_gap missing from napi_gap.o")?
            .try_into()?;
        p.load().context("the kernel refused napi_gap")?;
        if let Err(e) = p.attach("napi", "napi_poll") {
            bail!("attaching to the napi:napi_poll tracepoint (is tracefs mounted?): {e}");
        }
        Ok(NapiGap { bpf })
    }

    /// What was seen since the last call, and a fresh start.
    pub fn take(&mut self) -> Result<PollGaps> {
        let mut m: Array<_, [u8; 48]> =
            Array::try_from(self.bpf.map_mut("gap_state").context("gap_state map")?)?;
        let v = m.get(&0, 0)?;
        m.set(0, [0u8; 48], 0)?;
        let at = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().expect("8 bytes"));
        Ok(PollGaps {
            max_gap_ns: at(8),
            polls: at(16),
            frames: at(24),
            stalls: at(32),
            stalled_ns: at(40),
        })
    }
}
