#!/usr/bin/env bash
# The harness's generator alone, side by side with dpdk-testpmd txonly: each
# sends 64-byte frames from CPU 0 for 5 s into an XDP drop program on the veth
# peer (counted there), with the peer's NAPI default and threaded + pinned to
# CPU 1. orbitmesh-bench offers 3 Mpps (MPLS test frames); testpmd txonly
# sends as fast as it can. Prints Markdown rows (bench/results/generator.md).
# Namespaces obh-g1/obh-d1, removed on exit.
#   scripts/bench-generator.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-generator: needs root (namespaces, XDP)" >&2; exit 1; }
bash scripts/setup.sh >/dev/null
cargo build -q --release -p bench --bin orbitmesh-bench
B=target/release/orbitmesh-bench
work=$(mktemp -d /tmp/obh-gen.XXXX)
arch=$(uname -m)
clang -O2 -g -target bpf -I/usr/include/$arch-linux-gnu -c bench/veth/drop.c -o "$work/drop.o"
have_testpmd=0
command -v dpdk-testpmd >/dev/null && [ "$(cat /proc/sys/vm/nr_hugepages)" -gt 0 ] && have_testpmd=1
[ $have_testpmd = 1 ] || echo "bench-generator: no dpdk-testpmd or no hugepages (scripts/bench-harness.sh installs them): testpmd column skipped" >&2
tpid=
cleanup() {
  [ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
  ip netns del obh-g1 2>/dev/null || true; ip netns del obh-d1 2>/dev/null || true
}
trap 'cleanup; rm -rf "$work"' EXIT
setup() { # default|threaded
  cleanup; tpid=
  ip netns add obh-g1; ip netns add obh-d1
  ip link add gen0 netns obh-g1 type veth peer name drop0 netns obh-d1
  ip link add sink0 netns obh-g1 type veth peer name idle0 netns obh-d1   # an idle sink (traffic wants one)
  for x in "obh-g1 gen0" "obh-g1 sink0" "obh-d1 drop0" "obh-d1 idle0"; do set -- $x; ip -n "$1" link set "$2" up; done
  ip -n obh-d1 link set dev drop0 xdp obj "$work/drop.o" sec xdp
  if [ "$1" = threaded ]; then
    ip netns exec obh-d1 sh -c 'echo 1 > /sys/class/net/drop0/threaded'; sleep 0.5
    for pid in $(ps -eo pid,comm | awk '$2 ~ /^napi\/drop0-/ {print $1}'); do taskset -pc 1 "$pid" >/dev/null; done
  fi
}
count() { ip netns exec obh-d1 cat /sys/class/net/drop0/statistics/rx_packets; }
mpps() { awk -v s="$1" 'BEGIN{printf "%.3f", s/5e6}'; }
echo "| run | peer NAPI | dpdk-testpmd txonly (Mpps) | orbitmesh-bench (Mpps) |"
echo "|---:|---|---:|---:|"
for run in $(seq "${1:-1}"); do
  for mode in default threaded; do
    tp="-"
    if [ $have_testpmd = 1 ]; then
      setup $mode
      ip netns exec obh-g1 sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci \
        --file-prefix obh-tg --log-level=*:error --vdev net_af_xdp0,iface=gen0 \
        -- --forward-mode=txonly --nb-cores=1 --auto-start --stats-period 100" > "$work/tg.log" 2>&1 &
      tpid=$!; sleep 4
      b=$(count); sleep 5; a=$(count); tp=$(mpps $((a - b)))
      kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=
    fi
    setup $mode
    M=$(ip -n obh-d1 -br link show drop0 | awk '{print $3}')
    b=$(count)
    $B traffic --netns obh-g1 --tx gen0 --rx sink0 --dst-mac "$M" --rate 3e6 --secs 5 --size 64 --core 0 > "$work/gen.json" 2>&1
    a=$(count)
    echo "| $run | $mode | $tp | $(mpps $((a - b))) |"
  done
done
