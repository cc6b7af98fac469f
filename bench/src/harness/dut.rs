//! The devices under test, started one after the other in `obh-dut` and
//! pinned to the DUT core:
//!
//! - `orbitmesh`: orbitmesh-dp, MPLS transit (RFC 3032 swap, a label table
//!   of `--labels` entries, flows spread over both egress ports),
//!   sleep-when-idle, every frame through the AF_XDP workers
//!   (`--fast-path off` where the binary has the flag).
//! - `orbitmesh-xdp`: the same with `--fast-path xdp`: transit swaps in the
//!   dataplane's XDP program, the rest through AF_XDP.
//! - `xdp-min`: the in-kernel limit, the least an XDP label switch does
//!   (bench/bpf/xdp_min.c: TTL, a 2^20-entry label array, MAC rewrite,
//!   `bpf_redirect`), loaded with the same FIB by `orbitmesh-bench peer-xdp`.
//! - `orbitmesh-xdp-busy`: `orbitmesh-xdp` with the worker busy polling
//!   (`--poll busy --busy-poll-budget 64`): a non-blocking `recvfrom` per
//!   port per idle pass, which runs the port's NAPI in the worker's call
//!   where the driver gives the socket one (as net_af_xdp does for
//!   testpmd), and the worker never sleeps.
//! - `xdp-min-busy`: `xdp-min` with its loader busy polling dut0, dut1 and
//!   dut2 in turn on the DUT core (`peer-xdp --busy-poll`): the in-kernel
//!   limit driven the way `orbitmesh-xdp-busy` drives its ports.
//! - `orbitmesh-busy`: the same, busy polling with the kernel's preferred
//!   busy polling (budget 64, as net_af_xdp's default), every frame
//!   through AF_XDP.
//! - `orbitmesh-ipv4`: orbitmesh-dp as a label edge, IPv4 longest-prefix
//!   match to a next hop without labels (the kernel's job, done in user space).
//! - `orbitmesh-ipv6`: the same for IPv6 (RFC 8200; hop limit decremented),
//!   one /48 per egress port.
//! - `orbitmesh-mixed`: orbitmesh-dp's edge port taking MPLS, IPv4 and IPv6
//!   at once (flows alternate by flow index mod 3): label swaps and both
//!   kinds of routes in one FIB.
//! - `kernel`: Linux IPv4 forwarding, with RPS steering dut0's receive
//!   processing to the DUT core.
//! - `testpmd`: `dpdk-testpmd --forward-mode=mac` over `net_af_xdp`
//!   (Debian's DPDK), MPLS frames, one egress port (mac forwarding pairs
//!   ports; it cannot route).
//!
//! A DUT whose tool is missing (no testpmd, no hugepages) is skipped with
//! the reason. Processes are stopped on drop (SIGTERM, then SIGKILL), by
//! their own PID.
//!
//! On veth (Linux 6.18, measured 2026-12-01) kernel busy polling runs
//! nothing: an AF_XDP socket there has no NAPI instance
//! (`SO_INCOMING_NAPI_ID` 0, orbitmesh-dp warns), and `perf` shows no
//! `napi_busy_loop` under the busy pollers' `recvfrom`. The `-busy` peers
//! and testpmd therefore keep the DUT core from ever sleeping, and dut0's
//! receive runs where it runs for every peer (its NAPI thread in
//! `--threaded-napi`, softirq on the sender's core otherwise).

use super::topology::{
    self, mac, DUT_IN, DUT_NS, DUT_OUT, MAC_DUT1, MAC_DUT2, MAC_SINK0, MAC_SINK1,
};
use crate::traffic::frame::{ipv6_prefix, FlowPlan, Profile, LABEL_BASE};
use anyhow::{bail, Context, Result};
use orbitmesh_core::fib::spec::{
    ActionSpec, FibSpec, LabelSpec, Mac, NextHopId, NextHopSpec, PortSpec, Prefix, RouteSpec,
};
use orbitmesh_lab::{exec_in, in_netns};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `orbitmesh-bench peer-xdp` prints once its programs are attached.
pub const PEER_XDP_READY: &str = "peer-xdp: forwarding";

/// Which DUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DutKind {
    Orbitmesh,
    OrbitmeshXdp,
    OrbitmeshXdpBusy,
    XdpMin,
    XdpMinBusy,
    OrbitmeshBusy,
    OrbitmeshIpv4,
    OrbitmeshIpv6,
    OrbitmeshMixed,
    Kernel,
    Testpmd,
}

impl DutKind {
    pub fn parse(s: &str) -> Result<DutKind> {
        Ok(match s {
            "orbitmesh" => DutKind::Orbitmesh,
            "orbitmesh-xdp" => DutKind::OrbitmeshXdp,
            "orbitmesh-xdp-busy" => DutKind::OrbitmeshXdpBusy,
            "xdp-min" => DutKind::XdpMin,
            "xdp-min-busy" => DutKind::XdpMinBusy,
            "orbitmesh-busy" => DutKind::OrbitmeshBusy,
            "orbitmesh-ipv4" => DutKind::OrbitmeshIpv4,
            "orbitmesh-ipv6" => DutKind::OrbitmeshIpv6,
            "orbitmesh-mixed" => DutKind::OrbitmeshMixed,
            "kernel" => DutKind::Kernel,
            "testpmd" => DutKind::Testpmd,
            _ => bail!(
                "unknown DUT {s:?} (orbitmesh, orbitmesh-xdp, orbitmesh-xdp-busy, xdp-min, xdp-min-busy, orbitmesh-busy, orbitmesh-ipv4, orbitmesh-ipv6, orbitmesh-mixed, kernel, testpmd)"
            ),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DutKind::Orbitmesh => "orbitmesh",
            DutKind::OrbitmeshXdp => "orbitmesh-xdp",
            DutKind::OrbitmeshXdpBusy => "orbitmesh-xdp-busy",
            DutKind::XdpMin => "xdp-min",
            DutKind::XdpMinBusy => "xdp-min-busy",
            DutKind::OrbitmeshBusy => "orbitmesh-busy",
            DutKind::OrbitmeshIpv4 => "orbitmesh-ipv4",
            DutKind::OrbitmeshIpv6 => "orbitmesh-ipv6",
            DutKind::OrbitmeshMixed => "orbitmesh-mixed",
            DutKind::Kernel => "kernel",
            DutKind::Testpmd => "testpmd",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DutKind::Orbitmesh => "orbitmesh-dp, MPLS swap, sleep-when-idle, AF_XDP only",
            DutKind::OrbitmeshXdp => {
                "orbitmesh-dp --fast-path xdp, MPLS swap in XDP, sleep-when-idle"
            }
            DutKind::OrbitmeshXdpBusy => {
                "orbitmesh-dp --fast-path xdp, MPLS swap in XDP, busy poll + kernel busy polling"
            }
            DutKind::XdpMin => "minimal XDP swap: TTL, 2^20-entry label array, MACs, bpf_redirect",
            DutKind::XdpMinBusy => "minimal XDP swap, its loader busy polling on the DUT core",
            DutKind::OrbitmeshBusy => "orbitmesh-dp, MPLS swap, busy poll + kernel busy polling",
            DutKind::OrbitmeshIpv4 => "orbitmesh-dp, IPv4 LPM edge, sleep-when-idle",
            DutKind::OrbitmeshIpv6 => "orbitmesh-dp, IPv6 LPM edge, sleep-when-idle",
            DutKind::OrbitmeshMixed => {
                "orbitmesh-dp, edge port with MPLS swap + IPv4 + IPv6 LPM, sleep-when-idle"
            }
            DutKind::Kernel => "Linux IPv4 forwarding, RPS to the DUT core",
            DutKind::Testpmd => "dpdk-testpmd --forward-mode=mac, net_af_xdp",
        }
    }

    pub fn profile(self) -> Profile {
        match self {
            DutKind::Orbitmesh
            | DutKind::OrbitmeshXdp
            | DutKind::OrbitmeshXdpBusy
            | DutKind::XdpMin
            | DutKind::XdpMinBusy
            | DutKind::OrbitmeshBusy
            | DutKind::Testpmd => Profile::Mpls,
            DutKind::OrbitmeshIpv4 | DutKind::Kernel => Profile::Ipv4,
            DutKind::OrbitmeshIpv6 => Profile::Ipv6,
            DutKind::OrbitmeshMixed => Profile::Mixed,
        }
    }

    pub fn egress(self) -> u8 {
        match self {
            DutKind::Testpmd => 1,
            _ => 2,
        }
    }

    /// True for the orbitmesh-dp DUTs (control socket, FIB swaps).
    pub fn is_orbitmesh(self) -> bool {
        !matches!(
            self,
            DutKind::Kernel | DutKind::Testpmd | DutKind::XdpMin | DutKind::XdpMinBusy
        )
    }

    /// Why this DUT cannot run here, if it cannot.
    pub fn unavailable(self, bins: &Bins) -> Option<String> {
        match self {
            DutKind::OrbitmeshXdp | DutKind::OrbitmeshXdpBusy
                if bins.dp.is_file() && !bins.fast_path_flag =>
            {
                Some(format!(
                    "{} has no --fast-path flag (an older build)",
                    bins.dp.display()
                ))
            }
            DutKind::XdpMin | DutKind::XdpMinBusy => None,
            DutKind::Orbitmesh
            | DutKind::OrbitmeshXdp
            | DutKind::OrbitmeshXdpBusy
            | DutKind::OrbitmeshBusy
            | DutKind::OrbitmeshIpv4
            | DutKind::OrbitmeshIpv6
            | DutKind::OrbitmeshMixed => (!bins.dp.is_file()).then(|| {
                format!(
                    "{} not found (cargo build --release -p dataplane, or pass --dp-bin)",
                    bins.dp.display()
                )
            }),
            DutKind::Kernel => None,
            DutKind::Testpmd => {
                if !super::cpu::have_tool("dpdk-testpmd") {
                    return Some("dpdk-testpmd not installed (apt-get install dpdk-dev librte-net-af-xdp23; scripts/bench-harness.sh does it)".into());
                }
                let hp: u64 = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if hp < 256 {
                    return Some(format!("only {hp} hugepages (testpmd needs >= 256: echo 1024 > /proc/sys/vm/nr_hugepages)"));
                }
                let mounted = std::fs::read_to_string("/proc/mounts")
                    .map(|m| {
                        m.lines()
                            .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
                    })
                    .unwrap_or(false);
                (!mounted).then(|| {
                    "no hugetlbfs mounted (mount -t hugetlbfs nodev /dev/hugepages)".into()
                })
            }
        }
    }
}

/// Paths of the binaries the harness runs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub dp: PathBuf,
    /// The harness itself (`peer-xdp` runs the xdp-min peer).
    pub bench: PathBuf,
    /// Whether `dp` takes `--fast-path xdp|off`.
    pub fast_path_flag: bool,
    /// Extra orbitmesh-dp flags, after the harness's own.
    pub dp_args: Vec<String>,
}

impl Bins {
    /// Whether the orbitmesh-dp at `dp` has the `--fast-path` flag.
    pub fn has_fast_path_flag(dp: &Path) -> bool {
        Command::new(dp)
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("--fast-path"))
            .unwrap_or(false)
    }
}

/// A FIB for `plan`: every label swapped to itself (to itself +
/// `plan.alt_label_delta` when `alt`: the swap test's second FIB, which
/// forwards every flow to the same port with a label the sink tells apart)
/// towards egress port `index % egress`, one IPv4 /16 and one IPv6 /48 per
/// egress port for the IPv4, IPv6 and mixed profiles (next hops push no
/// label). Every label is a transit swap on untagged MPLS: what the XDP
/// fast path forwards itself.
pub fn fib_spec(plan: &FlowPlan, version: u64, alt: bool) -> FibSpec {
    let ports = [DUT_IN, DUT_OUT[0], DUT_OUT[1]];
    let nh = ["out0", "out1"];
    FibSpec {
        version,
        ports: ports
            .iter()
            .map(|p| PortSpec {
                name: p.to_string(),
                mtu: 1500,
            })
            .collect(),
        next_hops: (0..2)
            .map(|i| NextHopSpec {
                id: NextHopId(i as u32 + 1),
                name: nh[i].into(),
                port: DUT_OUT[i].into(),
                dst_mac: Mac([MAC_SINK0, MAC_SINK1][i]),
                src_mac: Mac([MAC_DUT1, MAC_DUT2][i]),
                vlan: None,
                push: vec![],
                backup: None,
            })
            .collect(),
        labels: (0..plan.labels)
            .map(|i| LabelSpec {
                label: LABEL_BASE + i,
                action: ActionSpec::Swap,
                out_label: alt.then(|| LABEL_BASE + i + plan.alt_label_delta),
                group: None,
                next_hop: Some(NextHopId(plan.port_of_index(i) as u32 + 1)),
            })
            .collect(),
        routes: (0..plan.egress as usize)
            .flat_map(|i| {
                let v4 = Prefix::new(std::net::Ipv4Addr::new(10, 100 + i as u8, 0, 0).into(), 16);
                let v6 = ipv6_prefix(i as u8).parse();
                [v4.expect("10.x.0.0/16"), v6.expect("a /48")].map(|prefix| RouteSpec {
                    prefix,
                    group: None,
                    next_hop: Some(NextHopId(i as u32 + 1)),
                })
            })
            .collect(),
        ..FibSpec::default()
    }
}

/// A running DUT.
#[derive(Debug)]
pub struct Dut {
    pub kind: DutKind,
    child: Option<Child>,
    pub socket: Option<PathBuf>,
    log: PathBuf,
}

impl Dut {
    /// Starts `kind` in obh-dut on `core`; `work` holds its FIB, socket and log.
    pub fn start(
        kind: DutKind,
        plan: &FlowPlan,
        bins: &Bins,
        core: usize,
        work: &Path,
    ) -> Result<Dut> {
        let log = work.join(format!("{}.log", kind.name()));
        let logf = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let mut dut = Dut {
            kind,
            child: None,
            socket: None,
            log: log.clone(),
        };
        match kind {
            DutKind::Orbitmesh
            | DutKind::OrbitmeshXdp
            | DutKind::OrbitmeshXdpBusy
            | DutKind::OrbitmeshBusy
            | DutKind::OrbitmeshIpv4
            | DutKind::OrbitmeshIpv6
            | DutKind::OrbitmeshMixed => {
                dut.start_orbitmesh(plan, bins, core, work, logf)?;
            }
            DutKind::XdpMin => {
                dut.start_xdp_min(plan, bins, work, logf, None)?;
            }
            DutKind::XdpMinBusy => {
                dut.start_xdp_min(plan, bins, work, logf, Some(core))?;
            }
            DutKind::Kernel => {
                exec_in(DUT_NS, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                let mask = format!("{:x}", 1u64 << core);
                exec_in(
                    DUT_NS,
                    &[
                        "sh",
                        "-c",
                        &format!("echo {mask} > /sys/class/net/{DUT_IN}/queues/rx-0/rps_cpus"),
                    ],
                )?;
            }
            DutKind::Testpmd => {
                dut.start_testpmd(core, logf)?;
            }
        }
        Ok(dut)
    }

    /// Starts orbitmesh-dp with a FIB for `plan` and waits (up to 120 s) until
    /// its control socket answers.
    fn start_orbitmesh(
        &mut self,
        plan: &FlowPlan,
        bins: &Bins,
        core: usize,
        work: &Path,
        logf: std::fs::File,
    ) -> Result<()> {
        let kind = self.kind;
        let fib = work.join("fib-a.json");
        std::fs::write(&fib, fib_spec(plan, 1, false).to_json()).context("writing the FIB")?;
        let sock = work.join("dp.sock");
        let _ = std::fs::remove_file(&sock);
        // Pinned from its first instruction: taskset execs the dataplane.
        let mut cmd = in_netns(DUT_NS, &["taskset", "-c", &core.to_string()]);
        cmd.arg(&bins.dp);
        if matches!(
            kind,
            DutKind::OrbitmeshIpv4 | DutKind::OrbitmeshIpv6 | DutKind::OrbitmeshMixed
        ) {
            cmd.args(["--edge", DUT_IN]);
        } else {
            cmd.args(["--port", DUT_IN]);
        }
        let budget = crate::sys::busy::BUDGET.to_string();
        let busy = ["--poll", "busy", "--busy-poll-budget", &budget];
        cmd.args(["--port", DUT_OUT[0], "--port", DUT_OUT[1], "--fib"])
            .arg(&fib)
            .args(
                if matches!(
                    self.kind,
                    DutKind::OrbitmeshBusy | DutKind::OrbitmeshXdpBusy
                ) {
                    &busy[..]
                } else {
                    &["--poll", "sleep-when-idle"][..]
                },
            )
            .args(match (kind, bins.fast_path_flag) {
                (DutKind::OrbitmeshXdp | DutKind::OrbitmeshXdpBusy, _) => {
                    &["--fast-path", "xdp"][..]
                }
                (_, true) => &["--fast-path", "off"][..],
                // An orbitmesh-dp without the flag has no fast path.
                (_, false) => &[][..],
            })
            .args([
                "--core",
                &core.to_string(),
                "--name",
                "obh-dut",
                "--log",
                "warn",
                "--socket",
            ])
            .arg(&sock)
            .args(&bins.dp_args);
        self.child = Some(spawn(cmd, logf)?);
        self.socket = Some(sock.clone());
        let t0 = Instant::now();
        loop {
            if let Ok(orbitmesh_core::protocol::Response::Stats(_)) =
                orbitmesh_core::protocol::call(&sock, &orbitmesh_core::protocol::Request::Stats)
            {
                break;
            }
            self.check_alive()?;
            if t0.elapsed() > Duration::from_secs(120) {
                bail!(
                    "orbitmesh-dp did not answer on {} within 120 s; log: {}",
                    sock.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Starts dpdk-testpmd (MAC forwarding over AF_XDP vdevs) and waits (up
    /// to 30 s) until its log says it forwards.
    /// Starts `orbitmesh-bench peer-xdp` (the xdp-min peer) in obh-dut with
    /// the FIB orbitmesh-dp would get, and waits until it has attached.
    fn start_xdp_min(
        &mut self,
        plan: &FlowPlan,
        bins: &Bins,
        work: &Path,
        logf: std::fs::File,
        busy_core: Option<usize>,
    ) -> Result<()> {
        let fib = work.join("fib-a.json");
        std::fs::write(&fib, fib_spec(plan, 1, false).to_json()).context("writing the FIB")?;
        let mut cmd = match busy_core {
            // Pinned from its first instruction, as the other DUTs.
            Some(c) => in_netns(DUT_NS, &["taskset", "-c", &c.to_string()]),
            None => in_netns::<&str>(DUT_NS, &[]),
        };
        cmd.arg(&bins.bench)
            .args(["peer-xdp", "--in", DUT_IN, "--out"])
            .arg(DUT_OUT.join(","))
            .arg("--fib")
            .arg(&fib);
        if busy_core.is_some() {
            cmd.arg("--busy-poll");
        }
        self.child = Some(spawn(cmd, logf)?);
        let t0 = Instant::now();
        loop {
            self.check_alive()?;
            if std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(PEER_XDP_READY)
            {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!(
                    "peer-xdp did not attach within 60 s; log: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_testpmd(&mut self, core: usize, logf: std::fs::File) -> Result<()> {
        let script = format!(
            "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec dpdk-testpmd -l {other},{core} --main-lcore {other} \
             --no-pci --file-prefix obh-dut --log-level=*:error \
             --vdev net_af_xdp0,iface={DUT_IN} --vdev net_af_xdp1,iface={out} \
             -- --forward-mode=mac --eth-peer=1,{peer} --nb-cores=1 --stats-period 5 --auto-start",
            other = if core == 0 { 1 } else { 0 },
            out = DUT_OUT[0],
            peer = mac(&MAC_SINK0),
        );
        let cmd = in_netns(DUT_NS, &["sh", "-c", &script]);
        self.child = Some(spawn(cmd, logf)?);
        let t0 = Instant::now();
        loop {
            self.check_alive()?;
            let l = std::fs::read_to_string(&self.log).unwrap_or_default();
            if l.contains("Start automatic packet forwarding")
                || l.contains("io packet forwarding")
                || l.contains("mac packet forwarding")
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!(
                    "dpdk-testpmd did not start forwarding within 30 s; log: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }

    /// orbitmesh-dp's counters (control socket `Stats`), as "name" and
    /// "port/name"; empty for other DUTs.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let Some(sock) = &self.socket else {
            return Vec::new();
        };
        let Ok(orbitmesh_core::protocol::Response::Stats(s)) =
            orbitmesh_core::protocol::call(sock, &orbitmesh_core::protocol::Request::Stats)
        else {
            return Vec::new();
        };
        let mut out: Vec<(String, u64)> = s
            .counters
            .named()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        if let Some(f) = &s.fast_path {
            // The XDP fast path's own counters (orbitmesh-dp --fast-path xdp).
            out.push(("fast/forwarded".into(), f.forwarded));
            out.push(("fast/punted".into(), f.punted));
            out.push(("fast/dropped".into(), f.dropped()));
        }
        for p in &s.ports {
            let c = &p.counters;
            for (k, v) in [
                ("rx", c.rx),
                ("tx", c.tx),
                ("tx_ring_full", c.tx_ring_full),
                ("fill_ring_empty", c.fill_ring_empty),
                ("kernel_rx_ring_full", c.kernel.rx_ring_full),
                ("kernel_rx_fill_empty", c.kernel.rx_fill_empty),
                ("kernel_rx_dropped", c.kernel.rx_dropped),
                ("kernel_invalid_descs", c.kernel.invalid_descs),
            ] {
                out.push((format!("{}/{k}", p.name), v));
            }
        }
        out
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// ns on CPU of the DUT's process (None for the kernel).
    pub fn process_ns(&self) -> Option<u64> {
        self.pid().map(super::cpu::process_ns)
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                let tail = self.log_tail();
                self.child = None;
                bail!("{} exited ({st}): {tail}", self.kind.name());
            }
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let l = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = l.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Stops the DUT and undoes its settings.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = orbitmesh_lab::stop(&mut c, Duration::from_secs(3));
        }
        if self.kind == DutKind::Kernel {
            let _ = exec_in(DUT_NS, &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
            let _ = exec_in(
                DUT_NS,
                &[
                    "sh",
                    "-c",
                    &format!("echo 0 > /sys/class/net/{DUT_IN}/queues/rx-0/rps_cpus"),
                ],
            );
        }
    }
}

fn spawn(mut cmd: Command, log: std::fs::File) -> Result<Child> {
    let err = log.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    cmd.spawn().context("starting the DUT")
}

impl Drop for Dut {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes sure nothing of a DUT is left attached (used between DUTs).
pub fn dut_ports_clear() -> bool {
    topology::DUT_OUT
        .iter()
        .chain(std::iter::once(&DUT_IN))
        .all(|p| {
            orbitmesh_lab::run(&["ip", "-n", DUT_NS, "-d", "link", "show", p])
                .map_or(true, |link| !link.contains("prog/xdp"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_fib_routes_every_flow_of_every_kind_to_its_port() {
        for profile in [Profile::Ipv4, Profile::Ipv6, Profile::Mixed] {
            let plan = FlowPlan::new(64, 256, 2, profile);
            let fib = fib_spec(&plan, 1, false)
                .build()
                .expect("the generated FIB builds");
            let mut groups = [None, None];
            for f in 0..plan.flows {
                let p = plan.expected_port(f) as usize;
                let g = match plan.kind(f) {
                    crate::traffic::frame::FlowKind::Ipv6 => {
                        fib.lookup_v6(std::net::Ipv6Addr::from(plan.dst_ip6(f)))
                    }
                    _ => fib.lookup_v4(std::net::Ipv4Addr::from(plan.dst_ip(f))),
                }
                .expect("routed");
                // Both kinds of routes of one port share its next hop.
                assert_eq!(*groups[p].get_or_insert(g), g, "flow {f}");
            }
            assert_ne!(groups[0], groups[1]);
        }
        for k in [
            "orbitmesh-ipv6",
            "orbitmesh-mixed",
            "orbitmesh-xdp",
            "xdp-min",
        ] {
            assert_eq!(DutKind::parse(k).unwrap().name(), k);
        }
    }

    /// The swap test's two FIBs forward every flow to the same next hop,
    /// B with the label the sink counts as B's, and both are what the XDP
    /// fast path takes itself: swaps to an untagged next hop that pushes
    /// nothing, to unreserved labels (no PHP), within the 2^20 label space.
    #[test]
    fn swap_fibs_differ_only_in_the_out_label_and_stay_on_the_fast_path() {
        let plan = FlowPlan::new(64, 1_000_000, 2, Profile::Mpls).with_alt_labels(1);
        let (a, b) = (fib_spec(&plan, 1, false), fib_spec(&plan, 2, true));
        assert!(a
            .next_hops
            .iter()
            .all(|n| n.vlan.is_none() && n.push.is_empty()));
        assert_eq!(a.next_hops, b.next_hops);
        assert_eq!(a.labels.len(), plan.labels as usize);
        for (la, lb) in a.labels.iter().zip(&b.labels) {
            assert_eq!(
                (la.label, la.action, la.next_hop),
                (lb.label, lb.action, lb.next_hop)
            );
            assert_eq!(la.action, ActionSpec::Swap);
            assert!(la.out_label.is_none() && la.label >= 16);
            assert_eq!(lb.out_label, Some(la.label + 1));
            assert!(la.label + 1 < 1 << 20);
        }
        let (fa, fb) = (a.build().expect("A builds"), b.build().expect("B builds"));
        for f in 0..plan.flows {
            let l = plan.label(f);
            use orbitmesh_core::fib::IlmAction;
            let (
                Some(IlmAction::Swap {
                    out_label: oa,
                    nhg: ga,
                }),
                Some(IlmAction::Swap {
                    out_label: ob,
                    nhg: gb,
                }),
            ) = (fa.ilm(l), fb.ilm(l))
            else {
                panic!("flow {f}: label {l} is not a swap in both FIBs");
            };
            assert_eq!((oa, ob, ga), (l, l + 1, gb), "flow {f}");
            assert_eq!(plan.alt_label(f), Some(l + 1));
        }
    }
}
