//! The README's TOML examples are what the programs accept: every FIB
//! example builds (and is not empty), every dataplane configuration
//! example parses and validates, every wiring example parses. The FIB
//! example once named a backup next hop it did not define, and `fib
//! check` refused it.

use dataplane::config::Config;
use orbitmesh_core::fib::FibSpec;

/// The ```toml blocks of the README, in order.
fn toml_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md beside Cargo.toml");
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "```toml" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n"));
        }
    }
    blocks
}

#[test]
fn every_toml_example_in_the_readme_is_accepted() {
    let (mut fibs, mut configs, mut wirings) = (0, 0, 0);
    for b in toml_blocks() {
        if b.contains("[[next_hops]]") {
            let spec = FibSpec::parse(&b).unwrap_or_else(|e| panic!("README FIB: {e}\n{b}"));
            spec.check_not_empty(false)
                .and_then(|()| spec.build().map(|_| ()))
                .unwrap_or_else(|e| panic!("README FIB refused: {e}\n{b}"));
            fibs += 1;
        } else if b.contains("[nodes.") {
            control::distribute::Wiring::parse(&b)
                .unwrap_or_else(|e| panic!("README wiring refused: {e}\n{b}"));
            wirings += 1;
        } else if b.contains("iface") {
            let c = Config::parse(&b).unwrap_or_else(|e| panic!("README config: {e}\n{b}"));
            c.validate()
                .unwrap_or_else(|e| panic!("README config refused: {e}\n{b}"));
            configs += 1;
        }
    }
    assert!(
        fibs >= 1 && configs >= 1 && wirings >= 1,
        "found {fibs} FIB, {configs} config and {wirings} wiring examples"
    );
}
