//! Issue 18, completeness: every binary of the workspace answers
//! `--version`; the shell completions and man pages the binaries generate
//! from their clap definitions exist and mention every subcommand
//! (orbitmesh-ctl) and every flag (orbitmesh-dp), as `--help` lists them.

mod support;

use std::path::Path;
use std::process::Command;
use support::bin;

/// stdout of a built binary; panics unless it exits 0.
fn stdout(program: &str, args: &[&str]) -> String {
    let out = Command::new(bin(program))
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The binaries of every workspace package (cargo metadata).
fn workspace_binaries() -> Vec<String> {
    let meta = support::metadata();
    let mut bins = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        for t in p["targets"].as_array().expect("targets") {
            if t["kind"]
                .as_array()
                .expect("kind")
                .iter()
                .any(|k| k == "bin")
            {
                bins.push(t["name"].as_str().expect("name").to_string());
            }
        }
    }
    bins
}

#[test]
fn every_binary_answers_version() {
    let bins = workspace_binaries();
    assert!(bins.len() >= 4, "{bins:?}");
    for b in &bins {
        let v = stdout(b, &["--version"]);
        assert_eq!(v, format!("{b} {}\n", env!("CARGO_PKG_VERSION")), "{b}");
    }
}

/// The subcommands `--help` lists under "Commands:" (without `help`).
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut a = args.to_vec();
    a.push("--help");
    stdout("orbitmesh-ctl", &a)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every subcommand path of orbitmesh-ctl: ["fib"], ["fib", "load"], ...
fn ctl_command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for top in subcommands(&[]) {
        let nested = subcommands(&[&top]);
        paths.push(vec![top.clone()]);
        paths.extend(nested.into_iter().map(|n| vec![top.clone(), n]));
    }
    paths
}

#[test]
fn ctl_completions_and_man_pages_cover_every_subcommand() {
    let paths = ctl_command_paths();
    for expected in [
        &["fib", "rollback"][..],
        &["completions"],
        &["man"],
        &["schedule", "load"],
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected:?} not in {paths:?}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout("orbitmesh-ctl", &["completions", shell]);
        for p in &paths {
            let name = p.last().expect("a name");
            assert!(
                script.contains(name.as_str()),
                "{shell} completions lack {p:?}"
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("om-man-ctl-{}", std::process::id()));
    stdout("orbitmesh-ctl", &["man", "--out", dir.to_str().unwrap()]);
    let main = read(&dir.join("orbitmesh-ctl.1"));
    for p in &paths {
        let page = format!("orbitmesh-ctl-{}", p.join("-"));
        let text = read(&dir.join(format!("{page}.1")));
        assert!(
            text.contains(&page.replace('-', "\\-")),
            "{page}.1 names itself"
        );
        if p.len() == 1 {
            assert!(main.contains(&p[0]), "orbitmesh-ctl.1 lacks {}", p[0]);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn dp_completions_and_man_page_cover_every_flag() {
    let help = stdout("orbitmesh-dp", &["--help"]);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    for f in [
        "--check-config",
        "--completions",
        "--man",
        "--fib",
        "--port",
    ] {
        assert!(flags.contains(&f), "{f} not in --help");
    }
    let dir = std::env::temp_dir().join(format!("om-man-dp-{}", std::process::id()));
    stdout("orbitmesh-dp", &["--man", dir.to_str().unwrap()]);
    let man = read(&dir.join("orbitmesh-dp.1")).replace("\\-", "-");
    std::fs::remove_dir_all(&dir).unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout("orbitmesh-dp", &["--completions", shell]);
        for f in &flags {
            // fish lists long flags as `-l NAME`.
            let bare = f.trim_start_matches('-');
            assert!(
                script.contains(f) || script.contains(&format!("-l {bare}")),
                "{shell} completions lack {f}"
            );
        }
    }
    for f in &flags {
        assert!(man.contains(f), "orbitmesh-dp.1 lacks {f}");
    }
}
