//! Compiles an XDP program written in C into a BPF object in OUT_DIR, for
//! the build scripts of the dataplane (bpf/xdp_steer.c, bpf/xdp_fast.c) and
//! of the bench harness (bpf/xdp_min.c, the in-kernel limit peer). One
//! place for the clang command, so every program is built with the same
//! flags and the same error when clang is missing.
//!
//! Why C + clang rather than aya-ebpf: aya-ebpf needs a nightly toolchain
//! and bpf-linker, and this project builds on stable only. The programs
//! are short, the kernel's verifier checks them when they are loaded, and
//! aya (pure Rust) loads them. A program clang refuses (`-Wall -Werror`)
//! fails the build, not a run.
use std::{env, path::PathBuf, process::Command};

/// Compiles `bpf/<name>.c` (relative to the calling crate) into
/// `OUT_DIR/<name>.o` and tells cargo to rebuild when it or one of
/// `headers` changes, or when `CLANG` (the compiler to use, default
/// `clang`) does. Panics, as a build script should, with what to install
/// when clang cannot run, and with the source's name when it fails.
pub fn compile(name: &str, headers: &[&str]) {
    println!("cargo:rerun-if-env-changed=CLANG");
    for h in headers {
        println!("cargo:rerun-if-changed={h}");
    }
    let src = format!("bpf/{name}.c");
    println!("cargo:rerun-if-changed={src}");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(format!("{name}.o"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Debian keeps asm/*.h under the multiarch directory; the bpf target
    // has no default sysroot.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    // -enable-tail-merge=false: LLVM's branch folding otherwise merges
    // calls of one helper from different paths into one call site whose
    // map argument is chosen at run time (xdp_fast.c's redirect to
    // tx_ports and steer()'s to xsks_map became one). The verifier turns
    // a bpf_redirect_map call into a direct call of the map's own redirect
    // function only when the site sees one map; a merged site stays the
    // generic helper, which makes an indirect call (a retpoline here):
    // 13-17 ns more per forwarded frame (bench/results/xdp-fast-path.md).
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .args(["-mllvm", "-enable-tail-merge=false"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} ({e}): run scripts/setup.sh (clang, llvm, libbpf-dev)")
        });
    assert!(status.success(), "{clang} failed to compile {src}");
}
