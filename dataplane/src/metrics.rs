//! The metrics endpoint: the dataplane's counters in the Prometheus text
//! exposition format (version 0.0.4, which Prometheus, VictoriaMetrics and
//! the OpenMetrics parsers all scrape), served over HTTP/1.1 at
//! `GET /metrics` when `metrics_listen` / `--metrics-listen` is set (off by
//! default).
//!
//! # Why on the dataplane, not an exporter beside `orbitmesh-ctl`
//! The endpoint reads the same per-worker counters, summed on read, as the
//! control socket's `stats` (no second copy, no second process to deploy,
//! supervise and keep in step with the dataplane's restarts), and it can
//! show what the control protocol does not carry: drops by reason per
//! port, the activation lateness histogram. An exporter would poll `stats`
//! and re-serve it: one more hop, and scrapes an interval stale.
//!
//! # Off the fast path
//! One thread (`om-metrics`) accepts; each scrape is answered on its own
//! short-lived thread, at most [`MAX_CONNECTIONS`] at once (more get 503),
//! each with a bounded request ([`MAX_REQUEST`] bytes) that must arrive
//! whole within [`READ_TIMEOUT`] (one deadline for the whole head, not per
//! read, so a client trickling a byte at a time cannot hold a slot).
//! Rendering loads the workers' relaxed counters; no
//! worker waits for it, and nothing is written that a worker reads.
//!
//! # Names (Prometheus conventions)
//! `orbitmesh_` prefix, counters end in `_total`, base units (`_bytes`,
//! `_seconds`), labels `port` (the FIB's port name), `reason`, `result`.
//! Counters are the dataplane's raw totals since start: they only go up
//! (`orbitmesh-ctl stats --clear` changes what `stats` shows, not these),
//! so `rate()` never sees a reset except at a restart.
//!
//! # Two paths: the XDP fast path and the AF_XDP workers
//! With `--fast-path xdp` the in-kernel program forwards transit frames
//! that never reach a worker. The families above keep meaning what they
//! always meant, the AF_XDP workers' counts (so their series, dashboards
//! and alerts are the same with the fast path on or off), and the fast
//! path has its own, under `orbitmesh_xdp_`: `forwarded_packets_total`,
//! `fast_reroute_packets_total`, `drops_total{reason}` (the pipeline's
//! reason names), `port_tx_packets_total{port}`, `port_tx_bytes_total`,
//! `port_rx_packets_total` and `port_rx_bytes_total` (the frames it
//! finished, by the port they came in on), and
//! `punted_packets_total` (frames it handed to the steering program: to the
//! workers, or to the kernel for ARP, neighbour discovery, traffic to the
//! box). Separate names
//! rather than a `path` label: a label would change the identity of every
//! existing series, and `punted` must not be summed with anything, since
//! the workers count those frames again in `orbitmesh_rx_packets_total`.
//! The node's total is the sum, e.g. frames sent per port:
//! `orbitmesh_port_tx_packets_total + orbitmesh_xdp_port_tx_packets_total`,
//! and received: `orbitmesh_port_rx_packets_total +
//! orbitmesh_xdp_port_rx_packets_total`.
//! `orbitmesh_fast_path_enabled` is 1 while the fast path runs; with it off
//! the `orbitmesh_xdp_` families are declared without samples.

use crate::shared::Node;
use orbitmesh_core::sign::Refusal;
use orbitmesh_core::stats::{DropReason, PuntReason, LATENESS_BOUNDS_NS};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Scrapes answered at once; a connection beyond them gets 503 at once.
pub const MAX_CONNECTIONS: usize = 4;
/// The longest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8192;
/// How long a whole request head may take to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a refused connection (431, 503) is drained before it is closed.
pub const LINGER: Duration = Duration::from_millis(200);
/// How long the client may take to read the reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes a metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format quotes it: `\`, `"` and newline escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Writes one sample line: `name{k="v",...} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// One per-port family: `value(port index)` for every port.
fn per_port(
    out: &mut String,
    node: &Node,
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(usize) -> u64,
) {
    family(out, name, kind, help);
    for (i, p) in node.port_names.iter().enumerate() {
        sample(out, name, &[("port", p)], value(i));
    }
}

/// Everything the endpoint shows, in the text format.
pub fn render(node: &Node) -> String {
    let mut out = String::with_capacity(16 * 1024);
    family(
        &mut out,
        "orbitmesh_node_info",
        "gauge",
        "The dataplane's node name and software version (always 1).",
    );
    sample(
        &mut out,
        "orbitmesh_node_info",
        &[("node", &node.name), ("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    render_ports(&mut out, node);
    render_pipeline(&mut out, node);
    render_fast_path(&mut out, node);
    render_fib(&mut out, node);
    out
}

/// A per-port family: name, type, help, and the value of port i.
type PortFamily<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(usize) -> u64);

fn render_ports(out: &mut String, node: &Node) {
    let t = node.port_totals();
    let live = &node.live;
    let up = |b: bool| u64::from(b);
    let families: [PortFamily; 8] = [
        (
            "orbitmesh_port_up",
            "gauge",
            "1 when the port forwards: carrier up, administratively up, interface present.",
            &|i| up(live.carrier(i) && live.admin(i) && !live.gone(i)),
        ),
        (
            "orbitmesh_port_carrier_up",
            "gauge",
            "1 when the port's carrier is up.",
            &|i| up(live.carrier(i)),
        ),
        (
            "orbitmesh_port_admin_up",
            "gauge",
            "1 unless an operator set the port down (orbitmesh-ctl port down).",
            &|i| up(live.admin(i)),
        ),
        (
            "orbitmesh_port_rx_packets_total",
            "counter",
            "Frames received on the port and handed to the pipeline.",
            &|i| t[i].rx,
        ),
        (
            "orbitmesh_port_tx_packets_total",
            "counter",
            "Frames put on the port's TX ring.",
            &|i| t[i].tx,
        ),
        (
            "orbitmesh_port_rx_bytes_total",
            "counter",
            "Bytes of the frames received (Ethernet header through payload, no FCS).",
            &|i| t[i].rx_bytes,
        ),
        (
            "orbitmesh_port_tx_bytes_total",
            "counter",
            "Bytes of the frames sent (Ethernet header through payload, no FCS).",
            &|i| t[i].tx_bytes,
        ),
        (
            "orbitmesh_port_fill_ring_empty_total",
            "counter",
            "Times the port's fill ring could not be refilled (no free frame).",
            &|i| t[i].fill_ring_empty,
        ),
    ];
    for (name, kind, help, value) in families {
        per_port(out, node, (name, kind, help), value);
    }

    let name = "orbitmesh_port_drops_total";
    family(
        out,
        name,
        "counter",
        "Frames dropped, by port and reason: the pipeline's reasons count frames by the port they \
         arrived on; tx_ring_full (and, in an emulation, link_gone) by the port they were to leave by.",
    );
    for (i, p) in node.port_names.iter().enumerate() {
        let d = node.port_drops(i);
        for r in DropReason::ALL {
            sample(
                out,
                name,
                &[("port", p), ("reason", r.name())],
                d[r as usize],
            );
        }
        sample(
            out,
            name,
            &[("port", p), ("reason", "tx_ring_full")],
            t[i].tx_ring_full,
        );
        if node.delay_line {
            let gone = node.gone_drops[i].load(Ordering::Relaxed);
            sample(out, name, &[("port", p), ("reason", "link_gone")], gone);
        }
    }

    let name = "orbitmesh_kernel_socket_drops_total";
    family(
        out,
        name,
        "counter",
        "Frames the kernel dropped on the port's AF_XDP sockets (XDP_STATISTICS), by reason; \
         read by the workers every 100 ms.",
    );
    for (i, p) in node.port_names.iter().enumerate() {
        let k = &t[i].kernel;
        for (reason, v) in [
            ("rx_ring_full", k.rx_ring_full),
            ("rx_fill_empty", k.rx_fill_empty),
            ("rx_dropped", k.rx_dropped),
            ("invalid_descs", k.invalid_descs),
        ] {
            sample(out, name, &[("port", p), ("reason", reason)], v);
        }
    }
}

fn render_pipeline(out: &mut String, node: &Node) {
    let c = node.counters();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    for (name, help, v) in [
        ("orbitmesh_rx_packets_total", "Frames handed to the pipeline (all ports).", c.rx),
        ("orbitmesh_forwarded_packets_total", "Frames given a port to leave by.", c.forwarded),
        (
            "orbitmesh_fast_reroute_packets_total",
            "Forwarded frames sent to a backup (or another ECMP) next hop because the chosen port was down.",
            c.backup_used,
        ),
    ] {
        family(out, name, "counter", help);
        sample(out, name, &[], v);
    }
    let name = "orbitmesh_punted_packets_total";
    family(
        out,
        name,
        "counter",
        "Frames the pipeline punted, by reason.",
    );
    for r in PuntReason::ALL {
        sample(out, name, &[("reason", r.name())], c.punt_count(r));
    }
    let name = "orbitmesh_punt_host_packets_total";
    family(
        out,
        name,
        "counter",
        "Punted frames for the host's TAP interface (punt = \"host\"), by result.",
    );
    for (result, v) in [
        ("delivered", load(&node.punt.delivered)),
        ("queue_full", load(&node.punt.queue_full)),
        ("write_failed", load(&node.punt.write_failed)),
    ] {
        sample(out, name, &[("result", result)], v);
    }
    let name = "orbitmesh_orders_refused_total";
    family(
        out,
        name,
        "counter",
        "Orders (schedules, clears, changes by hand) refused, by reason.",
    );
    for r in Refusal::ALL {
        sample(out, name, &[("reason", r.name())], node.schedule.refused(r));
    }
}

/// The XDP fast path's counters (see the module doc), as housekeeping
/// last stored them.
fn render_fast_path(out: &mut String, node: &Node) {
    let fast = node.fast.load();
    let name = "orbitmesh_fast_path_enabled";
    family(
        out,
        name,
        "gauge",
        "1 while the XDP fast path forwards transit frames in the kernel (--fast-path xdp).",
    );
    sample(
        out,
        name,
        &[],
        u64::from(fast.is_some() && node.fast.off().is_none()),
    );
    for (name, help, v) in [
        (
            "orbitmesh_xdp_forwarded_packets_total",
            "Frames the XDP fast path forwarded (they never reach an AF_XDP worker).",
            fast.as_ref().map(|f| f.forwarded),
        ),
        (
            "orbitmesh_xdp_fast_reroute_packets_total",
            "Of those, frames sent to a backup (or another ECMP) next hop because the chosen port was down.",
            fast.as_ref().map(|f| f.backup_used),
        ),
        (
            "orbitmesh_xdp_punted_packets_total",
            "Frames the XDP fast path handed to the slow path: to the AF_XDP workers (counted again in orbitmesh_rx_packets_total) or the kernel.",
            fast.as_ref().map(|f| f.punted),
        ),
    ] {
        family(out, name, "counter", help);
        if let Some(v) = v {
            sample(out, name, &[], v);
        }
    }
    let name = "orbitmesh_xdp_drops_total";
    family(
        out,
        name,
        "counter",
        "Frames the XDP fast path dropped, by reason (the pipeline's reason names).",
    );
    for r in fast
        .iter()
        .flat_map(|f| DropReason::ALL.map(|r| (r, f.drop_count(r))))
    {
        sample(out, name, &[("reason", r.0.name())], r.1);
    }
    type Fast = orbitmesh_core::stats::FastPathCounters;
    /// A per-port family: name, help, the value for port i.
    type PerPort = (&'static str, &'static str, fn(&Fast, usize) -> u64);
    let per_port: [PerPort; 4] = [
        (
            "orbitmesh_xdp_port_tx_packets_total",
            "Frames the XDP fast path sent out of the port.",
            Fast::port_tx,
        ),
        (
            "orbitmesh_xdp_port_tx_bytes_total",
            "Bytes of those frames as sent (Ethernet header to the end of the payload).",
            Fast::port_tx_bytes,
        ),
        (
            "orbitmesh_xdp_port_rx_packets_total",
            "Frames that came in on the port and that the XDP fast path finished (forwarded or dropped; punted frames are in orbitmesh_port_rx_packets_total when a worker receives them).",
            Fast::port_rx,
        ),
        (
            "orbitmesh_xdp_port_rx_bytes_total",
            "Bytes of those frames as received.",
            Fast::port_rx_bytes,
        ),
    ];
    for (name, help, value) in per_port {
        family(out, name, "counter", help);
        if let Some(f) = &fast {
            for (i, p) in node.port_names.iter().enumerate() {
                sample(out, name, &[("port", p)], value(f, i));
            }
        }
    }
    let name = "orbitmesh_xdp_rx_unknown_port_packets_total";
    family(
        out,
        name,
        "counter",
        "Frames the XDP fast path finished that came in on an interface it could not name (its ifindex shares an rx_ports slot with another port's).",
    );
    if let Some(f) = &fast {
        sample(out, name, &[], f.rx_unknown_port);
    }
}

fn render_fib(out: &mut String, node: &Node) {
    let now = orbitmesh_core::time::now_ns();
    let active = {
        let g = crossbeam_epoch::pin();
        node.fib.load(now, &g).version()
    };
    let name = "orbitmesh_fib_active_version";
    family(out, name, "gauge", "Version of the FIB in force.");
    sample(out, name, &[], active);
    // A staged FIB whose instant has passed is the active one.
    let staged = node.fib.staged().filter(|s| s.at > now);
    let name = "orbitmesh_fib_staged_version";
    family(
        out,
        name,
        "gauge",
        "Version of the FIB staged for a later activation (absent when none is).",
    );
    if let Some(s) = &staged {
        sample(out, name, &[], s.fib.version());
    }
    let name = "orbitmesh_fib_staged_activation_timestamp_seconds";
    family(
        out,
        name,
        "gauge",
        "When the staged FIB takes effect (Unix time; absent when none is staged).",
    );
    if let Some(s) = &staged {
        sample(out, name, &[], seconds(s.at));
    }
    let name = "orbitmesh_worker_fib_version";
    family(
        out,
        name,
        "gauge",
        "Version of the FIB each worker's last batch used.",
    );
    for (i, w) in node.workers.iter().enumerate() {
        let v = w.fib_version.load(Ordering::Relaxed);
        sample(out, name, &[("worker", &i.to_string())], v);
    }

    let name = "orbitmesh_fib_activation_lateness_seconds";
    family(
        out,
        name,
        "histogram",
        "How long after its activation instant a staged FIB was promoted by the dataplane \
         (workers forward with it from their first batch at or after the instant).",
    );
    let r = node.fib.lateness.read();
    let bucket = format!("{name}_bucket");
    for (bound, c) in LATENESS_BOUNDS_NS.iter().zip(&r.cumulative) {
        sample(out, &bucket, &[("le", &seconds(*bound).to_string())], c);
    }
    let count = *r.cumulative.last().expect("a +Inf bucket");
    sample(out, &bucket, &[("le", "+Inf")], count);
    sample(out, &format!("{name}_sum"), &[], seconds(r.sum_ns));
    sample(out, &format!("{name}_count"), &[], count);
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint {addr}: cannot listen: {error}")]
pub struct ListenError {
    pub addr: SocketAddr,
    /// Not a `source`: the message says it (once, in the chain).
    pub error: std::io::Error,
}

/// The running endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl MetricsServer {
    /// The address bound (with the port the kernel chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (sets `stop`) and waits for the accepting thread
    /// (at most [`ACCEPT_POLL`]); scrapes in progress finish on their own
    /// threads.
    pub fn join(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// How often the accepting thread looks at `stop` between connections.
/// (Not woken by connecting to ourselves: in a namespace whose loopback is
/// down that connection never arrives.)
pub const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// Binds `addr` and serves `GET /metrics` for `node` until `stop` is set.
/// An address in use is an error here, at start-up.
pub fn serve(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
) -> Result<MetricsServer, ListenError> {
    let listener = TcpListener::bind(addr).map_err(|error| ListenError { addr, error })?;
    listener
        .set_nonblocking(true)
        .map_err(|error| ListenError { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ListenError { addr, error })?;
    let active = Arc::new(AtomicUsize::new(0));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("om-metrics".into())
        .spawn(move || accept_loop(&listener, &node, &flag, &active))
        .map_err(|error| ListenError { addr, error })?;
    Ok(MetricsServer {
        addr: bound,
        thread,
        stop,
    })
}

fn accept_loop(
    listener: &TcpListener,
    node: &Arc<Node>,
    stop: &AtomicBool,
    active: &Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            // Nothing to accept, or a failure (e.g. out of descriptors)
            // that waiting may cure.
            Err(_) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        // Timeouts, not non-blocking reads, bound a connection.
        s.set_nonblocking(false).ok();
        s.set_write_timeout(Some(WRITE_TIMEOUT)).ok();
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = respond(
                &mut s,
                "503 Service Unavailable",
                "text/plain",
                b"too many scrapes at once\n",
            );
            // Bounded by LINGER: the accept loop waits at most that long.
            linger(&mut s);
            continue;
        }
        let (node, done) = (node.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("om-metrics-conn".into())
            .spawn(move || {
                answer(&mut s, &node);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    Metrics,
    NotFound,
    BadMethod,
    Malformed,
}

/// Reads the request line of a head: `GET /metrics` (a query string is
/// ignored); anything else is named.
pub fn parse_request(head: &[u8]) -> Asked {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Asked::Malformed;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Asked::Malformed;
    };
    let mut it = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Asked::Malformed;
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::Malformed;
    }
    if method != "GET" {
        return Asked::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Asked::Metrics,
        _ => Asked::NotFound,
    }
}

/// Reads into `buf` before `deadline`: the socket's timeout is set to the
/// time left, so a deadline bounds a whole exchange, not each read.
/// `Ok(0)` when the peer closed or the deadline passed.
fn read_before(s: &mut TcpStream, deadline: Instant, buf: &mut [u8]) -> std::io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(0);
    }
    s.set_read_timeout(Some(left))?;
    s.read(buf)
}

/// Reads the request head (bounded in size, and in time by one deadline)
/// and answers it.
fn answer(s: &mut TcpStream, node: &Node) {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() >= MAX_REQUEST {
            let _ = respond(
                s,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too long\n",
            );
            return linger(s);
        }
        match read_before(s, deadline, &mut buf) {
            Ok(0) | Err(_) => return, // closed or too slow: nobody to answer
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = match parse_request(&head) {
        Asked::Metrics => respond(s, "200 OK", CONTENT_TYPE, render(node).as_bytes()),
        Asked::NotFound => respond(
            s,
            "404 Not Found",
            "text/plain",
            b"metrics are at /metrics\n",
        ),
        Asked::BadMethod => respond(s, "405 Method Not Allowed", "text/plain", b"GET /metrics\n"),
        Asked::Malformed => respond(s, "400 Bad Request", "text/plain", b"malformed request\n"),
    };
}

/// Closes our side and reads what the client still sends, for at most
/// [`LINGER`] and 64 KiB, so that closing with unread input does not reset
/// the connection before the client has read the reply.
fn linger(s: &mut TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match read_before(s, deadline, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitmesh_core::fib::FibSnapshot;
    use std::collections::HashMap;

    /// Two ports, one with a name that needs escaping; a few counters set.
    fn node() -> Node {
        let names = vec!["isl0".to_string(), "odd\"name\\x".to_string()];
        let n = Node::new("sat-17", names, FibSnapshot::empty(7), 2);
        let p = &n.workers[1].ports[0];
        p.rx.store(3, Ordering::Relaxed);
        p.rx_bytes.store(1500, Ordering::Relaxed);
        n.workers[0].ports[0].rx_bytes.store(64, Ordering::Relaxed);
        n.workers[0].ports[1].tx_bytes.store(99, Ordering::Relaxed);
        n.workers[0].ports[0].drops[DropReason::NoLabelRoute as usize].store(2, Ordering::Relaxed);
        n.workers[1].ports[0].drops[DropReason::NoLabelRoute as usize].store(5, Ordering::Relaxed);
        n.fib.lateness.observe(3_000_000);
        n
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label("plain-0"), "plain-0");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// Every sample belongs to a family declared once, just above, with
    /// HELP then TYPE; names follow the conventions.
    #[test]
    fn every_sample_has_its_help_and_type_and_conventional_name() {
        let on = node();
        let mut k = crate::sys::fast_maps::FastCounters::default();
        k.tx[..2].copy_from_slice(&[1, 2]);
        on.fast.store(&k, 2);
        // With the fast path off, and on (its families with samples).
        check_conventions(&render(&node()));
        check_conventions(&render(&on));
    }

    fn check_conventions(text: &str) {
        let mut kinds: HashMap<String, String> = HashMap::new();
        let mut current: Option<(String, String)> = None;
        let mut help_for: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty(), "{line}");
                help_for = Some(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(help_for.take().as_deref(), Some(name), "HELP before TYPE");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(
                    kinds.insert(name.into(), kind.into()).is_none(),
                    "{name} twice"
                );
                assert!(name.starts_with("orbitmesh_"), "{name}");
                assert_eq!(name.ends_with("_total"), kind == "counter", "{name}");
                current = Some((name.into(), kind.into()));
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                let (fam, kind) = current.clone().expect("a sample after its TYPE");
                let ok = name == fam
                    || (kind == "histogram"
                        && [
                            format!("{fam}_bucket"),
                            format!("{fam}_sum"),
                            format!("{fam}_count"),
                        ]
                        .contains(&name.to_string()));
                assert!(ok, "{name} under {fam}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        for want in [
            "orbitmesh_port_rx_packets_total",
            "orbitmesh_port_tx_bytes_total",
            "orbitmesh_port_drops_total",
            "orbitmesh_kernel_socket_drops_total",
            "orbitmesh_fast_reroute_packets_total",
            "orbitmesh_fib_active_version",
            "orbitmesh_fib_staged_version",
        ] {
            assert!(kinds.contains_key(want), "{want} missing");
        }
        assert_eq!(
            kinds["orbitmesh_fib_activation_lateness_seconds"],
            "histogram"
        );
    }

    #[test]
    fn values_are_the_workers_counters_summed_and_labels_escaped() {
        let text = render(&node());
        let has = |l: &str| assert!(text.lines().any(|x| x == l), "no {l:?} in\n{text}");
        has("orbitmesh_node_info{node=\"sat-17\",version=\"0.1.0\"} 1");
        has("orbitmesh_port_rx_packets_total{port=\"isl0\"} 3");
        has("orbitmesh_port_rx_bytes_total{port=\"isl0\"} 1564");
        has("orbitmesh_port_tx_bytes_total{port=\"odd\\\"name\\\\x\"} 99");
        has("orbitmesh_port_drops_total{port=\"isl0\",reason=\"no_label_route\"} 7");
        has("orbitmesh_port_drops_total{port=\"isl0\",reason=\"tx_ring_full\"} 0");
        has("orbitmesh_kernel_socket_drops_total{port=\"isl0\",reason=\"rx_ring_full\"} 0");
        has("orbitmesh_fib_active_version 7");
        has("orbitmesh_fib_activation_lateness_seconds_bucket{le=\"0.001\"} 0");
        has("orbitmesh_fib_activation_lateness_seconds_bucket{le=\"0.005\"} 1");
        has("orbitmesh_fib_activation_lateness_seconds_bucket{le=\"+Inf\"} 1");
        has("orbitmesh_fib_activation_lateness_seconds_sum 0.003");
        has("orbitmesh_fib_activation_lateness_seconds_count 1");
        // No staged FIB: the family is declared, without a sample.
        assert!(!text.contains("\norbitmesh_fib_staged_version "), "{text}");
        // Not an emulation: no link_gone reason.
        assert!(!text.contains("link_gone\""), "{text}");
    }

    #[test]
    fn the_fast_paths_counters_have_their_own_families_once_it_runs() {
        let node = node();
        let text = render(&node);
        assert!(text.contains("\norbitmesh_fast_path_enabled 0\n"), "{text}");
        assert!(text.contains("# TYPE orbitmesh_xdp_forwarded_packets_total counter"));
        assert!(
            !text.contains("\norbitmesh_xdp_"),
            "off: no samples\n{text}"
        );

        let mut k = crate::sys::fast_maps::FastCounters {
            forwarded: 1000,
            backup_used: 3,
            punted: 17,
            ..Default::default()
        };
        k.tx[..2].copy_from_slice(&[600, 400]);
        k.tx_bytes[..2].copy_from_slice(&[600 * 64, 400 * 68]);
        k.rx[..2].copy_from_slice(&[0, 1005]);
        k.rx_bytes[..2].copy_from_slice(&[0, 1005 * 64]);
        // The slot for an interface rx_ports does not name.
        k.rx[crate::sys::fast_maps::FAST_MAX_PORTS] = 2;
        k.drops[DropReason::TtlExpired as usize] = 5;
        node.fast.store(&k, 2);
        let text = render(&node);
        let has = |l: &str| assert!(text.lines().any(|x| x == l), "no {l:?} in\n{text}");
        has("orbitmesh_fast_path_enabled 1");
        has("orbitmesh_xdp_forwarded_packets_total 1000");
        has("orbitmesh_xdp_fast_reroute_packets_total 3");
        has("orbitmesh_xdp_punted_packets_total 17");
        has("orbitmesh_xdp_drops_total{reason=\"ttl_expired\"} 5");
        has("orbitmesh_xdp_drops_total{reason=\"mtu_exceeded\"} 0");
        has("orbitmesh_xdp_port_tx_packets_total{port=\"isl0\"} 600");
        has("orbitmesh_xdp_port_tx_packets_total{port=\"odd\\\"name\\\\x\"} 400");
        has("orbitmesh_xdp_port_tx_bytes_total{port=\"isl0\"} 38400");
        has("orbitmesh_xdp_port_rx_packets_total{port=\"odd\\\"name\\\\x\"} 1005");
        has("orbitmesh_xdp_port_rx_bytes_total{port=\"isl0\"} 0");
        has("orbitmesh_xdp_rx_unknown_port_packets_total 2");
        // The AF_XDP workers' families are unchanged beside them.
        has("orbitmesh_port_rx_packets_total{port=\"isl0\"} 3");
        has("orbitmesh_forwarded_packets_total 0");
    }

    #[test]
    fn requests_other_than_get_metrics_are_named() {
        let p = |s: &str| parse_request(s.as_bytes());
        assert_eq!(
            p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics
        );
        assert_eq!(p("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Asked::Metrics);
        assert_eq!(p("GET / HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(p("GET /metricsx HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(p("POST /metrics HTTP/1.1\r\n\r\n"), Asked::BadMethod);
        assert_eq!(p("GET /metrics\r\n\r\n"), Asked::Malformed);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Asked::Malformed);
        assert_eq!(p("\u{0}\u{1}"), Asked::Malformed);
    }

    /// One request on a new connection; the whole reply.
    fn ask(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req).unwrap();
        // The reply, even if the connection is reset after it.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_endpoint_answers_scrapes_refuses_the_rest_and_caps_connections() {
        let stop = Arc::new(AtomicBool::new(false));
        let node = Arc::new(node());
        let m = serve("127.0.0.1:0".parse().unwrap(), node.clone(), stop.clone()).unwrap();
        let addr = m.addr();

        let r = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.contains("orbitmesh_port_rx_bytes_total{port=\"isl0\"} 1564"));

        assert!(ask(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(ask(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(ask(addr, b"hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let long = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST)
        );
        assert!(ask(addr, long.as_bytes()).starts_with("HTTP/1.1 431 "));

        // A second endpoint on the same address: refused, named.
        let e = serve(addr, node.clone(), stop.clone())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("metrics endpoint {addr}: cannot listen: "))
                && e.contains("in use"),
            "{e}"
        );

        // MAX_CONNECTIONS clients that send nothing hold every slot (until
        // READ_TIMEOUT); the next is told 503 at once.
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let t0 = std::time::Instant::now();
        let r = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
        assert!(t0.elapsed() < READ_TIMEOUT, "not made to wait for a slot");
        drop(idle);
        // The idle ones give their slots back (closed, or timed out).
        let t0 = std::time::Instant::now();
        loop {
            let r = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
            if r.starts_with("HTTP/1.1 200 ") {
                break;
            }
            assert!(t0.elapsed() < 2 * READ_TIMEOUT, "slots never freed: {r}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let t0 = std::time::Instant::now();
        m.join();
        assert!(t0.elapsed() < 4 * ACCEPT_POLL, "stops without being woken");
    }

    /// A client that sends its head a byte at a time, each byte well within
    /// a per-read timeout, is cut off when the whole head's deadline passes
    /// (a per-read timeout let such a client hold a slot for hours).
    #[test]
    fn a_trickling_client_is_cut_off_at_the_deadline() {
        let stop = Arc::new(AtomicBool::new(false));
        let m = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(node()),
            stop.clone(),
        )
        .unwrap();
        let mut s = TcpStream::connect(m.addr()).unwrap();
        let t0 = Instant::now();
        let cut = loop {
            // Stops succeeding once the server has closed the connection.
            if s.write_all(b"X").is_err() || t0.elapsed() > 4 * READ_TIMEOUT {
                break t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            cut < READ_TIMEOUT + Duration::from_secs(1),
            "still connected after {cut:?}"
        );
        stop.store(true, Ordering::Relaxed);
        m.join();
    }
}
