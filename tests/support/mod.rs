//! Helpers shared by the end-to-end tests (the root package's tests/*.rs).

use std::path::PathBuf;

/// True when running as root (network namespaces, AF_XDP).
pub fn is_root() -> bool {
    dataplane::sys::cred::euid() == 0
}

/// A workspace binary in target/<profile>/, built by `cargo test --workspace`.
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
