//! Why a control request was refused: [`CtlError`], one kind per reason,
//! carrying what the client sent. It reaches the client as the protocol's
//! `Error` reply, its message the kind's Display; in-process callers
//! ([`super::execute`]) match the kind.

use super::*;
use crate::schedule::OrderError;
use orbitmesh_core::fib::{FibError, PrefixError};

/// A refused control request (or connection).
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// A change by hand on a dataplane that takes only signed orders
    /// (counted as `order_unsigned`).
    #[error("{0}; FIB loads, stages, swaps, rollbacks and port changes by hand are not signed orders: send a signed schedule")]
    Unsigned(OrderError),
    /// A FIB change by hand while a schedule is followed.
    #[error("this node follows a schedule (serial {serial}); FIB changes by hand would fight it: `orbitmesh-ctl schedule clear` first")]
    FollowsSchedule { serial: u64 },
    #[error("FIB refused, the running FIB stays: {0}")]
    Fib(FibError),
    #[error("no FIB is staged")]
    NothingStaged,
    #[error("no previous FIB to roll back to (a rollback goes back one FIB, once; load or activate another first)")]
    NoRollback,
    #[error("no previous FIB to exchange with")]
    NoExchange,
    #[error("schedule refused, the running one stays: {0}")]
    Schedule(OrderError),
    #[error("{0}")]
    Clear(OrderError),
    /// `show_fib --prefix` with something that has a `/` but is no prefix.
    #[error("{text:?} is not a prefix: {error}")]
    NotAPrefix { text: String, error: PrefixError },
    #[error("{text:?} is neither an address nor a prefix")]
    NotAnAddress { text: String },
    #[error("no port named {port:?} (ports: {})", ports.join(", "))]
    NoSuchPort { port: String, ports: Vec<String> },
    #[error("port {port}: this dataplane has no delay line (emulation only: start it with --delay-line)")]
    NoDelayLine { port: String },
    #[error("delay {delay_ns} ns on {port}: at most {MAX_DELAY_NS} ns (1 s)")]
    DelayTooLong { port: String, delay_ns: u64 },
    /// A read on a remote channel with `remote_reads = false`.
    #[error("read-only requests are not served on this dataplane's remote channel (remote_reads = false)")]
    ReadsClosed,
    /// An order on the remote channel of a node that trusts no keys.
    #[error("this dataplane trusts no keys: its remote channel takes no orders")]
    NoTrustedKeys,
    /// An unsigned change on the remote channel (counted as `order_unsigned`).
    #[error("{0}; on the remote channel only signed orders (schedule load, schedule clear) change state")]
    RemoteUnsigned(OrderError),
    #[error("too many control connections ({max}); try again")]
    TooManyConnections { max: usize },
    #[error("permission denied: uid {uid} is not the dataplane's owner ({owner})")]
    NotOwner { uid: u32, owner: u32 },
    #[error("no request for {timeout:?}; closing the connection")]
    Idle { timeout: Duration },
    /// A frame that could not be read (garbage, a stall, over the budget).
    #[error("{0}")]
    Frame(FrameError),
    /// A frame read whole whose request does not decode.
    #[error("{0}")]
    Malformed(String),
}

impl From<CtlError> for Response {
    fn from(e: CtlError) -> Response {
        Response::Error {
            message: e.to_string(),
        }
    }
}
