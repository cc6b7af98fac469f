//! Tests of the remote channel (TCP): the same limits as the unix socket,
//! and only signed orders change state.

use super::*;
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::protocol::{call_at, Endpoint};
use orbitmesh_core::schedule::Schedule;
use orbitmesh_core::sign::{Refusal, SecretKey, Trust, TrustedKey};
use std::io::Write;
use std::net::TcpStream;

fn fib(version: u64) -> FibSpec {
    FibSpec::parse(&format!(
        "version = {version}\n[[ports]]\nname = \"isl0\"\n[[labels]]\nlabel = {}\naction = \"pop\"\n",
        16000 + version
    ))
    .unwrap()
}

fn schedule(serial: u64) -> Schedule {
    let now = now_ns();
    Schedule::delta_encoded(
        "n0",
        serial,
        &[
            (now - 1_000_000_000, fib(serial * 10)),
            (now + 3_600_000_000_000, fib(serial * 10 + 1)),
        ],
    )
}

fn node(ground: Option<&SecretKey>) -> Arc<Node> {
    node_with(ground, false)
}

fn node_with(ground: Option<&SecretKey>, delay_line: bool) -> Arc<Node> {
    let mut n = Node::new("n0", vec!["isl0".into()], FibSnapshot::empty(1), 1);
    n.delay_line = delay_line;
    if let Some(k) = ground {
        n.schedule.set_trust(Trust {
            keys: vec![TrustedKey {
                name: "ground-1".into(),
                key: k.public(),
                not_before_ns: None,
                not_after_ns: None,
            }],
            revoked: vec![],
        });
    }
    Arc::new(n)
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn count(n: &Node, r: Refusal) -> u64 {
    n.schedule.refused(r)
}

fn error_of(r: Result<Response, String>) -> String {
    match r {
        Ok(Response::Error { message }) => message,
        r => panic!("expected a refusal, got {r:?}"),
    }
}

#[test]
fn the_remote_channel_refuses_to_start_without_trusted_keys() {
    let e = RemoteServer::start(any_port(), node(None), Limits::default(), true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("trusted_keys"), "{e}");
}

#[test]
fn only_signed_orders_change_state_over_tcp() {
    let ground = SecretKey::from_bytes([7; 32]);
    let n = node(Some(&ground));
    let srv = RemoteServer::start(any_port(), n.clone(), Limits::default(), true).unwrap();
    let at = Endpoint::Tcp(srv.addr().to_string());
    let call = |r: Request| call_at(&at, &r);

    // Reads are open.
    assert!(matches!(call(Request::Version), Ok(Response::Version(_))));
    assert!(matches!(call(Request::Stats), Ok(Response::Stats(_))));

    // Nothing unsigned changes state, each refusal counted.
    let unsigned = [
        Request::LoadFib {
            fib: fib(5),
            allow_empty: false,
        },
        Request::StageFib {
            fib: fib(5),
            at_ns: now_ns() + 1_000_000_000,
            allow_empty: false,
        },
        Request::Swap,
        Request::Rollback,
        Request::Exchange,
        Request::SetPort {
            port: "isl0".into(),
            up: false,
        },
        Request::SetPortDelay {
            port: "isl0".into(),
            delay_ns: 1,
        },
        Request::LoadSchedule {
            schedule: schedule(1),
            allow_empty: false,
            signed: None,
        },
        Request::ClearSchedule {
            serial: Some(9),
            signed: None,
        },
    ];
    let kinds = unsigned.len() as u64;
    for r in unsigned {
        let m = error_of(call(r.clone()));
        assert!(m.contains("unsigned"), "{r:?}: {m}");
    }
    assert_eq!(count(&n, Refusal::Unsigned), kinds);
    assert_eq!(n.fib.current().version(), 1, "the FIB is untouched");
    assert!(n.fib.staged().is_none());
    assert!(n.live.admin(0), "the port is still up");
    assert!(n.schedule.current().is_none());

    // A signed schedule is taken; its replay and a forgery are not.
    let s = schedule(2);
    let signed = Some(ground.sign_schedule(&s).unwrap());
    let load = |schedule: Schedule, signed| {
        call(Request::LoadSchedule {
            schedule,
            allow_empty: false,
            signed,
        })
    };
    assert!(matches!(load(s.clone(), signed), Ok(Response::Schedule(_))));
    assert_eq!(n.schedule.current().unwrap().serial, 2);
    assert!(error_of(load(s.clone(), signed)).contains("replayed"));
    let forged = Some(
        SecretKey::from_bytes([8; 32])
            .sign_schedule(&schedule(3))
            .unwrap(),
    );
    assert!(error_of(load(schedule(3), forged)).contains("does not trust"));
    assert_eq!(count(&n, Refusal::Replayed), 1);
    assert_eq!(count(&n, Refusal::UnknownKey), 1);
    assert_eq!(n.schedule.current().unwrap().serial, 2);

    // With reads closed, only orders are served.
    drop(srv);
    let srv = RemoteServer::start(any_port(), n.clone(), Limits::default(), false).unwrap();
    let at = Endpoint::Tcp(srv.addr().to_string());
    let m = error_of(call_at(&at, &Request::ShowSchedule));
    assert!(m.contains("remote_reads = false"), "{m}");
    let s = schedule(4);
    let signed = Some(ground.sign_schedule(&s).unwrap());
    let r = call_at(
        &at,
        &Request::LoadSchedule {
            schedule: s,
            allow_empty: false,
            signed,
        },
    );
    assert!(matches!(r, Ok(Response::Schedule(_))), "{r:?}");
    assert_eq!(n.schedule.current().unwrap().serial, 4);
}

fn connect(srv: &RemoteServer) -> TcpStream {
    let s = TcpStream::connect(srv.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn reply(s: &mut TcpStream) -> Response {
    serde_json::from_slice(&read_frame(s).unwrap()).unwrap()
}

#[test]
fn the_remote_channel_has_the_sockets_limits() {
    let ground = SecretKey::from_bytes([7; 32]);
    let limits = Limits {
        max_connections: 2,
        max_buffered: 1000,
        idle_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
    };
    let srv = RemoteServer::start(any_port(), node(Some(&ground)), limits, true).unwrap();
    let at = Endpoint::Tcp(srv.addr().to_string());

    // A frame announcing more than the budget is refused before its
    // payload is read.
    let mut s = connect(&srv);
    let mut hdr = MAGIC.to_vec();
    hdr.extend([1, ENC_JSON, 0, 0]);
    hdr.extend(2000u32.to_be_bytes());
    s.write_all(&hdr).unwrap();
    let Response::Error { message } = reply(&mut s) else {
        panic!("expected a refusal")
    };
    assert!(message.contains("try again"), "{message}");

    // A stalled request times out with a clear message.
    let mut s = connect(&srv);
    s.write_all(&hdr[..5]).unwrap();
    let Response::Error { message } = reply(&mut s) else {
        panic!("expected a refusal")
    };
    assert!(message.contains("timed out"), "{message}");

    // An idle connection is closed, told why.
    let mut s = connect(&srv);
    let Response::Error { message } = reply(&mut s) else {
        panic!("expected a refusal")
    };
    assert!(message.contains("no request for"), "{message}");

    // Beyond the cap, connections busy with a request are not closed and
    // a new one is told to try again; idle ones make room.
    let t0 = Instant::now();
    while srv.connections() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "never freed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(&srv);
            s.write_all(&hdr[..5]).unwrap();
            s
        })
        .collect();
    let t0 = Instant::now();
    while srv.connections() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "never admitted");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        error_of(call_at(&at, &Request::Version)),
        "too many control connections (2); try again"
    );
    drop(busy);
    let t0 = Instant::now();
    while srv.connections() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "never freed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _idle: Vec<TcpStream> = (0..2).map(|_| connect(&srv)).collect();
    assert!(matches!(
        call_at(&at, &Request::Version),
        Ok(Response::Version(_))
    ));
}

#[test]
fn an_emulated_links_delay_is_set_locally_only_and_only_on_a_delay_line() {
    let ground = SecretKey::from_bytes([7; 32]);
    let delay = |ns| Request::SetPortDelay {
        port: "isl0".into(),
        delay_ns: ns,
    };
    let gone = Request::SetLinkGone {
        port: "isl0".into(),
        gone: true,
    };
    let down = Request::SetPort {
        port: "isl0".into(),
        up: false,
    };

    // A real node (no delay line) that trusts keys: all three are unsigned
    // changes, refused and counted, also on its own socket.
    let real = node(Some(&ground));
    for r in [delay(5), gone.clone(), down.clone()] {
        let m = match handle(&real, r.clone()) {
            Response::Error { message } => message,
            other => panic!("{r:?}: expected a refusal, got {other:?}"),
        };
        assert!(m.contains("unsigned"), "{r:?}: {m}");
    }
    assert_eq!(count(&real, Refusal::Unsigned), 3);

    // An emulated node (--delay-line) that trusts keys: the emulator sets
    // a link's delay and its being gone on the unix socket (`handle` is
    // what the socket calls once the peer's uid is checked)...
    let n = node_with(Some(&ground), true);
    assert!(matches!(handle(&n, delay(5)), Response::Ok { .. }));
    assert_eq!(n.delay_ns[0].load(Ordering::Relaxed), 5);
    assert!(matches!(handle(&n, gone.clone()), Response::Ok { .. }));
    assert!(n.link_gone[0].load(Ordering::Relaxed));
    // ...but a port change is still an unsigned order,
    assert!(matches!(handle(&n, down.clone()), Response::Error { .. }));
    assert!(n.live.admin(0));
    // and over the remote channel none of them is taken.
    let srv = RemoteServer::start(any_port(), n.clone(), Limits::default(), true).unwrap();
    let at = Endpoint::Tcp(srv.addr().to_string());
    for r in [delay(9), gone, down] {
        let m = error_of(call_at(&at, &r));
        assert!(m.contains("unsigned"), "{r:?}: {m}");
    }
    assert_eq!(n.delay_ns[0].load(Ordering::Relaxed), 5);
    assert_eq!(count(&n, Refusal::Unsigned), 4);
}
