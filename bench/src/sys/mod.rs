//! The only code in the bench crate allowed to be `unsafe` (the aya `sys`
//! pattern the dataplane follows too); `unsafe_code` is denied for every
//! other module and target of the workspace (root `Cargo.toml` lint table).
//!
//! - [`xsk_tx`]: the generator's AF_XDP transmit rings over xsk-rs (the ring
//!   code the dataplane's `XskIo` uses), writing frames straight into UMEM.
//! - [`netns`]: moving one thread into a network namespace (`setns`).
#![allow(unsafe_code)]

pub mod netns;
pub mod xsk_tx;
