//! One emulation from start to end (`orbitmesh-emu run`), in its seven
//! parts: 1. the prediction ([`predicted`](super::predicted)), 2. the
//! slice in namespaces ([`slice`](super::slice)) and the management
//! network the control process reaches the nodes over, with the key it
//! signs with ([`mgmt`](super::mgmt); `--unsigned`: none), 3. the wiring
//! and the dataplanes ([`dataplanes`](super::dataplanes)), 4. the control
//! process ([`controller`](super::controller)), 5. the traffic
//! ([`agents`](super::agents)), 6. the live view ([`live`](super::live))
//! and 7. the summary ([`summarize`](super::summarize)); the faults to
//! inject ([`faults`](super::faults)) are planned after the prediction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use super::controller::Clock;
use super::dataplanes::{DpProgram, FastPath, Sockets};
use super::faults::{parse_fail, FaultEvent, RandomFailures};
use super::lab::Lab;
use super::live::Live;
use super::predicted::{predict, scenario_name, Predicted};
use super::summarize::{self, Run};
use super::{agents, controller, dataplanes, mgmt, slice, Names};
use control::predict::scenario::{parse_duration_ns, Scenario};
use orbitmesh_core::{errln, outln};

/// `orbitmesh-emu run`'s options.
#[derive(Debug, Args)]
pub struct Options {
    #[command(flatten)]
    pub scenario: Scenario,
    /// Schedule seconds per wall-clock second.
    #[arg(long, default_value_t = 20.0)]
    pub time_scale: f64,
    /// UDP packets per second in each direction of each ground-station pair.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Take an ISL down at schedule time T, optionally back up DUR later:
    /// A-B@T or A-B@T+DUR (e.g. 3-4@600s+300s). Repeatable.
    #[arg(long = "fail-isl")]
    pub fail_isl: Vec<String>,
    /// This many failures of ISLs on the traffic's predicted paths, at random
    /// times between 20% and 80% of the window.
    #[arg(long, default_value_t = 0)]
    pub random_failures: usize,
    /// Bring randomly failed ISLs back up after this schedule time (e.g. 60s).
    #[arg(long)]
    pub restore_after: Option<String>,
    /// Seed of the random failures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefix of the namespaces (PREFIX-n<node>, PREFIX-h<station>).
    #[arg(long, default_value = "ome")]
    pub prefix: String,
    /// Output directory (schedules, wiring, logs, summary, SVG).
    #[arg(long, default_value = "emu-out")]
    pub out: PathBuf,
    /// Exit with status 1 when fewer packets than this (%) are delivered.
    #[arg(long)]
    pub min_delivery: Option<f64>,
    /// Print the summary as JSON on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Stop the control process at schedule time T, and start it again DUR
    /// later if given: T or T+DUR (e.g. 480s, 480s+120s).
    #[arg(long)]
    pub kill_controller_at: Option<String>,
    /// Stop node N's dataplane at schedule time T and start it again (from
    /// its state directory) DUR later, or 1 s of wall time later: N@T or
    /// N@T+DUR. Repeatable.
    #[arg(long = "kill-node")]
    pub kill_node: Vec<String>,
    /// Flap an ISL: down at T for PERIOD/2, up for PERIOD/2, COUNT times:
    /// A-B@T,PERIOD,COUNT (e.g. 3-4@300s,20s,5). Repeatable.
    #[arg(long = "flap-isl")]
    pub flap_isl: Vec<String>,
    /// Run the control process in its one-FIB-ahead mode (`orbitmesh-ctl
    /// run --one-ahead`, the design before schedule windows).
    #[arg(long)]
    pub one_ahead: bool,
    /// Run this many control processes (1 or 2). With 2, a redundant pair:
    /// `ctl` and `ctl-b` drive every node with the same inputs at once, as
    /// the README's "Running a redundant pair" says; `--kill-controller-at`
    /// stops `ctl`, and `ctl-b` carries on alone.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub controllers: u8,
    /// Schedule window the control process uploads (`run --window`).
    #[arg(long, default_value = "10m")]
    pub window: String,
    /// Forward without the links' propagation delay (by default each
    /// dataplane holds frames for its link's predicted delay, updated every
    /// second, so the measured latency follows the orbits).
    #[arg(long)]
    pub no_delay: bool,
    /// How the dataplanes forward transit frames. `off`: every frame through
    /// the AF_XDP workers and their emulation-only delay line. `xdp`: transit
    /// satellites switch labels in the kernel's XDP fast path (`orbitmesh-dp
    /// --fast-path xdp`); such frames never reach a worker, so there is no
    /// delay line: the links hold no propagation delay (measured latency is
    /// the host's only, not the orbits'; hence it needs --no-delay) and do
    /// not go away with the geometry.
    #[arg(long, value_enum, default_value_t = FastPath::Off)]
    pub fast_path: FastPath,
    /// Run without signed orders, for comparison: the nodes trust no key
    /// and the control process reaches them through their unix sockets from
    /// the first node's namespace (by default it signs every order with a
    /// key made for the run and reaches each node's remote channel over a
    /// management network: see the `mgmt` module).
    #[arg(long)]
    pub unsigned: bool,
}

/// The programs an emulation runs: this binary (its `agent` subcommand)
/// and, beside it, the dataplane and the control process.
#[derive(Debug)]
struct Programs {
    exe: PathBuf,
    dp: PathBuf,
    ctl: PathBuf,
}

impl Programs {
    fn beside_this_binary() -> Result<Programs> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let bindir = exe.parent().context("binary directory")?;
        let (dp, ctl) = (bindir.join("orbitmesh-dp"), bindir.join("orbitmesh-ctl"));
        for b in [&dp, &ctl] {
            if !b.exists() {
                bail!(
                    "{} not found beside {}: cargo build --release -p dataplane -p control",
                    b.display(),
                    exe.display()
                );
            }
        }
        Ok(Programs { exe, dp, ctl })
    }
}

/// Runs an emulation; the exit status (0, 1 below `--min-delivery`, 130
/// when interrupted).
pub fn run(a: &Options) -> Result<i32> {
    check_options(a)?;
    let programs = Programs::beside_this_binary()?;
    crate::os::install().context("installing the signal handlers")?;
    std::fs::create_dir_all(a.out.join("logs"))
        .with_context(|| format!("creating {}", a.out.display()))?;
    let out = std::fs::canonicalize(&a.out)?;

    // 1. Prediction.
    let (mut pred, wall_s) = prediction(a, &out)?;
    let faults = plan_faults(a, &pred)?;
    let outages = plan_outages(a, &pred)?;

    // 2. Namespaces and links.
    errln!(
        "== building the slice in network namespaces ({}-*)",
        a.prefix
    );
    let t1 = Instant::now();
    let names = Names {
        prefix: a.prefix.clone(),
    };
    let mut lab = Lab::new(&a.prefix)?;
    let size = slice::build(&mut lab, &pred.topo, &names)?;
    errln!(
        "   {} namespaces, {} veth pairs in {:.1} s",
        size.namespaces,
        size.veths,
        t1.elapsed().as_secs_f64()
    );

    // How the control process will reach the nodes (signed by default).
    let channel = mgmt::setup(&mut lab, &pred.topo, &names, &out, a.unsigned)?;
    errln!("   orders: {}", channel.describe());

    // 3. Wiring and dataplanes.
    let dp = DpProgram {
        bin: programs.dp.clone(),
        fast_path: a.fast_path,
    };
    let (sockets, wiring_path, dp_pids) =
        start_dataplanes(&mut lab, &pred, &names, &channel, &dp, &out)?;
    let (start_ns, end_ns) = pred.window_ns;
    let delays = (!a.no_delay && dp.fast_path.delay_line()).then(|| {
        let mut sent = BTreeMap::new();
        dataplanes::set_link_delays(&pred.net, &pred.topo, start_ns, &sockets, &mut sent);
        errln!(
            "   links hold frames for their predicted propagation delay (updated every second; --no-delay: off)"
        );
        sent
    });

    let geo = if dp.fast_path.delay_line() {
        let geo = super::geometry::plan(&pred.net, &pred.topo, pred.window_ns, pred.step_ns);
        errln!(
            "   links follow the geometry: {} gone at the start, {} changes over the window",
            geo.gone_at_start.len(),
            geo.changes.len()
        );
        geo
    } else {
        errln!(
            "   transit frames switch in the XDP fast path: no delay line, so links hold no \
             propagation delay (latency measured is the host's only) and do not follow the geometry"
        );
        super::geometry::Geometry::default()
    };

    // 4. The control process: schedule time `start_ns` at wall `t_start`.
    let clock = Clock::starting_in(2_000_000_000, start_ns, a.time_scale);
    let restarts = super::outages::Restarts {
        dp: dp.clone(),
        ctl_bin: programs.ctl.clone(),
        ctl_ns: channel.ctl_ns().to_string(),
        wiring: wiring_path.clone(),
        ctl_extra: ctl_args(a, &channel),
        geometry: geo.clone(),
        window_ns: (!a.one_ahead)
            .then(|| parse_duration_ns(&a.window))
            .transpose()
            .map_err(|e| anyhow!("--window {}: {e}", a.window))?,
    };
    let geometry = super::geometry::Follower::start(geo, sockets.clone(), clock);
    let ctls = start_controllers(a.controllers, &mut lab, &restarts, &out, &clock)?;

    // 5. Traffic, from just after the first FIB is in force, once every
    // node forwards with one (a node still loading its window would drop
    // the first packets for want of a route: the emulator's, not the mesh's).
    while super::now_ns() < clock.t_start + 100_000_000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let waited_ms = wait_for_first_fibs(&pred.topo, &sockets);
    let traffic_ms = (((end_ns - start_ns) as f64 / 1e6 / a.time_scale) as u64)
        .saturating_sub(600 + waited_ms)
        .max(1000);
    let topo = &pred.topo;
    let reports = agents::start(
        &mut lab,
        topo,
        &names,
        &programs.exe,
        a.rate,
        traffic_ms,
        &out,
    )?;

    // 6. Live view.
    told_live_header(&pred, a.rate);
    let (mut seen, ctls) = Live::new(
        &mut lab, &mut pred, &names, &sockets, clock, &faults, reports, ctls, dp_pids, delays,
        &out, &outages, restarts,
    )
    .run()?;
    let link_changes = geometry.stop();
    if seen.interrupted {
        errln!("interrupted: cleaning up");
        return Ok(130);
    }
    let probe = mgmt::probe(&lab, &channel, &programs.ctl, &sockets);
    let mut ended = summarize::wind_down(&mut lab, &pred.topo, &sockets, &out, &mut seen, ctls);
    ended.link_changes = link_changes;
    ended.orders = mgmt::Orders::new(&channel, ended.order_refusals.clone(), probe);
    drop(lab);

    // 7. Summary.
    let summary = summarize::summary(Run {
        scenario: scenario_name(&a.scenario),
        time_scale: a.time_scale,
        wall_seconds: wall_s,
        rate: a.rate,
        fast_path: a.fast_path,
        pred: &pred,
        seen,
        ended: &ended,
    });
    finish(a, &out, &summary, &pred, &ended.ping)
}

/// Writes the wiring (`OUT/wiring.toml`, each node at its socket under
/// `OUT/sock` or its remote channel) and the nodes' configurations, then
/// starts every dataplane; the sockets, the wiring's path and the PIDs.
fn start_dataplanes(
    lab: &mut Lab,
    pred: &Predicted,
    names: &Names,
    channel: &mgmt::Channel,
    dp: &DpProgram,
    out: &Path,
) -> Result<(Sockets, PathBuf, Vec<u32>)> {
    let sockets = Sockets(out.join("sock"));
    std::fs::create_dir_all(&sockets.0)?;
    let mut wiring = dataplanes::wiring(&pred.topo, &sockets);
    mgmt::rewire(&mut wiring, &pred.topo, channel);
    let wiring_path = out.join("wiring.toml");
    std::fs::write(&wiring_path, toml::to_string(&wiring)?)?;
    mgmt::write_configs(&pred.topo, channel, out)?;
    errln!(
        "== starting {} dataplanes (orbitmesh-dp, sleep-when-idle, {})",
        pred.topo.nodes().count(),
        match dp.fast_path {
            FastPath::Off => "every frame through AF_XDP and the delay line",
            FastPath::Xdp => "transit in the XDP fast path, no delay line",
        }
    );
    let t = Instant::now();
    let pids = dataplanes::start(lab, &pred.topo, names, dp, &sockets, out)?;
    errln!("   all up in {:.1} s", t.elapsed().as_secs_f64());
    Ok((sockets, wiring_path, pids))
}

/// Waits (at most 10 s) until every node has a FIB in force; the ms
/// waited, said when it was more than a tick of the follower's.
fn wait_for_first_fibs(topo: &super::Topology, sockets: &Sockets) -> u64 {
    let t = Instant::now();
    let limit = std::time::Duration::from_secs(10);
    let without = || {
        topo.nodes()
            .filter(|&n| dataplanes::ask_version(&sockets.of(n)).is_none_or(|v| v.active == 0))
            .count()
    };
    let mut left = without();
    while left > 0 && t.elapsed() < limit && !crate::os::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = without();
    }
    let waited = t.elapsed();
    if left > 0 {
        errln!(
            "   {left} nodes still have no FIB in force {:.1} s after the start: traffic starts anyway",
            waited.as_secs_f64()
        );
    } else if waited.as_millis() > 50 {
        errln!(
            "   traffic waited {:.2} s for every node's first FIB",
            waited.as_secs_f64()
        );
    }
    waited.as_millis() as u64
}

/// Refuses options that cannot make a run, before anything is built.
fn check_options(a: &Options) -> Result<()> {
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        bail!("--time-scale {}: must be a positive number", a.time_scale);
    }
    if a.rate == 0 || a.rate > 100_000 {
        bail!("--rate {}: must be 1..100000 packets/s per flow", a.rate);
    }
    if a.fast_path == FastPath::Xdp && !a.no_delay {
        bail!(
            "--fast-path xdp: transit frames then switch in the kernel and never reach the AF_XDP \
             workers whose delay line holds them for the links' propagation delay, so that delay \
             cannot be emulated; add --no-delay (measured latency is then the host's only, not the \
             orbits')"
        );
    }
    if a.one_ahead && !a.unsigned {
        bail!("--one-ahead stages FIBs one at a time, which are not signed orders: add --unsigned");
    }
    if crate::os::euid() != 0 {
        bail!(
            "needs root: it creates network namespaces and attaches XDP programs (run with sudo)"
        );
    }
    Ok(())
}

/// The processes to stop (and start again): `--kill-controller-at` and
/// `--kill-node`, checked against the window.
fn plan_outages(a: &Options, pred: &Predicted) -> Result<Vec<super::outages::Outage>> {
    let mut outages = Vec::new();
    if let Some(k) = &a.kill_controller_at {
        outages.push(super::outages::parse_controller(k)?);
    }
    for k in &a.kill_node {
        outages.push(super::outages::parse_node(
            k,
            pred.topo.n_sats + pred.topo.n_gs,
        )?);
    }
    super::outages::check(&outages, pred.window_ns)?;
    Ok(outages)
}

/// `orbitmesh-ctl run`'s mode: one FIB ahead, or windows (signed unless
/// `--unsigned`).
fn ctl_args(a: &Options, channel: &mgmt::Channel) -> Vec<String> {
    if a.one_ahead {
        vec!["--one-ahead".into()]
    } else {
        [
            vec!["--window".into(), a.window.clone()],
            channel.ctl_args(),
        ]
        .concat()
    }
}

/// Starts `ctl` and, for a redundant pair (`--controllers 2`), `ctl-b`.
fn start_controllers(
    count: u8,
    lab: &mut Lab,
    r: &super::outages::Restarts,
    out: &Path,
    clock: &Clock,
) -> Result<Vec<controller::Controller>> {
    let mut ctls = Vec::new();
    for label in ["ctl", "ctl-b"].into_iter().take(count.into()) {
        let which = controller::Incarnation::first(label);
        let (bin, wiring) = (&r.ctl_bin, &r.wiring);
        ctls.push(controller::start(
            lab,
            &r.ctl_ns,
            bin,
            out,
            wiring,
            clock,
            &r.ctl_extra,
            which,
        )?);
    }
    if count == 2 {
        errln!("   a redundant pair of control processes (ctl, ctl-b) drives every node");
    }
    Ok(ctls)
}

/// Predicts the scenario and says what it holds; the prediction and the
/// run's wall time (s), at least 5 s.
fn prediction(a: &Options, out: &Path) -> Result<(Predicted, f64)> {
    let t0 = Instant::now();
    errln!("== predicting the scenario");
    let pred = predict(&a.scenario, out)?;
    let wall_s = told_prediction(&pred, a.time_scale, t0);
    if wall_s < 5.0 {
        bail!("{wall_s:.1} s of wall time is too short: give a longer --duration or a smaller --time-scale");
    }
    Ok((pred, wall_s))
}

/// Logs what was predicted; returns the run's wall time (s).
fn told_prediction(pred: &Predicted, time_scale: f64, t0: Instant) -> f64 {
    let topo = &pred.topo;
    let sched_len = pred.window_ns.1 - pred.window_ns.0;
    let wall_s = sched_len as f64 / 1e9 / time_scale;
    errln!(
        "   {} satellites + {} ground stations, {} links ({} ISLs planned), {} FIB changes \
         over {:.0} s of schedule = {:.0} s of wall time at x{}; {:.1} s",
        topo.n_sats,
        topo.n_gs,
        topo.links.len(),
        topo.links.iter().filter(|l| !topo.is_gs(l.1)).count(),
        pred.swaps,
        sched_len as f64 / 1e9,
        wall_s,
        time_scale,
        t0.elapsed().as_secs_f64()
    );
    wall_s
}

/// The faults to inject, in time order: `--fail-isl` and random ones.
fn plan_faults(a: &Options, pred: &Predicted) -> Result<Vec<FaultEvent>> {
    let mut faults: Vec<FaultEvent> = Vec::new();
    for f in &a.fail_isl {
        faults.extend(parse_fail(f, &pred.topo)?);
    }
    for f in &a.flap_isl {
        faults.extend(super::faults::parse_flap(f, &pred.topo)?);
    }
    if a.random_failures > 0 {
        let restore_after_ns = a
            .restore_after
            .as_deref()
            .map(parse_duration_ns)
            .transpose()
            .map_err(|e| anyhow!("--restore-after: {e}"))?;
        let random = RandomFailures {
            count: a.random_failures,
            restore_after_ns,
            seed: a.seed,
        };
        let (start_ns, end_ns) = pred.window_ns;
        faults.extend(random.events(&pred.pairs, &pred.topo, start_ns, end_ns - start_ns));
    }
    faults.sort_by_key(|f| f.at_ns);
    Ok(faults)
}

/// The live view's heading: what runs and the columns of its lines.
fn told_live_header(pred: &Predicted, rate: u32) {
    let n_gs = pred.topo.n_gs;
    errln!(
        "== running: {} flows at {} pps each; a line per second of wall time (delivered/s and \
         packets lost per pair, FIB versions in force; a late line covers its longer interval and \
         says so)",
        n_gs * (n_gs - 1),
        rate
    );
    let header: Vec<String> = pred
        .pairs
        .iter()
        .map(|p| format!("{:>17}", p.name.chars().take(17).collect::<String>()))
        .collect();
    errln!("   wall  sched |{}| FIB versions", header.join("|"));
}

/// Writes and shows the summary; the exit status against `--min-delivery`.
fn finish(
    a: &Options,
    out: &Path,
    summary: &super::report::Summary,
    pred: &Predicted,
    ping: &str,
) -> Result<i32> {
    let md = summarize::write(out, summary, pred, ping)?;
    errln!("\n{md}");
    errln!(
        "wrote {}/summary.md, summary.json, timeline.svg",
        out.display()
    );
    if a.json {
        outln!("{}", serde_json::to_string_pretty(summary)?);
    }
    if let Some(min) = a.min_delivery {
        if 100.0 * summary.delivery_ratio < min {
            errln!(
                "delivery {:.3}% is below --min-delivery {min}%",
                100.0 * summary.delivery_ratio
            );
            return Ok(1);
        }
    }
    Ok(0)
}
