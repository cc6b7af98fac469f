#!/usr/bin/env bash
# The XDP transit fast path against the peers a user would compare it with
# (issue 16, "Measured in the harness"), all in each orbitmesh-bench run on
# the same namespace line, 64-byte MPLS frames, a 1M-label FIB:
#   xdp-min        the minimal XDP swap (bench/bpf/xdp_min.c): the in-kernel limit
#   xdp-min-busy   the same, its NAPI busy polled on the DUT core by its loader
#   orbitmesh-xdp  orbitmesh-dp --fast-path xdp
#   orbitmesh-xdp-busy  the same, its worker busy polling (runs dut0's NAPI on the DUT core)
#   orbitmesh      orbitmesh-dp --fast-path off (every frame through AF_XDP)
#   kernel         Linux IPv4 forwarding
#   testpmd        dpdk-testpmd --forward-mode=mac over net_af_xdp
# RUNS runs with threaded NAPI (receive on the DUT's core; the NAPI threads
# at SCHED_FIFO, see orbitmesh-bench --help), each with 1,000 FIB swaps
# under load at 50% of the zero-loss rate for both orbitmesh DUTs and a
# cpu-clock profile of both cores at 90%, and every peer offered 0.15, 0.3,
# 0.5 and 0.7 Mpps (CPU per frame, and the frames each lost of its own at
# the same rate); then one run with default NAPI
# (a veth's receive on the sender's core: where the cost lands).
# Results: bench/results/<date>-xdp-threaded-N/ and <date>-xdp-default/; then
# scripts/bench-xdp-summary.py prints the ratios against the targets.
#   scripts/bench-xdp.sh             # RUNS=2, about 13 minutes on a quiet 2-CPU machine
#   RUNS=1 DEFAULT=0 scripts/bench-xdp.sh
#   GEN=relay TAG=relay scripts/bench-xdp.sh  # frames reach dut0 as XDP frames (orbitmesh-bench run --gen)
#   GEN=live MAX_MPPS=2 TAG=live scripts/bench-xdp.sh  # XDP frames made by the kernel: no copy on either core, ~1.5 Mpps on this VM
#   TAG=mine scripts/bench-xdp.sh    # results in <date>-xdp-mine-threaded-N/ (a TAG keeps a run from overwriting an earlier one of the same day)
set -euo pipefail
cd "$(dirname "$0")/.."
day=$(date -u +%Y-%m-%d)
dirs=()
common=(--duts xdp-min,xdp-min-busy,orbitmesh-xdp,orbitmesh-xdp-busy,orbitmesh,kernel,testpmd --sizes 64 --trial 2
  --max-mpps "${MAX_MPPS:-1.5}" --latency-loads 0.5 --latency-trial 2 --cost-mpps 0.15,0.3,0.5,0.7 ${GEN:+--gen "$GEN"})
for r in $(seq 1 "${RUNS:-2}"); do
  bash scripts/bench-harness.sh --name "xdp${TAG:+-$TAG}-threaded-$r" --threaded-napi "${common[@]}" \
    --swap-rate 100 --swaps 1000 --swap-load 0.5 --profile-load 0.9
  dirs+=("bench/results/$day-xdp${TAG:+-$TAG}-threaded-$r")
done
if [ "${DEFAULT:-1}" = 1 ]; then
  bash scripts/bench-harness.sh --name "xdp${TAG:+-$TAG}-default" "${common[@]}" --swap-rate 0
  dirs+=("bench/results/$day-xdp${TAG:+-$TAG}-default")
fi
# The ratios to each peer against issue 16's targets, and the swap tests.
python3 scripts/bench-xdp-summary.py "${dirs[@]}"
