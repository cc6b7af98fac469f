#!/usr/bin/env bash
# The generator alone: orbitmesh-bench traffic (64 B MPLS at an offered 3 Mpps,
# 5 s, CPU 0) into an XDP drop on the veth peer, with the peer's NAPI default
# and threaded + pinned to CPU 1, at two batch gaps. Prints Markdown rows:
# | NAPI | batch gap (us) | sent Mpps | dropped at the peer Mpps |
# (bench/results/generator.md). Namespaces obh-g1/obh-d1, removed on exit.
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
cleanup() { ip netns del obh-g1 2>/dev/null || true; ip netns del obh-d1 2>/dev/null || true; }
trap 'cleanup; rm -rf "$work"' EXIT
echo "| NAPI | batch gap (us) | sent Mpps | dropped at the peer Mpps |"
echo "|---|---:|---:|---:|"
for _ in $(seq "${1:-1}"); do
for mode in default threaded; do
  cleanup
  ip netns add obh-g1; ip netns add obh-d1
  ip link add gen0 netns obh-g1 type veth peer name drop0 netns obh-d1
  ip link add sink0 netns obh-g1 type veth peer name idle0 netns obh-d1   # an idle sink (the command wants one)
  for x in "obh-g1 gen0" "obh-g1 sink0" "obh-d1 drop0" "obh-d1 idle0"; do set -- $x; ip -n "$1" link set "$2" up; done
  ip -n obh-d1 link set dev drop0 xdp obj "$work/drop.o" sec xdp
  if [ $mode = threaded ]; then
    ip netns exec obh-d1 sh -c 'echo 1 > /sys/class/net/drop0/threaded'; sleep 0.5
    for pid in $(ps -eo pid,comm | awk '$2 ~ /^napi\/drop0-/ {print $1}'); do taskset -pc 1 "$pid" >/dev/null; done
  fi
  M=$(ip -n obh-d1 -br link show drop0 | awk '{print $3}')
  for gap in 50 200; do
    b=$(ip netns exec obh-d1 cat /sys/class/net/drop0/statistics/rx_packets)
    $B traffic --netns obh-g1 --tx gen0 --rx sink0 --dst-mac "$M" --rate 3e6 --secs 5 --size 64 --core 0 --batch-gap-us $gap > "$work/gen.json" 2>&1
    a=$(ip netns exec obh-d1 cat /sys/class/net/drop0/statistics/rx_packets)
    sent=$(grep -m1 '"sent"' "$work/gen.json" | tr -dc 0-9)
    echo "| $mode | $gap | $(awk -v s="$sent" 'BEGIN{printf "%.3f", s/5e6}') | $(awk -v s=$((a-b)) 'BEGIN{printf "%.3f", s/5e6}') |"
  done
done
done
