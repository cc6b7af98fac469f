#!/usr/bin/env bash
# The standard benchmark suite: in-memory benchmarks of the forwarding core
# (criterion, -> bench/results/core.md), then, as root, the relay suite on
# AF_XDP with its peers (scripts/bench-harness.sh -> bench/results/<date>-suite/).
#   scripts/bench.sh            # full criterion defaults (~3 minutes)
#   QUICK=1 scripts/bench.sh    # shorter measurement (~1.5 minutes)
#   HARNESS=0 scripts/bench.sh  # criterion only (by default, as root, the relay suite follows)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

args=()
[ "${QUICK:-0}" = 1 ] && args=(--warm-up-time 1 --measurement-time 3)
cmd="cargo bench -p bench --bench core -- ${args[*]}"
echo "== $cmd"
$cmd 2>&1 | tee /tmp/orbitmesh-bench.log | grep -E "^[a-z_0-9/]+ *(time:)?|time:|thrpt:" || true

mkdir -p bench/results
python3 - "$cmd" <<'PY'
import json, os, sys, platform, subprocess, datetime
cmd = sys.argv[1]
root = "target/criterion"
def est(name):
    p = os.path.join(root, name, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    e = json.load(open(p))
    return e["mean"]["point_estimate"], e["mean"]["confidence_interval"]
BATCH = 32
cpu = subprocess.run("lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True).stdout.strip()
rows = []
def per_pkt(name, label):
    r = est(name)
    if r is None:
        return None
    ns, ci = r
    rows.append((label, ns / BATCH, 1e3 / (ns / BATCH), ci["lower_bound"] / BATCH, ci["upper_bound"] / BATCH))
    return ns / BATCH
t = per_pkt("pipeline/transit_swap_1M", "(a) transit swap, 1M labels, random labels")
bare = per_pkt("pipeline/baseline_bare_swap_1M", "    baseline: bare loop (index + rewrite, no checks)")
naive = per_pkt("pipeline/baseline_naive_hashmap_swap_1M", "    baseline: HashMap label map, packet at a time")
copy = per_pkt("pipeline/baseline_copy_only", "    the frame copy alone (included in every row above)")
tip = per_pkt("pipeline/transit_swap_1M_in_place", "(a') transit swap, in place (no copy, TTL byte reset)")
bip = per_pkt("pipeline/baseline_bare_swap_1M_in_place", "    baseline: bare loop, in place")
i = per_pkt("pipeline/ingress_ipv4_push_1M_bgp", "(b) ingress IPv4 push, 1M BGP-like prefixes")
e = per_pkt("pipeline/ecmp8_entropy_label_1M", "(c) 8-way ECMP with entropy label, 1M labels")
eip = per_pkt("pipeline/ecmp8_entropy_label_1M_in_place", "(c') 8-way ECMP with entropy label, in place")
g = per_pkt("pipeline/egress_pop_1M", "(d) egress pop + IPv4 forward, 1M labels")
l = per_pkt("lpm/dir24_8_1M_bgp", "IPv4 lookup alone: DIR-24-8, 1M BGP-like prefixes")
ln = per_pkt("lpm/naive_hash_per_length_1M_bgp", "    baseline: HashMap per prefix length")
out = []
out.append("# Forwarding core, in memory (criterion)\n")
out.append(f"Command: `scripts/bench.sh` (runs `{cmd}`)  ")
out.append(f"Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC. Machine: {cpu}, {os.cpu_count()} vCPU VM, Linux {platform.release()}.  ")
out.append("One core, batches of 32 frames of 60 bytes. Rows without 'in place' include copying each frame from a pool of 8,192 templates into a buffer with 256 bytes of headroom (the NIC's DMA in a real run); their baselines pay the same copy. 'In place' rows rewrite a pool of 8,192 buffers without copying (only the TTL byte is reset), as the bare-loop reference does.\n")
out.append("| workload | ns/packet | Mpps | 95% CI ns/packet |")
out.append("|---|---:|---:|---|")
for (lab, ns, mpps, lo, hi) in rows:
    out.append(f"| {lab} | {ns:.2f} | {mpps:.1f} | {lo:.2f} - {hi:.2f} |")
out.append("")
if t and bare:
    out.append(f"Transit swap vs the bare loop in the same run: {t/bare:.2f}x the time per packet; vs the HashMap LSR: {naive/t:.2f}x faster.  " if naive else "")
if tip and bip:
    out.append(f"In place: transit swap {tip/bip:.2f}x the bare loop's time per packet.  ")
if l and ln:
    out.append(f"DIR-24-8 vs per-length HashMaps: {ln/l:.1f}x faster per lookup.\n")
b = est("fib/build_1M_labels")
if b:
    out.append(f"FIB build, 1M labels (validation included): {b[0]/1e6:.1f} ms.\n")
out.append("| publish (FibHandle::publish_arc of a prebuilt FIB) | ns |")
out.append("|---|---:|")
for n in ["1000", "10000", "100000", "1000000"]:
    r = est(f"publish/labels_{n}")
    if r:
        out.append(f"| {int(n):,} labels | {r[0]:.0f} |")
out.append("")
open("bench/results/core.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
echo "== written bench/results/core.md"

# The relay suite on AF_XDP (root; installs the peers, ~10 minutes; QUICK=1
# shortens it too): scripts/bench-harness.sh, also on its own.
if [ "${HARNESS:-1}" = 1 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/bench-harness.sh
  else
    echo "== skipping the relay suite (scripts/bench-harness.sh): it needs root"
  fi
fi
