//! The control process's windows (`control::windows::drive_windows`)
//! against dataplanes served in this process by the real control server
//! and following their schedule with the real follower thread: every
//! instant activated by the node itself, and a window that survives a
//! controller restart with no duplicate or missing activation.

mod support;
use control::distribute::fixtures::{entry, schedule, wiring};
use control::distribute::*;
use control::events::Event;
use control::predict::schedule::{FibDelta, NodeSchedule};
use control::windows::{drive_windows, stamp, Windows};
use orbitmesh_core::protocol::endpoint::Endpoint;
use orbitmesh_core::protocol::{Request, Response};
use orbitmesh_core::time::now_ns;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::{Follower, TestDataplane};

const MS: i64 = 1_000_000;

/// Node 0's route to 5 alternating between neighbours 1 and 2 every
/// 100 ms of schedule time, `n` instants.
fn alternating(n: i64) -> NodeSchedule {
    let mut s = schedule();
    s.deltas = (1..n)
        .map(|k| FibDelta {
            activate_at_ns: k * 100 * MS,
            changes: vec![entry(Some(if k % 2 == 0 { 1 } else { 2 }), None)],
        })
        .collect();
    s
}

/// Samples the version a worker's batch would use every millisecond until
/// `stop`; returns the sequence of versions seen, each once per change.
fn watch_versions(
    node: Arc<dataplane::shared::Node>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut seen = vec![];
        while !stop.load(Ordering::Relaxed) {
            node.fib.promote_due(now_ns());
            let v = node.fib.current().version();
            if seen.last() != Some(&v) {
                seen.push(v);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        seen
    })
}

fn call(s: &Endpoint, r: Request) -> Result<Response, String> {
    orbitmesh_core::protocol::call_at(s, &r)
}

#[test]
fn a_window_is_followed_by_the_node_itself() {
    let dp = TestDataplane::start("win-run", &["isl0", "isl1"]);
    let _f = Follower::start(dp.node());
    let sock = dp.socket().to_path_buf();
    let (p, _) = plan(&alternating(6), &wiring(sock.clone()));
    let start = now_ns() + 100_000_000;
    let mut log = Vec::new();
    let win = Windows {
        window_ns: 400 * MS,
        sign: None,
    };
    let reports = drive_windows(
        &[(0, Endpoint::Socket(sock), p)],
        start,
        1.0,
        win,
        &call,
        &now_ns,
        None,
        &mut |e| log.push(e),
    );
    let r = &reports[0];
    assert_eq!(
        (r.staged, r.verified, r.late, r.failed),
        (6, 6, 0, 0),
        "{log:?}"
    );
    // Windows at 0, 200, 400 ms of schedule time (the last holds 500 ms).
    assert_eq!(r.windows, 3, "{log:?}");
    let loaded: Vec<u64> = log
        .iter()
        .filter_map(|e| match e {
            Event::WindowLoaded { serial, .. } => Some(*serial),
            _ => None,
        })
        .collect();
    assert_eq!(
        loaded,
        [stamp(0, 0), stamp(200 * MS, 0), stamp(400 * MS, 0)]
    );
    dp.node().fib.promote_due(now_ns());
    assert_eq!(dp.node().fib.current().version(), stamp(500 * MS, 0));
}

#[test]
fn a_window_survives_a_controller_restart_with_no_duplicate_or_missing_activation() {
    let dp = TestDataplane::start("win-restart", &["isl0", "isl1"]);
    let _f = Follower::start(dp.node());
    let sock = dp.socket().to_path_buf();
    let (p, _) = plan(&alternating(12), &wiring(sock.clone()));
    let want: Vec<u64> = std::iter::once(0)
        .chain(p.iter().map(|(t, _)| stamp(*t, 0)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = watch_versions(dp.node().clone(), stop.clone());
    let start = now_ns() + 100_000_000;
    let win = Windows {
        window_ns: 600 * MS,
        sign: None,
    };
    // Controller A uploads windows 0 (at once) and 1 (at 300 ms), then
    // dies at 350 ms: nothing it sends reaches the node any more.
    let killed_at = start + 350_000_000;
    let (pa, sa) = (p.clone(), sock.clone());
    let a = std::thread::spawn(move || {
        let dead = |s: &Endpoint, r: Request| {
            if now_ns() >= killed_at {
                return Err("controller killed".to_string());
            }
            call(s, r)
        };
        let mut log = Vec::new();
        let win = Windows {
            window_ns: 600 * MS,
            sign: None,
        };
        drive_windows(
            &[(0, Endpoint::Socket(sa), pa)],
            start,
            1.0,
            win,
            &dead,
            &now_ns,
            None,
            &mut |e| log.push(e),
        );
        log
    });
    // Controller B starts at 500 ms: window 1 is held already.
    std::thread::sleep(std::time::Duration::from_nanos(
        (start + 500_000_000).saturating_sub(now_ns()),
    ));
    let mut log = Vec::new();
    let reports = drive_windows(
        &[(0, Endpoint::Socket(sock), p)],
        start,
        1.0,
        win,
        &call,
        &now_ns,
        None,
        &mut |e| log.push(e),
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    let seen = seen.join().unwrap();
    let log_a = a.join().unwrap();
    assert!(
        log_a.iter().any(
            |e| matches!(e, Event::WindowLoaded { serial, .. } if *serial == stamp(300 * MS, 0))
        ),
        "A uploaded window 1: {log_a:?}"
    );
    let held = stamp(300 * MS, 0);
    assert_eq!(
        log.first(),
        Some(&Event::WindowHeld {
            node: 0,
            serial: held,
            held
        }),
        "B found window 1 held and sent nothing: {log:?}"
    );
    assert_eq!(seen, want, "every instant activated once, in order");
    let r = &reports[0];
    assert_eq!((r.late, r.failed), (0, 0), "{log:?}");
    assert_eq!(r.windows, 2, "windows 2 (600 ms) and 3 (900 ms): {log:?}");
    let refused: u64 = dp.node().schedule.refusals().iter().map(|r| r.1).sum();
    assert_eq!(refused, 0);
}

/// Node 0 routes 16005 via neighbour 1 and node 3 via 4 until 3 s of
/// schedule time; then both add a backup. Node 0's isl0 (to 1) fails
/// 300 ms into the run (1.2 s of schedule time at x4): node 0's FIB in
/// force changes (via 2), node 3's does not.
#[test]
fn a_repair_reaches_the_changed_nodes_first_then_every_node_gets_its_window() {
    use control::predict::schedule::FibTable;
    use std::collections::BTreeSet;
    let (a, b) = (
        TestDataplane::start("win-repair-a", &["isl0", "isl1"]),
        TestDataplane::start("win-repair-b", &["isl0", "isl1"]),
    );
    let (_fa, _fb) = (Follower::start(a.node()), Follower::start(b.node()));
    let (sa, sb) = (a.socket().to_path_buf(), b.socket().to_path_buf());
    let sched = |id: u32, via: u32, from: i64| {
        let mut s = schedule();
        s.node = id;
        s.initial = FibTable {
            activate_at_ns: from,
            entries: vec![entry(Some(via), None)],
        };
        s.deltas = vec![FibDelta {
            activate_at_ns: 3_000 * MS,
            changes: vec![entry(Some(via), Some(if via == 2 { 1 } else { 2 }))],
        }];
        s
    };
    let (wa, wb) = (wiring(sa.clone()), wiring(sb.clone()));
    let asked = std::sync::Mutex::new(Vec::new());
    let replan = |failed: &BTreeSet<(u32, u32)>, t: i64, steps: Option<usize>| {
        asked.lock().unwrap().push((failed.clone(), t, steps));
        let mut pa = plan(&sched(0, 2, t), &wa).0;
        let mut pb = plan(&sched(3, 1, t), &wb).0;
        if let Some(n) = steps {
            pa.truncate(n);
            pb.truncate(n);
        }
        Ok(vec![
            (0, Endpoint::Socket(sa.clone()), pa),
            (3, Endpoint::Socket(sb.clone()), pb),
        ])
    };
    let repair = Repair {
        poll_every_ns: 10_000_000,
        ports: [
            ((0, "isl0".to_string()), 1),
            ((0, "isl1".to_string()), 2),
            ((3, "isl0".to_string()), 1),
            ((3, "isl1".to_string()), 2),
        ]
        .into_iter()
        .collect(),
        replan: &replan,
    };
    let plans = [
        (
            0,
            Endpoint::Socket(sa.clone()),
            plan(&sched(0, 1, 0), &wa).0,
        ),
        (
            3,
            Endpoint::Socket(sb.clone()),
            plan(&sched(3, 1, 0), &wb).0,
        ),
    ];
    let n0 = a.node().clone();
    let fault = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        n0.live.set_carrier(0, false);
    });
    // Loads in flight at once, and the most seen.
    let (inflight, most) = (
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    );
    let call = |s: &Endpoint, r: Request| {
        if !matches!(r, Request::LoadSchedule { .. }) {
            return call(s, r);
        }
        let n = inflight.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let answer = call(s, r);
        inflight.fetch_sub(1, Ordering::SeqCst);
        answer
    };
    let mut log = Vec::new();
    let win = Windows {
        window_ns: 60_000 * MS,
        sign: None,
    };
    let start = now_ns();
    let reports = drive_windows(
        &plans,
        start,
        4.0,
        win,
        &call,
        &now_ns,
        Some(&repair),
        &mut |e| log.push(e),
    );
    fault.join().unwrap();
    let asked = asked.into_inner().unwrap();
    let failed: BTreeSet<(u32, u32)> = [(0, 1)].into_iter().collect();
    assert_eq!(
        asked.len(),
        2,
        "the step in force, then the rest: {asked:?}"
    );
    let t = asked[0].1;
    assert!((1_000 * MS..3_000 * MS).contains(&t), "{asked:?}");
    assert_eq!(
        asked,
        [(failed.clone(), t, Some(1)), (failed.clone(), t, None)]
    );
    let salt = control::windows::salt(&failed);
    let loaded: Vec<(u32, u64, usize)> = log
        .iter()
        .filter_map(|e| match e {
            Event::WindowLoaded {
                node,
                serial,
                entries,
                ..
            } => Some((*node, *serial, *entries)),
            _ => None,
        })
        .collect();
    let rest = control::windows::rest_serial(t, salt);
    assert_eq!(
        loaded,
        [
            (0, stamp(0, 0), 2),
            (3, stamp(0, 0), 2),
            (0, stamp(t, salt), 2),
            (0, rest, 2),
            (3, rest, 2)
        ],
        "the first windows, node 0's step in force and its old plan after it, then both whole: {log:?}"
    );
    let at = |f: &dyn Fn(&Event) -> bool| log.iter().position(f).unwrap();
    let down = at(&|e| matches!(e, Event::LinksDown { links, .. } if *links == [(0, 1)]));
    let recomputed = at(&|e| matches!(e, Event::RestRecomputed { .. }));
    let quick =
        at(&|e| matches!(e, Event::WindowLoaded { serial, .. } if *serial == stamp(t, salt)));
    assert!(down < quick && quick < recomputed, "{log:?}");
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "both nodes' windows in flight at once"
    );
    for r in &reports {
        assert_eq!((r.repairs, r.late, r.failed), (1, 0, 0), "{log:?}");
    }
    assert!(log.contains(&Event::RepairPushed {
        node: 0,
        version: stamp(t, salt)
    }));
    // Both ended on the repaired plan's last instant.
    for n in [a.node(), b.node()] {
        n.fib.promote_due(now_ns());
        assert_eq!(n.fib.current().version(), stamp(3_000 * MS, salt));
    }
    let f = a.node().fib.current();
    let port = match f.ilm(16005) {
        Some(orbitmesh_core::fib::IlmAction::Swap { nhg, .. }) => {
            f.next_hop(f.group(nhg).unwrap()[0]).unwrap().port
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(port, 1, "node 0 forwards via isl1");
}
