//! The workspace's shape as the README uses it: `cargo build --release` at
//! the top builds every binary (issue 18), so the packages that own them
//! are default members, not only the root package of end-to-end tests.

mod support;

use support::metadata;

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

/// The runtime's modules (dataplane/src) import one another without a
/// circle (issue 13): what a module uses, outside its tests, never uses
/// it back, however indirectly.
#[test]
fn runtime_modules_import_without_a_circle() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dataplane/src"));
    let mut uses: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for e in std::fs::read_dir(root).unwrap() {
        let path = e.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_string();
        if module == "lib" || module == "bin" {
            continue;
        }
        let files: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|f| !f.file_stem().unwrap().to_str().unwrap().ends_with("tests"))
                .collect()
        } else {
            vec![path]
        };
        let set = uses.entry(module.clone()).or_default();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let used: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if used != module {
                        set.insert(used);
                    }
                }
            }
        }
    }
    // Depth-first search for a path back to the start.
    fn reaches(
        uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        uses.get(from)
            .into_iter()
            .flatten()
            .any(|m| m == to || (seen.insert(m.clone()) && reaches(uses, m, to, seen)))
    }
    for m in uses.keys() {
        assert!(
            !reaches(&uses, m, m, &mut Default::default()),
            "dataplane module {m} uses itself through others: {uses:?}"
        );
    }
}

/// Every script that runs `target/release/BIN` builds BIN first: each
/// binary a script runs belongs to a package its `cargo build` names
/// (`-p PKG`, or `--bin BIN`). Moving a binary to another crate without
/// the scripts following (orbitmesh-emu, once) fails here, not on a
/// user's fresh machine. `scripts/demo-build.py PKG...` (the demos' build
/// with progress) counts as `cargo build --release -p PKG...`.
#[test]
fn scripts_build_the_binaries_they_run() {
    let meta = metadata();
    let bins_of = |package: &str| -> Vec<String> {
        meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == package)
            .flat_map(|p| p["targets"].as_array().unwrap().iter())
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "sh") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut built: Vec<String> = Vec::new();
        // `scripts/demo-build.py PKG...` runs `cargo build --release -p PKG...`.
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((_, pkgs)) = line.split_once("demo-build.py") {
                for p in pkgs.split_whitespace() {
                    built.extend(bins_of(p));
                }
            }
        }
        for line in text
            .lines()
            .filter(|l| l.contains("cargo build") && l.contains("--release"))
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            for w in words.windows(2) {
                // `-p control)` in a subshell: the name without punctuation.
                let name = w[1].trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
                match w[0] {
                    "-p" => built.extend(bins_of(name)),
                    "--bin" => built.push(name.to_string()),
                    _ => {}
                }
            }
        }
        for (i, _) in text.match_indices("target/release/") {
            let bin: String = text[i + 15..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if bin.is_empty() || !bin.starts_with("orbitmesh") && !bins_of("bench").contains(&bin) {
                continue;
            }
            assert!(
                built.contains(&bin),
                "{} runs target/release/{bin} but its cargo build does not build it (builds: {built:?})",
                path.display()
            );
        }
    }
}
