#!/usr/bin/env bash
# Relay benchmark on a veth line, 64-byte frames, measured side by side:
#
#   [omb-gen] gen0 ── dut0 [omb-dut] dut1 ── sink0 [omb-sink: XDP drop]
#
# Generator: dpdk-testpmd replaying a pcap from memory (net_pcap,
# infinite_rx) into net_af_xdp on gen0, forwarding core on CPU 1. Sink: an
# XDP program dropping every frame, counted with ethtool -S. DUTs, one after
# the other on CPU 0: orbitmesh-dp (MPLS swap, 1M-label FIB, sleep-when-idle),
# the kernel's IPv4 forwarding (RPS to CPU 0), and dpdk-testpmd
# --forward-mode=mac over net_af_xdp. For each: delivered rate, generator
# rate, and the DUT's CPU time per forwarded packet.
#   scripts/bench-veth.sh [SECONDS]      (root) -> bench/results/veth.md
#   ONLY=orbitmesh PERF=1 scripts/bench-veth.sh 5   # one DUT, perf profile of CPU 0
#   DP_BIN=/tmp/old/release/orbitmesh-dp ONLY=orbitmesh scripts/bench-veth.sh 8
#                                        # another orbitmesh-dp build (before/after comparisons)
#   THREADED=1 scripts/bench-veth.sh     # threaded NAPI: dut0's receive pinned to the DUT's
#                                        # core (CPU 0), sink0's to the generator's (CPU 1)
#   SINK_NAPI=0 scripts/bench-veth.sh    # diagnostic: only sink0's NAPI threaded, pinned to CPU 0
# Also counted on CPU 0: NAPI polls and syscalls per packet (perf stat tracepoints);
# bench/results/veth-analysis.md explains what they show.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-veth: needs root (namespaces, XDP, hugepages)" >&2; exit 1; }
SECS=${1:-10}
OUT=${OUT:-bench/results/veth$([ "${THREADED:-0}" = 1 ] && echo -threaded || true).md}
bash scripts/setup.sh >/dev/null
need=()
for p in dpdk dpdk-dev librte-net-af-xdp23 librte-net-pcap23 linux-perf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then echo 1024 > /proc/sys/vm/nr_hugepages; fi
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages

cargo build -q --release -p dataplane --bin orbitmesh-dp -p bench --bin fib-gen
work=$(mktemp -d /tmp/omb.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for ns in omb-gen omb-dut omb-sink; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

GEN=02:6f:00:00:00:01; DUT0=02:6f:00:00:01:00; DUT1=02:6f:00:00:01:01; SINK0=02:6f:00:00:02:00
arch=$(uname -m)
clang -O2 -g -target bpf -I/usr/include/$arch-linux-gnu -c bench/veth/drop.c -o "$work/drop.o"
python3 bench/veth/mkpcap.py "$work/mpls.pcap" mpls $DUT0 64
python3 bench/veth/mkpcap.py "$work/ipv4.pcap" ipv4 $DUT0 64
target/release/fib-gen "$work/fib.json" 1000000 dut0 dut1 $SINK0 $DUT1

line() {
  for ns in omb-gen omb-dut omb-sink; do ip netns del $ns 2>/dev/null || true; ip netns add $ns; done
  ip link add gen0 netns omb-gen type veth peer name dut0 netns omb-dut
  ip link add dut1 netns omb-dut type veth peer name sink0 netns omb-sink
  for x in "omb-gen gen0 $GEN 10.99.0.1/24" "omb-dut dut0 $DUT0 10.99.0.2/24" \
           "omb-dut dut1 $DUT1 10.99.1.2/24" "omb-sink sink0 $SINK0 10.99.1.1/24"; do
    set -- $x
    ip -n $1 link set $2 address $3; ip -n $1 addr add $4 dev $2; ip -n $1 link set $2 up
  done
  ip -n omb-sink link set dev sink0 xdp obj "$work/drop.o" sec xdp
}

# Threaded NAPI: pin each veth's NAPI kthread (they appear once traffic flows).
pin_napi() {
  if [ -n "${SINK_NAPI:-}" ]; then
    ip netns exec omb-sink sh -c 'echo 1 > /sys/class/net/sink0/threaded'
    sleep 0.5
    for pid in $(ps -eo pid,comm | awk '$2 ~ /^napi\/sink0-/ {print $1}'); do taskset -pc "$SINK_NAPI" "$pid" >/dev/null 2>&1 || true; done
  fi
  [ "${THREADED:-0}" = 1 ] || return 0
  # A veth has NAPI only with XDP attached or GRO on; then it can be threaded.
  ip netns exec omb-dut ethtool -K dut0 gro on >/dev/null 2>&1 || true
  ip netns exec omb-dut sh -c 'echo 1 > /sys/class/net/dut0/threaded'
  ip netns exec omb-sink sh -c 'echo 1 > /sys/class/net/sink0/threaded'
  sleep 0.5
  for pid in $(ps -eo pid,comm | awk '$2 ~ /^napi\/dut0-/ {print $1}'); do taskset -pc 0 "$pid" >/dev/null 2>&1 || true; done
  for pid in $(ps -eo pid,comm | awk '$2 ~ /^napi\/sink0-/ {print $1}'); do taskset -pc 1 "$pid" >/dev/null 2>&1 || true; done
}

sink_count() { ip netns exec omb-sink ethtool -S sink0 | awk '/rx_queue_0_xdp_drops/ {print $2}'; }
gen_count() { ip netns exec omb-gen cat /sys/class/net/gen0/statistics/tx_packets; }
proc_cpu() { awk '{print $14 + $15}' /proc/$1/stat; }          # clock ticks
# CPU 0's busy time in clock ticks: wall time minus idle+iowait. NO_HZ measures idle
# exactly, while the user/system/softirq fields are sampled at the tick and miss
# softirq work run from the idle loop.
cpu0_busy() {
  local hz; hz=$(getconf CLK_TCK)
  awk -v now="$(date +%s%N)" -v hz="$hz" '/^cpu0 / {printf "%.0f\n", now / 1e9 * hz - $5 - $6}' /proc/stat
}

start_gen() {
  ip netns exec omb-gen sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec dpdk-testpmd -l 0,1 --main-lcore 0 \
    --no-pci --file-prefix omb-gen --log-level=*:error \
    --vdev net_pcap0,rx_pcap=$work/$1.pcap,tx_pcap=/dev/null,infinite_rx=1 --vdev net_af_xdp0,iface=gen0 \
    -- --forward-mode=io --nb-cores=1 --stats-period 5 --auto-start" > "$work/gen.log" 2>&1 &
  genpid=$!; pids+=($genpid)
}

results=()
measure() { # name dut_pid_or_cpu0
  local name=$1 who=$2
  sleep 1; pin_napi; sleep 2
  # With threaded NAPI the DUT's receive runs in a kthread on CPU 0: count the whole core.
  [ "${THREADED:-0}" = 1 ] && who=cpu0
  local s0 g0 c0 s1 g1 c1
  s0=$(sink_count); g0=$(gen_count)
  if [ "$who" = cpu0 ]; then c0=$(cpu0_busy); else c0=$(proc_cpu "$who"); fi
  # NAPI polls on the DUT's core (tracepoint napi:napi_poll): how many
  # receive rounds the DUT's core runs per forwarded packet.
  local polls=0 sysc=0
  if [ "${PERF:-0}" = 1 ]; then
    mkdir -p perf
    perf record -e cpu-clock -F 999 -g -C 0 -o "perf/veth-dut.data" -- sleep "$SECS" 2>/dev/null
    perf report -i "perf/veth-dut.data" --no-children --sort dso,sym --percent-limit 2 --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -30
    echo "user-space share of CPU 0:"
    perf report -i "perf/veth-dut.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | grep -v kernel | head -5
  else
    perf stat -e napi:napi_poll,raw_syscalls:sys_enter -C 0 -x, -o "$work/stat" -- sleep "$SECS"
    polls=$(awk -F, '/napi:napi_poll/ {print $1}' "$work/stat")
    sysc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$work/stat")
  fi
  s1=$(sink_count); g1=$(gen_count)
  if [ "$who" = cpu0 ]; then c1=$(cpu0_busy); else c1=$(proc_cpu "$who"); fi
  local hz; hz=$(getconf CLK_TCK)
  results+=("$(python3 -c "
s=($s1-$s0)/$SECS; g=($g1-$g0)/$SECS; cpu=($c1-$c0)/$hz/$SECS
ns = cpu*1e9/s if s else float('nan')
pp = ${polls:-0}/$SECS/s if s else float('nan')
sc = ${sysc:-0}/$SECS/s if s else float('nan')
print(f'| $name | {s/1e6:.3f} | {g/1e6:.3f} | {cpu*100:.0f}% | {ns:.0f} | {pp:.2f} | {sc:.3f} |')")")
  echo "${results[-1]}"
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

run() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

if run orbitmesh; then
echo "== orbitmesh-dp"
line
ip netns exec omb-dut "${DP_BIN:-target/release/orbitmesh-dp}" --port dut0 --port dut1 --fib "$work/fib.json" \
  --core 0 --poll sleep-when-idle --socket "$work/dp.sock" --log warn &
dp=$!; pids+=($dp)
sleep 3
start_gen mpls
measure "orbitmesh-dp (MPLS swap, 1M labels, sleep-when-idle)" $dp
stop_pid $genpid; stop_pid $dp
fi

if run kernel; then
echo "== kernel IPv4 forwarding"
line
ip netns exec omb-dut sysctl -qw net.ipv4.ip_forward=1
ip -n omb-dut neigh replace 10.99.1.1 lladdr $SINK0 dev dut1 nud permanent
ip netns exec omb-dut sh -c 'echo 1 > /sys/class/net/dut0/queues/rx-0/rps_cpus'
start_gen ipv4
measure "kernel IPv4 forwarding (RPS to CPU 0)" cpu0
stop_pid $genpid
fi

if run testpmd; then
echo "== dpdk-testpmd mac forwarding"
line
ip netns exec omb-dut sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec dpdk-testpmd -l 0,1 --main-lcore 1 \
  --no-pci --file-prefix omb-dut --log-level=*:error \
  --vdev net_af_xdp0,iface=dut0 --vdev net_af_xdp1,iface=dut1 \
  -- --forward-mode=mac --eth-peer=1,$SINK0 --nb-cores=1 --stats-period 5 --auto-start" > "$work/dut.log" 2>&1 &
tp=$!; pids+=($tp)
sleep 3
start_gen mpls
measure "dpdk-testpmd --forward-mode=mac (net_af_xdp)" $tp
stop_pid $genpid; stop_pid $tp
fi
[ -z "${ONLY:-}" ] || exit 0

mkdir -p bench/results
{
  echo "# Relay on a veth line: orbitmesh-dp vs the kernel vs dpdk-testpmd"
  echo
  echo "Command: \`${ONLY:+ONLY=$ONLY }${THREADED:+THREADED=$THREADED }scripts/bench-veth.sh $SECS\`  "
  echo "Date: $(date -u '+%Y-%m-%d %H:%M') UTC; $(lscpu | sed -n 's/Model name: *//p'), $(nproc) vCPU, Linux $(uname -r)."
  echo "Generator: dpdk-testpmd, pcap replay into net_af_xdp on gen0 (CPU 1). DUT on CPU 0. Sink: XDP drop on sink0."
  echo "64-byte frames (60 + FCS), 64 flows. Each DUT measured for $SECS s after 3 s of warm-up."
  [ "${THREADED:-0}" = 1 ] && echo "Threaded NAPI: dut0's receive thread pinned to CPU 0 (the DUT's core), sink0's to CPU 1; DUT CPU is then CPU 0's non-idle time for every DUT (process + receive thread)."
  echo
  echo "| DUT | delivered Mpps | generator Mpps | DUT CPU | DUT CPU ns / delivered packet | NAPI polls on the DUT core / packet | syscalls on the DUT core / packet |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${results[@]}"
  echo
  echo "DUT CPU: for processes, their user+system time (/proc/PID/stat); for the kernel (and with"
  echo "threaded NAPI for all), CPU 0's non-idle time: wall time minus /proc/stat's idle time."
  echo "On veth the receiver's NAPI runs on the sender's CPU, so the"
  echo "generator's CPU also pays for the DUT's receive: when 'delivered' is close to 'generator',"
  echo "the generator (not the DUT) is the limit."
  echo
  echo "NAPI polls and syscalls on the DUT core per packet: tracepoints napi:napi_poll and"
  echo "raw_syscalls:sys_enter counted on CPU 0 (perf stat) over the same seconds. An AF_XDP"
  echo "relay in copy mode transmits each frame with its own __dev_direct_xmit(), whose"
  echo "local_bh_enable() runs the sink veth's NAPI at once: about one NAPI poll per frame"
  echo "on the DUT core. The kernel's forwarding transmits from inside its receive softirq,"
  echo "so the sink's NAPI runs once per batch of frames. What this means for the targets:"
  echo "bench/results/veth-analysis.md."
} > "$OUT"
cat "$OUT"
