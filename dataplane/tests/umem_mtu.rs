//! orbitmesh-dp refuses, at start, a FIB whose port MTU its AF_XDP buffers
//! cannot carry, and says what the limit is (load and stage are covered by
//! the unit tests in src/shared.rs).
//!
//! The refusal comes before anything is attached, so no root is needed. As
//! root, the process still runs in a network namespace of its own (`unshare
//! --net`): should it wrongly accept the FIB, it attaches to that namespace's
//! loopback only, and is stopped (with its namespace) when the test gives up.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_fib_with_a_port_mtu_above_the_umem_limit_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("om-umem-mtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fib = dir.join("jumbo.fib.toml");
    std::fs::write(
        &fib,
        "version = 1\n[[ports]]\nname = \"isl0\"\nmtu = 9000\n",
    )
    .unwrap();
    let dp = env!("CARGO_BIN_EXE_orbitmesh-dp");
    let mut cmd = if dataplane::sys::cred::euid() == 0 {
        let mut c = Command::new("unshare");
        c.args(["--net", dp]);
        c
    } else {
        Command::new(dp)
    };
    let mut child = cmd
        .args(["--port", "isl0=lo", "--fib"])
        .arg(&fib)
        .arg("--socket")
        .arg(dir.join("dp.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("orbitmesh-dp accepted a FIB with port MTU 9000 and started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("FIB refused: port \"isl0\": mtu: 9000 exceeds 1774, the largest L3 packet"),
        "{err}"
    );
}
