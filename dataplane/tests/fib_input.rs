//! Any byte string given as a FIB file, in every format (TOML, JSON, binary
//! `.omfib`, or told apart by its first bytes), or as the FIB of a control
//! request, is either refused with an error or accepted: it never panics,
//! never allocates more than a fixed bound plus a small multiple of its own
//! size, and when it is refused the node's running FIB stays.
//!
//! The bound is checked with a counting allocator (peak live bytes on the
//! test's own thread). It is what the FIB itself may need: the IPv4 table
//! (DIR-24-8, 64 MiB), the label table (at most 2^20 entries of 8 bytes),
//! the IPv6 root, plus per input byte at most [`PER_BYTE`] (a /25-/32 route,
//! 14 bytes in a binary FIB, adds one 1 KiB DIR-24-8 group). Before the
//! label check moved ahead of the table's sizing, one label of 2^32 - 1
//! asked for 32 GiB; a binary name of 64 KiB referred to by every label
//! expanded a few MB into GBs.
//!
//! Inputs: arbitrary bytes; the documented example as text with a token
//! replaced by an arbitrary number or word, or with bytes flipped; its
//! binary form with bytes flipped and the checksum made good again, so the
//! decoder's checks behind the checksum are reached. 2,000 cases per
//! property unless PROPTEST_CASES says otherwise.

use dataplane::shared::Node;
use orbitmesh_core::fib::spec::{FibFormat, FibSpec};
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::protocol::{self as ctl, Request, Response};
#[path = "../../core/tests/common/cases.rs"]
mod cases;
use proptest::prelude::*;
use std::sync::OnceLock;

#[global_allocator]
static ALLOC: dataplane::sys::alloc::Counting = dataplane::sys::alloc::Counting;

/// What a FIB may allocate whatever its input: the DIR-24-8 table, the
/// label table, the IPv6 root and some slack for the rest.
const FIXED: usize = (64 << 20) + (8 << 20) + (4 << 20);
/// Allocation allowed per byte of input (see the module's note).
const PER_BYTE: usize = 128;

/// Runs `f`, returning its result and the peak bytes it had live at once.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let (t, peak, _) = dataplane::sys::alloc::measure(f);
    (t, peak)
}

/// The example in `fib::spec`'s documentation, with a host route added
/// (a DIR-24-8 extension group).
fn example_text() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let doc =
            orbitmesh_core::file::doc_toml_example(include_str!("../../core/src/fib/spec.rs"));
        format!("{doc}\n[[routes]]\nprefix = \"10.3.4.5/32\"\nnext_hop = \"sat3\"\n")
    })
}

fn example() -> &'static FibSpec {
    static S: OnceLock<FibSpec> = OnceLock::new();
    S.get_or_init(|| FibSpec::parse(example_text()).unwrap())
}

fn ports() -> Vec<String> {
    vec!["isl0".into(), "isl1".into()]
}

/// A node whose running FIB is the example at version 1.
fn node() -> Node {
    let mut spec = example().clone();
    spec.version = 1;
    Node::new("n", ports(), spec.build_for_ports(&ports()).unwrap(), 1)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Every way a file's bytes are read, each built for the node if it parses.
fn check_file(bytes: &[u8]) {
    let limit = FIXED + PER_BYTE * bytes.len();
    for format in [
        FibFormat::Sniff,
        FibFormat::Toml,
        FibFormat::Json,
        FibFormat::Binary,
    ] {
        let (built, peak) = peak_of(|| {
            let spec = FibSpec::decode(bytes, format).ok()?;
            // Writing it back must not fail either (`fib convert`, `fib show`).
            let _ = (spec.to_toml(), spec.to_json(), spec.to_binary());
            Some(
                spec.build_for_ports(&ports())
                    .map(|f: FibSnapshot| f.version()),
            )
        });
        assert!(
            peak <= limit,
            "{format:?}: {peak} bytes live at once for a {}-byte input (bound {limit})",
            bytes.len()
        );
        let _ = built;
    }
}

/// The same bytes as the FIB of a binary load and stage request, and a
/// parsed spec as a JSON one, each to a fresh node running version 1: a
/// refused request leaves version 1 running and nothing staged.
fn check_request(bytes: &[u8]) {
    let limit = FIXED + PER_BYTE * bytes.len();
    for op in [0u8, 1, 0x80, 0x81] {
        let mut body = vec![op];
        body.extend_from_slice(&(u64::MAX / 2).to_be_bytes());
        body.extend_from_slice(bytes);
        let node = node();
        let (resp, peak) = peak_of(|| match ctl::decode_request(ctl::ENC_BINARY_FIB, &body) {
            Ok(req) => dataplane::ctl::handle(&node, req),
            Err(message) => Response::Error { message },
        });
        assert!(
            peak <= limit,
            "binary request: {peak} bytes live (bound {limit})"
        );
        settle(&node, resp);
    }
    if let Ok(fib) = FibSpec::decode(bytes, FibFormat::Sniff) {
        let json = serde_json::to_vec(&Request::LoadFib {
            fib,
            allow_empty: false,
        })
        .unwrap();
        let node = node();
        let (resp, peak) = peak_of(|| match ctl::decode_request(ctl::ENC_JSON, &json) {
            Ok(req) => dataplane::ctl::handle(&node, req),
            Err(message) => Response::Error { message },
        });
        assert!(
            peak <= limit + PER_BYTE * json.len(),
            "JSON request: {peak} bytes live"
        );
        settle(&node, resp);
    }
}

/// A refusal must leave version 1 running and nothing staged.
fn settle(node: &Node, resp: Response) {
    match resp {
        Response::Error { .. } => {
            assert_eq!(
                node.fib.current().version(),
                1,
                "a refused FIB replaced the running one"
            );
            assert!(node.fib.staged().is_none(), "a refused FIB was staged");
        }
        Response::Ok { .. } => {}
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Numbers and words that have broken parsers before, or might.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        Just(u32::MAX.to_string()),
        Just((1u64 << 27).to_string()),
        Just(u64::MAX.to_string()),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        "[a-z0-9:./\" ]{0,80}",
        (1usize..100_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(cases::config(2_000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_file(&bytes);
        check_request(&bytes);
        // The binary magic in front leads the bytes past the first check.
        let mut b = b"OMFB".to_vec();
        b.extend_from_slice(&bytes);
        check_file(&b);
    }

    #[test]
    fn text_with_a_token_replaced(pick in any::<prop::sample::Index>(), t in token(), json in any::<bool>()) {
        let text = if json { example().to_json() } else { example_text().to_string() };
        // Replace the value after one `=` or `:`, the kind of edit a typo makes.
        let seps: Vec<usize> = text.match_indices(if json { ": " } else { " = " }).map(|(i, _)| i).collect();
        let at = seps[pick.index(seps.len())] + if json { 2 } else { 3 };
        let end = text[at..].find(['\n', ',']).map_or(text.len(), |e| at + e);
        let edited = format!("{}{t}{}", &text[..at], &text[end..]);
        check_file(edited.as_bytes());
        check_request(edited.as_bytes());
    }

    #[test]
    fn flipped_bytes(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), binary in any::<bool>()) {
        let mut b = if binary { example().to_binary().unwrap() } else { example_text().as_bytes().to_vec() };
        let body = b.len() - if binary { 8 } else { 0 };
        for (i, v) in flips {
            b[i.index(body)] = v;
        }
        if binary {
            let sum = fnv1a(&b[..body]);
            b[body..].copy_from_slice(&sum.to_be_bytes());
        }
        check_file(&b);
        check_request(&b);
    }
}

#[test]
fn a_binary_name_cannot_expand_a_small_file_into_gigabytes() {
    // One 64 KiB name that 100,000 labels refer to: 1.8 MB of file that
    // decoded into 6.5 GB of copies of the name before names were bounded.
    let mut spec = example().clone();
    spec.labels = (16..100_016)
        .map(|l| orbitmesh_core::fib::spec::LabelSpec {
            label: l,
            action: orbitmesh_core::fib::spec::ActionSpec::Swap,
            out_label: None,
            group: None,
            next_hop: spec.next_hop_named("sat2"),
        })
        .collect();
    let long = "n".repeat(60_000);
    let mut bin = spec.to_binary().unwrap();
    // Rewrite the name table's "sat2" entry (first name after the ports) as
    // the long name: splice the bytes and fix the checksum.
    let at = bin.windows(4).position(|w| w == b"sat2").unwrap();
    bin.splice(at - 2..at + 4, {
        let mut v = (long.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(long.as_bytes());
        v
    });
    let body = bin.len() - 8;
    let sum = fnv1a(&bin[..body]);
    bin[body..].copy_from_slice(&sum.to_be_bytes());
    let (r, peak) = peak_of(|| FibSpec::decode(&bin, FibFormat::Binary));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("a name has at most 64"), "{e}");
    assert!(peak < 16 << 20, "{peak} bytes live");
}

#[test]
fn an_empty_fib_is_refused_by_the_node_unless_allowed() {
    let n = node();
    let empty = FibSpec::parse("version = 9").unwrap();
    for allow_empty in [false, true] {
        for stage in [false, true] {
            let req = if stage {
                Request::StageFib {
                    fib: empty.clone(),
                    at_ns: u64::MAX / 2,
                    allow_empty,
                }
            } else {
                Request::LoadFib {
                    fib: empty.clone(),
                    allow_empty,
                }
            };
            // Both encodings carry the flag.
            let mut wire = Vec::new();
            ctl::write_request(&mut wire, &req).unwrap();
            let payload = &wire[12..];
            let decoded = ctl::decode_request(wire[5], payload).unwrap();
            assert_eq!(decoded, req);
            match dataplane::ctl::handle(&n, decoded) {
                Response::Error { message } => {
                    assert!(!allow_empty, "{message}");
                    assert!(message.contains("no labels and no routes"), "{message}");
                    assert_eq!(n.fib.current().version(), 1);
                }
                Response::Ok { version } => {
                    assert!(allow_empty);
                    assert_eq!(version, 9);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
