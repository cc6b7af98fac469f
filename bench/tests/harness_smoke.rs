//! CI smoke test of the traffic harness: a very short `orbitmesh-bench run`
//! (orbitmesh and the xdp-min peer, 64-byte frames, a search of at most four trials from
//! 50 kpps with 1% loss tolerance, so a loaded CI machine passes; one
//! latency trial, FIB swaps under load) on the real namespace line with
//! AF_XDP, then checks of what the sink counted. Needs root; skips with a
//! message otherwise. The harness removes its namespaces itself.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// orbitmesh-dp from the same build (target/<profile>/), next to orbitmesh-bench.
fn dp_bin() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_orbitmesh-bench"));
    let dp = bench.with_file_name("orbitmesh-dp");
    assert!(
        dp.exists(),
        "{} not built: run the workspace tests (cargo test --workspace) or cargo build -p dataplane",
        dp.display()
    );
    dp
}

static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `orbitmesh-bench run` with the smoke test's short settings plus
/// `extra`; returns the output directory and results.json, or None (after
/// saying why) without root.
fn smoke_run(name: &str, duts: &str, extra: &[&str]) -> Option<(PathBuf, serde_json::Value)> {
    if dataplane::sys::cred::euid() != 0 {
        eprintln!("skipping: the harness smoke test needs root (namespaces, XDP, AF_XDP); CI runs it as root");
        return None;
    }
    // One harness at a time (it builds the one namespace line, under a lock).
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("obh-{name}-{}", std::process::id()));
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orbitmesh-bench"))
        .args([
            "run",
            "--name",
            name,
            "--duts",
            duts,
            "--sizes",
            "64",
            "--trial",
            "1",
            "--drain",
            "0.2",
            "--max-mpps",
            "0.05",
            "--max-trials",
            "4",
            "--loss-tolerance",
            "0.01",
            "--latency-loads",
            "0.5",
            "--latency-trial",
            "1",
            "--cost-mpps",
            "0.02",
            "--swap-rate",
            "20",
            "--swap-trial",
            "1",
            "--labels",
            "4096",
            "--retries",
            "0",
            "--quiet-wait",
            "0",
            "--flows",
            "16",
            "--out-dir",
        ])
        .arg(&dir)
        .arg("--dp-bin")
        .arg(dp_bin())
        .args(extra)
        .output()
        .expect("run orbitmesh-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "orbitmesh-bench failed: {stderr}");
    assert!(
        t0.elapsed().as_secs() < 60,
        "smoke run took {:?}",
        t0.elapsed()
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("results.json")).expect("results.json written"),
    )
    .expect("valid JSON");
    for f in ["README.md", "throughput.svg", "latency.svg"] {
        assert!(dir.join(f).exists(), "{f} written");
    }
    assert!(
        !std::path::Path::new("/run/netns/obh-gen").exists(),
        "namespaces removed"
    );
    Some((dir, json))
}

/// A trial's interface counter (0 if it did not move).
fn counter(t: &serde_json::Value, name: &str) -> u64 {
    t["link_counters"]
        .as_array()
        .expect("link counters")
        .iter()
        .find(|c| c[0] == name)
        .map_or(0, |c| c[1].as_u64().unwrap())
}

/// The books of one trial balance; nothing misforwarded or duplicated.
fn balanced(s: &serde_json::Value) {
    let sent = s["sent"].as_u64().unwrap();
    let received = s["sink"]["received"].as_u64().unwrap();
    let lost = s["lost"].as_u64().unwrap();
    assert!(sent > 0, "{s}");
    assert_eq!(sent, received + lost, "sent = received + lost: {s}");
    assert_eq!(s["sink"]["wrong_port"], 0, "{s}");
    assert_eq!(s["sink"]["wrong_label"], 0, "{s}");
    assert_eq!(s["sink"]["duplicates"], 0, "{s}");
    assert!(s["latency"]["p50"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn short_run_counts_every_frame() {
    let Some((dir, json)) = smoke_run("smoke", "orbitmesh,xdp-min", &[]) else {
        return;
    };
    let d = &json["duts"][0];
    assert!(d["error"].is_null(), "orbitmesh failed: {}", d["error"]);
    let size = &d["sizes"][0];
    let best = &size["best"];
    assert!(!best.is_null(), "some rate passed: {}", size["search"]);
    assert!(best["stats"]["sink"]["received"].as_u64().unwrap() > 0);
    assert!(size["search"]["throughput_pps"].as_f64().unwrap() > 0.0);
    // Every trial's books balance and nothing is misforwarded or duplicated.
    let mut trials = vec![best, &d["swap"]["trial"], &d["swap"]["control"]];
    trials.extend(size["latency"].as_array().expect("latency trials"));
    let cost = d["cost"].as_array().expect("CPU-cost trials");
    assert_eq!(cost.len(), 1, "one trial per --cost-mpps rate");
    let offered = cost[0]["stats"]["offered_pps"].as_f64().unwrap();
    assert!(
        (offered - 20_000.0).abs() < 1.0,
        "offered at the asked rate: {offered}"
    );
    assert!(cost[0]["dut_core_ns_per_frame"].as_f64().unwrap() > 0.0);
    trials.extend(cost);
    for t in trials {
        balanced(&t["stats"]);
    }
    assert!(
        d["swap"]["swaps_done"].as_u64().unwrap() > 0,
        "swaps happened"
    );
    assert_eq!(d["swap"]["swap_errors"], 0);
    // Both FIBs of the swap test forwarded frames, told apart by label.
    let by_b = d["swap"]["trial"]["stats"]["sink"]["alt_label"]
        .as_u64()
        .unwrap();
    let received = d["swap"]["trial"]["stats"]["sink"]["received"]
        .as_u64()
        .unwrap();
    assert!(
        by_b > 0 && by_b < received,
        "frames by FIB B: {by_b} of {received}"
    );
    // The minimal XDP peer forwarded every frame of its best trial.
    let x = &json["duts"][1];
    assert!(x["error"].is_null(), "xdp-min failed: {}", x["error"]);
    let s = &x["sizes"][0]["best"]["stats"];
    assert!(s["sink"]["received"].as_u64().unwrap() > 0, "{s}");
    let (sent, lost) = (s["sent"].as_u64().unwrap(), s["lost"].as_u64().unwrap());
    assert_eq!(sent, s["sink"]["received"].as_u64().unwrap() + lost, "{s}");
    assert_eq!(s["sink"]["wrong_label"], 0, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--gen relay`: every frame reaches dut0 as an XDP frame through gen0's
/// `ndo_xdp_xmit` (veth counts those as gen0's `tx_queue_0_xdp_xmit`, and
/// those dut0's full ring refused as `..._xdp_xmit_errors`;
/// frames from the AF_XDP socket on gen0 are not counted there), for an
/// XDP DUT and for the kernel (dut0 without an XDP program). With
/// threaded NAPI, so the watch on dut0's polls (on the DUT's core) counts
/// the frames the sink received (but those polled after the sending
/// phase), and no more than were sent; and the frames dut0's ring refused,
/// as many as veth's own counter, in every watched trial: among them a
/// cost trial at 1 Mpps, more than the kernel forwards here, where the
/// ring overflows.
#[test]
fn relay_generator_sends_xdp_frames() {
    xdp_frames_reach_dut0("relay");
}

/// `--gen live`: the kernel makes the frames (BPF_PROG_TEST_RUN with live
/// frames) and redirects them to gen0; the same checks as the relay's
/// (every frame through gen0's `ndo_xdp_xmit`, the watch, the heartbeat,
/// dut0's ring overflowing at 1 Mpps with the kernel DUT), and the sink
/// reads the program's stamps (sequence numbers: the trial balances;
/// timestamps on the sink's clock: a median over 1 µs, none over 1 s).
#[test]
fn live_generator_sends_xdp_frames() {
    xdp_frames_reach_dut0("live");
}

fn xdp_frames_reach_dut0(gen: &str) {
    let Some((dir, json)) = smoke_run(
        gen,
        "xdp-min,kernel",
        &[
            "--gen",
            gen,
            "--threaded-napi",
            "--stall-check",
            "0.5",
            "--cost-mpps",
            "0.02,1",
            // dut0 polled by a 1-ms timer while frames come: its 256-frame
            // ring overflows above ~0.26 Mpps whatever the DUT forwards, so
            // the 1-Mpps trial has refusals to count even where the DUT
            // would keep up with what the relay sends (0.87 Mpps in a CI run).
            "--napi-defer-us",
            "1000",
        ],
    ) else {
        return;
    };
    assert_eq!(json["cfg"]["gen"], gen, "{}", json["cfg"]);
    assert!(
        json["stalls"]["secs"].as_f64().unwrap() >= 0.5,
        "testbed check ran"
    );
    for d in json["duts"].as_array().expect("DUTs") {
        assert!(d["error"].is_null(), "{} failed: {}", d["dut"], d["error"]);
        let best = &d["sizes"][0]["best"];
        assert!(!best.is_null(), "{}: some rate passed", d["dut"]);
        balanced(&best["stats"]);
        let sent = best["stats"]["sent"].as_u64().unwrap();
        // Handed to dut0's ring by ndo_xdp_xmit, or refused there (ring
        // full: the smoke run tolerates 1% loss).
        let via_xdp: u64 = best["link_counters"]
            .as_array()
            .expect("link counters")
            .iter()
            .filter(|c| {
                c[0] == "gen0/tx_queue_0_xdp_xmit" || c[0] == "gen0/tx_queue_0_xdp_xmit_errors"
            })
            .map(|c| c[1].as_u64().unwrap())
            .sum();
        assert_eq!(via_xdp, sent, "{}: {}", d["dut"], best["link_counters"]);
        let lat = &best["stats"]["latency"];
        assert!(
            // (A stamp ahead of the sink's clock would read as 1 ns.)
            lat["samples"].as_u64().unwrap() > 0
                && lat["p50"].as_u64().unwrap() >= 1_000
                && lat["max"].as_u64().unwrap() < 1_000_000_000,
            "{}: latency on the sink's clock: {lat}",
            d["dut"]
        );
        let p = &best["dut0_polls"];
        let (stalls, stalled) = (
            p["stalls"].as_u64().unwrap(),
            p["stalled_ns"].as_u64().unwrap(),
        );
        assert!(
            stalled >= stalls * 1_000_000 && stalled <= p["max_gap_ns"].as_u64().unwrap() * stalls,
            "stalls are gaps of 1 ms or more, none longer than the longest: {p}"
        );
        let polled = best["dut0_polls"]["frames"].as_u64().expect("dut0 watched");
        let received = best["stats"]["sink"]["received"].as_u64().unwrap();
        // The watch counts the polls that end within the sending phase:
        // the last frames sent may be polled just after it.
        assert!(
            polled >= received - received / 100 && polled <= sent,
            "{}: dut0 polled {polled} frames, sink received {received} of {sent}",
            d["dut"]
        );
        let mut watched = vec![best, &d["sizes"][0]["first_fail"]];
        watched.extend(d["cost"].as_array().expect("cost trials"));
        for t in watched.into_iter().filter(|t| !t.is_null()) {
            let p = &t["dut0_polls"];
            let refused = p["refused"].as_u64().expect("refusals watched");
            // Never more than veth counts, and at most 1% fewer: in two CI
            // runs the watch saw 256,480 of 256,987 and 240 of 1,194 (cause
            // not found; bench/results/xdp-fast-path.md). A frame it misses
            // is charged to the DUT, so it may miss, never invent.
            let veth = counter(t, "gen0/tx_queue_0_xdp_xmit_errors");
            assert!(
                refused <= veth && veth - refused <= veth / 100,
                "{}: the watch counts what veth counts ({veth}): {p}",
                d["dut"]
            );
            let (stalled, away, backlog) = (
                p["refused_stalled"].as_u64().unwrap(),
                p["refused_away"].as_u64().unwrap(),
                p["refused_backlog"].as_u64().unwrap(),
            );
            // The testbed's: refused in its gaps (of any length), or in the
            // backlog after one; stalls are the gaps of 1 ms or more.
            assert!(
                backlog <= away && away <= refused && stalled <= refused,
                "{p}"
            );
            assert!(away <= t["stats"]["lost"].as_u64().unwrap(), "{t}");
            // The heartbeat ran: its periods (250 us) and the time seen
            // missing between them cover most of the sending phase.
            let beats = p["beats"].as_u64().unwrap() as f64;
            let covered = beats * 250e-6 + p["missing_ns"].as_u64().unwrap() as f64 * 1e-9;
            let secs = t["stats"]["seconds"].as_f64().unwrap();
            assert!(
                covered >= 0.8 * secs,
                "{}: heartbeats cover {covered:.3} s of {secs:.3}: {p}",
                d["dut"]
            );
            // And the one on the generator's core ran (a beat every 250 us).
            assert!(
                p["gen_max_silence_ns"].as_u64().unwrap() >= 200_000,
                "{}: no heartbeat on the generator's core: {p}",
                d["dut"]
            );
        }
    }
    let kernel = &json["duts"][1];
    assert_eq!(kernel["dut"], "kernel");
    // (A repeated --cost-mpps adds its rates: 0.02 twice, then 1.)
    let at_1m = kernel["cost"]
        .as_array()
        .expect("cost trials")
        .iter()
        .find(|t| t["stats"]["offered_pps"].as_f64().unwrap() > 0.5e6)
        .expect("a cost trial at 1 Mpps");
    assert!(
        counter(at_1m, "gen0/tx_queue_0_xdp_xmit_errors") > 0,
        "at 1 Mpps dut0's ring overflowed: {}",
        at_1m["link_counters"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
