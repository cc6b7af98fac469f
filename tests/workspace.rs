//! The workspace's shape as the README uses it: `cargo build --release` at
//! the top builds every binary (issue 18), so the packages that own them
//! are default members, not only the root package of end-to-end tests.

use std::process::Command;

#[test]
fn a_plain_cargo_build_builds_every_binary() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let defaults: Vec<&str> = meta["workspace_default_members"]
        .as_array()
        .expect("workspace_default_members (cargo >= 1.71)")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    // The packages whose binaries the README runs from target/release/.
    for (package, binary) in [
        ("dataplane", "orbitmesh-dp"),
        ("control", "orbitmesh-ctl"),
        ("bench", "orbitmesh-bench"),
    ] {
        assert!(
            defaults.iter().any(|m| m.contains(&format!("/{package}#"))),
            "{package} (which builds {binary}) is not a default member: {defaults:?}"
        );
    }
}
