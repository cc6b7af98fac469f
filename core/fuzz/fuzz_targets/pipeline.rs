//! cargo-fuzz target: arbitrary bytes through the pipeline must never panic,
//! never write past the frame, and always get one counted verdict.
//!
//! The body is `core/tests/common/fuzz.rs`, shared with the stable
//! property test `arbitrary_bytes_never_panic` (core/tests/no_panic.rs),
//! so CI runs the same checks without nightly. Run: see ../README.md.
#![no_main]

#[path = "../../tests/common/fuzz.rs"]
mod body;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| body::run(data));
