//! ISL policies (`--isl-policy grid | nearest`) on generated and real
//! constellations: the nearest-in-range rule respects terminals and range,
//! hysteresis keeps links stable, and two shells are linked.

use std::path::PathBuf;

use clap::Parser;
use control::predict::{self, nearest::NearestState, scenario::Scenario, StepResult};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    s: Scenario,
}

fn repo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn scenario(args: &[&str]) -> Scenario {
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let mut all = vec![
        "t",
        "--ground-stations",
        gs.to_str().unwrap(),
        "--gs-count",
        "5",
    ];
    all.extend_from_slice(args);
    Cli::parse_from(all).s
}

fn run(s: &Scenario) -> Vec<StepResult> {
    let model = s.build(&Default::default()).unwrap();
    run_window(&model.net, model.window)
}

fn run_window(net: &predict::Network, window: predict::Window) -> Vec<StepResult> {
    let mut steps = Vec::new();
    predict::simulate(
        net,
        window,
        1,
        |st| {
            steps.push(st.clone());
            Ok(())
        },
        |_, _| {},
    )
    .unwrap();
    steps
}

/// Two Walker shells, +Grid in each, one extra terminal per satellite for
/// links between shells: every dynamic link joins the shells, no satellite
/// has more than one, and the routed steps count them.
#[test]
fn two_shells_get_inter_shell_links() {
    let base = [
        "--walker",
        "6:8:53:550",
        "--walker",
        "5:6:70:600",
        "--duration",
        "3s",
        "--step",
        "1s",
    ];
    let mut with = base.to_vec();
    with.extend(["--inter-shell-terminals", "1"]);
    let model = scenario(&with).build(&Default::default()).unwrap();
    let dynamic = model.net.isls.dynamic.clone().expect("inter-shell rule");
    assert_eq!(dynamic.shell_of.len(), 78);
    assert!(dynamic.shell_of[..48].iter().all(|&s| s == 0));
    assert!(dynamic.shell_of[48..].iter().all(|&s| s == 1));
    let mut pos = Vec::new();
    model.net.propagator.positions_or_left_out(0, &mut pos);
    let (mut st, mut links) = (NearestState::default(), Vec::new());
    let min_los = model.net.isls.min_los_altitude_m;
    st.step(&dynamic, min_los, &pos, |_, _| false, &mut links);
    assert!(links.len() >= 10, "{links:?}");
    let mut deg = [0; 78];
    for &(a, b) in &links {
        assert!(a < 48 && b >= 48, "({a}, {b}) joins the two shells");
        deg[a as usize] += 1;
        deg[b as usize] += 1;
    }
    assert!(deg.iter().all(|&d| d <= 1), "{deg:?}");
    let grid_only = run(&scenario(&base));
    let both = run(&scenario(&with));
    for (g, b) in grid_only.iter().zip(&both) {
        assert!(b.isls_up > g.isls_up, "{} vs {}", b.isls_up, g.isls_up);
    }
    assert_eq!(both[0].isls_up - grid_only[0].isls_up, links.len() as u32);
}

/// The nearest policy over a Walker shell for a minute: at every step no
/// satellite exceeds its terminals and no link exceeds the range; with
/// hysteresis links change less often than without.
#[test]
fn nearest_policy_respects_terminals_and_range_and_is_stabler_with_hysteresis() {
    let changes = |h: &str| {
        let s = scenario(&[
            "--walker",
            "12:12:53:550",
            "--isl-policy",
            "nearest",
            "--max-terminals",
            "3",
            "--isl-range-km",
            "2500",
            "--isl-hysteresis",
            h,
        ]);
        let model = s.build(&Default::default()).unwrap();
        let dynamic = model.net.isls.dynamic.clone().unwrap();
        assert!(model.net.isls.pairs.is_empty());
        let (mut st, mut links, mut prev, mut pos) = (
            NearestState::default(),
            Vec::new(),
            Vec::<(u32, u32)>::new(),
            Vec::new(),
        );
        let mut changed = 0;
        for k in 0..60 {
            model
                .net
                .propagator
                .positions_or_left_out(k * 1_000_000_000, &mut pos);
            st.step(&dynamic, 80_000.0, &pos, |_, _| false, &mut links);
            let mut deg = [0; 144];
            for &(a, b) in &links {
                deg[a as usize] += 1;
                deg[b as usize] += 1;
                let d = pos[a as usize].unwrap().dist(pos[b as usize].unwrap());
                assert!(d <= 2_500_000.0, "({a}, {b}) is {d} m long");
            }
            assert!(deg.iter().all(|&d| d <= 3), "{deg:?}");
            assert!(links.len() > 144, "{} links", links.len());
            if k > 0 {
                changed += links
                    .iter()
                    .filter(|l| prev.binary_search(*l).is_err())
                    .count();
            }
            prev.clone_from(&links);
        }
        changed
    };
    let (without, with) = (changes("0"), changes("0.1"));
    eprintln!("link changes over 60 s: {with} with hysteresis, {without} without");
    assert!(
        with < without,
        "{with} link changes with hysteresis, {without} without"
    );
}

/// The CLI on the shipped Starlink file with the nearest policy plans ISLs
/// and reaches the stations; the policy is in summary.json.
#[test]
fn cli_nearest_policy_on_real_starlink() {
    let out = std::env::temp_dir().join(format!("orbitmesh-isl-{}", std::process::id()));
    let tle = repo_data().join("tle/Starlink.tle");
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .args([
            "predict",
            "--tle",
            tle.to_str().unwrap(),
            "--max-gsl-m",
            "1260000",
        ])
        .args([
            "--ground-stations",
            gs.to_str().unwrap(),
            "--gs-count",
            "10",
        ])
        .args([
            "--duration",
            "2s",
            "--step",
            "1s",
            "--no-schedule",
            "--quiet",
        ])
        .args(["--isl-policy", "nearest", "--out", out.to_str().unwrap()])
        .args(["--pairs", "3023:3024"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let isls = json["isls_per_step"][0].as_u64().unwrap();
    assert!(isls > 3000 && isls <= 2 * 3023, "{json}");
    assert!(
        json["reachability"]["reachable_at_every_step"]
            .as_u64()
            .unwrap()
            > 30,
        "{json}"
    );
    let inputs = &json["inputs"];
    assert_eq!(inputs["geometry"], "accurate", "{json}");
    assert_eq!(inputs["isl_policy"]["nearest"]["terminals"], 4, "{json}");
    assert_eq!(
        inputs["isl_policy"]["nearest"]["max_range_m"], 5e6,
        "{json}"
    );
    assert_eq!(inputs["gsl_rule"]["max_length_m"], 1.26e6, "{json}");
    assert!(inputs["constellation"][0]
        .as_str()
        .unwrap()
        .ends_with("Starlink.tle"));
    let pair = &json["pairs"][0];
    assert_eq!(pair["from"]["name"], "Tokyo", "{json}");
    assert_eq!(pair["to"]["name"], "Delhi", "{json}");
    assert_eq!(pair["steps"], 2, "{json}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| 3023:3024 | Tokyo | Delhi |"), "{md}");
    assert!(md.contains("- ISL policy: nearest-in-range"), "{md}");
    let _ = std::fs::remove_dir_all(&out);
}

/// Nearest links come from the rule, not from a grid: asking for both is a
/// clear error, as is a bad rule parameter.
#[test]
fn bad_isl_policy_flags_are_clear_errors() {
    let e = scenario(&[
        "--walker",
        "6:8:53:550",
        "--isl-policy",
        "nearest",
        "--grid",
        "6x8",
    ])
    .build(&Default::default())
    .unwrap_err();
    assert!(e.to_string().contains("--isl-policy grid"), "{e}");
    let e = scenario(&[
        "--walker",
        "6:8:53:550",
        "--isl-policy",
        "nearest",
        "--isl-hysteresis",
        "1.5",
    ])
    .build(&Default::default())
    .unwrap_err();
    assert!(
        e.to_string().contains("--isl-hysteresis must be in [0, 1)"),
        "{e}"
    );
    let e = scenario(&[
        "--walker",
        "6:8:53:550",
        "--isl-range-km",
        "0",
        "--inter-shell-terminals",
        "1",
    ])
    .build(&Default::default())
    .unwrap_err();
    assert!(e.to_string().contains("--isl-range-km"), "{e}");
}

/// A window that starts later (the control process recomputing routes from
/// time t) replays the link choices from the scenario's start: its steps
/// equal the full run's.
#[test]
fn a_later_window_has_the_links_of_the_full_run() {
    let s = scenario(&[
        "--walker",
        "12:12:53:550",
        "--isl-policy",
        "nearest",
        "--isl-range-km",
        "2500",
        "--duration",
        "40s",
        "--step",
        "1s",
    ]);
    let model = s.build(&Default::default()).unwrap();
    let full = run_window(&model.net, model.window);
    let s = 1_000_000_000;
    let late = run_window(&model.net, predict::Window::new(25 * s, 40 * s, s).unwrap());
    assert_eq!(late.len(), 15);
    for (a, b) in full[25..].iter().zip(&late) {
        assert_eq!(a.t_ns, b.t_ns);
        assert_eq!(a.isls_up, b.isls_up, "at {} ns", a.t_ns);
        assert_eq!(a.next_hop, b.next_hop, "at {} ns", a.t_ns);
    }
    // Without the replay (a cold start at 25 s) the links differ: the
    // replay is what makes the steps equal.
    let mut cold = model.net;
    cold.isls.dynamic.as_mut().unwrap().history_from_ns = 25 * s;
    let late = run_window(&cold, predict::Window::new(25 * s, 40 * s, s).unwrap());
    assert!(full[25..]
        .iter()
        .zip(&late)
        .any(|(a, b)| a.next_hop != b.next_hop));
}

/// +Grid over an irregular shell: plane 0 has an extra satellite (9 where
/// the others have 8). Every satellite of plane 0 is in its ring, no
/// satellite exceeds four links, and every one has its two ring links.
#[test]
fn inferred_grid_takes_an_extra_satellite_into_its_ring() {
    let shell = predict::walker::WalkerShell::from_spec("6:9:53:550::none").unwrap();
    let mut set = shell.to_tle_set().unwrap();
    set.grid = None;
    // Planes 1..5 lose their last satellite: 9 + 5 x 8 = 49.
    for plane in (1..6).rev() {
        set.sats.remove(plane * 9 + 8);
    }
    let prop = predict::propagate::Propagator::new(&set).unwrap();
    let (plan, found) = predict::infer::plane_grid(&prop, 4, 80_000.0);
    assert_eq!((found.shells, found.planes), (1, 6));
    let mut deg = [0; 49];
    let mut ring0 = 0;
    for &(a, b) in &plan.pairs {
        deg[a as usize] += 1;
        deg[b as usize] += 1;
        ring0 += usize::from(a < 9 && b < 9);
    }
    assert_eq!(ring0, 9, "plane 0's ring holds its 9 satellites");
    assert!(deg.iter().all(|&d| (2..=4).contains(&d)), "{deg:?}");
    // 49 ring links; across, 49 picks of which some are refused for lack of
    // terminals: some satellites keep fewer than four links.
    assert!(
        plan.pairs.len() > 49 + 40 && plan.pairs.len() < 98,
        "{}",
        plan.pairs.len()
    );
}
