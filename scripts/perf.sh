#!/usr/bin/env bash
# Profiles a running orbitmesh-dp's hot path: perf record with the cpu-clock
# software event (VMs here have no hardware counters), then a flame graph
# (inferno) and a table of the top symbols.
#   scripts/perf.sh PID [SECONDS]        # writes perf/<pid>-*.{data,svg,txt}
# With no PID (or "") it profiles the in-memory pipeline loop instead
# (bench/examples/pipeline_loop), which needs no NIC or namespace:
#   scripts/perf.sh "" 5
# On first use it installs what it lacks and says so: perf (apt, seconds)
# and inferno (cargo install, a few minutes of compiling).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if ! command -v perf >/dev/null; then
  echo "== installing perf (apt-get install linux-perf)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
if ! command -v inferno-flamegraph >/dev/null; then
  echo "== installing the flame graph tools (cargo install --locked inferno: compiles for a few minutes, once)"
  cargo install --locked inferno
fi
mkdir -p perf
pid=${1:-}
secs=${2:-10}
if [ -z "$pid" ]; then
  echo "== building the in-memory pipeline loop (release)"
  cargo build --release -p bench --example pipeline_loop
  target/release/examples/pipeline_loop pipeline 1000000 8192 100000000 &
  pid=$!
  # Ends the loop on the way out, keeping the script's own exit status:
  # the loop dies of the SIGTERM (wait returns 143), which under set -e
  # used to become the exit status of a run that had succeeded.
  trap 'rc=$?; kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; exit $rc' EXIT
  sleep 1
fi
out=perf/$pid
echo "== perf record -e cpu-clock -g -p $pid for ${secs}s"
perf record -e cpu-clock -F 999 -g -p "$pid" -o "$out.data" -- sleep "$secs" 2>/dev/null
perf script -i "$out.data" 2>/dev/null | inferno-collapse-perf > "$out.folded"
inferno-flamegraph < "$out.folded" > "$out.svg"
perf report -i "$out.data" --no-children --percent-limit 1 --stdio 2>/dev/null \
  | grep -E '^ +[0-9]' | head -25 > "$out.top.txt"
echo "== top symbols ($out.top.txt); flame graph: $out.svg"
cat "$out.top.txt"
