//! The proptest configuration the property tests share: `PROPTEST_CASES`
//! when set (scripts/test.sh and long soak runs), else the test's own
//! default; no failure files written next to the sources.
//!
//! Included with `#[path]` by tests/ctl_frames.rs, tests/fib_input.rs and
//! tests/no_panic.rs (the rest of `common` is not theirs to compile).

use proptest::test_runner::Config as ProptestConfig;

/// `default_cases` cases unless `PROPTEST_CASES` says otherwise.
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
