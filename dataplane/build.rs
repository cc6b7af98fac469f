//! Compiles the XDP programs (bpf/xdp_steer.c, the steering program in use,
//! and bpf/xdp_fast.c, the transit fast path) with clang into OUT_DIR
//! (orbitmesh-bpf-build says how and why C); the dataplane embeds the
//! objects and loads them with aya.

fn main() {
    let headers = ["bpf/steer.h", "bpf/fast_maps.h"];
    orbitmesh_bpf_build::compile("xdp_steer", &headers);
    orbitmesh_bpf_build::compile("xdp_fast", &headers);
}
