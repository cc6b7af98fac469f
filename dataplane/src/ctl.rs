//! The control socket: a unix stream socket (mode 0600, peer uid checked
//! with SO_PEERCRED) speaking a small versioned, framed protocol.
//!
//! Frame: `b"OMCP"`, protocol version (u8: 2; 1 = JSON only), encoding (u8: 0
//! JSON, 1 binary FIB), two reserved bytes that must be zero, payload length
//! (u32, big endian), then the payload: one [`Request`] from the client, one
//! [`Response`] (always JSON) back. A binary payload carries a FIB to load
//! or stage: u8 operation (0 load, 1 stage), u64 activation time (ns, 0 for
//! a load), then the FIB in the binary file format (fib::binary), which
//! parses about 10x faster than JSON; clients send FIBs this way. A header
//! that is malformed (magic, version, encoding, reserved bytes) or announces
//! more than [`MAX_MESSAGE`] is refused before the payload is read. A
//! malformed frame gets an `Error` response and the connection is closed (a
//! well-framed but malformed or refused request just the response);
//! forwarding never stops. Every refused request is logged with its reason
//! (frames refused before they could be decoded at most once a second,
//! with a count of the others, so that a flood of garbage cannot flood the
//! log).
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

use crate::fib::spec::FibSpec;
use crate::node::{now_ns, Node, PortTotals};
use crate::stats::Counters;
use serde::{Deserialize, Serialize};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub const MAGIC: &[u8; 4] = b"OMCP";
/// Bytes in a frame header (magic, version, encoding, reserved, length).
pub const HEADER_LEN: usize = 12;
/// Longest emulated link delay accepted.
pub const MAX_DELAY_NS: u64 = 1_000_000_000;
/// Protocol version 2 added binary FIB payloads; version 1 frames (JSON
/// only) are still accepted, and JSON frames are still sent as version 1,
/// so older peers keep working and a binary frame sent to an older
/// dataplane is refused with a clear "version 2 not supported".
pub const VERSION: u8 = 2;
/// Largest payload accepted (a FIB of about a million entries in JSON).
pub const MAX_MESSAGE: usize = 256 << 20;
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Validate and activate a FIB now. An empty FIB (no labels, no
    /// routes) is refused unless `allow_empty`.
    LoadFib {
        fib: FibSpec,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_empty: bool,
    },
    /// Validate a FIB and stage it for activation at `at_ns` (Unix ns).
    StageFib {
        fib: FibSpec,
        at_ns: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_empty: bool,
    },
    /// Activate the staged FIB now.
    Swap,
    /// Reactivate the previous FIB, once: the FIB rolled back from is not
    /// kept, so a second rollback is refused until another FIB is active.
    Rollback,
    /// Swap the active and the previous FIB (two FIBs alternating: the
    /// relay harness's swaps under load; operators use `Rollback`).
    Exchange,
    /// FIB versions (active, staged, previous) and the worker's view.
    Version,
    Stats,
    /// Administrative port state (for tests and fault injection).
    SetPort {
        port: String,
        up: bool,
    },
    /// Emulation only: hold frames sent on `port` for `delay_ns` (the
    /// propagation delay of the link it stands for); 0 sends at once.
    SetPortDelay {
        port: String,
        delay_ns: u64,
    },
    /// The active (and staged) FIB in readable form; `label` keeps only
    /// that label, `prefix` only the route for that prefix or, for a bare
    /// address, the longest match (like `ip route get`).
    ShowFib {
        #[serde(default)]
        label: Option<u32>,
        #[serde(default)]
        prefix: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok { version: u64 },
    Error { message: String },
    Version(VersionInfo),
    Stats(StatsInfo),
    Fib(Box<FibView>),
}

/// What `ShowFib` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FibView {
    pub active: FibSpec,
    /// The staged FIB and its activation time (ns since the Unix epoch).
    pub staged: Option<(FibSpec, u64)>,
    pub previous_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub active: u64,
    pub staged: Option<(u64, u64)>,
    pub previous: Option<u64>,
    /// The version each worker used in its last batch.
    pub workers: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortInfo {
    pub name: String,
    pub carrier: bool,
    pub admin_up: bool,
    /// The port's interface was deleted under the running dataplane: down
    /// for good, until orbitmesh-dp is restarted (see `watch`).
    #[serde(default)]
    pub gone: bool,
    pub counters: PortTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsInfo {
    pub node: String,
    pub now_ns: u64,
    pub fib_version: u64,
    pub counters: Vec<(String, u64)>,
    pub ports: Vec<PortInfo>,
}

impl StatsInfo {
    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |c| c.1)
    }
}

/// Binary FIB request operations (the payload's first byte), and the flag
/// bit that allows an empty FIB.
const OP_LOAD: u8 = 0;
const OP_STAGE: u8 = 1;
const OP_ALLOW_EMPTY: u8 = 0x80;

/// Payload encodings (header byte 5).
pub const ENC_JSON: u8 = 0;
pub const ENC_BINARY_FIB: u8 = 1;

fn write_frame(w: &mut impl Write, encoding: u8, body: &[u8]) -> std::io::Result<()> {
    let mut hdr = [0u8; HEADER_LEN];
    hdr[..4].copy_from_slice(MAGIC);
    hdr[4] = if encoding == ENC_JSON { 1 } else { VERSION };
    hdr[5] = encoding;
    hdr[8..].copy_from_slice(&(body.len() as u32).to_be_bytes());
    w.write_all(&hdr)?;
    w.write_all(body)?;
    w.flush()
}

/// Writes one JSON frame.
pub fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    write_frame(w, ENC_JSON, &body)
}

/// Writes a request: FIBs in the binary encoding, the rest as JSON.
pub fn write_request(w: &mut impl Write, req: &Request) -> std::io::Result<()> {
    let (op, fib, at, allow_empty) = match req {
        Request::LoadFib { fib, allow_empty } => (OP_LOAD, fib, 0u64, *allow_empty),
        Request::StageFib {
            fib,
            at_ns,
            allow_empty,
        } => (OP_STAGE, fib, *at_ns, *allow_empty),
        _ => return write_msg(w, req),
    };
    let op = if allow_empty { op | OP_ALLOW_EMPTY } else { op };
    match fib.to_binary() {
        Ok(bin) => {
            let mut body = Vec::with_capacity(9 + bin.len());
            body.push(op);
            body.extend_from_slice(&at.to_be_bytes());
            body.extend_from_slice(&bin);
            write_frame(w, ENC_BINARY_FIB, &body)
        }
        // Not encodable (e.g. a malformed MAC): JSON, so the dataplane's
        // validation names the entry and field.
        Err(_) => write_msg(w, req),
    }
}

/// Decodes a request payload of either encoding.
pub fn decode_request(encoding: u8, body: &[u8]) -> Result<Request, String> {
    match encoding {
        ENC_JSON => {
            serde_json::from_slice::<Request>(body).map_err(|e| format!("malformed request: {e}"))
        }
        ENC_BINARY_FIB => {
            if body.len() < 9 {
                return Err("binary FIB request shorter than its 9-byte header".into());
            }
            let at_ns = u64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
            let fib = FibSpec::decode(&body[9..], crate::fib::spec::FibFormat::Binary)
                .map_err(|e| e.to_string())?;
            let allow_empty = body[0] & OP_ALLOW_EMPTY != 0;
            match body[0] & !OP_ALLOW_EMPTY {
                OP_LOAD => Ok(Request::LoadFib { fib, allow_empty }),
                OP_STAGE => Ok(Request::StageFib {
                    fib,
                    at_ns,
                    allow_empty,
                }),
                op => Err(format!("binary FIB request: unknown operation {op}")),
            }
        }
        e => Err(format!(
            "payload encoding {e} not supported (0 JSON, 1 binary FIB)"
        )),
    }
}

/// Why a frame could not be read. The messages are what a refused client
/// is told; the server tells "the request", being the one that reads them.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection before a frame began (a client done).
    #[error("connection closed before a message began")]
    Closed,
    /// Nothing arrived within the read timeout.
    #[error("timed out waiting for a message")]
    Idle,
    #[error("connection closed {got} bytes into the {HEADER_LEN}-byte header")]
    ClosedInHeader { got: usize },
    #[error("timed out waiting for the rest of the request (header: {got} of {HEADER_LEN} bytes received)")]
    TimeoutInHeader { got: usize },
    #[error("connection closed after {got} of the {len}-byte payload")]
    ClosedInPayload { got: usize, len: usize },
    #[error(
        "timed out waiting for the rest of the request (payload: {got} of {len} bytes received)"
    )]
    TimeoutInPayload { got: usize, len: usize },
    #[error("not an orbitmesh control message (bad magic)")]
    BadMagic,
    #[error("protocol version {0} not supported (this dataplane speaks 1 and {VERSION})")]
    Version(u8),
    #[error("protocol version 1 carries JSON only (binary FIBs need version 2)")]
    BinaryInVersion1,
    #[error("payload encoding {0} not supported (0 JSON, 1 binary FIB)")]
    Encoding(u8),
    #[error("reserved header bytes must be zero, got {0:#04x} {1:#04x}")]
    Reserved(u8, u8),
    #[error("message of {len} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLarge { len: usize },
    #[error(
        "message of {len} bytes does not fit the control socket's buffer \
         ({free} of {total} bytes free while other requests are read); try again"
    )]
    OverBudget {
        len: usize,
        free: usize,
        total: usize,
    },
    #[error("reading: {0}")]
    Io(#[source] std::io::Error),
}

impl FrameError {
    /// A timeout at any point of the frame.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            FrameError::Idle
                | FrameError::TimeoutInHeader { .. }
                | FrameError::TimeoutInPayload { .. }
        )
    }
}

/// A read that gave up because of a socket timeout (SO_RCVTIMEO reports
/// EAGAIN, i.e. `WouldBlock`).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Payload bytes buffered across connections: a frame reserves its length
/// before its payload is read ([`read_frame_budgeted`]) and gives it back
/// when the [`Frame`] is dropped.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    used: AtomicUsize,
}

impl Budget {
    pub const fn new(total: usize) -> Budget {
        Budget {
            total,
            used: AtomicUsize::new(0),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved by frames being read or handled.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or says how many are free.
    fn reserve(&self, bytes: usize) -> Result<Grant<'_>, usize> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let free = self.total.saturating_sub(used);
            if bytes > free {
                return Err(free);
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Grant {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes reserved from a [`Budget`], given back on drop.
#[derive(Debug)]
struct Grant<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A frame read within a [`Budget`]; its bytes stay reserved until it is
/// dropped.
#[derive(Debug)]
pub struct Frame<'a> {
    pub encoding: u8,
    pub body: Vec<u8>,
    _grant: Grant<'a>,
}

/// Fills `buf` from `r`: the bytes read, and why it stopped short (`Ok`
/// for end of file).
fn fill(r: &mut impl Read, buf: &mut [u8]) -> (usize, std::io::Result<()>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
    (got, Ok(()))
}

/// Reads and checks a header: (encoding, payload length).
fn read_header(r: &mut impl Read) -> Result<(u8, usize), FrameError> {
    let mut hdr = [0u8; HEADER_LEN];
    match fill(r, &mut hdr) {
        (HEADER_LEN, _) => {}
        (0, Ok(())) => return Err(FrameError::Closed),
        (0, Err(e)) if timed_out(&e) => return Err(FrameError::Idle),
        (got, Ok(())) => return Err(FrameError::ClosedInHeader { got }),
        (got, Err(e)) if timed_out(&e) => return Err(FrameError::TimeoutInHeader { got }),
        (_, Err(e)) => return Err(FrameError::Io(e)),
    }
    if &hdr[..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if hdr[4] == 0 || hdr[4] > VERSION {
        return Err(FrameError::Version(hdr[4]));
    }
    match (hdr[4], hdr[5]) {
        (_, ENC_JSON) | (2.., ENC_BINARY_FIB) => {}
        (1, ENC_BINARY_FIB) => return Err(FrameError::BinaryInVersion1),
        (_, e) => return Err(FrameError::Encoding(e)),
    }
    if hdr[6..8] != [0, 0] {
        return Err(FrameError::Reserved(hdr[6], hdr[7]));
    }
    let len = u32::from_be_bytes(hdr[8..].try_into().expect("4 bytes")) as usize;
    if len > MAX_MESSAGE {
        return Err(FrameError::TooLarge { len });
    }
    Ok((hdr[5], len))
}

/// The payload buffer's first size; it doubles as bytes arrive, up to the
/// announced length, so memory follows what was received, not what was
/// announced.
const FIRST_CHUNK: usize = 64 << 10;

/// Reads a `len`-byte payload. No allocation exceeds `len`; the buffer is
/// at most twice what has arrived (and [`FIRST_CHUNK`] before that).
fn read_body(r: &mut impl Read, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    let mut got = 0;
    while got < len {
        if got == body.len() {
            let grow = body.len().max(FIRST_CHUNK).min(len - body.len());
            body.reserve_exact(grow);
            body.resize(body.len() + grow, 0);
        }
        match r.read(&mut body[got..]) {
            Ok(0) => return Err(FrameError::ClosedInPayload { got, len }),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Err(FrameError::TimeoutInPayload { got, len }),
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(body)
}

/// Reads one frame's payload, refusing bad headers and sizes (see
/// [`read_frame_enc`]); the error as text.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, String> {
    read_frame_enc(r).map(|(_, b)| b).map_err(|e| e.to_string())
}

/// Reads one frame: (encoding, payload). The header is checked before the
/// payload is read; payloads up to [`MAX_MESSAGE`] are taken, read as they
/// arrive (see [`read_body`]).
pub fn read_frame_enc(r: &mut impl Read) -> Result<(u8, Vec<u8>), FrameError> {
    let (encoding, len) = read_header(r)?;
    Ok((encoding, read_body(r, len)?))
}

/// Reads one frame as [`read_frame_enc`] does, once its announced length is
/// reserved from `budget`; a frame that does not fit is refused before its
/// payload is read. What the server uses: the memory held by the payloads
/// of all connections together stays within the budget.
pub fn read_frame_budgeted<'b>(
    r: &mut impl Read,
    budget: &'b Budget,
) -> Result<Frame<'b>, FrameError> {
    let (encoding, len) = read_header(r)?;
    let grant = budget.reserve(len).map_err(|free| FrameError::OverBudget {
        len,
        free,
        total: budget.total(),
    })?;
    Ok(Frame {
        encoding,
        body: read_body(r, len)?,
        _grant: grant,
    })
}

/// A minimal client: one request, one response.
pub fn call(socket: &Path, req: &Request) -> Result<Response, String> {
    const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
    // Encoded before connecting: the dataplane closes a connection on which
    // no request begins within its idle timeout.
    let mut frame = Vec::new();
    write_request(&mut frame, req).map_err(|e| format!("encoding the request: {e}"))?;
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    let reply_error = |e: FrameError| match e {
        FrameError::Closed => "the dataplane closed the connection without a reply".to_string(),
        FrameError::Idle => format!("no reply from the dataplane within {REPLY_TIMEOUT:?}"),
        e if e.is_timeout() => "timed out waiting for the rest of the reply".to_string(),
        e => e.to_string(),
    };
    if let Err(e) = s.write_all(&frame) {
        // The dataplane may have refused the header and closed the socket
        // while we were still writing: its error reply says why.
        return match read_frame_enc(&mut s).map(|(_, b)| serde_json::from_slice::<Response>(&b)) {
            Ok(Ok(r @ Response::Error { .. })) => Ok(r),
            _ => Err(format!("sending: {e}")),
        };
    }
    let (_, body) = read_frame_enc(&mut s).map_err(reply_error)?;
    serde_json::from_slice(&body).map_err(|e| format!("bad response: {e}"))
}

/// Carries out one request against the node.
pub fn handle(node: &Node, req: Request) -> Response {
    let err = |m: String| Response::Error { message: m };
    match req {
        Request::LoadFib { fib, allow_empty } => match build(node, &fib, allow_empty) {
            Ok(f) => Response::Ok {
                version: node.fib.publish(f),
            },
            Err(e) => err(format!("FIB refused, the running FIB stays: {e}")),
        },
        Request::StageFib {
            fib,
            at_ns,
            allow_empty,
        } => match build(node, &fib, allow_empty) {
            Ok(f) => {
                let v = f.version();
                node.fib.stage(f, at_ns, now_ns());
                Response::Ok { version: v }
            }
            Err(e) => err(format!("FIB refused, the running FIB stays: {e}")),
        },
        Request::Swap => match node.fib.activate_staged() {
            Some(v) => Response::Ok { version: v },
            None => err("no FIB is staged".into()),
        },
        Request::Rollback => {
            // A staged FIB already in force counts as the active one.
            node.fib.promote_due(now_ns());
            match node.fib.rollback() {
                Some(v) => Response::Ok { version: v },
                None => err("no previous FIB to roll back to (a rollback goes back one FIB, once; load or activate another first)".into()),
            }
        }
        Request::Exchange => match node.fib.exchange() {
            Some(v) => Response::Ok { version: v },
            None => err("no previous FIB to exchange with".into()),
        },
        Request::Version => Response::Version(version_info(node)),
        Request::Stats => Response::Stats(stats_info(node)),
        Request::ShowFib { label, prefix } => match show_fib(node, label, prefix.as_deref()) {
            Ok(v) => Response::Fib(Box::new(v)),
            Err(e) => err(e),
        },
        Request::SetPortDelay { port, delay_ns } => match node.port_index(&port) {
            Some(_) if delay_ns > MAX_DELAY_NS => err(format!(
                "delay {delay_ns} ns on {port}: at most {MAX_DELAY_NS} ns (1 s)"
            )),
            Some(i) => {
                node.delay_ns[i].store(delay_ns, Ordering::Relaxed);
                Response::Ok {
                    version: node.fib.current().version(),
                }
            }
            None => err(format!(
                "no port named {port:?} (ports: {})",
                node.port_names.join(", ")
            )),
        },
        Request::SetPort { port, up } => match node.port_index(&port) {
            Some(i) => {
                node.live.set_admin(i, up);
                Response::Ok {
                    version: node.fib.current().version(),
                }
            }
            None => err(format!(
                "no port named {port:?} (ports: {})",
                node.port_names.join(", ")
            )),
        },
    }
}

/// Validates a FIB for this node: complete, and not empty unless allowed.
fn build(
    node: &Node,
    fib: &FibSpec,
    allow_empty: bool,
) -> Result<crate::fib::FibSnapshot, crate::fib::FibError> {
    fib.check_not_empty(allow_empty)?;
    node.build_fib(fib)
}

/// Keeps only the label, or the route for a prefix / address, asked for.
fn filter(mut spec: FibSpec, label: Option<u32>, prefix: Option<&str>) -> Result<FibSpec, String> {
    if let Some(l) = label {
        spec.labels.retain(|e| e.label == l);
        spec.routes.clear();
    }
    if let Some(p) = prefix {
        spec.labels.clear();
        if p.contains('/') {
            spec.routes.retain(|r| r.prefix == p);
        } else {
            let a: std::net::IpAddr = p
                .parse()
                .map_err(|_| format!("{p:?} is neither an address nor a prefix"))?;
            // Longest match, as the dataplane would choose it.
            let best = spec
                .routes
                .iter()
                .filter(|r| {
                    let (net, len) = r.prefix.split_once('/').unwrap_or((&r.prefix, "0"));
                    let len: u32 = len.parse().unwrap_or(0);
                    match (a, net.parse::<std::net::IpAddr>()) {
                        (std::net::IpAddr::V4(a), Ok(std::net::IpAddr::V4(n))) => {
                            len == 0 || (a.to_bits() ^ n.to_bits()) >> (32 - len) == 0
                        }
                        (std::net::IpAddr::V6(a), Ok(std::net::IpAddr::V6(n))) => {
                            len == 0 || (a.to_bits() ^ n.to_bits()) >> (128 - len) == 0
                        }
                        _ => false,
                    }
                })
                .max_by_key(|r| {
                    r.prefix
                        .split_once('/')
                        .map_or(0, |x| x.1.parse::<u32>().unwrap_or(0))
                })
                .cloned();
            spec.routes = best.into_iter().collect();
        }
    }
    Ok(spec)
}

fn show_fib(node: &Node, label: Option<u32>, prefix: Option<&str>) -> Result<FibView, String> {
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    let active = node.fib.load(now, &g);
    let spec = FibSpec::from_snapshot(active, &node.port_names);
    let staged = match node.fib.staged() {
        Some(s) if s.at > now => {
            let st = FibSpec::from_snapshot(&s.fib, &node.port_names);
            Some((filter(st, label, prefix)?, s.at))
        }
        _ => None,
    };
    Ok(FibView {
        active: filter(spec, label, prefix)?,
        staged,
        previous_version: node.fib.previous().map(|p| p.version()),
    })
}

pub fn version_info(node: &Node) -> VersionInfo {
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    VersionInfo {
        active: node.fib.load(now, &g).version(),
        staged: node.fib.staged().map(|s| (s.fib.version(), s.at)),
        previous: node.fib.previous().map(|p| p.version()),
        workers: node
            .workers
            .iter()
            .map(|w| w.fib_version.load(Ordering::Relaxed))
            .collect(),
    }
}

pub fn stats_info(node: &Node) -> StatsInfo {
    let c: Counters = node.counters();
    let totals = node.port_totals();
    let now = now_ns();
    let g = crossbeam_epoch::pin();
    StatsInfo {
        node: node.name.clone(),
        now_ns: now,
        fib_version: node.fib.load(now, &g).version(),
        counters: c
            .named()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .chain([
                (
                    "punt_to_host".to_string(),
                    node.punt.delivered.load(Ordering::Relaxed),
                ),
                (
                    "punt_queue_full".to_string(),
                    node.punt.queue_full.load(Ordering::Relaxed),
                ),
                (
                    "punt_write_failed".to_string(),
                    node.punt.write_failed.load(Ordering::Relaxed),
                ),
            ])
            .collect(),
        ports: node
            .port_names
            .iter()
            .enumerate()
            .map(|(i, n)| PortInfo {
                name: n.clone(),
                carrier: node.live.carrier(i),
                admin_up: node.live.admin(i),
                gone: node.live.gone(i),
                counters: totals[i],
            })
            .collect(),
    }
}

/// Serves the control socket until `stop` is set and [`wake`] is called,
/// with the default [`Limits`].
pub fn serve(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_with(path, node, stop, Limits::default())
}

/// Removes a socket left at `path` by a run that has ended; refuses a path
/// someone listens on, and anything that is not a socket.
fn clear_stale_socket(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(std::io::Error::new(
            ErrorKind::AddrInUse,
            format!("{} is in use by a running dataplane", path.display()),
        )),
        // Nobody listens: a socket left by a previous run.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        // E.g. another user's socket: not ours to remove.
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!(
                "{} exists and cannot be probed ({e}); refusing to replace it",
                path.display()
            ),
        )),
    }
}

/// [`serve`] with the given limits. The listener blocks in accept(), so a
/// request is served at once; each connection is handled on its own
/// thread, at most `limits.max_connections` at a time.
pub fn serve_with(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    serve_shared(path, node, stop, Arc::new(Shared::new(limits)))
}

fn serve_shared(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let limits = shared.limits;
    clear_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let owner = crate::sys::cred::euid();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("om-control".into())
        .spawn(move || {
            let mut refusals = Throttle::new(Duration::from_secs(1));
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(s) => {
                        let s = Arc::new(s);
                        let Some(slot) = shared.admit(&s) else {
                            refuse_busy(&s, limits.max_connections, &mut refusals);
                            continue;
                        };
                        let node = node.clone();
                        let spawned = std::thread::Builder::new()
                            .name("om-control-conn".into())
                            .spawn(move || connection(&s, &slot, &node, owner));
                        if let Err(e) = spawned {
                            tracing::warn!(error = %e, "control connection dropped: no thread");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })
}

/// Wakes a server blocked in accept() so it sees `stop`.
pub fn wake(path: &Path) {
    let _ = UnixStream::connect(path);
}

/// What the server's threads share.
#[derive(Debug)]
struct Shared {
    limits: Limits,
    budget: Budget,
    /// The connections being served, one thread each.
    slots: Mutex<Vec<Slot>>,
    /// Signalled when a connection's thread ends.
    freed: Condvar,
    next_id: AtomicU64,
    /// Frames refused before they could be decoded (garbage, stalls,
    /// over the budget) are logged at most once a second.
    frame_log: Mutex<Throttle>,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    stream: Arc<UnixStream>,
    /// Since when the connection has waited for a request; `None` while
    /// one is read or handled.
    idle_since: Option<Instant>,
    /// Shut down to make room for another connection.
    evicted: bool,
}

/// How long the accepting thread waits for an evicted connection's thread
/// to end (it ends at once: its read returns end of file).
const EVICTION_WAIT: Duration = Duration::from_secs(1);

impl Shared {
    fn new(limits: Limits) -> Shared {
        Shared {
            limits,
            budget: Budget::new(limits.max_buffered),
            slots: Mutex::new(Vec::new()),
            freed: Condvar::new(),
            next_id: AtomicU64::new(0),
            frame_log: Mutex::new(Throttle::new(Duration::from_secs(1))),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection. When all are taken, the connection
    /// idle the longest, with no request waiting in its socket, is shut
    /// down to make room, so idle connections cannot keep the owner out.
    /// `None` when every connection is busy with a request.
    fn admit(self: &Arc<Self>, stream: &Arc<UnixStream>) -> Option<SlotGuard> {
        let max = self.limits.max_connections;
        let mut slots = self.slots();
        if slots.len() >= max {
            let ending = slots.iter().any(|c| c.evicted);
            let victim = slots
                .iter_mut()
                .filter(|c| !c.evicted && c.idle_since.is_some())
                .filter(|c| !crate::sys::cred::has_pending_input(&c.stream))
                .min_by_key(|c| c.idle_since);
            match victim {
                Some(v) => {
                    v.evicted = true;
                    let _ = v.stream.shutdown(std::net::Shutdown::Both);
                    tracing::debug!(
                        idle_ms = v.idle_since.map_or(0, |t| t.elapsed().as_millis() as u64),
                        "idle control connection closed to make room for a new one"
                    );
                }
                // One closed earlier is still ending: its place is coming.
                None if ending => {}
                None => return None,
            }
            slots = self
                .freed
                .wait_timeout_while(slots, EVICTION_WAIT, |s| s.len() >= max)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if slots.len() >= max {
                return None;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        slots.push(Slot {
            id,
            stream: stream.clone(),
            idle_since: Some(Instant::now()),
            evicted: false,
        });
        Some(SlotGuard {
            shared: self.clone(),
            id,
        })
    }
}

/// A connection's place among the [`Shared::slots`], freed on drop.
#[derive(Debug)]
struct SlotGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl SlotGuard {
    /// Marks the connection busy with a request; false if it was evicted
    /// meanwhile (its socket is shut down).
    fn busy(&self) -> bool {
        let mut slots = self.shared.slots();
        match slots.iter_mut().find(|c| c.id == self.id) {
            Some(c) if !c.evicted => {
                c.idle_since = None;
                true
            }
            _ => false,
        }
    }

    /// Marks the connection idle (waiting for its next request).
    fn idle(&self) {
        if let Some(c) = self.shared.slots().iter_mut().find(|c| c.id == self.id) {
            c.idle_since = Some(Instant::now());
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.slots().retain(|c| c.id != self.id);
        self.shared.freed.notify_all();
    }
}

/// At most one log line per `every`; the events in between are counted
/// and reported with the next.
#[derive(Debug)]
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(events suppressed since the last line)` when a line may be
    /// logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Tells a connection beyond the cap to try again, and closes it (on the
/// accepting thread; the socket is new, so its buffer takes the reply).
fn refuse_busy(s: &UnixStream, max: usize, log: &mut Throttle) {
    if let Some(suppressed) = log.allow(Instant::now()) {
        tracing::warn!(
            max,
            refused_since_last_warning = suppressed,
            "control connection refused: every connection is busy with a request"
        );
    }
    let _ = s.set_nonblocking(true);
    let mut w = s;
    let _ = write_msg(
        &mut w,
        &Response::Error {
            message: format!("too many control connections ({max}); try again"),
        },
    );
}

/// Reads from a socket until a deadline: each read waits at most the time
/// left, so a client trickling bytes cannot stretch a request.
struct Deadline<'a> {
    s: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.s.set_read_timeout(Some(left))?;
        let mut s = self.s;
        s.read(buf)
    }
}

/// Waits up to `timeout` for bytes to read, without taking them: `false`
/// at end of file.
fn wait_for_request(s: &UnixStream, timeout: Duration) -> std::io::Result<bool> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match crate::sys::cred::wait_for_input(s) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

fn connection(s: &UnixStream, slot: &SlotGuard, node: &Node, owner: u32) {
    let limits = slot.shared.limits;
    let mut w = s;
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(limits.request_timeout));
    match crate::sys::cred::peer_cred(s) {
        Ok((pid, uid, _)) if uid == owner || uid == 0 => {
            tracing::debug!(pid, uid, "control connection");
        }
        Ok((pid, uid, _)) => {
            tracing::warn!(
                pid,
                uid,
                owner,
                "control request refused: peer uid is not the dataplane's owner"
            );
            let _ = write_msg(
                &mut w,
                &Response::Error {
                    message: format!(
                        "permission denied: uid {uid} is not the dataplane's owner ({owner})"
                    ),
                },
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "control request refused: no peer credentials");
            return;
        }
    }
    loop {
        // Wait for a request to begin, leaving its first byte in the socket
        // so that the connection is never taken for an idle one once it
        // has a request (see Shared::admit).
        match wait_for_request(s, limits.idle_timeout) {
            Ok(true) => {}
            // Closed by the client (done), or evicted.
            Ok(false) => return,
            Err(e) if timed_out(&e) => {
                tracing::debug!("idle control connection closed");
                let _ = write_msg(
                    &mut w,
                    &Response::Error {
                        message: format!(
                            "no request for {:?}; closing the connection",
                            limits.idle_timeout
                        ),
                    },
                );
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "control connection failed");
                return;
            }
        }
        if !slot.busy() {
            return;
        }
        let mut r = Deadline {
            s,
            until: Instant::now() + limits.request_timeout,
        };
        let frame = match read_frame_budgeted(&mut r, &slot.shared.budget) {
            Ok(f) => f,
            Err(e) => {
                let logged = slot
                    .shared
                    .frame_log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .allow(Instant::now());
                if let Some(suppressed) = logged {
                    tracing::warn!(
                        reason = %e,
                        refused_since_last_warning = suppressed,
                        "control request refused"
                    );
                }
                let _ = write_msg(
                    &mut w,
                    &Response::Error {
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let resp = match decode_request(frame.encoding, &frame.body) {
            Ok(req) => handle(node, req),
            Err(message) => Response::Error { message },
        };
        // The payload is given back to the budget before the reply goes
        // out, so a client that has its reply can count on it.
        drop(frame);
        if let Response::Error { message } = &resp {
            tracing::warn!(reason = %message, "control request refused");
        }
        if write_msg(&mut w, &resp).is_err() {
            return;
        }
        slot.idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::FibSnapshot;

    fn spec(version: u64) -> FibSpec {
        FibSpec::parse(&format!(
            "version = {version}\n[[ports]]\nname = \"a\"\n[[next_hops]]\nname = \"n\"\nport = \"a\"\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n[[labels]]\nlabel = 16000\naction = \"swap\"\nnext_hop = \"n\"\n"
        ))
        .unwrap()
    }

    fn binary_frame(op: u8, fib: &[u8]) -> Vec<u8> {
        let body = [&[op][..], &0u64.to_be_bytes(), fib].concat();
        [
            &MAGIC[..],
            &[VERSION, ENC_BINARY_FIB, 0, 0],
            &(body.len() as u32).to_be_bytes(),
            &body,
        ]
        .concat()
    }

    #[test]
    fn a_refusal_before_the_body_is_read_reaches_the_client() {
        // A peer that reads only the header, answers an error and closes
        // (what a dataplane does with a frame it cannot take): the client,
        // still writing a large FIB, gets the error, not "broken pipe".
        let dir = std::env::temp_dir().join(format!("om-refuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.sock");
        let l = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut hdr = [0u8; 12];
            c.read_exact(&mut hdr).unwrap();
            let msg = Response::Error {
                message: "protocol version 2 not supported".into(),
            };
            write_msg(&mut c, &msg).unwrap();
        });
        let mut big = spec(5);
        big.labels = (16..300_000)
            .map(|l| crate::fib::spec::LabelSpec {
                label: l,
                action: crate::fib::spec::ActionSpec::Pop,
                out_label: None,
                group: None,
                next_hop: None,
            })
            .collect();
        let r = call(
            &path,
            &Request::LoadFib {
                fib: big,
                allow_empty: false,
            },
        );
        t.join().unwrap();
        assert_eq!(
            r,
            Ok(Response::Error {
                message: "protocol version 2 not supported".into()
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn requests_over_the_socket() {
        let dir = std::env::temp_dir().join(format!("om-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dp.sock");
        let node = Arc::new(Node::new(
            "n1",
            vec!["a".into(), "b".into()],
            FibSnapshot::empty(1),
            1,
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let t = serve(&path, node.clone(), stop.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        assert_eq!(
            call(
                &path,
                &Request::LoadFib {
                    fib: spec(2),
                    allow_empty: false
                }
            ),
            Ok(Response::Ok { version: 2 })
        );
        let far = now_ns() + 3_600_000_000_000;
        assert_eq!(
            call(
                &path,
                &Request::StageFib {
                    fib: spec(3),
                    at_ns: far,
                    allow_empty: false
                }
            ),
            Ok(Response::Ok { version: 3 })
        );
        let Ok(Response::Version(v)) = call(&path, &Request::Version) else {
            panic!()
        };
        assert_eq!(
            (v.active, v.staged, v.previous),
            (2, Some((3, far)), Some(1))
        );
        assert_eq!(call(&path, &Request::Swap), Ok(Response::Ok { version: 3 }));
        assert_eq!(
            call(&path, &Request::Rollback),
            Ok(Response::Ok { version: 2 })
        );
        // One step back, not a toggle back to 3.
        let Ok(Response::Error { message }) = call(&path, &Request::Rollback) else {
            panic!("a second rollback went somewhere")
        };
        assert!(
            message.starts_with("no previous FIB to roll back to"),
            "{message}"
        );

        // A bad FIB is refused whole; the running one stays.
        let mut bad = spec(9);
        bad.next_hops[0].dst_mac = "zz".into();
        let Ok(Response::Error { message }) = call(
            &path,
            &Request::LoadFib {
                fib: bad,
                allow_empty: false,
            },
        ) else {
            panic!()
        };
        assert!(message.contains("next hop \"n\": dst_mac"), "{message}");
        let Ok(Response::Version(v)) = call(&path, &Request::Version) else {
            panic!()
        };
        assert_eq!(v.active, 2);

        assert!(matches!(
            call(
                &path,
                &Request::SetPort {
                    port: "b".into(),
                    up: false
                }
            ),
            Ok(Response::Ok { .. })
        ));
        assert!(!node.live.admin(1));
        assert!(matches!(
            call(
                &path,
                &Request::SetPort {
                    port: "zz".into(),
                    up: false
                }
            ),
            Ok(Response::Error { .. })
        ));
        let Ok(Response::Stats(s)) = call(&path, &Request::Stats) else {
            panic!()
        };
        assert_eq!(s.ports.len(), 2);
        assert!(!s.ports[1].admin_up);

        // Garbage, wrong version, oversized: an error reply, and the server lives on.
        for raw in [
            b"GARBAGE-GARBAGE".to_vec(),
            [&MAGIC[..], &[3, 0, 0, 0], &[0, 0, 0, 2], b"{}"].concat(),
            [&MAGIC[..], &[1, 1, 0, 0], &[0, 0, 0, 2], b"{}"].concat(),
            [&MAGIC[..], &[1, 0, 0, 0], &(u32::MAX).to_be_bytes()].concat(),
            [&MAGIC[..], &[1, 0, 0, 0], &[0, 0, 0, 7], b"{\"op\":1"].concat(),
            // Binary FIB frames: unknown encoding, short header, bad
            // operation, a FIB cut short.
            [&MAGIC[..], &[1, 9, 0, 0], &[0, 0, 0, 2], b"{}"].concat(),
            [&MAGIC[..], &[1, 1, 0, 0], &[0, 0, 0, 3], &[0, 0, 0]].concat(),
            binary_frame(7, &spec(9).to_binary().unwrap()),
            binary_frame(0, &spec(9).to_binary().unwrap()[..40]),
        ] {
            let mut s = UnixStream::connect(&path).unwrap();
            s.write_all(&raw).unwrap();
            let body = read_frame(&mut s).unwrap();
            let r: Response = serde_json::from_slice(&body).unwrap();
            assert!(matches!(r, Response::Error { .. }), "{r:?}");
        }
        assert!(matches!(
            call(&path, &Request::Version),
            Ok(Response::Version(_))
        ));
        // A well-formed binary load is taken (call() sends FIBs that way).
        let mut raw = UnixStream::connect(&path).unwrap();
        raw.write_all(&binary_frame(0, &spec(11).to_binary().unwrap()))
            .unwrap();
        let r: Response = serde_json::from_slice(&read_frame(&mut raw).unwrap()).unwrap();
        assert_eq!(r, Response::Ok { version: 11 });
        stop.store(true, Ordering::Relaxed);
        wake(&path);
        t.join().unwrap();
        assert!(!path.exists(), "the socket file is removed on exit");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A JSON frame whose payload is `body`.
    fn json_frame(body: &[u8]) -> Vec<u8> {
        [
            &MAGIC[..],
            &[1, ENC_JSON, 0, 0],
            &(body.len() as u32).to_be_bytes(),
            body,
        ]
        .concat()
    }

    /// `{"op":"version"}` padded with spaces to `len` bytes (JSON allows it).
    fn version_request(len: usize) -> Vec<u8> {
        let mut b = br#"{"op":"version"}"#.to_vec();
        b.resize(len, b' ');
        b
    }

    /// A server on a socket of its own, stopped on drop.
    struct TestServer {
        dir: std::path::PathBuf,
        path: std::path::PathBuf,
        node: Arc<Node>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl TestServer {
        fn start(tag: &str, limits: Limits) -> TestServer {
            let dir = std::env::temp_dir().join(format!("om-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("dp.sock");
            let node = Arc::new(Node::new("n1", vec!["a".into()], FibSnapshot::empty(1), 1));
            let stop = Arc::new(AtomicBool::new(false));
            let shared = Arc::new(Shared::new(limits));
            let thread = serve_shared(&path, node.clone(), stop.clone(), shared.clone()).unwrap();
            TestServer {
                dir,
                path,
                node,
                shared,
                stop,
                thread: Some(thread),
            }
        }

        fn connect(&self) -> UnixStream {
            let s = UnixStream::connect(&self.path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            wake(&self.path);
            if let Some(t) = self.thread.take() {
                t.join().unwrap();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn reply(s: &mut UnixStream) -> Response {
        serde_json::from_slice(&read_frame(s).unwrap()).unwrap()
    }

    fn error_of(r: Response) -> String {
        match r {
            Response::Error { message } => message,
            r => panic!("expected an error, got {r:?}"),
        }
    }

    /// True once the server has closed `s` (end of file, or reset).
    fn closed(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 64];
        loop {
            match s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => return e.kind() == ErrorKind::ConnectionReset,
            }
        }
    }

    fn short(idle_ms: u64, request_ms: u64) -> Limits {
        Limits {
            idle_timeout: Duration::from_millis(idle_ms),
            request_timeout: Duration::from_millis(request_ms),
            ..Limits::default()
        }
    }

    #[test]
    fn reserved_header_bytes_must_be_zero() {
        for reserved in [[0u8, 1], [0x80, 0]] {
            let mut f = json_frame(&version_request(16));
            f[6..8].copy_from_slice(&reserved);
            let e = read_frame_enc(&mut &f[..]).unwrap_err();
            assert!(matches!(e, FrameError::Reserved(..)), "{e:?}");
            assert!(e.to_string().contains("reserved header bytes must be zero"));
        }
        assert!(read_frame_enc(&mut &json_frame(&version_request(16))[..]).is_ok());
        // An unknown encoding is refused with the header too.
        let mut f = json_frame(b"{}");
        f[4..6].copy_from_slice(&[2, 7]);
        assert!(matches!(
            read_frame_enc(&mut &f[..]),
            Err(FrameError::Encoding(7))
        ));
    }

    /// Reads what it is given, then nothing (end of file), and notes the
    /// largest buffer it was asked to fill.
    struct Probe<'a> {
        data: &'a [u8],
        largest: usize,
    }

    impl Read for Probe<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.data.read(buf)
        }
    }

    #[test]
    fn an_announced_length_is_not_allocated_before_it_arrives() {
        let len = 200 << 20;
        let f = [
            &MAGIC[..],
            &[1, ENC_JSON, 0, 0],
            &(len as u32).to_be_bytes(),
            b"{\"op\":",
        ]
        .concat();
        let budget = Budget::new(MAX_BUFFERED);
        let mut p = Probe {
            data: &f,
            largest: 0,
        };
        let e = read_frame_budgeted(&mut p, &budget).unwrap_err();
        assert!(
            matches!(e, FrameError::ClosedInPayload { got: 6, len: l } if l == len),
            "{e:?}"
        );
        assert!(p.largest <= FIRST_CHUNK, "buffer of {} bytes", p.largest);
        assert_eq!(budget.in_use(), 0, "the reservation is given back");
    }

    #[test]
    fn frames_beyond_the_budget_are_refused_until_it_is_given_back() {
        let budget = Budget::new(1000);
        let f = json_frame(&version_request(800));
        let first = read_frame_budgeted(&mut &f[..], &budget).unwrap();
        assert_eq!(budget.in_use(), 800);
        let e = read_frame_budgeted(&mut &f[..], &budget).unwrap_err();
        assert!(
            matches!(
                e,
                FrameError::OverBudget {
                    len: 800,
                    free: 200,
                    total: 1000
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("try again"), "{e}");
        // A small one still fits.
        let small = json_frame(&version_request(100));
        drop(read_frame_budgeted(&mut &small[..], &budget).unwrap());
        drop(first);
        assert_eq!(budget.in_use(), 0);
        let again = read_frame_budgeted(&mut &f[..], &budget).unwrap();
        assert_eq!(again.body, version_request(800));
    }

    #[test]
    fn the_budget_is_shared_by_the_connections() {
        let limits = Limits {
            max_buffered: 1000,
            ..short(5_000, 5_000)
        };
        let srv = TestServer::start("budget", limits);
        // A request of 800 bytes, stalled after 100 of them.
        let full = json_frame(&version_request(800));
        let mut stalled = srv.connect();
        stalled.write_all(&full[..HEADER_LEN + 100]).unwrap();
        let t0 = Instant::now();
        while srv.shared.budget.in_use() < 800 {
            assert!(t0.elapsed() < Duration::from_secs(5), "header never read");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Another 800-byte request does not fit while it is read.
        let mut c = srv.connect();
        c.write_all(&full).unwrap();
        let message = error_of(reply(&mut c));
        assert!(
            message.contains("does not fit the control socket's buffer")
                && message.contains("200 of 1000 bytes free"),
            "{message}"
        );
        // A small one does.
        let mut c = srv.connect();
        c.write_all(&json_frame(&version_request(150))).unwrap();
        assert!(matches!(reply(&mut c), Response::Version(_)));
        // Once the stalled request is complete and answered, its bytes are
        // given back.
        stalled.write_all(&full[HEADER_LEN + 100..]).unwrap();
        assert!(matches!(reply(&mut stalled), Response::Version(_)));
        let mut c = srv.connect();
        c.write_all(&full).unwrap();
        assert!(matches!(reply(&mut c), Response::Version(_)));
    }

    #[test]
    fn a_stalled_request_times_out_with_a_clear_message() {
        let srv = TestServer::start("stall", short(5_000, 300));
        let full = json_frame(&version_request(100));
        // Stalled in the header, then in the payload.
        for (cut, part) in [
            (5, "header: 5 of 12"),
            (HEADER_LEN + 10, "payload: 10 of 100"),
        ] {
            let mut s = srv.connect();
            let t0 = Instant::now();
            s.write_all(&full[..cut]).unwrap();
            let m = error_of(reply(&mut s));
            assert!(
                m.starts_with("timed out waiting for the rest of the request") && m.contains(part),
                "{m}"
            );
            assert!(t0.elapsed() >= Duration::from_millis(300));
            assert!(closed(&mut s));
        }
        // Trickling a byte at a time does not stretch the deadline: the
        // whole request must arrive within it.
        let mut s = srv.connect();
        let t0 = Instant::now();
        for b in &full[..10] {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let m = error_of(reply(&mut s));
        assert!(m.contains("header: "), "{m}");
        assert!(t0.elapsed() < Duration::from_millis(1_500));
    }

    #[test]
    fn idle_connections_are_closed() {
        let srv = TestServer::start("idle", short(200, 5_000));
        // Idle from the start.
        let mut s = srv.connect();
        std::thread::sleep(Duration::from_millis(400));
        let m = error_of(reply(&mut s));
        assert!(
            m.contains("no request for 200ms; closing the connection"),
            "{m}"
        );
        assert!(closed(&mut s));
        // Idle after a request: the reply, then the notice.
        let mut s = srv.connect();
        s.write_all(&json_frame(&version_request(16))).unwrap();
        assert!(matches!(reply(&mut s), Response::Version(_)));
        s.write_all(&json_frame(&version_request(16))).unwrap();
        assert!(matches!(reply(&mut s), Response::Version(_)));
        let m = error_of(reply(&mut s));
        assert!(m.contains("no request for"), "{m}");
    }

    #[test]
    fn connections_beyond_the_cap_are_refused_and_idle_ones_make_room() {
        let limits = Limits {
            max_connections: 4,
            ..short(10_000, 10_000)
        };
        let srv = TestServer::start("cap", limits);
        let version = |s: &Path| call(s, &Request::Version);

        // Idle connections (as many as the cap, and more) do not keep the
        // owner out: the one idle the longest is closed to make room.
        let mut idle: Vec<UnixStream> = (0..4).map(|_| srv.connect()).collect();
        assert!(matches!(version(&srv.path), Ok(Response::Version(_))));
        idle.extend((0..10).map(|_| srv.connect()));
        assert!(matches!(version(&srv.path), Ok(Response::Version(_))));
        // The oldest were closed, without a word.
        assert!(closed(&mut idle[0]));

        // Connections in the middle of a request are not closed: beyond the
        // cap, a new one is told to try again.
        drop(idle);
        let t0 = Instant::now();
        while !srv.shared.slots().is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "idle ones never ended"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let partial = &json_frame(&version_request(16))[..5];
        let mut busy: Vec<UnixStream> = (0..4)
            .map(|_| {
                let mut s = srv.connect();
                s.write_all(partial).unwrap();
                s
            })
            .collect();
        let m = error_of(version(&srv.path).unwrap());
        assert_eq!(m, "too many control connections (4); try again");
        let mut raw = srv.connect();
        assert_eq!(
            error_of(reply(&mut raw)),
            "too many control connections (4); try again"
        );
        assert!(closed(&mut raw));
        // Each busy one is still served when its request completes.
        for s in &mut busy {
            s.write_all(&json_frame(&version_request(16))[5..]).unwrap();
            assert!(matches!(reply(s), Response::Version(_)));
        }
        // Idle again once their replies are out (the thread marks its
        // connection idle just after writing): the next command gets in.
        let t0 = Instant::now();
        while !srv.shared.slots().iter().all(|c| c.idle_since.is_some()) {
            assert!(t0.elapsed() < Duration::from_secs(5), "never idle");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(matches!(version(&srv.path), Ok(Response::Version(_))));
        // A load works and the FIB is taken.
        assert_eq!(
            call(
                &srv.path,
                &Request::LoadFib {
                    fib: spec(4),
                    allow_empty: false
                }
            ),
            Ok(Response::Ok { version: 4 })
        );
        assert_eq!(srv.node.fib.current().version(), 4);
    }

    #[test]
    fn serve_refuses_to_replace_anything_but_a_stale_socket() {
        let dir = std::env::temp_dir().join(format!("om-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let node = Arc::new(Node::new("n1", vec!["a".into()], FibSnapshot::empty(1), 1));
        let stop = Arc::new(AtomicBool::new(false));
        let start = |p: &Path| serve(p, node.clone(), stop.clone());

        // A regular file: refused, and left as it was.
        let file = dir.join("precious.conf");
        std::fs::write(&file, "keep me").unwrap();
        let e = start(&file).unwrap_err();
        assert!(
            e.to_string()
                .contains("exists and is not a socket; refusing to replace it"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
        // A directory and a symlink (even to a socket): refused too.
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(start(&sub)
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        assert!(sub.is_dir());
        let stale = dir.join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&stale, &link).unwrap();
        assert!(start(&link)
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());

        // A socket nobody listens on: left by a previous run, replaced.
        let t = start(&stale).unwrap();
        assert!(matches!(
            call(&stale, &Request::Version),
            Ok(Response::Version(_))
        ));
        // One in use: refused, and still served.
        let e = start(&stale).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        assert!(matches!(
            call(&stale, &Request::Version),
            Ok(Response::Version(_))
        ));
        stop.store(true, Ordering::Relaxed);
        wake(&stale);
        t.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn throttle_logs_once_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_millis(10)), None);
        assert_eq!(t.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(t.allow(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(t.allow(t0 + Duration::from_millis(1001)), None);
    }
}
