//! `orbitmesh-ctl` against a dataplane's control socket served in this
//! process (no AF_XDP, no root): what operators see when they change FIBs.

mod support;
use support::{bin, TestDataplane};

/// Runs orbitmesh-ctl: exit code, stdout, stderr.
fn ctl(args: &[&str]) -> (Option<i32>, String, String) {
    let o = std::process::Command::new(bin("orbitmesh-ctl"))
        .args(args)
        .output()
        .expect("run orbitmesh-ctl");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

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
        ctl(&a)
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

/// `schedule load|show|clear` as an operator uses them: a schedule file is
/// checked before it is sent, refused whole with the reason (exit 1 from
/// the dataplane, 2 for a bad file), shown as a table, and cleared.
#[test]
fn schedules_are_loaded_shown_and_cleared() {
    use orbitmesh_core::fib::FibSpec;
    use orbitmesh_core::schedule::Schedule;
    let dp = TestDataplane::start("ctl-schedule", &["isl0"]);
    let sock = dp.socket().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--socket", &sock]);
        ctl(&a)
    };
    let fib = |v: u64| {
        FibSpec::parse(&format!(
            "version = {v}\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = {}\naction = \"pop\"\n",
            16000 + v
        ))
        .unwrap()
    };
    let now = orbitmesh_core::time::now_ns();
    let sched = |node: &str, serial| {
        Schedule::delta_encoded(
            node,
            serial,
            &[
                (now - 1_000_000_000, fib(1)),
                (now + 3_600_000_000_000, fib(2)),
            ],
        )
    };
    let file = |name: &str, s: &Schedule| dp.file(name, &serde_json::to_string(s).unwrap());
    let good = file("good.json", &sched("n0", 3));

    let (code, out, err) = run(&["schedule", "load", &good]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("node n0  serial 3"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with(" * 0 ")).count(),
        1,
        "{out}"
    );
    let (code, _, err) = run(&["schedule", "load", &good]);
    assert_eq!(
        code,
        Some(0),
        "the same schedule again changes nothing: {err}"
    );

    let other = file("other.json", &sched("n7", 4));
    let (code, _, err) = run(&["schedule", "load", &other]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("schedule refused, the running one stays"),
        "{err}"
    );
    assert!(err.contains("for node \"n7\""), "{err}");
    let (code, _, err) = run(&["schedule", "load", &dp.file("bad.json", "{\"node\": 1}")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a schedule"), "{err}");

    let (code, out, _) = run(&["schedule", "show", "--json"]);
    assert_eq!(code, Some(0));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["serial"], 3);
    assert_eq!(info["entries"].as_array().unwrap().len(), 2);

    let (code, _, err) = run(&["fib", "load", &dp.file("f.toml", &fib(9).to_toml())]);
    assert_eq!(code, Some(1), "a FIB by hand while a schedule runs: {err}");
    assert!(err.contains("schedule clear"), "{err}");
    let (code, out, _) = run(&["schedule", "clear"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no schedule held"), "{out}");
    let (code, _, err) = run(&["schedule", "clear"]);
    assert_eq!(code, Some(1), "{err}");
}

/// Issue 15 from the operator's side: `keygen` makes a key pair (the secret
/// readable by its owner only, never overwritten); a dataplane trusting the
/// public key refuses unsigned orders and takes signed ones.
#[test]
fn signed_orders_with_a_generated_key() {
    use orbitmesh_core::fib::FibSpec;
    use orbitmesh_core::schedule::Schedule;
    use orbitmesh_core::sign::{Trust, TrustedKey};
    use std::os::unix::fs::PermissionsExt;
    let dp = TestDataplane::start("ctl-signed", &["isl0"]);
    let sock = dp.socket().to_str().unwrap().to_string();
    let key = dp.dir().join("ground.key");
    let key = key.to_str().unwrap();
    let (code, public, err) = ctl(&["keygen", "--out", key]);
    assert_eq!(code, Some(0), "{err}");
    let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secret key is its owner's only");
    assert_eq!(
        std::fs::read_to_string(format!("{key}.pub")).unwrap(),
        public
    );
    let (code, _, err) = ctl(&["keygen", "--out", key]);
    assert_eq!(code, Some(2), "an existing key is never overwritten: {err}");

    dp.node().schedule.set_trust(Trust {
        keys: vec![TrustedKey {
            name: "ground-1".into(),
            key: public.trim().parse().unwrap(),
            not_before_ns: None,
            not_after_ns: None,
        }],
        revoked: vec![],
    });
    let fib = FibSpec::parse(
        "version = 1\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = 16001\naction = \"pop\"\n",
    )
    .unwrap();
    let s = Schedule::delta_encoded("n0", 1, &[(orbitmesh_core::time::now_ns(), fib)]);
    let file = dp.file("s.json", &serde_json::to_string(&s).unwrap());
    let (code, _, err) = ctl(&["schedule", "load", &file, "--socket", &sock]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unsigned"), "{err}");
    let (code, out, err) = ctl(&["schedule", "load", &file, "--key", key, "--socket", &sock]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("signed orders only"), "{out}");
    let (code, _, err) = ctl(&["schedule", "clear", "--socket", &sock]);
    assert_eq!(code, Some(1), "an unsigned clear: {err}");
    let (code, out, err) = ctl(&["schedule", "clear", "--key", key, "--socket", &sock]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("serial 2"), "{out}");
    let (code, out, _) = ctl(&["stats", "--json", "--socket", &sock]);
    assert_eq!(code, Some(0));
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    let unsigned = st["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == "order_unsigned")
        .map(|c| c[1].as_u64().unwrap());
    assert_eq!(unsigned, Some(2), "{out}");
}

/// `stats --watch` into a pipe: no clear-screen escapes, each draw after a
/// blank line, and the rate columns under headers (issue 18).
#[test]
fn stats_watch_into_a_pipe_writes_plain_text_with_rate_headers() {
    let dp = TestDataplane::start("ctl-watch", &["isl0"]);
    let mut child = std::process::Command::new(bin("orbitmesh-ctl"))
        .args(["stats", "--watch", "100ms", "--socket"])
        .arg(dp.socket())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run orbitmesh-ctl");
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(!out.contains('\x1b'), "escapes in a pipe: {out:?}");
    let draws = out.matches("node ").count();
    assert!(draws >= 2, "{out}");
    assert_eq!(out.matches("\n\nnode ").count(), draws - 1, "{out}");
    assert!(out.contains("        rx rate        tx rate\n"), "{out}");
    assert!(
        out.contains("counter                           total           rate\n"),
        "{out}"
    );
}

/// `fib show` names next hops and groups as the FIB file did (text and
/// JSON), writes TTL models as the file does, and a query that matches
/// nothing says so and exits 1, like grep(1) (issue 18).
#[test]
fn fib_show_uses_the_given_names_and_says_when_nothing_matches() {
    let dp = TestDataplane::start("ctl-show", &["isl0", "isl1"]);
    let sock = dp.socket().to_str().unwrap().to_string();
    let fib = dp.file(
        "named.toml",
        concat!(
            "version = 4\nttl_egress = \"pipe\"\n",
            "[[ports]]\nname = \"isl0\"\n[[ports]]\nname = \"isl1\"\n",
            "[[next_hops]]\nname = \"sat2\"\nport = \"isl0\"\ndst_mac = \"02:00:00:00:02:01\"\n",
            "src_mac = \"02:00:00:00:01:01\"\nbackup = \"sat3\"\n",
            "[[next_hops]]\nname = \"sat3\"\nport = \"isl1\"\ndst_mac = \"02:00:00:00:03:01\"\n",
            "src_mac = \"02:00:00:00:01:02\"\n",
            "[[groups]]\nname = \"east\"\nnext_hops = [\"sat2\", \"sat3\"]\n",
            "[[labels]]\nlabel = 16002\naction = \"swap\"\nnext_hop = \"sat2\"\n",
            "[[routes]]\nprefix = \"10.2.0.0/16\"\ngroup = \"east\"\n",
        ),
    );
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--socket", &sock]);
        ctl(&a)
    };
    let (code, _, err) = run(&["fib", "load", &fib]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&["fib", "show"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("TTL ingress uniform egress pipe"), "{out}");
    assert!(
        out.contains("16002    swap 16002 via sat2 dev isl0 dst 02:00:00:00:02:01 backup sat3"),
        "{out}"
    );
    assert!(out.contains("10.2.0.0/16 ecmp east (2 paths)"), "{out}");
    assert!(!out.contains("nh0") && !out.contains("g0"), "{out}");
    let (code, json, _) = run(&["fib", "show", "--json"]);
    assert_eq!(code, Some(0));
    for name in ["\"sat2\"", "\"sat3\"", "\"east\""] {
        assert!(json.contains(&format!("\"name\": {name}")), "{json}");
    }
    for (query, what) in [
        (["--label", "99"], "label 99"),
        (["--prefix", "192.0.2.1"], "192.0.2.1"),
    ] {
        let mut args = vec!["fib", "show"];
        args.extend(query);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?}: no empty table");
        assert_eq!(
            err,
            format!("orbitmesh-ctl: error: no entry for {what} in FIB version 4\n")
        );
    }
}

/// With the XDP fast path on (its counters stored in `node.fast`, as
/// housekeeping does every 20 ms), `stats` shows both paths side by side
/// and summed, `--json` carries them, and `--clear` baselines them too;
/// with it off, one line says so (issue 16).
#[test]
fn stats_show_the_fast_path_beside_af_xdp_and_clear_both() {
    use dataplane::sys::fast_maps::FastCounters;
    use orbitmesh_core::stats::DropReason;
    use std::sync::atomic::Ordering;
    let dp = TestDataplane::start("ctl-fast", &["isl0", "isl1"]);
    let sock = dp.socket().to_str().unwrap().to_string();
    let stats = |args: &[&str]| {
        let mut a = vec!["stats"];
        a.extend(args);
        a.extend(["--socket", &sock]);
        let (code, out, err) = ctl(&a);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    let out = stats(&[]);
    assert!(
        out.ends_with("\nfast path (XDP): off, the AF_XDP workers see every frame\n"),
        "{out}"
    );
    assert!(!out.contains("by path"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&stats(&["--json"])).unwrap();
    assert!(v.get("fast_path").is_none(), "{v}");

    let node = dp.node();
    let w = &node.workers[0];
    w.ports[1].tx.store(8, Ordering::Relaxed);
    let mut f = FastCounters {
        forwarded: 900,
        punted: 12,
        ..Default::default()
    };
    f.tx[1] = 900;
    f.drops[DropReason::NoLabelRoute as usize] = 3;
    node.fast.store(&f, 2);
    let out = stats(&[]);
    let row = |out: &str, name: &str| -> Vec<u64> {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("no {name} row in\n{out}"));
        line[name.len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect()
    };
    assert_eq!(row(&out, "tx isl1"), [900, 8, 908], "{out}");
    assert_eq!(row(&out, "tx isl0"), [0, 0, 0], "{out}");
    assert_eq!(row(&out, "no_label_route"), [3, 0, 3], "{out}");
    assert!(
        out.contains("\npunted to slow path                  12  ("),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&stats(&["--json"])).unwrap();
    assert_eq!(v["fast_path"]["forwarded"], 900, "{v}");
    assert_eq!(v["fast_path"]["tx"][1], 900, "{v}");
    assert_eq!(v["ports"][1]["counters"]["tx"], 8, "{v}");

    // Cleared, then 100 more through the fast path, 2 through AF_XDP.
    let v: serde_json::Value = serde_json::from_str(&stats(&["--clear", "--json"])).unwrap();
    assert_eq!(v["fast_path"]["forwarded"], 0, "{v}");
    assert_eq!(v["fast_path"]["tx"][1], 0, "{v}");
    f.forwarded += 100;
    f.tx[1] += 100;
    node.fast.store(&f, 2);
    w.ports[1].tx.store(10, Ordering::Relaxed);
    let out = stats(&[]);
    assert_eq!(row(&out, "tx isl1"), [100, 2, 102], "{out}");
    assert!(out.contains("counters cleared"), "{out}");
    assert!(
        out.contains("\npunted to slow path                   0  ("),
        "{out}"
    );
}

/// `stats` against a dataplane that predates the fast path: its reply has
/// no `fast_path` field; it is shown as before, with the fast path off.
#[test]
fn stats_read_a_reply_without_the_fast_path_field() {
    use orbitmesh_core::protocol::{read_frame_enc, write_frame, ENC_JSON};
    let dir = std::env::temp_dir().join(format!("om-ctl-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("old.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // A reply as a dataplane of before issue 16 wrote it.
    let old = r#"{"result":"stats","node":"n9","now_ns":5000000000,"fib_version":4,
        "counters":[["rx",12],["forwarded",11],["ttl_expired",1]],
        "ports":[{"name":"isl0","carrier":true,"admin_up":true,"gone":false,
        "counters":{"rx":12,"tx":11,"rx_bytes":768,"tx_bytes":704,"tx_ring_full":0,
        "fill_ring_empty":0,"kernel":{"rx_ring_full":0,"rx_fill_empty":0,"rx_dropped":0,
        "invalid_descs":0}}}]}"#;
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let (_, req) = read_frame_enc(&mut s).unwrap();
            assert_eq!(req, br#"{"op":"stats"}"#);
            write_frame(&mut s, ENC_JSON, old.as_bytes()).unwrap();
        }
    });
    let s = sock.to_str().unwrap();
    let (code, out, err) = ctl(&["stats", "--socket", s]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("node n9  FIB version 4\n"), "{out}");
    assert!(
        out.contains("\nforwarded                            11 \n"),
        "{out}"
    );
    assert!(
        out.ends_with("\nfast path (XDP): off, the AF_XDP workers see every frame\n"),
        "{out}"
    );
    let (code, out, err) = ctl(&["stats", "--json", "--socket", s]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["fib_version"], 4);
    assert!(v.get("fast_path").is_none(), "{v}");
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
