//! The constellation emulation end to end (orbitmesh-emu): a 6 x 6 Walker
//! shell and 4 ground stations in network namespaces, one orbitmesh-dp per
//! node, orbitmesh-ctl run swapping the FIBs at the predicted instants (x20),
//! UDP flows between the hosts behind the stations, and one ISL on the
//! traffic's path failing mid-run; every link holds frames for its predicted
//! propagation delay; the control process signs every order and reaches
//! the nodes' remote channels over a management network (the default).
//! One smaller run uses the XDP transit fast path instead (`--fast-path
//! xdp --no-delay`: no delay line). Needs root; skips with a message
//! otherwise.

mod support;
use std::path::PathBuf;
use std::process::Command;
use support::{bin, is_root};

/// One emulation at a time: each is 40 namespaces and dataplanes, and
/// side by side on 2 cores they would measure the machine, not the relay.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn namespaces_with(prefix: &str) -> usize {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .count()
}

/// The emulator's own readings: every node forwarded with its schedule's
/// entry in force at the end, and (almost) always during the run.
fn assert_in_force(s: &serde_json::Value, nodes: u64) {
    let end = &s["in_force_at_end"];
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {s}"));
    assert_eq!(n(end, "checked"), nodes, "{s}");
    assert_eq!((n(end, "wrong"), n(end, "ran_out")), (0, 0), "{s}");
    let during = &s["in_force_during"];
    assert!(n(during, "checked") >= 10 * nodes, "{s}");
    assert!(
        n(during, "wrong") + n(during, "ran_out") <= n(during, "checked") / 100,
        "{s}"
    );
}

/// The test's 6 x 6 shell, 4 stations, 600 s of schedule at x20 (30 s of
/// wall time), 100 packets/s per flow.
const SHELL_6X6: &[&str] = &[
    "--walker",
    "6:6:70:1500",
    "--gs-count",
    "4",
    "--duration",
    "600s",
    "--rate",
    "100",
];

/// `orbitmesh-emu run` on the test's 6 x 6 shell with `extra` arguments,
/// one at a time; the JSON summary, the output directory and the log.
fn emulate(name: &str, extra: &[&str]) -> (serde_json::Value, PathBuf, String) {
    emulate_shell(name, SHELL_6X6, extra)
}

/// `orbitmesh-emu run` on `shell` (walker, stations, duration, rate) at
/// x20, with `extra` arguments, one at a time. Namespaces are named per
/// process (`om<name><pid>`): a run in another worktree at the same time
/// must not take this one's for leftovers.
fn emulate_shell(
    name: &str,
    shell: &[&str],
    extra: &[&str],
) -> (serde_json::Value, PathBuf, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("om-emu-{name}-{}", std::process::id()));
    let prefix = format!("om{name}{}", std::process::id());
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = Command::new(bin("orbitmesh-emu"))
        .args(["run", "--min-elevation-deg", "10", "--max-gsl-m", "5000000"])
        .args(shell)
        .arg("--ground-stations")
        .arg(root.join("control/data/ground_stations/cities_top100.basic.txt"))
        .args(["--time-scale", "20", "--prefix", &prefix, "--json"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run orbitmesh-emu");
    drop(one);
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "orbitmesh-emu failed:\n{log}");
    assert_eq!(namespaces_with(&prefix), 0, "namespaces left behind");
    let s = serde_json::from_slice(&o.stdout).expect("JSON summary");
    (s, out, log)
}

/// Issue 14: the control process is stopped at 20% of the run and never
/// started again; the nodes follow the windows they hold, so delivery is
/// what it is with the controller alive, and the summary still counts the
/// activations (from its events) and checks every node.
#[test]
fn the_network_forwards_right_after_its_controller_is_gone() {
    if !is_root() {
        eprintln!(
            "skipping: the emulation needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let (s, out, log) = emulate("kc", &["--kill-controller-at", "120s"]);
    eprintln!("{log}");
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert!(f("delivery_ratio_outside_faults") >= 0.999, "{s}");
    let o = &s["outages"][0];
    assert_eq!(o["what"], "controller", "{s}");
    assert!(o["back_at_s"].is_null(), "{s}");
    let during = o["delivered_during"].as_f64().unwrap();
    let lost = o["lost_during"].as_f64().unwrap();
    assert!(during > 0.0 && lost <= 0.001 * (during + lost), "{s}");
    // The stopped process wrote no report, and the summary says so rather
    // than counting nothing: what it verified before it stopped is counted.
    let no_report = s["controllers_without_report"].as_array().unwrap();
    assert_eq!(no_report.len(), 1, "{s}");
    assert!(f("fib_swaps_verified") >= 10.0, "{s}");
    assert_eq!(f("fib_swaps_late"), 0.0, "{s}");
    assert!(!log.contains("still running after"), "{log}");
    assert_in_force(&s, 40);
    let _ = std::fs::remove_dir_all(&out);
}

/// A redundant pair of control processes (README): both drive every node
/// with the same inputs; nothing is refused or late, and the node's
/// activations are counted once.
#[test]
fn a_redundant_pair_of_controllers_converges_without_disturbing_forwarding() {
    if !is_root() {
        eprintln!(
            "skipping: the emulation needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let (s, out, log) = emulate("rp", &["--controllers", "2", "--random-failures", "1"]);
    eprintln!("{log}");
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert!(f("delivery_ratio_outside_faults") >= 0.999, "{s}");
    assert_eq!(
        (f("fib_swaps_late"), f("fib_swaps_failed")),
        (0.0, 0.0),
        "{s}"
    );
    assert!(f("fib_swaps_verified") >= 100.0, "{s}");
    assert!(out.join("run-b.json").exists() && out.join("events-b.jsonl").exists());
    // Each controller verified every activation on its own; counted once.
    let verified = |file: &str| {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap();
        r.as_array()
            .unwrap()
            .iter()
            .map(|n| n["verified"].as_u64().unwrap())
            .sum::<u64>() as f64
    };
    assert!(verified("run.json") <= f("fib_swaps_verified"), "{s}");
    assert!(verified("run-b.json") <= f("fib_swaps_verified"), "{s}");
    // The failure was repaired (by whichever controller came first).
    assert!(s["faults"][0]["repaired_after_s"].as_f64().is_some(), "{s}");
    assert!(f("lost_after_recovery") <= 0.001 * f("sent"), "{s}");
    assert_in_force(&s, 40);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_constellation_slice_delivers_across_swaps_and_recovers_from_an_isl_failure() {
    if !is_root() {
        eprintln!(
            "skipping: the emulation needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let (s, out, log) = emulate("te", &["--random-failures", "1", "--seed", "1"]);
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    eprintln!("{log}");
    // Every flow carried traffic, none was duplicated.
    let flows = s["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 12);
    for fl in flows {
        assert!(fl["delivered"].as_u64().unwrap() > 0, "{fl}");
        assert_eq!(fl["duplicates"].as_u64(), Some(0), "{fl}");
        // The links' delay lines: the measured median follows the orbits.
        let predicted = fl["predicted_ms"].as_f64().unwrap();
        let p50 = fl["latency_us"][0].as_f64().unwrap() / 1e3;
        assert!(
            p50 > 0.5 * predicted && p50 < 1.5 * predicted + 5.0,
            "measured median {p50} ms vs predicted mean {predicted} ms: {fl}"
        );
    }
    // The scheduled swaps happened on time and cost (almost) nothing.
    assert!(f("fib_swaps_verified") >= 100.0, "{s}");
    assert_eq!((f("fib_swaps_late"), f("fib_swaps_failed")), (0.0, 0.0));
    assert!(f("path_changes") >= 3.0, "{s}");
    assert!(f("delivery_ratio_outside_faults") >= 0.999, "{s}");
    // The failure hit the traffic, the control process repaired every node,
    // and delivery recovered fully.
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1);
    assert!(!faults[0]["pairs_on_link"].as_array().unwrap().is_empty());
    assert!(f("repairs") >= 40.0, "one repair per node: {s}");
    // The repair is timed from the control process's links_down event
    // (OUT/events.jsonl), within the 100 ms port watch and a recomputation.
    let after = faults[0]["repaired_after_s"].as_f64();
    assert!(after.is_some_and(|a| (0.0..2.0).contains(&a)), "{s}");
    assert!(f("lost_after_recovery") <= 0.001 * f("sent"), "{s}");
    assert!(f("delivery_ratio") >= 0.99, "{s}");
    // Counted from the events, the activations are what the control
    // process's own report says (one process, never stopped).
    let reports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let verified: u64 = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verified"].as_u64().unwrap())
        .sum();
    assert_eq!(verified as f64, f("fib_swaps_verified"), "{s}");
    assert_in_force(&s, 40);
    // Signing is on by default: every order went signed over the nodes'
    // remote channels, none was refused, and an unsigned one sent from the
    // management network at the end was refused, counted and changed
    // nothing.
    let orders = &s["orders"];
    assert_eq!(orders["signed"], true, "{orders}");
    assert!(
        orders["channel"]
            .as_str()
            .unwrap()
            .contains("remote channel"),
        "{orders}"
    );
    assert_eq!(orders["refused_apart_from_probe"], 0, "{orders}");
    let probe = &orders["probe"];
    for k in ["refused", "counted", "schedule_kept"] {
        assert_eq!(probe[k], true, "{k}: {orders}");
    }
    for file in [
        "summary.md",
        "summary.json",
        "timeline.svg",
        "wiring.toml",
        "events.jsonl",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Issue 16: `--fast-path xdp --no-delay` runs every dataplane with the
/// XDP transit fast path and no delay line. The 6 x 6 shell with 3
/// stations (39 nodes) for 300 s of schedule (15 s of wall time): it
/// starts, delivers, the satellites switch the traffic in XDP (every
/// delivered packet crosses at least one satellite), the latency is the
/// host's (no propagation delay), every node follows its schedule, and
/// the CPU during the traffic is measured with the kernel's share.
#[test]
fn the_fast_path_mode_forwards_transit_frames_in_xdp() {
    if !is_root() {
        eprintln!(
            "skipping: the emulation needs root (network namespaces, AF_XDP); CI runs it as root"
        );
        return;
    }
    let shell = [
        "--walker",
        "6:6:70:1500",
        "--gs-count",
        "3",
        "--duration",
        "300s",
        "--rate",
        "200",
    ];
    let (s, out, log) = emulate_shell("fp", &shell, &["--fast-path", "xdp", "--no-delay"]);
    eprintln!("{log}");
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(s["fast_path"], "xdp", "{s}");
    assert!(log.contains("no delay line"), "{log}");
    let flows = s["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 6, "{s}");
    for fl in flows {
        assert!(fl["delivered"].as_u64().unwrap() > 0, "{fl}");
        assert_eq!(fl["duplicates"].as_u64(), Some(0), "{fl}");
        // No delay line: the host's latency, far below the orbits'.
        let predicted = fl["predicted_ms"].as_f64().unwrap();
        let p50 = fl["latency_us"][0].as_f64().unwrap() / 1e3;
        assert!(
            p50 < 5.0 && p50 < 0.5 * predicted,
            "measured median {p50} ms vs predicted {predicted} ms: {fl}"
        );
    }
    assert!(f("delivery_ratio_outside_faults") >= 0.999, "{s}");
    assert!(f("fib_swaps_verified") >= 20.0, "{s}");
    assert_eq!((f("fib_swaps_late"), f("fib_swaps_failed")), (0.0, 0.0));
    // The satellites forwarded in XDP: at least one fast-path hop per
    // packet delivered (a station's push and pop are the workers').
    let (fast, all) = (f("frames_forwarded_fast_path"), f("frames_forwarded"));
    assert!(
        fast >= 0.9 * f("delivered"),
        "fast path {fast} of {all} hops: {s}"
    );
    assert!(all > fast, "the stations' workers forwarded too: {s}");
    let cpu = &s["cpu_during_traffic"];
    let c = |k: &str| cpu[k].as_f64().unwrap_or_else(|| panic!("{k} in {cpu}"));
    assert!(
        c("wall_s") >= 10.0 && c("busy_s") > 0.0 && c("dataplanes_s") > 0.0,
        "{cpu}"
    );
    assert!(
        c("dataplanes_s") + c("emulation_other_s") + c("others_s")
            <= 1.05 * (c("busy_s") + c("steal_s")) + 0.5,
        "the processes cannot use more than the machine was not idle: {cpu}"
    );
    assert_in_force(&s, 39);
    let _ = std::fs::remove_dir_all(&out);
}
