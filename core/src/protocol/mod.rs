//! The control protocol between a dataplane and its operators: typed
//! requests and replies, their framing and encodings, and a minimal client
//! ([`call`], [`call_at`]). The servers (a unix stream socket, mode 0600,
//! peer uid checked with SO_PEERCRED; and, when enabled, a TCP listener
//! that takes only signed orders) are the dataplane runtime's `ctl` module.
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
use crate::fib::spec::FibSpec;
use crate::schedule::Schedule;
use crate::sign::Signed;
use crate::stats::{FastPathCounters, PortTotals};
use serde::{Deserialize, Serialize};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod counter;
pub mod endpoint;
mod frame;

pub use counter::{Counter, CounterValues};
pub use endpoint::Endpoint;
pub use frame::*;

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
pub const MAX_MESSAGE: usize = crate::fib::spec::MAX_FILE_BYTES;
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
    /// Start `Stats`' counting afresh, like a router's "clear counters":
    /// the dataplane keeps the totals of this instant as a baseline and
    /// `Stats` reports the growth since. The workers' counters are not
    /// touched (no lock or store on the fast path), and the metrics
    /// endpoint keeps showing raw totals, which scrapers need monotonic.
    ClearCounters,
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
    /// Emulation only: the link behind `port` does not exist in orbit now
    /// (`gone`), so every frame sent on it is dropped and counted; its
    /// carrier stays up, as nothing on the node can tell (see
    /// `dataplane::delay_line`).
    SetLinkGone {
        port: String,
        gone: bool,
    },
    /// Hold this schedule and follow it (see `orbitmesh_core::schedule`):
    /// refused whole unless sound for this node; an upload of the schedule
    /// already held (same serial and content) changes nothing.
    LoadSchedule {
        schedule: Schedule,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_empty: bool,
        /// Required by a dataplane that trusts keys (`crate::sign`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Signed>,
    },
    /// The schedule held: its instants and versions, the entry in force.
    ShowSchedule,
    /// End the schedule; the FIB in force stays. A dataplane that trusts
    /// keys needs `serial` (above the last accepted) and its signature.
    ClearSchedule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serial: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Signed>,
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

impl Request {
    /// A request whose reply grows with the FIB (the readable FIB): the
    /// server builds and writes such replies one at a time.
    pub fn is_bulk(&self) -> bool {
        matches!(self, Request::ShowFib { .. } | Request::LoadSchedule { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok { version: u64 },
    Error { message: String },
    Version(VersionInfo),
    Stats(StatsInfo),
    Fib(Box<FibView>),
    Schedule(ScheduleInfo),
}

/// What `ShowSchedule` (and an accepted `LoadSchedule`) returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub node: String,
    /// The serial of the last schedule accepted (kept after a clear).
    pub serial: Option<u64>,
    /// (activation instant in ns since the Unix epoch, FIB version) of
    /// each entry; empty when no schedule is held.
    pub entries: Vec<(u64, u64)>,
    /// The index of the entry in force at `now_ns`.
    pub in_force: Option<usize>,
    pub now_ns: u64,
    /// Where the schedule is kept (`None`: memory only, lost on restart).
    pub state_dir: Option<String>,
    /// Whether orders must be signed (the dataplane trusts keys).
    #[serde(default)]
    pub signed_orders: bool,
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
    /// Whether the dataplane host's clock is synchronized (NTP/PTP), as its
    /// kernel says (adjtimex); `None` when unknown. Activation times are
    /// instants on this clock.
    #[serde(default)]
    pub clock_synchronized: Option<bool>,
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
    /// Every counter ([`Counter::ALL`] from a dataplane of this build).
    pub counters: CounterValues,
    pub ports: Vec<PortInfo>,
    /// When the counters were last cleared (`ClearCounters`): they count
    /// from then. `None`: since the dataplane started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at_ns: Option<u64>,
    /// The XDP transit fast path's counters (since `cleared_at_ns` too),
    /// beside `counters` and `ports`, which are the AF_XDP workers'. `None`:
    /// the fast path is off, or the dataplane predates it (the field is
    /// left out then, so either side of an older peer still parses). Boxed:
    /// it would double the size of every [`Response`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_path: Option<Box<FastPathCounters>>,
    /// Why the loaded fast path switches no frame now (a FIB it cannot
    /// hold): every frame goes to the AF_XDP workers meanwhile. `None`: it
    /// runs (or is not loaded, see `fast_path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_path_off: Option<String>,
}

/// Binary FIB request operations (the payload's first byte), and the flag
/// bit that allows an empty FIB.
pub const OP_LOAD: u8 = 0;
pub const OP_STAGE: u8 = 1;
pub const OP_ALLOW_EMPTY: u8 = 0x80;

/// Payload encodings (header byte 5).
pub const ENC_JSON: u8 = 0;
pub const ENC_BINARY_FIB: u8 = 1;

pub fn write_frame(w: &mut impl Write, encoding: u8, body: &[u8]) -> std::io::Result<()> {
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
            let allow_empty = body[0] & OP_ALLOW_EMPTY != 0;
            // The operation is checked before the FIB is decoded: an
            // unknown one is named, not hidden behind the FIB's errors.
            let op = body[0] & !OP_ALLOW_EMPTY;
            if op != OP_LOAD && op != OP_STAGE {
                return Err(format!(
                    "binary FIB request: unknown operation {op} (0 load, 1 stage)"
                ));
            }
            let fib = FibSpec::decode(&body[9..], crate::fib::spec::FibFormat::Binary)
                .map_err(|e| e.to_string())?;
            Ok(match op {
                OP_LOAD => Request::LoadFib { fib, allow_empty },
                _ => Request::StageFib {
                    fib,
                    at_ns,
                    allow_empty,
                },
            })
        }
        e => Err(format!(
            "payload encoding {e} not supported (0 JSON, 1 binary FIB)"
        )),
    }
}

/// A minimal client: one request, one response, over the dataplane's
/// unix control socket.
pub fn call(socket: &Path, req: &Request) -> Result<Response, String> {
    call_at(&Endpoint::Socket(socket.to_path_buf()), req)
}

/// How long a client waits for its reply (and, over TCP, to connect).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client waits for a TCP connection to be set up, per address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request, one response, over the unix socket or the remote (TCP)
/// channel: the same frames either way.
pub fn call_at(at: &Endpoint, req: &Request) -> Result<Response, String> {
    // Encoded before connecting: the dataplane closes a connection on which
    // no request begins within its idle timeout.
    let mut frame = Vec::new();
    write_request(&mut frame, req).map_err(|e| format!("encoding the request: {e}"))?;
    match at {
        Endpoint::Socket(p) => {
            let s = UnixStream::connect(p)
                .map_err(|e| format!("cannot connect to {}: {e}", p.display()))?;
            s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
            exchange(s, &frame)
        }
        Endpoint::Tcp(addr) => {
            let s = connect_tcp(addr)?;
            s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
            s.set_write_timeout(Some(REPLY_TIMEOUT)).ok();
            // One small request, one reply: no reason to wait for more bytes.
            s.set_nodelay(true).ok();
            exchange(s, &frame)
        }
    }
}

/// Connects to `addr` (HOST:PORT), trying each address it resolves to.
fn connect_tcp(addr: &str) -> Result<TcpStream, String> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?;
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr} ({a}): {e}"),
        }
    }
    Err(last)
}

/// Writes an encoded request and reads its reply.
fn exchange<S: Read + Write>(mut s: S, frame: &[u8]) -> Result<Response, String> {
    let reply_error = |e: FrameError| match e {
        FrameError::Closed => "the dataplane closed the connection without a reply".to_string(),
        FrameError::Idle => format!("no reply from the dataplane within {REPLY_TIMEOUT:?}"),
        e if e.is_timeout() => "timed out waiting for the rest of the reply".to_string(),
        e => e.to_string(),
    };
    if let Err(e) = s.write_all(frame) {
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
