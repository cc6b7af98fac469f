//! orbitmesh bench: workloads and naive baselines for the benchmarks.
#![forbid(unsafe_code)]
