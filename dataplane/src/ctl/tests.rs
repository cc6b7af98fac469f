//! Tests of the control socket: protocol, limits, refusals.

use super::*;
use orbitmesh_core::fib::FibSnapshot;
use std::io::Write;

fn spec(version: u64) -> FibSpec {
    FibSpec::parse(&format!(
        "version = {version}\n[[ports]]\nname = \"a\"\n[[next_hops]]\nname = \"n\"\nport = \"a\"\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n[[labels]]\nlabel = 16000\naction = \"swap\"\nnext_hop = \"n\"\n"
    ))
    .unwrap()
}

/// `spec` with its labels replaced by pops of 16..`top`: a large FIB.
fn with_pop_labels(mut spec: FibSpec, top: u32) -> FibSpec {
    spec.labels = (16..top)
        .map(|l| orbitmesh_core::fib::spec::LabelSpec {
            label: l,
            action: orbitmesh_core::fib::spec::ActionSpec::Pop,
            out_label: None,
            group: None,
            next_hop: None,
        })
        .collect();
    spec
}

fn routed() -> FibSpec {
    let mut s = spec(1);
    for p in ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"] {
        s.routes.push(orbitmesh_core::fib::spec::RouteSpec {
            prefix: p.parse().unwrap(),
            group: None,
            next_hop: s.next_hop_named("n"),
        });
    }
    s
}

#[test]
fn show_fib_filters_by_prefix_and_longest_match() {
    let kept = |p: &str| -> Vec<String> {
        let s = filter(routed(), None, Some(p)).unwrap();
        s.routes.into_iter().map(|r| r.prefix.to_string()).collect()
    };
    assert_eq!(kept("10.1.0.0/16"), ["10.1.0.0/16"]);
    assert_eq!(kept("10.1.2.3"), ["10.1.0.0/16"]);
    assert_eq!(kept("10.2.0.1"), ["10.0.0.0/8"]);
    assert_eq!(kept("2001:db8::9"), ["2001:db8::/32"]);
    assert!(kept("192.0.2.1").is_empty());
    assert!(kept("10.2.0.0/16").is_empty());
}

#[test]
fn show_fib_refuses_a_prefix_it_cannot_read() {
    let e = filter(routed(), None, Some("10.1.0.0/16x")).unwrap_err();
    assert!(matches!(e, CtlError::NotAPrefix { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("\"10.1.0.0/16x\" is not a prefix: "),
        "{e}"
    );
    let e = filter(routed(), None, Some("10.1.0.1/16")).unwrap_err();
    assert!(
        matches!(
            &e,
            CtlError::NotAPrefix {
                error: orbitmesh_core::fib::PrefixError::HostBits { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("did you mean 10.1.0.0/16?"), "{e}");
    let e = filter(routed(), None, Some("ground")).unwrap_err();
    assert!(
        matches!(&e, CtlError::NotAnAddress { text } if text == "ground"),
        "{e}"
    );
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
fn refusal_reasons_are_logged_cut_to_a_bounded_length() {
    use super::server::{loggable, MAX_LOGGED_REASON};
    assert_eq!(loggable("no port named \"x\""), "no port named \"x\"");
    // What `show_fib` with a 10 MB prefix is refused with.
    let node = Node::new("t", vec!["a".into()], FibSnapshot::empty(1), 1);
    let Response::Error { message } = handle(
        &node,
        Request::ShowFib {
            label: None,
            prefix: Some("é".repeat(5_000_000)),
        },
    ) else {
        panic!("accepted")
    };
    let logged = loggable(&message);
    assert!(logged.len() < MAX_LOGGED_REASON + 40, "{}", logged.len());
    assert!(
        logged.ends_with(&format!("… ({} bytes in all)", message.len())),
        "{}",
        &logged[logged.len() - 40..]
    );
}

#[test]
fn an_unknown_binary_operation_is_named_whatever_follows_it() {
    let body = |op: u8| [&[op][..], &0u64.to_be_bytes()].concat();
    let e = decode_request(ENC_BINARY_FIB, &body(9)).unwrap_err();
    assert_eq!(
        e,
        "binary FIB request: unknown operation 9 (0 load, 1 stage)"
    );
    let e = decode_request(ENC_BINARY_FIB, &body(9 | OP_ALLOW_EMPTY)).unwrap_err();
    assert!(e.contains("unknown operation 9"), "{e}");
    // A known operation goes on to the FIB (here: none).
    let e = decode_request(ENC_BINARY_FIB, &body(OP_LOAD)).unwrap_err();
    assert!(e.starts_with("binary FIB: "), "{e}");
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
    let big = with_pop_labels(spec(5), 300_000);
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
    // A MAC that is not one cannot be put in a typed spec: the request
    // carries it as JSON text, as a client could.
    let mut bad = serde_json::to_value(Request::LoadFib {
        fib: spec(9),
        allow_empty: false,
    })
    .unwrap();
    bad["fib"]["next_hops"][0]["dst_mac"] = "zz".into();
    let mut raw = UnixStream::connect(&path).unwrap();
    raw.write_all(&json_frame(&serde_json::to_vec(&bad).unwrap()))
        .unwrap();
    let message = error_of(reply(&mut raw));
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

/// A [`Server`] on a socket in a directory of its own, both removed on drop.
struct TestServer {
    dir: std::path::PathBuf,
    server: Option<Server>,
}

impl std::ops::Deref for TestServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        self.server.as_ref().expect("serving until dropped")
    }
}

impl TestServer {
    fn start(tag: &str, limits: Limits) -> TestServer {
        let dir = std::env::temp_dir().join(format!("om-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let node = Arc::new(Node::new("n1", vec!["a".into()], FibSnapshot::empty(1), 1));
        let server = Server::start_with(&dir.join("dp.sock"), node, limits).unwrap();
        TestServer {
            dir,
            server: Some(server),
        }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.path()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.server.take());
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
    assert!(matches!(version(srv.path()), Ok(Response::Version(_))));
    idle.extend((0..10).map(|_| srv.connect()));
    assert!(matches!(version(srv.path()), Ok(Response::Version(_))));
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
    let m = error_of(version(srv.path()).unwrap());
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
    assert!(matches!(version(srv.path()), Ok(Response::Version(_))));
    // A load works and the FIB is taken.
    assert_eq!(
        call(
            srv.path(),
            &Request::LoadFib {
                fib: spec(4),
                allow_empty: false
            }
        ),
        Ok(Response::Ok { version: 4 })
    );
    assert_eq!(srv.node().fib.current().version(), 4);
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

#[test]
fn readable_fib_replies_go_out_one_at_a_time() {
    // A reply of several MB that its client does not read blocks its
    // writer; the next show_fib waits for it instead of building a second
    // copy beside it (8 unread replies of a 1M-label FIB held 886 MB).
    let srv = TestServer::start("bulk", Limits::default());
    let big = with_pop_labels(spec(2), 200_000);
    srv.node()
        .fib
        .publish(big.build_for_ports(&srv.node().port_names).unwrap());
    let show = Request::ShowFib {
        label: None,
        prefix: None,
    };
    let mut a = srv.connect();
    write_request(&mut a, &show).unwrap();
    // A's reply fills the socket buffer and its writer blocks, holding the
    // bulk lock; B's request then waits for it.
    let t0 = Instant::now();
    while srv.shared.bulk.try_lock().is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "A's reply never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = srv.connect();
    write_request(&mut b, &show).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = b.read(&mut byte);
    assert!(
        matches!(&early, Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut),
        "B was answered while A's reply was still being written: {early:?}"
    );
    // Once A has read its reply, B gets its own.
    let reply_a = read_frame(&mut a).unwrap();
    assert!(reply_a.len() > 1 << 20, "{} bytes", reply_a.len());
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply_b = read_frame(&mut b).unwrap();
    assert_eq!(reply_a.len(), reply_b.len());
}

#[test]
fn refusals_are_kinds_in_process_and_messages_on_the_wire() {
    let node = Node::new("t", vec!["a".into(), "b".into()], FibSnapshot::empty(1), 1);
    let set_port = |port: &str| Request::SetPort {
        port: port.into(),
        up: false,
    };
    let e = execute(&node, set_port("c")).unwrap_err();
    assert!(
        matches!(&e, CtlError::NoSuchPort { port, ports } if port == "c" && ports == &["a", "b"]),
        "{e}"
    );
    assert_eq!(
        handle(&node, set_port("c")),
        Response::Error {
            message: "no port named \"c\" (ports: a, b)".into()
        }
    );
    assert!(matches!(
        execute(&node, Request::Swap),
        Err(CtlError::NothingStaged)
    ));
    assert!(matches!(
        execute(&node, Request::Rollback),
        Err(CtlError::NoRollback)
    ));
    let gone = Request::SetLinkGone {
        port: "a".into(),
        gone: true,
    };
    assert!(matches!(
        execute(&node, gone),
        Err(CtlError::NoDelayLine { port }) if port == "a"
    ));
    assert!(matches!(
        execute(&node, set_port("a")),
        Ok(Response::Ok { version: 1 })
    ));
}

/// The audit trail (issue 18): every change by hand, and a staged FIB
/// taking effect at its time, is one timestamped info line naming the
/// versions; nothing else is logged for them.
#[test]
fn every_state_change_is_one_info_line_with_its_versions() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let node = Node::new("t", vec!["a".into()], FibSnapshot::empty(1), 1);
    let ok = |r: Response| assert!(matches!(r, Response::Ok { .. }), "{r:?}");
    tracing::subscriber::with_default(sub, || {
        let load = |v| Request::LoadFib {
            fib: spec(v),
            allow_empty: false,
        };
        let stage = |v, at_ns| Request::StageFib {
            fib: spec(v),
            at_ns,
            allow_empty: false,
        };
        ok(handle(&node, load(2)));
        ok(handle(&node, stage(3, now_ns() + 20_000_000)));
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(node.fib.promote_due(now_ns()));
        ok(handle(&node, stage(4, now_ns() + 3_600_000_000_000)));
        ok(handle(&node, Request::Swap));
        ok(handle(&node, Request::Rollback));
        let down = Request::SetPort {
            port: "a".into(),
            up: false,
        };
        ok(handle(&node, down));
        // Read-only requests are not state changes.
        handle(&node, Request::Version);
    });
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let want = [
        "FIB loaded and active node=t version=2 replaced=1",
        "FIB staged node=t version=3 at_ns=",
        "staged FIB activated at its time version=3 replaced=2 at_ns=",
        "FIB staged node=t version=4 at_ns=",
        "staged FIB swapped in node=t version=4 replaced=3",
        "FIB rolled back node=t version=3 from=4",
        "port administratively down node=t port=a up=false",
    ];
    assert_eq!(lines.len(), want.len(), "{text}");
    for (line, want) in lines.iter().zip(want) {
        // RFC 3339 UTC timestamp, then the level.
        assert!(line.starts_with("20") && line[..30].contains('Z'), "{line}");
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(want), "{line:?} lacks {want:?}");
    }
}

/// The fast path's counters (stored by housekeeping in `node.fast`) go out
/// with `stats`, beside the workers', and `ClearCounters` baselines them
/// too; until a store, the fast path is off and the field is left out.
#[test]
fn stats_carry_the_fast_paths_counters_and_clear_baselines_them() {
    use crate::sys::fast_maps::FastCounters;
    use orbitmesh_core::stats::DropReason;
    let node = Node::new("t", vec!["a".into(), "b".into()], FibSnapshot::empty(1), 1);
    let stats = |node: &Node| match handle(node, Request::Stats) {
        Response::Stats(s) => s,
        r => panic!("{r:?}"),
    };
    let off = stats(&node);
    assert_eq!(off.fast_path, None);
    let json = serde_json::to_string(&Response::Stats(off)).unwrap();
    assert!(!json.contains("fast_path"), "left out when off: {json}");

    let mut k = FastCounters {
        forwarded: 100,
        backup_used: 1,
        punted: 9,
        ..Default::default()
    };
    k.tx[..2].copy_from_slice(&[60, 40]);
    k.drops[DropReason::TtlExpired as usize] = 2;
    node.fast.store(&k, 2);
    let f = crate::shared::fast_path_counters(&k, 2);
    assert_eq!((f.forwarded, f.tx.as_slice()), (100, &[60, 40][..]));
    node.workers[0].ports[0].tx.store(5, Ordering::Relaxed);
    let s = stats(&node);
    assert_eq!(s.fast_path.as_deref(), Some(&f));
    assert_eq!(s.ports[0].counters.tx, 5, "the workers' beside it");
    let json = serde_json::to_string(&Response::Stats(s.clone())).unwrap();
    match serde_json::from_str::<Response>(&json).unwrap() {
        Response::Stats(back) => assert_eq!(back, s),
        r => panic!("{r:?}"),
    }

    assert!(matches!(
        handle(&node, Request::ClearCounters),
        Response::Ok { .. }
    ));
    let cleared = stats(&node);
    assert_eq!(
        cleared.fast_path.as_deref(),
        Some(&crate::shared::fast_path_counters(
            &FastCounters::default(),
            2
        ))
    );
    k.forwarded += 30;
    k.punted += 1;
    k.tx[1] += 30;
    k.drops[DropReason::TtlExpired as usize] += 4;
    node.fast.store(&k, 2);
    let grown = stats(&node).fast_path.unwrap();
    assert_eq!(
        (grown.forwarded, grown.punted, grown.backup_used),
        (30, 1, 0)
    );
    assert_eq!(grown.tx, [0, 30]);
    assert_eq!(grown.drop_count(DropReason::TtlExpired), 4);
    // The raw totals (the metrics endpoint's) are untouched.
    assert_eq!(node.fast.load().unwrap().forwarded, 130);
}

/// A fast path turned on after a clear (no fast counters in the baseline)
/// counts from 0, not from nothing.
#[test]
fn a_fast_path_started_after_a_clear_counts_in_full() {
    let node = Node::new("t", vec!["a".into()], FibSnapshot::empty(1), 1);
    handle(&node, Request::ClearCounters);
    let mut k = crate::sys::fast_maps::FastCounters {
        forwarded: 7,
        ..Default::default()
    };
    k.tx[0] = 7;
    node.fast.store(&k, 1);
    let f = crate::shared::fast_path_counters(&k, 1);
    assert_eq!((f.forwarded, f.tx.as_slice()), (7, &[7][..]));
    match handle(&node, Request::Stats) {
        Response::Stats(s) => assert_eq!(s.fast_path.as_deref(), Some(&f)),
        r => panic!("{r:?}"),
    }
}
