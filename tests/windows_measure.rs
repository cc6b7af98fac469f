//! Measurements for bench/results/windows.md (ignored: run by hand, the
//! commands are in that file): how late a node's own follower makes each
//! entry of a held window take effect with no controller present, and how
//! much memory a held one-hour window takes.

mod support;
use control::distribute::{plan, read_schedules};
use control::windows::{stamp, window_schedule, wiring_for};
use orbitmesh_core::protocol::{Request, Response};
use orbitmesh_core::schedule::Schedule;
use orbitmesh_core::time::now_ns;
use support::{Follower, TestDataplane};

/// Resident set size of this process (bytes), from /proc/self/statm.
fn rss() -> f64 {
    let t = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = t.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Entries 20 ms apart, uploaded once; then no controller. A thread reads
/// the FIB a worker's batch would use every 50 us and notes when each
/// entry's version is first in force, against its instant.
#[test]
#[ignore = "a measurement: see bench/results/windows.md"]
fn activation_lateness_with_no_controller() {
    let dp = TestDataplane::start("win-late", &["isl0", "isl1"]);
    let _f = Follower::start(dp.node());
    let sock = dp.socket().to_path_buf();
    let mut s = control::distribute::fixtures::schedule();
    let n = 250i64;
    s.deltas = (1..n)
        .map(|k| control::predict::schedule::FibDelta {
            activate_at_ns: k * 20_000_000,
            changes: vec![control::distribute::fixtures::entry(
                Some(if k % 2 == 0 { 1 } else { 2 }),
                None,
            )],
        })
        .collect();
    let (p, _) = plan(&s, &control::distribute::fixtures::wiring(sock.clone()));
    let start = now_ns() + 200_000_000;
    let w = window_schedule("n0", 1, &p, 0..p.len(), 0, |t| start + t as u64);
    let at: Vec<(u64, u64)> = w
        .entries
        .iter()
        .map(|e| e.at_ns)
        .zip(w.versions())
        .collect();
    let r = orbitmesh_core::protocol::call(
        &sock,
        &Request::LoadSchedule {
            schedule: w,
            allow_empty: false,
            signed: None,
        },
    );
    assert!(matches!(r, Ok(Response::Schedule(_))), "{r:?}");
    let node = dp.node().clone();
    let mut first_seen = vec![None; at.len()];
    let end = at.last().unwrap().0 + 50_000_000;
    while now_ns() < end {
        let now = now_ns();
        node.fib.promote_due(now);
        let v = node.fib.current().version();
        if let Some(i) = at.iter().position(|a| a.1 == v) {
            first_seen[i].get_or_insert(now);
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    let mut late: Vec<f64> = at
        .iter()
        .zip(&first_seen)
        .skip(1)
        .map(|((t, _), s)| s.expect("every entry was in force") as f64 / 1e3 - *t as f64 / 1e3)
        .collect();
    let k = late.len();
    let (p50, p99) = (pct(&mut late, 0.5), pct(&mut late, 0.99));
    let max = late[k - 1];
    eprintln!(
        "activation lateness over {k} entries: p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us"
    );
    assert!(p99 < 20_000.0, "p99 {p99} us");
    let _ = stamp(0, 0);
}

/// Every node's one-hour window of the schedules in
/// $ORBITMESH_SCHEDULE_DIR (predict --duration 3600s), as the dataplane
/// holds it after parsing the upload: heap bytes and JSON bytes.
#[test]
#[ignore = "a measurement: see bench/results/windows.md"]
fn memory_of_a_one_hour_window() {
    let dir = std::env::var("ORBITMESH_SCHEDULE_DIR").expect("ORBITMESH_SCHEDULE_DIR");
    let scheds = read_schedules(std::path::Path::new(&dir)).unwrap();
    let mut texts = Vec::new();
    let mut entries = 0usize;
    for s in &scheds {
        let (p, _) = plan(s, &wiring_for(s));
        let w = window_schedule("n", 1, &p, 0..p.len(), 0, |t| t.max(0) as u64);
        entries += w.entries.len();
        texts.push(serde_json::to_vec(&w).unwrap());
    }
    // Held as the dataplane holds them: parsed, all at once, so the
    // difference in resident memory is theirs (pages: hence all nodes).
    let before = rss();
    let held: Vec<Schedule> = texts
        .iter()
        .map(|t| serde_json::from_slice(t).unwrap())
        .collect();
    let after = rss();
    let n = scheds.len() as f64;
    let json: usize = texts.iter().map(Vec::len).sum();
    eprintln!(
        "{} nodes, one hour: {:.1} entries per node; held {:.0} B per node (resident, all {} held: {:.0} B); JSON {:.0} B per node",
        held.len(),
        entries as f64 / n,
        (after - before) / n,
        held.len(),
        after - before,
        json as f64 / n
    );
    assert!(after > before);
}
