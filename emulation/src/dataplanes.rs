//! Part 3 of an emulation: the wiring file the control process reads and
//! one `orbitmesh-dp` per node, in the node's namespace, in
//! sleep-when-idle mode, with its configuration file (`OUT/conf`, written
//! by [`mgmt`](super::mgmt): trusted key and remote channel); then, unless `--no-delay`, every link's
//! propagation delay (an emulation-only delay line in each dataplane, set
//! over the control socket and updated every second as the orbits move).
//!
//! How the dataplanes forward ([`FastPath`]): by default every frame goes
//! through the AF_XDP workers and their delay line (`--delay-line
//! --fast-path off`); with `--fast-path xdp` transit frames are switched
//! in the kernel by the XDP fast path (issue 16) and never reach a worker,
//! so there is no delay line: no propagation delay and no links that go
//! away with the geometry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::lab::Lab;
use super::{Names, Topology};
use control::distribute::{Link, LocalPort, NodeWiring, Wiring};
use control::predict::Network;
use orbitmesh_core::protocol::{call, Request, Response, ScheduleInfo, StatsInfo, VersionInfo};

/// How the dataplanes forward transit frames (`orbitmesh-emu run
/// --fast-path`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FastPath {
    /// Every frame through the AF_XDP workers, with the emulation's delay
    /// line (propagation delay, links gone with the geometry).
    #[default]
    Off,
    /// Transit label switching in the kernel's XDP fast path; no delay
    /// line.
    Xdp,
}

impl FastPath {
    /// `orbitmesh-dp`'s flags for this mode.
    pub fn dp_args(self) -> &'static [&'static str] {
        match self {
            FastPath::Off => &["--delay-line", "--fast-path", "off"],
            FastPath::Xdp => &["--fast-path", "xdp"],
        }
    }

    /// Whether the dataplanes hold the delay line (propagation delay and
    /// links gone with the geometry are emulated).
    pub fn delay_line(self) -> bool {
        self == FastPath::Off
    }
}

/// The dataplane program and how it forwards.
#[derive(Debug, Clone)]
pub struct DpProgram {
    pub bin: PathBuf,
    pub fast_path: FastPath,
}

/// Where each node's control socket is: `DIR/n<node>.sock`.
#[derive(Debug, Clone)]
pub struct Sockets(pub PathBuf);

impl Sockets {
    pub fn of(&self, node: u32) -> PathBuf {
        self.0.join(format!("n{node}.sock"))
    }
}

/// The node's FIB versions (`Version`) at `socket`; `None` if it gives none.
pub fn ask_version(socket: &Path) -> Option<VersionInfo> {
    match call(socket, &Request::Version) {
        Ok(Response::Version(v)) => Some(v),
        _ => None,
    }
}

/// The node's counters (`Stats`); `None` if it gives none.
pub fn ask_stats(socket: &Path) -> Option<StatsInfo> {
    match call(socket, &Request::Stats) {
        Ok(Response::Stats(s)) => Some(s),
        _ => None,
    }
}

/// The schedule the node holds (`ShowSchedule`); `None` if it gives none.
pub fn ask_schedule(socket: &Path) -> Option<ScheduleInfo> {
    match call(socket, &Request::ShowSchedule) {
        Ok(Response::Schedule(s)) => Some(s),
        _ => None,
    }
}

/// The wiring of every node of `topo` (ports named after the neighbour).
pub fn wiring(topo: &Topology, sockets: &Sockets) -> Wiring {
    Wiring::from_nodes(topo.nodes().map(|n| {
        let links = topo
            .neighbors(n)
            .into_iter()
            .map(|b| Link {
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
        (n, NodeWiring::at_socket(sockets.of(n), links, local))
    }))
}

/// Starts a dataplane per node (log in `out/logs/n<node>.log`) and waits
/// until every control socket is there; returns their PIDs in node order.
pub fn start(
    lab: &mut Lab,
    topo: &Topology,
    names: &Names,
    dp: &DpProgram,
    sockets: &Sockets,
    out: &Path,
) -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for n in topo.nodes() {
        let _ = std::fs::remove_dir_all(super::outages::state_dir(out, n));
        pids.push(spawn_one(lab, topo, names, dp, sockets, out, n)?);
    }
    wait_ready(lab, topo, sockets, out)?;
    Ok(pids)
}

/// Starts node `n`'s dataplane (again, after a `--kill-node`: it resumes
/// the schedule kept in its state directory); its PID. Its log is
/// appended to.
pub fn spawn_one(
    lab: &mut Lab,
    topo: &Topology,
    names: &Names,
    dp: &DpProgram,
    sockets: &Sockets,
    out: &Path,
    n: u32,
) -> Result<u32> {
    let _ = std::fs::remove_file(sockets.of(n));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(format!("logs/n{n}.log")))?;
    let mut argv = argv(topo, n, dp, sockets);
    argv.push("--config".into());
    argv.push(super::mgmt::config_path(out, n).display().to_string());
    argv.push("--state-dir".into());
    argv.push(super::outages::state_dir(out, n).display().to_string());
    let c = lab.spawn(
        &format!("n{n}"),
        &names.node_ns(n),
        &argv,
        Stdio::null(),
        log.into(),
    )?;
    Ok(c.id())
}

/// `orbitmesh-dp`'s command line for node `n`.
fn argv(topo: &Topology, n: u32, dp: &DpProgram, sockets: &Sockets) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        dp.bin.display().to_string(),
        "--name".into(),
        format!("n{n}"),
        "--socket".into(),
        sockets.of(n).display().to_string(),
        "--poll".into(),
        "sleep-when-idle".into(),
        "--log".into(),
        "warn".into(),
    ];
    argv.extend(dp.fast_path.dp_args().iter().map(|a| a.to_string()));
    for b in topo.neighbors(n) {
        argv.push("--port".into());
        argv.push(Names::port(b));
    }
    if topo.is_gs(n) {
        argv.push("--edge".into());
        argv.push(Names::LAN.into());
    }
    argv
}

/// Waits (at most 60 s) for every dataplane's socket; a dataplane that
/// exits meanwhile is an error showing its log.
fn wait_ready(lab: &mut Lab, topo: &Topology, sockets: &Sockets, out: &Path) -> Result<()> {
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
        let ready = topo.nodes().filter(|&n| sockets.of(n).exists()).count();
        if ready == topo.nodes().count() {
            return Ok(());
        }
        if Instant::now() > deadline || crate::os::stop_requested() {
            bail!(
                "only {ready} of {} dataplanes came up within 60 s",
                topo.nodes().count()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets every link's propagation delay at schedule time `t` on both ends
/// (only where it moved by more than 50 us since `last`).
pub fn set_link_delays(
    net: &Network,
    topo: &Topology,
    t: i64,
    sockets: &Sockets,
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
            let _ = orbitmesh_core::protocol::call(
                &sockets.of(n),
                &orbitmesh_core::protocol::Request::SetPortDelay {
                    port: Names::port(nb),
                    delay_ns: ns,
                },
            );
        }
    }
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_runs_without_the_delay_line_and_the_default_with_it() {
        let topo = Topology::new(2, 1, &[(0, 1)], Vec::new());
        let sockets = Sockets(PathBuf::from("/run/x"));
        let args = |fast_path| {
            let dp = DpProgram {
                bin: PathBuf::from("/bin/orbitmesh-dp"),
                fast_path,
            };
            argv(&topo, 1, &dp, &sockets).join(" ")
        };
        let off = args(FastPath::Off);
        assert!(
            off.contains(" --delay-line --fast-path off"),
            "delay line, fast path off explicitly: {off}"
        );
        let xdp = args(FastPath::Xdp);
        assert!(xdp.contains(" --fast-path xdp"), "{xdp}");
        assert!(!xdp.contains("--delay-line"), "{xdp}");
        assert!(xdp.ends_with("--port p0"), "{xdp}");
        assert!(FastPath::Off.delay_line() && !FastPath::Xdp.delay_line());
    }
}
