//! `orbitmesh-bench --version`, as every orbitmesh binary answers it
//! (issue 18).

#[test]
fn the_harness_tells_its_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orbitmesh-bench"))
        .arg("--version")
        .output()
        .expect("run orbitmesh-bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        format!("orbitmesh-bench {}\n", env!("CARGO_PKG_VERSION"))
    );
}
