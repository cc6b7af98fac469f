//! orbitmesh core: everything about label switching that needs no operating
//! system, shared by the dataplane runtime, the control tools and the
//! benchmarks.
//!
//! - [`wire`]: zero-copy views of Ethernet, MPLS, IPv4, IPv6 (smoltcp style).
//! - [`fib`]: immutable FIB snapshots (label table, next-hop groups, next hops,
//!   IPv4/IPv6 longest-prefix match), their validating builder, and their
//!   file formats (TOML, JSON, binary).
//! - [`pipeline`]: the pure batch function every worker, test and benchmark runs.
//! - [`stats`]: per-worker counters, summed on read, and their plain totals.
//! - [`schedule`]: one node's FIBs for the instants ahead (RFC 9657),
//!   delta-encoded.
//! - [`sign`]: Ed25519 signatures over schedules, trusted keys (RFC 8032).
//! - [`protocol`]: the control protocol's requests, replies, framing, and a
//!   minimal client.
//! - [`time`], [`file`], [`cli`]: the clock activations use, bounded file
//!   reads, and command-line output that survives a closed pipe.
//!
//! Dependencies point one way: `wire` <- `fib` <- `pipeline`; `protocol`
//! carries `fib` and `stats` types. This crate forbids `unsafe` and makes no
//! system calls of its own (beyond std's files, sockets and clock); the
//! AF_XDP runtime is the `dataplane` crate.

#![forbid(unsafe_code)]

pub mod cli;
pub mod fib;
pub mod file;
pub mod pipeline;
pub mod protocol;
pub mod schedule;
pub mod sign;
pub mod stats;
pub mod time;
pub mod wire;
