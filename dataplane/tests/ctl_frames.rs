//! Any bytes given to the control server as a frame are refused with an
//! error or taken as a request; they never panic it, reading and decoding
//! them allocates within a fixed bound however long a length the header
//! announces, and a refused request leaves the running FIB as it was.
//!
//! The frames go through what the server runs for each request:
//! `read_frame_budgeted` (with the server's budget), `decode_request` and
//! `handle`, against a node with a FIB loaded. A counting global allocator
//! (this file is its own test binary) measures the bytes held while a frame
//! is read and decoded.
//!
//! 20,000 cases per property by default (PROPTEST_CASES overrides). The FIBs
//! generated bind labels below 5,000 (and some reserved ones): building a
//! FIB sizes its label table by the largest label, which is not what this
//! test is about.

use dataplane::ctl::{handle, MAX_BUFFERED};
use dataplane::shared::Node;
use orbitmesh_core::fib::spec::{
    ActionSpec, FibSpec, GroupId, GroupSpec, LabelSpec, NextHopId, NextHopSpec, PortSpec, RouteSpec,
};
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::protocol::{
    decode_request, read_frame_budgeted, Budget, Request, Response, ENC_BINARY_FIB, ENC_JSON,
    HEADER_LEN, MAGIC, MAX_MESSAGE, VERSION,
};
#[path = "../../core/tests/common/cases.rs"]
mod cases;
use proptest::prelude::*;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use dataplane::sys::alloc::measure;

#[global_allocator]
static ALLOCATOR: dataplane::sys::alloc::Counting = dataplane::sys::alloc::Counting;

/// Bytes a frame of at most this many bytes may make the reader and the
/// decoder hold, whatever length it announces: the payload buffer starts
/// at 64 KiB and grows with what arrives.
const BOUND: usize = 1 << 20;
const MAX_INPUT: usize = 16 << 10;

/// The node's ports.
const PORTS: [&str; 2] = ["a", "b"];

/// A FIB that builds for the node: two next hops, a group, labels, routes.
fn base_spec(version: u64) -> FibSpec {
    let nh = |id: u32, name: &str, port: &str, backup: Option<u32>| NextHopSpec {
        id: NextHopId(id),
        name: name.into(),
        port: port.into(),
        dst_mac: "02:00:00:00:00:01".parse().unwrap(),
        src_mac: "02:00:00:00:00:02".parse().unwrap(),
        vlan: None,
        push: vec![100],
        backup: backup.map(NextHopId),
    };
    FibSpec {
        version,
        ports: PORTS
            .iter()
            .map(|p| PortSpec {
                name: p.to_string(),
                mtu: 1500,
            })
            .collect(),
        next_hops: vec![nh(1, "n", "a", None), nh(2, "m", "b", Some(1))],
        groups: vec![GroupSpec {
            id: GroupId(1),
            name: "g".into(),
            next_hops: vec![NextHopId(1), NextHopId(2)],
        }],
        labels: (16..40)
            .map(|l| LabelSpec {
                label: l,
                action: ActionSpec::Swap,
                out_label: Some(l + 1000),
                group: Some(GroupId(1)),
                next_hop: None,
            })
            .collect(),
        routes: vec![RouteSpec {
            prefix: "10.0.0.0/8".parse().unwrap(),
            group: None,
            next_hop: Some(NextHopId(2)),
        }],
        ..FibSpec::default()
    }
}

/// The node every case runs against, with `base_spec(1)` loaded.
fn node() -> &'static Node {
    static N: OnceLock<Node> = OnceLock::new();
    N.get_or_init(|| {
        let n = Node::new(
            "n1",
            PORTS.iter().map(|p| p.to_string()).collect(),
            FibSnapshot::empty(0),
            1,
        );
        let r = handle(
            &n,
            Request::LoadFib {
                fib: base_spec(1),
                allow_empty: false,
            },
        );
        assert_eq!(r, Response::Ok { version: 1 });
        n
    })
}

/// Serialises the tests' use of the node (they run on parallel threads,
/// and a request taken by one would change the FIB under another).
fn lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The current, staged (with its time) and previous snapshots.
type FibState = (
    Arc<FibSnapshot>,
    Option<(Arc<FibSnapshot>, u64)>,
    Option<Arc<FibSnapshot>>,
);

/// What a refused request must leave as it was: the current, staged and
/// previous snapshots (the same ones, not equal versions).
fn fib_state(n: &Node) -> FibState {
    (
        n.fib.current(),
        n.fib.staged().map(|s| (s.fib, s.at)),
        n.fib.previous(),
    )
}

fn same_state(a: &FibState, b: &FibState) -> bool {
    Arc::ptr_eq(&a.0, &b.0)
        && match (&a.1, &b.1) {
            (None, None) => true,
            (Some((x, t)), Some((y, u))) => Arc::ptr_eq(x, y) && t == u,
            _ => false,
        }
        && match (&a.2, &b.2) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        }
}

/// One frame through the server's steps.
fn check(frame: &[u8]) {
    let _serial = lock();
    let n = node();
    let budget = Budget::new(MAX_BUFFERED);
    let before = fib_state(n);
    let (decoded, peak, largest) = measure(|| {
        read_frame_budgeted(&mut &frame[..], &budget)
            .map_err(|e| e.to_string())
            .and_then(|f| decode_request(f.encoding, &f.body))
    });
    assert!(
        peak <= BOUND && largest <= BOUND,
        "a {}-byte frame held {peak} bytes (largest allocation {largest})",
        frame.len()
    );
    assert_eq!(budget.in_use(), 0, "the frame's reservation is given back");
    match decoded {
        Err(message) => {
            assert!(!message.is_empty());
            assert!(same_state(&before, &fib_state(n)));
        }
        Ok(req) => {
            if let Response::Error { message } = handle(n, req) {
                assert!(!message.is_empty());
                assert!(
                    same_state(&before, &fib_state(n)),
                    "refused ({message}) but the FIB changed"
                );
            }
            n.fib.reclaim();
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["n", "m", "g", "a", "b"]).prop_map(String::from),
        1 => "[a-z]{0,3}",
    ]
}

/// A reference by id: mostly to an entry `base_spec` has (1, 2), else
/// to none, or to any id.
fn opt_id() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        2 => Just(None),
        3 => (1u32..4).prop_map(Some),
        1 => any::<u32>().prop_map(Some)
    ]
}

/// FIBs around `base_spec`: valid ones and ones with bad references,
/// reserved or duplicate labels, bad prefixes, unknown ports.
fn fib_spec() -> impl Strategy<Value = FibSpec> {
    let label = prop_oneof![3 => 0u32..16, 3 => 16u32..100, 3 => 100u32..5_000, 1 => any::<u32>()];
    let labels = prop::collection::vec(
        (
            label,
            any::<bool>(),
            prop::option::of(prop_oneof![
                0u32..20,
                16u32..5_000,
                Just(1_048_575),
                Just(1_048_576),
                any::<u32>()
            ]),
            opt_id(),
            opt_id(),
        ),
        0..12,
    );
    let prefix = prop_oneof![
        Just("10.0.0.0/8".to_string()),
        Just("::/0".to_string()),
        Just("10.1.2.3/33".to_string()),
        "[0-9./:a-f]{0,20}",
    ];
    let routes = prop::collection::vec((prefix, opt_id(), opt_id()), 0..4);
    (
        any::<u64>(),
        any::<bool>(),
        labels,
        routes,
        prop::option::of(name()),
    )
        .prop_map(|(version, keep_base, labels, routes, port)| {
            let mut s = base_spec(version);
            if !keep_base {
                s.labels.clear();
                s.routes.clear();
            }
            if let Some(p) = port {
                s.next_hops[1].port = p;
            }
            s.labels.extend(
                labels
                    .into_iter()
                    .map(|(label, pop, out_label, group, next_hop)| LabelSpec {
                        label,
                        action: if pop {
                            ActionSpec::Pop
                        } else {
                            ActionSpec::Swap
                        },
                        out_label,
                        group: group.map(GroupId),
                        next_hop: next_hop.map(NextHopId),
                    }),
            );
            s.routes.extend(
                // Text that is not a prefix cannot be put in a typed spec
                // (a request carrying it is refused when decoded, as the
                // random payloads below exercise); the rest go in.
                routes.into_iter().filter_map(|(prefix, group, next_hop)| {
                    Some(RouteSpec {
                        prefix: prefix.parse().ok()?,
                        group: group.map(GroupId),
                        next_hop: next_hop.map(NextHopId),
                    })
                }),
            );
            s
        })
}

fn request() -> impl Strategy<Value = Request> {
    let at = prop_oneof![
        any::<u64>(),
        // Close to now: activation soon, or already due.
        (-2_000_000_000i64..2_000_000_000)
            .prop_map(|d| orbitmesh_core::time::now_ns().saturating_add_signed(d)),
    ];
    prop_oneof![
        1 => Just(Request::Version),
        1 => Just(Request::Stats),
        1 => Just(Request::Swap),
        1 => Just(Request::Rollback),
        1 => Just(Request::Exchange),
        1 => (name(), any::<bool>()).prop_map(|(port, up)| Request::SetPort { port, up }),
        1 => (name(), any::<u64>()).prop_map(|(port, delay_ns)| Request::SetPortDelay { port, delay_ns }),
        // A random prefix is almost never well formed (and is refused), so
        // well-formed ones are offered too.
        1 => (
            prop::option::of(any::<u32>()),
            prop::option::of(prop_oneof![
                2 => Just("10.0.0.0/8".to_string()),
                2 => Just("10.1.2.3".to_string()),
                1 => "[0-9./:a-f]{0,20}",
            ]),
        )
            .prop_map(|(label, prefix)| Request::ShowFib { label, prefix }),
        3 => (fib_spec(), any::<bool>()).prop_map(|(fib, allow_empty)| Request::LoadFib { fib, allow_empty }),
        3 => (fib_spec(), at, any::<bool>()).prop_map(|(fib, at_ns, allow_empty)| Request::StageFib {
            fib,
            at_ns,
            allow_empty
        }),
    ]
}

/// A payload and the header fields that fit it.
fn payload() -> impl Strategy<Value = (u8, u8, Vec<u8>)> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| (1, ENC_JSON, b)),
        request().prop_map(|r| (1, ENC_JSON, serde_json::to_vec(&r).unwrap())),
        (any::<u8>(), any::<u64>(), fib_spec()).prop_map(|(op, at, spec)| {
            let op = op % 3; // load, stage, unknown
            let mut b = vec![op];
            b.extend_from_slice(&at.to_be_bytes());
            // Not encodable (a malformed MAC, say): empty, still a frame.
            b.extend_from_slice(&spec.to_binary().unwrap_or_default());
            (VERSION, ENC_BINARY_FIB, b)
        }),
    ]
}

/// The length a damaged frame's header announces.
#[derive(Debug, Clone)]
enum Len {
    /// The payload's.
    Exact,
    /// The payload's, off by a few bytes.
    Off(i64),
    Is(u32),
}

/// Frames built right, then perhaps damaged: any header field changed, the
/// announced length off or huge, bytes overwritten, the frame cut short.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    // Each damage is rare enough that most frames keep the rest intact and
    // some get through to the decoder and the handler.
    let len = prop_oneof![
        24 => Just(Len::Exact),
        2 => (-16i64..16).prop_map(Len::Off),
        1 => any::<u32>().prop_map(Len::Is),
        1 => Just(Len::Is(MAX_MESSAGE as u32)),
        1 => Just(Len::Is(MAX_MESSAGE as u32 + 1)),
        1 => Just(Len::Is(MAX_BUFFERED as u32 - 1)),
        1 => Just(Len::Is(u32::MAX)),
    ];
    let field = || prop_oneof![12 => Just(None), 1 => any::<u8>().prop_map(Some)];
    (
        payload(),
        field(),
        field(),
        prop_oneof![12 => Just([0u8, 0]), 1 => any::<[u8; 2]>()],
        len,
        prop_oneof![
            3 => Just(vec![]),
            1 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ],
        prop_oneof![12 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        prop_oneof![20 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |((ver, enc, body), ver_o, enc_o, reserved, len, flips, cut, bad_magic)| {
                let n = body.len() as i64;
                let len = match len {
                    Len::Exact => n as u32,
                    Len::Off(d) => (n + d).max(0) as u32,
                    Len::Is(l) => l,
                };
                let mut f = Vec::with_capacity(HEADER_LEN + body.len());
                f.extend_from_slice(if bad_magic { b"OMCQ" } else { MAGIC });
                f.push(ver_o.unwrap_or(ver));
                f.push(enc_o.unwrap_or(enc));
                f.extend_from_slice(&reserved);
                f.extend_from_slice(&len.to_be_bytes());
                f.extend_from_slice(&body);
                // Overwrite payload bytes (the header's fields are varied
                // above): the same length, so numbers keep their digits.
                if f.len() > HEADER_LEN {
                    for (i, v) in flips {
                        let i = HEADER_LEN + i.index(f.len() - HEADER_LEN);
                        f[i] = v;
                    }
                }
                if let Some(c) = cut {
                    f.truncate(c.index(f.len() + 1));
                }
                f.truncate(MAX_INPUT);
                f
            },
        )
}

proptest! {
    #![proptest_config(cases::config(20_000))]

    #[test]
    fn arbitrary_bytes_are_refused_or_taken(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_header_are_refused_or_taken(
        ver in prop_oneof![Just(1u8), Just(VERSION), any::<u8>()],
        enc in prop_oneof![Just(ENC_JSON), Just(ENC_BINARY_FIB), any::<u8>()],
        len in prop_oneof![0u32..300, any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let f = [&MAGIC[..], &[ver, enc, 0, 0], &len.to_be_bytes(), &body].concat();
        check(&f);
    }

    #[test]
    fn damaged_frames_are_refused_or_taken(f in frame()) {
        check(&f);
    }
}

/// Frames that announce far more than they carry hold what they carry (at
/// most twice, while the buffer grows), not what they announce; frames
/// beyond the budget or the limit hold nothing.
#[test]
fn announced_lengths_are_not_allocated() {
    let budget = Budget::new(MAX_BUFFERED);
    for (announced, carried) in [
        (MAX_MESSAGE, 0usize),
        (MAX_MESSAGE, 10),
        (MAX_MESSAGE, 300 << 10),
        (MAX_MESSAGE, 1 << 20),
        (200 << 20, 5 << 20),
        (MAX_MESSAGE + 1, 1 << 20),
        (u32::MAX as usize, 1 << 20),
    ] {
        let mut f = [
            &MAGIC[..],
            &[1, ENC_JSON, 0, 0],
            &(announced as u32).to_be_bytes(),
        ]
        .concat();
        f.resize(HEADER_LEN + carried, b' ');
        let (r, peak, largest) = measure(|| read_frame_budgeted(&mut &f[..], &budget).map(|_| ()));
        assert!(r.is_err(), "{announced} bytes announced, {carried} sent");
        let bound = 3 * carried + (64 << 10);
        assert!(
            peak <= bound && largest <= 2 * carried + (64 << 10),
            "{announced} bytes announced, {carried} sent: held {peak}, largest allocation {largest}"
        );
        assert_eq!(budget.in_use(), 0);
    }
    // Beyond the budget (but within the limit): refused before reading.
    let small = Budget::new(1 << 20);
    let f = [
        &MAGIC[..],
        &[1, ENC_JSON, 0, 0],
        &(2u32 << 20).to_be_bytes(),
        b"{}",
    ]
    .concat();
    let (r, peak, _) = measure(|| read_frame_budgeted(&mut &f[..], &small).map(|_| ()));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
    assert!(peak < 4 << 10, "held {peak}");
}

/// The generators reach the handler: some frames are taken and change the
/// FIB, some are refused by the handler, not all by the framing.
#[test]
fn the_generated_frames_reach_every_layer() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut framing, mut decoding, mut refused, mut taken) = (0, 0, 0, 0);
    let _serial = lock();
    let n = node();
    // About one frame in twenty reaches a handler that takes it: 3,000
    // frames leave each count well clear of 100 (2,000 sat on the edge).
    for _ in 0..4_000 {
        let f = frame().new_tree(&mut runner).unwrap().current();
        let budget = Budget::new(MAX_BUFFERED);
        match read_frame_budgeted(&mut &f[..], &budget) {
            Err(_) => framing += 1,
            Ok(fr) => match decode_request(fr.encoding, &fr.body) {
                Err(_) => decoding += 1,
                Ok(req) => match handle(n, req) {
                    Response::Error { .. } => refused += 1,
                    _ => taken += 1,
                },
            },
        }
        n.fib.reclaim();
    }
    assert!(
        framing > 100 && decoding > 100 && refused > 100 && taken > 100,
        "framing {framing}, decoding {decoding}, handler refused {refused}, taken {taken}"
    );
}
