//! The control servers: a unix stream socket (mode 0600, peer uid checked
//! with SO_PEERCRED) and, when enabled, the remote channel (TCP, signed
//! orders only: [`remote`]), both speaking the control protocol
//! (`orbitmesh_core::protocol`: framing, requests, replies), and the
//! handling of each request against the running [`Node`]. Both channels
//! have the limits below, each its own.
//!
//! Limits ([`Limits`], defaults below), so that no client, however buggy,
//! can exhaust the dataplane's threads or memory:
//!
//! - At most [`MAX_CONNECTIONS`] connections are served at once, one thread
//!   each. When all are taken, the one idle the longest (waiting for its
//!   next request, with nothing unread) is closed to make room: idle
//!   connections cannot lock the owner out. When every one is in the middle
//!   of a request, a new connection gets `Error "too many control
//!   connections (32); try again"` from the accepting thread (no thread is
//!   spawned) and is closed; these refusals are logged at most once a second.
//! - Payloads buffered across all connections together are bounded by
//!   [`MAX_BUFFERED`]: each frame reserves its announced length before its
//!   payload is read and releases it once its request is handled; a
//!   frame that does not fit what is left is refused ("try again"). The
//!   payload buffer grows as bytes arrive, so a client that announces
//!   200 MiB and sends nothing holds 64 KiB, not 200 MiB.
//! - A connection waits at most [`IDLE_TIMEOUT`] for a request to begin,
//!   and a request must arrive whole within [`REQUEST_TIMEOUT`] of its first
//!   byte ("timed out waiting for the rest of the request"); a client that
//!   does not take its reply for as long is disconnected.
//! - Replies that grow with the FIB (`show_fib`: about 50 MB of JSON for a
//!   million labels) are built and written one at a time, so unread ones
//!   cannot pile up in memory, one per connection.

use crate::shared::Node;
use orbitmesh_core::fib::spec::FibSpec;
use orbitmesh_core::fib::Prefix;
use orbitmesh_core::protocol::*;
use orbitmesh_core::stats::Counters;
use orbitmesh_core::time::now_ns;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod error;
mod handle;
pub mod remote;
#[cfg(test)]
mod remote_tests;
mod server;
#[cfg(test)]
mod tests;

pub use error::CtlError;
pub use handle::*;
pub use remote::{serve_remote, Remote, RemoteServer};
pub use server::*;

/// Connections served at once (one thread each); see the module docs for
/// what happens beyond. The control process and `orbitmesh-ctl` use one
/// connection per command, so 32 leaves room for many concurrent operators.
pub const MAX_CONNECTIONS: usize = 32;
/// Payload bytes buffered across all connections together: one frame of
/// the largest size, or several smaller ones, at a time.
pub const MAX_BUFFERED: usize = MAX_MESSAGE;
/// How long a connection may wait for a request to begin (after connecting,
/// or after its previous reply) before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to arrive after its first byte, and a reply
/// to be taken by the client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The control server's limits; [`serve`] uses [`Limits::default`] (the
/// constants above), tests shorten them with [`serve_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_buffered: usize,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            max_buffered: MAX_BUFFERED,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}
