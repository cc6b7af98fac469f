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

/// Median of `n` runs of `f`, in ms, and the last result.
fn timed<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..n {
        let t0 = std::time::Instant::now();
        last = Some(f());
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    (pct(&mut ms, 0.5), last.expect("n > 0"))
}

/// Where a repair's time goes, piece by piece, on the schedules and
/// scenario in $ORBITMESH_SCHEDULE_DIR (the demo's `predict`, 2400 s):
/// the controller's recomputation, encoding and signing; a dataplane's
/// checks (FIB builds, hashing, signature), its state-directory writes;
/// and the uploads to 40 in-process dataplanes (real control server and
/// follower) one after the other, until each has the repaired entry in
/// force. A link on the traffic's side fails at $REPAIR_AT_S (default
/// 600 s of schedule time), with 10-minute windows at x20.
#[test]
#[ignore = "a measurement: see bench/results/windows.md"]
fn where_a_repair_spends_its_time() {
    use control::distribute::{replan, Wiring};
    use control::predict::scenario::Scenario;
    use control::windows::{salt, window_range, DEFAULT_WINDOW_NS};
    use orbitmesh_core::sign::{schedule_message, SecretKey, Trust, TrustedKey};
    use std::collections::BTreeSet;
    const S: i64 = 1_000_000_000;
    let dir = std::env::var("ORBITMESH_SCHEDULE_DIR").expect("ORBITMESH_SCHEDULE_DIR");
    let dir = std::path::Path::new(&dir);
    let scheds = read_schedules(dir).unwrap();
    let scenario = Scenario::read(dir).unwrap().expect("scenario.json");
    let t: i64 = std::env::var("REPAIR_AT_S").map_or(600, |v| v.parse().unwrap()) * S;
    let scale = 20.0;
    let w = DEFAULT_WINDOW_NS;
    let scratch = std::env::temp_dir().join(format!("om-repair-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let wiring = Wiring::from_nodes(scheds.iter().map(|s| {
        let mut nw = wiring_for(s);
        nw.socket = Some(scratch.join(format!("n{}.sock", s.node)));
        (s.node, nw)
    }));
    // One ISL of the first satellite: the failure.
    let (a, nw) = wiring.nodes()[0];
    let failed: BTreeSet<(u32, u32)> = [(a.min(nw.links[0].neighbor), a.max(nw.links[0].neighbor))]
        .into_iter()
        .collect();
    let salt = salt(&failed);
    let step = scenario.build(&BTreeSet::new()).unwrap().window.step_ns;
    let steps = (w / step) as usize + 1;
    eprintln!(
        "{} nodes; link {failed:?} fails at {} s of schedule time; window {} s, step {} ms",
        scheds.len(),
        t / S,
        w / S,
        step / 1_000_000
    );
    // Controller: the recomputation, whole rest of the run, one window, one step.
    let (rest_ms, new) = timed(3, || replan(&scenario, &failed, t, None, &wiring).unwrap());
    let (win_ms, _) = timed(3, || {
        replan(&scenario, &failed, t, Some(steps), &wiring).unwrap()
    });
    let (one_ms, _) = timed(3, || {
        replan(&scenario, &failed, t, Some(1), &wiring).unwrap()
    });
    eprintln!(
        "replan: the rest of the run {rest_ms:.1} ms; one window ({steps} steps) {win_ms:.1} ms; the step in force {one_ms:.1} ms"
    );
    // The dataplanes: in-process servers, each with its ports, a state
    // directory, and a follower.
    let servers: Vec<_> = wiring
        .nodes()
        .into_iter()
        .map(|(id, nw)| {
            let mut ports: Vec<&str> = nw.links.iter().map(|l| l.port.as_str()).collect();
            ports.extend(nw.local.as_ref().map(|l| l.port.as_str()));
            let sock = nw
                .socket
                .clone()
                .expect("every node is given a socket above");
            let s = TestDataplane::serve(&sock, &ports);
            let state = scratch.join(format!("state-{id}"));
            s.node().schedule.set_state_dir(Some(state)).unwrap();
            (id, sock, s)
        })
        .collect();
    let _followers: Vec<_> = servers
        .iter()
        .map(|s| Follower::start(s.2.node()))
        .collect();
    let start_wall = now_ns() - (t as f64 / scale) as u64;
    let wall = |x: i64| control::distribute::wall_ns(start_wall, x, scale);
    let call =
        |sock: &std::path::Path, r: Request| orbitmesh_core::protocol::call(sock, &r).unwrap();
    // Every node holds the grid window (no failure) in force at t.
    let grid = t / (w / 2) * (w / 2);
    for (id, sock, _) in &servers {
        let s = scheds.iter().find(|s| s.node == *id).unwrap();
        let (p, _) = plan(s, wiring.nodes().iter().find(|n| n.0 == *id).unwrap().1);
        let sc = window_schedule("n0", stamp(grid, 0), &p, window_range(&p, grid, w), 0, wall);
        let r = call(
            sock,
            Request::LoadSchedule {
                schedule: sc,
                allow_empty: false,
                signed: None,
            },
        );
        assert!(matches!(r, Response::Schedule(_)), "{r:?}");
    }
    // Encoding and signing every node's repaired window.
    let (enc_ms, windows) = timed(3, || {
        new.iter()
            .map(|(_, _, p)| {
                window_schedule("n0", stamp(t, salt), p, window_range(p, t, w), salt, wall)
            })
            .collect::<Vec<Schedule>>()
    });
    let key = SecretKey::from_bytes([7; 32]);
    let (sign_ms, sigs) = timed(3, || {
        windows
            .iter()
            .map(|s| key.sign_schedule(s).unwrap())
            .collect::<Vec<_>>()
    });
    let (json_ms, bytes) = timed(3, || {
        windows
            .iter()
            .map(|s| serde_json::to_vec(s).unwrap().len())
            .sum::<usize>()
    });
    let entries: usize = windows.iter().map(|s| s.entries.len()).sum();
    eprintln!(
        "controller, all {} windows ({entries} entries, {bytes} B of JSON): encode {enc_ms:.2} ms, sign {sign_ms:.2} ms, JSON {json_ms:.2} ms",
        windows.len()
    );
    // A dataplane's checks, per node, summed over the 40.
    let node0 = servers[0].2.node().clone();
    let mut build_ms = Vec::new();
    let (walk_ms, _) = timed(3, || {
        for s in &windows {
            s.walk(|_, _, _| Ok(())).unwrap();
        }
    });
    for (s, (_, _, srv)) in windows.iter().zip(&servers) {
        s.walk(|_, _, f| {
            let t0 = std::time::Instant::now();
            srv.node().build_fib(f).unwrap();
            build_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            Ok(())
        })
        .unwrap();
    }
    let builds: f64 = build_ms.iter().sum();
    let (hash_ms, msgs) = timed(3, || {
        windows
            .iter()
            .map(|s| schedule_message(s).unwrap())
            .collect::<Vec<_>>()
    });
    let trust = Trust {
        keys: vec![TrustedKey {
            name: "g".into(),
            key: key.public(),
            not_before_ns: None,
            not_after_ns: None,
        }],
        revoked: vec![],
    };
    let (verify_ms, _) = timed(3, || {
        for (m, s) in msgs.iter().zip(&sigs) {
            trust.verify(m, Some(s), now_ns()).unwrap();
        }
    });
    let n = build_ms.len();
    eprintln!(
        "dataplanes, all 40: expand {walk_ms:.2} ms; {n} FIB builds {builds:.1} ms (p50 {:.3} ms, max {:.3} ms); hash (message) {hash_ms:.2} ms; verify {verify_ms:.2} ms",
        pct(&mut build_ms.clone(), 0.5),
        pct(&mut build_ms, 1.0)
    );
    // A dataplane's load, in memory and with its state directory.
    let mut mem_ms = Vec::new();
    let mut disk_ms = Vec::new();
    for (k, s) in windows.iter().enumerate() {
        let (_, _, srv) = &servers[k];
        let ports = srv.node().port_names.clone();
        let fresh = dataplane::shared::Node::new(
            "n0",
            ports,
            orbitmesh_core::fib::FibSnapshot::empty(0),
            1,
        );
        let t0 = std::time::Instant::now();
        fresh.schedule.load(&fresh, s.clone(), false, None).unwrap();
        mem_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        fresh
            .schedule
            .set_state_dir(Some(scratch.join(format!("fresh-{k}"))))
            .unwrap();
        let mut again = s.clone();
        again.serial += 1;
        let t0 = std::time::Instant::now();
        fresh.schedule.load(&fresh, again, false, None).unwrap();
        disk_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    eprintln!(
        "Held::load, all 40: in memory {:.1} ms (p50 {:.2} ms per node), with the state dir {:.1} ms (p50 {:.2} ms per node)",
        sum(&mem_ms),
        pct(&mut mem_ms.clone(), 0.5),
        sum(&disk_ms),
        pct(&mut disk_ms.clone(), 0.5)
    );
    // The uploads, one node after the other (as before) and then at once
    // (as the driver now makes them, a window of the links coming back
    // 1 s of schedule later), while a thread notes when each node has
    // an entry of its new window in force.
    let nodes: Vec<_> = servers.iter().map(|s| s.2.node().clone()).collect();
    let socks: Vec<_> = servers.iter().map(|s| s.1.clone()).collect();
    let (total_ms, in_force_ms) = upload_all(&windows, &socks, &nodes, 1);
    eprintln!(
        "uploads one node after the other: all 40 answered after {total_ms:.1} ms; an entry of the new window in force at all 40 after {in_force_ms:.1} ms"
    );
    // The links come back 1 s of schedule later, repaired as the driver
    // now does it: the step in force first, to the nodes whose FIB in
    // force changes, at once; then every node's whole window, at once.
    let t2 = t + S;
    let mut quick = (Vec::new(), Vec::new(), Vec::new());
    let mut whole = Vec::new();
    for ((id, nw), (_, _, repaired)) in wiring.nodes().into_iter().zip(&new) {
        let s = scheds.iter().find(|s| s.node == id).unwrap();
        let (p, _) = plan(s, nw);
        let range = window_range(&p, t2, w);
        let k = range.start;
        let in_force = |pl: &control::distribute::Plan| {
            let i = pl.partition_point(|(at, _)| *at <= t2) - 1;
            let mut f = pl[i].1.clone();
            f.version = 0;
            f
        };
        if in_force(&p) != in_force(repaired) {
            let i = whole.len();
            // Its step in force, then its old (repaired) plan after t2.
            let mut fibs = vec![(wall(p[k].0), p[k].1.clone())];
            fibs[0].1.version = stamp(p[k].0, 0);
            fibs.extend(
                repaired
                    .iter()
                    .filter(|(at, _)| *at > t2 && *at < t2 + w)
                    .map(|(at, f)| {
                        let mut f = f.clone();
                        f.version = stamp(*at, salt);
                        (wall(*at), f)
                    }),
            );
            quick
                .0
                .push(Schedule::delta_encoded("n0", stamp(t2, 0), &fibs));
            quick.1.push(socks[i].clone());
            quick.2.push(nodes[i].clone());
        }
        let serial = control::windows::rest_serial(t2, 0);
        whole.push(window_schedule("n0", serial, &p, range, 0, wall));
    }
    let at_once = control::windows::UPLOADS_AT_ONCE;
    let (total_ms, in_force_ms) = upload_all(&quick.0, &quick.1, &quick.2, at_once);
    eprintln!(
        "links back, step in force and the old plan after it ({} entries) to the {} nodes it changes, {at_once} at once: answered after {total_ms:.1} ms; in force at all after {in_force_ms:.1} ms",
        quick.0.iter().map(|s| s.entries.len()).sum::<usize>(),
        quick.0.len()
    );
    let (total_ms, in_force_ms) = upload_all(&whole, &socks, &nodes, at_once);
    eprintln!(
        "links back, whole windows to all 40, {at_once} at once: answered after {total_ms:.1} ms; in force at all after {in_force_ms:.1} ms"
    );
    drop(_followers);
    drop(servers);
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = node0;
}

/// Sends `windows[k]` to `socks[k]` (ShowSchedule, then LoadSchedule), on
/// `at_once` threads; returns when all were answered and when each node
/// had one of its new window's versions in force (ms, the latest).
fn upload_all(
    windows: &[Schedule],
    socks: &[std::path::PathBuf],
    nodes: &[std::sync::Arc<dataplane::shared::Node>],
    at_once: usize,
) -> (f64, f64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t0 = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let call =
        |sock: &std::path::Path, r: Request| orbitmesh_core::protocol::call(sock, &r).unwrap();
    std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            let mut seen = vec![None; nodes.len()];
            while seen.iter().any(Option::is_none) && t0.elapsed().as_secs() < 10 {
                for (k, n) in nodes.iter().enumerate() {
                    if seen[k].is_none()
                        && windows[k].versions().contains(&n.fib.current().version())
                    {
                        seen[k] = Some(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            seen.into_iter()
                .map(|s| s.expect("in force within 10 s"))
                .fold(0.0, f64::max)
        });
        let senders: Vec<_> = (0..at_once)
            .map(|_| {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(w) = windows.get(k) else { break };
                    let _ = call(&socks[k], Request::ShowSchedule);
                    let r = call(
                        &socks[k],
                        Request::LoadSchedule {
                            schedule: w.clone(),
                            allow_empty: false,
                            signed: None,
                        },
                    );
                    assert!(matches!(r, Response::Schedule(_)), "{r:?}");
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let total = t0.elapsed().as_secs_f64() * 1e3;
        (total, watch.join().unwrap())
    })
}
