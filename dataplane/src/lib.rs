//! orbitmesh dataplane: the AF_XDP process `orbitmesh-dp` that runs the
//! core's pipeline (`orbitmesh_core`) on real ports.
//!
//! Layers, each using only those above it in this list:
//!
//! - [`publish`]: the lock-free handle through which FIB snapshots reach the
//!   workers (epoch-based reclamation), and staged activations.
//! - [`shared`]: the process state shared by workers, control socket and port
//!   watcher: FIB handle, ports, liveness, every worker's counters.
//! - [`ring`]: frames as handles, batches, and the batch I/O trait
//!   (`PacketIo`) workers drive.
//! - [`worker`]: one pinned thread's loop: receive a batch, run the pipeline,
//!   dispatch the verdicts by port, count.
//! - [`delay_line`]: the emulation's per-port propagation delay, wrapped
//!   around the I/O.
//! - [`sys`]: the only module with `unsafe` code: AF_XDP sockets and rings,
//!   the XDP steering program, epoch cells, huge pages, signals, credentials.
//! - [`schedule`]: the schedule a node holds and follows on its own, kept
//!   in its state directory.
//! - [`fast_path`]: a FIB snapshot compiled into the XDP transit fast
//!   path's map values.
//! - [`fast_publish`]: keeps the fast path's two banks of maps forwarding
//!   by the FIB the workers use (published, staged, rolled back), and its
//!   port liveness.
//! - [`ctl`]: the control socket's server (the protocol is the core's).
//! - [`watch`]: the port watcher (carrier, interfaces that go away).
//! - [`config`]: the configuration file and its checks.
//! - [`metrics`]: the Prometheus text endpoint (`GET /metrics`, off by
//!   default), on its own thread.
//! - [`housekeeping`]: the process's main loop around the workers (port
//!   watch, FIB promotion and reclamation, worker health).
//!
//! `unsafe_code` is denied workspace-wide (root `Cargo.toml`); only [`sys`]
//! allows it.

pub mod config;
pub mod ctl;
pub mod delay_line;
pub mod fast_path;
pub mod fast_publish;
pub mod housekeeping;
pub mod metrics;
pub mod publish;
pub mod ring;
pub mod schedule;
pub mod shared;
pub mod sys;
pub mod watch;
pub mod worker;
