# A cpu-clock profile of CPU 1 (the DUT's core) over one harness trial at a
# fixed rate, with dut0's polls (napi:napi_poll) and the scheduler's
# switches in the same stream, for poll-profile.py. Run from anywhere, as
# root, with nothing else running; perf (linux-perf) samples every
# PERIOD ns of CPU time (default 50,000: 20 kHz; 10,000 overloads the DUT).
# The watch's napi_poll program lets perf's copy of the event through
# (KEEP_EVENT in bench/bpf/napi_gap.c).
# usage: [PERIOD=ns] [EXTRA="--gen relay"] bash poll-profile.sh OUT.data DUT RATE_MPPS
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$(realpath -m "$1")
cd "$ROOT" && rm -rf /tmp/poll-profile-run
perf record -C 1 -e cpu-clock -c "${PERIOD:-50000}" -e napi:napi_poll -e sched:sched_switch -o "$OUT" -- \
  timeout 300 ./target/release/orbitmesh-bench run --duts "$2" --threaded-napi --sizes 64 --trial 10 \
  --max-mpps "$3" --max-trials 1 --latency-loads 0.5 --latency-trial 1 --cost-mpps "" --swap-rate 0 \
  --stall-check 0 --quiet-wait 1 --retries 0 ${EXTRA:-} --out-dir /tmp/poll-profile-run > /dev/null 2>&1
python3 -c '
import json
t = json.load(open("/tmp/poll-profile-run/results.json"))["duts"][0]["sizes"][0]["search"]["trials"][0]
print("offered %.3f Mpps, sent %.3f, delivered %.3f, loss %.4f, testbed_lost %d" % (t["offered_pps"] / 1e6,
      t["sent_pps"] / 1e6, t["delivered_pps"] / 1e6, t["loss_ratio"], t["testbed_lost"]))'
