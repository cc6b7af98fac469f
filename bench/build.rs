//! Compiles the harness's in-kernel limit peer (bpf/xdp_min.c) and its XDP
//! relay generator (bpf/gen_relay.c) and its watch on dut0's receive
//! (bpf/napi_gap.c) with clang into OUT_DIR (orbitmesh-bpf-build);
//! the harness embeds the objects and loads them with aya.
//!
//! Why at build time rather than clang at run time (as scripts/bench-veth.sh
//! does for its drop program): the harness starts this peer itself in the
//! same run as the others, so the object has to exist wherever the harness
//! does; the workspace already needs clang for the dataplane's programs,
//! so this adds no requirement, and a program clang refuses fails the
//! build rather than a benchmark run.

fn main() {
    orbitmesh_bpf_build::compile("xdp_min", &[]);
    orbitmesh_bpf_build::compile("gen_relay", &[]);
    orbitmesh_bpf_build::compile("napi_gap", &[]);
    orbitmesh_bpf_build::compile("gen_live", &[]);
}
