//! orbitmesh bench: workloads and naive baselines for the benchmarks, and
//! the relay benchmark harness.
//!
//! - [`workload`]: FIBs and frame pools for the in-memory benchmarks (a 1M
//!   label transit table, a 1M-prefix BGP-like IPv4 table, ECMP with entropy
//!   labels, egress pop), and the batch driver that copies frames into
//!   buffers with headroom as a NIC would before the pipeline runs.
//! - [`naive`]: what a first implementation would do (a `HashMap` label map,
//!   a per-length `HashMap` LPM, one packet at a time) and the bare loop that
//!   only indexes a table and rewrites bytes: the floor and the foil.
//! - [`traffic`]: the harness's AF_XDP generator and sink (RFC 2544 test
//!   frames over MPLS per RFC 3032 or IPv4, per-flow sequence numbers and
//!   TX timestamps; loss, reordering, misforwarding, latency).
//! - [`harness`]: the namespace line, the DUTs (orbitmesh-dp, kernel
//!   forwarding, dpdk-testpmd), the RFC 2544 throughput search, and the
//!   report (`orbitmesh-bench`).
//! - [`sys`]: the crate's only `unsafe` code (setns; AF_XDP is the dataplane's);
//!   `unsafe_code` is denied workspace-wide (root `Cargo.toml`).

pub mod harness;
pub mod naive;
pub mod sys;
pub mod traffic;
pub mod workload;

/// `--version` for the helper binaries without a clap parser (fib-gen,
/// lpm-compare, control-cost): with it as the only argument, prints
/// `NAME VERSION` as clap does for the others and returns true.
pub fn version_asked(name: &str) -> bool {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let asked = a.len() == 1 && (a[0] == "--version" || a[0] == "-V");
    if asked {
        orbitmesh_core::outln!("{name} {}", env!("CARGO_PKG_VERSION"));
    }
    asked
}
