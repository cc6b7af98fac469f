//! orbitmesh dataplane: the label-switching core and (later) the AF_XDP process.
//!
//! - [`wire`]: zero-copy views of Ethernet, MPLS, IPv4, IPv6 (smoltcp style).
//! - [`fib`]: immutable FIB snapshots (label table, next-hop groups, next hops,
//!   IPv4/IPv6 longest-prefix match), their validating builder, and the
//!   [`fib::FibHandle`] through which snapshots are published lock-free.
//! - [`pipeline`]: the pure batch function every worker, test and benchmark runs.
//! - [`stats`]: per-worker counters, summed on read.
//! - [`sys`]: the only module with `unsafe` code.
//! - [`watch`]: the port watcher (carrier, interfaces that go away).
//! - [`housekeeping`]: the process's main loop around the workers (port
//!   watch, FIB promotion and reclamation, worker health).
//! - [`cli`]: output of the command-line programs that survives a closed pipe.
//!
//! `unsafe_code` is denied workspace-wide (root `Cargo.toml`); only [`sys`]
//! allows it.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod fib;
pub mod housekeeping;
pub mod node;
pub mod pipeline;
pub mod stats;
pub mod sys;
pub mod watch;
pub mod wire;
pub mod worker;
