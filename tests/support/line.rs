//! The namespace line the end-to-end tests run orbitmesh-dp in, and the
//! traffic helpers around it (tests/netns.rs, tests/refusals.rs):
//!
//! ```text
//!  [gen] gen0 ── dut0 [dut: orbitmesh-dp] dut1 ── sink0 [sink]
//!                                          dut2 ── sink1
//! ```
//! Frames are sent from `gen` with AF_PACKET and captured at the sinks by
//! tests/tools/pkt.py. The namespaces, links and the dataplane's process are
//! an `orbitmesh_lab::Lab`, so they are removed on drop, also on failure.
// Each test binary uses a part of this.
#![allow(dead_code)]

use super::bin;
use orbitmesh_core::protocol::{self as ctl, Request, Response};
use orbitmesh_lab::{Lab, Veth, VethEnd};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const GEN: [u8; 6] = [0x02, 0x6f, 0, 0, 0, 0x01];
pub const DUT0: [u8; 6] = [0x02, 0x6f, 0, 0, 1, 0x00];
pub const DUT1: [u8; 6] = [0x02, 0x6f, 0, 0, 1, 0x01];
pub const DUT2: [u8; 6] = [0x02, 0x6f, 0, 0, 1, 0x02];
pub const SINK0: [u8; 6] = [0x02, 0x6f, 0, 0, 2, 0x00];
pub const SINK1: [u8; 6] = [0x02, 0x6f, 0, 0, 2, 0x01];

/// A MAC address as `ip link` and the FIB spec write it.
pub use orbitmesh_core::wire::ethernet::format_mac as mac;

pub struct Line {
    /// The namespaces `om<pid><name>-{gen,dut,sink}`, their links, and the
    /// dataplane (child "dp").
    pub lab: Lab,
    pub socket: PathBuf,
    /// A scratch directory, removed on drop.
    pub dir: PathBuf,
    /// The dataplane logs at info level to `dir/dp.log` (else warnings go
    /// to the test's stderr).
    pub log: bool,
}

impl Line {
    pub fn ns(&self, role: &str) -> String {
        self.lab.ns(role)
    }

    /// Builds the namespaces and links; does not start the dataplane.
    pub fn new(name: &str) -> Line {
        Line::with_queues(name, 1)
    }

    /// As `new`, with `queues` RX/TX queues on every veth.
    pub fn with_queues(name: &str, queues: u32) -> Line {
        let tag = format!("{}{}", std::process::id(), name);
        let mut lab = Lab::new(&format!("om{tag}")).expect("a lab for the line");
        let (g, d, s) = (lab.ns("gen"), lab.ns("dut"), lab.ns("sink"));
        lab.add_namespaces(&[&g, &d, &s]).expect("namespaces");
        let end = |ns: &str, dev: &str, m: [u8; 6], addr: &str| {
            VethEnd::new(ns, dev).mac(mac(&m)).addr(addr)
        };
        let pair = |a: VethEnd, b: VethEnd| Veth::new(a, b).queues(queues).up();
        lab.add_veths(&[
            pair(
                end(&g, "gen0", GEN, "10.99.0.1/24"),
                end(&d, "dut0", DUT0, "10.99.0.2/24"),
            ),
            pair(
                end(&d, "dut1", DUT1, "10.99.1.2/24"),
                end(&s, "sink0", SINK0, "10.99.1.1/24"),
            ),
            pair(
                end(&d, "dut2", DUT2, "10.99.2.2/24"),
                end(&s, "sink1", SINK1, "10.99.2.1/24"),
            ),
        ])
        .expect("links");
        // The sinks' veths take frames the dut redirects in XDP (its fast
        // path): a veth accepts XDP-redirected frames only when its peer
        // runs NAPI, i.e. has an XDP program or GRO on (drivers/net/veth.c,
        // veth_xdp_xmit). A host's real NIC, or another orbitmesh-dp, needs
        // nothing.
        for dev in ["sink0", "sink1"] {
            let st = Command::new("ip")
                .args(["netns", "exec", &s, "ethtool", "-K", dev, "gro", "on"])
                .stdout(Stdio::null())
                .status()
                .expect("ethtool");
            assert!(st.success(), "ethtool -K {dev} gro on failed");
        }
        let dir = std::env::temp_dir().join(format!("om-netns-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        Line {
            lab,
            socket: dir.join("dp.sock"),
            dir,
            log: false,
        }
    }

    /// Starts orbitmesh-dp in `dut` on dut0-2 with `fib` (TOML).
    pub fn start(&mut self, fib: &str, extra: &[&str]) {
        let mut args = vec!["--port", "dut0", "--port", "dut1", "--port", "dut2"];
        args.extend_from_slice(extra);
        self.start_args(fib, &args);
    }

    /// Starts orbitmesh-dp in `dut` with `args` and waits for its socket.
    pub fn start_args(&mut self, fib: &str, args: &[&str]) {
        let fib_path = self.dir.join("fib.toml");
        std::fs::write(&fib_path, fib).unwrap();
        let mut cmd = self.lab.command(&self.ns("dut"), &[bin("orbitmesh-dp")]);
        cmd.args(args)
            .arg("--fib")
            .arg(&fib_path)
            .arg("--socket")
            .arg(&self.socket)
            .args([
                "--name",
                "dut",
                "--log",
                if self.log { "info" } else { "warn" },
            ])
            .stdout(Stdio::null());
        if self.log {
            cmd.env_remove("NO_COLOR")
                .stderr(std::fs::File::create(self.log_path()).unwrap());
        }
        self.lab.spawn("dp", cmd).expect("start orbitmesh-dp");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if ctl::call(&self.socket, &Request::Version).is_ok() {
                return;
            }
            if let Some(st) = self.dp_exited() {
                panic!("orbitmesh-dp exited early: {st}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("orbitmesh-dp did not open its control socket");
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dp.log")
    }

    /// What the dataplane logged so far (with `log` set).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// ARP + ICMP echo from gen to the dut's own address (through the kernel).
    pub fn ping_dut(&self) -> bool {
        let args = ["ping", "-c", "2", "-W", "1", "10.99.0.2"];
        self.lab
            .command(&self.ns("gen"), &args)
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn call(&self, req: Request) -> Response {
        ctl::call(&self.socket, &req).expect("control call")
    }

    /// Counter `c` over both paths: the AF_XDP workers', plus for
    /// forwarded, backup used and drops the XDP fast path's when it runs
    /// (the frames it switches never reach a worker).
    pub fn stat(&self, c: ctl::Counter) -> u64 {
        let Response::Stats(s) = self.call(Request::Stats) else {
            panic!("no stats reply")
        };
        let fast = s.fast_path.as_deref().map_or(0, |f| match c {
            ctl::Counter::Forwarded => f.forwarded,
            ctl::Counter::BackupUsed => f.backup_used,
            ctl::Counter::Drop(r) => f.drop_count(r),
            _ => 0,
        });
        s.counters.get(c) + fast
    }

    /// The XDP fast path's counters, when it runs.
    pub fn fast_path(&self) -> Option<orbitmesh_core::stats::FastPathCounters> {
        match self.call(Request::Stats) {
            Response::Stats(s) => s.fast_path.map(|f| *f),
            r => panic!("{r:?}"),
        }
    }

    pub fn capture(&self, iface: &str, secs: f64) -> Capture {
        self.capture_in("sink", iface, secs)
    }

    /// Captures on `iface` in the namespace of `role` (gen, dut, sink).
    pub fn capture_in(&self, role: &str, iface: &str, secs: f64) -> Capture {
        let mut c = self
            .lab
            .command(
                &self.ns(role),
                &["python3", tools_py(), "capture", iface, &secs.to_string()],
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("capture");
        // Wait for "ready", then drain the output as it comes, so a full
        // pipe never stalls the capture (and makes the kernel drop frames).
        let mut out = c.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut buf).expect("capture ready");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut out, &mut text).expect("capture output");
            text
        });
        Capture {
            child: c,
            reader: Some(reader),
        }
    }

    pub fn send(&self, frames: &[Vec<u8>], count: usize) {
        self.send_from_cpu(frames, count, None)
    }

    /// Sends from a given CPU (with XPS set, that CPU's TX queue; a veth
    /// delivers on the peer's RX queue of the same number).
    pub fn send_from_cpu(&self, frames: &[Vec<u8>], count: usize, cpu: Option<usize>) {
        let cpus = cpu.map_or("0-63".to_string(), |c| c.to_string());
        let n = count.to_string();
        let ns = self.ns("gen");
        let mut c = self
            .lab
            .command(
                &ns,
                &[
                    "taskset",
                    "-c",
                    &cpus,
                    "python3",
                    tools_py(),
                    "send",
                    "gen0",
                    &n,
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("send");
        let mut stdin = c.stdin.take().unwrap();
        for f in frames {
            writeln!(stdin, "{}", hex(f)).unwrap();
        }
        drop(stdin);
        assert!(c.wait().unwrap().success());
    }

    /// Sends `frames` and returns what each sink captured (MPLS/IP frames only).
    pub fn exchange(&self, frames: &[Vec<u8>], count: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let c0 = self.capture("sink0", 1.5);
        let c1 = self.capture("sink1", 1.5);
        self.send(frames, count);
        (collect(c0), collect(c1))
    }

    /// Sends `frame` `count` times from gen at `pps`, its last 4 bytes
    /// replaced by a sequence number (0, 1, ...); returns the sender.
    pub fn send_seq(&self, frame: &[u8], count: u32, pps: u32) -> Sender {
        let mut c = self
            .lab
            .command(
                &self.ns("gen"),
                &[
                    "python3",
                    tools_py(),
                    "seq",
                    "gen0",
                    &count.to_string(),
                    &pps.to_string(),
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the sender");
        writeln!(c.stdin.take().unwrap(), "{}", hex(frame)).unwrap();
        Sender(c)
    }

    /// The dataplane's pid (`ip netns exec` execs it).
    pub fn dp_pid(&self) -> u32 {
        self.lab.pid("dp").expect("dataplane started")
    }

    /// The dataplane's exit status once it has exited.
    pub fn dp_exited(&mut self) -> Option<ExitStatus> {
        let dp = self.lab.child("dp").expect("dataplane started");
        dp.try_wait().expect("dataplane status")
    }

    /// A field of /proc/<dataplane>/status as a number (VmRSS in kB, Threads).
    pub fn dp_status(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.dp_pid());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {path}"))
    }

    /// Stops the dataplane (SIGTERM by its PID, SIGKILL after 10 s);
    /// `None` if it was not started.
    pub fn stop_dp(&mut self) -> Option<ExitStatus> {
        match self.lab.stop("dp", Duration::from_secs(10)) {
            Ok(st) => Some(st),
            Err(orbitmesh_lab::Error::NoChild(_)) => None,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Drop for Line {
    /// The dataplane stops before its scratch directory goes (it removes
    /// its socket there); the lab then deletes the namespaces.
    fn drop(&mut self) {
        self.lab.stop_children();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn tools_py() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/pkt.py")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A running capture and the thread reading its output.
pub struct Capture {
    child: Child,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Capture {
    /// A capture a failed test never collected stops with it.
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|st| st.is_none()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn collect(mut c: Capture) -> Vec<Vec<u8>> {
    c.child.wait().expect("capture finished");
    let text = c
        .reader
        .take()
        .expect("collected once")
        .join()
        .expect("capture reader");
    text.lines()
        .filter(|l| l.len() > 28 && !l.starts_with("ready"))
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        })
        .filter(|f| matches!(&f[12..14], [0x88, 0x47] | [0x08, 0x00] | [0x86, 0xdd]))
        // Only our test traffic (UDP port 5001 or labelled), not kernel chatter.
        .filter(|f| f[12] == 0x88 || f.windows(2).any(|w| w == [0x13, 0x89]))
        .collect()
}

/// The dut's FIB for these tests (ports: dut0 = 0, dut1 = 1, dut2 = 2).
pub fn fib_toml(version: u64) -> String {
    format!(
        r#"
version = {version}
hash_seed = 5
[[ports]]
name = "dut0"
[[ports]]
name = "dut1"
[[ports]]
name = "dut2"

[[next_hops]]
name = "s0"
port = "dut1"
dst_mac = "{s0}"
src_mac = "{d1}"
backup = "s1"
[[next_hops]]
name = "s1"
port = "dut2"
dst_mac = "{s1}"
src_mac = "{d2}"
[[next_hops]]
name = "s0-push"
port = "dut1"
dst_mac = "{s0}"
src_mac = "{d1}"
push = [16100]
[[groups]]
name = "both"
next_hops = ["s0", "s1"]

[[labels]]
label = 16001
action = "swap"
next_hop = "s0"
[[labels]]
label = 16002
action = "pop"
[[labels]]
label = 16004
action = "swap"
group = "both"
[[routes]]
prefix = "10.50.0.0/16"
next_hop = "s0-push"
[[routes]]
prefix = "10.60.0.0/16"
next_hop = "s1"
[[routes]]
prefix = "2001:db8:50::/48"
next_hop = "s0-push"
"#,
        s0 = mac(&SINK0),
        s1 = mac(&SINK1),
        d1 = mac(&DUT1),
        d2 = mac(&DUT2),
    )
}

/// Whether orbitmesh-dp runs its XDP fast path here: its default on veth,
/// unless the suite runs with ORBITMESH_FAST_PATH=off (scripts/test.sh runs
/// the namespace suites both ways).
pub fn fast_path_on() -> bool {
    std::env::var("ORBITMESH_FAST_PATH").as_deref() != Ok("off")
}

pub fn ctl_bin() -> PathBuf {
    bin("orbitmesh-ctl")
}

pub fn ctl_cmd(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(ctl_bin())
        .args(args)
        .output()
        .expect("run orbitmesh-ctl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running sequence sender (Line::send_seq); stopped on drop if a failed
/// test leaves it running.
pub struct Sender(Child);

impl Sender {
    pub fn running(&mut self) -> bool {
        self.0.try_wait().expect("sender status").is_none()
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().expect("sender exit")
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|st| st.is_none()) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
