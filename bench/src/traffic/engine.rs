//! The trial loop: one thread, pinned to the generator's core, both
//! generating and sinking (so the two never compete for the core through
//! the scheduler).
//!
//! Rate control is a token bucket evaluated once per loop pass: the frames
//! due by now (`rate x elapsed`) minus those sent, sent once at least what
//! falls due in `batch_gap_ns` has gathered, at most one batch (64)
//! per pass, one `produce` and one wake-up per 32 frames. Both ends use
//! the dataplane's own I/O ([`dataplane::ring::PacketIo`] over
//! [`XskIo`]): the generator allocates frames from its UMEM's pool, writes
//! them in place and transmits them as a batch; the sink receives batches. If the generator
//! falls behind by more than [`TrialSpec::catch_up`] frames (default
//! [`MAX_DEFICIT`]) the excess is not sent
//! but counted (`gen_skipped`): the offered rate was not reached and the
//! result names the generator as the limit (RFC 2544 section 26.1 asks for
//! the offered rate to be the one actually offered). Frames carry the
//! batch's TX time; the sink reads the clock once per received batch.
//! After the sending phase the sink keeps draining for `drain` (RFC 2544
//! section 23: wait for frames in flight before counting).
//!
//! With a [`Relay`] the socket sends on one end of a veth pair whose other
//! end redirects every frame by XDP to the generator's port
//! ([`crate::sys::gen_relay`]): the DUT then receives XDP frames, as from a
//! NIC, instead of socket buffers (the skb-to-page copy an XDP DUT pays on
//! veth moves to the generator's core).
//!
//! With [`EngineCfg::live`] the frames come from the kernel itself
//! ([`crate::sys::gen_live`]: BPF_PROG_TEST_RUN with live frames, the same
//! schedule and stamps): XDP frames as from a NIC, with no socket buffer
//! and no copy on either core. Its one call per trial runs on a second
//! thread pinned to the same core, and this thread sinks meanwhile at
//! SCHED_FIFO [`LIVE_SINK_PRIO`], sleeping in poll() when nothing came:
//! it runs as soon as frames arrive, the generator the rest of the time.

use super::flows::{FlowTable, SinkCounts};
use super::frame::{self, FlowPlan, Macs, Profile, SizeMix};
use crate::sys::gen_live::{GenLive, Interrupt, LiveCfg};
use crate::sys::gen_relay::GenRelay;
use crate::sys::sched;
use anyhow::{bail, Context, Result};
use dataplane::ring::{Batch, PacketIo, MAX_BATCH};
use dataplane::sys::xdp::Steering;
use dataplane::sys::xsk::{XskConfig, XskIo};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Default of [`TrialSpec::catch_up`]: frames the generator may lag behind
/// its schedule before it gives up on them.
pub const MAX_DEFICIT: u64 = 512;

/// Chunks of the generator's UMEM (all for sending: its socket receives nothing).
const GEN_FRAMES: u32 = 4096;

/// The sink's SCHED_FIFO priority while the live generator runs: below
/// the NAPI threads' (harness::topology::NAPI_FIFO_PRIO, 50), which feed it.
pub const LIVE_SINK_PRIO: u32 = 40;

/// How long after the live generator's call is made its schedule starts
/// (the call first waits for an RCU grace period: 12-24 ms measured).
pub const LIVE_LEAD: Duration = Duration::from_millis(100);

/// Default of [`TrialSpec::batch_gap_ns`].
pub const MAX_BATCH_GAP_NS: u64 = 50_000;

/// A relay in front of the generator's port: the socket sends on `src`,
/// whose veth peer `peer` redirects every frame out of the generator's port.
#[derive(Debug, Clone)]
pub struct Relay {
    pub src: String,
    pub peer: String,
}

/// Where the traffic thread runs and which interfaces it uses.
#[derive(Debug, Clone)]
pub struct EngineCfg {
    /// Network namespace to enter (None: stay).
    pub netns: Option<String>,
    /// Core to pin the thread to.
    pub core: Option<usize>,
    pub gen_iface: String,
    /// Egress port i of the DUT is received on `sink_ifaces[i]`.
    pub sink_ifaces: Vec<String>,
    pub macs: Macs,
    /// The sink runs its ports' receive NAPI itself, by kernel busy
    /// polling (`SO_PREFER_BUSY_POLL`, budget 64) in its own thread,
    /// instead of leaving it to softirq or NAPI threads on its core, which
    /// cost a cross-core wake-up and a context switch per notification.
    pub sink_busy_poll: bool,
    /// Send through a relay (None: the socket sends on `gen_iface`).
    pub relay: Option<Relay>,
    /// The kernel generates the frames (`--gen live`; not with `relay`).
    pub live: bool,
}

/// One trial.
#[derive(Debug, Clone, Copy)]
pub struct TrialSpec {
    pub trial: u16,
    pub rate_pps: f64,
    pub duration: Duration,
    pub drain: Duration,
    pub mix: SizeMix,
    pub plan: FlowPlan,
    /// The generator gathers what falls due in this time (at most 32
    /// frames) into one batch, so a low rate does not cost one system call
    /// per frame; smaller = smoother, larger = cheaper.
    pub batch_gap_ns: u64,
    /// Frames the generator may lag behind its schedule and still send
    /// (as fast as it can, a batch per pass); beyond that it skips them.
    /// After the host held the generator's core, this is the burst the
    /// DUT receives (bench/results/2026-12-01-busy-polls/); at least 1.
    pub catch_up: u64,
}

/// Latency percentiles of a trial (ns), from the HDR histogram.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub samples: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// What a trial measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrialStats {
    pub trial: u16,
    pub size: String,
    pub offered_pps: f64,
    /// Seconds of sending.
    pub seconds: f64,
    /// Frames handed to the TX ring.
    pub sent: u64,
    /// Frames the kernel reported transmitted (completion ring).
    pub completed: u64,
    /// Frames not sent because the generator fell behind.
    pub gen_skipped: u64,
    /// Achieved sending rate.
    pub sent_pps: f64,
    pub lost: u64,
    pub loss_ratio: f64,
    pub delivered_pps: f64,
    pub sink: SinkCounts,
    pub latency: Latency,
    /// CPU time of the traffic thread during the sending phase.
    pub gen_thread_cpu_ns: u64,
}

impl TrialStats {
    /// True when the generator could not offer the asked rate (within 2%).
    pub fn generator_limited(&self) -> bool {
        self.sent_pps < self.offered_pps * 0.98
    }
}

/// Phases the trial reports as it goes, so the caller samples DUT CPU time
/// over exactly the sending phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Sending,
    Draining,
}

enum Msg {
    Phase(Phase),
    Done(Box<Result<TrialStats>>),
}

/// The traffic thread and its channels.
#[derive(Debug)]
pub struct EngineHandle {
    cmd: Option<mpsc::Sender<TrialSpec>>,
    out: mpsc::Receiver<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub zero_copy: bool,
}

impl EngineHandle {
    /// Starts the thread: enter the namespace, pin, open the sockets, load
    /// the sink's XDP program. Errors (missing or busy interface) come back here.
    pub fn start(cfg: EngineCfg) -> Result<EngineHandle> {
        let (cmd_tx, cmd_rx) = mpsc::channel::<TrialSpec>();
        let (out_tx, out_rx) = mpsc::channel::<Msg>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<bool>>();
        let thread = std::thread::Builder::new()
            .name("obh-traffic".into())
            .spawn(move || {
                let mut engine = match Engine::new(&cfg) {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(e.tx.zero_copy()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(spec) = cmd_rx.recv() {
                    let r = engine.run(&spec, &mut |p| {
                        let _ = out_tx.send(Msg::Phase(p));
                    });
                    if out_tx.send(Msg::Done(Box::new(r))).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the traffic thread")?;
        let zero_copy = match ready_rx.recv() {
            Ok(Ok(z)) => z,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                anyhow::bail!("the traffic thread died while starting");
            }
        };
        Ok(EngineHandle {
            cmd: Some(cmd_tx),
            out: out_rx,
            thread: Some(thread),
            zero_copy,
        })
    }

    /// Runs one trial; `on_phase` is called as the sending phase starts and ends.
    pub fn trial(&self, spec: TrialSpec, on_phase: &mut dyn FnMut(Phase)) -> Result<TrialStats> {
        self.cmd
            .as_ref()
            .expect("live until drop")
            .send(spec)
            .map_err(|_| anyhow::anyhow!("the traffic thread is gone"))?;
        loop {
            match self.out.recv() {
                Ok(Msg::Phase(p)) => on_phase(p),
                Ok(Msg::Done(r)) => return *r,
                Err(_) => anyhow::bail!("the traffic thread is gone"),
            }
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.cmd.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Engine {
    // Sockets before the XDP program: nothing is redirected to a closed socket.
    /// The generator: a transmit-only socket on `gen_iface`, port 0.
    tx: XskIo,
    /// Frames being written and sent, and the template id each chunk of
    /// the generator's UMEM holds (u32::MAX: none), so a recycled chunk
    /// usually needs only its stamp rewritten.
    tx_batch: Batch,
    held: Vec<u32>,
    sink: XskIo,
    sink_batch: Batch,
    _steering: Steering,
    _relay: Option<GenRelay>,
    /// The in-kernel generator (its templates are `templates`).
    live: Option<GenLive>,
    core: Option<usize>,
    sink_ports: usize,
    macs: Macs,
    base: Instant,
    /// CLOCK_MONOTONIC at `base` (the live generator's stamps).
    base_mono: u64,
    templates: Vec<Vec<u8>>,
    templates_for: Option<(u16, u32, u8, Profile, SizeMix)>,
    passes: u32,
    sink_got: usize,
    /// The sink busy polls its ports ([`EngineCfg::sink_busy_poll`]).
    sink_busy_poll: bool,
}

impl Engine {
    fn new(cfg: &EngineCfg) -> Result<Engine> {
        if let Some(ns) = &cfg.netns {
            crate::sys::netns::enter(ns)?;
        }
        if let Some(c) = cfg.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                anyhow::bail!("cannot pin the traffic thread to CPU {c}");
            }
        }
        dataplane::sys::xdp::raise_memlock();
        let relay_ifs = cfg.relay.iter().flat_map(|r| [&r.src, &r.peer]);
        for i in std::iter::once(&cfg.gen_iface)
            .chain(&cfg.sink_ifaces)
            .chain(relay_ifs)
        {
            if dataplane::sys::xdp::ifindex(i).is_err() {
                anyhow::bail!(
                    "interface {i} does not exist{}",
                    cfg.netns
                        .as_ref()
                        .map(|n| format!(" in namespace {n}"))
                        .unwrap_or_default()
                );
            }
        }
        let gen_cfg = XskConfig {
            frames: GEN_FRAMES,
            receive: false,
            ..XskConfig::default()
        };
        let gen_on = cfg.relay.as_ref().map_or(&cfg.gen_iface, |r| &r.src);
        let tx = XskIo::new(std::slice::from_ref(gen_on), 0, gen_cfg)
            .with_context(|| format!("generator on {gen_on} (does it exist, is it up, is another AF_XDP socket bound to it?)"))?;
        let relay = match &cfg.relay {
            Some(r) => Some(GenRelay::attach(&r.peer, &cfg.gen_iface)?),
            None => None,
        };
        if cfg.live && cfg.relay.is_some() {
            bail!("the live generator sends on the generator's port itself: no relay with it");
        }
        let live = match cfg.live {
            true => Some(GenLive::load(&cfg.gen_iface)?),
            false => None,
        };
        let sink_cfg = XskConfig {
            busy_poll_budget: cfg.sink_busy_poll.then_some(crate::sys::busy::BUDGET),
            ..XskConfig::default()
        };
        let sink = XskIo::new(&cfg.sink_ifaces, 0, sink_cfg)
            .with_context(|| format!("sink on {}", cfg.sink_ifaces.join(",")))?;
        let ports: Vec<(String, bool)> =
            cfg.sink_ifaces.iter().map(|i| (i.clone(), true)).collect();
        let mut steering =
            Steering::load(&ports, false, false, dataplane::sys::xdp::Program::Steer)
                .with_context(|| {
                    format!(
                        "sink XDP program on {} (busy interface?)",
                        cfg.sink_ifaces.join(",")
                    )
                })?;
        for slot in 0..ports.len() {
            steering.set_socket(slot, 0, sink.fd(slot))?;
        }
        Ok(Engine {
            tx,
            tx_batch: Batch::new(),
            held: vec![u32::MAX; GEN_FRAMES as usize],
            sink,
            sink_batch: Batch::new(),
            _steering: steering,
            _relay: relay,
            live,
            core: cfg.core,
            sink_ports: ports.len(),
            macs: cfg.macs,
            base: Instant::now(),
            base_mono: dataplane::sys::clock::monotonic_ns(),
            templates: Vec::new(),
            templates_for: None,
            passes: 0,
            sink_got: 1,
            sink_busy_poll: cfg.sink_busy_poll,
        })
    }

    #[inline]
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Builds the flows' frames when they changed, and hands them to the
    /// live generator if there is one (which refuses frames of more than
    /// one length, or too long: then nothing is kept, and the next trial
    /// tries again).
    fn prepare(&mut self, plan: &FlowPlan, mix: SizeMix) -> Result<()> {
        let key = (plan.flows, plan.labels, plan.egress, plan.profile, mix);
        if self.templates_for == Some(key) {
            return Ok(());
        }
        let classes = mix.classes();
        self.templates = (0..plan.flows)
            .flat_map(|f| classes.iter().map(move |&s| (f, s)))
            .map(|(f, s)| frame::build(plan, &self.macs, f, s))
            .collect();
        self.held.fill(u32::MAX);
        self.templates_for = None;
        if let Some(live) = self.live.as_mut() {
            live.set_templates(&self.templates)?;
        }
        self.templates_for = Some(key);
        Ok(())
    }

    /// A sink pass, or, when it found nothing, up to 1 ms asleep in poll()
    /// until frames come (the live generator's sink, which must leave the
    /// core to the generator while idle).
    fn sink_or_sleep(&mut self, table: &mut FlowTable) {
        if self.sink_pass(table) == 0 {
            self.sink.wait(1);
        }
    }

    /// One sink pass over every port; returns frames received.
    #[inline]
    fn sink_pass(&mut self, table: &mut FlowTable) -> usize {
        // Refill (and, in copy mode, the fill ring's wake-up: a system call)
        // only after frames arrived or every 64 passes, not on every pass.
        self.passes = self.passes.wrapping_add(1);
        if self.sink_got > 0 || self.passes & 63 == 0 {
            let mut short = [0u64; orbitmesh_core::fib::MAX_PORTS];
            self.sink.reclaim_and_refill(&mut short);
        }
        if self.sink_busy_poll {
            // A non-blocking recvfrom per port: its NAPI runs here where
            // the socket has one (not on veth: harness::dut).
            self.sink.busy_poll();
        }
        let mut got = 0;
        for p in 0..self.sink_ports {
            let now = self.now_ns();
            let n = self.sink.rx(p, &mut self.sink_batch);
            if n == 0 {
                continue;
            }
            self.sink
                .with_data(&mut self.sink_batch, &mut |bufs, chunks| {
                    for (b, c) in bufs.iter().zip(chunks.iter()) {
                        let f = c.get(b.head()..b.head() + b.len()).unwrap_or_default();
                        table.record(p as u8, frame::parse(f), now);
                    }
                });
            // Every frame goes back to the fill ring.
            self.sink.free(&mut self.sink_batch);
            got += n;
        }
        self.sink_got = got;
        got
    }

    /// Reclaims sent frames and, in copy mode, kicks the kernel to send
    /// what waits on the TX ring (sendto: at most 32 frames per call).
    #[inline]
    fn tx_service(&mut self) {
        self.tx.reclaim_and_refill(&mut [0]);
    }

    /// Posts up to `n` frames. The `i`-th is `templates[pick(i)]` (copied
    /// only if its chunk holds another template), then `stamp(i, frame)`
    /// writes the per-frame fields. Returns how many frames went onto the
    /// TX ring.
    #[inline]
    fn send(
        &mut self,
        n: usize,
        templates: &[Vec<u8>],
        mut pick: impl FnMut(usize) -> usize,
        mut stamp: impl FnMut(usize, &mut [u8]),
    ) -> usize {
        if self.tx.alloc(&mut self.tx_batch, n) == 0 {
            return 0;
        }
        let held = &mut self.held;
        let chunk = XskConfig::default().frame_size as usize;
        self.tx.with_data(&mut self.tx_batch, &mut |bufs, chunks| {
            for (i, (b, c)) in bufs.iter_mut().zip(chunks.iter_mut()).enumerate() {
                let id = pick(i);
                let bytes = &templates[id][..];
                let (h, len) = (b.head(), bytes.len());
                let Some(buf) = c.get_mut(h..h + len) else {
                    continue; // longer than a chunk: sent empty, counted lost
                };
                let slot = &mut held[b.addr() as usize / chunk];
                if *slot != id as u32 {
                    buf.copy_from_slice(bytes);
                    *slot = id as u32;
                }
                stamp(i, buf);
                b.set_data(h, len);
            }
        });
        let k = self.tx.tx(0, &mut self.tx_batch);
        // What the ring would not take goes back (its template stays valid).
        self.tx.free(&mut self.tx_batch);
        k
    }

    fn run(&mut self, spec: &TrialSpec, on_phase: &mut dyn FnMut(Phase)) -> Result<TrialStats> {
        let plan = spec.plan;
        self.prepare(&plan, spec.mix)?;
        let flows = plan.flows as u64;
        let budget = (spec.rate_pps * spec.duration.as_secs_f64()).ceil() as u64;
        let per_flow = (budget / flows + 2) as u32;
        let mut table = FlowTable::new(plan, spec.trial, per_flow);
        // Leftovers of the previous trial (counted as stale, then forgotten).
        let quiet = self.now_ns() + 20_000_000;
        while self.now_ns() < quiet {
            self.sink_pass(&mut table);
            self.tx_service();
        }
        table.counts = SinkCounts::default();
        let completed0 = self.tx.completed();
        let cpu0 = thread_cpu_ns();
        let (t0, sent, skipped, live_cpu, t_end) = if self.live.is_some() {
            self.send_live(spec, budget, &mut table, on_phase)?
        } else {
            on_phase(Phase::Sending);
            let t0 = self.now_ns();
            let (sent, skipped) = self.send_paced(spec, budget, t0, &mut table)?;
            let t_end = self.now_ns();
            on_phase(Phase::Draining);
            (t0, sent, skipped, 0, t_end)
        };
        let t_send = (t_end - t0) as f64 / 1e9;
        let cpu1 = thread_cpu_ns() + live_cpu;
        let end = self.now_ns() + spec.drain.as_nanos() as u64;
        while self.now_ns() < end {
            self.tx_service();
            if self.sink_pass(&mut table) == 0 {
                std::hint::spin_loop();
            }
        }
        let sent_per_flow: Vec<u32> = (0..flows)
            .map(|f| (sent / flows + u64::from(f < sent % flows)) as u32)
            .collect();
        let lost = table.lost(&sent_per_flow);
        let latency = latency_of(&table.latency);
        Ok(TrialStats {
            trial: spec.trial,
            size: spec.mix.label(),
            offered_pps: spec.rate_pps,
            seconds: t_send,
            sent,
            // (The live generator's frames have no completion ring.)
            completed: if self.live.is_some() {
                sent
            } else {
                self.tx.completed() - completed0
            },
            gen_skipped: skipped,
            sent_pps: sent as f64 / t_send.max(1e-9),
            lost,
            loss_ratio: if sent > 0 {
                lost as f64 / sent as f64
            } else {
                0.0
            },
            delivered_pps: table.counts.received as f64 / t_send.max(1e-9),
            sink: table.counts,
            latency,
            gen_thread_cpu_ns: cpu1.saturating_sub(cpu0),
        })
    }

    /// The live generator's schedule for this trial (the same as
    /// [`Engine::send_paced`]'s; its templates are [`Engine::prepare`]'s,
    /// one length at most [`crate::sys::gen_live::LIVE_MAX_LEN`]).
    /// Refused: stamps that need a checksum update (IPv6), or that do not
    /// fit the frame.
    fn live_cfg(&self, spec: &TrialSpec, budget: u64, t0: u64) -> Result<LiveCfg> {
        let plan = spec.plan;
        let at = plan.stamp_at(0);
        if at.udp_csum.is_some() || (0..plan.flows).any(|f| plan.stamp_at(f) != at) {
            bail!("--gen live writes stamps that need no checksum update: MPLS or IPv4 flows only");
        }
        let len = self.templates.first().map_or(0, Vec::len);
        if at.at + frame::STAMP_LEN > len {
            bail!("--gen live: a {len}-byte frame has no room for its stamp");
        }
        // 32.32 fixed point frames per ns; the program multiplies it by
        // the time since t0 (< 2^37 ns) in 64 bits.
        let rate = (spec.rate_pps / 1e9 * 4_294_967_296.0) as u64;
        let dur = spec.duration.as_nanos() as u64;
        if rate >= 1 << 26 || dur >= 1 << 37 {
            bail!("--gen live: a rate under 67 Gpps and trials under 137 s");
        }
        let start = self.base_mono + t0;
        Ok(LiveCfg {
            t0: start,
            end: start + dur,
            base: self.base_mono,
            rate,
            budget,
            catch_up: spec.catch_up,
            flows: u32::from(plan.flows),
            words: (len / 4) as u32,
            stamp_at: at.at as u32,
            trial: u32::from(spec.trial),
        })
    }

    /// The sending phase with the live generator: its call on a second
    /// thread pinned to this core, this thread sinking at SCHED_FIFO
    /// [`LIVE_SINK_PRIO`] meanwhile, asleep in poll() when nothing came.
    /// The schedule starts [`LIVE_LEAD`] after the call is made (which
    /// first swaps the program into the XDP dispatcher: an RCU grace
    /// period, 12-24 ms here), so its first frames are not a catch-up
    /// burst; the sending phase (`Phase::Sending` to `Phase::Draining`)
    /// is the schedule's, not the call's. Returns (its start and end on
    /// this clock, sent, skipped, the generator thread's CPU ns) as
    /// (t0, sent, skipped, cpu, t_end).
    fn send_live(
        &mut self,
        spec: &TrialSpec,
        budget: u64,
        table: &mut FlowTable,
        on_phase: &mut dyn FnMut(Phase),
    ) -> Result<(u64, u64, u64, u64, u64)> {
        let t0 = self.now_ns() + LIVE_LEAD.as_nanos() as u64;
        let cfg = self.live_cfg(spec, budget, t0)?;
        let mut live = self.live.take().context("no live generator")?;
        let r = live
            .start(&cfg)
            .and_then(|()| self.run_live(&live, &cfg, table, on_phase));
        let state = live.state();
        self.live = Some(live);
        let (cpu, t_end) = r?;
        let st = state?;
        Ok((t0, st.sent, st.skipped, cpu, t_end))
    }

    fn run_live(
        &mut self,
        live: &GenLive,
        cfg: &LiveCfg,
        table: &mut FlowTable,
        on_phase: &mut dyn FnMut(Phase),
    ) -> Result<(u64, u64)> {
        let stop = Interrupt::default();
        let core = self.core;
        let start = cfg.t0 - self.base_mono;
        let end = cfg.end - self.base_mono;
        std::thread::scope(|sc| {
            let gen = std::thread::Builder::new()
                .name("obh-live-gen".into())
                .spawn_scoped(sc, || -> Result<u64> {
                    if let Some(c) = core {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                            bail!("cannot pin the live generator to CPU {c}");
                        }
                    }
                    let c0 = thread_cpu_ns();
                    live.run(&stop)?;
                    Ok(thread_cpu_ns().saturating_sub(c0))
                })
                .context("spawning the live generator's thread")?;
            let fifo = sched::this_thread(Some(LIVE_SINK_PRIO));
            while self.now_ns() < start && !gen.is_finished() {
                self.sink_or_sleep(table);
            }
            on_phase(Phase::Sending);
            let mut checks = 0u32;
            while self.now_ns() < end && !gen.is_finished() {
                self.sink_or_sleep(table);
                checks += 1;
                if checks & 1023 == 0 && dataplane::sys::signal::stop_requested() {
                    break;
                }
            }
            // The program sends nothing after `end`; end its call.
            let t_end = self.now_ns().min(end);
            on_phase(Phase::Draining);
            while !gen.is_finished() {
                stop.fire();
                self.sink_or_sleep(table);
            }
            if fifo.is_ok() {
                let _ = sched::this_thread(None);
            }
            let cpu = gen
                .join()
                .map_err(|_| anyhow::anyhow!("the live generator's thread panicked"))??;
            fifo.context("the sink's SCHED_FIFO for the live generator (root needed)")?;
            if dataplane::sys::signal::stop_requested() {
                bail!("interrupted");
            }
            Ok((cpu, t_end))
        })
    }

    /// The sending phase from `t0`: frames at `spec.rate_pps` in batches of
    /// what is due, at most `budget`, sinking as it goes; returns (sent,
    /// skipped: frames the generator fell too far behind to send).
    fn send_paced(
        &mut self,
        spec: &TrialSpec,
        budget: u64,
        t0: u64,
        table: &mut FlowTable,
    ) -> Result<(u64, u64)> {
        let plan = spec.plan;
        let flows = plan.flows as u64;
        let nclasses = spec.mix.classes().len();
        // Per flow: the mixed profile's flows have their stamps at different offsets.
        let stamp_at: Vec<frame::StampAt> = (0..plan.flows).map(|f| plan.stamp_at(f)).collect();
        let dur_ns = spec.duration.as_nanos() as u64;
        let mut sent = 0u64;
        let mut skipped = 0u64;
        let trial = spec.trial;
        let mix = spec.mix;
        let rate = spec.rate_pps;
        let mut stop_check = 0u32;
        // Frames per wake-up: what is due in batch_gap_ns (one system call
        // per frame would cap the rate far below what the ring can do).
        let min_batch = ((rate * spec.batch_gap_ns as f64 / 1e9) as usize).clamp(1, 32);
        loop {
            let now = self.now_ns();
            let t = now - t0;
            if t >= dur_ns || sent + skipped >= budget {
                break;
            }
            let due = ((t as f64) * rate / 1e9) as u64;
            let mut deficit = due.saturating_sub(sent + skipped);
            if deficit > spec.catch_up {
                skipped += deficit - spec.catch_up;
                deficit = spec.catch_up;
            }
            let want = deficit.min(MAX_BATCH as u64).min(budget - sent - skipped) as usize;
            if want >= min_batch || (want > 0 && dur_ns - t < 1_000_000) {
                self.tx_service();
                let base = sent;
                let templates = std::mem::take(&mut self.templates);
                let k = self.send(
                    want,
                    &templates,
                    |i| {
                        let g = base + i as u64;
                        (g % flows) as usize * nclasses + mix.class_of(g)
                    },
                    |i, buf| {
                        let g = base + i as u64;
                        let at = stamp_at[(g % flows) as usize];
                        frame::write_stamp(buf, at, trial, (g / flows) as u32, now);
                    },
                );
                self.templates = templates;
                sent += k as u64;
                // Copy mode transmits at most 32 frames per wake-up.
                if k > 32 {
                    self.tx_service();
                }
            } else {
                self.tx_service();
            }
            self.sink_pass(table);
            stop_check += 1;
            if stop_check & 1023 == 0 && dataplane::sys::signal::stop_requested() {
                anyhow::bail!("interrupted");
            }
        }
        Ok((sent, skipped))
    }
}

/// The latency summary of a trial's histogram (all zero when empty).
fn latency_of(h: &hdrhistogram::Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        samples: h.len(),
        min: h.min(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
    }
}

/// CPU time of the calling thread (ns on CPU).
pub fn thread_cpu_ns() -> u64 {
    orbitmesh_lab::cpu::thread_schedstat().0
}
