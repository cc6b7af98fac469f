//! orbitmesh dataplane: the label-switching core and (later) the AF_XDP process.
//!
//! - [`wire`]: zero-copy views of Ethernet, MPLS, IPv4, IPv6 (smoltcp style).
//! - [`fib`]: immutable FIB snapshots (label table, next-hop groups, next hops,
//!   IPv4/IPv6 longest-prefix match), their validating builder, and the
//!   [`fib::FibHandle`] through which snapshots are published lock-free.
//! - [`pipeline`]: the pure batch function every worker, test and benchmark runs.
//! - [`stats`]: per-worker counters, summed on read.
//! - [`ring`]: frames as handles, batches, and the batch I/O trait workers drive.
//! - [`worker`]: the per-core loop: receive, pipeline, dispatch by verdict, send.
//! - [`delay_line`]: the emulation's per-port propagation delay, wrapped around the I/O.
//! - [`sys`]: the only module with `unsafe` code.
//! - [`watch`]: the port watcher (carrier, interfaces that go away).
//! - [`cli`]: output of the command-line programs that survives a closed pipe.
//!
//! `unsafe_code` is denied workspace-wide (root `Cargo.toml`); only [`sys`]
//! allows it.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod delay_line;
pub mod fib;
pub mod node;
pub mod pipeline;
pub mod ring;
pub mod stats;
pub mod sys;
pub mod watch;
pub mod wire;
pub mod worker;
