//! The only place in the dataplane where `unsafe` code is allowed (the aya
//! pattern: `aya/src/sys`). Everything else in the crate is
//! `#![deny(unsafe_code)]` and uses the safe wrappers exported here.
//!
//! - [`epoch`]: an epoch-protected pointer cell (crossbeam-epoch) for the
//!   lock-free publication of FIB snapshots.
#![allow(unsafe_code)]

pub mod epoch;
