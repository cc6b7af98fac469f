//! `orbitmesh-emu run` refuses options that cannot make a run, with a
//! clear error, before it builds anything (and so without root).

use std::process::Command;

/// `orbitmesh-emu run` with a small scenario and `extra`: exit code and
/// standard error.
fn run(extra: &[&str]) -> (Option<i32>, String) {
    let stations = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../control/data/ground_stations/cities_top100.basic.txt"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_orbitmesh-emu"))
        .args(["run", "--walker", "4:4:70:1500", "--gs-count", "3"])
        .args(["--ground-stations", stations, "--duration", "300s"])
        .args(["--out", "/nonexistent/orbitmesh-emu-options"])
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_fast_path_is_refused_while_links_should_hold_their_delay() {
    // The XDP fast path switches transit frames in the kernel: they never
    // reach the workers' delay line, so the propagation delay cannot be
    // emulated; the run must say so rather than report host latency as
    // the orbits'.
    let (code, err) = run(&["--fast-path", "xdp"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--fast-path xdp") && err.contains("add --no-delay"),
        "{err}"
    );
    assert!(err.contains("propagation delay"), "{err}");
}

#[test]
fn an_unknown_fast_path_mode_is_refused_by_name() {
    let (code, err) = run(&["--fast-path", "dpdk", "--no-delay"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dpdk") && err.contains("xdp") && err.contains("off"),
        "{err}"
    );
}
