//! Arbitrary bytes never panic the pipeline, never make it write outside the
//! frame's buffer, and every frame gets exactly one counted verdict.
//!
//! 100,000 cases per property in CI (PROPTEST_CASES overrides). The first
//! property runs the cargo-fuzz target's own body ([`fuzz::run`]), which
//! longer runs drive with coverage feedback (core/fuzz/README.md).

#[path = "common/fuzz.rs"]
mod fuzz;

use fuzz::check;
#[path = "common/cases.rs"]
mod cases;
use proptest::prelude::*;

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
                f.extend_from_slice(&orbitmesh_core::wire::mpls::Lse::new(l, 0, s, ttl).to_bytes());
            }
            if tail.first().is_some_and(|b| b & 1 == 0) {
                f.push(0x45);
            }
            f.extend_from_slice(&tail);
            f
        })
}

proptest! {
    #![proptest_config(cases::config(100_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..202)) {
        fuzz::run(&data);
    }

    #[test]
    fn frame_shaped_bytes_never_panic(bytes in framed(), headroom in 0usize..40, live in prop_oneof![Just(u64::MAX), any::<u64>()]) {
        check(&bytes, headroom, live);
    }
}
