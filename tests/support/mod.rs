//! Helpers shared by the end-to-end tests (the root package's tests/*.rs).

use std::path::PathBuf;
use std::process::Command;

/// True when running as root (network namespaces, AF_XDP).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
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
