//! Compiles the XDP programs (bpf/xdp_steer.c, the steering program in use,
//! and bpf/xdp_fast.c, the transit fast path) with clang into OUT_DIR; the
//! dataplane embeds the objects and loads them with aya.
//!
//! Why C + clang rather than aya-ebpf: aya-ebpf needs a nightly toolchain and
//! bpf-linker; this project builds on stable only. The program is 100 lines
//! of C that the kernel verifier checks anyway; aya (pure Rust) loads it.
use std::{env, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    for h in ["bpf/steer.h", "bpf/fast_maps.h"] {
        println!("cargo:rerun-if-changed={h}");
    }
    compile("xdp_steer");
    compile("xdp_fast");
}

fn compile(name: &str) {
    let src = format!("bpf/{name}.c");
    println!("cargo:rerun-if-changed={src}");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(format!("{name}.o"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Debian keeps asm/*.h under the multiarch directory; the bpf target has
    // no default sysroot.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
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
