#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, then runs the whole
# suite: formatting, lints, and every test of the workspace. As root, the
# tests that need namespaces and AF_XDP run too; elsewhere they skip and say so.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace --locked
echo "== control without a BPF toolchain"
bash scripts/check-control-alone.sh
# The fuzz crate is a workspace of its own (cargo-fuzz wants that), so the
# commands above do not see it; checking it here keeps it building. It shares
# the workspace's target directory, so this costs seconds, not a rebuild.
echo "== cargo check core/fuzz"
CARGO_TARGET_DIR="$PWD/target" cargo check --manifest-path core/fuzz/Cargo.toml --locked
CARGO_TARGET_DIR="$PWD/target" cargo clippy --manifest-path core/fuzz/Cargo.toml --locked -- -D warnings
