//! The only code in the bench crate allowed to be `unsafe` (the aya `sys`
//! pattern the dataplane follows too); `unsafe_code` is denied for every
//! other module and target of the workspace (root `Cargo.toml` lint table).
//!
//! - [`busy`]: kernel busy polling of the sink's sockets (`recvfrom`).
//! - [`gen_live`]: the in-kernel generator (aya; `unsafe`: its stop signal).
//! - [`gen_relay`]: the relay generator's XDP redirect (aya; no `unsafe`).
//! - [`napi_gap`]: the watch on dut0's NAPI polls (aya; no `unsafe`).
//! - [`netns`]: moving one thread into a network namespace (`setns`).
//! - [`sched`]: SCHED_FIFO for the harness's threads (`chrt`; no `unsafe`).
//! - [`xdp_min`]: the in-kernel limit peer's loader (aya; no `unsafe`).
#![allow(unsafe_code)]

pub mod busy;
pub mod gen_live;
pub mod gen_relay;
pub mod napi_gap;
pub mod netns;
pub mod sched;
pub mod xdp_min;
