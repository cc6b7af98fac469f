//! Integration tests of the topology predictor: SGP4 verification cases,
//! known geometry, step-size invariance, schedules, the data the
//! repository carries (control/data), and bad input.

use std::path::PathBuf;

use control::predict::{
    self,
    geometry::Geometry,
    ground::{self, GroundStation, GslPolicy},
    output::Recorder,
    propagate::Propagator,
    schedule::ScheduleBuilder,
    tle::{Tle, TleSet},
    walker::WalkerShell,
    Network, StepResult, Window,
};

/// `control/data` (TLE sets and ground stations, see control/data/README.md).
fn repo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum State {
    Ok { time: f64, position: [f64; 3] },
    Err { time: f64, error: String },
}

#[derive(serde::Deserialize)]
struct Case {
    line1: String,
    line2: String,
    states: Vec<State>,
}

#[derive(serde::Deserialize)]
struct Cases {
    list: Vec<Case>,
}

/// Vallado's verification set (as shipped with the `sgp4` crate, MIT), run
/// through orbitmesh's propagator: positions within 1e-6 km, errors where
/// Vallado's code reports them.
#[test]
fn sgp4_vallado_verification_cases() {
    let cases: Cases = toml::from_str(include_str!("data/sgp4_vallado_cases.toml")).unwrap();
    let mut checked = 0;
    for case in &cases.list {
        let elements =
            sgp4::Elements::from_tle(None, case.line1.as_bytes(), case.line2.as_bytes()).unwrap();
        let set = TleSet {
            grid: None,
            sats: vec![Tle {
                name: String::new(),
                line1: case.line1.clone(),
                line2: case.line2.clone(),
                elements,
            }],
        };
        let prop = Propagator::new(&set).unwrap();
        for state in &case.states {
            match state {
                State::Ok { time, position } => {
                    let t_ns = (time * 60e9).round() as i64;
                    let p = prop.teme_km(0, t_ns).unwrap();
                    for i in 0..3 {
                        assert!(
                            (p[i] - position[i]).abs() < 1e-6,
                            "{} t={time}: {p:?} vs {position:?}",
                            case.line1
                        );
                    }
                    checked += 1;
                }
                State::Err { time, error } => {
                    let t_ns = (time * 60e9).round() as i64;
                    assert!(
                        prop.teme_km(0, t_ns).is_err(),
                        "{} t={time}: expected {error}",
                        case.line1
                    );
                }
            }
        }
    }
    assert!(checked > 400, "only {checked} states checked");
}

fn stations(list: &[(f64, f64)]) -> Vec<GroundStation> {
    list.iter()
        .enumerate()
        .map(|(i, &(lat, lon))| GroundStation::new(i, &format!("gs{i}"), lat, lon, 0.0).unwrap())
        .collect()
}

fn network(preset: &str, gs: &[(f64, f64)]) -> Network {
    let shell = WalkerShell::preset(preset).unwrap();
    Network::walker(&shell, stations(gs), Geometry::Accurate).unwrap()
}

fn run(net: &Network, window: Window) -> Vec<StepResult> {
    let mut out = Vec::new();
    predict::simulate(
        net,
        window,
        2,
        |s| {
            out.push(s.clone());
            Ok(())
        },
        |_, _| {},
    )
    .unwrap();
    out
}

const CITIES: &[(f64, f64)] = &[
    (35.6895, 139.69171),   // Tokyo
    (-23.5475, -46.63611),  // Sao Paulo
    (40.71427, -74.00597),  // New York
    (51.50853, -0.12574),   // London
    (-33.86785, 151.20732), // Sydney
    (30.06263, 31.24967),   // Cairo
];

/// Instants (ns) at which the path of (src, dst) changes.
fn change_instants(steps: &[StepResult], net: &Network, src: usize, dst_gs: usize) -> Vec<i64> {
    let (n, ns) = (net.n_nodes(), net.n_sats());
    let mut prev = None;
    let mut out = Vec::new();
    for s in steps {
        let p = s.path(n, ns, src, dst_gs);
        if prev.is_some() && prev.as_ref() != Some(&p) {
            out.push(s.t_ns);
        }
        prev = Some(p);
    }
    out
}

#[test]
fn path_changes_agree_at_50_and_100_ms() {
    let net = network("transport-layer", CITIES);
    let w100 = run(&net, Window::new(0, 60_000_000_000, 100_000_000).unwrap());
    let w50 = run(&net, Window::new(0, 60_000_000_000, 50_000_000).unwrap());
    // End-to-end paths of every station pair.
    let mut total = 0;
    for a in 0..CITIES.len() {
        for b in 0..CITIES.len() {
            if a == b {
                continue;
            }
            let src = net.n_sats() + a;
            let c100 = change_instants(&w100, &net, src, b);
            let c50 = change_instants(&w50, &net, src, b);
            total += c100.len();
            for &t in &c100 {
                assert!(
                    c50.iter().any(|&u| u > t - 100_000_000 && u <= t),
                    "pair {a}->{b}: change at {t} ns (100 ms) has no 50 ms counterpart: {c50:?}"
                );
            }
            for &u in &c50 {
                let t = (u + 99_999_999) / 100_000_000 * 100_000_000;
                assert!(
                    t >= 60_000_000_000 || c100.contains(&t),
                    "pair {a}->{b}: change at {u} ns (50 ms) missing at {t} ns (100 ms): {c100:?}"
                );
            }
        }
    }
    assert!(total > 0, "the scenario should have path changes");
    // Every FIB entry (node, destination): same next hop at common instants, and
    // next-hop changes at the same instants to 100 ms resolution.
    let mut entry_changes = 0;
    let mut flaps = 0;
    let len = w100[0].next_hop.len();
    for (k, s100) in w100.iter().enumerate() {
        let s50 = &w50[2 * k];
        assert_eq!(s100.t_ns, s50.t_ns);
        assert_eq!(
            s100.next_hop, s50.next_hop,
            "tables differ at {} ns",
            s100.t_ns
        );
        if k == 0 {
            continue;
        }
        let (prev100, mid50) = (&w100[k - 1], &w50[2 * k - 1]);
        for i in 0..len {
            let coarse = s100.next_hop[i] != prev100.next_hop[i];
            let fine =
                mid50.next_hop[i] != prev100.next_hop[i] || s50.next_hop[i] != mid50.next_hop[i];
            entry_changes += usize::from(coarse);
            assert!(
                !coarse || fine,
                "entry {i}: coarse change at {} ns without a fine one",
                s100.t_ns
            );
            // A fine change not seen at 100 ms must be a flap inside one coarse step.
            flaps += usize::from(fine && !coarse);
        }
    }
    assert!(
        entry_changes > 50,
        "only {entry_changes} FIB changes: scenario too static"
    );
    assert!(
        flaps * 20 < entry_changes,
        "{flaps} flaps vs {entry_changes} changes"
    );
}

#[test]
fn paths_are_loop_free_and_use_real_links() {
    let net = network("transport-layer", CITIES);
    let steps = run(&net, Window::new(0, 2_000_000_000, 1_000_000_000).unwrap());
    let (n, ns) = (net.n_nodes(), net.n_sats());
    let mut pos = Vec::new();
    for s in &steps {
        net.propagator.positions_ecef(s.t_ns, &mut pos).unwrap();
        for a in 0..CITIES.len() {
            for b in 0..CITIES.len() {
                if a == b {
                    continue;
                }
                let Some(path) = s.path(n, ns, ns + a, b) else {
                    continue;
                };
                // Ground stations only at the ends; no node twice.
                let mut seen = std::collections::HashSet::new();
                assert!(path.iter().all(|&x| seen.insert(x)), "loop in {path:?}");
                assert!(path[1..path.len() - 1].iter().all(|&x| (x as usize) < ns));
                let mut len = 0.0;
                for w in path.windows(2) {
                    let (x, y) = (w[0] as usize, w[1] as usize);
                    let d = if x >= ns {
                        net.gsl
                            .link(&net.stations[x - ns], pos[y])
                            .expect("GSL in range")
                    } else if y >= ns {
                        net.gsl
                            .link(&net.stations[y - ns], pos[x])
                            .expect("GSL in range")
                    } else {
                        assert!(
                            net.isls.pairs.contains(&(x.min(y) as u32, x.max(y) as u32)),
                            "{x}-{y} is not a planned ISL"
                        );
                        net.isls.link(pos[x], pos[y]).expect("ISL above 80 km")
                    };
                    len += d;
                }
                let reported = s.gs_dist[b * CITIES.len() + a];
                assert!((len - reported).abs() < 1e-3, "{len} vs {reported}");
                // A backup, where present, is a different node.
                let first = s.next_hop[b * n + ns + a];
                let backup = s.backup[b * n + ns + a];
                assert_ne!(first, backup);
            }
        }
        // RFC 5286: a satellite's loop-free alternate N never routes back
        // through it: N's primary path to D avoids S.
        let mut alternates = 0;
        for b in 0..CITIES.len() {
            for sat in 0..ns {
                let alt = s.backup[b * n + sat];
                if alt == predict::NONE {
                    continue;
                }
                alternates += 1;
                assert_ne!(alt, s.next_hop[b * n + sat]);
                if (alt as usize) < ns {
                    let path = s.path(n, ns, alt as usize, b).expect("alternate reaches D");
                    assert!(
                        !path.contains(&(sat as u32)),
                        "LFA {alt} of {sat} loops: {path:?}"
                    );
                }
            }
        }
        assert!(alternates > ns, "only {alternates} alternates");
    }
}

#[test]
fn schedule_replays_to_every_step() {
    let net = Network {
        sat_destinations: true,
        failed: Default::default(),
        ..network("transport-layer", &CITIES[..3])
    };
    let steps = run(&net, Window::new(0, 20_000_000_000, 500_000_000).unwrap());
    let mut b = ScheduleBuilder::new(
        net.n_sats(),
        3,
        net.n_dests(),
        16000,
        "2000-01-01T00:00:00Z".into(),
        500_000_000,
    );
    for s in &steps {
        b.push(s);
    }
    let n = net.n_nodes();
    for s in &steps {
        for sched in b.schedules() {
            let table = sched.table_at(s.t_ns);
            // Every destination (3 stations + 126 satellites) but the node itself.
            assert_eq!(table.len(), net.n_dests() - 1);
            for e in table {
                assert_eq!(e.label, 16000 + e.destination);
                let dest = e.destination as usize;
                let d = if dest >= net.n_sats() {
                    dest - net.n_sats()
                } else {
                    3 + dest
                };
                assert_eq!(net.dest_node(d), dest);
                let nh = s.next_hop[d * n + sched.node as usize];
                assert_eq!(e.next_hop, (nh != predict::NONE).then_some(nh));
                // Satellites are reachable from every satellite over the +Grid.
                if dest < net.n_sats() && (sched.node as usize) < net.n_sats() {
                    assert!(e.next_hop.is_some());
                }
            }
        }
    }
    // JSON round trip.
    let json = serde_json::to_string(&b.schedules()[0]).unwrap();
    let back: predict::schedule::NodeSchedule = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, &b.schedules()[0]);
}

/// Ground stations are label edge routers: entries towards a station carry its
/// prefix (unique, inside the base), satellite destinations carry none, and a
/// station's schedule names its own prefix.
#[test]
fn schedule_prefixes_on_ground_station_destinations_only() {
    let net = Network {
        sat_destinations: true,
        failed: Default::default(),
        ..network("transport-layer", &CITIES[..3])
    };
    let steps = run(&net, Window::new(0, 4_000_000_000, 500_000_000).unwrap());
    let ns = net.n_sats();
    let plan = predict::schedule::gs_prefixes("10.128.0.0/9", 24, 3).unwrap();
    let base: predict::schedule::Ipv4Prefix = "10.128.0.0/9".parse().unwrap();
    let mut b = ScheduleBuilder::new(
        ns,
        3,
        net.n_dests(),
        16000,
        "2000-01-01T00:00:00Z".into(),
        500_000_000,
    )
    .with_gs_prefixes(plan.clone())
    .unwrap();
    for s in &steps {
        b.push(s);
    }
    let unique: std::collections::HashSet<_> = plan.iter().collect();
    assert_eq!(unique.len(), 3);
    assert!(plan.iter().all(|p| base.contains(p) && p.len == 24));
    let mut seen = 0;
    for sched in b.schedules() {
        let node = sched.node as usize;
        assert_eq!(sched.format, "orbitmesh-fib-schedule/2");
        assert_eq!(
            sched.local_prefix,
            node.checked_sub(ns).map(|g| plan[g]),
            "node {node}"
        );
        let deltas = sched.deltas.iter().flat_map(|d| &d.changes);
        for e in sched.initial.entries.iter().chain(deltas) {
            let dest = e.destination as usize;
            if dest < ns {
                assert_eq!(e.prefix, None, "node {node} -> satellite {dest}");
            } else {
                assert_eq!(e.prefix, Some(plan[dest - ns]), "node {node} -> {dest}");
                seen += 1;
            }
        }
        // A station's table: one prefix per remote station, none its own.
        if node >= ns {
            let mut p: Vec<_> = sched
                .initial
                .entries
                .iter()
                .filter_map(|e| e.prefix)
                .collect();
            p.sort_by_key(|p| u32::from(p.addr));
            let mut want: Vec<_> = plan
                .iter()
                .copied()
                .filter(|&x| Some(x) != sched.local_prefix)
                .collect();
            want.sort_by_key(|p| u32::from(p.addr));
            assert_eq!(p, want);
        }
    }
    assert!(seen >= net.n_nodes() * 3 - 3);
    // JSON: prefixes as strings, absent where they do not apply; round trip.
    let gs0 = &b.schedules()[ns];
    let json = serde_json::to_string(gs0).unwrap();
    assert!(json.contains(r#""local_prefix":"10.128.0.0/24""#), "{json}");
    assert!(json.contains(r#""prefix":"10.128.1.0/24""#), "{json}");
    let back: predict::schedule::NodeSchedule = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, gs0);
    let sat0 = serde_json::to_string(&b.schedules()[0]).unwrap();
    assert!(!sat0.contains("local_prefix"));
    // Too small a base is refused, naming the option.
    let err = predict::schedule::gs_prefixes("10.128.0.0/23", 24, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--gs-prefix-base"), "{err}");
    assert!(b_with_wrong_count(&net).is_err());
}

fn b_with_wrong_count(net: &Network) -> Result<ScheduleBuilder, predict::Error> {
    let plan = predict::schedule::gs_prefixes("10.128.0.0/9", 24, 2).unwrap();
    ScheduleBuilder::new(net.n_sats(), 3, net.n_dests(), 16000, String::new(), 1)
        .with_gs_prefixes(plan)
}

#[test]
fn unreachable_pair_is_reported_not_a_panic() {
    // GSL range shrunk to 1 m: no station ever reaches a satellite.
    let net = Network {
        gsl: GslPolicy {
            max_length_m: 1.0,
            min_elevation_deg: None,
        },
        ..network("transport-layer", &[(51.5, -0.1), (-33.9, 18.4)])
    };
    let mut rec = Recorder::new(net.n_sats(), 2, vec![(net.n_sats(), net.n_sats() + 1)]);
    let steps = run(&net, Window::new(0, 1_000_000_000, 500_000_000).unwrap());
    for s in &steps {
        rec.push(s);
    }
    let iv = rec.unreachable(0, 1_000_000_000);
    assert_eq!(iv.len(), 1);
    assert_eq!((iv[0].start_ns, iv[0].end_ns), (0, 1_000_000_000));
    assert!(rec.series[0]
        .iter()
        .all(|s| s.path.is_none() && s.rtt_ns.is_none()));
}

#[test]
fn bad_windows_are_errors() {
    assert!(Window::new(0, 1_000, 0)
        .unwrap_err()
        .to_string()
        .contains("step"));
    assert!(Window::new(0, 1_000, -5).is_err());
    assert!(Window::new(0, i64::MAX, 1)
        .unwrap_err()
        .to_string()
        .contains("time steps"));
    assert!(Window::new(1_000, 1_000, 10)
        .unwrap_err()
        .to_string()
        .contains("empty"));
    assert_eq!(
        Window::new(0, 1_000, 300).unwrap().times(),
        vec![0, 300, 600, 900]
    );
}

#[test]
fn repo_data_parses() {
    let dir = repo_data();
    let gs = ground::read(&dir.join("ground_stations/cities_top100.basic.txt"))
        .unwrap_or_else(|e| panic!("data expected at {}: {e}", dir.display()));
    assert_eq!(gs.len(), 100);
    assert_eq!(gs[0].name, "Tokyo");
    for f in ["Starlink.tle", "OneWeb.tle", "Telesat.tle", "Iridium.tle"] {
        let set = predict::tle::read(&dir.join("tle").join(f)).unwrap();
        assert!(!set.sats.is_empty(), "{f}");
        let prop = Propagator::new(&set).unwrap();
        let mut pos = Vec::new();
        // Some real satellites may have decayed; the first one must propagate.
        prop.teme_km(0, 0).unwrap();
        let _ = prop.positions_ecef(0, &mut pos);
    }
}

fn ctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_bad_input_is_a_clear_error() {
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let gs = gs.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["predict", "--preset", "nope", "--ground-stations", gs],
            "unknown preset",
        ),
        (
            // Used to start 100,000 threads (30 s and counting).
            &[
                "predict",
                "--walker",
                "6:6:53:550",
                "--ground-stations",
                gs,
                "--threads",
                "100000",
            ],
            "at most 1024",
        ),
        (
            &[
                "predict",
                "--preset",
                "kuiper-k1",
                "--ground-stations",
                gs,
                "--step",
                "0ms",
            ],
            "step must be positive",
        ),
        (
            &[
                "predict",
                "--preset",
                "kuiper-k1",
                "--ground-stations",
                gs,
                "--step",
                "-1s",
            ],
            "step must be positive",
        ),
        (
            &[
                "predict",
                "--preset",
                "kuiper-k1",
                "--ground-stations",
                gs,
                "--duration",
                "0s",
            ],
            "empty time window",
        ),
        (
            &[
                "predict",
                "--preset",
                "kuiper-k1",
                "--ground-stations",
                gs,
                "--pairs",
                "1:2",
            ],
            "not a ground station",
        ),
        (
            &[
                "predict",
                "--preset",
                "kuiper-k1",
                "--ground-stations",
                "/nonexistent/gs.txt",
            ],
            "/nonexistent/gs.txt",
        ),
        (
            &[
                "predict",
                "--tle",
                "/nonexistent/x.tle",
                "--ground-stations",
                gs,
            ],
            "/nonexistent/x.tle",
        ),
        (
            &["predict", "--walker", "6:21:81", "--ground-stations", gs],
            "walker spec",
        ),
        (
            // 100 stations, 16 /24s.
            &[
                "predict",
                "--preset",
                "transport-layer",
                "--ground-stations",
                gs,
                "--gs-prefix-base",
                "10.128.0.0/20",
            ],
            "--gs-prefix-base 10.128.0.0/20 holds 16 /24 prefixes but there are 100",
        ),
        (
            &[
                "predict",
                "--preset",
                "transport-layer",
                "--ground-stations",
                gs,
                "--gs-prefix-base",
                "10.128.0.0",
            ],
            "--gs-prefix-base",
        ),
        (
            &[
                "predict",
                "--preset",
                "transport-layer",
                "--ground-stations",
                gs,
                "--gs-prefix-len",
                "33",
            ],
            "--gs-prefix-len 33",
        ),
        // Used to panic: attempt to add / multiply with overflow.
        (
            &[
                "predict",
                "--walker",
                "4:4:53:550",
                "--ground-stations",
                gs,
                "--srgb-base",
                "4294967295",
            ],
            "--srgb-base 4294967295",
        ),
        (
            // Node SIDs up to 1048570 + 115 do not fit 20 bits.
            &[
                "predict",
                "--walker",
                "4:4:53:550",
                "--ground-stations",
                gs,
                "--srgb-base",
                "1048570",
            ],
            "must lie in 16..=1048575",
        ),
        (
            &[
                "predict",
                "--walker",
                "4:4:53:550",
                "--ground-stations",
                gs,
                "--srgb-base",
                "3",
            ],
            "--srgb-base 3",
        ),
        (
            &[
                "predict",
                "--walker",
                "4:4:53:550",
                "--ground-stations",
                gs,
                "--grid",
                "18446744073709551615x2",
            ],
            "--grid 18446744073709551615x2",
        ),
    ];
    for (args, want) in cases {
        let out = ctl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains(want),
            "{args:?}: stderr {err:?} lacks {want:?}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn cli_predict_writes_schedules_and_pairs() {
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let out = std::env::temp_dir().join(format!("orbitmesh-ctl-test-{}", std::process::id()));
    let o = ctl(&[
        "predict",
        "--preset",
        "transport-layer",
        "--ground-stations",
        gs.to_str().unwrap(),
        "--gs-count",
        "4",
        "--duration",
        "3s",
        "--step",
        "1s",
        "--pairs",
        "126:128,127:129",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rtt = std::fs::read_to_string(out.join("pairs/rtt_126_to_128.csv")).unwrap();
    assert!(rtt.starts_with("time_ns,rtt_ns\n0,"));
    assert_eq!(rtt.lines().count(), 4);
    let path = std::fs::read_to_string(out.join("pairs/path_127_to_129.csv")).unwrap();
    assert!(path.starts_with("time_ns,path\n"));
    assert!(
        std::fs::read_to_string(out.join("pairs/rtt_126_to_128.svg"))
            .unwrap()
            .contains("<svg")
    );
    let node: predict::schedule::NodeSchedule =
        serde_json::from_str(&std::fs::read_to_string(out.join("schedule/node-0.json")).unwrap())
            .unwrap();
    assert_eq!(node.node_label, 16000);
    assert_eq!(node.initial.entries.len(), 4);
    assert_eq!(node.format, "orbitmesh-fib-schedule/2");
    assert_eq!(node.local_prefix, None);
    assert_eq!(
        node.initial.entries[1].prefix.map(|p| p.to_string()),
        Some("10.128.1.0/24".into())
    );
    let text = std::fs::read_to_string(out.join("schedule/node-128.json")).unwrap();
    assert!(text.contains(r#""local_prefix":"10.128.2.0/24""#), "{text}");
    assert!(text.contains(r#""prefix":"10.128.0.0/24""#), "{text}");
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("126 satellites"));
    // Two shells in one scenario: numbered shell after shell.
    let o = ctl(&[
        "predict",
        "--preset",
        "transport-layer",
        "--walker",
        "4:5:60:800",
        "--ground-stations",
        gs.to_str().unwrap(),
        "--gs-count",
        "2",
        "--duration",
        "1s",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"satellites\": 146"), "{summary}");
    let _ = std::fs::remove_dir_all(&out);
}

/// Golden values from Hypatia's satgenpy 0.4.0 (`scripts/hypatia-compare.sh
/// kuiper-k1 10 20 100`, see bench/results/predictor.md): Kuiper K1 with the first
/// 10 cities of cities_top100. Paths must be identical, path changes must happen
/// at the same 100 ms step, and RTTs must agree within 1 us.
#[test]
fn kuiper_matches_satgenpy_golden_values() {
    let shell = WalkerShell::preset("kuiper-k1").unwrap();
    let mut stations =
        ground::read(&repo_data().join("ground_stations/cities_top100.basic.txt")).unwrap();
    stations.truncate(10);
    let net = Network::walker(&shell, stations, Geometry::Accurate).unwrap();
    // (pair, [(from t in units of 100 ms, path)])
    type PathChanges<'a> = &'a [(i64, &'a str)];
    let paths: &[((usize, usize), PathChanges)] = &[
        (
            (1156, 1159),
            &[
                (
                    0,
                    "1156-651-652-653-654-688-689-690-691-692-693-694-695-696-697-698-699-700-1159",
                ),
                (
                    147,
                    "1156-651-652-653-654-688-689-690-691-692-693-694-695-696-697-698-699-1159",
                ),
            ],
        ),
        (
            (1157, 1163),
            &[
                (0, "1157-115-149-183-217-251-1163"),
                (34, "1157-513-514-515-549-583-617-1163"),
                (162, "1157-513-547-581-615-649-1163"),
            ],
        ),
        (
            (1158, 1165),
            &[(
                0,
                "1158-616-617-618-619-620-654-688-722-756-790-791-792-793-1165",
            )],
        ),
        (
            (1160, 1162),
            &[
                (0, "1160-512-513-514-515-549-1162"),
                (117, "1160-512-513-514-515-1162"),
            ],
        ),
    ];
    // satgenpy RTTs (ns) at 0, 9.9 s and 19.9 s.
    let rtts: &[((usize, usize), [f64; 3])] = &[
        ((1156, 1159), [142463939.655, 142880059.823, 138406396.321]),
        ((1157, 1163), [48042811.070, 48235763.727, 48192662.136]),
        ((1158, 1165), [101891527.338, 101557186.883, 101301055.709]),
        ((1160, 1162), [41069348.176, 40952481.566, 39456564.920]),
    ];
    let ticks = [0i64, 33, 34, 99, 116, 117, 146, 147, 161, 162, 199];
    let mut scratch = predict::routing::Scratch::default();
    let mut step = StepResult::default();
    let (n, ns) = (net.n_nodes(), net.n_sats());
    for &tick in &ticks {
        let t_ns = tick * 100_000_000;
        predict::routing::compute_step(&net, t_ns, &mut scratch, &mut step).unwrap();
        for &((a, b), changes) in paths {
            let want = changes.iter().rev().find(|c| c.0 <= tick).unwrap().1;
            let got = step.path(n, ns, a, b - ns).unwrap();
            let got: Vec<String> = got.iter().map(u32::to_string).collect();
            assert_eq!(got.join("-"), want, "{a}->{b} at {t_ns} ns");
        }
        let k = match tick {
            0 => 0,
            99 => 1,
            199 => 2,
            _ => continue,
        };
        for &((a, b), want) in rtts {
            let (ga, gb) = (a - ns, b - ns);
            let rtt = (step.gs_dist[gb * 10 + ga] + step.gs_dist[ga * 10 + gb]) * 1e9
                / predict::coords::SPEED_OF_LIGHT_M_S;
            assert!(
                (rtt - want[k]).abs() < 1000.0,
                "{a}<->{b} at {t_ns} ns: RTT {rtt} ns vs satgenpy {}",
                want[k]
            );
        }
    }
}

#[test]
fn failed_links_are_routed_around() {
    // The first path London -> Cape Town at t=0, then the same step with
    // its first ISL out of service: the new path avoids it and no node's
    // next hop or backup uses it.
    let gs = &[(51.5, -0.1), (-33.9, 18.4)];
    let net = network("transport-layer", gs);
    let w = Window::new(0, 100_000_000, 100_000_000).unwrap();
    let before = &run(&net, w)[0];
    let (n, ns) = (net.n_nodes(), net.n_sats());
    let path = before.path(n, ns, ns, 1).expect("reachable");
    let isl = path
        .windows(2)
        .find(|h| (h[0] as usize) < ns && (h[1] as usize) < ns)
        .expect("the path has an ISL");
    let cut = (isl[0].min(isl[1]), isl[0].max(isl[1]));
    let net = Network {
        failed: [cut].into_iter().collect(),
        ..network("transport-layer", gs)
    };
    let after = &run(&net, w)[0];
    let p2 = after.path(n, ns, ns, 1).expect("still reachable");
    assert_ne!(path, p2);
    for d in 0..net.n_dests() {
        for (node, other) in [(cut.0, cut.1), (cut.1, cut.0)] {
            let i = d * n + node as usize;
            assert_ne!(after.next_hop[i], other, "next hop over the failed link");
            assert_ne!(after.backup[i], other, "backup over the failed link");
        }
    }
    assert_eq!(after.isls_up + 1, before.isls_up);
}
