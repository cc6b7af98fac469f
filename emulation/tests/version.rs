//! The emulator tells its version like every binary of the project.

#[test]
fn the_emulator_tells_its_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orbitmesh-emu"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let want = format!("orbitmesh-emu {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
