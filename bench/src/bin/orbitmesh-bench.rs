//! orbitmesh-bench: the relay benchmark harness. Its own AF_XDP generator and
//! sink (MPLS per RFC 3032, IPv4, IPv6 per RFC 8200, or a mix; flows with sequence numbers and TX
//! timestamps), an RFC 2544 zero-loss throughput search, latency
//! percentiles, and peers (kernel forwarding, dpdk-testpmd) in the same run
//! on the same namespace line. See `orbitmesh-bench --help`.

use anyhow::{bail, Context, Result};
use bench::harness::{self, dut::Bins, dut::DutKind, rfc2544::SearchCfg, GenKind, SuiteCfg};
use bench::traffic::engine::{EngineCfg, EngineHandle, TrialSpec};
use bench::traffic::frame::{FlowPlan, Macs, Profile, SizeMix};
use clap::{Parser, Subcommand};
use dataplane::ring::PacketIo;
use orbitmesh_core::{errln, outln};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "orbitmesh-bench",
    version,
    about = "Relay benchmark: AF_XDP generator and sink, RFC 2544 zero-loss search, latency, peers side by side",
    after_help = "Examples (root):\n  \
      orbitmesh-bench run                                  # the standard suite -> bench/results/<date>-suite/\n  \
      orbitmesh-bench run --name quick --duts orbitmesh --sizes 64 --trial 1 --latency-loads 0.5\n  \
      orbitmesh-bench traffic --tx eth1 --rx eth2 --dst-mac 02:00:00:00:00:01 --rate 1e6 --secs 5\n  \
      orbitmesh-bench cleanup                              # remove what a killed run left (obh-* namespaces)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

fn parse_check_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v == 0.0 || (0.1..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: seconds, 0 (skip) or 0.1 to 600")),
    }
}

#[derive(clap::Args, Debug)]
struct StallsArgs {
    /// The core to watch (the DUT's).
    #[arg(long, default_value_t = 1)]
    dut_core: usize,
    /// The core kept busy meanwhile (the generator's).
    #[arg(long, default_value_t = 0)]
    gen_core: usize,
    #[arg(long, default_value_t = 10.0, value_parser = parse_check_secs)]
    secs: f64,
    /// Leave the other core idle (for comparison).
    #[arg(long)]
    no_load: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build the namespace line, benchmark each DUT, write the report.
    Run(RunArgs),
    /// One trial between existing interfaces (no namespaces, no DUT management).
    Traffic(TrafficArgs),
    /// Remove obh-* namespaces and the lock a killed run left behind.
    Cleanup,
    /// The testbed check alone: spin on one core with the other busy and
    /// count the gaps (how long a DUT's vCPU goes missing; prints JSON).
    Stalls(StallsArgs),
    /// The xdp-min peer (the harness starts it in the DUT's namespace):
    /// attaches bench/bpf/xdp_min.c with a FIB's transit swaps until
    /// SIGINT/SIGTERM.
    #[command(hide = true)]
    PeerXdp(PeerXdpArgs),
}

#[derive(clap::Args, Debug)]
struct PeerXdpArgs {
    /// Ingress port (gets the switch).
    #[arg(long = "in")]
    ingress: String,
    /// Egress ports (get an XDP_PASS program, as a redirect target).
    #[arg(long = "out", value_delimiter = ',')]
    egress: Vec<String>,
    /// FIB file (JSON or TOML, as orbitmesh-dp reads): its swaps to one next hop.
    #[arg(long)]
    fib: PathBuf,
    /// Run the ports' NAPI (and so the program) by kernel busy polling in
    /// this process, as a busy-polling AF_XDP forwarder does: an AF_XDP
    /// socket on queue 0 of every port (ingress and egress, the ports
    /// orbitmesh-dp polls) that receives nothing, each polled in turn with
    /// a non-blocking recvfrom in a loop (pin the process).
    #[arg(long)]
    busy_poll: bool,
}

/// How the generator paces its frames (`run` and `traffic`).
#[derive(clap::Args, Debug)]
struct PacingArgs {
    /// The generator sends what falls due in this many µs as one batch (at most 32 frames).
    #[arg(long, default_value_t = 50.0)]
    batch_gap_us: f64,
    /// Frames the generator may fall behind its schedule and still send,
    /// as fast as it can, once it runs again; beyond that it skips them
    /// (counted). After the host held its core this is the burst the DUT
    /// gets (dut0's ring holds 256).
    #[arg(long, default_value_t = bench::traffic::engine::MAX_DEFICIT, value_parser = clap::value_parser!(u64).range(1..))]
    gen_catch_up: u64,
}

impl PacingArgs {
    fn batch_gap_ns(&self) -> u64 {
        (self.batch_gap_us * 1e3) as u64
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Run name (results go to OUT/<date>-NAME/).
    #[arg(long, default_value = "suite")]
    name: String,
    /// DUTs, in order: orbitmesh (AF_XDP only), orbitmesh-xdp (XDP fast
    /// path), xdp-min (the minimal XDP swap: the in-kernel limit),
    /// orbitmesh-busy, orbitmesh-ipv4, orbitmesh-ipv6, orbitmesh-mixed
    /// (MPLS/IPv4/IPv6 by flow), kernel, testpmd.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "orbitmesh,orbitmesh-busy,orbitmesh-ipv4,orbitmesh-ipv6,kernel,testpmd"
    )]
    duts: Vec<String>,
    /// Frame sizes with FCS (64..1518) or imix.
    #[arg(long, value_delimiter = ',', default_value = "64,512,1518,imix")]
    sizes: Vec<String>,
    /// Seconds per search trial.
    #[arg(long, default_value_t = 2.0)]
    trial: f64,
    /// Seconds to wait for frames in flight after each trial.
    #[arg(long, default_value_t = 0.3)]
    drain: f64,
    /// Highest offered rate (Mpps): the search's first trial.
    #[arg(long, default_value_t = 3.0)]
    max_mpps: f64,
    /// Lowest rate the search tries (Mpps).
    #[arg(long, default_value_t = 0.01)]
    min_mpps: f64,
    /// Search resolution (relative width of the final bracket).
    #[arg(long, default_value_t = 0.02)]
    resolution: f64,
    /// Accepted loss ratio (0: RFC 2544 zero loss).
    #[arg(long, default_value_t = 0.0)]
    loss_tolerance: f64,
    #[arg(long, default_value_t = 14)]
    max_trials: usize,
    /// Loads (fractions of throughput) for the latency trials.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9,0.99")]
    latency_loads: Vec<f64>,
    /// Seconds per latency trial (and per CPU-cost trial).
    #[arg(long, default_value_t = 2.0)]
    latency_trial: f64,
    /// Offered rates (Mpps), the same for every DUT, at which the DUT
    /// core's CPU time per frame is measured with the first frame size
    /// (below saturation, where a DUT's CPU use can follow its load; "" to skip).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3")]
    cost_mpps: Vec<String>,
    #[arg(long, default_value_t = 64)]
    flows: u16,
    /// Labels in orbitmesh's table (flows spread over it).
    #[arg(long, default_value_t = 1_000_000)]
    labels: u32,
    /// FIB swaps per second under load (0: skip the test).
    #[arg(long, default_value_t = 10.0)]
    swap_rate: f64,
    /// Seconds of the swap test.
    #[arg(long, default_value_t = 5.0)]
    swap_trial: f64,
    /// Load of the swap test (fraction of the first size's throughput).
    #[arg(long, default_value_t = 0.9)]
    swap_load: f64,
    /// After the search, profile the DUT's and the generator's cores (perf
    /// record -e cpu-clock -g) over one trial at this fraction of the
    /// throughput (0: no profile).
    #[arg(long, default_value_t = 0.0)]
    profile_load: f64,
    /// Swaps to make in the swap test (0: --swap-rate x --swap-trial); the
    /// trial lasts SWAPS / --swap-rate + 0.5 s.
    #[arg(long, default_value_t = 0)]
    swaps: u64,
    #[arg(long, default_value_t = 0)]
    gen_core: usize,
    #[arg(long, default_value_t = 1)]
    dut_core: usize,
    /// Threaded NAPI: the DUT's ingress veth receives in a kernel thread on
    /// the DUT core at SCHED_FIFO, so it runs when woken, as softirq would;
    /// the sink busy polls its own ports on the generator's core; gen0's
    /// TSO is off so the kernel DUT receives through that thread too
    /// (default: veth runs a receiver's NAPI on the sender's core).
    #[arg(long)]
    threaded_napi: bool,
    /// How frames reach dut0: `xsk` (the AF_XDP socket sends on gen0; on
    /// veth each frame is a socket buffer, which an XDP DUT must copy into
    /// a page) or `relay` (the socket sends on relay-src, whose peer
    /// redirects every frame to gen0 by XDP: dut0 receives XDP frames, as
    /// from a NIC, and the copy is made on the generator's core) or `live`
    /// (the kernel makes XDP frames itself, BPF_PROG_TEST_RUN with live
    /// frames: no socket buffer, no copy; MPLS and IPv4, one frame size).
    #[arg(long, default_value = "xsk", value_parser = GenKind::parse)]
    gen: GenKind,
    /// With --threaded-napi: interrupt coalescing of dut0's receive (the
    /// sink's ports get 200 µs for its busy polling), as NIC drivers do
    /// it: after a poll that found frames, poll
    /// again this many µs later by timer instead of waking the NAPI thread
    /// per frame (gro_flush_timeout + napi_defer_hard_irqs); 0 = off.
    /// Preferred busy polling (testpmd's net_af_xdp default,
    /// orbitmesh-xdp-busy) needs it to keep the kernel's NAPI thread away;
    /// a DUT that sleeps when idle pays ~10% of its core at 10 kpps for the
    /// timer (bench/results/xdp-fast-path.md, 2026-11-30 19:40-20:30).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1000))]
    napi_defer_us: u64,
    /// CPU share of other processes (fraction of the machine) above which a
    /// trial counts as disturbed: it is run again, and waited for before.
    #[arg(long, default_value_t = 0.05)]
    max_other_load: f64,
    /// Re-runs of a disturbed trial (then the result stands, marked).
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Seconds to wait for a quiet machine before each trial.
    #[arg(long, default_value_t = 20.0)]
    quiet_wait: f64,
    /// Seconds of the testbed check before the first DUT: how long the
    /// DUT's vCPU goes missing while the generator's core is busy (0: skip).
    #[arg(long, default_value_t = 3.0, value_parser = parse_check_secs)]
    stall_check: f64,
    /// Charge the DUT with the frames dut0's ring refused while the DUT's
    /// core was away (RFC 2544's raw zero loss). By default (threaded NAPI,
    /// where the harness watches dut0) the search leaves them out: the
    /// watch counts them one by one, a frame refused while the core was
    /// there, or lost anywhere else, still fails the trial, and the report
    /// shows how many were left out.
    #[arg(long)]
    charge_testbed: bool,
    #[command(flatten)]
    pacing: PacingArgs,
    /// orbitmesh-dp binary (default: next to this one).
    #[arg(long)]
    dp_bin: Option<PathBuf>,
    /// Extra orbitmesh-dp flags for the orbitmesh DUTs, e.g. --dp-args='--coalesce-us 0'.
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    dp_args: String,
    /// Results root.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Write the results into exactly this directory instead of OUT/<date>-NAME.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct TrafficArgs {
    /// Interface to send on.
    #[arg(long)]
    tx: String,
    /// Interfaces to receive on (egress port 0, 1 of the DUT).
    #[arg(long, value_delimiter = ',')]
    rx: Vec<String>,
    /// Destination MAC of the frames (the DUT's ingress port).
    #[arg(long)]
    dst_mac: String,
    #[arg(long, default_value = "02:6f:68:00:00:01")]
    src_mac: String,
    /// Frames per second.
    #[arg(long, default_value_t = 100_000.0)]
    rate: f64,
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    #[arg(long, default_value = "64")]
    size: String,
    /// mpls, ipv4, ipv6 (RFC 8200) or mixed (flow index mod 3: MPLS, IPv4, IPv6).
    #[arg(long, default_value = "mpls")]
    profile: String,
    #[arg(long, default_value_t = 64)]
    flows: u16,
    #[arg(long, default_value_t = 1_000_000)]
    labels: u32,
    /// Network namespace to run in.
    #[arg(long)]
    netns: Option<String>,
    #[arg(long)]
    core: Option<usize>,
    #[command(flatten)]
    pacing: PacingArgs,
}

fn main() {
    let cli = Cli::parse();
    dataplane::sys::signal::install();
    let r = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Traffic(a) => traffic(a),
        Cmd::Cleanup => cleanup(),
        Cmd::Stalls(a) => stalls(a),
        Cmd::PeerXdp(a) => peer_xdp(a),
    };
    if let Err(e) = r {
        errln!("\norbitmesh-bench: {e:#}");
        std::process::exit(if dataplane::sys::signal::stop_requested() {
            130
        } else {
            1
        });
    }
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(a: RunArgs) -> Result<()> {
    let duts = a
        .duts
        .iter()
        .map(|d| DutKind::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let sizes = a
        .sizes
        .iter()
        .map(|s| SizeMix::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    if a.trial <= 0.0 || a.max_mpps <= 0.0 || a.gen_core == a.dut_core {
        bail!("--trial and --max-mpps must be > 0, and --gen-core must differ from --dut-core");
    }
    if a.latency_loads.iter().any(|l| !(0.0..=1.0).contains(l)) {
        bail!("--latency-loads are fractions of the throughput, in 0..1");
    }
    let mut cost_rates = Vec::new();
    for r in a.cost_mpps.iter().filter(|r| !r.trim().is_empty()) {
        match r.trim().parse::<f64>() {
            Ok(m) if m > 0.0 && m.is_finite() => cost_rates.push(m * 1e6),
            _ => bail!("--cost-mpps: '{r}' is not a rate in Mpps above 0"),
        }
    }
    let cfg = SuiteCfg {
        name: a.name.clone(),
        duts,
        sizes,
        trial: Duration::from_secs_f64(a.trial),
        drain: Duration::from_secs_f64(a.drain),
        search: SearchCfg {
            max_pps: a.max_mpps * 1e6,
            min_pps: a.min_mpps * 1e6,
            resolution: a.resolution,
            loss_tolerance: a.loss_tolerance,
            max_trials: a.max_trials,
        },
        latency_loads: a.latency_loads.clone(),
        latency_trial: Duration::from_secs_f64(a.latency_trial),
        cost_rates,
        flows: a.flows,
        labels: a.labels,
        swap_rate: a.swap_rate,
        swap_trial: Duration::from_secs_f64(a.swap_trial),
        swap_load: a.swap_load,
        swaps: a.swaps,
        profile_load: a.profile_load,
        gen_core: a.gen_core,
        dut_core: a.dut_core,
        threaded_napi: a.threaded_napi,
        gen: a.gen,
        napi_defer_ns: a.napi_defer_us * 1000,
        max_other_load: a.max_other_load,
        retries: a.retries,
        quiet_wait: Duration::from_secs_f64(a.quiet_wait),
        stall_check: a.stall_check,
        charge_testbed: a.charge_testbed,
        batch_gap_ns: a.pacing.batch_gap_ns(),
        catch_up: a.pacing.gen_catch_up,
        bins: {
            let dp = a.dp_bin.clone().unwrap_or_else(|| sibling("orbitmesh-dp"));
            Bins {
                fast_path_flag: Bins::has_fast_path_flag(&dp),
                dp,
                bench: std::env::current_exe().context("the harness's own path")?,
                dp_args: a.dp_args.split_whitespace().map(String::from).collect(),
            }
        },
        out: a.out.clone(),
    };
    let command = std::env::var("OBH_COMMAND").unwrap_or_else(|_| {
        std::iter::once("orbitmesh-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let dir = a
        .out_dir
        .clone()
        .unwrap_or_else(|| harness::report::out_dir(&a.out, &a.name));
    let result = harness::run_suite(cfg, command)?;
    let md = harness::report::write(&result, &dir)?;
    outln!("{md}");
    errln!("orbitmesh-bench: results in {}", dir.display());
    Ok(())
}

fn traffic(a: TrafficArgs) -> Result<()> {
    harness::preflight()?;
    let parse_mac = |s: &str| {
        orbitmesh_core::fib::spec::parse_mac(s)
            .with_context(|| format!("{s:?} is not a MAC address"))
    };
    let profile = Profile::parse(&a.profile).map_err(|e| anyhow::anyhow!("--{e}"))?;
    if a.rx.is_empty() || a.rx.len() > 2 {
        bail!("--rx takes one or two interfaces");
    }
    let mix = match SizeMix::parse(&a.size).map_err(anyhow::Error::msg)? {
        SizeMix::Fixed(n) => SizeMix::Fixed(n.max(profile.min_size())),
        m => m,
    };
    let engine = EngineHandle::start(EngineCfg {
        netns: a.netns.clone(),
        core: a.core,
        gen_iface: a.tx.clone(),
        sink_ifaces: a.rx.clone(),
        macs: Macs {
            gen: parse_mac(&a.src_mac)?,
            dut_in: parse_mac(&a.dst_mac)?,
        },
        sink_busy_poll: false,
        relay: None,
        live: false,
    })?;
    let plan = FlowPlan::new(a.flows, a.labels, a.rx.len() as u8, profile);
    let s = engine.trial(
        TrialSpec {
            trial: 1,
            rate_pps: a.rate,
            duration: Duration::from_secs_f64(a.secs),
            drain: Duration::from_millis(300),
            mix,
            plan,
            batch_gap_ns: a.pacing.batch_gap_ns(),
            catch_up: a.pacing.gen_catch_up,
        },
        &mut |_| {},
    )?;
    outln!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}

/// Loads the xdp-min peer with `a.fib`'s transit swaps and keeps it
/// attached until SIGINT/SIGTERM. Only what the minimal program can do is
/// accepted: a swap (or an unchanged label) to one untagged next hop that
/// pushes nothing.
fn peer_xdp(a: PeerXdpArgs) -> Result<()> {
    use bench::sys::xdp_min::{MinLabel, MinNextHop, XdpMin};
    use orbitmesh_core::fib::spec::{ActionSpec, FibSpec};
    let bytes = FibSpec::read_file(&a.fib).with_context(|| a.fib.display().to_string())?;
    let spec = FibSpec::from_file_bytes(&a.fib, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.fib.display()))?;
    let mut nhs = Vec::new();
    for nh in &spec.next_hops {
        if nh.vlan.is_some() || !nh.push.is_empty() {
            bail!(
                "next hop {:?}: xdp-min takes untagged next hops that push no label",
                nh.name
            );
        }
        nhs.push(MinNextHop {
            dst_mac: nh.dst_mac.0,
            src_mac: nh.src_mac.0,
            port: nh.port.clone(),
        });
    }
    let mut labels = Vec::with_capacity(spec.labels.len());
    for l in &spec.labels {
        let nh = match (&l.action, l.next_hop, &l.group) {
            (ActionSpec::Swap, Some(id), None) => spec
                .next_hops
                .iter()
                .position(|n| n.id == id)
                .with_context(|| format!("label {}: no next hop {id:?}", l.label))?,
            _ => bail!(
                "label {}: xdp-min takes swaps to one next hop only",
                l.label
            ),
        };
        labels.push(MinLabel {
            label: l.label,
            out: l.out_label.unwrap_or(l.label),
            nh,
        });
    }
    let _prog = XdpMin::load(&a.ingress, &a.egress, &nhs, &labels)?;
    let mut poller = if a.busy_poll {
        let cfg = dataplane::sys::xsk::XskConfig {
            busy_poll_budget: Some(bench::sys::busy::BUDGET),
            ..Default::default()
        };
        let ports: Vec<String> = std::iter::once(&a.ingress)
            .chain(&a.egress)
            .cloned()
            .collect();
        Some(
            dataplane::sys::xsk::XskIo::new(&ports, 0, cfg)
                .with_context(|| format!("busy-poll sockets on {}", ports.join(",")))?,
        )
    } else {
        None
    };
    outln!(
        "{} {} labels on {} -> {}",
        bench::harness::dut::PEER_XDP_READY,
        labels.len(),
        a.ingress,
        a.egress.join(",")
    );
    while !dataplane::sys::signal::stop_requested() {
        match &mut poller {
            // A non-blocking recvfrom per port (XskIo with a busy-poll budget).
            Some(io) => io.busy_poll(),
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Ok(())
}

fn stalls(a: StallsArgs) -> Result<()> {
    let s = harness::stalls::check(a.dut_core, (!a.no_load).then_some(a.gen_core), a.secs)?;
    outln!("{}", serde_json::to_string_pretty(&s)?);
    if let Some(pps) = s.ring_limit_pps() {
        errln!(
            "the longest away gap ({} µs) overflows a 256-frame veth ring above {:.3} Mpps",
            s.away_max_us,
            pps / 1e6
        );
    }
    Ok(())
}

fn cleanup() -> Result<()> {
    harness::preflight()?;
    for ns in orbitmesh_lab::remove_leftovers(harness::topology::PREFIX)? {
        errln!("removed namespace {ns}");
    }
    let _ = std::fs::remove_file(harness::topology::LOCK);
    Ok(())
}
