//! Compiles the XDP steering program (bpf/xdp_steer.c) with clang into
//! OUT_DIR; the dataplane embeds the object and loads it with aya.
//!
//! Why C + clang rather than aya-ebpf: aya-ebpf needs a nightly toolchain and
//! bpf-linker; this project builds on stable only. The program is 100 lines
//! of C that the kernel verifier checks anyway; aya (pure Rust) loads it.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = "bpf/xdp_steer.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("xdp_steer.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Debian keeps asm/*.h under the multiarch directory; the bpf target has
    // no default sysroot.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} ({e}): run scripts/setup.sh (clang, llvm, libbpf-dev)")
        });
    assert!(status.success(), "{clang} failed to compile {src}");
}
