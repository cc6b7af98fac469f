//! orbitmesh bench: workloads and naive baselines for the benchmarks.
//!
//! - [`workload`]: FIBs and frame pools for the in-memory benchmarks (a 1M
//!   label transit table, a 1M-prefix BGP-like IPv4 table, ECMP with entropy
//!   labels, egress pop), and the batch driver that copies frames into
//!   buffers with headroom as a NIC would before the pipeline runs.
//! - [`naive`]: what a first implementation would do (a `HashMap` label map,
//!   a per-length `HashMap` LPM, one packet at a time) and the bare loop that
//!   only indexes a table and rewrites bytes: the floor and the foil.
#![forbid(unsafe_code)]

pub mod naive;
pub mod workload;
