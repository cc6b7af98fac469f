//! The control process's distributor (`control::distribute::drive`)
//! against dataplanes served in this process by the real control server
//! (no AF_XDP, no root): staging ahead and verifying each instant,
//! repairs pushed at once, unreachable dataplanes retried with backoff.
//! End-to-end, so that control's own tests need no dataplane runtime.

mod support;
use control::distribute::fixtures::{entry, schedule, wiring};
use control::distribute::*;
use control::events::Event;
use control::predict::schedule::{FibDelta, FibTable};
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::protocol::endpoint::Endpoint;
use orbitmesh_core::protocol::Request;
use orbitmesh_core::time::now_ns;
use std::collections::BTreeSet;
use support::TestDataplane;

#[test]
fn fibs_follow_the_schedule() {
    let (plan, unwired) = plan(&schedule(), &wiring("x".into()));
    assert_eq!(unwired, 0);
    assert_eq!(plan.len(), 3);
    let names = vec!["isl0".to_string(), "isl1".to_string()];
    let f: Vec<FibSnapshot> = plan
        .iter()
        .map(|(_, s)| s.build_for_ports(&names).unwrap())
        .collect();
    assert_eq!(f[0].ilm(16000), Some(orbitmesh_core::fib::IlmAction::Pop));
    let port_of = |f: &FibSnapshot| match f.ilm(16005) {
        Some(orbitmesh_core::fib::IlmAction::Swap { nhg, .. }) => {
            Some(f.next_hop(f.group(nhg).unwrap()[0]).unwrap().port)
        }
        _ => None,
    };
    assert_eq!(
        (port_of(&f[0]), port_of(&f[1]), port_of(&f[2])),
        (Some(0), Some(1), None)
    );
    // An unwired next hop is left out and counted.
    let mut w = wiring("x".into());
    w.links.pop();
    assert_eq!(plan_unwired(&w), 1);
}

fn plan_unwired(w: &NodeWiring) -> usize {
    plan(&schedule(), w).1
}

#[test]
fn drive_stages_ahead_and_verifies_each_instant() {
    let dp = TestDataplane::start("drive-run", &["isl0", "isl1"]);
    let (sock, node) = (dp.socket().to_path_buf(), dp.node().clone());
    let (p, _) = plan(&schedule(), &wiring(sock.clone()));
    let start = now_ns() + 100_000_000;
    let mut log = Vec::new();
    let call = |s: &Endpoint, r: Request| orbitmesh_core::protocol::call_at(s, &r);
    let reports = drive(
        &[(0, Endpoint::Socket(sock.clone()), p)],
        start,
        2.0,
        &call,
        &now_ns,
        None,
        &mut |m| log.push(m),
    );
    assert_eq!(reports[0].staged, 3, "{log:?}");
    assert_eq!(
        (reports[0].verified, reports[0].late, reports[0].failed),
        (3, 0, 0),
        "{log:?}"
    );
    let verified: Vec<u64> = log
        .iter()
        .filter_map(|e| match e {
            Event::Verified { node: 0, version } => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(verified, [1, 2, 3], "{log:?}");
    // At 2x, the last instant (200 ms of schedule) is 100 ms after start.
    assert!(now_ns() >= start + 100_000_000);
    node.fib.promote_due(now_ns());
    let f = node.fib.current();
    assert_eq!(f.version(), 3);
    assert_eq!(f.ilm(16005), None, "the destination was withdrawn");
}

#[test]
fn a_port_down_triggers_a_repair_pushed_at_once() {
    let dp = TestDataplane::start("drive-repair", &["isl0", "isl1"]);
    let (sock, node) = (dp.socket().to_path_buf(), dp.node().clone());
    // The schedule keeps 16005 on n1 (isl0) for 2 s of schedule time.
    let mut sched = schedule();
    sched.deltas.clear();
    sched.deltas.push(FibDelta {
        activate_at_ns: 2_000_000_000,
        changes: vec![entry(Some(1), None)],
    });
    let w = wiring(sock.clone());
    let (p, _) = plan(&sched, &w);
    let asked = std::sync::Mutex::new(Vec::new());
    let replan = |failed: &BTreeSet<(u32, u32)>, t: i64, _steps: Option<usize>| {
        asked.lock().unwrap().push((failed.clone(), t));
        let mut s = schedule();
        s.initial = FibTable {
            activate_at_ns: t,
            entries: vec![entry(Some(2), None)],
        };
        s.deltas.clear();
        Ok(vec![(0, Endpoint::Socket(sock.clone()), plan(&s, &w).0)])
    };
    let repair = Repair {
        poll_every_ns: 10_000_000,
        ports: [((0, "isl0".to_string()), 1), ((0, "isl1".to_string()), 2)]
            .into_iter()
            .collect(),
        replan: &replan,
    };
    let start = now_ns();
    let n2 = node.clone();
    // isl0 goes down 300 ms into the run (1.2 s of schedule time at 4x).
    let fault = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        n2.live.set_carrier(0, false);
    });
    let mut log = Vec::new();
    let call = |s: &Endpoint, r: Request| orbitmesh_core::protocol::call_at(s, &r);
    let reports = drive(
        &[(0, Endpoint::Socket(sock.clone()), p)],
        start,
        4.0,
        &call,
        &now_ns,
        Some(&repair),
        &mut |m| log.push(m),
    );
    fault.join().unwrap();
    let asked = asked.into_inner().unwrap();
    assert_eq!(asked.len(), 2, "the instant, then the rest: {log:?}");
    assert_eq!(asked[0].0, [(0, 1)].into_iter().collect());
    assert!(
        (1_000_000_000..2_000_000_000).contains(&asked[0].1),
        "{asked:?}"
    );
    assert_eq!(reports[0].repairs, 1);
    assert!(
        log.iter()
            .any(|e| matches!(e, Event::LinksDown { links, .. } if *links == [(0, 1)])),
        "{log:?}"
    );
    assert!(
        log.contains(&Event::RepairPushed {
            node: 0,
            version: 3
        }),
        "{log:?}"
    );
    assert_eq!((reports[0].late, reports[0].failed), (0, 0), "{log:?}");
    // The repaired FIB replaced the rest of the schedule: 16005 via isl1.
    node.fib.promote_due(now_ns());
    let f = node.fib.current();
    let port = match f.ilm(16005) {
        Some(orbitmesh_core::fib::IlmAction::Swap { nhg, .. }) => {
            f.next_hop(f.group(nhg).unwrap()[0]).unwrap().port
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(port, 1);
    assert_eq!(f.version(), 3, "v1, v2 staged ahead, then the repair");
    assert_eq!(reports[0].staged, 2, "the repaired plan had nothing more");
}

#[test]
fn an_unreachable_dataplane_is_retried_with_backoff() {
    // The dataplane appears 700 ms after the run starts.
    let dir = std::env::temp_dir().join(format!("om-drive-backoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("n0.sock");
    let s = sock.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        TestDataplane::serve(&s, &["isl0", "isl1"])
    });
    let (p, _) = plan(&schedule(), &wiring(sock.clone()));
    let mut log = Vec::new();
    let call = |s: &Endpoint, r: Request| orbitmesh_core::protocol::call_at(s, &r);
    let reports = drive(
        &[(0, Endpoint::Socket(sock.clone()), p)],
        now_ns(),
        2.0,
        &call,
        &now_ns,
        None,
        &mut |m| log.push(m),
    );
    let events = log;
    let log: Vec<String> = events.iter().filter_map(Event::line).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Unreachable { nodes, .. } if *nodes == [0]))
            .count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == Event::Reachable { node: 0 })
            .count(),
        1,
        "{events:?}"
    );
    // Attempts at 0, 200 and 600 ms (backoff 200, 400 ms) fail; without
    // backoff there would be 4 by 700 ms.
    assert!((2..=3).contains(&reports[0].failed), "{log:?}");
    // Said once, not once per attempt; and once when it is back.
    let said: Vec<&String> = log.iter().filter(|m| m.contains("unreachable")).collect();
    assert_eq!(said.len(), 1, "{log:?}");
    assert!(
        said[0].starts_with("1 dataplane unreachable (node 0); node 0: cannot connect"),
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|m| *m == "node 0: reachable again")
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        reports[0].staged, 3,
        "everything staged once it is back: {log:?}"
    );
    drop(late.join().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
