#!/usr/bin/env bash
# orbitmesh relay demo: one dataplane in namespaces and live FIB operations
# on it (the main demo, the emulated constellation, is scripts/demo.sh):
#
#   [omd-gen] gen0 ── dut0 [omd-dut: orbitmesh-dp] dut1 ── sink0 [omd-sink]
#                                                  dut2 ── sink1
#
# 1. predicts a Kuiper K1 slice for 10 s (orbitmesh-ctl predict);
# 2. starts orbitmesh-dp (AF_XDP) with a FIB sending label 16001 to sink0;
# 3. sends MPLS traffic (until the last step is shown), stages a new FIB
#    3 s ahead (to sink1) and shows the traffic move at that instant, then
#    rolls back, then takes a port down administratively and shows fast
#    reroute to the backup. Rates are frames per second over each row's
#    measured interval (a row is about 1.2-1.7 s: the counters and the
#    control socket are read between sleeps).
#
#   scripts/demo-relay.sh                 # transit in the XDP fast path
#   FAST_PATH=off scripts/demo-relay.sh   # every frame through the AF_XDP workers
#
# Needs root. Cleans up everything it creates, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP)" >&2; exit 1; }
FAST_PATH=${FAST_PATH:-xdp}
case "$FAST_PATH" in xdp|off) ;; *) echo "demo: FAST_PATH=$FAST_PATH: expected xdp or off" >&2; exit 2 ;; esac
bash scripts/setup.sh >/dev/null
python3 scripts/demo-build.py dataplane control
DP=target/release/orbitmesh-dp; CTL=target/release/orbitmesh-ctl
work=$(mktemp -d /tmp/omd.XXXX); S="--socket $work/dp.sock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for ns in omd-gen omd-dut omd-sink; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== 1. predicting 10 s of a Kuiper K1 slice with 5 ground stations"
$CTL predict --preset kuiper-k1 --ground-stations control/data/ground_stations/cities_top100.basic.txt \
  --gs-count 5 --duration 10s --step 100ms --pairs 1156:1157 --out "$work/kuiper" -q
sed -n '1,12p' "$work/kuiper/summary.md"
echo "   path Tokyo -> Delhi at t=0: $(sed -n 2p "$work/kuiper/pairs/path_1156_to_1157.csv")"

echo "== 2. a relay in network namespaces"
GEN=02:6f:00:00:00:01; DUT0=02:6f:00:00:01:00; DUT1=02:6f:00:00:01:01; DUT2=02:6f:00:00:01:02
SINK0=02:6f:00:00:02:00; SINK1=02:6f:00:00:02:01
for ns in omd-gen omd-dut omd-sink; do ip netns del $ns 2>/dev/null || true; ip netns add $ns; done
ip link add gen0 netns omd-gen type veth peer name dut0 netns omd-dut
ip link add dut1 netns omd-dut type veth peer name sink0 netns omd-sink
ip link add dut2 netns omd-dut type veth peer name sink1 netns omd-sink
for x in "omd-gen gen0 $GEN" "omd-dut dut0 $DUT0" "omd-dut dut1 $DUT1" "omd-dut dut2 $DUT2" \
         "omd-sink sink0 $SINK0" "omd-sink sink1 $SINK1"; do
  set -- $x; ip -n $1 link set $2 address $3; ip -n $1 link set $2 up
done
# The dut switches transit frames in XDP (its fast path, unless
# FAST_PATH=off) and redirects them to dut1/dut2; a veth takes a frame
# redirected in XDP only when its peer runs NAPI (an XDP program or GRO:
# drivers/net/veth.c, veth_xdp_xmit), so the sinks turn GRO on.
for d in sink0 sink1; do ip netns exec omd-sink ethtool -K $d gro on >/dev/null; done
fib() { # version next-hop
  cat <<TOML
version = $1
[[ports]]
name = "dut0"
[[ports]]
name = "dut1"
[[ports]]
name = "dut2"
[[next_hops]]
name = "sat-a"
port = "dut1"
dst_mac = "$SINK0"
src_mac = "$DUT1"
backup = "sat-b"
[[next_hops]]
name = "sat-b"
port = "dut2"
dst_mac = "$SINK1"
src_mac = "$DUT2"
[[labels]]
label = 16001
action = "swap"
next_hop = "$2"
TOML
}
fib 1 sat-a > "$work/v1.toml"; fib 2 sat-b > "$work/v2.toml"
ip netns exec omd-dut $DP --port dut0 --port dut1 --port dut2 --fib "$work/v1.toml" $S --name demo --log warn \
  --fast-path "$FAST_PATH" &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/dp.sock" ] && break; sleep 0.1; done
$CTL fib show $S

echo "== 3. traffic: 2,000 MPLS frames/s until the last step; FIB v2 staged 3 s ahead"
frame=$(python3 - <<PY
import struct
dst=bytes.fromhex("$DUT0".replace(":","")); src=bytes.fromhex("$GEN".replace(":",""))
print((dst+src+b"\x88\x47"+struct.pack("!I",(16001<<12)|(1<<8)|64)+bytes(42)).hex())
PY
)
# 60 s worth: more than the steps below take; stopped after the last one.
echo "$frame" | ip netns exec omd-gen python3 tests/tools/pkt.py seq gen0 120000 2000 >/dev/null &
gen=$!; pids+=($gen)
count() { ip netns exec omd-sink cat /sys/class/net/$1/statistics/rx_packets; }
now_ns() { date +%s%N; }
# fib diff exits 1 when the files differ (as diff(1) does).
{ $CTL fib diff "$work/v1.toml" "$work/v2.toml" || [ $? -eq 1 ]; } | sed 's/^/   /'
$CTL fib load "$work/v2.toml" --at +3s $S
t0=$(now_ns); w0=$t0; a0=$(count sink0); b0=$(count sink1); rerouted=0
for t in $(seq 1 12); do
  sleep 1
  w=$(now_ns); a=$(count sink0); b=$(count sink1)
  note=""
  [ "$t" = 6 ] && { $CTL fib rollback $S >/dev/null; note="<- rolled back to v1"; }
  [ "$t" = 9 ] && { $CTL port down dut1 $S >/dev/null; note="<- dut1 down: fast reroute to the backup"; }
  v=$($CTL stats --json $S | python3 -c 'import json,sys; print(json.load(sys.stdin)["fib_version"])')
  # Per second over this row's own interval, as measured.
  awk -v t=$(( (w - t0) / 1000000 )) -v dt=$(( (w - w0) / 1000000 )) -v a=$((a - a0)) -v b=$((b - b0)) \
      -v v="$v" -v note="$note" 'BEGIN {
    printf "   t=%5.1fs  to sink0 (sat-a): %5.0f/s   to sink1 (sat-b): %5.0f/s   (row of %.2f s)  FIB v%s %s\n",
      t / 1000, a * 1000 / dt, b * 1000 / dt, dt / 1000, v, note }'
  [ "$t" -gt 9 ] && rerouted=$((rerouted + b - b0))
  a0=$a; b0=$b; w0=$w
done
kill "$gen" 2>/dev/null || true
# About 3 rows at 2,000 frames/s: a handful means the frames went nowhere.
if [ "$rerouted" -ge 1000 ]; then
  echo "   fast reroute: $rerouted frames reached the backup (sink1) after dut1 went down"
else
  echo "   fast reroute: only $rerouted frames reached the backup after dut1 went down (see the counters)" >&2
fi
echo "== counters"
$CTL stats $S
echo "== done (the whole constellation: scripts/demo.sh)"
