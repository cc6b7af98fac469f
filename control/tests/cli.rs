//! The command line's behaviour as a Unix tool, run as a built binary.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const SIGPIPE: i32 = 13;

/// `orbitmesh-ctl fib diff A B | head -c 100`: when the reader goes away,
/// the program ends quietly like other Unix tools (killed by SIGPIPE),
/// instead of panicking with "failed printing to stdout: Broken pipe".
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = std::env::temp_dir().join(format!("om-ctl-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let head = "[[ports]]\nname = \"p\"\n";
    // 8000 labels only in A: about 130 KB of "- label N" lines, far more
    // than a pipe buffers, so the program is still writing when the
    // reader closes its end.
    let mut a = format!("version = 1\n{head}");
    for l in 16000..24000 {
        a.push_str(&format!("[[labels]]\nlabel = {l}\naction = \"pop\"\n"));
    }
    let (pa, pb) = (dir.join("a.toml"), dir.join("b.toml"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, format!("version = 2\n{head}")).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .args(["fib", "diff"])
        .args([&pa, &pb])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run orbitmesh-ctl");
    let mut first = [0u8; 100];
    child
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut first)
        .expect("the diff starts");
    assert!(String::from_utf8_lossy(&first).starts_with("- label "));
    // The read end is closed here (the ChildStdout was dropped).
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err, "", "nothing to say on stderr");
    assert_eq!(
        out.status.signal(),
        Some(SIGPIPE),
        "ended by SIGPIPE like other Unix tools: {:?}",
        out.status
    );
}

fn ctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .args(args)
        .output()
        .expect("run orbitmesh-ctl")
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("om-ctl-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `--config DIR/sat.toml` with `control_socket = "sat.sock"`: the socket
/// is DIR/sat.sock, wherever orbitmesh-ctl runs (issue 18).
#[test]
fn a_configs_relative_socket_is_beside_the_config() {
    let dir = Scratch::new("relconf");
    let conf = dir.file("sat.toml", "control_socket = \"sat.sock\"\n");
    let out = ctl(&["stats", "--config", &conf]);
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("cannot connect to {}", dir.0.join("sat.sock").display());
    assert!(err.contains(&want), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
}

/// The documented exit codes (README): 0 done, 1 refused by the
/// dataplane, 2 bad input, 3 dataplane unreachable; `fib diff` as diff(1):
/// 0 the same, 1 different, 2 trouble (issue 18).
#[test]
fn exit_codes_follow_the_documentation() {
    let dir = Scratch::new("codes");
    let head = "[[ports]]\nname = \"p\"\n[[labels]]\nlabel = 16001\naction = \"pop\"\n";
    let a = dir.file("a.toml", &format!("version = 1\n{head}"));
    let b = dir.file("b.toml", &format!("version = 2\n{head}"));
    let missing = dir.0.join("missing.toml");
    let missing = missing.to_str().unwrap();
    let sock = dir.0.join("none.sock");
    let sock = sock.to_str().unwrap();
    let gs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/ground_stations/cities_top100.basic.txt"
    );
    let cases: &[(&[&str], i32, &str)] = &[
        (&["fib", "diff", &a, &a], 0, ""),
        (&["fib", "diff", &a, &b], 1, ""),
        (&["fib", "diff", &a, missing], 2, "missing.toml"),
        // Bad input is refused before the dataplane is asked.
        (
            &["fib", "show", "--prefix", "10.2.3", "--socket", sock],
            2,
            "--prefix \"10.2.3\": \"10.2.3\" is not an IPv4 or IPv6 address",
        ),
        (
            &["fib", "show", "--label", "4294967295", "--socket", sock],
            2,
            "--label 4294967295: an MPLS label is 20 bits (0-1048575)",
        ),
        (
            &["fib", "check", "/dev/zero"],
            2,
            "/dev/zero: the file is larger than 268435456 bytes",
        ),
        (
            &["stats", "--watch", "0s", "--socket", sock],
            2,
            "--watch \"0s\": the interval must be at least 100ms",
        ),
        (
            &["stats", "--watch", "100ms", "--socket", sock],
            3,
            "cannot connect",
        ),
        (
            &["run", "--schedule", sock, "--wiring", "/dev/zero"],
            2,
            "/dev/zero: the file is larger than 67108864 bytes",
        ),
        (&["fib", "show", "--socket", sock], 3, "cannot connect"),
        (
            &["predict", "--preset", "nope", "--ground-stations", gs],
            2,
            "unknown preset \"nope\"",
        ),
        (
            &["predict", "--walker", "6:x", "--ground-stations", gs],
            2,
            "walker spec \"6:x\"",
        ),
        (
            &["predict", "--tle", missing, "--ground-stations", gs],
            2,
            "missing.toml",
        ),
    ];
    for (args, code, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
            .args(*args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run orbitmesh-ctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        assert!(
            err.lines().count() <= 1 && !err.contains("acktrace"),
            "{args:?}: one line, no backtrace: {err}"
        );
        if let Some(first) = err.find("(os error") {
            assert!(!err[first + 1..].contains("(os error"), "said twice: {err}");
        }
    }
    let same = ctl(&["fib", "diff", &a, &a]);
    assert_eq!(String::from_utf8_lossy(&same.stdout), "no differences\n");
}

/// orbitmesh-ctl tells its version (emulation/tests: orbitmesh-emu); `predict --help`
/// promises only the files predict writes (issue 18).
#[test]
fn versions_and_what_predict_help_promises() {
    let out = Command::new(env!("CARGO_BIN_EXE_orbitmesh-ctl"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let want = format!("orbitmesh-ctl {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let help = String::from_utf8_lossy(&ctl(&["predict", "--help"]).stdout).into_owned();
    assert!(help.contains("pairs/rtt_<a>_to_<b>.svg"), "{help}");
    assert!(
        !help.contains("path_<a>_to_<b>.svg") && !help.contains(".csv and .svg"),
        "{help}"
    );
}

/// `run` refuses a `--dataplane` override with no socket before it loads
/// anything (it used to drive node 16 through the socket "").
#[test]
fn run_refuses_an_empty_dataplane_socket() {
    let dir = Scratch::new("rundp");
    let wiring = dir.file("w.toml", "[nodes.16]\nsocket = \"n16.sock\"\n");
    let out = ctl(&[
        "run",
        "--schedule",
        dir.0.to_str().unwrap(),
        "--wiring",
        &wiring,
        "--dataplane",
        "16=",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--dataplane \"16=\": expected NODE=SOCKET"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
}

/// `run` refuses to drive a node over its remote channel unsigned (every
/// order would be refused there), and a wiring naming it badly, before it
/// loads anything; a `--dataplane` override puts the node back on a socket.
#[test]
fn run_refuses_a_remote_node_without_a_key() {
    let dir = Scratch::new("runremote");
    let wiring = dir.file("w.toml", "[nodes.16]\nremote = \"10.99.0.17:7470\"\n");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--schedule",
            dir.0.to_str().unwrap(),
            "--wiring",
            &wiring,
        ];
        a.extend_from_slice(extra);
        let out = ctl(&a);
        (
            String::from_utf8_lossy(&out.stderr).to_string(),
            out.status.code(),
        )
    };
    let (err, code) = run(&[]);
    assert!(
        err.contains("node 16 is reached over its remote channel (tcp://10.99.0.17:7470), which takes only signed orders: give --key"),
        "{err}"
    );
    assert_eq!(code, Some(2), "{err}");
    // Overridden with a socket: past the wiring (to the missing schedule).
    let (err, _) = run(&["--dataplane", "16=n16.sock"]);
    assert!(!err.contains("remote channel"), "{err}");
    let bad = dir.file("bad.toml", "[nodes.16]\nremote = \"10.99.0.17\"\n");
    let out = ctl(&[
        "run",
        "--schedule",
        dir.0.to_str().unwrap(),
        "--wiring",
        &bad,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[nodes.16]: remote \"10.99.0.17\": expected HOST:PORT"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
}

/// `run --events PATH` that cannot be written is bad input (exit 2),
/// refused before any dataplane is driven.
#[test]
fn run_refuses_an_events_file_it_cannot_write() {
    let dir = Scratch::new("runev");
    let sched = dir.0.join("schedule");
    std::fs::create_dir_all(&sched).unwrap();
    std::fs::write(
        sched.join("node-0.json"),
        r#"{"format":"orbitmesh-fib-schedule/2","node":0,"node_label":16000,"kind":"satellite","srgb_base":16000,
"epoch_utc":"2000-01-01T00:00:00Z","step_ns":100000000,
"initial":{"activate_at_ns":0,"entries":[]},"deltas":[]}"#,
    )
    .unwrap();
    let wiring = dir.file("w.toml", "[nodes.0]\nsocket = \"n0.sock\"\n");
    let out = ctl(&[
        "run",
        "--schedule",
        sched.to_str().unwrap(),
        "--wiring",
        &wiring,
        "--events",
        "/nonexistent-dir/events.jsonl",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--events /nonexistent-dir/events.jsonl: "),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
}
