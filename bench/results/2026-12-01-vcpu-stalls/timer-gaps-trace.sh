# The ftrace of CPU 1 (the DUT's core) over one harness trial, for
# timer-gaps.py. Run from the repository root, as root, with nothing else
# running; the trace covers 14 s from 1 s after the start.
# usage: bash bench/results/2026-12-01-vcpu-stalls/timer-gaps-trace.sh OUT DUT RATE_MPPS
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$(realpath -m "$1")
T=/sys/kernel/debug/tracing
restore() { cd $T; for e in $EV; do echo 0 > events/$e/enable; done
  echo > trace; echo 3 > tracing_cpumask; echo 1408 > buffer_size_kb; echo local > trace_clock; echo 1 > tracing_on; }
trap restore EXIT
EV="napi/napi_poll sched/sched_switch sched/sched_wakeup irq/irq_handler_entry irq/softirq_entry irq/softirq_exit irq_vectors/local_timer_entry irq_vectors/reschedule_entry irq_vectors/call_function_single_entry irq_vectors/call_function_entry timer/hrtimer_expire_entry"
cd $T && echo 0 > tracing_on && echo > trace && echo 2 > tracing_cpumask && echo 262144 > buffer_size_kb && echo mono > trace_clock
for e in $EV; do echo 1 > events/$e/enable; done
cd "$ROOT" && rm -rf /tmp/probe2
(sleep 1; echo 1 > $T/tracing_on; sleep 14; echo 0 > $T/tracing_on) &
timeout 300 ./target/release/orbitmesh-bench run --duts $2 --threaded-napi --sizes 64 --trial 8 --max-mpps $3 --max-trials 1 --latency-loads 0.5 --latency-trial 1 --cost-mpps "" --swap-rate 0 --stall-check 0 --quiet-wait 1 --out-dir /tmp/probe2 2>&1 | tr '\r' '\n' | grep -E "trial" | tail -2
wait
cp $T/trace "$OUT"
