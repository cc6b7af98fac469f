//! orbitmesh control plane: predicts the constellation's topology from orbits,
//! computes per-node FIB schedules (time-variant routing, RFC 9657) and drives
//! them into running dataplanes (the emulation of a constellation slice on
//! one box is the `emulation` crate).
#![forbid(unsafe_code)]

pub mod predict;

pub mod distribute;
pub mod duration;
pub mod events;
pub mod fib_ops;
pub mod os;
pub mod windows;
