//! orbitmesh-dp: the AF_XDP label-switching dataplane process.
//!
//! One worker per queue index, pinned to a core; each owns one UMEM and one
//! AF_XDP socket per port. An XDP program switches MPLS transit frames in
//! the kernel (the fast path, `--fast-path xdp`), steers the other MPLS
//! frames (and IP on edge ports) to the sockets, and passes everything else
//! to the kernel. A control socket
//! loads, stages, swaps and rolls back FIBs; the main thread's housekeeping
//! (dataplane::housekeeping) follows carrier and the workers' health.

use anyhow::{bail, Context, Result};
use clap::Parser;
use dataplane::config::{Config, FastPathMode, PortConf, PuntPolicy};
use dataplane::delay_line::DelayLine;
use dataplane::fast_publish::FastPublisher;
use dataplane::housekeeping;
use dataplane::ring::PacketIo;
use dataplane::shared::Node;
use dataplane::sys::{signal, xdp, xsk};
use dataplane::watch::PortWatch;
use dataplane::worker::{self, PollMode};
use orbitmesh_core::fib::{FibSnapshot, FibSpec};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "orbitmesh-dp",
    version,
    about = "orbitmesh AF_XDP MPLS label-switching dataplane",
    after_help = "Examples:\n  \
      orbitmesh-dp --name sat-17 --port isl0=veth-isl0 --port isl1=veth-isl1 --fib examples/sat-17.fib.toml\n  \
      orbitmesh-dp --config examples/sat-17.toml --core 1 --poll busy\n  \
      orbitmesh-dp --port isl0=eth0 --edge gsl0=eth1 --fib examples/ler.fib.toml --socket /tmp/ler.sock\n  \
      orbitmesh-dp --config examples/sat-17.toml --metrics-listen 127.0.0.1:9469\n  \
      orbitmesh-dp --config examples/sat-17.toml --check-config\n\n\
      Control it with the socket (default /run/orbitmesh/NAME.sock); SIGINT/SIGTERM detach the XDP program and exit."
)]
struct Args {
    /// Configuration file (TOML); flags below override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A port (interface) to forward on; repeat for each. NAME=IFACE names it for the FIB.
    #[arg(long = "port", value_name = "[NAME=]IFACE")]
    ports: Vec<String>,
    /// A label-edge port: IPv4/IPv6 is steered too (ingress push / egress).
    #[arg(long = "edge", value_name = "[NAME=]IFACE")]
    edges: Vec<String>,
    /// Initial FIB file (TOML or JSON, see README); empty FIB if none.
    #[arg(long)]
    fib: Option<PathBuf>,
    /// Check the configuration (file and flags) and the FIB it names
    /// against its ports, then exit: 0 with a summary, or 1 with the error
    /// naming the field. Opens no interface, socket or state directory.
    #[arg(long)]
    check_config: bool,
    /// Print shell completions for orbitmesh-dp (bash, zsh, fish, ...) and exit.
    #[arg(long, value_name = "SHELL")]
    completions: Option<clap_complete::Shell>,
    /// Write the man page, orbitmesh-dp.1, into DIR and exit.
    #[arg(long, value_name = "DIR")]
    man: Option<PathBuf>,
    /// Node name (logs, stats, default socket path).
    #[arg(long)]
    name: Option<String>,
    /// Control socket path.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Remote control channel (TCP ADDR:PORT): signed orders only; needs
    /// trusted keys in the config.
    #[arg(long, value_name = "ADDR:PORT")]
    remote_listen: Option<String>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Directory for what outlives a restart (the schedule followed).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Core to pin a worker to; repeat (worker q uses the q-th core).
    #[arg(long = "core")]
    cores: Vec<usize>,
    /// Frames per batch (1-64).
    #[arg(long)]
    batch: Option<usize>,
    /// busy | sleep-when-idle
    #[arg(long, value_parser = parse_poll)]
    poll: Option<PollMode>,
    /// With --poll busy: kernel busy polling (SO_PREFER_BUSY_POLL), NAPI
    /// budget; an idle pass runs each port's NAPI in the worker's own
    /// recvfrom, on the worker's core, where the driver gives the socket a
    /// NAPI instance (veth does not; a warning says so).
    #[arg(long)]
    busy_poll_budget: Option<u32>,
    /// With sleep-when-idle: after a wake-up, let frames gather this many µs
    /// before receiving (like a NIC's rx-usecs; fewer wake-ups per frame at
    /// low rates, more latency) [default: 0 = off].
    #[arg(long)]
    coalesce_us: Option<u32>,
    /// auto | zero-copy | copy (for ports given on the command line)
    #[arg(long, value_parser = parse_mode, default_value = "auto")]
    mode: xsk::XdpMode,
    /// Queues per port (one worker each).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Use generic (SKB) XDP even where native XDP works.
    #[arg(long)]
    skb: bool,
    /// Replace an XDP program already attached to a port.
    #[arg(long)]
    force: bool,
    /// Emulation only: put a delay line in front of every TX ring, so
    /// `orbitmesh-ctl port delay PORT 12ms` can hold frames for a link's
    /// propagation delay (off: no per-pass cost, and delays are refused).
    #[arg(long)]
    delay_line: bool,
    /// The XDP transit fast path: xdp (untagged MPLS transit switched in
    /// the kernel's XDP hook, every other frame by the AF_XDP workers) or
    /// off (every frame by the workers) [default: xdp where native XDP
    /// attaches; off with --delay-line or --skb].
    #[arg(long, value_parser = parse_fast_path, env = "ORBITMESH_FAST_PATH")]
    fast_path: Option<FastPathMode>,
    /// Punted frames (router alert, OAM): drop, or host (to a TAP interface).
    #[arg(long, value_parser = parse_punt)]
    punt: Option<PuntPolicy>,
    /// Log filter: error, warn, info, debug, trace or off; or RUST_LOG
    /// directives (TARGET=LEVEL, comma-separated).
    #[arg(long, default_value = "info")]
    log: String,
    /// Log lines as text, or as JSON objects (one a line: timestamp,
    /// level, fields, and the control connection's uid/pid as span).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn parse_poll(s: &str) -> Result<PollMode, String> {
    match s {
        "busy" => Ok(PollMode::Busy),
        "sleep-when-idle" | "sleep" | "wakeup" => Ok(PollMode::SleepWhenIdle),
        _ => Err(format!("{s:?}: expected busy or sleep-when-idle")),
    }
}

fn parse_punt(s: &str) -> Result<PuntPolicy, String> {
    match s {
        "drop" => Ok(PuntPolicy::Drop),
        "host" => Ok(PuntPolicy::Host),
        _ => Err(format!("{s:?}: expected drop or host")),
    }
}

fn parse_fast_path(s: &str) -> Result<FastPathMode, String> {
    match s {
        "xdp" => Ok(FastPathMode::Xdp),
        "off" => Ok(FastPathMode::Off),
        _ => Err(format!("{s:?}: expected xdp or off")),
    }
}

fn parse_mode(s: &str) -> Result<xsk::XdpMode, String> {
    match s {
        "auto" => Ok(xsk::XdpMode::Auto),
        "copy" => Ok(xsk::XdpMode::Copy),
        "zero-copy" | "zc" => Ok(xsk::XdpMode::ZeroCopy),
        _ => Err(format!("{s:?}: expected auto, zero-copy or copy")),
    }
}

fn port_arg(s: &str, edge: bool, mode: xsk::XdpMode, queues: u32) -> PortConf {
    let (name, iface) = match s.split_once('=') {
        Some((n, i)) => (Some(n.to_string()), i.to_string()),
        None => (None, s.to_string()),
    };
    PortConf {
        iface,
        name,
        queues,
        mode,
        edge,
    }
}

fn config(a: &Args) -> Result<Config> {
    let mut c = match &a.config {
        Some(p) => Config::read(p)?,
        None => Config::default(),
    };
    for p in &a.ports {
        c.ports.push(port_arg(p, false, a.mode, a.queues));
    }
    for p in &a.edges {
        c.ports.push(port_arg(p, true, a.mode, a.queues));
    }
    if let Some(f) = &a.fib {
        c.fib = Some(f.clone());
    }
    if let Some(n) = &a.name {
        c.name = n.clone();
    }
    if let Some(d) = &a.state_dir {
        c.state_dir = Some(d.clone());
    }
    if let Some(s) = &a.socket {
        c.control_socket = Some(s.clone());
    }
    if let Some(r) = &a.remote_listen {
        c.remote_listen = Some(r.clone());
    }
    if let Some(m) = &a.metrics_listen {
        c.metrics_listen = Some(m.clone());
    }
    if !a.cores.is_empty() {
        c.cores = a.cores.clone();
    }
    if let Some(b) = a.batch {
        c.batch = b;
    }
    if let Some(p) = a.poll {
        c.poll = p;
    }
    if let Some(b) = a.busy_poll_budget {
        c.busy_poll_budget = Some(b);
    }
    if let Some(u) = a.coalesce_us {
        c.coalesce_us = Some(u);
    }
    if let Some(p) = a.punt {
        c.punt = p;
    }
    if let Some(f) = a.fast_path {
        c.fast_path = Some(f);
    }
    if a.delay_line && c.fast_path == Some(FastPathMode::Xdp) {
        bail!("fast path xdp (--fast-path, ORBITMESH_FAST_PATH or fast_path in the config) with --delay-line: frames switched in XDP would skip the delay line; give --fast-path off or leave it unset");
    }
    c.validate()?;
    c.check_cores(&dataplane::config::usable_cores())?;
    Ok(c)
}

fn load_fib(c: &Config) -> Result<FibSnapshot> {
    let Some(path) = &c.fib else {
        tracing::warn!("no FIB given: every frame is dropped (no route) until one is loaded");
        return Ok(FibSnapshot::empty(0));
    };
    let bytes =
        FibSpec::read_file(path).with_context(|| format!("reading FIB {}", path.display()))?;
    let spec = FibSpec::from_file_bytes(path, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if spec.is_empty() {
        tracing::warn!(
            fib = %path.display(),
            version = spec.version,
            "the FIB has no labels and no routes: every frame is dropped until another is loaded"
        );
    }
    dataplane::shared::build_fib(&spec, &c.port_names())
        .map_err(|e| anyhow::anyhow!("{}: FIB refused: {e}", path.display()))
}

/// Opens the TAP interface and starts the thread that writes punted frames
/// to it. Returns the queue workers hand frames to.
fn punt_to_host(iface: &str, node: Arc<Node>, stop: Arc<AtomicBool>) -> Result<worker::PuntQueue> {
    let mut tap = dataplane::sys::tap::Tap::open(iface)
        .with_context(|| format!("creating punt TAP interface {iface}"))?;
    let up = std::process::Command::new("ip")
        .args(["link", "set", "dev", iface, "up"])
        .status();
    if !matches!(up, Ok(s) if s.success()) {
        tracing::warn!(iface, "could not bring the punt interface up");
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1024);
    std::thread::Builder::new()
        .name("om-punt".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(f) => {
                        let c = if tap.send(&f).is_ok() {
                            &node.punt.delivered
                        } else {
                            &node.punt.write_failed
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })?;
    tracing::info!(
        iface,
        "punted frames go to the host through this TAP interface"
    );
    Ok(tx)
}

/// Logs go to stderr, coloured only on a terminal (and not with NO_COLOR
/// set): a log file or pipe gets plain text. A log reader that goes away
/// loses the log, never the dataplane (no panic on a failed write).
fn init_logging(filter: &str, format: LogFormat) -> Result<()> {
    use std::io::IsTerminal;
    check_log_levels(filter)?;
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        anyhow::anyhow!("--log {filter:?} is not a log filter ({e}); give error, warn, info, debug or RUST_LOG syntax")
    })?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().with_current_span(false).init(),
    }
    Ok(())
}

/// The levels `--log` takes, alone or after `target=`.
const LOG_LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// Refuses a bare `--log` directive that is not a level: RUST_LOG syntax
/// reads `--log verbose` as "everything from a target named verbose",
/// which silently hides every line the dataplane logs. A target is given
/// as `target=level`.
fn check_log_levels(filter: &str) -> Result<()> {
    for d in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if d.contains('=') || d.contains('[') {
            continue; // target=level or a span filter: EnvFilter checks it
        }
        if !LOG_LEVELS.contains(&d.to_ascii_lowercase().as_str()) {
            bail!(
                "--log {filter:?}: {d:?} is not a log level (give one of {}, or TARGET=LEVEL)",
                LOG_LEVELS.join(", ")
            );
        }
    }
    Ok(())
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() {
    let args = Args::parse();
    if args.completions.is_some() || args.man.is_some() {
        if let Err(e) = generate_docs(&args) {
            orbitmesh_core::errln!("orbitmesh-dp: error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let go = |args: Args| {
        if args.check_config {
            check(&args)
        } else {
            run(args)
        }
    };
    if let Err(e) = init_logging(&args.log, args.log_format).and_then(|()| go(args)) {
        orbitmesh_core::errln!("orbitmesh-dp: error: {e:#}");
        std::process::exit(1);
    }
}

/// `--completions SHELL`, `--man DIR`: from the definitions above, so they
/// always match the binary that prints them.
fn generate_docs(args: &Args) -> Result<()> {
    use clap::CommandFactory;
    if let Some(shell) = args.completions {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Args::command(), "orbitmesh-dp", &mut out);
        orbitmesh_core::out!("{}", String::from_utf8_lossy(&out));
    }
    if let Some(dir) = &args.man {
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Args::command(), dir))
            .with_context(|| format!("man page into {}", dir.display()))?;
    }
    Ok(())
}

/// `--check-config`: everything `run` checks before it touches the
/// system (configuration, trusted keys, remote address, the FIB built for
/// the configured ports), and a one-line summary on standard output.
fn check(args: &Args) -> Result<()> {
    let c = config(args).map_err(|e| match &args.config {
        Some(p) => e.context(p.display().to_string()),
        None => e,
    })?;
    c.trust()?;
    c.remote_addr()?;
    let fib = load_fib(&c)?;
    orbitmesh_core::outln!(
        "{}: valid configuration for node {}: ports {}, FIB version {}, control socket {}",
        args.config
            .as_ref()
            .map_or("flags".into(), |p| p.display().to_string()),
        c.name,
        c.port_names().join(", "),
        fib.version(),
        c.socket_path().display()
    );
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let c = config(&args)?;
    for p in &c.ports {
        xdp::ifindex(&p.iface)?;
    }
    let fib = load_fib(&c)?;
    if dataplane::sys::clock::synchronized() == Some(false) {
        tracing::warn!("the host clock is not synchronized (NTP/PTP): staged FIBs activate at this clock's idea of the instant");
    }
    xdp::raise_memlock();
    signal::install();

    let queues = c.ports[0].queues;
    let mut node = Node::new(&c.name, c.port_names(), fib, queues as usize);
    node.delay_line = args.delay_line;
    let node = Arc::new(node);
    let stop = Arc::new(AtomicBool::new(false));
    // Bound before any XDP program is attached: an address in use stops
    // start-up with nothing to undo.
    let metrics = match c.metrics_addr()? {
        Some(addr) => {
            let m = dataplane::metrics::serve(addr, node.clone(), stop.clone())?;
            tracing::info!(bound = %m.addr(), "metrics endpoint: GET /metrics");
            Some(m)
        }
        None => None,
    };
    let mut steering = attach(&c, &args)?;
    // The interfaces XDP is attached to, watched for carrier and deletion.
    let mut ports = PortWatch::of_config(&c)?;
    let ios = bind_sockets(&c, &mut steering)?;
    // After the sockets: frames the fast path hands on must find them.
    let fast = fast_path(&c, &mut steering, &node)?;

    let follower = follow_schedule(&c, &node, &stop)?;
    let socket = c.socket_path();
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let ctl = dataplane::ctl::serve(&socket, node.clone(), stop.clone())
        .with_context(|| format!("control socket {}", socket.display()))?;
    let remote = match c.remote_addr()? {
        Some(addr) => {
            let limits = dataplane::ctl::Limits::default();
            let r = dataplane::ctl::serve_remote(
                addr,
                node.clone(),
                stop.clone(),
                limits,
                c.remote_reads,
            )
            .with_context(|| format!("remote control channel {addr}"))?;
            tracing::info!(bound = %r.addr(), reads = c.remote_reads, "remote control channel: signed orders only");
            Some(r)
        }
        None => None,
    };
    let workers = spawn_workers(&c, ios, &node, &stop)?;
    tracing::info!(
        node = %c.name,
        ports = ?c.port_names(),
        workers = workers.len(),
        fib_version = node.fib.current().version(),
        socket = %socket.display(),
        "forwarding"
    );

    let failed = housekeeping::run(&mut ports, &node, &workers, fast.as_deref());
    stop.store(true, Ordering::Relaxed);
    node.schedule.wake();
    let _ = follower.join();
    for w in workers {
        let _ = w.join();
    }
    dataplane::ctl::wake(&socket);
    let _ = ctl.join();
    if let Some(r) = remote {
        r.join();
    }
    if let Some(m) = metrics {
        m.join();
    }
    steering.detach();
    tracing::info!("stopped; XDP programs detached");
    if let Some(i) = failed {
        bail!("worker {i} stopped unexpectedly");
    }
    Ok(())
}

/// Loads and attaches the XDP program: the fast path in front of the
/// steering, unless it is off (configured, or implied by the delay line,
/// or by generic XDP when not asked for explicitly).
fn attach(c: &Config, args: &Args) -> Result<xdp::Steering> {
    let ports: Vec<(String, bool)> = c.ports.iter().map(|p| (p.iface.clone(), p.edge)).collect();
    let off = |why: &str| {
        tracing::info!(
            "fast path off ({why}): every MPLS frame (and IP on edge ports) goes to the AF_XDP workers"
        );
        xdp::Steering::load(&ports, args.force, args.skb, xdp::Program::Steer)
    };
    match c.fast_path {
        Some(FastPathMode::Off) => return off("fast_path = off"),
        None if args.delay_line => return off("the delay line needs every frame in a worker"),
        None if args.skb => return off("--skb: generic XDP"),
        _ => {}
    }
    let s = match xdp::Steering::load(&ports, args.force, args.skb, xdp::Program::Fast) {
        Ok(s) => s,
        // Only the default: steering alone still forwards every frame.
        Err(e) if c.fast_path.is_none() => {
            tracing::warn!(error = %format!("{e:#}"), "the XDP fast path cannot be loaded");
            return off("it cannot be loaded here");
        }
        Err(e) => return Err(e),
    };
    if c.fast_path.is_none() && s.generic.iter().any(|g| *g) {
        drop(s);
        return off("native XDP is not available on every port");
    }
    Ok(s)
}

/// The fast path's publisher, when the attached program has one: told of
/// every FIB change by the node's FIB handle from now on.
fn fast_path(
    c: &Config,
    steering: &mut xdp::Steering,
    node: &Arc<Node>,
) -> Result<Option<Arc<std::sync::Mutex<FastPublisher>>>> {
    if steering.program() != xdp::Program::Fast {
        return Ok(None);
    }
    let ifindexes = c
        .ports
        .iter()
        .zip(&steering.generic)
        .map(|(p, g)| Ok((p.iface.clone(), xdp::ifindex(&p.iface)?, *g)))
        .collect::<Result<Vec<_>>>()?;
    let p = FastPublisher::new(steering.take_fast_path()?, &ifindexes)?;
    let p = Arc::new(std::sync::Mutex::new(p));
    let q = p.clone();
    node.fib.set_observer(Box::new(move |cur, staged| {
        q.lock()
            .unwrap_or_else(|e| e.into_inner())
            .sync(cur, staged)
    }));
    let on = p.lock().unwrap_or_else(|e| e.into_inner()).enabled();
    tracing::info!(
        enabled = on,
        "fast path xdp: untagged MPLS transit (swap, PHP of an outer label, push, ECMP, backup next hop, TTL) is switched in XDP; label edge, pop, reserved labels, VLAN-tagged input and the rest go to the AF_XDP workers"
    );
    Ok(Some(p))
}

/// One AF_XDP socket per port and queue, each registered with the XDP
/// program's steering map; one [`xsk::XskIo`] (a UMEM) per queue.
fn bind_sockets(c: &Config, steering: &mut xdp::Steering) -> Result<Vec<xsk::XskIo>> {
    let ifaces: Vec<String> = c.ports.iter().map(|p| p.iface.clone()).collect();
    let mut ios = Vec::new();
    for q in 0..c.ports[0].queues {
        let cfg = xsk::XskConfig {
            mode: c.ports[0].mode,
            busy_poll_budget: c.busy_poll_budget,
            ..Default::default()
        };
        let io = xsk::XskIo::new(&ifaces, q, cfg)?;
        for slot in 0..ifaces.len() {
            steering.set_socket(slot, q, io.fd(slot))?;
        }
        tracing::info!(
            queue = q,
            zero_copy = io.zero_copy(),
            "AF_XDP sockets bound ({})",
            if io.zero_copy() {
                "zero-copy"
            } else {
                "copy mode"
            }
        );
        ios.push(io);
    }
    Ok(ios)
}

/// A worker per queue, pinned to its core if any, with the punt queue
/// when punted frames go to the host.
fn spawn_workers(
    c: &Config,
    ios: Vec<xsk::XskIo>,
    node: &Arc<Node>,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<()>>> {
    let punt = match c.punt {
        PuntPolicy::Drop => None,
        PuntPolicy::Host => Some(punt_to_host(&c.punt_iface(), node.clone(), stop.clone())?),
    };
    let mut workers = Vec::new();
    for (q, io) in ios.into_iter().enumerate() {
        let core = (!c.cores.is_empty()).then(|| c.cores[q % c.cores.len()]);
        let spec = worker::WorkerSpec {
            index: q,
            core,
            batch: c.batch,
            poll: c.poll,
            coalesce: c.coalesce(),
            punt: punt.clone(),
        };
        let io: Box<dyn PacketIo + Send> = if node.delay_line {
            // A TX ring's worth of frames per port, as the rings hold.
            let line = xsk::XskConfig::default().ring_size as usize;
            Box::new(DelayLine::new(io, node.clone(), line))
        } else {
            Box::new(io)
        };
        workers.push(worker::spawn(io, node.clone(), spec, stop.clone())?);
    }
    Ok(workers)
}

/// Holds the schedule kept in the state directory, if any (a restart
/// resumes it: the entry in force is activated before the workers start),
/// and follows the node's schedule from now on.
fn follow_schedule(
    c: &Config,
    node: &Arc<Node>,
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let trust = c.trust()?;
    if trust.required() {
        tracing::info!(
            keys = trust.keys.len(),
            "only signed orders change forwarding"
        );
    }
    node.schedule.set_trust(trust);
    if let Some(dir) = &c.state_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("state directory {}", dir.display()))?;
        node.schedule
            .set_state_dir(Some(dir.clone()))
            .map_err(anyhow::Error::msg)?;
        match node.schedule.resume(node, dir) {
            Ok(Some(serial)) => tracing::info!(serial, dir = %dir.display(), "schedule resumed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the kept schedule is refused; following none"),
        }
    }
    Ok(dataplane::schedule::spawn(node.clone(), stop.clone())?)
}
