//! orbitmesh control plane: predicts the constellation's topology from orbits,
//! computes per-node FIB schedules (time-variant routing, RFC 9657) and drives
//! them into running dataplanes; emulates a constellation slice on one box.
#![forbid(unsafe_code)]

pub mod predict;

pub mod distribute;
pub mod duration;
pub mod emulate;
pub mod events;
pub mod fib_ops;
pub mod os;
