//! Operator commands against running dataplanes, over their control sockets
//! (dataplane::ctl): show, load, stage, swap, roll back, check and diff
//! FIBs; read stats; set ports up or down. The rendering follows what
//! operators know from `ip -M route` and `vppctl show mpls fib`.
//!
//! Exit codes, for scripts: 0 done; 1 the dataplane refused the request
//! (the running FIB stays); 2 bad input (file, argument); 3 the dataplane
//! could not be reached.

use orbitmesh_core::fib::spec::{
    ActionSpec, FibSpec, GroupId, GroupSpec, NextHopId, NextHopSpec, WrittenTarget,
};
use orbitmesh_core::protocol::{self as ctl, Counter, FibView, Request, Response, StatsInfo};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A failed command with its exit code.
#[derive(Debug)]
pub struct OpError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub fn refused(m: impl Into<String>) -> OpError {
    OpError {
        code: 1,
        message: m.into(),
    }
}
pub fn bad_input(m: impl Into<String>) -> OpError {
    OpError {
        code: 2,
        message: m.into(),
    }
}
pub fn unreachable(m: impl Into<String>) -> OpError {
    OpError {
        code: 3,
        message: m.into(),
    }
}

/// The dataplane's default socket (`orbitmesh-dp` with no --name).
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/orbitmesh/orbitmesh.sock")
}

/// One request; a dataplane error becomes exit code 1, no answer code 3.
pub fn call(socket: &Path, req: &Request) -> Result<Response, OpError> {
    call_at(&ctl::Endpoint::Socket(socket.to_path_buf()), req)
}

/// [`call`] to the unix socket or the remote (TCP) channel.
pub fn call_at(at: &ctl::Endpoint, req: &Request) -> Result<Response, OpError> {
    match ctl::call_at(at, req) {
        Ok(Response::Error { message }) => Err(refused(message)),
        Ok(r) => Ok(r),
        Err(e) => Err(unreachable(e)),
    }
}

/// Reads and parses a FIB file in the format its name says: `.omfib`
/// binary only, `.toml` TOML, `.json` JSON, anything else by its first bytes.
pub fn read_fib(path: &Path) -> Result<FibSpec, OpError> {
    let bytes =
        FibSpec::read_file(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    FibSpec::from_file_bytes(path, &bytes)
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

/// Reads a FIB file to load it: as [`read_fib`], except that a file that
/// reads but holds a bad value (a MAC or prefix, named by entry and field)
/// is refused (exit 1), as the dataplane refuses an entry it cannot build,
/// rather than bad input.
pub fn read_fib_to_load(path: &Path) -> Result<FibSpec, OpError> {
    let bytes =
        FibSpec::read_file(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    FibSpec::from_file_bytes(path, &bytes).map_err(|e| match e {
        orbitmesh_core::fib::spec::SpecError::Invalid(_) => {
            refused(format!("{}: {e}", path.display()))
        }
        _ => bad_input(format!("{}: {e}", path.display())),
    })
}

/// Writes a FIB file in the format its extension names: .omfib (binary),
/// .json, or TOML otherwise.
pub fn write_fib(spec: &FibSpec, path: &Path) -> Result<(), OpError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "omfib" => spec
            .to_binary()
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?,
        "json" => spec.to_json().into_bytes(),
        _ => spec.to_toml().into_bytes(),
    };
    std::fs::write(path, bytes).map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

/// Validates a FIB file offline (ports numbered in file order); an empty
/// FIB is refused unless `allow_empty`, as the dataplane would.
pub fn check(path: &Path, allow_empty: bool) -> Result<String, OpError> {
    let spec = read_fib(path)?;
    let invalid = |e| bad_input(format!("{}: {e}", path.display()));
    spec.check_not_empty(allow_empty).map_err(invalid)?;
    let f = spec.build().map_err(invalid)?;
    Ok(format!(
        "{}: valid FIB version {}: {} ports, {} next hops, {} groups, {} labels (table of {}), {} IPv4 and {} IPv6 routes",
        path.display(),
        f.version(),
        spec.ports.len(),
        f.next_hops_len(),
        f.groups_len(),
        f.labels_bound(),
        f.label_table_len(),
        f.ipv4_routes(),
        f.ipv6_routes()
    ))
}

/// Checks `fib show --label` before the dataplane is asked: a 20-bit
/// MPLS label (a larger number could only ever show nothing).
pub fn check_show_label(l: u32) -> Result<(), OpError> {
    use orbitmesh_core::wire::mpls::label::MAX;
    if l > MAX {
        return Err(bad_input(format!(
            "--label {l}: an MPLS label is 20 bits (0-{MAX})"
        )));
    }
    Ok(())
}

/// Checks `fib show --prefix` before the dataplane is asked: an address
/// (the route it takes) or `address/length` (that route exactly).
pub fn check_show_prefix(p: &str) -> Result<(), OpError> {
    let bad = |why: String| {
        bad_input(format!(
            "--prefix {p:?}: {why}; expected an address (10.2.3.4, 2001:db8::1) or a prefix (10.2.0.0/16)"
        ))
    };
    use orbitmesh_core::fib::prefix::{split, PrefixError};
    let not_ip = |a: &str| bad(format!("{a:?} is not an IPv4 or IPv6 address"));
    if !p.contains('/') {
        return p
            .parse::<std::net::IpAddr>()
            .map(|_| ())
            .map_err(|_| not_ip(p));
    }
    // The one prefix parser takes the text apart; the length's range is
    // checked here, host bits are the dataplane's to refuse.
    match split(p) {
        Ok((ip, n)) if n <= if ip.is_ipv4() { 32 } else { 128 } => Ok(()),
        Err(PrefixError::Address(a)) => Err(not_ip(&a)),
        _ => {
            let (a, l) = p.split_once('/').expect("has a /");
            let max = match a.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_ipv4() => 32,
                _ => 128,
            };
            Err(bad(format!("{l:?} is not a prefix length (0-{max})")))
        }
    }
}

/// Parses an activation time: `now`, `+` and a duration from now (`+2s`,
/// `+500ms`, `+90min`, `+1h`: [`crate::duration`], as everywhere), RFC
/// 3339 UTC (`2026-11-25T16:00:00Z`, fractions allowed), or an integer of
/// nanoseconds since the Unix epoch (CLOCK_REALTIME).
pub fn parse_time(s: &str, now_ns: u64) -> Result<u64, OpError> {
    let bad = |why: &str| {
        bad_input(format!("--at {s:?}: {why}expected now, +2s, +90min, +1h, 2026-11-25T16:00:00Z or nanoseconds since the Unix epoch"))
    };
    if s == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = s.strip_prefix('+') {
        let ns = crate::duration::parse_ns(rel).map_err(|e| bad(&format!("{e}; ")))?;
        let ns = u64::try_from(ns).map_err(|_| bad("a time from now cannot be negative; "))?;
        return now_ns.checked_add(ns).ok_or_else(|| bad("too far ahead; "));
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad(""))?;
    let ns = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    u64::try_from(ns).map_err(|_| {
        bad(&format!(
            "activation times run from 1970-01-01T00:00:00Z to {} (nanoseconds since the Unix epoch, 64 bits); ",
            format_time(u64::MAX)
        ))
    })
}

/// What an operator should hear before `fib load` sends a FIB of
/// `version` to a dataplane in state `running`, to take effect at `at_ns`
/// (`None`: now). Warnings, not refusals (schedules and scripts do these
/// on purpose): an activation time already past (the FIB takes effect at
/// once), a version lower than the active one, a staged FIB replaced
/// before its time.
pub fn load_warnings(
    running: &ctl::VersionInfo,
    version: u64,
    at_ns: Option<u64>,
    now_ns: u64,
) -> Vec<String> {
    let mut w = Vec::new();
    if at_ns.is_some() {
        w.extend(clock_warning(running));
    }
    if let Some(at) = at_ns.filter(|&at| at < now_ns) {
        w.push(format!(
            "the activation time {} is {:.3} s in the past: FIB version {version} takes effect at once",
            format_time(at),
            (now_ns - at) as f64 / 1e9
        ));
    }
    if version < running.active {
        w.push(format!(
            "FIB version {version} is lower than the active version {}: versions normally only grow",
            running.active
        ));
    }
    if let Some((v, at)) = running.staged.filter(|&(_, at)| at > now_ns) {
        w.push(format!(
            "FIB version {v}, staged for {}, is replaced and will not take effect",
            format_time(at)
        ));
    }
    w
}

/// Activation times are CLOCK_REALTIME instants on the dataplane's host:
/// the warning to give when that host says its clock is not synchronized
/// (the dataplane reads its kernel's NTP state and reports it).
pub fn clock_warning(running: &ctl::VersionInfo) -> Option<String> {
    (running.clock_synchronized == Some(false)).then(|| {
        "the dataplane's clock is not synchronized (NTP/PTP); activation times are only as right as its clock".to_string()
    })
}

/// Largest schedule file read (the largest control message).
pub const MAX_SCHEDULE_BYTES: usize = ctl::MAX_MESSAGE;

/// Reads a schedule file (JSON, see `orbitmesh_core::schedule`) and checks
/// what can be checked without the node's ports.
pub fn read_schedule(path: &Path) -> Result<orbitmesh_core::schedule::Schedule, OpError> {
    let bytes = orbitmesh_core::file::read_limited(path, MAX_SCHEDULE_BYTES)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    let s: orbitmesh_core::schedule::Schedule = serde_json::from_slice(&bytes)
        .map_err(|e| bad_input(format!("{}: not a schedule: {e}", path.display())))?;
    s.check()
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    Ok(s)
}

/// Makes a key pair: `out` (the secret, 64 hex digits, mode 0600, created
/// new: an existing file is never overwritten) and `out.pub`; returns the
/// public key. The seed comes from the kernel's random source.
pub fn keygen(out: &Path) -> Result<orbitmesh_core::sign::PublicKey, OpError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| refused(format!("cannot read /dev/urandom: {e}")))?;
    let key = orbitmesh_core::sign::SecretKey::from_bytes(seed);
    let public = key.public();
    let pub_path = PathBuf::from(format!("{}.pub", out.display()));
    let write = |p: &Path, text: String, mode: u32| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| bad_input(format!("{}: {e}", p.display())))
    };
    write(out, format!("{}\n", key.to_hex()), 0o600)?;
    write(&pub_path, format!("{public}\n"), 0o644)?;
    Ok(public)
}

/// Reads a secret key file written by [`keygen`].
pub fn read_secret_key(path: &Path) -> Result<orbitmesh_core::sign::SecretKey, OpError> {
    let text = orbitmesh_core::file::read_limited(path, 1024)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&text);
    orbitmesh_core::sign::SecretKey::from_hex(&text)
        .map_err(|e| bad_input(format!("{}: not a secret key: {e}", path.display())))
}

/// `schedule show` as a table: one line per entry, the one in force marked.
pub fn schedule_table(info: &ctl::ScheduleInfo) -> String {
    use std::fmt::Write;
    let mut t = format!(
        "node {}  serial {}  kept in {}{}\n",
        info.node,
        info.serial.map_or("-".to_string(), |s| s.to_string()),
        info.state_dir.as_deref().unwrap_or("memory only"),
        if info.signed_orders {
            "  signed orders only"
        } else {
            ""
        }
    );
    if info.entries.is_empty() {
        t += "no schedule held\n";
        return t;
    }
    let _ = writeln!(
        t,
        "   {:<4} {:<26} {:>10}",
        "#", "activation (UTC)", "version"
    );
    for (i, (at, v)) in info.entries.iter().enumerate() {
        let mark = if info.in_force == Some(i) { "*" } else { " " };
        let _ = writeln!(t, " {mark} {i:<4} {:<26} {v:>10}", format_time(*at));
    }
    t
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC.
pub fn format_time(ns: u64) -> String {
    let t =
        chrono::DateTime::from_timestamp((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32);
    t.map_or_else(
        || format!("{ns} ns"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Renders a FIB like `ip -M route` / `vppctl show mpls fib`.
pub fn render_spec(spec: &FibSpec) -> String {
    let mut out = String::new();
    let nh: BTreeMap<NextHopId, &NextHopSpec> = spec.next_hops.iter().map(|n| (n.id, n)).collect();
    let name = |id: NextHopId| {
        nh.get(&id)
            .map_or_else(|| format!("#{id}"), |n| n.name.clone())
    };
    let via = |id: NextHopId| -> String {
        match nh.get(&id) {
            Some(n) => {
                let mut s = format!("via {} dev {} dst {}", n.name, n.port, n.dst_mac);
                if !n.push.is_empty() {
                    s = format!("push {:?} {s}", n.push);
                }
                if let Some(v) = n.vlan {
                    let _ = write!(s, " vlan {v}");
                }
                if let Some(b) = n.backup {
                    let _ = write!(s, " backup {}", name(b));
                }
                s
            }
            None => format!("via #{id} (unknown)"),
        }
    };
    let groups: BTreeMap<GroupId, &GroupSpec> = spec.groups.iter().map(|g| (g.id, g)).collect();
    let target = |group: Option<GroupId>, next_hop: Option<NextHopId>| -> String {
        match (group, next_hop) {
            (_, Some(n)) => via(n),
            (Some(g), None) => {
                let (gname, members) = groups.get(&g).map_or_else(
                    || (format!("#{g}"), &[][..]),
                    |g| (g.name.clone(), g.next_hops.as_slice()),
                );
                let mut s = format!("ecmp {gname} ({} paths)", members.len());
                for &m in members {
                    let _ = write!(s, "\n        {}", via(m));
                }
                s
            }
            _ => String::new(),
        }
    };
    for l in &spec.labels {
        match l.action {
            ActionSpec::Pop => {
                let _ = writeln!(
                    out,
                    "{:<8} pop (next label, or forward by the IP header)",
                    l.label
                );
            }
            ActionSpec::Swap => {
                let out_label = l.out_label.unwrap_or(l.label);
                let what = match out_label {
                    3 => "pop (php)".to_string(),
                    0 | 2 => format!("swap {out_label} (explicit null)"),
                    o => format!("swap {o}"),
                };
                let _ = writeln!(out, "{:<8} {what} {}", l.label, target(l.group, l.next_hop));
            }
        }
    }
    for r in &spec.routes {
        let _ = writeln!(out, "{:<18} {}", r.prefix, target(r.group, r.next_hop));
    }
    out
}

pub fn render_view(v: &FibView) -> String {
    let mut out = format!(
        "FIB version {} (active{}): {} labels, {} routes, TTL ingress {} egress {}\n",
        v.active.version,
        v.previous_version
            .map_or(String::new(), |p| format!(", previous {p}")),
        v.active.labels.len(),
        v.active.routes.len(),
        v.active.ttl_ingress,
        v.active.ttl_egress
    );
    out += &render_spec(&v.active);
    if let Some((s, at)) = &v.staged {
        let _ = writeln!(
            out,
            "\nFIB version {} (staged, activates at {at} ns):",
            s.version
        );
        out += &render_spec(s);
    }
    out
}

/// What differs between two FIB files, one line per difference (`- kind
/// key` only in `a`, `+ kind key` only in `b`, `~ kind key: old -> new`);
/// `None` when they are the same. `fib diff` exits 1 when they differ,
/// like diff(1).
pub fn diff(a: &FibSpec, b: &FibSpec) -> Option<String> {
    let mut out = String::new();
    // Compared as written (references by name, see FibFile), so an entry
    // whose target keeps its name is unchanged even where ids differ.
    let (wa, wb) = (a.written(), b.written());
    let label = |l: &WrittenTarget| l.label.map(|l| l.to_string()).unwrap_or_default();
    let prefix = |r: &WrittenTarget| r.prefix.map(|p| p.to_string()).unwrap_or_default();
    diff_maps(
        &mut out,
        "label",
        keyed(&wa.labels, label),
        keyed(&wb.labels, label),
    );
    diff_maps(
        &mut out,
        "route",
        keyed(&wa.routes, prefix),
        keyed(&wb.routes, prefix),
    );
    diff_maps(
        &mut out,
        "next hop",
        keyed(&wa.next_hops, |n| n.name.to_string()),
        keyed(&wb.next_hops, |n| n.name.to_string()),
    );
    diff_maps(
        &mut out,
        "group",
        keyed(&wa.groups, |g| g.name.to_string()),
        keyed(&wb.groups, |g| g.name.to_string()),
    );
    diff_maps(
        &mut out,
        "port",
        keyed(wa.ports, |p| p.name.clone()),
        keyed(wb.ports, |p| p.name.clone()),
    );
    for (what, x, y) in [
        ("version", scalar(&a.version), scalar(&b.version)),
        (
            "ttl_ingress",
            scalar(&a.ttl_ingress),
            scalar(&b.ttl_ingress),
        ),
        ("ttl_egress", scalar(&a.ttl_egress), scalar(&b.ttl_egress)),
        ("hash_seed", scalar(&a.hash_seed), scalar(&b.hash_seed)),
    ] {
        if x != y {
            let _ = writeln!(out, "~ {what} {x} -> {y}");
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A scalar field of a FIB file as it is written there (`pipe`, `7`).
fn scalar<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

fn keyed<T>(items: &[T], key: impl Fn(&T) -> String) -> BTreeMap<String, &T> {
    items.iter().map(|i| (key(i), i)).collect()
}

/// Appends `- kind key`, `+ kind key` and `~ kind key: old -> new` lines.
fn diff_maps<T: PartialEq + serde::Serialize>(
    out: &mut String,
    kind: &str,
    a: BTreeMap<String, &T>,
    b: BTreeMap<String, &T>,
) {
    let show = |v: &T| serde_json::to_string(v).unwrap_or_default();
    for (k, v) in &a {
        match b.get(k) {
            None => {
                let _ = writeln!(out, "- {kind} {k}");
            }
            Some(w) if w != v => {
                let _ = writeln!(out, "~ {kind} {k}: {} -> {}", show(v), show(w));
            }
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        let _ = writeln!(out, "+ {kind} {k}");
    }
}

/// Stats as a table; with a previous sample, rates per second too.
pub fn render_stats(s: &StatsInfo, prev: Option<&StatsInfo>) -> String {
    let dt = prev
        .map(|p| (s.now_ns.saturating_sub(p.now_ns)) as f64 / 1e9)
        .filter(|&d| d > 0.0);
    let rate = |now: u64, before: Option<u64>| match (dt, before) {
        (Some(d), Some(b)) => format!("{:>12.0}/s", now.saturating_sub(b) as f64 / d),
        _ => String::new(),
    };
    // Rate columns (from the second draw of --watch on) have headers too.
    let rates = |a: &str, b: &str| match dt {
        Some(_) => format!(" {a:>14} {b:>14}"),
        None => String::new(),
    };
    let mut out = format!("node {}  FIB version {}", s.node, s.fib_version);
    if let Some(at) = s.cleared_at_ns {
        let ago = s.now_ns.saturating_sub(at) as f64 / 1e9;
        let _ = write!(out, "  counters cleared {ago:.1} s ago");
    }
    if let Some(why) = &s.fast_path_off {
        let _ = write!(
            out,
            "  fast path XDP loaded but OFF ({why}): every frame to the AF_XDP workers"
        );
    } else if s.fast_path.is_some() {
        out.push_str("  fast path XDP on (ports, counters: AF_XDP's; both paths: 'by path')");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>6} {:>14} {:>14} {:>16} {:>16} {:>14} {:>14}{}",
        "port",
        "carrier",
        "admin",
        "rx",
        "tx",
        "rx_bytes",
        "tx_bytes",
        "tx_ring_full",
        "fill_empty",
        rates("rx rate", "tx rate")
    );
    for (i, p) in s.ports.iter().enumerate() {
        let pp = prev.and_then(|x| x.ports.get(i));
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>6} {:>14} {:>14} {:>16} {:>16} {:>14} {:>14} {} {}",
            p.name,
            match (p.gone, p.carrier) {
                (true, _) => "gone",
                (false, true) => "up",
                (false, false) => "down",
            },
            if p.admin_up { "up" } else { "down" },
            p.counters.rx,
            p.counters.tx,
            p.counters.rx_bytes,
            p.counters.tx_bytes,
            p.counters.tx_ring_full,
            p.counters.fill_ring_empty,
            rate(p.counters.rx, pp.map(|x| x.counters.rx)),
            rate(p.counters.tx, pp.map(|x| x.counters.tx)),
        );
    }
    for p in s.ports.iter().filter(|p| p.gone) {
        let _ = writeln!(
            out,
            "{:<12} gone: its interface was deleted under the running dataplane; restart orbitmesh-dp to use it again",
            p.name
        );
    }
    // The kernel's drops on the ports' AF_XDP sockets, where there are any:
    // frames lost before the relay saw them.
    for p in s.ports.iter().filter(|p| p.counters.kernel.total() > 0) {
        let k = &p.counters.kernel;
        let _ = writeln!(
            out,
            "{:<12} kernel socket drops: rx_ring_full {} fill_empty {} other {} invalid_descs {}",
            p.name, k.rx_ring_full, k.rx_fill_empty, k.rx_dropped, k.invalid_descs
        );
    }
    if dt.is_some() {
        let _ = writeln!(out, "{:<24} {:>14} {:>14}", "counter", "total", "rate");
    }
    for &(c, v) in s.counters.known() {
        if v == 0 && !matches!(c, Counter::Rx | Counter::Forwarded) {
            continue;
        }
        // With the fast path on, these are in the table of both paths.
        if s.fast_path.is_some() && by_path(c) {
            continue;
        }
        let before = prev.map(|p| p.counters.get(c));
        let _ = writeln!(out, "{:<24} {v:>14} {}", c.name(), rate(v, before));
    }
    // A newer dataplane's counters, as it names them.
    for (name, v) in s.counters.unknown().iter().filter(|c| c.1 > 0) {
        let before = prev.map(|p| p.counters.unknown_value(name));
        let _ = writeln!(out, "{name:<24} {v:>14} {}", rate(*v, before));
    }
    match &s.fast_path {
        Some(f) => render_paths(&mut out, s, f, prev, dt),
        None => out.push_str("fast path (XDP): off, the AF_XDP workers see every frame\n"),
    }
    out
}

/// Counters both paths keep: shown side by side when the fast path is on.
fn by_path(c: Counter) -> bool {
    matches!(
        c,
        Counter::Forwarded | Counter::BackupUsed | Counter::Drop(_)
    )
}

/// The fast path's value of a counter both paths keep ([`by_path`]).
fn fast_count(f: &orbitmesh_core::stats::FastPathCounters, c: Counter) -> u64 {
    match c {
        Counter::Forwarded => f.forwarded,
        Counter::BackupUsed => f.backup_used,
        Counter::Drop(r) => f.drop_count(r),
        _ => 0,
    }
}

/// The XDP fast path's counters beside the AF_XDP workers' and their sum,
/// per port (frames and bytes received and sent; the fast path's rx are the
/// frames it finished, not those it punted) and per counter both keep. Frames the fast path
/// forwards or drops never reach a worker, so the sum is the node's total;
/// frames it punts are received and counted again by the workers, so they
/// get a line of their own and are in no total (so do those it hands to
/// the kernel: ARP, neighbour discovery, traffic to the box).
fn render_paths(
    out: &mut String,
    s: &StatsInfo,
    f: &orbitmesh_core::stats::FastPathCounters,
    prev: Option<&StatsInfo>,
    dt: Option<f64>,
) {
    let prev_fast = prev.and_then(|p| p.fast_path.as_ref());
    let rate = |total: u64, before: Option<u64>| match (dt, before) {
        (Some(d), Some(b)) => format!(" {:>12.0}/s", total.saturating_sub(b) as f64 / d),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{:<24} {:>14} {:>14} {:>14}{}",
        "by path",
        "fast (XDP)",
        "AF_XDP",
        "total",
        if dt.is_some() { "     total rate" } else { "" }
    );
    let mut row = |name: &str, fast: u64, afxdp: u64, before: Option<u64>| {
        let total = fast + afxdp;
        let _ = writeln!(
            out,
            "{name:<24} {fast:>14} {afxdp:>14} {total:>14}{}",
            rate(total, before)
        );
    };
    type Fast = orbitmesh_core::stats::FastPathCounters;
    type Port = orbitmesh_core::stats::PortTotals;
    /// A per-port counter: its row name, the fast path's value, the AF_XDP
    /// workers' value.
    type PerPort = (&'static str, fn(&Fast, usize) -> u64, fn(&Port) -> u64);
    let per_port: [PerPort; 4] = [
        ("rx", Fast::port_rx, |c| c.rx),
        ("tx", Fast::port_tx, |c| c.tx),
        ("rx_bytes", Fast::port_rx_bytes, |c| c.rx_bytes),
        ("tx_bytes", Fast::port_tx_bytes, |c| c.tx_bytes),
    ];
    for (i, p) in s.ports.iter().enumerate() {
        let prev_port = prev_fast.zip(prev.and_then(|x| x.ports.get(i)));
        for (name, fast, afxdp) in per_port {
            let before = prev_port.map(|(pf, pp)| fast(pf, i) + afxdp(&pp.counters));
            row(
                &format!("{name} {}", p.name),
                fast(f, i),
                afxdp(&p.counters),
                before,
            );
        }
    }
    if f.rx_unknown_port > 0 {
        let before = prev_fast.zip(prev).map(|(pf, _)| pf.rx_unknown_port);
        row("rx unknown port", f.rx_unknown_port, 0, before);
    }
    for &c in Counter::ALL.iter().filter(|&&c| by_path(c)) {
        let (fast, afxdp) = (fast_count(f, c), s.counters.get(c));
        if fast + afxdp == 0 && c != Counter::Forwarded {
            continue;
        }
        let before = prev_fast
            .zip(prev)
            .map(|(pf, p)| fast_count(pf, c) + p.counters.get(c));
        row(c.name(), fast, afxdp, before);
    }
    let _ = writeln!(
        out,
        "{:<24} {:>14}  (to the AF_XDP workers, which count them again, or the kernel; \
         in no total)",
        "punted to slow path", f.punted
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_show_the_kernels_socket_drops_only_where_there_are_some() {
        use orbitmesh_core::protocol::PortInfo;
        use orbitmesh_core::stats::{KernelStats, PortTotals};
        let port = |name: &str, counters| PortInfo {
            name: name.into(),
            carrier: true,
            admin_up: true,
            gone: false,
            counters,
        };
        let s = StatsInfo {
            node: "n".into(),
            now_ns: 1,
            fib_version: 2,
            counters: [(Counter::Rx, 10)].into_iter().collect(),
            ports: vec![
                port("p0", PortTotals::default()),
                port(
                    "p1",
                    PortTotals {
                        rx: 3,
                        rx_bytes: 1_514_000_123,
                        tx_bytes: 64,
                        kernel: KernelStats {
                            rx_ring_full: 864,
                            rx_fill_empty: 2,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                ),
            ],
            cleared_at_ns: None,
            fast_path: None,
            fast_path_off: None,
        };
        let out = render_stats(&s, None);
        assert!(!out.contains("rate"), "no rates on the first draw: {out}");
        // The next draw of --watch, 2 s later: rate columns, with headers
        // aligned over them.
        let mut later = s.clone();
        later.now_ns += 2_000_000_000;
        later.counters = [(Counter::Rx, 30)].into_iter().collect();
        let watched = render_stats(&later, Some(&s));
        let lines: Vec<&str> = watched.lines().collect();
        assert!(
            lines[1].ends_with("        rx rate        tx rate"),
            "{watched}"
        );
        assert_eq!(lines[1].len(), lines[2].len(), "{watched}");
        let counters = lines.iter().position(|l| l.starts_with("counter")).unwrap();
        assert_eq!(
            lines[counters],
            format!("{:<24} {:>14} {:>14}", "counter", "total", "rate")
        );
        assert_eq!(
            lines[counters + 1],
            format!("{:<24} {:>14} {:>14}", "rx", 30, "10/s")
        );
        assert!(out.contains(
            "p1           kernel socket drops: rx_ring_full 864 fill_empty 2 other 0 invalid_descs 0"
        ));
        assert!(!out.contains("p0           kernel"), "{out}");
        // Byte counters, in their own columns under their headers.
        let head = out.lines().nth(1).unwrap();
        let p1 = out.lines().find(|l| l.starts_with("p1 ")).unwrap();
        let col = |line: &str, i: usize| line.split_whitespace().nth(i).unwrap().to_string();
        assert_eq!(
            (col(head, 5), col(p1, 5)),
            ("rx_bytes".into(), "1514000123".into())
        );
        assert_eq!((col(head, 6), col(p1, 6)), ("tx_bytes".into(), "64".into()));
    }

    /// Two ports; AF_XDP counts 10 forwarded (7 out of p0, 3 out of p1)
    /// and 2 TTL drops, 40 frames in on p0 (64 bytes each); the fast path,
    /// when given, 1000 forwarded (600 and 400, 128 bytes each), 4 TTL
    /// drops, 1 MTU drop (finished: 1005 in on p0, 132 bytes each), 25
    /// punted.
    fn two_paths(fast: bool) -> StatsInfo {
        use orbitmesh_core::protocol::PortInfo;
        use orbitmesh_core::stats::{DropReason, FastPathCounters, PortTotals};
        let port = |name: &str, tx| PortInfo {
            name: name.into(),
            carrier: true,
            admin_up: true,
            gone: false,
            counters: PortTotals {
                tx,
                rx: if name == "p0" { 40 } else { 0 },
                rx_bytes: if name == "p0" { 40 * 64 } else { 0 },
                ..Default::default()
            },
        };
        let mut f = FastPathCounters {
            forwarded: 1000,
            punted: 25,
            tx: vec![600, 400],
            tx_bytes: vec![600 * 128, 400 * 128],
            rx: vec![1005, 0],
            rx_bytes: vec![1005 * 132, 0],
            ..Default::default()
        };
        f.drops[DropReason::TtlExpired as usize] = 4;
        f.drops[DropReason::Mtu as usize] = 1;
        StatsInfo {
            node: "n".into(),
            now_ns: 1_000_000_000,
            fib_version: 2,
            counters: [
                (Counter::Rx, 37),
                (Counter::Forwarded, 10),
                (
                    Counter::Drop(orbitmesh_core::stats::DropReason::TtlExpired),
                    2,
                ),
            ]
            .into_iter()
            .collect(),
            ports: vec![port("p0", 7), port("p1", 3)],
            cleared_at_ns: None,
            fast_path: fast.then(|| Box::new(f)),
            fast_path_off: None,
        }
    }

    #[test]
    fn a_loaded_fast_path_that_is_off_says_why() {
        let mut s = two_paths(true);
        s.fast_path_off = Some("FIB version 9: next hops: 70000 entries".into());
        let out = render_stats(&s, None);
        let head = out.lines().next().unwrap();
        assert!(
            head.contains("fast path XDP loaded but OFF (FIB version 9: next hops: 70000 entries)"),
            "{head}"
        );
        assert!(!head.contains("fast path XDP on"), "{head}");
    }

    #[test]
    fn stats_show_both_paths_side_by_side_and_summed() {
        let out = render_stats(&two_paths(true), None);
        let row = |name: &str| {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{name}  ")))
                .unwrap_or_else(|| panic!("no {name} row in\n{out}"));
            line[name.len()..]
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        };
        let head = out.lines().find(|l| l.starts_with("by path")).unwrap();
        assert_eq!(
            head,
            format!(
                "{:<24} {:>14} {:>14} {:>14}",
                "by path", "fast (XDP)", "AF_XDP", "total"
            )
        );
        assert_eq!(row("tx p0"), [600, 7, 607]);
        assert_eq!(row("tx p1"), [400, 3, 403]);
        assert_eq!(row("rx p0"), [1005, 40, 1045]);
        assert_eq!(row("rx_bytes p0"), [1005 * 132, 40 * 64, 1005 * 132 + 2560]);
        assert_eq!(row("tx_bytes p1"), [400 * 128, 0, 400 * 128]);
        assert_eq!(row("rx p1"), [0, 0, 0]);
        assert!(!out.contains("unknown port"), "none: no row: {out}");
        assert_eq!(row("forwarded"), [1000, 10, 1010]);
        assert_eq!(row("ttl_expired"), [4, 2, 6]);
        assert_eq!(row("mtu_exceeded"), [1, 0, 1]);
        assert!(!out.contains("backup_used"), "zero on both paths: {out}");
        // Punted frames go to the steering program: the workers count again
        // those they receive (in their rx), the kernel takes the rest; their
        // own line, in no total, and rx stays the workers' alone.
        assert!(out.contains(
            "\npunted to slow path                  25  (to the AF_XDP workers, which count them again, or the kernel; in no total)\n"
        ), "{out}");
        assert_eq!(row("rx"), [37]);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("forwarded ")).count(),
            1,
            "forwarded once, in the table of both paths: {out}"
        );
        assert!(!out.contains("fast path (XDP): off"), "{out}");
        assert_eq!(
            out.lines().next(),
            Some("node n  FIB version 2  fast path XDP on (ports, counters: AF_XDP's; both paths: 'by path')")
        );

        // --watch: the total's rate, 1 s later.
        let mut later = two_paths(true);
        later.now_ns += 1_000_000_000;
        later.fast_path.as_mut().unwrap().forwarded += 500;
        later.fast_path.as_mut().unwrap().tx[0] += 500;
        later.ports[0].counters.tx += 100;
        let out = render_stats(&later, Some(&two_paths(true)));
        let tx0 = out.lines().find(|l| l.starts_with("tx p0 ")).unwrap();
        assert!(tx0.ends_with(" 1207          600/s"), "{out}");
        let fwd = out.lines().find(|l| l.starts_with("forwarded ")).unwrap();
        assert!(fwd.ends_with(" 1510          500/s"), "{out}");

        // Frames from an interface the fast path cannot name get a row.
        let mut odd = two_paths(true);
        odd.fast_path.as_mut().unwrap().rx_unknown_port = 3;
        let out = render_stats(&odd, None);
        assert!(out.contains("\nrx unknown port "), "{out}");
    }

    #[test]
    fn stats_without_the_fast_path_are_todays_plus_one_line() {
        let off = render_stats(&two_paths(false), None);
        let on = two_paths(true);
        assert!(
            off.ends_with("\nfast path (XDP): off, the AF_XDP workers see every frame\n"),
            "{off}"
        );
        assert!(
            !off.contains("by path") && !off.contains("punted to"),
            "{off}"
        );
        // Every line but the last is what the AF_XDP counters alone give.
        let lines: Vec<&str> = off.lines().collect();
        assert!(lines
            .iter()
            .any(|l| *l == format!("{:<24} {:>14} ", "forwarded", 10)));
        assert!(lines
            .iter()
            .any(|l| *l == format!("{:<24} {:>14} ", "ttl_expired", 2)));
        assert_eq!(lines.len(), 1 + 3 + 3 + 1, "{off}");
        assert!(render_stats(&on, None).lines().count() > lines.len());
    }

    #[test]
    fn show_prefixes_are_checked_before_asking() {
        for ok in [
            "10.2.3.4",
            "10.2.0.0/16",
            "0.0.0.0/0",
            "2001:db8::1",
            "2001:db8::/32",
        ] {
            check_show_prefix(ok).unwrap();
        }
        let e = check_show_prefix("10.2.3").unwrap_err();
        assert_eq!(e.code, 2);
        assert_eq!(
            e.message,
            "--prefix \"10.2.3\": \"10.2.3\" is not an IPv4 or IPv6 address; expected an address (10.2.3.4, 2001:db8::1) or a prefix (10.2.0.0/16)"
        );
        for bad in ["10.0.0.0/33", "10.0.0.0/x", "::/129", "", "/8"] {
            assert_eq!(check_show_prefix(bad).unwrap_err().code, 2, "{bad}");
        }
    }

    #[test]
    fn loads_that_may_be_mistakes_are_warned_about() {
        let now = 1_000_000_000_000;
        let running = |staged| ctl::VersionInfo {
            active: 7,
            staged,
            previous: None,
            workers: vec![],
            clock_synchronized: None,
        };
        assert!(load_warnings(&running(None), 8, Some(now + 1), now).is_empty());
        assert!(load_warnings(&running(None), 8, None, now).is_empty());
        let unsynced = ctl::VersionInfo {
            clock_synchronized: Some(false),
            ..running(None)
        };
        let w = load_warnings(&unsynced, 8, Some(now + 1), now);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("clock is not synchronized"), "{w:?}");
        assert!(
            load_warnings(&unsynced, 8, None, now).is_empty(),
            "a load now does not depend on the clock"
        );
        let w = load_warnings(&running(None), 8, Some(now - 2_500_000_000), now);
        assert_eq!(
            w,
            ["the activation time 1970-01-01T00:16:37.500Z is 2.500 s in the past: FIB version 8 takes effect at once"]
        );
        let w = load_warnings(&running(None), 6, None, now);
        assert_eq!(
            w,
            ["FIB version 6 is lower than the active version 7: versions normally only grow"]
        );
        let w = load_warnings(&running(Some((8, now + 1_000_000_000))), 9, None, now);
        assert_eq!(
            w,
            ["FIB version 8, staged for 1970-01-01T00:16:41.000Z, is replaced and will not take effect"]
        );
        // A staged FIB whose time has come is the active one: nothing lost.
        assert!(load_warnings(&running(Some((8, now))), 9, None, now).is_empty());
    }

    #[test]
    fn times_parse() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("+2s", now).unwrap(), now + 2_000_000_000);
        assert_eq!(parse_time("+500ms", now).unwrap(), now + 500_000_000);
        // The same durations as predict and run take (issue 18).
        assert_eq!(parse_time("+1h", now).unwrap(), now + 3_600_000_000_000);
        assert_eq!(parse_time("+90min", now).unwrap(), now + 5_400_000_000_000);
        assert_eq!(parse_time("+2min", now).unwrap(), now + 120_000_000_000);
        assert_eq!(parse_time("1234", now).unwrap(), 1234);
        assert_eq!(
            parse_time("1970-01-01T00:00:01Z", now).unwrap(),
            1_000_000_000
        );
        // Beyond i64 nanoseconds (2262) but within u64: as the integer form.
        assert_eq!(
            parse_time("2554-07-21T23:34:33.709551615Z", now).unwrap(),
            u64::MAX
        );
        for outside in ["9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"] {
            let e = parse_time(outside, now).unwrap_err().message;
            assert!(
                e.contains(
                    "activation times run from 1970-01-01T00:00:00Z to 2554-07-21T23:34:33.709Z"
                ),
                "{e}"
            );
        }
        for bad in [
            "+-2s",
            "soon",
            "+xs",
            "+1y",
            "2026-13-01T00:00:00Z",
            "+9999999999h",
        ] {
            let e = parse_time(bad, now).unwrap_err();
            assert_eq!(e.code, 2);
            assert!(e.message.contains("--at"), "{}", e.message);
        }
    }

    #[test]
    fn fib_files_convert_between_all_three_formats() {
        let dir = std::env::temp_dir().join(format!("om-conv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = FibSpec::parse("version = 3\n[[ports]]\nname = \"p\"\n[[next_hops]]\nname = \"n\"\nport = \"p\"\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n[[labels]]\nlabel = 16001\naction = \"swap\"\nnext_hop = \"n\"\n[[routes]]\nprefix = \"10.0.0.0/8\"\nnext_hop = \"n\"\n").unwrap();
        for name in ["f.omfib", "f.json", "f.toml"] {
            let p = dir.join(name);
            write_fib(&a, &p).unwrap();
            assert_eq!(read_fib(&p).unwrap(), a, "{name}");
        }
        let raw = std::fs::read(dir.join("f.omfib")).unwrap();
        assert!(raw.starts_with(b"OMFB"));
        std::fs::write(dir.join("bad.omfib"), &raw[..raw.len() - 1]).unwrap();
        let e = read_fib(&dir.join("bad.omfib")).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("bad.omfib"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn diff_and_render() {
        let a = FibSpec::parse("version = 1\n[[ports]]\nname = \"p\"\n[[next_hops]]\nname = \"n\"\nport = \"p\"\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n[[labels]]\nlabel = 16001\naction = \"swap\"\nnext_hop = \"n\"\n[[labels]]\nlabel = 16002\naction = \"pop\"\n").unwrap();
        let mut b = a.clone();
        b.version = 2;
        b.labels.remove(1);
        b.labels[0].out_label = Some(3);
        let d = diff(&a, &b).unwrap();
        assert!(d.contains("- label 16002"), "{d}");
        assert!(d.contains("~ label 16001"), "{d}");
        assert!(d.contains("~ version 1 -> 2"), "{d}");
        assert_eq!(diff(&a, &a), None);
        let mut c = a.clone();
        c.ttl_ingress = orbitmesh_core::fib::spec::TtlSpec::Pipe;
        c.ports[0].mtu = 9000;
        let d = diff(&a, &c).unwrap();
        assert!(d.contains("~ ttl_ingress uniform -> pipe"), "{d}");
        assert!(d.contains("~ port p: "), "{d}");
        let r = render_spec(&b);
        assert!(
            r.contains("16001    pop (php) via n dev p dst 02:00:00:00:00:01"),
            "{r}"
        );
    }

    #[test]
    fn check_names_the_problem() {
        let dir = std::env::temp_dir().join(format!("om-ops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.toml");
        std::fs::write(
            &p,
            "[[labels]]\nlabel = 16001\naction = \"swap\"\nnext_hop = \"nope\"\n",
        )
        .unwrap();
        let e = check(&p, false).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.message
                .contains("label 16001: next_hop: no next hop named \"nope\""),
            "{}",
            e.message
        );
        let e = check(&dir.join("missing.toml"), false).unwrap_err();
        assert_eq!(e.code, 2);
        let e = call(&dir.join("no.sock"), &Request::Version).unwrap_err();
        assert_eq!(e.code, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
