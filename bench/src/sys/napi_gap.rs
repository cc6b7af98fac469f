//! Loads the harness's watch on dut0's receive (bench/bpf/napi_gap.c,
//! built by build.rs) with aya: the longest gap between two NAPI polls of
//! one device on one CPU, and the polls and frames, between two
//! [`NapiGap::reset`]s; a heartbeat on that CPU (a cpu-clock perf event
//! every [`BEAT_NS`] keeps an hrtimer firing there; whatever its intervals
//! have beyond one period is time the hypervisor held the CPU), and one on
//! the generator's CPU (its holds only reported: the harness runs a trial
//! again after a long one); and the frames
//! the generator's port could not hand to the device, filed under the gap
//! in which they were refused. aya attaches through perf links, so the
//! programs go when [`NapiGap`] is dropped or the process dies.

use anyhow::{bail, Context, Result};
use aya::maps::Array;
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::{PerfEvent, RawTracePoint, TracePoint};
use aya::{include_bytes_aligned, Ebpf};

static OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/napi_gap.o"));

/// struct gap_cfg's and struct gap_state's sizes (bench/bpf/napi_gap.c).
const CFG_BYTES: usize = 88;
const STATE_BYTES: usize = 168;

/// What the watch saw since the last [`NapiGap::reset`].
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
    /// Frames the generator's port could not hand to the device (its ring
    /// was full); of them the ones refused in a gap during which the CPU
    /// was missing for at least [`AWAY_NS`] in all and a quarter of the
    /// gap (the heartbeat's intervals beyond its period), or in the
    /// backlog such a gap left: the testbed's. The rest are the DUT's.
    /// `refused_away` also holds `refused_backlog`.
    #[serde(default)]
    pub refused: u64,
    #[serde(default)]
    pub refused_away: u64,
    /// Frames refused after a gap of the testbed's, while the DUT
    /// drained the ring it left full ([`BACKLOG_FRAMES`]): that gap's.
    #[serde(default)]
    pub refused_backlog: u64,
    /// Frames refused in a stall (a gap of at least `stall_ns`), whether
    /// the CPU was seen away in it or not.
    #[serde(default)]
    pub refused_stalled: u64,
    /// Times no heartbeat came for three periods or more, and the sum of
    /// those intervals (ns).
    #[serde(default)]
    pub aways: u64,
    #[serde(default)]
    pub away_ns: u64,
    /// Time the CPU was missing in all: the heartbeat's intervals beyond
    /// its period, summed (ns).
    #[serde(default)]
    pub missing_ns: u64,
    /// Heartbeats seen: with `missing_ns`, about the watched time over
    /// [`BEAT_NS`] (0 would mean the heartbeat never ran and nothing was
    /// seen missing).
    #[serde(default)]
    pub beats: u64,
    /// The generator's core, by a heartbeat there too: the time it was
    /// missing in all, and the longest interval between two beats (ns).
    /// After such a gap the generator sends what fell due meanwhile (up to
    /// `--gen-catch-up` frames) as fast as it can.
    #[serde(default)]
    pub gen_missing_ns: u64,
    #[serde(default)]
    pub gen_max_silence_ns: u64,
}

impl PollGaps {
    /// Takes the refused frames and their filing from `later`, a read of
    /// the same watch after this one: a stall lasting past the sending
    /// phase files its refusals with the polls that drain the ring after
    /// it, while the gaps stay those of the sending phase.
    pub fn refusals_from(&mut self, later: &PollGaps) {
        self.refused = later.refused;
        self.refused_stalled = later.refused_stalled;
        self.refused_away = later.refused_away;
        self.refused_backlog = later.refused_backlog;
    }
}

/// The heartbeat's period on the watched CPU: 4,000 timer interrupts a
/// second, busy or idle, each a few hundred ns of it; on an idle core
/// /proc/stat saw no difference within its 10-ms ticks (2-4 of 500).
pub const BEAT_NS: u64 = 250_000;
/// Missing time (the heartbeat's intervals beyond its period, summed) in a
/// gap between two of dut0's polls that makes it the hypervisor's, with a
/// quarter of the gap: one period, a timer a whole period late (ordinary
/// lateness is a few µs a timer). In a 2.5-s trace of a 0.3-Mpps trial two
/// timers were at most 500 µs apart (at most 250 µs missing) but in the
/// stalls of dut0's polls; there the core was gone 0.9-8.3 ms at once, or
/// crawled (timers 200-600 µs late one after another: about 1 ms missing
/// in a 2.7-ms stall, 473 µs in a 1.5-ms one that polled 15 frames).
pub const AWAY_NS: u64 = BEAT_NS;
/// Frames the DUT may poll after a gap of the testbed's before what its
/// ring refuses is its own again (unless a poll finds the ring empty
/// first): the full ring the gap left, twice. The poll that ends such a
/// gap may have emptied the ring before the core went (the tracepoint
/// fires as a poll ends), so the ring is full after it and refuses frames
/// until the next polls drain it: in a 10-s trace at 0.3 Mpps
/// (bench/results/2026-12-01-vcpu-stalls.md) 104 of the 109 frames refused
/// outside the stalls were refused in the first polls after one.
pub const BACKLOG_FRAMES: u64 = 2 * 256;

/// How the generator hands frames to the watched device's peer, which
/// decides where a refused frame is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusals {
    /// The AF_XDP generator's socket sends on the peer: a refused frame is
    /// a socket buffer freed in veth_xmit (skb:kfree_skb).
    Xsk,
    /// The relay redirects into the peer: refused frames are the devmap
    /// flush's drops (xdp:xdp_devmap_xmit).
    Relay,
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
    /// stalls, and the frames refused on `gen_cpu` as `refusals` says.
    /// Needs tracefs (aya finds it under /sys/kernel/tracing or
    /// /sys/kernel/debug/tracing) and kernel addresses in /proc/kallsyms
    /// (perf_swevent_hrtimer's; for [`Refusals::Xsk`] veth_xmit's).
    pub fn attach(
        cpu: u32,
        dev: &str,
        stall_ns: u64,
        gen_cpu: u32,
        refusals: Refusals,
    ) -> Result<NapiGap> {
        let name: [u8; 4] = dev
            .as_bytes()
            .try_into()
            .ok()
            .with_context(|| format!("napi_gap watches 4-byte device names, not {dev:?}"))?;
        let mut bpf = Ebpf::load(OBJ).context("loading napi_gap.o")?;
        {
            let mut cfg: Array<_, [u8; CFG_BYTES]> =
                Array::try_from(bpf.map_mut("gap_cfg").context("gap_cfg map")?)?;
            let mut v = [0u8; CFG_BYTES];
            v[..4].copy_from_slice(&cpu.to_ne_bytes());
            v[4..8].copy_from_slice(&name);
            v[8..16].copy_from_slice(&stall_ns.to_ne_bytes());
            v[16..20].copy_from_slice(&gen_cpu.to_ne_bytes());
            let text =
                std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
            let k = Kallsyms::parse(&text);
            if refusals == Refusals::Xsk {
                let [main, cold] = veth_xmit_ranges(&k)?;
                for (i, a) in [main.0, main.1, cold.0, cold.1].into_iter().enumerate() {
                    v[24 + 8 * i..32 + 8 * i].copy_from_slice(&a.to_ne_bytes());
                }
            }
            v[56..64].copy_from_slice(&AWAY_NS.to_ne_bytes());
            v[64..72].copy_from_slice(&k.range("perf_swevent_hrtimer")?.0.to_ne_bytes());
            v[72..80].copy_from_slice(&BEAT_NS.to_ne_bytes());
            v[80..88].copy_from_slice(&BACKLOG_FRAMES.to_ne_bytes());
            cfg.set(0, v, 0)?;
        }
        tracepoint(&mut bpf, "napi_gap", "napi", "napi_poll")?;
        match refusals {
            Refusals::Xsk => raw_tracepoint(&mut bpf, "refused_skb", "kfree_skb")?,
            Refusals::Relay => raw_tracepoint(&mut bpf, "refused_xdp", "xdp_devmap_xmit")?,
        }
        raw_tracepoint(&mut bpf, "beat", "hrtimer_expire_entry")?;
        let p: &mut PerfEvent = bpf
            .program_mut("heartbeat")
            .context("heartbeat missing from napi_gap.o")?
            .try_into()?;
        p.load().context("the kernel refused heartbeat")?;
        // (One event per core: a second on the DUT's core would halve its
        // intervals.)
        let cores = if gen_cpu == cpu {
            vec![cpu]
        } else {
            vec![cpu, gen_cpu]
        };
        for c in cores {
            p.attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu: c },
                SamplePolicy::Period(BEAT_NS),
                false,
            )
            .with_context(|| format!("attaching heartbeat to a cpu-clock event on CPU {c}"))?;
        }
        Ok(NapiGap { bpf })
    }

    /// A fresh start: what is seen from now on.
    pub fn reset(&mut self) -> Result<()> {
        let mut m: Array<_, [u8; STATE_BYTES]> =
            Array::try_from(self.bpf.map_mut("gap_state").context("gap_state map")?)?;
        m.set(0, [0u8; STATE_BYTES], 0)?;
        Ok(())
    }

    /// What was seen since the last [`NapiGap::reset`], counting on.
    pub fn peek(&self) -> Result<PollGaps> {
        let m: Array<_, [u8; STATE_BYTES]> =
            Array::try_from(self.bpf.map("gap_state").context("gap_state map")?)?;
        let v = m.get(&0, 0)?;
        let at = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().expect("8 bytes"));
        Ok(PollGaps {
            max_gap_ns: at(8),
            polls: at(16),
            frames: at(24),
            stalls: at(32),
            stalled_ns: at(40),
            refused: at(48),
            refused_stalled: at(64),
            refused_away: at(72),
            aways: at(104),
            away_ns: at(112),
            missing_ns: at(88),
            refused_backlog: at(128),
            beats: at(136),
            gen_missing_ns: at(152),
            gen_max_silence_ns: at(160),
        })
    }
}

/// Loads program `prog` of napi_gap.o and attaches it to tracepoint
/// `category:event`.
fn tracepoint(bpf: &mut Ebpf, prog: &str, category: &str, event: &str) -> Result<()> {
    let p: &mut TracePoint = bpf
        .program_mut(prog)
        .with_context(|| format!("{prog} missing from napi_gap.o"))?
        .try_into()?;
    p.load()
        .with_context(|| format!("the kernel refused {prog}"))?;
    p.attach(category, event)
        .with_context(|| format!("attaching {prog} to {category}:{event} (is tracefs mounted?)"))?;
    Ok(())
}

/// Loads program `prog` of napi_gap.o and attaches it to raw tracepoint
/// `event`: the kernel skips it only if it would nest in itself on a CPU,
/// where it skips a classic tracepoint's program whenever any other
/// tracing program runs on the CPU (the watch's own, interrupted).
fn raw_tracepoint(bpf: &mut Ebpf, prog: &str, event: &str) -> Result<()> {
    let p: &mut RawTracePoint = bpf
        .program_mut(prog)
        .with_context(|| format!("{prog} missing from napi_gap.o"))?
        .try_into()?;
    p.load()
        .with_context(|| format!("the kernel refused {prog}"))?;
    p.attach(event)
        .with_context(|| format!("attaching {prog} to raw tracepoint {event}"))?;
    Ok(())
}

/// `[start, end)` of veth_xmit and of its `.cold` part (`(0, 0)` if it has
/// none): where the AF_XDP generator's refused frames are freed.
fn veth_xmit_ranges(k: &Kallsyms) -> Result<[(u64, u64); 2]> {
    Ok([
        k.range("veth_xmit")?,
        k.range("veth_xmit.cold").unwrap_or((0, 0)),
    ])
}

/// A /proc/kallsyms text's symbols, sorted by address.
struct Kallsyms<'a>(Vec<(u64, &'a str)>);

impl<'a> Kallsyms<'a> {
    fn parse(text: &'a str) -> Kallsyms<'a> {
        let mut syms: Vec<(u64, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let a = u64::from_str_radix(f.next()?, 16).ok()?;
                let _kind = f.next()?;
                Some((a, f.next()?))
            })
            .collect();
        syms.sort_unstable();
        Kallsyms(syms)
    }

    /// `[start, end)` of symbol `name`: it ends where the next symbol starts.
    fn range(&self, name: &str) -> Result<(u64, u64)> {
        let syms = &self.0;
        let i = syms.iter().position(|&(a, n)| n == name && a != 0);
        let end = i.and_then(|i| {
            syms[i + 1..]
                .iter()
                .map(|&(a, _)| a)
                .find(|&a| a > syms[i].0)
        });
        match (i, end) {
            (Some(i), Some(end)) => Ok((syms[i].0, end)),
            _ => bail!(
                "{name} has no address in /proc/kallsyms (not in this kernel, or hidden: kernel.kptr_restrict must be 0 or 1)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_xmit_ends_where_the_next_symbol_starts() {
        let text = "ffffffff81e0a850 t __pfx_veth_set_channels\n\
                    ffffffff8123b96c t veth_xmit.cold\n\
                    ffffffff81e0a530 t veth_xmit\n\
                    ffffffff8123b98d t veth_set_channels.cold\n";
        let k = Kallsyms::parse(text);
        let [main, cold] = veth_xmit_ranges(&k).unwrap();
        assert_eq!(main, (0xffffffff81e0a530, 0xffffffff81e0a850));
        assert_eq!(cold, (0xffffffff8123b96c, 0xffffffff8123b98d));
        let hidden = "0000000000000000 t veth_xmit\n0000000000000000 t veth_open\n";
        assert!(veth_xmit_ranges(&Kallsyms::parse(hidden)).is_err());
        assert!(veth_xmit_ranges(&Kallsyms::parse("ffffffff81e0a850 t veth_open\n")).is_err());
        // The last symbol has no end.
        assert!(k.range("__pfx_veth_set_channels").is_err());
        assert_eq!(
            k.range("veth_xmit.cold").unwrap(),
            (0xffffffff8123b96c, 0xffffffff8123b98d)
        );
    }
}
