//! The lab against the kernel: namespaces, a veth pair with addresses that
//! carries a ping, children stopped by PID, and nothing left behind on drop
//! or from a "crashed" run. Needs root; skips with a message otherwise.

use orbitmesh_lab::{Error, Lab, Veth, VethEnd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

#[test]
fn a_lab_builds_a_link_runs_processes_and_removes_everything() {
    if !is_root() {
        eprintln!("skipping: network namespaces need root");
        return;
    }
    let prefix = format!("omlab{}", std::process::id());
    let (a, b);
    {
        let mut lab = Lab::new(&prefix).unwrap();
        (a, b) = (lab.ns("a"), lab.ns("b"));
        lab.add_namespaces(&[&a, &b]).unwrap();
        lab.add_veths(&[Veth::new(
            VethEnd::new(&a, "a0")
                .mac("02:6f:6c:00:00:01")
                .addr("10.97.0.1/24"),
            VethEnd::new(&b, "b0")
                .mac("02:6f:6c:00:00:02")
                .addr("10.97.0.2/24"),
        )
        .mtu(1400)
        .up()])
            .unwrap();
        let link = lab.exec(&a, &["ip", "link", "show", "a0"]).unwrap();
        assert!(
            link.contains("mtu 1400") && link.contains("02:6f:6c:00:00:01"),
            "{link}"
        );
        lab.exec(&a, &["ping", "-c", "1", "-W", "2", "10.97.0.2"])
            .unwrap();

        // A failing command names itself and says what went wrong.
        let e = lab
            .ip_in(&b, &["link set b0 up", "link set nosuch up"])
            .unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::Failed { .. }), "{s}");
        assert!(
            s.starts_with(&format!("`ip -n {b} -batch -` failed")),
            "{s}"
        );
        assert!(s.contains("(line: `link set nosuch up`)"), "{s}");

        // Children: one stopped by label, one left for the drop.
        let mut cmd = lab.command(&b, &["sleep", "30"]);
        cmd.stdout(Stdio::null());
        lab.spawn("first", cmd).unwrap();
        lab.spawn("second", lab.command(&b, &["sleep", "30"]))
            .unwrap();
        assert!(lab.exited().is_empty());
        let st = lab.stop("first", Duration::from_secs(3)).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(15), "SIGTERM by its PID");
        assert!(lab.child("first").is_none() && lab.child("second").is_some());
        let pid = lab.pid("second").unwrap();
        assert_eq!(lab.child("second").unwrap().id(), pid);
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(lab);
        let zombie_or_gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        assert!(zombie_or_gone, "second child stopped on drop");
    }
    assert!(!exists(&a) && !exists(&b), "namespaces removed on drop");

    // A crashed run: namespaces under the prefix, no lab owning them. The
    // next lab with the prefix removes them; another prefix does not.
    orbitmesh_lab::run(&["ip", "netns", "add", &format!("{prefix}-stale")]).unwrap();
    let other = format!("{prefix}x");
    orbitmesh_lab::run(&["ip", "netns", "add", &format!("{other}-keep")]).unwrap();
    let lab = Lab::new(&prefix).unwrap();
    assert!(!exists(&format!("{prefix}-stale")));
    assert!(exists(&format!("{other}-keep")));
    drop(lab);
    assert_eq!(
        orbitmesh_lab::remove_leftovers(&other).unwrap(),
        [format!("{other}-keep")]
    );
    assert!(!exists(&format!("{other}-keep")));
}
