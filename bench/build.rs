//! Compiles the harness's in-kernel limit peer (bpf/xdp_min.c) with clang
//! into OUT_DIR; `orbitmesh-bench peer-xdp` embeds the object and loads it
//! with aya.
//!
//! Why a build.rs rather than clang at run time (as scripts/bench-veth.sh
//! does for its drop program): the harness starts this peer itself in the
//! same run as the others, so the object has to exist wherever the harness
//! does; the workspace already needs clang for the dataplane's build.rs,
//! so this adds no requirement, and a program the verifier would refuse
//! fails the build rather than a benchmark run.
use std::{env, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    let src = "bpf/xdp_min.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("xdp_min.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
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
