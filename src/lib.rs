//! orbitmesh: a label-switching relay for proliferated LEO mesh networks.
//!
//! This root package only owns the end-to-end tests in `tests/` (the
//! dataplane and orbitmesh-ctl together, in network namespaces); the product
//! lives in the workspace members: `dataplane` (the forwarding core and the
//! AF_XDP process), `control` (topology prediction, FIB schedules, the CLI) and
//! `bench` (traffic generator, sink and benchmarks).
#![forbid(unsafe_code)]
pub use dataplane;
