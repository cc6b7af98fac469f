//! Part 5 of an emulation: the traffic. A [`traffic`](super::traffic) agent
//! in each host namespace sends to every other host at `rate` packets per
//! second and reports what it received, as JSON lines, once a second and
//! at the end; and one ping crosses the mesh (ICMP through the
//! label-switched path) into `OUT/logs/ping.log`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;

use anyhow::Result;

use super::lab::Lab;
use super::traffic::AgentReport;
use super::{Names, Topology};

/// Starts the agents (this binary's hidden `agent` subcommand, `exe`) for
/// `duration_ms` and the ping; returns the agents' reports as they come.
pub fn start(
    lab: &mut Lab,
    topo: &Topology,
    names: &Names,
    exe: &Path,
    rate: u32,
    duration_ms: u64,
    out: &Path,
) -> Result<mpsc::Receiver<AgentReport>> {
    let (tx, rx) = mpsc::channel::<AgentReport>();
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
            rate.to_string(),
            "--duration-ms".into(),
            duration_ms.to_string(),
        ];
        for p in (0..topo.n_gs).filter(|&p| p != g) {
            argv.push("--peer".into());
            argv.push(format!("{p}={}:7000", topo.host_addr(p).0));
        }
        let c = lab.spawn(
            &format!("agent{g}"),
            &names.host_ns(g),
            &argv,
            Stdio::piped(),
            Stdio::inherit(),
        )?;
        let stdout = c.stdout.take().expect("piped");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(r) = serde_json::from_str::<AgentReport>(&line) {
                    let _ = tx.send(r);
                }
            }
        });
    }
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
    )?;
    Ok(rx)
}
