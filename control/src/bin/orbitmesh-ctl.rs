//! `orbitmesh-ctl`: the orbitmesh control-plane command line.
//!
//! Subcommands:
//! - `predict`: propagate a constellation, compute routing per time step and
//!   write per-node FIB schedules, plus RTT/path series for `--pairs`.
//! - `fib show|load|swap|rollback|check|diff`, `stats`, `port up|down`:
//!   operate running dataplanes through their control sockets
//!   (control::fib_ops), or with `--remote HOST:PORT` over a dataplane's
//!   remote control channel (TCP; state changes only as signed orders).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use control::predict::{self, output, scenario::Scenario};
use orbitmesh_core::protocol::endpoint;
use orbitmesh_core::{err, errln, out, outln};

#[derive(Debug, Parser)]
#[command(name = "orbitmesh-ctl", version, about = "orbitmesh control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Predict topology and routing over a time window; write FIB schedules.
    #[command(after_help = PREDICT_EXAMPLES)]
    Predict(Box<PredictArgs>),
    /// Show, load, stage, swap, roll back, check or diff FIBs.
    #[command(subcommand)]
    Fib(FibCmd),
    /// Load, show or clear the schedule a dataplane follows on its own.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Make an Ed25519 key pair for signing orders: OUT (secret, mode 0600)
    /// and OUT.pub (the public key a dataplane's config lists).
    #[command(after_help = "Examples:\n  orbitmesh-ctl keygen --out /etc/orbitmesh/ground-1.key")]
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// A running dataplane's counters (--watch for live rates).
    #[command(
        after_help = "Examples:\n  orbitmesh-ctl stats --socket /run/orbitmesh/sat-17.sock\n  orbitmesh-ctl stats --watch 1s\n  orbitmesh-ctl stats --json\n  orbitmesh-ctl stats --clear"
    )]
    Stats(StatsArgs),
    /// The control process: drive predicted schedules into running dataplanes.
    #[command(
        after_help = "Each dataplane is kept one FIB ahead, staged for its predicted instant, and\n\
each activation is read back. The wiring file maps node ids to control sockets and\n\
neighbours to ports and MACs (see control/src/distribute.rs).\n\n\
Examples:\n  orbitmesh-ctl run --schedule /tmp/kuiper/schedule --wiring wiring.toml\n  \
orbitmesh-ctl run --schedule out/schedule --wiring w.toml --start +5s --time-scale 10"
    )]
    Run(RunArgs),
    /// Set a port administratively up or down (fault injection, tests), or
    /// give it an emulated propagation delay: `port delay PORT 12ms` (0 = none).
    #[command(
        after_help = "Examples:\n  orbitmesh-ctl port down isl0\n  orbitmesh-ctl port up isl0\n  orbitmesh-ctl port delay isl0 12.5ms   # emulation only: hold frames 12.5 ms"
    )]
    Port {
        #[arg(value_parser = ["up", "down", "delay"])]
        state: String,
        port: String,
        /// With `delay`: how long (e.g. 12ms, 800us, 0).
        delay: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Shell completions for orbitmesh-ctl, on standard output.
    #[command(
        after_help = "Examples:\n  orbitmesh-ctl completions bash > /usr/share/bash-completion/completions/orbitmesh-ctl\n  orbitmesh-ctl completions zsh > /usr/share/zsh/vendor-completions/_orbitmesh-ctl\n  orbitmesh-ctl completions fish > /usr/share/fish/vendor_completions.d/orbitmesh-ctl.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Man pages, from these command-line definitions: orbitmesh-ctl.1 and
    /// one page per subcommand (orbitmesh-ctl-fib-load.1, ...) in DIR.
    #[command(after_help = "Examples:\n  orbitmesh-ctl man --out /usr/share/man/man1")]
    Man {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ScheduleCmd {
    /// Hand a dataplane a schedule (JSON: node, serial, entries of at_ns
    /// and a full FIB or a delta; see core/src/schedule.rs): it activates
    /// each entry at its instant by itself and keeps the schedule in its
    /// state directory across restarts.
    #[command(
        after_help = "Examples:\n  orbitmesh-ctl schedule load sat-17.schedule.json --socket /run/orbitmesh/sat-17.sock"
    )]
    Load {
        file: PathBuf,
        /// Accept entries with an empty FIB (no labels, no routes).
        #[arg(long)]
        allow_empty: bool,
        /// Sign with this secret key file (`orbitmesh-ctl keygen`); needed
        /// by a dataplane that trusts keys.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// The schedule held: serial, each entry's instant and FIB version, the
    /// entry in force.
    Show {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Bytes `run` sends per node per hour of schedule (offline): every
    /// node's plan from `predict`'s schedules as windows, each entry in
    /// full and delta-encoded (every neighbour a schedule names is wired).
    Size {
        /// Directory of node-<id>.json schedules (predict --out DIR/schedule).
        #[arg(long)]
        schedule: PathBuf,
        /// Window length, as `run --window`.
        #[arg(long, default_value = "10m")]
        window: String,
    },
    /// End the schedule; the FIB in force stays.
    Clear {
        /// Sign the clear with this secret key file (its serial is the one
        /// held plus one).
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Args)]
struct Target {
    /// The dataplane's control socket [default: the --config file's, else
    /// /run/orbitmesh/orbitmesh.sock, orbitmesh-dp's default].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The dataplane's configuration file: its control socket is used.
    #[arg(long, conflicts_with = "socket")]
    config: Option<PathBuf>,
    /// The dataplane's remote control channel (its `remote_listen`),
    /// HOST:PORT over TCP: state changes only as signed orders (--key).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["socket", "config"])]
    remote: Option<String>,
}

impl Target {
    /// Where to talk to: the remote channel, or the unix socket.
    fn endpoint(&self) -> Result<endpoint::Endpoint, control::fib_ops::OpError> {
        match &self.remote {
            Some(r) if !endpoint::is_host_port(r) => Err(control::fib_ops::bad_input(format!(
                "--remote {r:?}: expected HOST:PORT, e.g. sat-17.mgmt:7470 or [fd00::11]:7470"
            ))),
            Some(r) => Ok(endpoint::Endpoint::Tcp(r.clone())),
            None => self.path().map(endpoint::Endpoint::Socket),
        }
    }

    /// The socket to talk to.
    fn path(&self) -> Result<PathBuf, control::fib_ops::OpError> {
        use control::fib_ops::bad_input;
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        match &self.config {
            Some(c) => {
                endpoint::socket_of_config(c).map_err(|e| bad_input(format!("--config: {e}")))
            }
            None => Ok(endpoint::default_socket(endpoint::DEFAULT_NAME)),
        }
    }
}

#[derive(Debug, Subcommand)]
enum FibCmd {
    /// The active (and staged) FIB, like `ip -M route`.
    #[command(
        after_help = "Examples:\n  orbitmesh-ctl fib show\n  orbitmesh-ctl fib show --label 16002\n  orbitmesh-ctl fib show --prefix 10.2.3.4 --json"
    )]
    Show {
        #[arg(long)]
        label: Option<u32>,
        /// A prefix (exact) or an address (longest match).
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Load a FIB file now, or stage it for --at TIME.
    #[command(
        after_help = "TIME: now, +2s, +500ms, +90min, +1h, 2026-11-25T16:00:00Z, or nanoseconds since the Unix epoch\n(CLOCK_REALTIME, UTC: the clock NTP/PTP keep in step across nodes).\n\nExamples:\n  orbitmesh-ctl fib load sat-17.fib.toml\n  orbitmesh-ctl fib load next.fib.json --at +2s"
    )]
    Load {
        file: PathBuf,
        #[arg(long)]
        at: Option<String>,
        /// Accept a FIB with no labels and no routes (it drops every frame).
        #[arg(long)]
        allow_empty: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Activate the staged FIB now.
    Swap {
        #[command(flatten)]
        target: Target,
    },
    /// Reactivate the previous FIB (the one the last load, swap or
    /// activation replaced), once: a second rollback is refused until
    /// another FIB is activated; it never goes forward again.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
    /// Validate a FIB file offline (no dataplane needed).
    Check {
        file: PathBuf,
        /// Accept a FIB with no labels and no routes.
        #[arg(long)]
        allow_empty: bool,
    },
    /// What differs between two FIB files.
    Diff { a: PathBuf, b: PathBuf },
    /// Rewrite a FIB file in another format, named by the output's
    /// extension: .omfib (compact binary), .json, or TOML otherwise.
    Convert { input: PathBuf, output: PathBuf },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Directory of node-<id>.json schedules (orbitmesh-ctl predict --out DIR/schedule).
    #[arg(long)]
    schedule: PathBuf,
    /// Wiring file (TOML): links per node, and its socket or remote channel.
    #[arg(long)]
    wiring: PathBuf,
    /// NODE=SOCKET, overriding where the wiring says node NODE is reached
    /// (its socket or remote channel) with this control socket; repeat.
    #[arg(long = "dataplane")]
    dataplanes: Vec<String>,
    /// When schedule time 0 happens: now, +2s, RFC 3339, or Unix ns.
    #[arg(long, default_value = "+2s")]
    start: String,
    /// Schedule seconds per wall-clock second (emulations may run faster).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Print the per-node report as JSON.
    #[arg(long)]
    json: bool,
    /// How often to read every dataplane's port states (e.g. 200ms; 0 = never).
    /// When a port goes down (or back up), routes are recomputed without
    /// that link from the scenario beside the schedules (scenario.json) and
    /// pushed at once. Without a scenario only the dataplanes' backups act.
    #[arg(long, default_value = "200ms")]
    watch_ports: String,
    /// Also write every event (activation verified or late, links down,
    /// repair pushed, dataplane unreachable, ...) as a JSON line to PATH
    /// (`-`: standard output), for programs following the run.
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,
    /// How much schedule time each node is given ahead (e.g. 10m, 1h): it
    /// follows that much on its own, with no controller (topped up every
    /// half window).
    #[arg(long, default_value = "10m")]
    window: String,
    /// Stage one FIB ahead at a time instead of uploading windows (the
    /// design before windows: nodes freeze when the controller is gone).
    #[arg(long, conflicts_with = "key")]
    one_ahead: bool,
    /// Sign every window with this secret key (orbitmesh-ctl keygen), for
    /// dataplanes that take only signed orders.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// Refresh every interval (e.g. 1s, 500ms) until interrupted.
    #[arg(long)]
    watch: Option<String>,
    #[arg(long)]
    json: bool,
    /// Clear the counters first (like a router's "clear counters"): stats
    /// then counts from now. The metrics endpoint keeps its raw totals.
    #[arg(long)]
    clear: bool,
    #[command(flatten)]
    target: Target,
}

/// Largest wiring file read (a few hundred bytes a node): `/dev/zero` or
/// a wrong, huge file is refused, not read forever.
const MAX_WIRING_BYTES: usize = 64 << 20;

/// `run`'s wiring file, with the `--dataplane NODE=SOCKET` overrides.
fn read_wiring(a: &RunArgs) -> Result<control::distribute::Wiring, control::fib_ops::OpError> {
    use control::distribute;
    use control::fib_ops::bad_input;
    let text = orbitmesh_core::file::read_limited(&a.wiring, MAX_WIRING_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|e| format!("not UTF-8 text ({e})")))
        .map_err(|e| bad_input(format!("{}: {e}", a.wiring.display())))?;
    let mut wiring = distribute::Wiring::parse(&text)
        .map_err(|e| bad_input(format!("{}: {e}", a.wiring.display())))?;
    for d in &a.dataplanes {
        let (n, s) = d
            .split_once('=')
            .filter(|(_, s)| !s.is_empty())
            .ok_or_else(|| bad_input(format!("--dataplane {d:?}: expected NODE=SOCKET")))?;
        let n: u32 = n
            .parse()
            .map_err(|_| bad_input(format!("--dataplane {d:?}: {n:?} is not a node id")))?;
        let node = wiring.node_mut(n).ok_or_else(|| {
            bad_input(format!("--dataplane {d:?}: node {n} is not in the wiring"))
        })?;
        *node = distribute::NodeWiring::at_socket(s.into(), node.links.clone(), node.local.clone());
    }
    Ok(wiring)
}

/// What `run` does with each event: its line (if any) to the log, and
/// with `--events PATH` a JSON record to PATH.
fn event_sink(
    path: Option<&std::path::Path>,
) -> Result<impl FnMut(control::events::Event), control::fib_ops::OpError> {
    let mut sink = path
        .map(|p| {
            control::events::Sink::open(p)
                .map_err(|e| control::fib_ops::bad_input(format!("--events {}: {e}", p.display())))
        })
        .transpose()?;
    Ok(move |e: control::events::Event| {
        if let Some(line) = e.line() {
            errln!("{line}");
        }
        if let Some(s) = &mut sink {
            if let Err(err) = s.record(e, orbitmesh_core::time::now_ns()) {
                errln!("--events: {err}; no more events are written");
                sink = None;
            }
        }
    })
}

fn run_cmd(a: RunArgs) -> Result<(), control::fib_ops::OpError> {
    use control::distribute;
    use control::fib_ops::bad_input;
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        return Err(bad_input(format!(
            "--time-scale {}: must be a positive number",
            a.time_scale
        )));
    }
    let wiring = read_wiring(&a)?;
    if a.key.is_none() {
        if let Some((id, w)) = wiring.nodes().into_iter().find(|(_, w)| w.remote.is_some()) {
            // Everything sent would be refused: say so now, not per node.
            return Err(bad_input(format!(
                "{}: node {id} is reached over its remote channel ({}), which takes only \
                 signed orders: give --key (and no --one-ahead)",
                a.wiring.display(),
                w.endpoint()
            )));
        }
    }
    let schedules =
        distribute::read_schedules(&a.schedule).map_err(|e| bad_input(e.to_string()))?;
    let scenario = Scenario::read(&a.schedule).map_err(|e| bad_input(e.to_string()))?;
    if let Some(s) = &scenario {
        let path = a.schedule.join(predict::scenario::FILE);
        distribute::check_scenario(s, &schedules)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    }
    let plans = node_plans(&a, &wiring, &schedules)?;
    let start = control::fib_ops::parse_time(&a.start, orbitmesh_core::time::now_ns())?;
    warn_unsynchronized_clocks(&plans);
    errln!(
        "driving {} dataplanes, {} FIBs in all, schedule time 0 at {} (x{})",
        plans.len(),
        plans.iter().map(|p| p.2.len()).sum::<usize>(),
        control::fib_ops::format_time(start),
        a.time_scale
    );
    let call = |at: &endpoint::Endpoint, r: orbitmesh_core::protocol::Request| {
        orbitmesh_core::protocol::call_at(at, &r)
    };
    let watch = control::duration::parse_ns(&a.watch_ports)
        .map_err(|e| bad_input(format!("--watch-ports: {e}")))?;
    if scenario.is_none() && watch > 0 {
        errln!(
            "{}: no {}: link failures are left to the dataplanes' backups (no recomputation)",
            a.schedule.display(),
            predict::scenario::FILE
        );
    }
    let replan = |failed: &std::collections::BTreeSet<(u32, u32)>, t: i64, steps| {
        let s = scenario.as_ref().expect("only called with a scenario");
        distribute::replan(s, failed, t, steps, &wiring)
    };
    let repair = distribute::Repair {
        poll_every_ns: watch.max(1) as u64,
        ports: wiring
            .nodes()
            .iter()
            .flat_map(|(id, w)| {
                w.links
                    .iter()
                    .map(move |l| ((*id, l.port.clone()), l.neighbor))
            })
            .collect(),
        replan: &replan,
    };
    let mut emit = event_sink(a.events.as_deref())?;
    let repair = (scenario.is_some() && watch > 0).then_some(&repair);
    let reports = if a.one_ahead {
        distribute::drive(
            &plans,
            start,
            a.time_scale,
            &call,
            &orbitmesh_core::time::now_ns,
            repair,
            &mut emit,
        )
    } else {
        let window_ns = control::duration::parse_ns(&a.window)
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| {
                bad_input(format!(
                    "--window {:?}: expected a positive duration like 10m",
                    a.window
                ))
            })?;
        let key = a
            .key
            .as_deref()
            .map(control::fib_ops::read_secret_key)
            .transpose()?;
        let sign = |s: &orbitmesh_core::schedule::Schedule| {
            key.as_ref()
                .expect("only with a key")
                .sign_schedule(s)
                .map_err(|e| e.to_string())
        };
        let win = control::windows::Windows {
            window_ns,
            sign: key.is_some().then_some(&sign as control::windows::Signer),
        };
        control::windows::drive_windows(
            &plans,
            start,
            a.time_scale,
            win,
            &call,
            &orbitmesh_core::time::now_ns,
            repair,
            &mut emit,
        )
    };
    run_report(&reports, a.json)
}

/// Every wired node's plan, reached at its socket or remote channel; a
/// wired node without a schedule is bad input.
fn node_plans(
    a: &RunArgs,
    wiring: &control::distribute::Wiring,
    schedules: &[predict::schedule::NodeSchedule],
) -> Result<Vec<control::distribute::NodePlan>, control::fib_ops::OpError> {
    let mut plans = Vec::new();
    for (id, w) in wiring.nodes() {
        let sched = schedules.iter().find(|s| s.node == id).ok_or_else(|| {
            control::fib_ops::bad_input(format!(
                "node {id} is wired but {} has no schedule for it",
                a.schedule.display()
            ))
        })?;
        let (plan, unwired) = control::distribute::plan(sched, w);
        if unwired > 0 {
            errln!(
                "node {id}: up to {unwired} entries name a next hop that is not wired; left out"
            );
        }
        plans.push((id, w.endpoint(), plan));
    }
    Ok(plans)
}

/// Warns about each dataplane whose clock is not synchronized (best
/// effort: a dataplane not up yet is reached, and retried, later).
fn warn_unsynchronized_clocks(plans: &[control::distribute::NodePlan]) {
    for (id, at, _) in plans {
        if let Ok(orbitmesh_core::protocol::Response::Version(v)) =
            orbitmesh_core::protocol::call_at(at, &orbitmesh_core::protocol::Request::Version)
        {
            if let Some(w) = control::fib_ops::clock_warning(&v) {
                errln!("warning: node {id}: {w}");
            }
        }
    }
}

/// `run`'s report (a line per node, or JSON); refused (status 3) when an
/// activation was late or failed.
fn run_report(
    reports: &[control::distribute::NodeReport],
    json: bool,
) -> Result<(), control::fib_ops::OpError> {
    let bad: usize = reports.iter().map(|r| r.late + r.failed).sum();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(reports).expect("serialisable")
        );
    }
    for r in reports.iter().filter(|_| !json) {
        outln!(
            "node {:>5}: staged {:>5}  verified {:>5}  late {:>3}  failed {:>3}  repairs {:>3}",
            r.node,
            r.staged,
            r.verified,
            r.late,
            r.failed,
            r.repairs
        );
    }
    if bad > 0 {
        return Err(control::fib_ops::refused(format!(
            "{bad} late or failed activations"
        )));
    }
    Ok(())
}

/// `fib load FILE [--at TIME]`: loads now or stages, after warning about
/// what may be a mistake (fib_ops::load_warnings).
fn load_cmd(
    file: &std::path::Path,
    at: Option<&str>,
    allow_empty: bool,
    target: &Target,
) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self, bad_input};
    use orbitmesh_core::protocol::{Request, Response};
    let fib = fib_ops::read_fib_to_load(file)?;
    let now = orbitmesh_core::time::now_ns();
    let at_ns = at.map(|t| fib_ops::parse_time(t, now)).transpose()?;
    let socket = target.endpoint()?;
    let Response::Version(running) = fib_ops::call_at(&socket, &Request::Version)? else {
        return Err(bad_input("unexpected answer to version"));
    };
    for w in fib_ops::load_warnings(&running, fib.version, at_ns, now) {
        errln!("warning: {w}");
    }
    let v = fib.version;
    let Some(at_ns) = at_ns else {
        return match fib_ops::call_at(&socket, &Request::LoadFib { fib, allow_empty })? {
            Response::Ok { version } => {
                outln!("loaded: FIB version {version} active");
                Ok(())
            }
            other => Err(bad_input(format!("unexpected answer {other:?}"))),
        };
    };
    let req = Request::StageFib {
        fib,
        at_ns,
        allow_empty,
    };
    fib_ops::call_at(&socket, &req)?;
    outln!(
        "staged: FIB version {v} activates at {} ({at_ns} ns)",
        fib_ops::format_time(at_ns)
    );
    Ok(())
}

/// The shortest `stats --watch` interval: the screen is redrawn each time.
const MIN_WATCH_NS: u64 = 100_000_000;

fn ops_main(cmd: Command) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self, bad_input};
    use orbitmesh_core::protocol::{Request, Response};
    let ok_version = |r: Response, what: &str| match r {
        Response::Ok { version } => {
            outln!("{what}: FIB version {version} active");
            Ok(())
        }
        other => Err(bad_input(format!("unexpected answer {other:?}"))),
    };
    match cmd {
        Command::Predict(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled in main")
        }
        Command::Fib(FibCmd::Check { file, allow_empty }) => {
            outln!("{}", fib_ops::check(&file, allow_empty)?);
            Ok(())
        }
        Command::Fib(FibCmd::Convert { input, output }) => {
            let spec = fib_ops::read_fib(&input)?;
            fib_ops::write_fib(&spec, &output)?;
            errln!(
                "{} -> {}: {} labels, {} routes",
                input.display(),
                output.display(),
                spec.labels.len(),
                spec.routes.len()
            );
            Ok(())
        }
        Command::Fib(FibCmd::Diff { .. }) => unreachable!("handled in main"),
        Command::Fib(FibCmd::Show {
            label,
            prefix,
            json,
            target,
        }) => show_cmd(label, prefix, json, &target),
        Command::Fib(FibCmd::Load {
            file,
            at,
            allow_empty,
            target,
        }) => load_cmd(&file, at.as_deref(), allow_empty, &target),
        Command::Fib(FibCmd::Swap { target }) => ok_version(
            fib_ops::call_at(&target.endpoint()?, &Request::Swap)?,
            "swapped",
        ),
        Command::Fib(FibCmd::Rollback { target }) => ok_version(
            fib_ops::call_at(&target.endpoint()?, &Request::Rollback)?,
            "rolled back",
        ),
        Command::Run(a) => run_cmd(a),
        Command::Schedule(c) => schedule_cmd(c),
        Command::Keygen { out } => {
            let public = control::fib_ops::keygen(&out)?;
            outln!("{public}");
            errln!(
                "secret key in {} (keep it private), public key in {}.pub",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::Port {
            state,
            port,
            delay,
            target,
        } => port_cmd(&state, &port, delay.as_deref(), &target),
        Command::Stats(a) => stats_cmd(&a),
    }
}

/// `fib show [--label L] [--prefix P] [--json]`: the running FIB, or the
/// entries of one label or prefix.
fn show_cmd(
    label: Option<u32>,
    prefix: Option<String>,
    json: bool,
    target: &Target,
) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self, bad_input};
    use orbitmesh_core::protocol::{Request, Response};
    if let Some(l) = label {
        fib_ops::check_show_label(l)?;
    }
    if let Some(p) = &prefix {
        fib_ops::check_show_prefix(p)?;
    }
    let query = match (label, &prefix) {
        (Some(l), _) => Some(format!("label {l}")),
        (None, Some(p)) => Some(p.clone()),
        (None, None) => None,
    };
    let v = match fib_ops::call_at(&target.endpoint()?, &Request::ShowFib { label, prefix })? {
        Response::Fib(v) => v,
        other => return Err(bad_input(format!("unexpected answer {other:?}"))),
    };
    let found =
        |s: &orbitmesh_core::fib::spec::FibSpec| !s.labels.is_empty() || !s.routes.is_empty();
    let none =
        query.filter(|_| !found(&v.active) && !v.staged.as_ref().is_some_and(|s| found(&s.0)));
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).expect("serialisable")
        );
    } else if none.is_none() {
        out!("{}", fib_ops::render_view(&v));
    }
    // Like grep(1): a query that matches nothing exits 1, and says so.
    match none {
        Some(q) => Err(fib_ops::refused(format!(
            "no entry for {q} in FIB version {}{}",
            v.active.version,
            v.staged.as_ref().map_or(String::new(), |s| format!(
                " (active) or {} (staged)",
                s.0.version
            ))
        ))),
        None => Ok(()),
    }
}

/// `port up|down PORT` and `port delay PORT DURATION`.
fn port_cmd(
    state: &str,
    port: &str,
    delay: Option<&str>,
    target: &Target,
) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self, bad_input};
    use orbitmesh_core::protocol::Request;
    match delay {
        Some(d) if state == "delay" => {
            let ns = control::duration::parse_ns(d)
                .ok()
                .filter(|&n| n >= 0)
                .ok_or_else(|| bad_input(format!("delay {d:?}: expected a duration like 12ms")))?;
            fib_ops::call_at(
                &target.endpoint()?,
                &Request::SetPortDelay {
                    port: port.to_string(),
                    delay_ns: ns as u64,
                },
            )?;
            outln!("port {port}: frames held {:.3} ms", ns as f64 / 1e6);
            Ok(())
        }
        _ if state == "delay" || delay.is_some() => Err(bad_input(
            "usage: port up|down PORT, or port delay PORT DURATION".to_string(),
        )),
        _ => {
            fib_ops::call_at(
                &target.endpoint()?,
                &Request::SetPort {
                    port: port.to_string(),
                    up: state == "up",
                },
            )?;
            outln!("port {port} administratively {state}");
            Ok(())
        }
    }
}

/// `stats [--json] [--watch INTERVAL] [--clear]`: the counters once, or
/// redrawn every interval with rates since the last draw; with `--clear`,
/// cleared first.
fn stats_cmd(a: &StatsArgs) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self, bad_input};
    use orbitmesh_core::protocol::{Request, Response};
    use std::io::IsTerminal;
    let every = match &a.watch {
        None => None,
        Some(w) => {
            let ns = fib_ops::parse_time(&format!("+{w}"), 0).map_err(|_| {
                bad_input(format!(
                    "--watch {w:?}: expected an interval like 1s or 500ms"
                ))
            })?;
            if ns < MIN_WATCH_NS {
                return Err(bad_input(format!(
                    "--watch {w:?}: the interval must be at least 100ms"
                )));
            }
            Some(std::time::Duration::from_nanos(ns))
        }
    };
    if a.clear {
        let r = fib_ops::call_at(&a.target.endpoint()?, &Request::ClearCounters)?;
        if !matches!(r, Response::Ok { .. }) {
            return Err(bad_input("unexpected answer to clear_counters"));
        }
    }
    let mut prev: Option<orbitmesh_core::protocol::StatsInfo> = None;
    loop {
        let Response::Stats(s) = fib_ops::call_at(&a.target.endpoint()?, &Request::Stats)? else {
            return Err(bad_input("unexpected answer to stats"));
        };
        if a.json {
            outln!("{}", serde_json::to_string(&s).expect("serialisable"));
        } else {
            // Redrawn in place on a terminal; a file or pipe gets each
            // draw after a blank line, with no escape sequences.
            if every.is_some() && std::io::stdout().is_terminal() {
                out!("\x1b[2J\x1b[H");
            } else if prev.is_some() {
                outln!();
            }
            out!("{}", fib_ops::render_stats(&s, prev.as_ref()));
        }
        let Some(d) = every else { return Ok(()) };
        prev = Some(s);
        std::thread::sleep(d);
    }
}

const PREDICT_EXAMPLES: &str = "\
Examples:
  # Kuiper K1 with the 100 largest cities, 200 s at 100 ms, two pairs
  orbitmesh-ctl predict --preset kuiper-k1 \\
      --ground-stations control/data/ground_stations/cities_top100.basic.txt \\
      --duration 200s --step 100ms --pairs 1156:1232,1160:1167 --out /tmp/kuiper

  # A Walker shell from parameters (P:S:INC_DEG:ALT_KM[:REV_PER_DAY])
  orbitmesh-ctl predict --walker 6:21:81:1000 --ground-stations gs.txt --gs-count 5 \\
      --duration 60s --step 50ms --out /tmp/walker

  # Two shells in one scenario (satellites numbered shell after shell)
  orbitmesh-ctl predict --preset kuiper-k1,telesat-t1 --ground-stations gs.txt --duration 30s

  # A TLE file in satgenpy's format (header line 'P S' gives the +Grid)
  orbitmesh-ctl predict --tle tles.txt --max-gsl-m 1260000 --ground-stations gs.txt

  # A real TLE set: +Grid per inferred shell, or laser terminals to the nearest
  # satellites in range (4 per satellite, 5000 km, 10% hysteresis)
  orbitmesh-ctl predict --tle control/data/tle/Starlink.tle --max-gsl-m 1260000 \
      --ground-stations gs.txt --infer-grid --inter-shell-terminals 1
  orbitmesh-ctl predict --tle control/data/tle/Starlink.tle --max-gsl-m 1260000 \
      --ground-stations gs.txt --isl-policy nearest --isl-range-km 5000 --isl-hysteresis 0.1

Output: <out>/schedule/node-<id>.json (one FIB schedule per node, times in ns since
the scenario epoch; ground station i is the label edge router for the i-th
--gs-prefix-len block of --gs-prefix-base), <out>/pairs/{rtt,path}_<a>_to_<b>.csv,
<out>/pairs/rtt_<a>_to_<b>.svg (RTT over time), <out>/summary.{md,json} (inputs;
per pair RTT min/mean/p50/p99/max, path changes, hops, outages).
Node numbering as satgenpy: satellites 0..N-1, ground station i = node N+i.";

#[derive(Debug, Args)]
struct PredictArgs {
    #[command(flatten)]
    scenario: Scenario,
    /// Output directory.
    #[arg(long, default_value = "predict-out")]
    out: PathBuf,
    /// Ground-station pairs a:b,c:d (node ids) for RTT/path series.
    #[arg(long)]
    pairs: Option<String>,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Do not build or write FIB schedules (analysis / benchmark only).
    #[arg(long)]
    no_schedule: bool,
    /// Also write the constellation's TLEs (satgenpy `tles.txt` form) to this file.
    #[arg(long)]
    dump_tles: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let model = a.scenario.build(&Default::default())?;
    let inputs = a.scenario.inputs(&model)?;
    let names: Vec<String> = model.net.stations.iter().map(|s| s.name.clone()).collect();
    if let Some(path) = &a.dump_tles {
        std::fs::write(path, &model.tles).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut sched = if a.no_schedule {
        None
    } else {
        Some(model.schedule_builder(a.scenario.srgb_base)?)
    };
    let (net, window, step_ns) = (model.net, model.window, model.window.step_ns);
    let epoch_utc = model.epoch_utc;
    let (n_sats, n_gs) = (net.n_sats(), net.stations.len());
    let pairs = match &a.pairs {
        Some(spec) => output::parse_pairs(spec, n_sats, n_gs)?,
        None => Vec::new(),
    };
    let steps = window.times().len();
    if !a.quiet {
        errln!(
            "predict: {n_sats} satellites, {n_gs} ground stations, {}, {steps} steps of {} ms, epoch {epoch_utc}",
            net.isls.describe(),
            step_ns as f64 / 1e6
        );
    }
    let mut rec = output::Recorder::new(n_sats, n_gs, pairs.clone()).with_names(names);
    let t0 = Instant::now();
    let mut last_report = Instant::now();
    let quiet = a.quiet;
    let left_out = predict::simulate(
        &net,
        window,
        a.threads,
        |step| {
            rec.push(step);
            if let Some(s) = sched.as_mut() {
                s.push(step);
            }
            Ok(())
        },
        |done, total| {
            if !quiet && (last_report.elapsed().as_secs_f64() > 1.0 || done == total) {
                last_report = Instant::now();
                let el = t0.elapsed().as_secs_f64();
                errln!(
                    "  {done}/{total} steps ({:.0}%), {el:.1} s, {:.2} ms/step",
                    100.0 * done as f64 / total as f64,
                    el * 1e3 / done as f64
                );
            }
        },
    )?;
    let compute = t0.elapsed().as_secs_f64();
    let (isl_stats, gsl_stats) = output::Summary::link_stats(&rec.links);
    let minutes = (steps as f64 * step_ns as f64) / 60e9;
    let rate = |v: &[u64]| {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<u64>() as f64 / n / minutes;
        let max = v.iter().copied().max().unwrap_or(0) as f64 / minutes;
        (mean, max)
    };
    let fib_rate = sched.as_ref().map(|s| rate(&s.changes_per_node));
    let primary_rate = sched.as_ref().map(|s| rate(&s.primary_changes_per_node));
    let summary = output::Summary {
        inputs,
        satellites: n_sats,
        ground_stations: n_gs,
        steps,
        step_ns,
        isls_per_step: isl_stats,
        gsls_per_step: gsl_stats,
        fib_changes_per_node_per_minute: fib_rate,
        primary_changes_per_node_per_minute: primary_rate,
        reachability: rec.reachability(),
        left_out,
        unreachable: pairs
            .iter()
            .enumerate()
            .map(|(k, (x, y))| (format!("{x}:{y}"), rec.unreachable(k, window.end_ns)))
            .collect(),
        pairs: (0..pairs.len())
            .map(|k| rec.pair_stats(k, window.end_ns))
            .collect(),
        compute_seconds: compute,
        ms_per_step: compute * 1e3 / steps as f64,
    };
    if let Some(s) = &sched {
        let dir = a.out.join("schedule");
        s.write(&dir)?;
        a.scenario.write(&dir)?;
    }
    if !pairs.is_empty() {
        rec.write_pairs(&a.out)?;
    }
    summary.write(&a.out)?;
    if !a.quiet {
        err!("{}", summary.to_markdown());
        errln!("wrote {}", a.out.display());
    }
    Ok(())
}

/// `fib diff A B`, with diff(1)'s exit status: 0 the same, 1 they
/// differ, 2 trouble (a file missing or not a FIB).
fn diff_cmd(a: &std::path::Path, b: &std::path::Path) -> Result<i32, control::fib_ops::OpError> {
    use control::fib_ops;
    match fib_ops::diff(&fib_ops::read_fib(a)?, &fib_ops::read_fib(b)?) {
        Some(d) => {
            out!("{d}");
            Ok(1)
        }
        None => {
            outln!("no differences");
            Ok(0)
        }
    }
}

/// An error and its causes as one sentence, each cause once: a message
/// that already quotes its source ("x: No such file") is not followed by
/// it again. No backtrace: bad input is not a crash.
fn sentence(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if !out.contains(&cause) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause);
        }
    }
    out
}

fn main() {
    orbitmesh_core::cli::on_broken_pipe(control::os::die_of_sigpipe);
    match Cli::parse().command {
        Command::Predict(a) => {
            // Everything predict refuses is its input: the scenario, the
            // files it reads, the directory it writes (exit 2).
            if let Err(e) = predict_cmd(*a) {
                errln!("orbitmesh-ctl: error: {}", sentence(&e));
                std::process::exit(2);
            }
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "orbitmesh-ctl", &mut out);
            out!("{}", String::from_utf8_lossy(&out));
        }
        Command::Man { out } => {
            // Every page, the subcommands' too (clap_mangen names them
            // orbitmesh-ctl-fib-load.1 and so on).
            if let Err(e) = std::fs::create_dir_all(&out)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &out))
            {
                errln!(
                    "orbitmesh-ctl: error: man pages into {}: {e}",
                    out.display()
                );
                std::process::exit(2);
            }
        }
        Command::Fib(FibCmd::Diff { a, b }) => match diff_cmd(&a, &b) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                errln!("orbitmesh-ctl: error: {e}");
                std::process::exit(e.code);
            }
        },
        other => {
            if let Err(e) = ops_main(other) {
                errln!("orbitmesh-ctl: error: {e}");
                std::process::exit(e.code);
            }
        }
    }
}

/// `schedule size`: bytes per node per hour of schedule, full vs delta.
fn size_cmd(dir: &std::path::Path, window: &str) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::bad_input;
    use control::windows;
    let window_ns = control::duration::parse_ns(window)
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| bad_input(format!("--window {window:?}: expected a positive duration")))?;
    let schedules =
        control::distribute::read_schedules(dir).map_err(|e| bad_input(e.to_string()))?;
    let (mut full, mut delta, mut entries, mut span) = (0u64, 0u64, 0usize, 0i64);
    for s in &schedules {
        let (plan, _) = control::distribute::plan(s, &windows::wiring_for(s));
        full += windows::encoded_bytes(&plan, window_ns, false);
        delta += windows::encoded_bytes(&plan, window_ns, true);
        entries += plan.len();
        span = span.max(plan.last().map_or(0, |p| p.0) - plan.first().map_or(0, |p| p.0));
    }
    let per_node_hour = |b: u64| b as f64 / schedules.len() as f64 / (span as f64 / 3.6e12);
    outln!(
        "{} nodes, {:.1} h of schedule, {} instants, window {window}",
        schedules.len(),
        span as f64 / 3.6e12,
        entries
    );
    outln!(
        "full:  {:>12.0} bytes per node per hour",
        per_node_hour(full)
    );
    outln!(
        "delta: {:>12.0} bytes per node per hour ({:.1}x smaller)",
        per_node_hour(delta),
        full as f64 / delta.max(1) as f64
    );
    Ok(())
}

/// `schedule load|show|clear`.
fn schedule_cmd(c: ScheduleCmd) -> Result<(), control::fib_ops::OpError> {
    use control::fib_ops::{self as ops, bad_input};
    use orbitmesh_core::protocol::{Request, Response};
    let (req, target, json) = match c {
        ScheduleCmd::Size { schedule, window } => return size_cmd(&schedule, &window),
        ScheduleCmd::Load {
            file,
            allow_empty,
            key,
            target,
        } => {
            let schedule = ops::read_schedule(&file)?;
            let signed = match key {
                Some(k) => Some(
                    ops::read_secret_key(&k)?
                        .sign_schedule(&schedule)
                        .map_err(|e| bad_input(format!("{}: {e}", file.display())))?,
                ),
                None => None,
            };
            (
                Request::LoadSchedule {
                    schedule,
                    allow_empty,
                    signed,
                },
                target,
                false,
            )
        }
        ScheduleCmd::Show { json, target } => (Request::ShowSchedule, target, json),
        ScheduleCmd::Clear { key, target } => {
            let (serial, signed) = match key {
                Some(k) => {
                    let Response::Schedule(held) =
                        ops::call_at(&target.endpoint()?, &Request::ShowSchedule)?
                    else {
                        return Err(bad_input("unexpected answer to show_schedule"));
                    };
                    let serial = held.serial.map_or(1, |s| s + 1);
                    let m = orbitmesh_core::sign::clear_message(&held.node, serial);
                    (Some(serial), Some(ops::read_secret_key(&k)?.sign(&m)))
                }
                None => (None, None),
            };
            (Request::ClearSchedule { serial, signed }, target, false)
        }
    };
    match ops::call_at(&target.endpoint()?, &req)? {
        Response::Schedule(info) if json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&info).expect("serializable")
            );
            Ok(())
        }
        Response::Schedule(info) => {
            out!("{}", ops::schedule_table(&info));
            Ok(())
        }
        other => Err(bad_input(format!("unexpected answer {other:?}"))),
    }
}
