#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: the packages orbitmesh builds,
# tests and benchmarks with, and bpffs for libxdp. Safe to run again and again.
set -euo pipefail

PKGS=(
  build-essential pkg-config m4          # cc, and what libbpf/libxdp's build (xsk-rs) wants
  clang llvm libelf-dev zlib1g-dev libbpf-dev  # XDP program (bpf headers) and libbpf/libxdp (xsk-rs)
  iproute2 ethtool                       # namespaces, veth, XDP attach, counters
  iputils-ping                           # reachability checks in namespace tests
)

need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; orbitmesh needs the stable Rust toolchain (rustup)" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy >/dev/null 2>&1 || true

# libxdp's dispatcher pins programs in bpffs; a fresh machine has it unmounted.
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf || echo "setup: warning: could not mount bpffs at /sys/fs/bpf" >&2
fi
echo "setup: ok"
