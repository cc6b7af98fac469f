//! `orbitmesh-emu`: a live LEO mesh slice on one Linux box (see
//! control::emulate): predict, build namespaces and veths, start one
//! `orbitmesh-dp` per node and `orbitmesh-ctl run`, send traffic between
//! the hosts behind the ground stations, inject faults, report.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use control::emulate::lab::Lab;
use control::emulate::report::{self, FaultReport, FlowReport, PairTrace, Summary};
use control::emulate::traffic::{self, AgentReport, AgentSpec};
use control::emulate::{now_ns, Names, Topology};
use control::predict::scenario::{parse_duration_ns, Scenario};
use control::run::{LocalPort, NodeReport, NodeWiring, Wiring};
use dataplane::{errln, outln};

const EXAMPLES: &str = "Examples:
  # 6 planes x 6 satellites at 1500 km, 4 ground stations, 2400 s of orbit
  # in 120 s (x20), one ISL failing 600 s in and coming back 300 s later
  orbitmesh-emu run --walker 6:6:70:1500 --min-elevation-deg 10 --max-gsl-m 5000000 \\
      --ground-stations control/data/ground_stations/cities_top100.basic.txt --gs-count 4 \\
      --duration 2400s --time-scale 20 --rate 200 --fail-isl 0-1@600s+300s --out /tmp/emu

  # Random ISL failures on the traffic's paths (restored after 60 s of orbit)
  orbitmesh-emu run --walker 6:6:70:1500 ... --random-failures 3 --restore-after 60s

Needs root (namespaces, XDP) and orbitmesh-dp / orbitmesh-ctl beside this binary
(cargo build --release -p dataplane -p control). Everything it creates is removed
at the end, also on Ctrl-C.";

#[derive(Debug, Parser)]
#[command(name = "orbitmesh-emu", version, about = "orbitmesh constellation emulation on one box", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run an emulation (the scenario flags are `orbitmesh-ctl predict`'s;
    /// --duration is schedule time, wall time is duration / time-scale).
    Run(Box<RunArgs>),
    /// A traffic agent (run by `run` inside a host namespace).
    #[command(hide = true)]
    Agent(AgentArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: Scenario,
    /// Schedule seconds per wall-clock second.
    #[arg(long, default_value_t = 20.0)]
    time_scale: f64,
    /// UDP packets per second in each direction of each ground-station pair.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Take an ISL down at schedule time T, optionally back up DUR later:
    /// A-B@T or A-B@T+DUR (e.g. 3-4@600s+300s). Repeatable.
    #[arg(long = "fail-isl")]
    fail_isl: Vec<String>,
    /// This many failures of ISLs on the traffic's predicted paths, at random
    /// times between 20% and 80% of the window.
    #[arg(long, default_value_t = 0)]
    random_failures: usize,
    /// Bring randomly failed ISLs back up after this schedule time (e.g. 60s).
    #[arg(long)]
    restore_after: Option<String>,
    /// Seed of the random failures.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Prefix of the namespaces (PREFIX-n<node>, PREFIX-h<station>).
    #[arg(long, default_value = "ome")]
    prefix: String,
    /// Output directory (schedules, wiring, logs, summary, SVG).
    #[arg(long, default_value = "emu-out")]
    out: PathBuf,
    /// Exit with status 1 when fewer packets than this (%) are delivered.
    #[arg(long)]
    min_delivery: Option<f64>,
    /// Print the summary as JSON on stdout at the end.
    #[arg(long)]
    json: bool,
    /// Forward without the links' propagation delay (by default each
    /// dataplane holds frames for its link's predicted delay, updated every
    /// second, so the measured latency follows the orbits).
    #[arg(long)]
    no_delay: bool,
}

#[derive(Debug, Args)]
struct AgentArgs {
    #[arg(long)]
    id: u16,
    #[arg(long)]
    bind: SocketAddrV4,
    /// ID=ADDR:PORT, repeatable.
    #[arg(long = "peer")]
    peers: Vec<String>,
    #[arg(long)]
    rate: u32,
    #[arg(long)]
    duration_ms: u64,
    #[arg(long, default_value_t = 1500)]
    linger_ms: u64,
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run(*a),
        Cmd::Agent(a) => agent(a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            errln!("orbitmesh-emu: {e:#}");
            std::process::exit(2);
        }
    }
}

fn agent(a: AgentArgs) -> Result<i32> {
    let mut peers = Vec::new();
    for p in &a.peers {
        let (id, addr) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--peer {p:?}: expected ID=ADDR:PORT"))?;
        peers.push((
            id.parse()
                .with_context(|| format!("--peer {p:?}: bad id"))?,
            addr.parse()
                .with_context(|| format!("--peer {p:?}: bad address"))?,
        ));
    }
    let spec = AgentSpec {
        id: a.id,
        bind: a.bind,
        peers,
        rate: a.rate,
        duration: Duration::from_millis(a.duration_ms),
        linger: Duration::from_millis(a.linger_ms),
    };
    traffic::run_agent(&spec, &mut std::io::stdout().lock())?;
    Ok(0)
}

/// A fault to inject: at schedule time `at`, link `link` goes down (or up).
#[derive(Debug, Clone, Copy, PartialEq)]
struct FaultEvent {
    at_ns: i64,
    link: (u32, u32),
    up: bool,
}

fn parse_fail(spec: &str, topo: &Topology) -> Result<Vec<FaultEvent>> {
    let bad = |why: &str| anyhow!("--fail-isl {spec:?}: {why} (expected A-B@T or A-B@T+DUR)");
    let (link, when) = spec.split_once('@').ok_or_else(|| bad("no '@'"))?;
    let (a, b) = link
        .split_once('-')
        .ok_or_else(|| bad("no '-' between the nodes"))?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad("A is not a node id"))?,
        b.trim().parse().map_err(|_| bad("B is not a node id"))?,
    );
    let link = (a.min(b), a.max(b));
    if !topo.links.contains(&link) {
        bail!("--fail-isl {spec:?}: there is no link {a}-{b} in this emulation");
    }
    if topo.is_gs(a) || topo.is_gs(b) {
        bail!("--fail-isl {spec:?}: {a}-{b} is a ground link, not an ISL");
    }
    let (t, dur) = match when.split_once('+') {
        Some((t, d)) => (t, Some(d)),
        None => (when, None),
    };
    let at_ns = parse_duration_ns(t).map_err(|e| anyhow!("--fail-isl {spec:?}: {e}"))?;
    let mut v = vec![FaultEvent {
        at_ns,
        link,
        up: false,
    }];
    if let Some(d) = dur {
        let d = parse_duration_ns(d).map_err(|e| anyhow!("--fail-isl {spec:?}: {e}"))?;
        v.push(FaultEvent {
            at_ns: at_ns + d,
            link,
            up: true,
        });
    }
    Ok(v)
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A small deterministic generator for the random failures (SplitMix64).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

struct Predicted {
    topo: Topology,
    pairs: Vec<PairTrace>,
    names: Vec<String>,
    step_ns: i64,
    window_ns: (i64, i64),
    swaps: usize,
    net: control::predict::Network,
}

fn predict(a: &RunArgs) -> Result<Predicted> {
    let built = a.scenario.build(&Default::default())?;
    let net = &built.net;
    let (n_sats, n_gs) = (net.n_sats(), net.stations.len());
    if n_gs < 2 {
        bail!("an emulation needs at least 2 ground stations (traffic flows between them)");
    }
    if n_sats + n_gs > 1000 {
        bail!(
            "{} nodes: this emulation runs one namespace and one dataplane per node on one box; \
             use a slice of up to 1000 nodes (see README, 'Emulation scale')",
            n_sats + n_gs
        );
    }
    let mut topo = Topology::new(n_sats, n_gs, &net.isls.pairs, built.gs_prefixes.clone());
    let names: Vec<String> = net.stations.iter().map(|s| s.name.clone()).collect();
    let mut pairs: Vec<PairTrace> = Vec::new();
    for x in 0..n_gs {
        for y in x + 1..n_gs {
            pairs.push(PairTrace {
                a: x,
                b: y,
                name: format!("{}-{}", names[x], names[y]),
                ..Default::default()
            });
        }
    }
    let mut sched = built.schedule_builder(a.scenario.srgb_base)?;
    let n_nodes = n_sats + n_gs;
    control::predict::simulate(
        net,
        built.window,
        0,
        |step| {
            sched.push(step);
            topo.add_used_links(step);
            for p in &mut pairs {
                let d = step.gs_dist[p.b * n_gs + p.a];
                p.latency_ms.push(if d.is_finite() {
                    d / 299_792_458.0 * 1e3
                } else {
                    f64::NAN
                });
                let path = step
                    .path(n_nodes, n_sats, n_sats + p.a, p.b)
                    .unwrap_or_default();
                if p.paths.last().map(|l| &l.1) != Some(&path) {
                    p.paths.push((step.t_ns, path));
                }
            }
            Ok(())
        },
        |_, _| {},
    )?;
    let dir = a.out.join("schedule");
    sched.write(&dir)?;
    a.scenario.write(&dir)?;
    let swaps = sched.schedules().iter().map(|s| s.deltas.len()).sum();
    Ok(Predicted {
        topo,
        pairs,
        names,
        step_ns: built.window.step_ns,
        window_ns: (built.window.start_ns, built.window.end_ns),
        swaps,
        net: built.net,
    })
}

fn run(a: RunArgs) -> Result<i32> {
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        bail!("--time-scale {}: must be a positive number", a.time_scale);
    }
    if a.rate == 0 || a.rate > 100_000 {
        bail!("--rate {}: must be 1..100000 packets/s per flow", a.rate);
    }
    if dataplane::sys::cred::euid() != 0 {
        bail!(
            "needs root: it creates network namespaces and attaches XDP programs (run with sudo)"
        );
    }
    let exe = std::env::current_exe().context("locating this binary")?;
    let bindir = exe.parent().context("binary directory")?;
    let (dp_bin, ctl_bin) = (bindir.join("orbitmesh-dp"), bindir.join("orbitmesh-ctl"));
    for b in [&dp_bin, &ctl_bin] {
        if !b.exists() {
            bail!(
                "{} not found beside {}: cargo build --release -p dataplane -p control",
                b.display(),
                exe.display()
            );
        }
    }
    dataplane::sys::signal::install();
    std::fs::create_dir_all(a.out.join("logs"))
        .with_context(|| format!("creating {}", a.out.display()))?;
    let out = std::fs::canonicalize(&a.out)?;

    // 1. Prediction.
    let t0 = Instant::now();
    errln!("== predicting the scenario");
    let mut pred = predict(&a)?;
    let topo = pred.topo.clone();
    let (start_ns, end_ns) = pred.window_ns;
    let sched_len = end_ns - start_ns;
    let wall_s = sched_len as f64 / 1e9 / a.time_scale;
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
        a.time_scale,
        t0.elapsed().as_secs_f64()
    );
    if wall_s < 5.0 {
        bail!("{wall_s:.1} s of wall time is too short: give a longer --duration or a smaller --time-scale");
    }

    // Faults.
    let mut faults: Vec<FaultEvent> = Vec::new();
    for f in &a.fail_isl {
        faults.extend(parse_fail(f, &topo)?);
    }
    if a.random_failures > 0 {
        let restore = a
            .restore_after
            .as_deref()
            .map(parse_duration_ns)
            .transpose()
            .map_err(|e| anyhow!("--restore-after: {e}"))?;
        let mut rng = SplitMix(a.seed);
        for _ in 0..a.random_failures {
            let at = start_ns + sched_len / 5 + (rng.next() % (sched_len as u64 * 3 / 5)) as i64;
            // An ISL on some pair's path at that instant.
            let on_path: Vec<(u32, u32)> = pred
                .pairs
                .iter()
                .filter_map(|p| p.path_at(at))
                .flat_map(|p| p.windows(2).map(|w| (w[0].min(w[1]), w[0].max(w[1]))))
                .filter(|l| !topo.is_gs(l.1))
                .collect();
            if on_path.is_empty() {
                continue;
            }
            let link = on_path[(rng.next() % on_path.len() as u64) as usize];
            faults.push(FaultEvent {
                at_ns: at,
                link,
                up: false,
            });
            if let Some(r) = restore {
                faults.push(FaultEvent {
                    at_ns: at + r,
                    link,
                    up: true,
                });
            }
        }
    }
    faults.sort_by_key(|f| f.at_ns);

    // 2. Namespaces and links.
    errln!(
        "== building the slice in network namespaces ({}-*)",
        a.prefix
    );
    let t1 = Instant::now();
    let names = Names {
        prefix: a.prefix.clone(),
    };
    let mut lab = Lab::new(&a.prefix).map_err(|e| anyhow!(e))?;
    let mut nss: Vec<String> = topo.nodes().map(|n| names.node_ns(n)).collect();
    nss.extend((0..topo.n_gs).map(|g| names.host_ns(g)));
    lab.add_namespaces(&nss).map_err(|e| anyhow!(e))?;
    let mut veths = Vec::new();
    for &(x, y) in &topo.links {
        veths.push([
            (names.node_ns(x), Names::port(y), Names::mac(x, y)),
            (names.node_ns(y), Names::port(x), Names::mac(y, x)),
        ]);
    }
    let gs_node = |g: usize| (topo.n_sats + g) as u32;
    for g in 0..topo.n_gs {
        veths.push([
            (
                names.node_ns(gs_node(g)),
                Names::LAN.into(),
                Names::mac(gs_node(g), u32::MAX),
            ),
            (names.host_ns(g), Names::HOST.into(), Names::host_mac(g)),
        ]);
    }
    lab.add_veths(&veths).map_err(|e| anyhow!(e))?;
    for n in topo.nodes() {
        let mut cmds: Vec<String> = vec!["link set lo up".into()];
        cmds.extend(
            topo.neighbors(n)
                .iter()
                .map(|&b| format!("link set {} up", Names::port(b))),
        );
        if topo.is_gs(n) {
            let g = n as usize - topo.n_sats;
            let (_, gw) = topo.host_addr(g);
            let len = topo.gs_prefixes[g].len;
            cmds.push(format!("link set {} up", Names::LAN));
            cmds.push(format!("addr add {gw}/{len} dev {}", Names::LAN));
        }
        lab.ip_in(&names.node_ns(n), &cmds)
            .map_err(|e| anyhow!(e))?;
    }
    for g in 0..topo.n_gs {
        let (host, gw) = topo.host_addr(g);
        let len = topo.gs_prefixes[g].len;
        let cmds = vec![
            "link set lo up".to_string(),
            format!("link set {} up", Names::HOST),
            format!("addr add {host}/{len} dev {}", Names::HOST),
            format!("route add default via {gw}"),
            format!(
                "neigh replace {gw} lladdr {} dev {} nud permanent",
                Names::mac(gs_node(g), u32::MAX),
                Names::HOST
            ),
        ];
        lab.ip_in(&names.host_ns(g), &cmds)
            .map_err(|e| anyhow!(e))?;
        // veth leaves UDP/TCP checksums to "hardware" (CHECKSUM_PARTIAL); a
        // frame relayed through AF_XDP never gets them filled in, so the
        // hosts compute their own, as they would in front of a real NIC.
        lab.exec(
            &names.host_ns(g),
            &["ethtool", "-K", Names::HOST, "tx", "off"],
        )
        .map_err(|e| anyhow!("{e} (apt-get install ethtool)"))?;
    }
    errln!(
        "   {} namespaces, {} veth pairs in {:.1} s",
        nss.len(),
        veths.len(),
        t1.elapsed().as_secs_f64()
    );

    // 3. Wiring and dataplanes.
    let sock_dir = out.join("sock");
    std::fs::create_dir_all(&sock_dir)?;
    let sock = |n: u32| sock_dir.join(format!("n{n}.sock"));
    let wiring = Wiring::from_nodes(topo.nodes().map(|n| {
        let links = topo
            .neighbors(n)
            .into_iter()
            .map(|b| control::run::Link {
                neighbor: b,
                port: Names::port(b),
                dst_mac: Names::mac(b, n),
                src_mac: Names::mac(n, b),
            })
            .collect();
        let local = topo.is_gs(n).then(|| LocalPort {
            port: Names::LAN.into(),
            dst_mac: Names::host_mac(n as usize - topo.n_sats),
            src_mac: Names::mac(n, u32::MAX),
        });
        (
            n,
            NodeWiring {
                socket: sock(n),
                links,
                local,
            },
        )
    }));
    let wiring_path = out.join("wiring.toml");
    std::fs::write(&wiring_path, toml::to_string(&wiring)?)?;
    errln!(
        "== starting {} dataplanes (orbitmesh-dp, sleep-when-idle)",
        topo.nodes().count()
    );
    let t2 = Instant::now();
    let mut dp_pids = Vec::new();
    for n in topo.nodes() {
        let _ = std::fs::remove_file(sock(n));
        let mut argv: Vec<String> = vec![
            dp_bin.display().to_string(),
            "--name".into(),
            format!("n{n}"),
            "--socket".into(),
            sock(n).display().to_string(),
            "--poll".into(),
            "sleep-when-idle".into(),
            "--delay-line".into(),
            "--log".into(),
            "warn".into(),
        ];
        for b in topo.neighbors(n) {
            argv.push("--port".into());
            argv.push(Names::port(b));
        }
        if topo.is_gs(n) {
            argv.push("--edge".into());
            argv.push(Names::LAN.into());
        }
        let log = std::fs::File::create(out.join(format!("logs/n{n}.log")))?;
        let c = lab
            .spawn(
                &format!("n{n}"),
                &names.node_ns(n),
                &argv,
                Stdio::null(),
                log.into(),
            )
            .map_err(|e| anyhow!(e))?;
        dp_pids.push(c.id());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((label, st)) = lab.exited().into_iter().next() {
            let log =
                std::fs::read_to_string(out.join(format!("logs/{label}.log"))).unwrap_or_default();
            bail!(
                "dataplane {label} exited ({st}) while starting:\n{}",
                log.trim_end()
            );
        }
        let ready = topo.nodes().filter(|&n| sock(n).exists()).count();
        if ready == topo.nodes().count() {
            break;
        }
        if Instant::now() > deadline || dataplane::sys::signal::stop_requested() {
            bail!(
                "only {ready} of {} dataplanes came up within 60 s",
                topo.nodes().count()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    errln!("   all up in {:.1} s", t2.elapsed().as_secs_f64());
    let mut delays_sent = BTreeMap::new();
    if !a.no_delay {
        set_link_delays(&pred.net, &topo, start_ns, &sock, &mut delays_sent);
        errln!(
            "   links hold frames for their predicted propagation delay (updated every second; --no-delay: off)"
        );
    }

    // 4. The control process: schedule time `start_ns` at wall `t_start`.
    let lead = 2_000_000_000u64;
    let t_start = now_ns() + lead;
    // Schedule time 0 is the epoch; the window may start later.
    let zero = t_start - (start_ns as f64 / a.time_scale) as u64;
    let ctl_out = std::fs::File::create(out.join("run.json"))?;
    let ctl = lab
        .spawn(
            "ctl",
            &names.node_ns(0),
            &[
                ctl_bin.display().to_string(),
                "run".into(),
                "--schedule".into(),
                out.join("schedule").display().to_string(),
                "--wiring".into(),
                wiring_path.display().to_string(),
                "--start".into(),
                zero.to_string(),
                "--time-scale".into(),
                a.time_scale.to_string(),
                "--json".into(),
                "--watch-ports".into(),
                "100ms".into(),
            ],
            ctl_out.into(),
            Stdio::piped(),
        )
        .map_err(|e| anyhow!(e))?;
    let ctl_pid = ctl.id();
    let (ev_tx, ev_rx) = mpsc::channel::<String>();
    {
        let stderr = ctl.stderr.take().expect("piped");
        let tx = ev_tx.clone();
        let mut log = std::fs::File::create(out.join("logs/ctl.log"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let _ = tx.send(format!("control: {line}"));
            }
        });
    }
    let to_wall = |t: i64| zero + (t.max(0) as f64 / a.time_scale) as u64;

    // 5. Traffic, from just after the first FIB is in force.
    while now_ns() < t_start + 100_000_000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let traffic_ms = ((end_ns - start_ns) as f64 / 1e6 / a.time_scale) as u64 - 600;
    let (rep_tx, rep_rx) = mpsc::channel::<AgentReport>();
    for g in 0..topo.n_gs {
        let (host, _) = topo.host_addr(g);
        let mut argv = vec![
            exe.display().to_string(),
            "agent".into(),
            "--id".into(),
            g.to_string(),
            "--bind".into(),
            format!("{host}:7000"),
            "--rate".into(),
            a.rate.to_string(),
            "--duration-ms".into(),
            traffic_ms.to_string(),
        ];
        for p in (0..topo.n_gs).filter(|&p| p != g) {
            argv.push("--peer".into());
            argv.push(format!("{p}={}:7000", topo.host_addr(p).0));
        }
        let c = lab
            .spawn(
                &format!("agent{g}"),
                &names.host_ns(g),
                &argv,
                Stdio::piped(),
                Stdio::inherit(),
            )
            .map_err(|e| anyhow!(e))?;
        let stdout = c.stdout.take().expect("piped");
        let tx = rep_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(r) = serde_json::from_str::<AgentReport>(&line) {
                    let _ = tx.send(r);
                }
            }
        });
    }
    drop(rep_tx);
    // A ping across the mesh (ICMP through the label-switched path).
    let ping_out = std::fs::File::create(out.join("logs/ping.log"))?;
    lab.spawn(
        "ping",
        &names.host_ns(0),
        &[
            "ping".into(),
            "-c".into(),
            "10".into(),
            "-i".into(),
            "0.2".into(),
            topo.host_addr(1).0.to_string(),
        ],
        ping_out.into(),
        Stdio::null(),
    )
    .map_err(|e| anyhow!(e))?;

    // 6. Live view.
    errln!(
        "== running: {} flows at {} pps each; a line per second (delivered/s and lost per pair, \
         FIB versions in force)",
        topo.n_gs * (topo.n_gs - 1),
        a.rate
    );
    let header: Vec<String> = pred
        .pairs
        .iter()
        .map(|p| format!("{:>17}", truncate(&p.name, 17)))
        .collect();
    errln!("   wall  sched |{}| FIB versions", header.join("|"));
    let mut latest: BTreeMap<u16, AgentReport> = BTreeMap::new();
    let mut finals = 0;
    let mut prev: Vec<(u64, u64)> = vec![(0, 0); pred.pairs.len()];
    let mut fault_idx = 0;
    let mut fault_reports: Vec<FaultReport> = Vec::new();
    let mut next_tick = t_start + 1_000_000_000;
    let mut shown_paths: Vec<Option<Vec<u32>>> = vec![None; pred.pairs.len()];
    let mut ctl_cpu = 0.0;
    let mut dp_cpu = vec![0.0; dp_pids.len()];
    let mut interrupted = false;
    while finals < topo.n_gs {
        if dataplane::sys::signal::stop_requested() {
            interrupted = true;
            break;
        }
        let now = now_ns();
        // Faults due.
        while fault_idx < faults.len() && to_wall(faults[fault_idx].at_ns) <= now {
            let f = faults[fault_idx];
            fault_idx += 1;
            let (x, y) = f.link;
            let state = if f.up { "up" } else { "down" };
            lab.ip_in(
                &names.node_ns(x),
                &[format!("link set {} {state}", Names::port(y))],
            )
            .map_err(|e| anyhow!(e))?;
            let wall = (now - t_start) as f64 / 1e9;
            errln!("   {wall:5.1}s  ** ISL {x}-{y} {state} (injected)");
            if f.up {
                if let Some(r) = fault_reports.iter_mut().rev().find(|r| r.link == f.link) {
                    r.restored_at_s = Some(f.at_ns as f64 / 1e9);
                }
            } else {
                fault_reports.push(FaultReport {
                    link: f.link,
                    at_s: f.at_ns as f64 / 1e9,
                    restored_at_s: None,
                    wall_s: wall,
                    lost_around: 0,
                    repaired_after_s: None,
                    pairs_on_link: pred
                        .pairs
                        .iter()
                        .filter(|p| {
                            p.path_at(f.at_ns).is_some_and(|path| {
                                path.windows(2)
                                    .any(|w| (w[0].min(w[1]), w[0].max(w[1])) == f.link)
                            })
                        })
                        .map(|p| p.name.clone())
                        .collect(),
                });
            }
        }
        while let Ok(r) = rep_rx.try_recv() {
            if r.is_final {
                finals += 1;
            }
            latest.insert(r.id, r);
        }
        while let Ok(line) = ev_rx.try_recv() {
            if line.contains("links down") {
                // The control process pushed a repair: time it from the fault.
                let wall = (now_ns() - t_start) as f64 / 1e9;
                if let Some(f) = fault_reports
                    .iter_mut()
                    .rev()
                    .find(|f| f.repaired_after_s.is_none())
                {
                    f.repaired_after_s = Some(wall - f.wall_s);
                }
            }
            if !line.contains("version") || line.contains("refused") {
                errln!("          {line}");
            }
        }
        if now >= next_tick {
            next_tick += 1_000_000_000;
            let sched_t = start_ns + ((now - t_start) as f64 * a.time_scale) as i64;
            if !a.no_delay {
                set_link_delays(&pred.net, &topo, sched_t, &sock, &mut delays_sent);
            }
            let mut cells = Vec::new();
            for (k, p) in pred.pairs.iter_mut().enumerate() {
                let (mut rx, mut lost) = (0u64, 0u64);
                for (me, peer) in [(p.a, p.b), (p.b, p.a)] {
                    if let Some(f) = latest
                        .get(&(me as u16))
                        .and_then(|r| r.flows.iter().find(|f| f.src == peer as u16))
                    {
                        rx += f.rx;
                        lost += f.seq_end - f.rx;
                    }
                }
                let (drx, dlost) = (rx - prev[k].0.min(rx), lost.saturating_sub(prev[k].1));
                prev[k] = (rx, lost);
                p.delivered.push(drx);
                p.lost.push(dlost);
                cells.push(format!("{drx:>6}/s lost {dlost:>5}"));
                let path = p.path_at(sched_t).map(<[u32]>::to_vec);
                if path != shown_paths[k] {
                    let step = ((sched_t - start_ns) / pred.step_ns).max(0) as usize;
                    let step = step.min(p.latency_ms.len().saturating_sub(1));
                    let lat = p.latency_ms.get(step).copied().unwrap_or(f64::NAN);
                    errln!(
                        "          path {}: {} (predicted {:.1} ms one way)",
                        p.name,
                        path.as_ref().map_or("unreachable".into(), |v| v
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(" > ")),
                        lat
                    );
                    shown_paths[k] = path;
                }
            }
            let versions: Vec<u64> = topo
                .nodes()
                .filter_map(|n| {
                    match dataplane::ctl::call(&sock(n), &dataplane::ctl::Request::Version) {
                        Ok(dataplane::ctl::Response::Version(v)) => Some(v.active),
                        _ => None,
                    }
                })
                .collect();
            let (vmin, vmax) = (
                versions.iter().min().copied().unwrap_or(0),
                versions.iter().max().copied().unwrap_or(0),
            );
            errln!(
                "   {:4.0}s {:5.0}s |{}| v{vmin}..v{vmax} ({} of {} answering)",
                (now - t_start) as f64 / 1e9,
                sched_t as f64 / 1e9,
                cells.join("|"),
                versions.len(),
                topo.nodes().count()
            );
            for (c, &pid) in dp_cpu.iter_mut().zip(&dp_pids) {
                *c = cpu_seconds(pid).unwrap_or(*c);
            }
            ctl_cpu = cpu_seconds(ctl_pid).unwrap_or(ctl_cpu);
            for (label, st) in lab.exited() {
                if label.starts_with('n') {
                    bail!(
                        "dataplane {label} stopped ({st}) during the run; see {}/logs/{label}.log",
                        out.display()
                    );
                }
                if label == "ctl" && !st.success() {
                    let log = std::fs::read_to_string(out.join("logs/ctl.log")).unwrap_or_default();
                    bail!("the control process failed ({st}):\n{}", log.trim_end());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if interrupted {
        errln!("interrupted: cleaning up");
        return Ok(130);
    }
    // The control process ends after the last instant is verified.
    let ctl_status = lab.wait_for("ctl", Duration::from_secs(10));
    let run_reports: Vec<NodeReport> = std::fs::read_to_string(out.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if run_reports.is_empty() {
        let status = match ctl_status {
            Some(s) => s.to_string(),
            None => "still running after 10 s".into(),
        };
        errln!(
            "control process: no report ({status}); see {}/logs/ctl.log",
            out.display()
        );
    }
    let ping = std::fs::read_to_string(out.join("logs/ping.log")).unwrap_or_default();
    // Frames forwarded by all dataplanes (packet hops), for CPU per hop.
    let forwarded: u64 = topo
        .nodes()
        .filter_map(
            |n| match dataplane::ctl::call(&sock(n), &dataplane::ctl::Request::Stats) {
                Ok(dataplane::ctl::Response::Stats(st)) => Some(st.get("forwarded")),
                _ => None,
            },
        )
        .sum();
    lab.stop_children();
    drop(lab);

    // 7. Summary.
    let mut flows = Vec::new();
    for (&id, r) in &latest {
        for f in &r.flows {
            let sent = latest
                .get(&f.src)
                .and_then(|s| s.sent.iter().find(|(p, _)| *p == id))
                .map_or(0, |x| x.1);
            flows.push(FlowReport {
                from: pred.names[f.src as usize].clone(),
                to: pred.names[id as usize].clone(),
                predicted_ms: predicted_mean(&pred.pairs, f.src as usize, id as usize),
                sent,
                delivered: f.rx,
                duplicates: f.duplicates,
                reordered: f.reordered,
                latency_us: f.latency_us,
            });
        }
    }
    // Flows that delivered nothing still count what they sent.
    for (&id, r) in &latest {
        for &(peer, sent) in &r.sent {
            let (from, to) = (&pred.names[id as usize], &pred.names[peer as usize]);
            if !flows.iter().any(|f| &f.from == from && &f.to == to) {
                flows.push(FlowReport {
                    from: from.clone(),
                    to: to.clone(),
                    predicted_ms: predicted_mean(&pred.pairs, id as usize, peer as usize),
                    sent,
                    delivered: 0,
                    duplicates: 0,
                    reordered: 0,
                    latency_us: None,
                });
            }
        }
    }
    let order = |n: &str| pred.names.iter().position(|x| x == n).unwrap_or(usize::MAX);
    flows.sort_by_key(|f| (order(&f.from), order(&f.to)));
    let secs = pred.pairs.iter().map(|p| p.lost.len()).max().unwrap_or(0);
    for f in &mut fault_reports {
        let from = (f.wall_s - 1.0).max(0.0) as usize;
        let to = ((f.wall_s + 3.0).ceil() as usize).min(secs);
        f.lost_around = pred
            .pairs
            .iter()
            .map(|p| {
                p.lost[from.min(p.lost.len())..to.min(p.lost.len())]
                    .iter()
                    .sum::<u64>()
            })
            .sum();
    }
    let lost_after_recovery = fault_reports.last().map_or(0, |f| {
        let from = (f.wall_s + 2.0).ceil() as usize;
        pred.pairs
            .iter()
            .map(|p| p.lost[from.min(p.lost.len())..].iter().sum::<u64>())
            .sum()
    });
    let sent: u64 = flows.iter().map(|f| f.sent).sum();
    let delivered: u64 = flows.iter().map(|f| f.delivered).sum();
    // Loss outside the fault windows: what the scheduled swaps cost.
    let in_fault = |sec: usize| {
        fault_reports
            .iter()
            .any(|f| (sec as f64) + 1.0 >= f.wall_s - 1.0 && (sec as f64) < f.wall_s + 3.0)
    };
    let lost_outside_faults: u64 = pred
        .pairs
        .iter()
        .map(|p| {
            p.lost
                .iter()
                .enumerate()
                .filter(|(i, _)| !in_fault(*i))
                .map(|(_, l)| l)
                .sum::<u64>()
        })
        .sum();
    let summary = Summary {
        scenario: scenario_name(&a.scenario),
        nodes: topo.n_sats + topo.n_gs,
        links: topo.links.len(),
        time_scale: a.time_scale,
        wall_seconds: wall_s,
        schedule_seconds: sched_len as f64 / 1e9,
        rate_pps_per_flow: a.rate,
        flows,
        sent,
        delivered,
        delivery_ratio: delivered as f64 / sent.max(1) as f64,
        delivery_ratio_outside_faults: 1.0 - lost_outside_faults as f64 / sent.max(1) as f64,
        fib_swaps_verified: run_reports.iter().map(|r| r.verified as u64).sum(),
        fib_swaps_late: run_reports.iter().map(|r| r.late as u64).sum(),
        fib_swaps_failed: run_reports.iter().map(|r| r.failed as u64).sum(),
        repairs: run_reports.iter().map(|r| r.repairs as u64).sum(),
        path_changes: pred
            .pairs
            .iter()
            .map(|p| p.paths.len().saturating_sub(1))
            .sum(),
        faults: fault_reports,
        lost_after_recovery,
        dataplane_cpu_seconds: dp_cpu.iter().sum(),
        frames_forwarded: forwarded,
        control_cpu_seconds: ctl_cpu,
    };
    let md = summary.to_markdown()
        + &format!(
            "\nping {} -> {} across the mesh: {}\n",
            pred.names[0],
            pred.names[1],
            ping.lines()
                .find(|l| l.contains("packets transmitted"))
                .unwrap_or("no result")
        );
    std::fs::write(out.join("summary.md"), &md)?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    std::fs::write(
        out.join("timeline.svg"),
        report::svg(&pred.pairs, pred.step_ns, a.time_scale, &summary.faults),
    )?;
    errln!("\n{md}");
    errln!(
        "wrote {}/summary.md, summary.json, timeline.svg",
        out.display()
    );
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
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

/// Sets every link's propagation delay at schedule time `t` on both ends
/// (only where it moved by more than 50 us since `last`).
fn set_link_delays(
    net: &control::predict::Network,
    topo: &Topology,
    t: i64,
    sock: &dyn Fn(u32) -> PathBuf,
    last: &mut BTreeMap<(u32, u32), u64>,
) {
    let mut pos = Vec::new();
    if net.propagator.positions_ecef(t, &mut pos).is_err() {
        return;
    }
    let at = |n: u32| {
        if topo.is_gs(n) {
            net.stations[n as usize - topo.n_sats].ecef
        } else {
            pos[n as usize]
        }
    };
    for &(x, y) in &topo.links {
        let (p, q) = (at(x), at(y));
        let d = ((p.x - q.x).powi(2) + (p.y - q.y).powi(2) + (p.z - q.z).powi(2)).sqrt();
        let ns = (d / 299_792_458.0 * 1e9) as u64;
        if last.get(&(x, y)).is_some_and(|&o| o.abs_diff(ns) < 50_000) {
            continue;
        }
        last.insert((x, y), ns);
        for (n, nb) in [(x, y), (y, x)] {
            let _ = dataplane::ctl::call(
                &sock(n),
                &dataplane::ctl::Request::SetPortDelay {
                    port: Names::port(nb),
                    delay_ns: ns,
                },
            );
        }
    }
}

/// Mean predicted one-way latency (ms) between stations `x` and `y` over
/// the steps where they are reachable.
fn predicted_mean(pairs: &[PairTrace], x: usize, y: usize) -> Option<f64> {
    let p = pairs.iter().find(|p| (p.a, p.b) == (x.min(y), x.max(y)))?;
    let v: Vec<f64> = p
        .latency_ms
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn scenario_name(s: &Scenario) -> String {
    let mut parts: Vec<String> = s.preset.clone();
    parts.extend(s.walker.iter().map(|w| format!("Walker {w}")));
    if let Some(t) = &s.tle {
        parts.push(t.display().to_string());
    }
    parts.join(" + ")
}
