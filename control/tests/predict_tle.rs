//! Real TLE sets: a satellite that cannot be propagated at some instant is
//! left out at that instant (no links, not a relay), warned about once and
//! counted; the run never stops. Also the four TLE files the repository ships
//! (control/data/tle) through `orbitmesh-ctl predict`.

use std::path::{Path, PathBuf};

use control::predict::{
    self,
    ground::{GroundStation, GslPolicy},
    links::IslPlan,
    propagate::Propagator,
    tle, Network, StepResult, Window, NONE,
};

/// Five Starlink satellites from control/data/tle/Starlink.tle (CelesTrak,
/// September 2022), unchanged. STARLINK-4653 (satellite 0) was decaying (mean
/// motion 16.33 rev/day, drag term 2.3e-3); SGP4 diverges 80,001 s after its
/// TLE epoch (propagated eccentricity below -0.001). STARLINK-2472 has the
/// latest epoch (22257.78680092), so it is the scenario epoch, 79,975.1 s after
/// STARLINK-4653's: satellite 0 propagates until t = 25 s and fails from
/// t = 26 s on. STARLINK-4650/4655/4658 share its launch and orbit plane.
const FIXTURE: &str = "\
STARLINK-4653
1 53615U 22104AD  22256.86116362  .15877752  12045-4  22984-2 0  9994
2 53615  53.2076 202.6081 0018184 112.8601 276.6062 16.33314633  2706
STARLINK-4655
1 53613U 22104AB  22257.58334491  .00052568  00000+0  37706-3 0  9993
2 53613  53.2155 201.6035 0000848  86.0362 283.7033 15.73173102  2775
STARLINK-4658
1 53612U 22104AA  22257.58334491  .00176018  00000+0  12368-2 0  9995
2 53612  53.2157 201.5998 0001037 109.6787 262.2864 15.73117619  2772
STARLINK-4650
1 53611U 22104Z   22257.58334491  .00141079  00000+0  99736-3 0  9998
2 53611  53.2173 201.6068 0000950  83.6074 284.9767 15.73093257  2775
STARLINK-2472
1 48130U 21027AQ  22257.78680092  .00003728  00000+0  26922-3 0  9999
2 48130  53.0553 126.4249 0001734  83.3391 276.7795 15.06370597 80249
";

const S: i64 = 1_000_000_000;

/// Ground stations right under satellites `sats` at t = 0 (geocentric
/// latitude: a few km off the sub-satellite point, well within range).
fn stations_under(prop: &Propagator, sats: &[usize]) -> Vec<GroundStation> {
    let mut pos = Vec::new();
    prop.positions_or_left_out(0, &mut pos);
    sats.iter()
        .enumerate()
        .map(|(i, &sat)| {
            let p = pos[sat].expect("propagates at t = 0");
            let r = (p.x * p.x + p.y * p.y + p.z * p.z).sqrt();
            let (lat, lon) = ((p.z / r).asin().to_degrees(), p.y.atan2(p.x).to_degrees());
            GroundStation::new(i, &format!("under {sat}"), lat, lon, 0.0).unwrap()
        })
        .collect()
}

/// The fixture with stations under satellites 0 and 1, ISLs between every
/// pair (up where the line of sight clears 80 km: between satellites 1, 2
/// and 3 only; satellite 0 is 100 km up and 4,300 km from them).
fn fixture_network() -> Network {
    let set = tle::parse("fixture", FIXTURE).unwrap();
    let propagator = Propagator::new(&set).unwrap();
    let stations = stations_under(&propagator, &[0, 1]);
    let n = set.sats.len() as u32;
    let pairs = (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .collect();
    Network {
        propagator,
        stations,
        isls: IslPlan {
            pairs,
            min_los_altitude_m: 80_000.0,
            dynamic: None,
        },
        gsl: GslPolicy {
            max_length_m: 1_500_000.0,
            min_elevation_deg: None,
        },
        gsl_max_per_sat: Vec::new(),
        sat_destinations: true,
        failed: Default::default(),
    }
}

fn uses(step: &StepResult, node: u32) -> bool {
    step.next_hop.contains(&node) || step.backup.contains(&node)
}

#[test]
fn unpropagable_satellite_is_left_out_of_the_steps_it_fails() {
    let net = fixture_network();
    assert_eq!(
        net.propagator.epoch.format("%Y-%m-%d %H:%M:%S").to_string(),
        "2022-09-14 18:52:59"
    );
    let mut steps = Vec::new();
    let left_out = predict::simulate(
        &net,
        Window::new(0, 60 * S, 10 * S).unwrap(),
        2,
        |s| {
            steps.push(s.clone());
            Ok(())
        },
        |_, _| {},
    )
    .expect("a satellite that cannot be propagated does not stop the run");
    assert_eq!(steps.len(), 6);
    assert_eq!(left_out.satellites.iter().copied().collect::<Vec<_>>(), [0]);
    assert_eq!(left_out.instants, 3);
    let n_nodes = net.n_nodes();
    for s in &steps {
        let out = s.t_ns >= 30 * S;
        assert_eq!(
            s.left_out,
            if out { vec![0] } else { vec![] },
            "t {}",
            s.t_ns
        );
        // Station 0 (node 5) sees only satellite 0; station 1 sees 1, 2, 3.
        assert_eq!(s.gsls_up, if out { 3 } else { 4 }, "t {}", s.t_ns);
        // Destination 2 is satellite 0's node SID (stations first).
        let to_sat0 = &s.next_hop[2 * n_nodes..3 * n_nodes];
        if out {
            // No links: nobody's next hop or alternate, and no route of its
            // own towards any destination.
            assert!(!uses(s, 0), "t {}: satellite 0 still used", s.t_ns);
            for d in 0..net.n_dests() {
                assert_eq!(s.next_hop[d * n_nodes], NONE, "t {} dest {d}", s.t_ns);
            }
            assert_eq!(to_sat0[5], NONE);
        } else {
            // Before it fails it is a node like any other.
            assert!(uses(s, 0), "t {}: satellite 0 unused", s.t_ns);
            assert_eq!(to_sat0[5], 0);
        }
        // The rest of the network is untouched: satellites 1..3 and their
        // station keep their routes to each other.
        assert_eq!(s.isls_up, 3, "t {}", s.t_ns);
        assert_ne!(s.next_hop[n_nodes + 2], NONE);
    }
    // The instant matches SGP4's own verdict (fails at 26 s, not at 25 s).
    assert!(net.propagator.teme_km(0, 25 * S).is_ok());
    let e = net.propagator.teme_km(0, 26 * S).unwrap_err().to_string();
    assert!(
        e.contains("STARLINK-4653 (53615)") && e.contains("eccentricity"),
        "{e}"
    );
}

/// A position below the Earth's surface is no position (Vallado's SGP4
/// error 6, "satellite has decayed", which the `sgp4` crate does not raise).
#[test]
fn satellite_below_the_surface_is_left_out() {
    // The Vallado verification set's sub-orbital case (perigee -51 km).
    let text = "SUBORBITAL
1 28872U 05037B   05333.02012661  .25992681  00000-0  24476-3 0  1534
2 28872  96.4736 157.9986 0303955 244.0492 110.6523 16.46015938 10708
";
    let prop = Propagator::new(&tle::parse("t", text).unwrap()).unwrap();
    let radius = |t_ns| {
        let p = prop.teme_km(0, t_ns)?;
        Ok::<f64, predict::Error>((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt())
    };
    let minutes = |m: i64| m * 60 * S;
    // SGP4 itself returns a position 52 min after the epoch, 6,374.0 km from
    // the centre (Vallado: "lost about 50 minutes from epoch"); orbitmesh
    // refuses it.
    let first_below = (0..60)
        .find(|&m| radius(minutes(m)).is_err())
        .expect("decays within the hour");
    assert_eq!(first_below, 52);
    let e = radius(minutes(first_below)).unwrap_err().to_string();
    assert!(
        e.contains("decayed") && e.contains("below the surface"),
        "{e}"
    );
    assert!(radius(minutes(first_below - 1)).unwrap() > 6378.135);
    let mut pos = Vec::new();
    prop.positions_or_left_out(minutes(first_below), &mut pos);
    assert_eq!(pos, [None]);
}

fn ctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .args(args)
        .output()
        .unwrap()
}

fn repo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("orbitmesh-tle-{name}-{}", std::process::id()))
}

fn predict_tle(tle: &Path, gs: &Path, more: &[&str], out: &Path) -> std::process::Output {
    let mut args = vec![
        "predict",
        "--tle",
        tle.to_str().unwrap(),
        "--max-gsl-m",
        "1500000",
        "--ground-stations",
        gs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(more);
    ctl(&args)
}

fn summary_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// The fixture through the CLI: exit 0, one warning for satellite 0 (not one
/// per step), and the count in summary.md and summary.json. Before the fix
/// this run failed at t = 30 s ("propagation of satellite 0 failed").
#[test]
fn cli_predict_reports_left_out_satellites() {
    let dir = tmp("fixture");
    std::fs::create_dir_all(&dir).unwrap();
    let (tle_file, gs_file) = (dir.join("fixture.tle"), dir.join("gs.txt"));
    std::fs::write(&tle_file, FIXTURE).unwrap();
    let net = fixture_network();
    let gs: String = net
        .stations
        .iter()
        .map(|g| format!("{},{},{},{},0\n", g.index, g.name, g.lat_deg, g.lon_deg))
        .collect();
    std::fs::write(&gs_file, gs).unwrap();
    let out = dir.join("out");
    let o = predict_tle(
        &tle_file,
        &gs_file,
        &[
            "--duration",
            "60s",
            "--step",
            "10s",
            "--pairs",
            "5:6",
            "--sat-destinations",
        ],
        &out,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("STARLINK-4653"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].starts_with("warning: ") && warnings[0].contains("left out"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(
            "satellites left out (SGP4 cannot propagate them): 1 (at 3 instant-satellite pairs)"
        ),
        "{md}"
    );
    // Station 0 only ever sees satellite 0, which has no ISL: never reachable.
    assert!(
        md.contains("station pairs reachable: 0 of 1 at some step (0.0%), 0 at every step"),
        "{md}"
    );
    let json = summary_json(&out);
    assert_eq!(json["left_out"]["satellites"], serde_json::json!([0]));
    assert_eq!(json["left_out"]["instants"], 3);
    assert_eq!(json["reachability"]["station_pairs"], 1);
    // Station 0's FIB entry for satellite 0's node SID: next hop 0 until the
    // satellite is left out, withdrawn at t = 30 s.
    let node: predict::schedule::NodeSchedule =
        serde_json::from_str(&std::fs::read_to_string(out.join("schedule/node-5.json")).unwrap())
            .unwrap();
    let entry = |e: &&predict::schedule::FibEntry| e.destination == 0;
    let initial = node.initial.entries.iter().find(entry).unwrap();
    assert_eq!(initial.next_hop, Some(0));
    let changes: Vec<(i64, Option<u32>)> = node
        .deltas
        .iter()
        .flat_map(|d| {
            d.changes
                .iter()
                .filter(entry)
                .map(|c| (d.activate_at_ns, c.next_hop))
        })
        .collect();
    assert_eq!(changes, [(30 * S, None)]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The four TLE files the repository ships, 10 stations, 3 steps: every run
/// completes and reports its reachable station pairs. Starlink's file holds
/// decayed satellites and debris (left out, counted); no file has a +Grid
/// header, so no ISLs are planned (ISL inference is issue 17, item 3).
#[test]
fn cli_predict_runs_the_shipped_tle_files() {
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    for f in ["Starlink", "OneWeb", "Telesat", "Iridium"] {
        let out = tmp(f);
        let tle_file = repo_data().join(format!("tle/{f}.tle"));
        let o = predict_tle(
            &tle_file,
            &gs,
            &[
                "--gs-count",
                "10",
                "--duration",
                "3s",
                "--step",
                "1s",
                "--no-schedule",
            ],
            &out,
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{f}: {stderr}");
        let json = summary_json(&out);
        assert_eq!(json["steps"], 3, "{f}");
        assert_eq!(json["reachability"]["station_pairs"], 45, "{f}");
        let left = json["left_out"]["satellites"].as_array().unwrap().len();
        let warned = stderr
            .lines()
            .filter(|l| l.starts_with("warning: propagation"))
            .count();
        assert_eq!(
            left, warned,
            "{f}: one warning per satellite left out\n{stderr}"
        );
        if f == "Starlink" {
            assert!(left > 0, "Starlink's file has decayed satellites");
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

fn pair_set(plan: &IslPlan) -> std::collections::BTreeSet<(u32, u32)> {
    plan.pairs.iter().copied().collect()
}

/// On a regular Walker shell (same slot in every plane: no phasing) the
/// inferred planes and links are exactly +Grid's, whatever the file order.
#[test]
fn inferred_grid_of_a_walker_shell_is_plus_grid() {
    let shell = predict::walker::WalkerShell::from_spec("6:8:53:550::none").unwrap();
    let mut set = shell.to_tle_set().unwrap();
    set.grid = None;
    let prop = Propagator::new(&set).unwrap();
    let (plan, found) = predict::infer::plane_grid(&prop, 4, 80_000.0);
    assert_eq!((found.shells, found.planes), (1, 6));
    let want = IslPlan::plus_grid(6, 8, 4, 80_000.0).unwrap();
    assert_eq!(pair_set(&plan), pair_set(&want));
    // File order does not matter: reversed, satellite i is 47 - i.
    set.sats.reverse();
    let (plan, _) = predict::infer::plane_grid(&Propagator::new(&set).unwrap(), 4, 80_000.0);
    let mapped: std::collections::BTreeSet<(u32, u32)> = plan
        .pairs
        .iter()
        .map(|&(a, b)| ((47 - b), (47 - a)))
        .collect();
    assert_eq!(mapped, pair_set(&want));
}

/// An irregular plane (a satellite missing): its ring closes over the gap,
/// the plane is still found, and no satellite exceeds its terminals.
#[test]
fn inferred_grid_closes_a_plane_over_a_missing_satellite() {
    let shell = predict::walker::WalkerShell::from_spec("6:8:53:550::none").unwrap();
    let mut set = shell.to_tle_set().unwrap();
    set.grid = None;
    set.sats.remove(3); // plane 0, slot 3; satellites 4.. shift down by one
    let prop = Propagator::new(&set).unwrap();
    let (plan, found) = predict::infer::plane_grid(&prop, 4, 80_000.0);
    assert_eq!((found.shells, found.planes), (1, 6));
    let pairs = pair_set(&plan);
    assert!(pairs.contains(&(2, 3)), "ring 2 - (old 4) over the gap");
    let mut deg = [0; 47];
    for &(a, b) in &plan.pairs {
        deg[a as usize] += 1;
        deg[b as usize] += 1;
    }
    assert!(deg.iter().all(|&d| (2..=4).contains(&d)), "{deg:?}");
    // 47 ring links (7 + 5 x 8) and 46 between planes: each of the 47
    // satellites picks one in the next plane, but plane 5's slot-3 satellite
    // picks a neighbour of the gap in plane 0, whose four terminals are taken.
    assert_eq!(plan.pairs.len(), 93);
}

/// The CLI over the shipped Starlink file with --infer-grid plans ISLs.
#[test]
fn cli_predict_infers_a_grid_for_real_starlink() {
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let out = tmp("starlink-grid");
    let o = predict_tle(
        &repo_data().join("tle/Starlink.tle"),
        &gs,
        &[
            "--infer-grid",
            "--gs-count",
            "10",
            "--duration",
            "2s",
            "--step",
            "1s",
            "--no-schedule",
        ],
        &out,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("orbital planes"), "{stderr}");
    let json = summary_json(&out);
    assert!(json["isls_per_step"][0].as_u64().unwrap() > 3000, "{json}");
    let _ = std::fs::remove_dir_all(&out);
}

/// --infer-grid beside a satgenpy 'P S' header is a clear error.
#[test]
fn cli_infer_grid_with_a_header_is_an_error() {
    let dir = tmp("header");
    std::fs::create_dir_all(&dir).unwrap();
    let tle_file = dir.join("grid.tle");
    std::fs::write(&tle_file, format!("1 5\n{FIXTURE}")).unwrap();
    let gs = repo_data().join("ground_stations/cities_top100.basic.txt");
    let o = predict_tle(&tle_file, &gs, &["--infer-grid"], &dir.join("out"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("--infer-grid: the constellation already has a 1 x 5 +Grid"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
