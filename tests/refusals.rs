//! Refused inputs leave forwarding untouched (issue 12), end to end: while
//! a steady, sequence-numbered MPLS stream crosses orbitmesh-dp in network
//! namespaces (tests/support/line.rs), the running dataplane is handed, one
//! step after the other:
//!
//! 1. FIBs whose label, or out_label, is 4294967295 (orbitmesh-ctl, loaded
//!    and staged, and straight over the control socket, JSON and binary);
//! 2. an empty and a whitespace-only FIB file, `.toml` and `.omfib`;
//! 3. control frames announcing more than the dataplane takes, or 200 MiB
//!    that never come;
//! 4. 500 idle control connections held open at once.
//!
//! Each must be refused while the process lives on with its FIB version
//! unchanged, no drop counter moves and the owner's next command works.
//! At the end every frame must have arrived exactly once, on its port, with
//! its label, and the dataplane's memory and threads must have stayed
//! bounded. A failure names the step. Needs root; skips with a message
//! otherwise.

// Frame builders shared with the dataplane's own tests.
#[path = "../core/tests/common/mod.rs"]
mod common;
mod support;
use common::*;
use orbitmesh_core::fib::spec::FibSpec;
use orbitmesh_core::protocol::{self as ctl, Counter, Request, Response, VersionInfo, MAX_MESSAGE};
use orbitmesh_core::stats::DropReason;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use support::is_root;
use support::line::*;

/// The stream: 120,000 frames at 20,000 a second, 6 s of traffic.
const FRAMES: u32 = 120_000;
const PPS: u32 = 20_000;
/// The label of the stream; the FIB swaps it to itself towards sink0.
const LABEL: u32 = 16001;
/// The crash label of issue 12: u32::MAX, far above the 20-bit label space.
const HUGE: u32 = u32::MAX;
const IDLE_CONNECTIONS: usize = 500;
/// Threads the dataplane may run while the idle connections are held.
const MAX_THREADS: u64 = 100;
/// Growth of the dataplane's resident memory allowed over the whole test.
const MAX_RSS_GROWTH_KB: u64 = 64 << 10;

/// Runs `f` on its own thread and gives it `secs`: a dataplane that stops
/// answering fails the step instead of hanging the test.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
}

fn version(socket: &Path) -> Result<VersionInfo, String> {
    let s = socket.to_path_buf();
    match within(10, "version request", move || {
        ctl::call(&s, &Request::Version)
    })? {
        Response::Version(v) => Ok(v),
        r => Err(format!("{r:?}")),
    }
}

/// The dataplane's counters this test watches.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Frames the workers took in: the sequence number reaching the dataplane.
    rx: u64,
    forwarded: u64,
    /// Every drop reason, summed.
    dropped: u64,
    /// Kernel drops on the AF_XDP sockets (ring full, fill ring empty, ...).
    kernel: u64,
}

fn counts(socket: &Path) -> Counts {
    let s = socket.to_path_buf();
    let Ok(Response::Stats(st)) =
        within(10, "stats request", move || ctl::call(&s, &Request::Stats))
    else {
        panic!("the dataplane did not answer a stats request");
    };
    // Over both paths: frames the XDP fast path forwards or drops never
    // reach a worker (those it punts, the workers count).
    let (f_fwd, f_drop) = st
        .fast_path
        .as_deref()
        .map_or((0, 0), |f| (f.forwarded, f.dropped()));
    Counts {
        rx: st.counters.get(Counter::Rx) + f_fwd + f_drop,
        forwarded: st.counters.get(Counter::Forwarded) + f_fwd,
        dropped: DropReason::ALL
            .iter()
            .map(|r| st.counters.get(Counter::Drop(*r)))
            .sum::<u64>()
            + f_drop,
        kernel: st.ports.iter().map(|p| p.counters.kernel.total()).sum(),
    }
}

/// One refused input after another, each checked on its own.
struct Steps<'a> {
    line: &'a mut Line,
    /// The dataplane's rx counter before the stream: rx - rx0 is the
    /// sequence number of the frame arriving.
    rx0: u64,
    /// (step, first, last sequence number arriving during it), to tell
    /// which step a lost frame fell in.
    windows: Vec<(String, u64, u64)>,
}

impl Steps<'_> {
    fn run(&mut self, name: &str, f: impl FnOnce(&mut Line, &str)) {
        eprintln!("step {name}");
        let before = counts(&self.line.socket);
        f(self.line, name);
        let after = self.unharmed(name, before);
        self.windows
            .push((name.to_string(), before.rx - self.rx0, after.rx - self.rx0));
    }

    /// The process lives, FIB version 1 is active with nothing staged, and
    /// it kept forwarding without a drop.
    fn unharmed(&mut self, step: &str, before: Counts) -> Counts {
        let l = &mut *self.line;
        std::thread::sleep(Duration::from_millis(100));
        alive(l, step, "the step's inputs", false);
        let v = version(&l.socket)
            .unwrap_or_else(|e| panic!("step {step}: version request failed: {e}"));
        assert_eq!(
            (v.active, v.staged),
            (1, None),
            "step {step}: the active FIB changed or a FIB was staged: {v:?}"
        );
        let after = counts(&l.socket);
        assert!(
            after.forwarded > before.forwarded,
            "step {step}: forwarding stopped ({before:?} -> {after:?})"
        );
        assert_eq!(
            (after.dropped, after.kernel),
            (before.dropped, before.kernel),
            "step {step}: frames dropped ({before:?} -> {after:?})"
        );
        after
    }
}

/// The step during which frame `seq` reached the dataplane, if any (give or
/// take a batch).
fn step_of(windows: &[(String, u64, u64)], seq: usize) -> &str {
    let (seq, m) = (seq as u64, 64);
    windows
        .iter()
        .find(|(_, a, b)| a.saturating_sub(m) <= seq && seq <= b + m)
        .map_or("none (between steps)", |w| w.0.as_str())
}

/// Fails the step if the dataplane has exited (after `what`). When the
/// answer hinted at it (no answer), gives a dying process a second to go.
fn alive(l: &mut Line, step: &str, what: &str, suspicious: bool) {
    let t = Instant::now();
    loop {
        if let Some(st) = l.dp_exited() {
            panic!("step {step}: the dataplane died ({st}) on {what}");
        }
        if !suspicious || t.elapsed() > Duration::from_secs(1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `orbitmesh-ctl fib load FILE [--at +2s]`: must fail and say why.
fn load_refused(l: &mut Line, step: &str, file: &Path, at: Option<&str>, says: &[&str]) {
    let sock = l.socket.to_str().unwrap().to_string();
    let mut args = vec!["fib", "load", file.to_str().unwrap(), "--socket", &sock];
    if let Some(at) = at {
        args.extend_from_slice(&["--at", at]);
    }
    let (code, out, err) = within(20, "orbitmesh-ctl", {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        move || ctl_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
    });
    eprintln!("  {args:?}: exit {code}: {}", err.trim());
    // Exit 3: the dataplane did not answer.
    alive(l, step, &format!("{args:?}"), code == 3);
    assert!(code != 0, "step {step}: {args:?} was accepted: {out}{err}");
    assert!(
        says.iter().any(|s| err.to_lowercase().contains(s)),
        "step {step}: {args:?} exit {code}, error does not mention {says:?}: {err}"
    );
}

/// Sends raw bytes as one control connection and reads what comes back:
/// Some(response), or None when the dataplane closed without one.
fn raw(socket: &Path, step: &str, bytes: Vec<u8>, close_after: bool) -> Option<Response> {
    let mut s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("step {step}: cannot connect: {e}"));
    // The dataplane may refuse and close while we write: that is an answer.
    let _ = s.write_all(&bytes);
    if close_after {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hdr = [0u8; 12];
    match s.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            panic!("step {step}: neither an answer nor a close within 5 s")
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            panic!("step {step}: neither an answer nor a close within 5 s")
        }
        Err(_) => return None,
    }
    let len = u32::from_be_bytes(hdr[8..].try_into().unwrap()) as usize;
    assert!(len < 1 << 20, "step {step}: a {len}-byte answer");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("step {step}: answer cut short: {e}"));
    Some(serde_json::from_slice(&body).unwrap_or_else(|e| panic!("step {step}: answer: {e}")))
}

/// A control frame header: version 1 JSON, or version 2 binary FIB.
fn header(binary: bool, len: u32) -> Vec<u8> {
    let (v, enc) = if binary {
        (ctl::VERSION, ctl::ENC_BINARY_FIB)
    } else {
        (1, ctl::ENC_JSON)
    };
    [&ctl::MAGIC[..], &[v, enc, 0, 0], &len.to_be_bytes()].concat()
}

/// A raw request's answer: the dataplane lives on and took nothing.
fn must_refuse(l: &mut Line, step: &str, what: &str, r: Option<Response>) {
    alive(l, step, what, r.is_none());
    match r {
        Some(Response::Error { message }) => eprintln!("  {what}: refused: {message}"),
        None => eprintln!("  {what}: closed without an answer"),
        Some(r) => panic!("step {step}: {what} was taken: {r:?}"),
    }
}

#[test]
fn refused_inputs_under_traffic_lose_no_frame() {
    if !is_root() {
        eprintln!(
            "skipping: this test needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let mut l = Line::new("r");
    l.start(&fib_toml(1), &[]);
    let dir = l.dir.clone();
    let socket = l.socket.clone();
    let file = |name: &str, text: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Version 1 minus label 16002, plus the crash label (a pop); and version
    // 1 with 16001 swapped to the crash label. Versions 2 to 6, so that one
    // taken by mistake shows.
    let pop = "label = 16002\naction = \"pop\"";
    let huge_label = fib_toml(2).replacen(pop, &format!("label = {HUGE}\naction = \"pop\""), 1);
    let swap = "label = 16001\naction = \"swap\"\nnext_hop = \"s0\"";
    let huge_out = fib_toml(3).replacen(
        swap,
        &format!("label = 16001\naction = \"swap\"\nout_label = {HUGE}\nnext_hop = \"s0\""),
        1,
    );
    assert!(huge_label.contains(&HUGE.to_string()) && huge_out.contains(&HUGE.to_string()));
    let huge_label_file = file("huge-label.toml", &huge_label);
    let huge_out_file = file("huge-out-label.toml", &huge_out);
    // The same over the socket, bypassing the CLI: JSON (LoadFib with the
    // crash label written into a valid FIB's JSON) and the binary encoding
    // clients use (a valid .omfib with its 16002 overwritten by u32::MAX and
    // its checksum redone; the CLI loads it as a file too). In the binary
    // form out_label u32::MAX means "none", so only JSON carries that one
    // over the socket, and orbitmesh-ctl must refuse it before encoding
    // (today it is sent as "none" and taken).
    let json = |fib: &str, find: &str, put: String| -> Vec<u8> {
        let spec = FibSpec::parse(fib).unwrap().to_json();
        assert!(spec.contains(find), "{find} in {spec}");
        let body = format!(
            "{{\"op\":\"load_fib\",\"fib\":{}}}",
            spec.replacen(find, &put, 1)
        );
        [header(false, body.len() as u32), body.into_bytes()].concat()
    };
    let json_label = json(
        &fib_toml(4),
        "\"label\": 16002",
        format!("\"label\": {HUGE}"),
    );
    let json_out = json(
        &fib_toml(5),
        "\"label\": 16001,",
        format!("\"label\": 16001, \"out_label\": {HUGE},"),
    );
    let huge_label_omfib = {
        let fib = FibSpec::parse(&fib_toml(6)).unwrap().to_binary().unwrap();
        let mut body = fib[..fib.len() - 8].to_vec();
        let at: Vec<usize> = (0..body.len() - 3)
            .filter(|&i| body[i..i + 4] == 16002u32.to_be_bytes())
            .collect();
        assert_eq!(at.len(), 1, "label 16002 once in the binary FIB");
        body[at[0]..at[0] + 4].copy_from_slice(&HUGE.to_be_bytes());
        // The file's checksum: FNV-1a (64) of every byte before it.
        let sum = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        body.extend_from_slice(&sum.to_be_bytes());
        body
    };
    let huge_label_omfib_file = dir.join("huge-label.omfib");
    std::fs::write(&huge_label_omfib_file, &huge_label_omfib).unwrap();
    let binary_label = {
        let body = [&[0u8][..], &0u64.to_be_bytes(), &huge_label_omfib].concat();
        [header(true, body.len() as u32), body].concat()
    };
    let empty_toml = file("empty.toml", "");
    let blank_toml = file("blank.toml", " \n\t\n   \n");
    let empty_omfib = file("empty.omfib", "");

    let rss0 = l.dp_status("VmRSS");
    let total0 = counts(&socket);
    let c0 = l.capture("sink0", 9.0);
    let c1 = l.capture("sink1", 9.0);
    let frame = cat(&[
        &eth(DUT0, GEN, None, ET_MPLS),
        &labels(&[(LABEL, 0, 64)]),
        &ipv4_udp([10, 99, 0, 1], [10, 70, 0, 1], 64, 0, 1000, 5001, 18),
    ]);
    let mut sender = l.send_seq(&frame, FRAMES, PPS);
    let t0 = Instant::now();
    // Traffic is flowing before the first step.
    while counts(&socket).forwarded < total0.forwarded + 1000 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "no traffic forwarded before the steps began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut steps = Steps {
        line: &mut l,
        rx0: total0.rx,
        windows: Vec::new(),
    };

    steps.run("1 (the crash label 4294967295)", |l, step| {
        let says = &["4294967295", "label"][..];
        for f in [&huge_label_file, &huge_out_file, &huge_label_omfib_file] {
            load_refused(l, step, f, None, says);
            load_refused(l, step, f, Some("+2s"), says);
        }
        for (what, bytes) in [
            ("JSON load, label 4294967295", json_label.clone()),
            ("JSON load, out_label 4294967295", json_out.clone()),
            ("binary load, label 4294967295", binary_label.clone()),
        ] {
            let r = raw(&l.socket, step, bytes, false);
            must_refuse(l, step, what, r);
        }
    });

    steps.run("2 (empty FIB files)", |l, step| {
        for f in [&empty_toml, &blank_toml, &empty_omfib] {
            // Whatever the wording, a refusal names the file.
            let name = f.file_name().unwrap().to_str().unwrap();
            load_refused(l, step, f, None, &[name, "empty"]);
            load_refused(l, step, f, Some("+2s"), &[name, "empty"]);
        }
    });

    steps.run("3 (oversized control frames)", |l, step| {
        let over = u32::try_from(MAX_MESSAGE + 1).unwrap();
        let mib200 = 200 << 20;
        for binary in [false, true] {
            let r = raw(&l.socket, step, header(binary, over), false);
            must_refuse(l, step, &format!("{over}-byte frame (binary {binary})"), r);
        }
        // 200 MiB announced, then nothing; then 64 KiB of them, and a close.
        let r = raw(&l.socket, step, header(false, mib200), true);
        must_refuse(l, step, "200 MiB announced, nothing sent", r);
        let bytes = [header(true, mib200), vec![0u8; 64 << 10]].concat();
        let r = raw(&l.socket, step, bytes, true);
        must_refuse(l, step, "200 MiB announced, 64 KiB sent", r);
    });

    steps.run("4 (500 idle control connections)", |l, step| {
        // Connected from a thread: a dataplane that stops accepting leaves
        // connect() waiting on a full backlog, which must not hang the test.
        let held = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let opener = {
            let (held, stop, s) = (held.clone(), stop.clone(), l.socket.clone());
            std::thread::spawn(move || {
                for _ in 0..IDLE_CONNECTIONS {
                    let c = UnixStream::connect(&s);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    held.lock().unwrap().push(c);
                }
            })
        };
        let t = Instant::now();
        while held.lock().unwrap().len() < IDLE_CONNECTIONS && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let opened = held.lock().unwrap().iter().filter(|c| c.is_ok()).count();
        // The owner's next command works while they are held (retried for a
        // few seconds, should a cap refuse it at first).
        let t = Instant::now();
        let answer = loop {
            match version(&l.socket) {
                Ok(v) => break Ok(v),
                Err(e) if t.elapsed() > Duration::from_secs(5) => break Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let threads = l.dp_status("Threads");
        eprintln!(
            "  {opened} of {IDLE_CONNECTIONS} connections open; the dataplane runs {threads} threads; the owner's request: {:?}",
            answer.as_ref().map(|v| v.active)
        );
        stop.store(true, Ordering::Relaxed);
        held.lock().unwrap().clear();
        if answer.is_ok() && threads < MAX_THREADS {
            opener.join().unwrap();
        }
        let v = answer.unwrap_or_else(|e| {
            panic!("step {step}: the owner's request failed while the idle connections were held: {e}")
        });
        assert_eq!(v.active, 1, "step {step}: {v:?}");
        assert!(
            threads < MAX_THREADS,
            "step {step}: the dataplane ran {threads} threads for {opened} idle connections (limit {MAX_THREADS})"
        );
    });

    let windows = std::mem::take(&mut steps.windows);
    drop(steps);
    let steps_done_while_sending = sender.running();
    assert!(sender.wait().success(), "the sender failed");
    let (s0, s1) = (collect(c0), collect(c1));

    // Every frame once, at sink0, still labelled 16001 with TTL 63.
    let mut seen = vec![0u8; FRAMES as usize];
    let mut misforwarded = s1.len();
    for f in &s0 {
        let lse = u32::from_be_bytes(f[14..18].try_into().unwrap());
        if f[12..14] != [0x88, 0x47] || lse >> 12 != LABEL || lse & 0xff != 63 {
            misforwarded += 1;
        }
        let seq = u32::from_be_bytes(f[f.len() - 4..].try_into().unwrap()) as usize;
        if seq < seen.len() {
            seen[seq] = seen[seq].saturating_add(1);
        } else {
            misforwarded += 1;
        }
    }
    let lost: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    let dup = seen.iter().filter(|&&c| c > 1).count();
    let total = counts(&socket);
    let rss = l.dp_status("VmRSS");
    eprintln!(
        "{FRAMES} frames at {PPS}/s: {} at sink0, {} at sink1; lost {}, duplicated {dup}, misforwarded {misforwarded}; dataplane {total0:?} -> {total:?}, VmRSS {rss0} -> {rss} kB",
        s0.len(),
        s1.len(),
        lost.len()
    );
    if !lost.is_empty() {
        let mut by_step: Vec<(&str, usize)> = Vec::new();
        for &seq in &lost {
            let s = step_of(&windows, seq);
            match by_step.iter_mut().find(|e| e.0 == s) {
                Some(e) => e.1 += 1,
                None => by_step.push((s, 1)),
            }
        }
        panic!(
            "{} frames lost (first {:?}), by the step they were sent during: {by_step:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    }
    assert_eq!((dup, misforwarded), (0, 0), "duplicated, misforwarded");
    assert_eq!(
        total.forwarded - total0.forwarded,
        u64::from(FRAMES),
        "the dataplane forwarded every frame once"
    );
    assert_eq!(
        (total.dropped, total.kernel),
        (total0.dropped, total0.kernel),
        "the dataplane dropped nothing"
    );
    assert!(
        steps_done_while_sending,
        "the steps ran while traffic flowed (the sender was still sending after the last one)"
    );
    assert!(
        rss < rss0 + MAX_RSS_GROWTH_KB,
        "the dataplane's resident memory grew from {rss0} to {rss} kB"
    );
}
