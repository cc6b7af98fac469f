//! What signed orders and the remote control channel cost (issue 15),
//! recorded in bench/results/signed-orders.md:
//!
//! - `control-cost sign DIR`: for every node schedule `orbitmesh-ctl
//!   predict` wrote to DIR, the FIBs the controller would send (wired like
//!   the emulation: a port per neighbour, `lan0` at ground stations,
//!   `control::windows::wiring_for`), as one
//!   signed bundle (`orbitmesh_core::schedule::Schedule`); times what a
//!   dataplane does to check it: the canonical message (every FIB encoded
//!   in binary and hashed, SHA-256) and the Ed25519 verification.
//! - `control-cost latency N` (root): a node served in-process in one
//!   namespace (unix socket and remote channel), and N `version` requests,
//!   one connection each as orbitmesh-ctl makes them, over the unix socket,
//!   TCP over loopback, and TCP over a veth from another namespace.
//! - `serve SOCKET ADDR` / `client (SOCKET | tcp:ADDR) N`: the two sides of
//!   `latency`, run in the namespaces.

use anyhow::{bail, Context, Result};
use control::distribute;
use control::windows::wiring_for;
use orbitmesh_core::protocol::{call_at, Endpoint, Request, Response};
use orbitmesh_core::schedule::Schedule;
use orbitmesh_core::sign::{schedule_message, SecretKey, Trust, TrustedKey};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    if bench::version_asked("control-cost") {
        return Ok(());
    }
    let a: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    match a.as_slice() {
        ["sign", dir] => sign(Path::new(dir), usize::MAX),
        ["sign", dir, max] => sign(Path::new(dir), max.parse().context("MAX_NODES")?),
        ["latency", n] => latency(n.parse().context("N")?),
        ["serve", socket, addr] => serve(Path::new(socket), addr.parse().context("ADDR")?),
        ["client", at, n] => client(at, n.parse().context("N")?),
        _ => bail!("usage: control-cost sign DIR [MAX_NODES] | latency N | serve SOCKET ADDR | client (SOCKET|tcp:ADDR) N"),
    }
}

fn ground_key() -> SecretKey {
    SecretKey::from_bytes([0x6f; 32])
}

fn trust() -> Trust {
    Trust {
        keys: vec![TrustedKey {
            name: "ground".into(),
            key: ground_key().public(),
            not_before_ns: None,
            not_after_ns: None,
        }],
        revoked: vec![],
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn sign(dir: &Path, max_nodes: usize) -> Result<()> {
    let schedules = distribute::read_schedules(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = ground_key();
    let trust = trust();
    let now = orbitmesh_core::time::now_ns();
    let (mut per_bundle, mut per_mb, mut hash_share) = (Vec::new(), Vec::new(), Vec::new());
    let (mut entries, mut bytes, mut bin_bytes) = (Vec::new(), Vec::new(), Vec::new());
    let mut verify_only = Vec::new();
    let mut hash_per_mb = Vec::new();
    let schedules = &schedules[..schedules.len().min(max_nodes)];
    for s in schedules {
        let (plan, _) = distribute::plan(s, &wiring_for(s));
        let fibs: Vec<(u64, _)> = plan
            .into_iter()
            .map(|(t, f)| (now + t.max(0) as u64, f))
            .collect();
        let sched = Schedule::delta_encoded(&format!("n{}", s.node), 1, &fibs);
        let signed = key.sign_schedule(&sched)?;
        let wire = serde_json::to_vec(&Request::LoadSchedule {
            schedule: sched.clone(),
            allow_empty: false,
            signed: Some(signed),
        })?;
        let bin: usize = fibs
            .iter()
            .map(|(_, f)| f.to_binary().map_or(0, |b| b.len()))
            .sum();
        // As the dataplane checks an order (dataplane::schedule::load).
        let mut t = Vec::new();
        let mut tv = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            let m = schedule_message(&sched)?;
            let t1 = Instant::now();
            trust
                .verify(&m, Some(&signed), now)
                .map_err(|r| anyhow::anyhow!("{r}"))?;
            let t2 = Instant::now();
            t.push((t2 - t0).as_secs_f64());
            tv.push((t2 - t1).as_secs_f64());
        }
        let (total, v) = (median(&mut t), median(&mut tv));
        per_bundle.push(total * 1e3);
        verify_only.push(v * 1e6);
        per_mb.push(total * 1e3 / (wire.len() as f64 / 1e6));
        hash_share.push(1.0 - v / total);
        hash_per_mb.push((total - v) * 1e3 / (bin as f64 / 1e6));
        entries.push(sched.entries.len() as f64);
        bytes.push(wire.len() as f64);
        bin_bytes.push(bin as f64);
    }
    let n = schedules.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max);
    println!("bundles (nodes): {n}");
    println!(
        "entries per bundle: mean {:.0}, max {:.0}",
        mean(&entries),
        max(&entries)
    );
    println!(
        "bundle size (JSON request): mean {:.1} kB, max {:.1} kB; FIBs hashed (binary, every entry expanded): mean {:.1} kB, max {:.1} kB",
        mean(&bytes) / 1e3,
        max(&bytes) / 1e3,
        mean(&bin_bytes) / 1e3,
        max(&bin_bytes) / 1e3
    );
    println!(
        "check per bundle (message + verify): median {:.2} ms, max {:.2} ms, sum over all nodes {:.1} ms",
        median(&mut per_bundle.clone()),
        max(&per_bundle),
        per_bundle.iter().sum::<f64>()
    );
    println!(
        "per MB of bundle (JSON): median {:.1} ms/MB; message (expand, encode, SHA-256) per MB of FIB hashed: median {:.1} ms/MB",
        median(&mut per_mb),
        median(&mut hash_per_mb)
    );
    println!(
        "Ed25519 verify alone: median {:.1} us; message share of the check: median {:.1}%",
        median(&mut verify_only),
        100.0 * median(&mut hash_share)
    );
    Ok(())
}

fn serve(socket: &Path, addr: std::net::SocketAddr) -> Result<()> {
    let node = std::sync::Arc::new(dataplane::shared::Node::new(
        "n0",
        vec!["isl0".into()],
        orbitmesh_core::fib::FibSnapshot::empty(1),
        1,
    ));
    node.schedule.set_trust(trust());
    let _unix = dataplane::ctl::Server::start(socket, node.clone())?;
    let _tcp = dataplane::ctl::RemoteServer::start(addr, node, Default::default(), true)?;
    println!("ready");
    // Served until killed (the lab stops it).
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn client(at: &str, n: usize) -> Result<()> {
    let at = match at.strip_prefix("tcp:") {
        Some(a) => Endpoint::Tcp(a.into()),
        None => Endpoint::Socket(at.into()),
    };
    let mut us = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        let r = call_at(&at, &Request::Version).map_err(anyhow::Error::msg)?;
        let dt = t0.elapsed();
        if !matches!(r, Response::Version(_)) {
            bail!("unexpected reply {r:?}");
        }
        // The first tenth warms up (page faults, ARP, thread stacks).
        if i >= n / 10 {
            us.push(dt.as_secs_f64() * 1e6);
        }
    }
    us.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    println!(
        "{at}: n {} p50 {:.0} us p99 {:.0} us mean {:.0} us",
        us.len(),
        p(0.5),
        p(0.99),
        us.iter().sum::<f64>() / us.len() as f64
    );
    Ok(())
}

fn latency(n: usize) -> Result<()> {
    use orbitmesh_lab::{Lab, Veth, VethEnd};
    let me = std::env::current_exe()?;
    let me = me.to_str().context("path")?;
    let mut lab = Lab::new(&format!("omcc{}", std::process::id()))?;
    let (srv, cli) = (lab.ns("srv"), lab.ns("cli"));
    lab.add_namespaces(&[&srv, &cli])?;
    lab.add_veths(&[Veth::new(
        VethEnd::new(&srv, "cc0").addr("10.77.0.1/24"),
        VethEnd::new(&cli, "cc1").addr("10.77.0.2/24"),
    )
    .up()])?;
    lab.ip_in(&srv, &["link set lo up"])?;
    let sock = std::env::temp_dir().join(format!("om-cc-{}.sock", std::process::id()));
    let sock = sock.to_str().context("path")?.to_string();
    let mut cmd = lab.command(&srv, &[me, "serve", &sock, "0.0.0.0:7470"]);
    cmd.stdout(std::process::Stdio::piped());
    let child = lab.spawn("serve", cmd)?;
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().context("stdout")?, &mut ready)?;
    let n = n.to_string();
    for (ns, at) in [
        (&srv, sock.as_str()),
        (&srv, "tcp:127.0.0.1:7470"),
        (&cli, "tcp:10.77.0.1:7470"),
    ] {
        print!("{}", lab.exec(ns, &[me, "client", at, &n])?);
    }
    drop(lab);
    let _ = std::fs::remove_file(&sock);
    Ok(())
}
