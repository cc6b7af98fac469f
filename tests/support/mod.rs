//! Helpers shared by the end-to-end tests (the root package's tests/*.rs).

use std::path::PathBuf;

/// True when running as root (network namespaces, AF_XDP).
#[allow(dead_code)]
pub fn is_root() -> bool {
    dataplane::sys::cred::euid() == 0
}

/// A workspace binary in target/<profile>/, built by `cargo test --workspace`.
#[allow(dead_code)]
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run the workspace tests (cargo test --workspace) or cargo build --workspace",
        bin.display()
    );
    bin
}

pub mod line;

/// A dataplane's control socket served in this process by the real server
/// and request handler (`dataplane::ctl::Server`), with no AF_XDP ports: for
/// tests of the tools that talk to dataplanes (orbitmesh-ctl, the control
/// process). Its directory (socket, files the test writes) is removed and the
/// server stopped when it is dropped.
#[allow(dead_code)]
pub struct TestDataplane {
    dir: PathBuf,
    server: Option<dataplane::ctl::Server>,
}

#[allow(dead_code)]
impl TestDataplane {
    /// A node named n0 with these ports and an empty FIB (version 0).
    pub fn start(tag: &str, ports: &[&str]) -> TestDataplane {
        let dir = std::env::temp_dir().join(format!("om-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let server = TestDataplane::serve(&dir.join("n0.sock"), ports);
        TestDataplane {
            dir,
            server: Some(server),
        }
    }

    /// Serves a fresh node at `socket` (the caller owns the directory).
    pub fn serve(socket: &std::path::Path, ports: &[&str]) -> dataplane::ctl::Server {
        let node = std::sync::Arc::new(dataplane::shared::Node::new(
            "n0",
            ports.iter().map(|p| p.to_string()).collect(),
            orbitmesh_core::fib::FibSnapshot::empty(0),
            1,
        ));
        dataplane::ctl::Server::start(socket, node).expect("serve the control socket")
    }

    pub fn socket(&self) -> &std::path::Path {
        self.server().path()
    }

    pub fn node(&self) -> &std::sync::Arc<dataplane::shared::Node> {
        self.server().node()
    }

    pub fn server(&self) -> &dataplane::ctl::Server {
        self.server.as_ref().expect("serving until dropped")
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes a file in the test's directory; its path as a string.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write a scratch file");
        p.to_str().expect("UTF-8 path").to_string()
    }
}

impl Drop for TestDataplane {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node's schedule follower (`dataplane::schedule::follow`) on its own
/// thread, as orbitmesh-dp runs it (TestDataplane has none): stopped and
/// joined when dropped.
#[allow(dead_code)]
pub struct Follower {
    node: std::sync::Arc<dataplane::shared::Node>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[allow(dead_code)]
impl Follower {
    pub fn start(node: &std::sync::Arc<dataplane::shared::Node>) -> Follower {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = dataplane::schedule::spawn(node.clone(), stop.clone()).expect("follower");
        Follower {
            node: node.clone(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.node.schedule.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `cargo metadata --no-deps` of the workspace, as JSON.
#[allow(dead_code)]
pub fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = std::process::Command::new(cargo)
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
