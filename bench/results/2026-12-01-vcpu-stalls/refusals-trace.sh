# The ftrace of one harness trial for refusals.py and backlog-replay.py:
# dut0's polls, the scheduler and the timers on CPU 1 (the DUT's core), and
# every frame gen0 could not hand to dut0 (skb:kfree_skb inside veth_xmit,
# addresses from /proc/kallsyms) on any CPU. Run from the repository root,
# as root, with nothing else running; the trace covers 12 s from 1 s after
# the start (the harness may run a disturbed trial again after it).
# usage: [SCHED_ALL=1] bash bench/results/2026-12-01-vcpu-stalls/refusals-trace.sh OUT DUT RATE_MPPS
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$(realpath -m "$1")
T=/sys/kernel/debug/tracing
EV="napi/napi_poll sched/sched_switch sched/sched_wakeup irq_vectors/local_timer_entry timer/hrtimer_expire_entry"
restore() { cd $T; for e in $EV skb/kfree_skb; do echo 0 > events/$e/enable; echo 0 > events/$e/filter; done
  echo > trace; echo 3 > tracing_cpumask; echo 7 > buffer_size_kb; echo local > trace_clock; echo 1 > tracing_on; }
trap restore EXIT
# [start, end) of veth_xmit and veth_xmit.cold: the next symbol's address.
range() { awk -v s="$1" '$3==s{a=$1; getline; print "location >= 0x" a " && location < 0x" $1; exit}' /proc/kallsyms; }
main=$(range veth_xmit); cold=$(range veth_xmit.cold)
cd $T && echo 0 > tracing_on && echo > trace && echo 3 > tracing_cpumask && echo 262144 > buffer_size_kb && echo mono > trace_clock
for e in $EV; do echo 'CPU == 1' > events/$e/filter; echo 1 > events/$e/enable; done
# SCHED_ALL=1: the scheduler's switches on both cores (what ran on the
# generator's core while dut0 got nothing; ../2026-12-01-busy-polls/).
[ "${SCHED_ALL:-0}" = 1 ] && echo 0 > events/sched/sched_switch/filter
echo "($main)${cold:+ || ($cold)}" > events/skb/kfree_skb/filter; echo 1 > events/skb/kfree_skb/enable
cd "$ROOT" && rm -rf /tmp/refusals-probe
(sleep 1; echo 1 > $T/tracing_on; sleep 12; echo 0 > $T/tracing_on) &
timeout 300 ./target/release/orbitmesh-bench run --duts "$2" --threaded-napi --sizes 64 --trial 10 --max-mpps "$3" --max-trials 1 --latency-loads 0.5 --latency-trial 1 --cost-mpps "" --swap-rate 0 --stall-check 0 --quiet-wait 1 --out-dir /tmp/refusals-probe > /dev/null 2>&1
wait
cp $T/trace "$OUT"
