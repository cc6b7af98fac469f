#!/usr/bin/env bash
# The predictor and orbitmesh-ctl (the control crate) must build and pass
# their tests on a machine with no BPF toolchain (issue 13): control links
# only orbitmesh-core, never the AF_XDP runtime whose build runs clang. This
# proves it: control is built and tested from scratch (a target directory
# of its own) with a PATH that holds cargo, a C linker and nothing else, so
# any dependency that wanted clang (the dataplane's build.rs, libxdp-sys)
# would fail the build.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# The linker rustc calls (cc), what cc itself runs (as, ld), and the plain
# tools tests start (sh, sleep).
for t in cc as ld sh sleep; do
  ln -s "$(command -v "$t")" "$bin/$t"
done
cargo_bin=$(dirname "$(command -v cargo)")
if [ -e "$cargo_bin/clang" ]; then
  echo "check-control-alone: $cargo_bin holds clang; cannot build without it" >&2
  exit 1
fi
if env PATH="$bin:$cargo_bin" sh -c 'command -v clang' >/dev/null 2>&1; then
  echo "check-control-alone: clang is still on the restricted PATH" >&2
  exit 1
fi
if cargo tree -p control -e normal,dev,build --prefix none --locked | grep -Eq '^(dataplane|aya|xsk-rs|libxdp-sys|libbpf-sys) '; then
  echo "check-control-alone: control depends on the AF_XDP runtime:" >&2
  cargo tree -p control -e normal,dev,build -i dataplane --locked >&2 || true
  exit 1
fi
env PATH="$bin:$cargo_bin" CARGO_TARGET_DIR="$PWD/target/control-alone" \
  cargo test -p control --locked --quiet
echo "check-control-alone: control builds and passes its tests without clang"
