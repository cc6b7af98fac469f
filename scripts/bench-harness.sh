#!/usr/bin/env bash
# The relay benchmark suite: orbitmesh-bench's own AF_XDP generator and sink
# on a veth namespace line (obh-gen | obh-dut), RFC 2544 zero-loss
# throughput per frame size, latency percentiles at 10/50/90/99% of it, FIB
# swaps under load, and the peers in the same run: the kernel's IPv4
# forwarding and dpdk-testpmd --forward-mode=mac over net_af_xdp.
# Installs what the peers need (Debian's dpdk, dpdk-dev for dpdk-testpmd, librte-net-af-xdp23,
# hugepages), builds, runs, and writes bench/results/<date>-NAME/
# (results.json, README.md, throughput.svg, latency.svg).
#   scripts/bench-harness.sh                    # the standard suite (~10 minutes)
#   QUICK=1 scripts/bench-harness.sh            # 64 B and IMIX, 1-s trials (~3 minutes)
#   scripts/bench-harness.sh --duts orbitmesh --sizes 64 --name mine   # any `orbitmesh-bench run` flags
# Ctrl-C stops the run; the harness removes its namespaces and DUTs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-harness: needs root (namespaces, XDP, AF_XDP, hugepages)" >&2; exit 1; }
bash scripts/setup.sh >/dev/null

need=()
for p in dpdk dpdk-dev librte-net-af-xdp23; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-harness: installing ${need[*]} (the dpdk-testpmd peer)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
    echo "bench-harness: warning: could not install ${need[*]}; the testpmd peer will be skipped" >&2
fi
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then
  echo 1024 > /proc/sys/vm/nr_hugepages || true
fi
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages ||
  echo "bench-harness: warning: no hugetlbfs; the testpmd peer will be skipped" >&2

target=${CARGO_TARGET_DIR:-target}
nice -n 10 cargo build -q --release -p dataplane --bin orbitmesh-dp -p bench --bin orbitmesh-bench

args=()
[ "${QUICK:-0}" = 1 ] && args=(--sizes 64,imix --trial 1 --latency-trial 1 --swap-trial 3)
export OBH_COMMAND="${QUICK:+QUICK=$QUICK }scripts/bench-harness.sh $*"
exec "$target/release/orbitmesh-bench" run "${args[@]}" "$@"
