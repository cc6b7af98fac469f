//! CPU time from /proc ([`orbitmesh_lab::cpu`], shared with the emulator's
//! host-load readings) and the tools the harness looks for on PATH.

use std::path::Path;

pub use orbitmesh_lab::cpu::*;

/// True when `name` is an executable file on PATH (or a path to one).
pub fn have_tool(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}
