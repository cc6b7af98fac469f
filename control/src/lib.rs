//! orbitmesh control plane: predicts the constellation's topology from orbits,
//! computes per-node FIB schedules (time-variant routing, RFC 9657) and drives
//! them into running dataplanes.
#![forbid(unsafe_code)]

pub mod predict;

pub mod ops;
pub mod run;
