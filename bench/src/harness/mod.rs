//! The benchmark suite: builds the namespace line, starts the traffic
//! thread, and for each device under test runs the RFC 2544 throughput
//! search per frame size (section 26.1, binary search), latency at fractions
//! of the throughput (section 26.2, percentiles instead of a single mean),
//! and, for orbitmesh, FIB swaps under load; then writes JSON, Markdown and
//! SVG (see [`report`]).
//!
//! - [`topology`]: the namespaces, removed on drop.
//! - [`dut`]: orbitmesh-dp, kernel forwarding, dpdk-testpmd.
//! - [`rfc2544`]: the search.
//! - [`cpu`]: CPU time from /proc for CPU time per packet.
//! - [`stalls`]: the testbed check (how long the DUT's vCPU goes missing).
//! - [`report`]: the output files.

pub mod cpu;
pub mod dut;
pub mod report;
pub mod rfc2544;
pub mod stalls;
pub mod topology;

use crate::traffic::engine::{EngineCfg, EngineHandle, Phase, Relay, TrialSpec, TrialStats};
use crate::traffic::frame::{self, FlowPlan, Macs, Profile, SizeMix};
use anyhow::{bail, Context, Result};
use dut::{Bins, Dut, DutKind};
use rfc2544::{Outcome, SearchCfg};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How the generator's frames reach dut0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenKind {
    /// The AF_XDP socket sends on gen0: on veth (copy mode) each frame is
    /// a socket buffer, which an XDP program on dut0 must copy into a page.
    #[default]
    Xsk,
    /// Through the relay pair (`topology::RELAY_SRC` -> `RELAY_IN`, XDP
    /// redirect to gen0): dut0 receives XDP frames, as from a NIC.
    Relay,
    /// The kernel makes the frames (`crate::sys::gen_live`, live frames
    /// redirected to gen0): XDP frames as from a NIC, and no copy on
    /// either core; MPLS and IPv4 profiles, one frame size.
    Live,
}

impl GenKind {
    pub fn parse(s: &str) -> Result<GenKind, String> {
        match s {
            "xsk" => Ok(GenKind::Xsk),
            "relay" => Ok(GenKind::Relay),
            "live" => Ok(GenKind::Live),
            _ => Err(format!("unknown generator {s:?} (xsk, relay or live)")),
        }
    }
}

impl GenKind {
    /// Whether the generator can send `size`-byte frames (FCS included) of
    /// `profile`: the live one writes frames of at most
    /// [`crate::sys::gen_live::LIVE_MAX_LEN`] bytes, a multiple of 4, and
    /// stamps that need no UDP checksum update (no IPv6).
    pub fn sends(self, profile: Profile, size: SizeMix) -> Result<(), String> {
        if self != GenKind::Live {
            return Ok(());
        }
        if matches!(profile, Profile::Ipv6 | Profile::Mixed) {
            return Err("MPLS and IPv4 flows only (its stamps need no checksum update)".into());
        }
        match size {
            SizeMix::Fixed(n)
                if usize::from(n) >= 64
                    && usize::from(n) - frame::FCS_LEN <= crate::sys::gen_live::LIVE_MAX_LEN
                    && n.is_multiple_of(4) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "one frame size per trial, a multiple of 4 from 64 to {} bytes, not {}",
                crate::sys::gen_live::LIVE_MAX_LEN + frame::FCS_LEN,
                size.label()
            )),
        }
    }
}

/// Refuses a suite the generator cannot send, before anything is built.
fn live_fits(cfg: &SuiteCfg) -> Result<()> {
    for d in &cfg.duts {
        for &size in &cfg.sizes {
            if let Err(e) = cfg.gen.sends(d.profile(), size) {
                bail!(
                    "--gen live cannot send {}'s frames at --sizes {}: {e}",
                    d.name(),
                    size.label()
                );
            }
        }
    }
    Ok(())
}

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteCfg {
    pub name: String,
    pub duts: Vec<DutKind>,
    pub sizes: Vec<SizeMix>,
    pub trial: Duration,
    pub drain: Duration,
    pub search: SearchCfg,
    /// Fractions of the throughput to measure latency at.
    pub latency_loads: Vec<f64>,
    pub latency_trial: Duration,
    /// Absolute offered rates (frames/s) at which every DUT's CPU per frame
    /// is measured with the first frame size: the same load for all, so
    /// DUTs whose CPU use follows the load can be compared below saturation.
    pub cost_rates: Vec<f64>,
    pub flows: u16,
    pub labels: u32,
    /// FIB swaps per second in the swap-under-load test (0: skip).
    pub swap_rate: f64,
    pub swap_trial: Duration,
    /// Fraction of the 64-byte throughput the swap test runs at.
    pub swap_load: f64,
    /// After the search, one trial at this fraction of the first size's
    /// throughput with `perf record -e cpu-clock -g` on the DUT and the
    /// generator's cores over its sending phase (0: none).
    pub profile_load: f64,
    /// Swaps to make in the swap test (0: as many as `swap_rate` x
    /// `swap_trial`); the trial then lasts long enough for them.
    pub swaps: u64,
    pub gen_core: usize,
    pub dut_core: usize,
    /// DUT ingress receive in a NAPI thread on the DUT core (sink's on the generator's).
    pub threaded_napi: bool,
    /// How the generator puts frames on gen0 (`--gen`).
    pub gen: GenKind,
    /// With threaded NAPI: interrupt coalescing of the line's receivers
    /// (`topology::threaded_napi`), ns; 0 = a wake-up per notification.
    pub napi_defer_ns: u64,
    /// Other processes' CPU share above which a trial counts as disturbed.
    pub max_other_load: f64,
    /// Re-runs of a disturbed trial.
    pub retries: u32,
    /// How long to wait for a quiet machine before each trial.
    pub quiet_wait: Duration,
    /// The generator's batching interval (see `TrialSpec::batch_gap_ns`).
    pub batch_gap_ns: u64,
    /// Frames the generator catches up on (see `TrialSpec::catch_up`).
    pub catch_up: u64,
    /// Seconds of the testbed check ([`stalls`]) before the first DUT (0: none).
    pub stall_check: f64,
    /// Charge the DUT with the frames dut0's ring refused while the DUT's
    /// core was away ([`TrialRecord::testbed_lost`]), as RFC 2544's raw
    /// count does; by default the search leaves them out (and reports them).
    #[serde(default)]
    pub charge_testbed: bool,
    #[serde(skip)]
    pub bins: Bins,
    #[serde(skip)]
    pub out: PathBuf,
}

/// One frame size's results for one DUT.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeResult {
    pub size: String,
    pub mean_frame_bytes: f64,
    pub search: rfc2544::SearchResult,
    /// The best passing trial in full.
    pub best: Option<TrialRecord>,
    /// The failing trial at the lowest offered rate (counters show where frames were lost).
    pub first_fail: Option<TrialRecord>,
    pub latency: Vec<TrialRecord>,
}

/// A trial with the CPU accounting around it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrialRecord {
    pub load: f64,
    pub stats: TrialStats,
    /// DUT process CPU ns per delivered frame (None: no process, i.e. the kernel).
    pub dut_process_ns_per_frame: Option<f64>,
    /// DUT core non-idle ns per delivered frame (process + softirq on that core).
    pub dut_core_ns_per_frame: f64,
    /// The generator core's non-idle time per delivered frame: the
    /// generator's and sink's own work, plus whatever of the DUT's receive
    /// and the sink's receive the kernel runs there (with default NAPI, a
    /// veth's receive runs on the sender's core).
    #[serde(default)]
    pub gen_core_ns_per_frame: f64,
    pub dut_core_busy: f64,
    pub gen_core_busy: f64,
    /// CPU used by other user-space processes during the sending phase, as
    /// a fraction of all cores (interference from the rest of the machine).
    pub other_load: f64,
    /// Time the hypervisor took the DUT's and the generator's virtual CPUs
    /// away during the sending phase (`/proc/stat` steal, 10 ms ticks), ms.
    #[serde(default)]
    pub steal_ms: [f64; 2],
    /// Runs of this trial (more than 1: earlier runs were disturbed).
    pub attempts: u32,
    /// Interface counters that moved during the trial (ethtool -S of the
    /// veths, rx/tx_dropped): where frames went, and where they were lost.
    pub link_counters: Vec<(String, u64)>,
    /// The DUT's own counters that moved (orbitmesh-dp: per port rx, tx,
    /// tx_ring_full, fill_ring_empty, and the pipeline's drop reasons).
    pub dut_counters: Vec<(String, u64)>,
    /// dut0's NAPI polls on the DUT's core over the sending phase (threaded
    /// NAPI): the longest time between the ends of two polls. Its NAPI
    /// thread runs at SCHED_FIFO there, so a gap much longer than one poll
    /// (at most 64 frames) is the core being away, and while frames arrive
    /// the ring fills meanwhile (2026-12-01-vcpu-stalls.md).
    #[serde(default)]
    pub dut0_polls: Option<crate::sys::napi_gap::PollGaps>,
}

/// FIB swaps under load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwapResult {
    pub swaps_asked_per_s: f64,
    pub swaps_done: u64,
    pub swap_errors: u64,
    pub fib_version_end: u64,
    /// Time of one swap request over the control socket (ms): mean, max.
    pub swap_call_mean_ms: f64,
    pub swap_call_max_ms: f64,
    pub trial: TrialRecord,
    /// The same trial without swaps, just before.
    pub control: TrialRecord,
}

/// Everything about one DUT.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DutResult {
    pub dut: DutKind,
    pub description: String,
    pub skipped: Option<String>,
    pub error: Option<String>,
    pub sizes: Vec<SizeResult>,
    /// Trials at `SuiteCfg::cost_rates` (first frame size).
    pub cost: Vec<TrialRecord>,
    pub swap: Option<SwapResult>,
    #[serde(default)]
    pub profile: Option<ProfileResult>,
}

/// Where the two cores' time went in one trial (`perf record -e cpu-clock`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileResult {
    pub trial: TrialRecord,
    /// `perf report --no-children --sort cpu,dso,sym` of both cores: the
    /// symbols above 1% of the samples.
    pub top: String,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteResult {
    pub name: String,
    pub command: String,
    pub started_utc: String,
    pub machine: String,
    pub load_before: String,
    pub load_after: String,
    pub generator_zero_copy: bool,
    /// The testbed check, if run.
    pub stalls: Option<stalls::Stalls>,
    pub cfg: SuiteCfg,
    pub duts: Vec<DutResult>,
}

/// Drives trials for one DUT and keeps the CPU books.
struct Bench<'a> {
    engine: &'a EngineHandle,
    cfg: &'a SuiteCfg,
    trial_no: u16,
    label: String,
    /// Set while a trial's sending phase runs (the swap test swaps then).
    sending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Record a cpu-clock profile of the DUT core into this file over the
    /// next trial's sending phase.
    perf: Option<PathBuf>,
    /// The watch on dut0's NAPI polls (threaded NAPI only).
    gaps: Option<crate::sys::napi_gap::NapiGap>,
}

impl Bench<'_> {
    /// Runs a trial; on a shared machine, first waits (up to `quiet_wait`)
    /// for other processes to go quiet, and runs it again (up to `retries`
    /// times) when they disturbed it anyway.
    fn trial(
        &mut self,
        dut: &Dut,
        plan: FlowPlan,
        mix: SizeMix,
        rate: f64,
        secs: Duration,
        load: f64,
    ) -> Result<TrialRecord> {
        self.trial_retrying(dut, plan, mix, rate, secs, load, self.cfg.retries)
    }

    /// [`Bench::trial`] with at most `retries` re-runs.
    #[allow(clippy::too_many_arguments)]
    fn trial_retrying(
        &mut self,
        dut: &Dut,
        plan: FlowPlan,
        mix: SizeMix,
        rate: f64,
        secs: Duration,
        load: f64,
        retries: u32,
    ) -> Result<TrialRecord> {
        let ours: Vec<u32> = std::iter::once(std::process::id())
            .chain(dut.pid())
            .collect();
        let mut attempt = 0;
        loop {
            self.wait_quiet(&ours)?;
            let links0 = topology::link_counters();
            let dp0 = dut.counters();
            let mut rec = self.trial_once(dut, plan, mix, rate, secs, load)?;
            rec.link_counters = topology::deltas(&links0, &topology::link_counters());
            rec.dut_counters = topology::deltas(&dp0, &dut.counters());
            attempt += 1;
            rec.attempts = attempt;
            // A trial that lost frames while the hypervisor ran something
            // else on either core says nothing about the DUT: with the
            // receiver on another virtual CPU than the sender (threaded
            // NAPI), a stolen 10 ms on the DUT's core overflows the veth's
            // 256-frame ring at any rate above 26 kpps. A trial that lost
            // nothing despite the steal stands.
            let lossy = rec.charged_lost(self.cfg.charge_testbed) > 0;
            let stolen = lossy && rec.steal_ms.iter().any(|&ms| ms > 0.0);
            // The same, seen by the watch's heartbeat on the generator's
            // core at a finer grain than steal's 10-ms ticks.
            let gen_held = lossy && gen_core_held(&rec, self.cfg.catch_up);
            // The frames dut0's ring refused while the DUT's core was away,
            // if they are charged to the DUT: its luck with the host, which
            // another attempt may not repeat.
            let stalled = self.cfg.charge_testbed && ring_loss_in_a_stall(&rec);
            if (rec.other_load <= self.cfg.max_other_load && !stolen && !stalled && !gen_held)
                || attempt > retries
            {
                return Ok(rec);
            }
            if stalled {
                let p = rec.dut0_polls.unwrap_or_default();
                orbitmesh_core::err!(
                    " -- disturbed ({} frames refused by dut0's ring while the DUT's core was away, longest gap {} µs), again",
                    p.refused_away,
                    p.max_gap_ns / 1000
                );
            } else if gen_held {
                let p = rec.dut0_polls.unwrap_or_default();
                orbitmesh_core::err!(
                    " -- disturbed (lost frames after the host held the generator's core {} µs), again",
                    p.gen_max_silence_ns / 1000
                );
            } else if stolen {
                orbitmesh_core::err!(
                    " -- disturbed (lost frames while the hypervisor took {:.0}/{:.0} ms of the DUT/generator cores), again",
                    rec.steal_ms[0],
                    rec.steal_ms[1]
                );
            } else {
                orbitmesh_core::err!(
                    " -- disturbed (other load {:.0}%), again",
                    rec.other_load * 100.0
                );
            }
        }
    }

    fn wait_quiet(&self, ours: &[u32]) -> Result<()> {
        let t0 = Instant::now();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        while t0.elapsed() < self.cfg.quiet_wait {
            let mut others = cpu::OthersCpu::default();
            others.since_last_of(ours);
            std::thread::sleep(Duration::from_millis(300));
            let share = others.since_last_of(ours) as f64 / (0.3e9 * cores);
            if share <= self.cfg.max_other_load {
                return Ok(());
            }
            if dataplane::sys::signal::stop_requested() {
                bail!("interrupted");
            }
            orbitmesh_core::err!(
                "\r\x1b[K{}: waiting for the machine to be quiet (other processes use {:.0}% of it)",
                self.label,
                share * 100.0
            );
        }
        Ok(())
    }

    fn trial_once(
        &mut self,
        dut: &Dut,
        plan: FlowPlan,
        mix: SizeMix,
        rate: f64,
        secs: Duration,
        load: f64,
    ) -> Result<TrialRecord> {
        if dataplane::sys::signal::stop_requested() {
            bail!("interrupted");
        }
        self.trial_no = self.trial_no.wrapping_add(1).max(1);
        let spec = TrialSpec {
            trial: self.trial_no,
            rate_pps: rate,
            duration: secs,
            drain: self.cfg.drain,
            mix,
            plan,
            batch_gap_ns: self.cfg.batch_gap_ns,
            catch_up: self.cfg.catch_up,
        };
        let (mut p0, mut p1) = (0u64, 0u64);
        let (mut d0, mut d1) = (cpu::CoreTicks::default(), cpu::CoreTicks::default());
        let (mut g0, mut g1) = (cpu::CoreTicks::default(), cpu::CoreTicks::default());
        let (dc, gc) = (self.cfg.dut_core, self.cfg.gen_core);
        let ours: Vec<u32> = std::iter::once(std::process::id())
            .chain(dut.pid())
            .collect();
        let (mut others, mut foreign) = (cpu::OthersCpu::default(), 0u64);
        let (mut w0, mut w1) = (Instant::now(), Instant::now());
        let sending = self.sending.clone();
        let perf_out = self.perf.take();
        let gaps = &mut self.gaps;
        let mut polls = None;
        let mut perf: Option<std::process::Child> = None;
        let stats = self.engine.trial(spec, &mut |ph| match ph {
            Phase::Sending => {
                sending.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Some(out) = &perf_out {
                    perf = std::process::Command::new("perf")
                        .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-C"])
                        .arg(format!("{dc},{gc}"))
                        .arg("-o")
                        .arg(out)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .ok();
                }
                if let Some(g) = gaps.as_mut() {
                    let _ = g.reset();
                }
                others.since_last_of(&ours);
                w0 = Instant::now();
                p0 = dut.process_ns().unwrap_or(0);
                d0 = cpu::core(dc);
                g0 = cpu::core(gc);
            }
            Phase::Draining => {
                sending.store(false, std::sync::atomic::Ordering::SeqCst);
                if let Some(mut p) = perf.take() {
                    // perf record writes its file on SIGINT.
                    let _ = std::process::Command::new("kill")
                        .args(["-INT", &p.id().to_string()])
                        .status();
                    let _ = p.wait();
                }
                p1 = dut.process_ns().unwrap_or(0);
                d1 = cpu::core(dc);
                g1 = cpu::core(gc);
                w1 = Instant::now();
                foreign = others.since_last_of(&ours);
                polls = gaps.as_mut().and_then(|g| g.peek().ok());
            }
        })?;
        // The refusals as filed after the drain (the gaps as the sending
        // phase ended).
        if let (Some(p), Some(g)) = (polls.as_mut(), self.gaps.as_ref()) {
            if let Ok(later) = g.peek() {
                p.refusals_from(&later);
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall = w1.duration_since(w0).as_nanos().max(1) as f64;
        let delivered = stats.sink.received.max(1) as f64;
        let rec = TrialRecord {
            load,
            dut_process_ns_per_frame: dut.pid().map(|_| p1.saturating_sub(p0) as f64 / delivered),
            dut_core_ns_per_frame: d1.busy_ns_since(&d0) as f64 / delivered,
            gen_core_ns_per_frame: g1.busy_ns_since(&g0) as f64 / delivered,
            dut_core_busy: d1.busy_since(&d0),
            gen_core_busy: g1.busy_since(&g0),
            other_load: foreign as f64 / (wall * cores),
            steal_ms: [
                d1.steal_ns_since(&d0) as f64 / 1e6,
                g1.steal_ns_since(&g0) as f64 / 1e6,
            ],
            attempts: 1,
            link_counters: Vec::new(),
            dut_counters: Vec::new(),
            dut0_polls: polls,
            stats,
        };
        let s = &rec.stats;
        orbitmesh_core::err!(
            "\r\x1b[K{} trial {:>3}: offered {:>7.3} Mpps, sent {:>7.3}, delivered {:>7.3}, loss {:.2e}, misfwd {}, DUT core {:>3.0}%, gen core {:>3.0}%, other load {:>3.0}%, steal {:.0}/{:.0} ms",
            self.label,
            s.trial,
            rate / 1e6,
            s.sent_pps / 1e6,
            s.delivered_pps / 1e6,
            s.loss_ratio,
            s.sink.misforwarded(),
            rec.dut_core_busy * 100.0,
            rec.gen_core_busy * 100.0,
            rec.other_load * 100.0,
            rec.steal_ms[0],
            rec.steal_ms[1]
        );
        let _ = std::io::stderr().flush();
        Ok(rec)
    }
}

/// Frames were lost in dut0's ring (gen0 could not hand them over) while
/// the DUT's core was away: the watch counted them one by one
/// ([`TrialRecord::testbed_lost`]): refused in a gap between dut0's
/// polls during which the DUT's core was
/// missing for at least [`crate::sys::napi_gap::AWAY_NS`] in all and a
/// quarter of the gap (its heartbeat timer came that much late: the
/// hypervisor held it; 2026-12-01-vcpu-stalls.md), or while the DUT
/// drained the full ring such a gap left
/// ([`crate::sys::napi_gap::BACKLOG_FRAMES`]).
/// Only when every frame lost was so: a DUT that lost frames by itself
/// as well would lose them in another attempt too.
pub fn ring_loss_in_a_stall(r: &TrialRecord) -> bool {
    r.testbed_lost() > 0 && r.testbed_lost() == r.stats.lost
}

/// Whether the host held the generator's core, in one piece, long enough
/// that the frames falling due meanwhile alone fill dut0's ring: the
/// generator sends them (up to `catch_up`, [`TrialSpec::catch_up`]) as
/// one burst when it runs again, and a DUT that loses frames to it loses
/// them to the testbed (bench/results/2026-12-01-busy-polls/). Measured
/// by the watch's heartbeat on the generator's core (threaded NAPI only).
pub fn gen_core_held(r: &TrialRecord, catch_up: u64) -> bool {
    r.dut0_polls.is_some_and(|p| {
        let missing = p
            .gen_max_silence_ns
            .saturating_sub(crate::sys::napi_gap::BEAT_NS);
        let burst = (missing as f64 * r.stats.offered_pps / 1e9).min(catch_up as f64);
        burst >= stalls::RING_FRAMES
    })
}

impl TrialRecord {
    /// The lost frames the testbed lost before the DUT saw them: refused by
    /// dut0's full ring while the DUT's core was away (the watch, threaded
    /// NAPI; 0 without it). Never more than the frames lost.
    pub fn testbed_lost(&self) -> u64 {
        self.dut0_polls
            .map_or(0, |p| p.refused_away.min(self.stats.lost))
    }

    /// The frames lost that count against the DUT: all of them, or with
    /// `charge_testbed` false, all but [`TrialRecord::testbed_lost`].
    pub fn charged_lost(&self, charge_testbed: bool) -> u64 {
        if charge_testbed {
            self.stats.lost
        } else {
            self.stats.lost - self.testbed_lost()
        }
    }

    /// [`TrialRecord::charged_lost`] as a fraction of the frames sent.
    pub fn charged_loss_ratio(&self, charge_testbed: bool) -> f64 {
        if self.stats.sent == 0 {
            return self.stats.loss_ratio;
        }
        self.charged_lost(charge_testbed) as f64 / self.stats.sent as f64
    }
}

/// The shortest gap in dut0's polls counted as a stall (the watch's
/// `stalls`, `refused_stalled`, and the report's "dut0 stalls"); a gap of
/// the testbed's may be shorter.
pub const STALL_MIN_NS: u64 = 1_000_000;

fn outcome(r: &TrialRecord, charge_testbed: bool) -> Outcome {
    Outcome {
        stalled: charge_testbed && ring_loss_in_a_stall(r),
        offered_pps: r.stats.offered_pps,
        sent_pps: r.stats.sent_pps,
        delivered_pps: r.stats.delivered_pps,
        loss_ratio: r.charged_loss_ratio(charge_testbed),
        testbed_lost: r.testbed_lost(),
        gen_limited: r.stats.generator_limited(),
        dut_core_busy: r.dut_core_busy,
        gen_core_busy: r.gen_core_busy,
    }
}

/// Checks what the run needs before touching anything.
pub fn preflight() -> Result<()> {
    if dataplane::sys::cred::euid() != 0 {
        bail!("orbitmesh-bench needs root (network namespaces, XDP, AF_XDP); run it with sudo");
    }
    for t in ["ip", "taskset"] {
        if !cpu::have_tool(t) {
            bail!("{t} not found (apt-get install iproute2 util-linux)");
        }
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        bail!("needs 2 CPUs (generator and DUT on separate cores), this machine has {n}");
    }
    Ok(())
}

/// Runs the suite; `command` is recorded in the results.
pub fn run_suite(cfg: SuiteCfg, command: String) -> Result<SuiteResult> {
    live_fits(&cfg)?;
    preflight()?;
    let load_before = cpu::load_note();
    let started = report::utc_now();
    let topo = topology::Topology::create()?;
    let work = tempdir()?;
    let stalls = if cfg.stall_check > 0.0 {
        let s = stalls::check(cfg.dut_core, Some(cfg.gen_core), cfg.stall_check)
            .context("the testbed check")?;
        orbitmesh_core::errln!(
            "testbed: in {:.0} s with CPU {} busy, CPU {} was away {} times (longest {} µs, {} over 1 ms)",
            s.secs,
            cfg.gen_core,
            cfg.dut_core,
            s.away_gaps,
            s.away_max_us,
            s.away_over_1ms
        );
        Some(s)
    } else {
        None
    };
    let engine = EngineHandle::start(EngineCfg {
        netns: Some(topology::GEN_NS.into()),
        core: Some(cfg.gen_core),
        gen_iface: topology::GEN_IF.into(),
        sink_ifaces: topology::SINK_IFS.iter().map(|s| s.to_string()).collect(),
        macs: Macs {
            gen: topology::MAC_GEN,
            dut_in: topology::MAC_DUT0,
        },
        sink_busy_poll: cfg.threaded_napi,
        relay: (cfg.gen == GenKind::Relay).then(|| Relay {
            src: topology::RELAY_SRC.into(),
            peer: topology::RELAY_IN.into(),
        }),
        live: cfg.gen == GenKind::Live,
    })
    .context("starting the generator and sink")?;
    let mut duts = Vec::new();
    for &kind in &cfg.duts {
        let mut r = DutResult {
            dut: kind,
            description: kind.describe().into(),
            skipped: None,
            error: None,
            sizes: Vec::new(),
            cost: Vec::new(),
            swap: None,
            profile: None,
        };
        if let Some(why) = kind.unavailable(&cfg.bins) {
            orbitmesh_core::errln!("orbitmesh-bench: skipping {}: {why}", kind.name());
            r.skipped = Some(why);
            duts.push(r);
            continue;
        }
        orbitmesh_core::errln!("== {} ({})", kind.name(), kind.describe());
        if let Err(e) = run_dut(&cfg, &engine, kind, &work, &mut r) {
            if dataplane::sys::signal::stop_requested() {
                return Err(e);
            }
            orbitmesh_core::errln!("\norbitmesh-bench: {} failed: {e:#}", kind.name());
            r.error = Some(format!("{e:#}"));
        }
        orbitmesh_core::errln!();
        duts.push(r);
    }
    let result = SuiteResult {
        name: cfg.name.clone(),
        command,
        started_utc: started,
        machine: report::machine(),
        load_before,
        load_after: cpu::load_note(),
        generator_zero_copy: engine.zero_copy,
        stalls,
        cfg,
        duts,
    };
    drop(engine);
    drop(topo);
    let _ = std::fs::remove_dir_all(&work);
    Ok(result)
}

/// One frame size (or mix) on a running DUT: the RFC 2544 throughput search
/// (keeping the fastest passing and slowest failing trials), then latency at
/// the configured fractions of the throughput found.
fn measure_size(
    b: &mut Bench,
    dut: &Dut,
    plan: FlowPlan,
    kind: DutKind,
    mix: SizeMix,
) -> Result<SizeResult> {
    let cfg = b.cfg;
    b.label = format!("{} {}B", kind.name(), mix.label());
    let mut best: Option<TrialRecord> = None;
    let mut first_fail: Option<TrialRecord> = None;
    let search = rfc2544::search(&cfg.search, |rate| {
        let rec = b.trial(dut, plan, mix, rate, cfg.trial, 1.0)?;
        let o = outcome(&rec, cfg.charge_testbed);
        let slot = if o.loss_ratio <= cfg.search.loss_tolerance {
            // The fastest passing trial...
            (&mut best, true)
        } else {
            // ...and the slowest failing one: where the frames went.
            (&mut first_fail, false)
        };
        let better = match slot.0 {
            None => true,
            Some(x) if slot.1 => x.stats.sent_pps < rec.stats.sent_pps,
            Some(x) => x.stats.offered_pps > rec.stats.offered_pps,
        };
        if better {
            *slot.0 = Some(rec);
        }
        Ok::<_, anyhow::Error>(o)
    })?;
    let mut latency = Vec::new();
    if search.throughput_pps > 0.0 {
        for &load in &cfg.latency_loads {
            b.label = format!(
                "{} {}B latency {:.0}%",
                kind.name(),
                mix.label(),
                load * 100.0
            );
            latency.push(b.trial(
                dut,
                plan,
                mix,
                search.throughput_pps * load,
                cfg.latency_trial,
                load,
            )?);
        }
    }
    orbitmesh_core::errln!(
        "\r\x1b[K{} {}B: throughput {:.3} Mpps (limit: {})",
        kind.name(),
        mix.label(),
        search.throughput_pps / 1e6,
        search.limit.describe()
    );
    Ok(SizeResult {
        size: mix.label(),
        mean_frame_bytes: mix.mean(),
        search,
        best,
        first_fail,
        latency,
    })
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("obh-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| d.display().to_string())?;
    Ok(d)
}

fn run_dut(
    cfg: &SuiteCfg,
    engine: &EngineHandle,
    kind: DutKind,
    work: &std::path::Path,
    r: &mut DutResult,
) -> Result<()> {
    let plan = FlowPlan::new(cfg.flows, cfg.labels, kind.egress(), kind.profile());
    let dut = Dut::start(kind, &plan, &cfg.bins, cfg.dut_core, work)?;
    if cfg.gen != GenKind::Xsk {
        topology::dut0_napi()?;
    }
    if cfg.threaded_napi {
        topology::threaded_napi(
            cfg.dut_core,
            cfg.gen_core,
            cfg.napi_defer_ns,
            cfg.gen == GenKind::Relay,
        )?;
        if kind == DutKind::Kernel {
            // dut0's receive thread already runs on the DUT core: RPS would
            // only queue every packet once more to the same core's backlog.
            orbitmesh_lab::exec_in(
                topology::DUT_NS,
                &[
                    "sh",
                    "-c",
                    &format!(
                        "echo 0 > /sys/class/net/{}/queues/rx-0/rps_cpus",
                        topology::DUT_IN
                    ),
                ],
            )?;
        }
    }
    let mut b = Bench {
        engine,
        cfg,
        trial_no: 0,
        label: kind.name().into(),
        sending: Default::default(),
        perf: None,
        gaps: if cfg.threaded_napi {
            crate::sys::napi_gap::NapiGap::attach(
                cfg.dut_core as u32,
                topology::DUT_IN,
                STALL_MIN_NS,
                cfg.gen_core as u32,
                match cfg.gen {
                    GenKind::Xsk => crate::sys::napi_gap::Refusals::Xsk,
                    GenKind::Relay | GenKind::Live => crate::sys::napi_gap::Refusals::Relay,
                },
            )
            .map_err(|e| orbitmesh_core::errln!("orbitmesh-bench: no watch on dut0's polls: {e:#}"))
            .ok()
        } else {
            None
        },
    };
    // Probe: a short low-rate trial must get through, else nothing below means anything.
    let probe = b.trial(
        &dut,
        plan,
        SizeMix::Fixed(kind.profile().min_size()),
        10_000.0,
        Duration::from_millis(500),
        0.0,
    )?;
    if probe.stats.sink.received == 0 {
        bail!(
            "the DUT forwarded nothing at 10 kpps (sent {}, sink saw {} foreign frames); DUT log: {}",
            probe.stats.sent,
            probe.stats.sink.foreign,
            dut.log_tail()
        );
    }
    // Frames no shorter than the DUT's profile needs (IPv6 headers).
    let fit = |mix: SizeMix| match mix {
        SizeMix::Fixed(n) => SizeMix::Fixed(n.max(kind.profile().min_size())),
        m => m,
    };
    for &mix in &cfg.sizes {
        r.sizes
            .push(measure_size(&mut b, &dut, plan, kind, fit(mix))?);
    }
    if let (Some(&mix), Some(first)) = (cfg.sizes.first(), r.sizes.first()) {
        let mix = fit(mix);
        let tput = first.search.throughput_pps;
        for &rate in &cfg.cost_rates {
            b.label = format!("{} {}B at {:.2} Mpps", kind.name(), mix.label(), rate / 1e6);
            let load = if tput > 0.0 { rate / tput } else { 0.0 };
            r.cost
                .push(b.trial(&dut, plan, mix, rate, cfg.latency_trial, load)?);
        }
    }
    if let (Some(&mix), Some(first)) = (cfg.sizes.first(), r.sizes.first()) {
        let tput = first.search.throughput_pps;
        if cfg.profile_load > 0.0 && tput > 0.0 && cpu::have_tool("perf") {
            let mix = fit(mix);
            let data = work.join(format!("perf-{}.data", kind.name()));
            b.label = format!(
                "{} profile at {:.0}%",
                kind.name(),
                cfg.profile_load * 100.0
            );
            b.perf = Some(data.clone());
            let rate = tput * cfg.profile_load;
            let trial = b.trial(&dut, plan, mix, rate, cfg.latency_trial, cfg.profile_load)?;
            r.profile = Some(ProfileResult {
                trial,
                top: perf_top(&data),
            });
            let _ = std::fs::remove_file(&data);
        }
    }
    if matches!(
        kind,
        DutKind::Orbitmesh | DutKind::OrbitmeshXdp | DutKind::OrbitmeshXdpBusy
    ) && cfg.swap_rate > 0.0
    {
        let base = r
            .sizes
            .first()
            .map(|s| (s.search.throughput_pps, s.size.clone()))
            .filter(|(t, _)| *t > 0.0);
        if let Some((tput, size)) = base {
            let mix = SizeMix::parse(&size).map_err(anyhow::Error::msg)?;
            r.swap = Some(swap_under_load(
                cfg,
                &mut b,
                &dut,
                plan,
                mix,
                tput * cfg.swap_load,
            )?);
        }
    }
    Ok(())
}

/// The symbols above 1% of a cpu-clock profile (`perf report`), or why not.
fn perf_top(data: &std::path::Path) -> String {
    let out = std::process::Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--sort",
            "cpu,dso,sym",
            "--percent-limit",
            "1",
            "--stdio",
            "-g",
            "none",
            "-i",
        ])
        .arg(data)
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .take(40)
            .map(|l| l.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(o) => format!(
            "perf report failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("perf report: {e}"),
    }
}

/// Alternates between two FIBs that forward every flow to the same port
/// but with different labels (A: each label to itself, B: to itself + 1;
/// versions 1 and 2, published with one pointer swap each: `Exchange`
/// re-publishes the previous one) while traffic runs: `swaps` swaps
/// (or `swap_rate` a second for `swap_trial`), all inside the trial's
/// sending phase. The sink counts each frame by the label it carries:
/// A's or B's is correct, anything else (or the wrong port) misforwarded.
fn swap_under_load(
    cfg: &SuiteCfg,
    b: &mut Bench<'_>,
    dut: &Dut,
    plan: FlowPlan,
    mix: SizeMix,
    rate: f64,
) -> Result<SwapResult> {
    use orbitmesh_core::protocol::{call, Request, Response};
    use std::sync::atomic::Ordering;
    let name = dut.kind.name();
    let sock = dut
        .socket
        .clone()
        .context("orbitmesh-dp without a control socket")?;
    let (trial_len, limit) = if cfg.swaps > 0 {
        // Room for every swap, plus a margin for the first call.
        let secs = cfg.swaps as f64 / cfg.swap_rate + 0.5;
        (Duration::from_secs_f64(secs), cfg.swaps)
    } else {
        (cfg.swap_trial, u64::MAX)
    };
    // The same trial without swaps first: loss that is not the swaps' doing.
    b.label = format!("{name} no swaps at {:.0}%", cfg.swap_load * 100.0);
    let control = b.trial(dut, plan, mix, rate, trial_len, cfg.swap_load)?;
    let plan_ab = plan.with_alt_labels(1);
    match call(
        &sock,
        &Request::LoadFib {
            fib: dut::fib_spec(&plan_ab, 2, true),
            allow_empty: false,
        },
    ) {
        Ok(Response::Ok { .. }) => {}
        other => bail!("loading the second FIB: {other:?}"),
    }
    // Back to A, so the trial starts on A and the first swap goes to B.
    match call(&sock, &Request::Exchange) {
        Ok(Response::Ok { .. }) => {}
        other => bail!("swapping back to the first FIB: {other:?}"),
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let period = Duration::from_secs_f64(1.0 / cfg.swap_rate);
    let (s2, sock2, sending) = (stop.clone(), sock.clone(), b.sending.clone());
    let gen_core = cfg.gen_core;
    let swapper = std::thread::spawn(move || {
        // The harness's own work stays on the generator's core: a swap
        // call run on the DUT's core would take its time from the DUT.
        if !core_affinity::set_for_current(core_affinity::CoreId { id: gen_core }) {
            orbitmesh_core::errln!(
                "swap thread: could not pin to CPU {gen_core}; it runs where the scheduler puts it"
            );
        }
        let (mut done, mut errors, mut total, mut max) =
            (0u64, 0u64, Duration::ZERO, Duration::ZERO);
        while !sending.load(Ordering::SeqCst) {
            if s2.load(Ordering::SeqCst) {
                return (done, errors, total, max);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut next = Instant::now();
        while sending.load(Ordering::SeqCst) && !s2.load(Ordering::SeqCst) && done < limit {
            let t = Instant::now();
            match call(&sock2, &Request::Exchange) {
                Ok(Response::Ok { .. }) => done += 1,
                _ => errors += 1,
            }
            let took = t.elapsed();
            total += took;
            max = max.max(took);
            next += period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        (done, errors, total, max)
    });
    b.label = format!(
        "{name} swap {:.0}/s at {:.0}%",
        cfg.swap_rate,
        cfg.swap_load * 100.0
    );
    // No re-run: the swaps happen once, in this trial's sending phase.
    let rec = b.trial_retrying(dut, plan_ab, mix, rate, trial_len, cfg.swap_load, 0);
    stop.store(true, Ordering::SeqCst);
    let (done, errors, total, max) = swapper
        .join()
        .map_err(|_| anyhow::anyhow!("swap thread panicked"))?;
    let rec = rec?;
    let version = match call(&sock, &Request::Stats) {
        Ok(Response::Stats(s)) => s.fib_version,
        _ => 0,
    };
    let calls = (done + errors).max(1) as f64;
    orbitmesh_core::errln!(
        "\r\x1b[K{name} swaps: {done} swaps ({errors} errors) at {:.3} Mpps: sent {}, lost {}, misforwarded {}, by FIB B {}",
        rate / 1e6,
        rec.stats.sent,
        rec.stats.lost,
        rec.stats.sink.misforwarded(),
        rec.stats.sink.alt_label
    );
    Ok(SwapResult {
        swaps_asked_per_s: cfg.swap_rate,
        swaps_done: done,
        swap_errors: errors,
        fib_version_end: version,
        swap_call_mean_ms: total.as_secs_f64() * 1e3 / calls,
        swap_call_max_ms: max.as_secs_f64() * 1e3,
        trial: rec,
        control,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::napi_gap::PollGaps;

    #[test]
    fn the_live_generator_refuses_what_it_cannot_stamp() {
        let live = GenKind::Live;
        assert!(live.sends(Profile::Mpls, SizeMix::Fixed(64)).is_ok());
        assert!(live.sends(Profile::Ipv4, SizeMix::Fixed(132)).is_ok());
        for (p, s) in [
            (Profile::Ipv6, SizeMix::Fixed(64)),
            (Profile::Mixed, SizeMix::Fixed(64)),
            (Profile::Mpls, SizeMix::Fixed(136)),
            (Profile::Mpls, SizeMix::Fixed(66)),
            (Profile::Mpls, SizeMix::Imix),
        ] {
            assert!(live.sends(p, s).is_err(), "{p:?} {s:?}");
            assert!(GenKind::Xsk.sends(p, s).is_ok());
        }
    }

    fn lossy(lost: u64, refused_away: u64) -> TrialRecord {
        let mut r = TrialRecord::default();
        r.stats.sent = 100_000;
        r.stats.lost = lost;
        r.stats.loss_ratio = lost as f64 / 100_000.0;
        r.dut0_polls = Some(PollGaps {
            max_gap_ns: 1_500_000,
            refused: refused_away,
            refused_away,
            ..PollGaps::default()
        });
        r
    }

    #[test]
    fn a_generator_held_long_enough_to_fill_the_ring_disturbs_the_trial() {
        let mut r = lossy(3, 0);
        r.stats.offered_pps = 500_000.0;
        let held = |r: &mut TrialRecord, silence_ns: u64| {
            r.dut0_polls.as_mut().unwrap().gen_max_silence_ns = silence_ns;
            gen_core_held(r, 512)
        };
        // 256 frames at 0.5 Mpps fall due in 512 us, beyond the 250-us beat.
        assert!(held(&mut r, 762_000));
        assert!(!held(&mut r, 761_000));
        // At 0.15 Mpps it takes 1.7 ms more than a beat.
        r.stats.offered_pps = 150_000.0;
        assert!(!held(&mut r, 1_900_000));
        assert!(held(&mut r, 1_957_000));
        // A generator that catches up on fewer than a ring's frames sends
        // no burst that could fill it, however long the hold.
        assert!(!gen_core_held(&r, 255) && gen_core_held(&r, 256));
        // Beats on time, or no watch: nothing seen.
        assert!(!held(&mut r, 250_000));
        r.dut0_polls = None;
        assert!(!gen_core_held(&r, 512));
    }

    #[test]
    fn only_frames_refused_while_the_core_was_away_are_the_testbeds() {
        // All 12 lost were refused while the core was away: the DUT lost none.
        let r = lossy(12, 12);
        assert_eq!(r.testbed_lost(), 12);
        assert!(ring_loss_in_a_stall(&r));
        assert_eq!(r.charged_lost(false), 0);
        assert_eq!(r.charged_lost(true), 12);
        let o = outcome(&r, false);
        assert_eq!((o.loss_ratio, o.stalled, o.testbed_lost), (0.0, false, 12));
        let o = outcome(&r, true);
        assert!(o.loss_ratio > 0.0 && o.stalled);
        // Two more lost elsewhere still fail the trial, and then it is
        // the DUT's, even when charging the testbed's to it.
        let r = lossy(14, 12);
        assert_eq!(r.charged_lost(false), 2);
        assert!(outcome(&r, false).loss_ratio > 0.0);
        assert!(!ring_loss_in_a_stall(&r) && !outcome(&r, true).stalled);
        // Never more than were lost (a refused frame counted, then duplicated).
        assert_eq!(lossy(5, 12).testbed_lost(), 5);
        // None refused while away, nothing lost, or no watch: nothing excused.
        assert!(!ring_loss_in_a_stall(&lossy(12, 0)));
        assert_eq!(lossy(0, 12).charged_lost(false), 0);
        let mut r = lossy(12, 12);
        r.dut0_polls = None;
        assert_eq!((r.testbed_lost(), r.charged_lost(false)), (0, 12));
        assert!(!ring_loss_in_a_stall(&r));
    }
}
