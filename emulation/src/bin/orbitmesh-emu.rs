//! `orbitmesh-emu`: a live LEO mesh slice on one Linux box (see the
//! `emulation` crate): predict, build namespaces and veths, start one
//! `orbitmesh-dp` per node and `orbitmesh-ctl run`, send traffic between
//! the hosts behind the ground stations, inject faults, report.
#![forbid(unsafe_code)]

use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use emulation::session::{self, Options};
use emulation::traffic::{self, AgentSpec};
use orbitmesh_core::errln;

const EXAMPLES: &str = "Examples:
  # 6 planes x 6 satellites at 1500 km, 4 ground stations, 2400 s of orbit
  # in 120 s (x20), one ISL failing 600 s in and coming back 300 s later
  orbitmesh-emu run --walker 6:6:70:1500 --min-elevation-deg 10 --max-gsl-m 5000000 \\
      --ground-stations control/data/ground_stations/cities_top100.basic.txt --gs-count 4 \\
      --duration 2400s --time-scale 20 --rate 200 --fail-isl 0-1@600s+300s --out /tmp/emu

  # Random ISL failures on the traffic's paths (restored after 60 s of orbit)
  orbitmesh-emu run --walker 6:6:70:1500 ... --random-failures 3 --restore-after 60s

  # Transit satellites switch labels in the kernel's XDP fast path
  # (orbitmesh-dp --fast-path xdp). There is no delay line then: no
  # propagation delay (latency measured is the host's only, hence
  # --no-delay) and links do not go away with the geometry.
  orbitmesh-emu run --walker 6:6:70:1500 ... --fast-path xdp --no-delay

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
    Run(Box<Options>),
    /// A traffic agent (run by `run` inside a host namespace).
    #[command(hide = true)]
    Agent(AgentArgs),
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
    orbitmesh_core::cli::on_broken_pipe(control::os::die_of_sigpipe);
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => session::run(&a),
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
