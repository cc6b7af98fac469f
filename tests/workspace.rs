//! The workspace's shape as the README uses it: `cargo build --release` at
//! the top builds every binary (issue 18), so the packages that own them
//! are default members, not only the root package of end-to-end tests.

use std::process::Command;

#[test]
fn a_plain_cargo_build_builds_every_binary() {
    let meta = metadata();
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
        ("emulation", "orbitmesh-emu"),
        ("bench", "orbitmesh-bench"),
    ] {
        assert!(
            defaults.iter().any(|m| m.contains(&format!("/{package}#"))),
            "{package} (which builds {binary}) is not a default member: {defaults:?}"
        );
    }
}

/// The declared dependencies of a workspace package (every kind: normal,
/// dev and build), by name.
fn dependencies(meta: &serde_json::Value, package: &str) -> Vec<String> {
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("no package {package}"))["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_string())
        .collect()
}

fn metadata() -> serde_json::Value {
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
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

/// Issue 13: the crates follow the layer line. The core links no OS,
/// AF_XDP or CLI library; control (predictor, orbitmesh-ctl) links only the
/// core, never the AF_XDP runtime, so it builds without a BPF toolchain
/// (scripts/test.sh also builds and tests it with no clang on the PATH).
#[test]
fn crates_depend_along_the_layer_line() {
    let meta = metadata();
    let core = dependencies(&meta, "orbitmesh-core");
    for banned in [
        "dataplane",
        "control",
        "bench",
        "libc",
        "aya",
        "xsk-rs",
        "clap",
        "tracing",
        "rustix",
        "nix",
    ] {
        assert!(
            !core.iter().any(|d| d == banned),
            "orbitmesh-core depends on {banned}: {core:?}"
        );
    }
    let control = dependencies(&meta, "control");
    for banned in [
        "dataplane",
        "bench",
        "emulation",
        "orbitmesh-lab",
        "aya",
        "xsk-rs",
        "libc",
    ] {
        assert!(
            !control.iter().any(|d| d == banned),
            "control depends on {banned} (any kind counts: its tests must build without the BPF toolchain): {control:?}"
        );
    }
    assert!(control.iter().any(|d| d == "orbitmesh-core"));
    let dataplane = dependencies(&meta, "dataplane");
    for banned in ["control", "bench"] {
        assert!(
            !dataplane.iter().any(|d| d == banned),
            "dataplane depends on {banned}: {dataplane:?}"
        );
    }
}

/// The modules of the core import only those below them: wire <- fib <-
/// pipeline, fib <- schedule <- sign; the protocol carries fib, stats,
/// schedule and signature types; nothing imports the protocol but the
/// protocol. Doc comments may mention anything.
#[test]
fn core_modules_import_along_the_layer_line() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/core/src");
    // module -> the crate modules it may use
    let allowed: &[(&str, &[&str])] = &[
        ("wire", &["wire"]),
        ("stats", &["stats"]),
        ("file", &["file"]),
        ("time", &["time"]),
        ("cli", &["cli"]),
        ("fib", &["fib", "wire", "file"]),
        ("pipeline", &["pipeline", "fib", "wire", "stats"]),
        ("schedule", &["schedule", "fib"]),
        ("sign", &["sign", "fib", "schedule"]),
        (
            "protocol",
            &["protocol", "fib", "stats", "file", "schedule", "sign"],
        ),
    ];
    for (module, may_use) in allowed {
        let mut files = Vec::new();
        let dir = std::path::Path::new(root).join(module);
        if dir.is_dir() {
            for e in std::fs::read_dir(&dir).unwrap() {
                files.push(e.unwrap().path());
            }
        } else {
            files.push(std::path::Path::new(root).join(format!("{module}.rs")));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for (i, _) in code.match_indices("crate::") {
                    let used: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        may_use.contains(&used.as_str()),
                        "{}:{}: {module} uses crate::{used}, against the layer line: {line}",
                        f.display(),
                        n + 1
                    );
                }
            }
        }
    }
}
