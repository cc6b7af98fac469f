//! A network-namespace lab: namespaces created under one prefix, veth pairs
//! between them, and the processes started in them, all owned by a [`Lab`]
//! that removes them when it is dropped (normal end, error or panic). The
//! end-to-end tests (tests/support/line.rs), the bench harness
//! (bench/src/harness/topology.rs) and the emulator (emulation/)
//! build their topologies on it and keep only their own domain part.
//!
//! Everything goes through iproute2 (`ip`), as an operator would type it;
//! a failed command is a typed [`Error`] carrying the command line and its
//! stderr. Processes are stopped by their own PID (SIGTERM, then SIGKILL
//! after a timeout), never by name. No `unsafe`: signals go through
//! `rustix`.

#![forbid(unsafe_code)]

mod command;
pub mod cpu;
mod lab;
mod process;

pub use command::{exec_in, in_netns, output, run, run_input, Error, Result};
pub use lab::{remove_leftovers, Lab, Veth, VethEnd, STOP_TIMEOUT};
pub use process::{stop, terminate};
