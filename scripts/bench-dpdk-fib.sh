#!/usr/bin/env bash
# IPv4 longest-prefix match: orbitmesh's DIR-24-8 against DPDK's rte_fib
# (dpdk-test-fib, DIR24_8), same 1M BGP-like routes, same lookup addresses,
# one run. Writes bench/results/lpm-vs-dpdk.md. Needs root (apt, hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if ! command -v dpdk-test-fib >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpdk-dev >/dev/null
fi
N_ROUTES=${N_ROUTES:-1000000}
N_IPS=${N_IPS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q --release -p bench --bin lpm-compare
bin=target/release/lpm-compare
$bin gen "$work/routes.txt" "$work/ips.txt" "$N_ROUTES" "$N_IPS"

# DPDK: --no-huge keeps the machine's hugepages alone; tbl8 groups sized for
# the table; -v s1 and -v v are scalar and vector bulk lookups.
dpdk() {
  taskset -c 1 dpdk-test-fib --no-huge --no-pci -m 2048 -l 1 --log-level=lib.eal:debug \
    -- -f "$work/routes.txt" -t "$work/ips.txt" -g 65536 "$@" 2>&1
}
out_s=$(dpdk -v s1)
out_v=$(dpdk -v v || true)
tsc_hz=$(echo "$out_s" | sed -n 's/.*TSC frequency is ~\([0-9]*\) KHz.*/\1/p' | head -1)
cyc_s=$(echo "$out_s" | sed -n 's/AVG FIB lookup \([0-9.]*\).*/\1/p' | head -1)
cyc_v=$(echo "$out_v" | sed -n 's/AVG FIB lookup \([0-9.]*\).*/\1/p' | head -1)
ours=$(taskset -c 1 $bin run "$work/routes.txt" "$work/ips.txt")
ns=$(echo "$ours" | sed -n 's/.*lookup_ns \([0-9.]*\).*/\1/p')

python3 - "$tsc_hz" "${cyc_s:-nan}" "${cyc_v:-nan}" "$ns" "$ours" "$N_ROUTES" "$N_IPS" <<'PY'
import sys, datetime
khz, cs, cv, ns, ours, nr, ni = sys.argv[1:]
khz = float(khz) if khz else float("nan")
f = lambda c: f"{float(c) / (khz * 1e3) * 1e9:.2f}" if c != "nan" else "n/a"
cv_txt = cv if cv != "nan" else "n/a (not supported by this CPU/build)"
lines = [
  "# IPv4 LPM: orbitmesh DIR-24-8 vs DPDK rte_fib (dpdk-test-fib)", "",
  "Command: `scripts/bench-dpdk-fib.sh`  ",
  f"Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; both pinned to CPU 1; {int(nr):,} BGP-like routes, {int(ni):,} lookups of addresses inside them; TSC {khz/1e3:.0f} MHz.", "",
  "| lookup | cycles | ns per lookup |", "|---|---:|---:|",
  f"| DPDK rte_fib DIR24_8, scalar bulk (-v s1) | {cs} | {f(cs)} |",
  f"| DPDK rte_fib DIR24_8, vector bulk (-v v) | {cv_txt} | {f(cv)} |",
  f"| orbitmesh Lpm4 (batches of 32) | {float(ns)*khz/1e6:.1f} | {float(ns):.2f} |", "",
  f"orbitmesh: `{ours}`", "",
]
open("bench/results/lpm-vs-dpdk.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
