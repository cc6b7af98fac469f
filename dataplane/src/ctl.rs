//! The control socket: a unix stream socket (mode 0600, peer uid checked
//! with SO_PEERCRED) speaking a small versioned, framed protocol.
//!
//! Frame: `b"OMCP"`, protocol version (u8: 2; 1 = JSON only), encoding (u8: 0
//! JSON, 1 binary FIB), two reserved zero bytes, payload length (u32, big
//! endian), then the payload: one [`Request`] from the client, one
//! [`Response`] (always JSON) back. A binary payload carries a FIB to load
//! or stage: u8 operation (0 load, 1 stage), u64 activation time (ns, 0 for
//! a load), then the FIB in the binary file format (fib::binary), which
//! parses about 10x faster than JSON; clients send FIBs this way. Payloads above
//! [`MAX_MESSAGE`] are refused before they are read. A malformed message
//! gets an `Error` response; forwarding never stops. Every refused request
//! is logged with its reason.

use crate::fib::spec::FibSpec;
use crate::node::{now_ns, Node, PortTotals};
use crate::stats::Counters;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const MAGIC: &[u8; 4] = b"OMCP";
/// Longest emulated link delay accepted.
pub const MAX_DELAY_NS: u64 = 1_000_000_000;
/// Protocol version 2 added binary FIB payloads; version 1 frames (JSON
/// only) are still accepted, and JSON frames are still sent as version 1,
/// so older peers keep working and a binary frame sent to an older
/// dataplane is refused with a clear "version 2 not supported".
pub const VERSION: u8 = 2;
/// Largest payload accepted (a FIB of about a million entries in JSON).
pub const MAX_MESSAGE: usize = 256 << 20;

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
    /// Reactivate the previous FIB.
    Rollback,
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
    let mut hdr = [0u8; 12];
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

/// Reads one frame's payload, refusing bad magic, versions and sizes.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, String> {
    read_frame_enc(r).map(|(_, b)| b)
}

/// Reads one frame: (encoding, payload).
pub fn read_frame_enc(r: &mut impl Read) -> Result<(u8, Vec<u8>), String> {
    let mut hdr = [0u8; 12];
    r.read_exact(&mut hdr)
        .map_err(|e| format!("reading header: {e}"))?;
    if &hdr[..4] != MAGIC {
        return Err("not an orbitmesh control message (bad magic)".into());
    }
    if hdr[4] == 0 || hdr[4] > VERSION {
        return Err(format!(
            "protocol version {} not supported (this dataplane speaks 1 and {VERSION})",
            hdr[4]
        ));
    }
    if hdr[4] == 1 && hdr[5] != ENC_JSON {
        return Err("protocol version 1 carries JSON only (binary FIBs need version 2)".into());
    }
    let len = u32::from_be_bytes(hdr[8..].try_into().expect("4 bytes")) as usize;
    if len > MAX_MESSAGE {
        return Err(format!(
            "message of {len} bytes exceeds the limit of {MAX_MESSAGE}"
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .map_err(|e| format!("reading {len}-byte payload: {e}"))?;
    Ok((hdr[5], body))
}

/// A minimal client: one request, one response.
pub fn call(socket: &Path, req: &Request) -> Result<Response, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    if let Err(e) = write_request(&mut s, req) {
        // The dataplane may have refused the header and closed the socket
        // while we were still writing: its error reply says why.
        return match read_frame(&mut s).map(|b| serde_json::from_slice::<Response>(&b)) {
            Ok(Ok(r @ Response::Error { .. })) => Ok(r),
            _ => Err(format!("sending: {e}")),
        };
    }
    let body = read_frame(&mut s)?;
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
        Request::Rollback => match node.fib.rollback() {
            Some(v) => Response::Ok { version: v },
            None => err("no previous FIB to roll back to".into()),
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

/// Serves the control socket until `stop` is set and [`wake`] is called.
/// The listener blocks in accept(), so a request is served at once; each
/// connection is handled on its own short-lived thread.
pub fn serve(
    path: &Path,
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if path.exists() {
        // A socket left by a previous run; refuse if someone is listening.
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running dataplane", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let owner = crate::sys::cred::euid();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("om-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(s) => {
                        let node = node.clone();
                        let _ = std::thread::Builder::new()
                            .name("om-control-conn".into())
                            .spawn(move || connection(s, &node, owner));
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

fn connection(mut s: UnixStream, node: &Node, owner: u32) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    match crate::sys::cred::peer_cred(&s) {
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
                &mut s,
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
        let (enc, body) = match read_frame_enc(&mut s) {
            Ok(b) => b,
            Err(e)
                if e.contains("failed to fill whole buffer") && e.starts_with("reading header") =>
            {
                return
            }
            Err(e) => {
                tracing::warn!(reason = %e, "control request refused");
                let _ = write_msg(&mut s, &Response::Error { message: e });
                return;
            }
        };
        let resp = match decode_request(enc, &body) {
            Ok(req) => handle(node, req),
            Err(message) => Response::Error { message },
        };
        if let Response::Error { message } = &resp {
            tracing::warn!(reason = %message, "control request refused");
        }
        if write_msg(&mut s, &resp).is_err() {
            return;
        }
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
}
