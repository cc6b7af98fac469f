//! End to end: the dataplane's metrics endpoint (`--metrics-listen`,
//! issue 18) scraped while traffic flows through orbitmesh-dp on real
//! AF_XDP in network namespaces (tests/support/line.rs):
//!
//! ```text
//!  [gen] gen0 ── dut0 [dut: orbitmesh-dp] dut1 ── sink0 [sink]
//!                                          dut2 ── sink1
//! ```
//! The packet and byte counters the endpoint shows must match what was
//! sent and what the sink captured. Needs root; skips with a message
//! otherwise. Namespaces and processes are removed on drop.

#[path = "../core/tests/common/mod.rs"]
mod common;
mod support;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::line::*;
use support::{bin, is_root};

/// The endpoint's address: dut0's, scraped from gen over the link the
/// traffic takes, as a NOC would (TCP to the box passes the XDP program to
/// the kernel).
const METRICS: &str = "10.99.0.2:9469";

/// Fetches `http://METRICS/PATH` from the gen namespace; returns the HTTP
/// status and the body.
fn get(l: &Line, path: &str) -> (u16, String) {
    let script = "import sys, urllib.request, urllib.error\n\
        try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=10); code, body = r.status, r.read()\n\
        except urllib.error.HTTPError as e:\n    code, body = e.code, e.read()\n\
        sys.stdout.write(str(code) + '\\n' + body.decode())\n";
    let url = format!("http://{METRICS}{path}");
    let o = l
        .lab
        .command(&l.ns("gen"), &["python3", "-c", script, &url])
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "scrape failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, body) = out.split_once('\n').expect("a status line");
    (code.parse().expect("a status"), body.to_string())
}

/// One scrape: every sample, by its series (`name{labels}`).
fn scrape(l: &Line) -> HashMap<String, f64> {
    let (code, body) = get(l, "/metrics");
    assert_eq!(code, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, v) = line.rsplit_once(' ').expect("series value");
            (series.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

fn series(s: &HashMap<String, f64>, name: &str) -> u64 {
    *s.get(name)
        .unwrap_or_else(|| panic!("no {name} in the scrape")) as u64
}

/// A series of the XDP fast path (issue 16): 0 when it is off (its
/// families have no samples then).
fn xdp(s: &HashMap<String, f64>, name: &str) -> u64 {
    match series(s, "orbitmesh_fast_path_enabled") {
        0 => 0,
        _ => series(s, name),
    }
}

/// Frames that arrived on dut0, by both paths: the AF_XDP workers' and
/// those the fast path finished (forwarded or dropped; frames it punts are
/// in the workers' rx already).
fn arrived(s: &HashMap<String, f64>) -> u64 {
    series(s, "orbitmesh_port_rx_packets_total{port=\"dut0\"}")
        + xdp(s, "orbitmesh_xdp_port_rx_packets_total{port=\"dut0\"}")
}

/// Frames the fast path finished, from its forwarded and drop counters.
/// On this line every frame arrives on dut0, so it is the fast path's rx
/// on dut0.
fn fast_finished(s: &HashMap<String, f64>) -> u64 {
    let drops: u64 = orbitmesh_core::stats::DropReason::ALL
        .iter()
        .map(|r| {
            xdp(
                s,
                &format!("orbitmesh_xdp_drops_total{{reason=\"{}\"}}", r.name()),
            )
        })
        .sum();
    xdp(s, "orbitmesh_xdp_forwarded_packets_total") + drops
}

#[test]
fn scraped_packet_and_byte_counters_match_what_the_sink_received() {
    if !is_root() {
        eprintln!(
            "skipping: this test needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let mut l = Line::new("m");
    l.log = true;
    l.start(&fib_toml(1), &["--metrics-listen", METRICS]);
    // A dataplane that switches in XDP says so (orbitmesh_fast_path_enabled
    // is 1 from housekeeping's first store of the fast path's counters).
    if l.log_text().contains("fast path xdp:") {
        let t = Instant::now();
        while series(&scrape(&l), "orbitmesh_fast_path_enabled") == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "the fast path runs, yet its counters never reach node.fast \
                 (housekeeping stores them every tick):\n{}",
                l.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // 1500 frames of label 16001, swapped out of dut1 to sink0, at 1000/s:
    // about 1.5 s of traffic, scraped as it flows.
    const COUNT: u64 = 1500;
    let frame = cat(&[
        &eth(DUT0, GEN, None, ET_MPLS),
        &labels(&[(16001, 0, 64)]),
        &ipv4_udp([10, 99, 0, 1], [10, 70, 0, 1], 64, 0, 1000, 5001, 18),
    ]);
    let len = frame.len() as u64;
    let cap = l.capture("sink0", 4.0);
    let mut sender = l.send_seq(&frame, COUNT as u32, 1000);
    let rx = "orbitmesh_port_rx_packets_total{port=\"dut0\"}";
    let mut seen = Vec::new();
    while sender.running() {
        seen.push(arrived(&scrape(&l)));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(sender.wait().success());
    let sink = collect(cap);

    // The workers publish once per pass with work: wait until the last
    // frames are counted (or 5 s).
    let t = Instant::now();
    let s = loop {
        let s = scrape(&l);
        if arrived(&s) >= COUNT || t.elapsed() > Duration::from_secs(5) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    seen.push(arrived(&s));
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "counters go only up: {seen:?}"
    );
    assert!(
        seen.iter().any(|&v| v > 0 && v < COUNT),
        "at least one scrape while the traffic flowed: {seen:?}"
    );

    // In: exactly what gen sent (only MPLS reaches the relay on dut0),
    // frames and bytes, by both paths.
    let fast = series(&s, "orbitmesh_fast_path_enabled") == 1;
    if std::env::var("ORBITMESH_FAST_PATH").as_deref() == Ok("off") {
        assert!(!fast, "ORBITMESH_FAST_PATH=off, yet the fast path runs");
    }
    assert_eq!(arrived(&s), COUNT);
    assert_eq!(
        xdp(&s, "orbitmesh_xdp_port_rx_packets_total{port=\"dut0\"}"),
        fast_finished(&s),
        "the fast path's rx on dut0 is every frame it finished"
    );
    assert_eq!(xdp(&s, "orbitmesh_xdp_rx_unknown_port_packets_total"), 0);
    let rx_bytes = series(&s, "orbitmesh_port_rx_bytes_total{port=\"dut0\"}");
    let fast_rx_bytes = xdp(&s, "orbitmesh_xdp_port_rx_bytes_total{port=\"dut0\"}");
    assert_eq!(rx_bytes, series(&s, rx) * len);
    assert_eq!(rx_bytes + fast_rx_bytes, COUNT * len);
    // Out: what sink0 received, frame for frame and byte for byte, by both
    // paths (every frame out is as long).
    let sink_bytes: u64 = sink.iter().map(|f| f.len() as u64).sum();
    let afxdp_tx = series(&s, "orbitmesh_port_tx_packets_total{port=\"dut1\"}");
    let tx = afxdp_tx + xdp(&s, "orbitmesh_xdp_port_tx_packets_total{port=\"dut1\"}");
    let tx_bytes = series(&s, "orbitmesh_port_tx_bytes_total{port=\"dut1\"}");
    let fast_tx_bytes = xdp(&s, "orbitmesh_xdp_port_tx_bytes_total{port=\"dut1\"}");
    let out_len = sink.first().map_or(0, |f| f.len() as u64);
    assert!(sink.iter().all(|f| f.len() as u64 == out_len));
    assert_eq!(
        (tx, tx_bytes, tx_bytes + fast_tx_bytes),
        (sink.len() as u64, afxdp_tx * out_len, sink_bytes),
        "dut1's counters against sink0's capture"
    );
    if fast {
        // Transit swaps are the fast path's: none reaches a worker (what
        // it punts here is ARP, neighbour discovery and these scrapes).
        assert_eq!(xdp(&s, "orbitmesh_xdp_forwarded_packets_total"), tx);
        assert_eq!(series(&s, rx), 0);
        assert_eq!(fast_rx_bytes, COUNT * len);
    }
    assert!(
        sink.len() as u64 >= COUNT * 99 / 100,
        "sink0 got {} of {COUNT}",
        sink.len()
    );
    assert_eq!(
        series(&s, "orbitmesh_forwarded_packets_total")
            + xdp(&s, "orbitmesh_xdp_forwarded_packets_total"),
        tx
    );
    assert_eq!(
        series(&s, "orbitmesh_port_tx_packets_total{port=\"dut2\"}")
            + xdp(&s, "orbitmesh_xdp_port_tx_packets_total{port=\"dut2\"}"),
        0
    );
    assert_eq!(series(&s, "orbitmesh_fib_active_version"), 1);
    assert_eq!(
        series(
            &s,
            "orbitmesh_port_drops_total{port=\"dut0\",reason=\"no_label_route\"}"
        ),
        0
    );
    assert_eq!(series(&s, "orbitmesh_port_up{port=\"dut1\"}"), 1);

    // The same figures through orbitmesh-ctl stats --json.
    let sock = l.socket.to_str().unwrap().to_string();
    let (code, out, err) = ctl_cmd(&["stats", "--json", "--socket", &sock]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ports"][0]["counters"]["rx_bytes"], rx_bytes);
    assert_eq!(v["ports"][1]["counters"]["tx_bytes"], tx_bytes);
    let fast_tx = xdp(&s, "orbitmesh_xdp_port_tx_packets_total{port=\"dut1\"}");
    match fast {
        true => {
            assert_eq!(v["fast_path"]["tx"][1], fast_tx, "{v}");
            assert_eq!(v["fast_path"]["tx_bytes"][1], fast_tx_bytes, "{v}");
            assert_eq!(v["fast_path"]["rx_bytes"][0], fast_rx_bytes, "{v}");
        }
        false => assert!(v.get("fast_path").is_none(), "{v}"),
    }

    // Cleared for stats, not for scrapers: stats counts from zero, the
    // endpoint keeps its totals.
    let (code, out, err) = ctl_cmd(&["stats", "--clear", "--json", "--socket", &sock]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ports"][0]["counters"]["rx_bytes"], 0, "{v}");
    assert!(v["cleared_at_ns"].as_u64().is_some(), "{v}");
    if fast {
        assert_eq!(v["fast_path"]["forwarded"], 0, "{v}");
        assert_eq!(v["fast_path"]["tx"][1], 0, "{v}");
        assert_eq!(v["fast_path"]["rx"][0], 0, "{v}");
    }
    let after = scrape(&l);
    assert_eq!(arrived(&after), COUNT);
    assert_eq!(
        series(&after, "orbitmesh_port_rx_bytes_total{port=\"dut0\"}"),
        rx_bytes
    );

    // Not a scrape: named.
    assert_eq!(get(&l, "/").0, 404);

    // A second dataplane asking for the same address is refused at
    // start-up, before it attaches anything, in one sentence.
    let o = l
        .lab
        .command(&l.ns("dut"), &[bin("orbitmesh-dp")])
        .args(["--port", "dut0", "--name", "second", "--log", "error"])
        .args(["--metrics-listen", METRICS, "--socket"])
        .arg(l.dir.join("second.sock"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "metrics endpoint {METRICS}: cannot listen: Address already in use"
        )),
        "{err}"
    );
    // The running dataplane still serves.
    assert_eq!(arrived(&scrape(&l)), COUNT);

    let st = l.stop_dp().expect("dataplane was running");
    assert!(st.success(), "exit status {st}");
}
