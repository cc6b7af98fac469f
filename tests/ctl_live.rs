//! `orbitmesh-ctl` against a dataplane's control socket served in this
//! process (no AF_XDP, no root): what operators see when they change FIBs.

mod support;
use support::{bin, TestDataplane};

/// `fib load` warns (and still loads) on what is often a mistake; a
/// rollback goes back one FIB once and never forward again (issue 18).
#[test]
fn risky_loads_are_warned_about_and_rollback_does_not_toggle() {
    let dp = TestDataplane::start("ctl-change", &["isl0"]);
    let sock = dp.socket().to_str().unwrap().to_string();
    let fib = |v: u32| {
        dp.file(
            &format!("v{v}.toml"),
            &format!("version = {v}\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = 16001\naction = \"pop\"\n"),
        )
    };
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--socket", &sock]);
        let o = std::process::Command::new(bin("orbitmesh-ctl"))
            .args(&a)
            .output()
            .expect("run orbitmesh-ctl");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            err,
        )
    };
    let (v5, v3, v6, v7) = (fib(5), fib(3), fib(6), fib(7));
    let (code, _, err) = run(&["fib", "load", &v5]);
    assert_eq!(
        (code, err.as_str()),
        (Some(0), ""),
        "a plain load: no warning"
    );
    let (code, out, err) = run(&["fib", "load", &v3, "--at", "+1h"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("staged: FIB version 3"), "{out}");
    assert!(
        err.contains("warning: FIB version 3 is lower than the active version 5"),
        "{err}"
    );
    let (code, _, err) = run(&["fib", "load", &v6, "--at", "+90min"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning: FIB version 3, staged for "), "{err}");
    assert!(
        err.contains("is replaced and will not take effect"),
        "{err}"
    );
    let (code, _, err) = run(&["fib", "load", &v7, "--at", "2020-01-01T00:00:00Z"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("is replaced"), "{err}");
    assert!(
        err.contains("warning: the activation time 2020-01-01T00:00:00.000Z is "),
        "{err}"
    );
    assert!(
        err.contains("in the past: FIB version 7 takes effect at once"),
        "{err}"
    );

    let (code, out, _) = run(&["fib", "rollback"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "rolled back: FIB version 5 active\n");
    let (code, _, err) = run(&["fib", "rollback"]);
    assert_eq!(code, Some(1), "a second rollback is refused: {err}");
    assert!(err.contains("no previous FIB to roll back to"), "{err}");
}

