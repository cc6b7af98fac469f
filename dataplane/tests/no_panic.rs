//! Arbitrary bytes never panic the pipeline, never make it write outside the
//! frame's buffer, and every frame gets exactly one counted verdict.
//!
//! 100,000 cases per property in CI (PROPTEST_CASES overrides). For longer
//! runs, the cargo-fuzz target in dataplane/fuzz drives the same function.

use dataplane::fib::*;
use dataplane::pipeline::{process, Frame, Verdict};
use dataplane::stats::{Counters, DropReason};
use proptest::prelude::*;
use std::sync::OnceLock;

/// A FIB that binds a few labels with every action, and routes.
fn fib() -> &'static FibSnapshot {
    static F: OnceLock<FibSnapshot> = OnceLock::new();
    F.get_or_init(|| {
        let mut b = FibBuilder::new().hash_seed(1);
        b.port(0, PortConfig::default())
            .port(1, PortConfig { mtu: 80 });
        let plain = NextHop {
            port: 0,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            push: vec![],
            backup: None,
        };
        let n0 = b.next_hop(plain.clone());
        let n1 = b.next_hop(NextHop {
            port: 1,
            push: vec![16, 17, 18, 19, 20, 21],
            backup: Some(n0),
            vlan: Some(5),
            ..plain.clone()
        });
        let n2 = b.next_hop(NextHop {
            push: vec![100],
            ..plain
        });
        let g = [b.group(&[n0]), b.group(&[n0, n1, n2]), b.group(&[n1])];
        for l in 16..64u32 {
            let a = match l % 4 {
                0 => IlmAction::Pop,
                1 => IlmAction::Swap {
                    out_label: 3,
                    nhg: g[(l as usize / 4) % 3],
                },
                2 => IlmAction::Swap {
                    out_label: l,
                    nhg: g[1],
                },
                _ => IlmAction::Swap {
                    out_label: 0,
                    nhg: g[2],
                },
            };
            b.label(l, a);
        }
        b.route_v4("0.0.0.0".parse().unwrap(), 0, g[1]);
        b.route_v4("10.0.0.0".parse().unwrap(), 8, g[2]);
        b.route_v6("::".parse().unwrap(), 0, g[1]);
        b.build().unwrap()
    })
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn check(bytes: &[u8], headroom: usize, live: u64) {
    let mut buf = vec![0xeeu8; headroom + bytes.len() + 8];
    buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
    let mut c = Counters::default();
    let mut v = [Verdict::Drop(DropReason::Malformed)];
    {
        let mut frames =
            [Frame::new(&mut buf[..headroom + bytes.len()], headroom, bytes.len()).unwrap()];
        process(fib(), live, &mut frames, &mut v, &mut c);
        let f = &frames[0];
        assert!(
            f.start() + f.len() == headroom + bytes.len(),
            "the frame's end never moves"
        );
    }
    assert_eq!(
        &buf[headroom + bytes.len()..],
        &[0xee; 8],
        "nothing written past the frame"
    );
    assert_eq!(c.rx, 1);
    assert_eq!(c.forwarded + c.dropped() + c.punted(), 1);
}

/// Bytes that start like the frames the pipeline handles, so the fuzzing
/// reaches past the first checks.
fn framed() -> impl Strategy<Value = Vec<u8>> {
    let et = prop_oneof![
        Just(0x8847u16),
        Just(0x0800),
        Just(0x86dd),
        Just(0x8100),
        any::<u16>()
    ];
    let label = prop_oneof![0u32..16, 16u32..64, any::<u32>()];
    (
        et,
        proptest::collection::vec((label, any::<u8>(), any::<bool>()), 0..6),
        proptest::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(et, stack, tail)| {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
            f.extend_from_slice(&et.to_be_bytes());
            if et == 0x8100 {
                f.extend_from_slice(&[0, 7, 0x88, 0x47]);
            }
            for (l, ttl, s) in stack {
                f.extend_from_slice(&dataplane::wire::mpls::Lse::new(l, 0, s, ttl).to_bytes());
            }
            if tail.first().is_some_and(|b| b & 1 == 0) {
                f.push(0x45);
            }
            f.extend_from_slice(&tail);
            f
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), headroom in 0usize..40, live in any::<u64>()) {
        check(&bytes, headroom, live);
    }

    #[test]
    fn frame_shaped_bytes_never_panic(bytes in framed(), headroom in 0usize..40, live in prop_oneof![Just(u64::MAX), any::<u64>()]) {
        check(&bytes, headroom, live);
    }
}
