#!/usr/bin/env bash
# Compare orbitmesh's topology predictor against Hypatia's satgenpy (the real peer)
# on one small shared scenario: per step RTT and path of a few ground-station pairs.
#
# - creates a Python venv (not committed) and installs satgenpy 0.4.0 from PyPI;
# - runs satgenpy's own code: generate_tles_from_scratch_manual, generate_plus_grid_isls,
#   extend_ground_stations, generate_dynamic_state (algorithm_free_one_only_over_isls),
#   then its post-analysis get_path / compute_path_length_without_graph per step;
# - runs `orbitmesh-ctl predict --pairs --geometry $GEOMETRY` on the same scenario;
# - reports max |RTT difference|, differing paths, reachability differences, the
#   full forwarding state (every node towards every station at every step), and
#   the per-step speed ratio.
#
# Usage: scripts/hypatia-compare.sh [PRESET] [N_GS] [DURATION_S] [STEP_MS] [PAIRS]
#   defaults: kuiper-k1 10 20 100 "0:3,1:7,2:9,4:6"  (pairs as ground-station indices)
# Env: VENV (default /tmp/orbitmesh-hypatia-venv), WORK (default target/hypatia-compare),
#      REUSE_SATGENPY=1 to keep satgenpy's output in WORK from an earlier run (same arguments),
#      GEOMETRY=accurate|hypatia (default accurate): orbitmesh's geometry model; hypatia
#      reproduces satgenpy's PyEphem/libastro geometry (control/src/predict/hypatia.rs).
#      CHUNKS=k runs satgenpy's steps in k processes (consecutive time chunks, each a
#      generate_dynamic_state call with its own offset, starting with a full fstate file).
#      RESUME=1 (same arguments and WORK) continues a satgenpy run cut short: keeps WORK,
#      recomputes each gap of missing fstate files plus the last file before it (maybe
#      truncated), split over CHUNKS processes; satgenpy's CPU time is summed over runs.
#      Start it only once the earlier satgenpy processes have ended (runs of this version
#      hold WORK/satgenpy.lock and a second one refuses to start; older ones do not).
# A satgenpy run cut short leaves fstate files only, maybe with gaps (one run of files
# per chunk): with REUSE_SATGENPY=1 the forwarding state and all station pairs' paths are
# compared on exactly the steps whose satgenpy state is known (a full fstate file, then
# every file up to the step), and the ranges compared are printed; pair RTTs are skipped.
# CPU-heavy: runs satgenpy under `nice -n 10`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET="${1:-kuiper-k1}"
N_GS="${2:-10}"
DURATION_S="${3:-20}"
STEP_MS="${4:-100}"
GS_PAIRS="${5:-0:3,1:7,2:9,4:6}"
VENV="${VENV:-/tmp/orbitmesh-hypatia-venv}"
WORK="${WORK:-$ROOT/target/hypatia-compare}"
CITIES="${CITIES:-$ROOT/control/data/ground_stations/cities_top100.basic.txt}"
GEOMETRY="${GEOMETRY:-accurate}"
case "$GEOMETRY" in accurate|hypatia) ;; *) echo "hypatia-compare: GEOMETRY must be accurate or hypatia, got $GEOMETRY" >&2; exit 2 ;; esac

case "$PRESET" in
  kuiper-k1)   NAME=Kuiper-630;   P=34; S=34; INC=51.9;  MM=14.80; GSL="$(python3 -c 'import math;a=630000;c=a/math.tan(math.radians(30));print(repr(math.sqrt(c*c+a*a)))')"; ALT=630000 ;;
  starlink-s1) NAME=Starlink-550; P=72; S=22; INC=53.0;  MM=15.19; GSL="$(python3 -c 'import math;print(repr(math.sqrt(940700**2+550000**2)))')"; ALT=550000 ;;
  telesat-t1)  NAME=Telesat-1015; P=27; S=13; INC=98.98; MM=13.66; GSL="$(python3 -c 'import math;a=1015000;c=a/math.tan(math.radians(10));print(repr(math.sqrt(c*c+a*a)))')"; ALT=1015000 ;;
  *) echo "hypatia-compare: preset $PRESET has no satgenpy counterpart here" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import satgen' 2>/dev/null || "$VENV/bin/pip" install -q "satgenpy==0.4.0"

if [ -z "${REUSE_SATGENPY:-}" ]; then
  if [ -z "${RESUME:-}" ]; then rm -rf "$WORK"; fi
  mkdir -p "$WORK/satgenpy"
  head -n "$N_GS" "$CITIES" > "$WORK/ground_stations.basic.txt"
fi
OM="$WORK/orbitmesh-$GEOMETRY"
rm -rf "$OM"; mkdir -p "$OM"

# Node-id pairs (satgenpy numbering: ground station i = node N + i).
N=$((P * S))
PAIRS="$(echo "$GS_PAIRS" | tr ',' '\n' | awk -F: -v n="$N" '{printf "%s%d:%d", (NR>1?",":""), $1+n, $2+n}')"

if [ -z "${REUSE_SATGENPY:-}" ]; then
echo "== satgenpy${RESUME:+ (resumed)}: $PRESET ($N satellites), $N_GS ground stations, ${DURATION_S}s at ${STEP_MS}ms, pairs $PAIRS"
cat > "$WORK/run_satgenpy.py" <<'PY'
import sys, time, math
from satgen.tles.generate_tles_from_scratch import generate_tles_from_scratch_manual
from satgen.tles.read_tles import read_tles
from satgen.isls.generate_plus_grid_isls import generate_plus_grid_isls
from satgen.ground_stations import extend_ground_stations, read_ground_stations_extended
from satgen.interfaces import generate_simple_gsl_interfaces_info, read_gsl_interfaces_info
from satgen.dynamic_state.generate_dynamic_state import generate_dynamic_state
from satgen.post_analysis.graph_tools import get_path, compute_path_length_without_graph
import os
import astropy.time.core as _atc

# Speed only, no value changes: satgenpy's generate_dynamic_state converts the
# same two astropy Time objects to strings once per (station, satellite) pair,
# str(epoch) and str(time) 115,600 times a step for Kuiper K1 with 100
# stations, ~15-24% of its CPU (py-spy). satgenpy never modifies a Time, so
# the string is memoised per object (the memo holds the object, so its id is
# not reused while memoised); the first 1000 calls and every 1000th after
# still call astropy and must agree, or the run stops.
_time_str = _atc.TimeBase.__str__
_time_memo = {}
_time_calls = [0]
def _memo_time_str(self):
    _time_calls[0] += 1
    hit = _time_memo.get(id(self))
    if hit is None or _time_calls[0] <= 1000 or _time_calls[0] % 1000 == 0:
        fresh = _time_str(self)
        if hit is not None and hit[1] != fresh:
            sys.exit("satgenpy: memoised time string %r != astropy's %r" % (hit[1], fresh))
        if len(_time_memo) > 64:
            _time_memo.clear()
        _time_memo[id(self)] = hit = (self, fresh)
    return hit[1]
_atc.TimeBase.__str__ = _memo_time_str

# Speed only, bit-identical: networkx's floyd_warshall_numpy (a third of
# satgenpy's CPU per step) allocates two n x n arrays per pivot. The same
# arithmetic in place: for pivot i, A = min(A, A[i,:] + A[:,i]) computed into
# one scratch array, then written back; row and column i do not change at
# pivot i (A[i,i] = 0 and x + 0.0 == x), so reading them from A as it is
# updated gives the original's values. 1.3-1.4x faster here (1156 nodes).
# The first call and every 100th also run networkx's own and must be equal
# bit for bit, or the run stops.
import networkx as _nx
import numpy as _np
_nx_fw = _nx.floyd_warshall_numpy
_fw_calls = [0]
def _fw_in_place(G, nodelist=None, weight="weight"):
    A = _nx.to_numpy_array(G, nodelist, multigraph_weight=min, weight=weight, nonedge=_np.inf)
    _np.fill_diagonal(A, 0)
    tmp = _np.empty_like(A)
    for i in range(A.shape[0]):
        _np.add(A[i, :][_np.newaxis, :], A[:, i][:, _np.newaxis], out=tmp)
        _np.minimum(A, tmp, out=A)
    _fw_calls[0] += 1
    if _fw_calls[0] % 100 == 1:
        ref = _nx_fw(G, nodelist=nodelist, weight=weight)
        if ref.shape != A.shape or ref.tobytes() != A.tobytes():
            sys.exit("satgenpy: in-place Floyd-Warshall differs from networkx's")
    return A
_nx.floyd_warshall_numpy = _fw_in_place

(work, name, p, s, inc, mm, alt, gsl, dur_s, step_ms, pairs) = sys.argv[1:]
p, s, inc, mm, alt, gsl = int(p), int(s), float(inc), float(mm), float(alt), float(gsl)
dur_ns, step_ns = int(dur_s) * 10**9, int(step_ms) * 10**6
R = 6378135.0
max_isl = 2 * math.sqrt((R + alt) ** 2 - (R + 80000) ** 2)
d = work + "/satgenpy"
generate_tles_from_scratch_manual(d + "/tles.txt", name, p, s, True, inc, 0.0000001, 0.0, mm)
list_isls = generate_plus_grid_isls(d + "/isls.txt", p, s, isl_shift=0, idx_offset=0)
extend_ground_stations(work + "/ground_stations.basic.txt", d + "/ground_stations.txt")
gss = read_ground_stations_extended(d + "/ground_stations.txt")
tles = read_tles(d + "/tles.txt")
sats = tles["satellites"]
generate_simple_gsl_interfaces_info(d + "/gsl_interfaces_info.txt", len(sats), len(gss), 1, 1, 1, 1)
ifs = read_gsl_interfaces_info(d + "/gsl_interfaces_info.txt", len(sats), len(gss))
os.makedirs(d + "/dynamic_state", exist_ok=True)
# One satgenpy run per WORK at a time (the chunk processes inherit the lock).
import fcntl
lock = open(work + "/satgenpy.lock", "w")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit("satgenpy: another run in %s holds satgenpy.lock; let it end first" % work)
times = list(range(0, dur_ns, step_ns))
steps = len(times)

def ranges_to_compute():
    """Consecutive step ranges [a, b) (indices into times) still to compute.

    Without RESUME: the whole run. With RESUME=1: every gap of missing
    fstate_<t>.txt files, each extended back by one step to recompute the
    last file before the gap, which a killed process may have left truncated
    (and any file ending mid-line)."""
    if not os.environ.get("RESUME"):
        return [(0, steps)]
    def ok(i):
        path = d + "/dynamic_state/fstate_%d.txt" % times[i]
        if not os.path.exists(path):
            return False
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return True
            f.seek(-1, 2)
            return f.read(1) == b"\n"
    have = [ok(i) for i in range(steps)]
    out, i = [], 0
    while i < steps:
        if have[i]:
            i += 1
            continue
        j = i
        while j < steps and not have[j]:
            j += 1
        a = i - 1 if i > 0 and not (out and out[-1][1] == i) else i
        out.append((a, j))
        i = j
    return out

def split(ranges, parts):
    """Cut the ranges into `parts` pieces of (nearly) equal step counts, in
    time order; a piece is a list of ranges, each one computed by its own
    generate_dynamic_state call, so each starts with a full fstate file."""
    total = sum(b - a for a, b in ranges)
    parts = max(1, min(parts, total))
    cuts = [k * total // parts for k in range(parts + 1)]
    pieces, done = [[] for _ in range(parts)], 0
    for a, b in ranges:
        for k in range(parts):
            lo, hi = max(a, a + cuts[k] - done), min(b, a + cuts[k + 1] - done)
            if lo < hi:
                pieces[k].append((lo, hi))
        done += b - a
    return pieces

# CHUNKS > 1 splits the steps to compute into consecutive chunks, each one a
# generate_dynamic_state call with its own offset_ns in its own process, as
# Hypatia's own main_helper does: every chunk starts with a full fstate file,
# then writes changes only, so the files read in time order give the same state.
ranges = ranges_to_compute()
pieces = split(ranges, int(os.environ.get("CHUNKS", "1")))
n_compute = sum(b - a for a, b in ranges)
print("satgenpy: %d of %d steps to compute, as %s" % (n_compute, steps, " | ".join(
    " ".join("%.1f-%.1fs" % (times[a] / 1e9, times[b - 1] / 1e9) for a, b in pc) for pc in pieces)))

def run_piece(k):
    import contextlib
    for a, b in pieces[k]:
        end_ns = times[b - 1] + step_ns
        # generate_dynamic_state's progress line divides by (steps // 10): a
        # call of fewer than 10 steps must take its verbose path (print only),
        # whose output is dropped here.
        short = b - a < 10
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null if short else sys.stdout):
            generate_dynamic_state(d + "/dynamic_state", tles["epoch"], end_ns, step_ns, times[a], sats, gss,
                                   list_isls, ifs, gsl, max_isl, "algorithm_free_one_only_over_isls", short)

t0, cpu0 = time.time(), time.process_time()
if n_compute == 0:
    cpu = 0.0
elif len(pieces) == 1:
    run_piece(0)
    cpu = time.process_time() - cpu0
else:
    import multiprocessing, resource
    pool = multiprocessing.get_context("fork").Pool(len(pieces))
    pool.map(run_piece, range(len(pieces)), chunksize=1)
    pool.close()
    pool.join()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime
el = time.time() - t0
if n_compute:
    print("satgenpy generate_dynamic_state: %.1f s wall in %d process(es), %.1f s CPU, for %d steps = %.1f ms CPU/step"
          % (el, len(pieces), cpu, n_compute, cpu * 1e3 / n_compute))
    # One line per invocation (CPU seconds, steps computed); a resumed run
    # appends, and the speed line sums them. A killed invocation writes none.
    with open(work + "/satgenpy_time.txt", "a") as f:
        f.write("%f %d\n" % (cpu, n_compute))
missing = [t for t in times if not os.path.exists(d + "/dynamic_state/fstate_%d.txt" % t)]
if missing:
    sys.exit("satgenpy: %d steps still missing, pair post-analysis skipped" % len(missing))
# Post-analysis exactly as satgenpy's print_routes_and_rtt (without gnuplot).
fstate = {}
out = {pr: ([], []) for pr in pairs.split(",")}
for t in range(0, dur_ns, step_ns):
    with open(d + "/dynamic_state/fstate_%d.txt" % t) as f_in:
        for line in f_in:
            sp = line.split(",")
            fstate[(int(sp[0]), int(sp[1]))] = int(sp[2])
    for pr in out:
        a, b = map(int, pr.split(":"))
        there, back = get_path(a, b, fstate), get_path(b, a, fstate)
        if there is not None and back is not None:
            l1 = compute_path_length_without_graph(there, tles["epoch"], t, sats, gss, list_isls, gsl, max_isl)
            l2 = compute_path_length_without_graph(back, tles["epoch"], t, sats, gss, list_isls, gsl, max_isl)
            out[pr][0].append("%d,%.3f" % (t, (l1 + l2) * 1e9 / 299792458.0))
            out[pr][1].append("%d,%s" % (t, "-".join(map(str, there))))
        else:
            out[pr][0].append("%d," % t)
            out[pr][1].append("%d,Unreachable" % t)
os.makedirs(d + "/pairs", exist_ok=True)
for pr, (rtt, path) in out.items():
    a, b = pr.split(":")
    open(d + "/pairs/rtt_%s_to_%s.csv" % (a, b), "w").write("time_ns,rtt_ns\n" + "\n".join(rtt) + "\n")
    open(d + "/pairs/path_%s_to_%s.csv" % (a, b), "w").write("time_ns,path\n" + "\n".join(path) + "\n")
PY
nice -n 10 "$VENV/bin/python" "$WORK/run_satgenpy.py" "$WORK" "$NAME" "$P" "$S" "$INC" "$MM" "$ALT" "$GSL" \
  "$DURATION_S" "$STEP_MS" "$PAIRS"
fi

echo "== orbitmesh (--geometry $GEOMETRY)"
(cd "$ROOT" && cargo build --release -q -p control)
CTL="$ROOT/target/release/orbitmesh-ctl"
"$CTL" predict --preset "$PRESET" --ground-stations "$WORK/ground_stations.basic.txt" \
  --duration "${DURATION_S}s" --step "${STEP_MS}ms" --pairs "$PAIRS" --threads 1 --dump-tles "$OM/tles.txt" \
  --geometry "$GEOMETRY" --out "$OM" --quiet
if cmp -s "$WORK/satgenpy/tles.txt" "$OM/tles.txt"; then
  echo "TLE text: identical to satgenpy's"
else
  echo "TLE text: DIFFERS from satgenpy's ($(diff "$WORK/satgenpy/tles.txt" "$OM/tles.txt" | grep -c '^<') lines)"
fi

echo "== comparison"
python3 - "$WORK" "$PAIRS" "$OM" "$DURATION_S" "$STEP_MS" "$N" "$N_GS" <<'PY'
import sys, json, os, glob, time
work, pairs, om_dir, dur_s = sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
step_ms, n_sat, n_gs = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
t_start = time.time()
# A satgenpy run cut short (see the usage) has fstate files but no
# pair files nor timing: then only the forwarding state is compared.
if not os.path.exists("%s/satgenpy/pairs" % work):
    print("satgenpy pairs: not available (partial satgenpy run), pair RTTs not compared")
    pairs = []
def rows(path):
    with open(path) as f:
        next(f)
        return [l.rstrip("\n").split(",", 1) for l in f if l.strip()]
max_diff, n_steps, n_path_diff, n_reach_diff = 0.0, 0, 0, 0
for pr in pairs:
    a, b = pr.split(":")
    s_rtt = rows("%s/satgenpy/pairs/rtt_%s_to_%s.csv" % (work, a, b))
    o_rtt = rows("%s/pairs/rtt_%s_to_%s.csv" % (om_dir, a, b))
    s_path = rows("%s/satgenpy/pairs/path_%s_to_%s.csv" % (work, a, b))
    o_path = rows("%s/pairs/path_%s_to_%s.csv" % (om_dir, a, b))
    assert len(s_rtt) == len(o_rtt), (len(s_rtt), len(o_rtt))
    pd, md = 0, 0.0
    for (t1, r1), (t2, r2), (_, p1), (_, p2) in zip(s_rtt, o_rtt, s_path, o_path):
        assert t1 == t2
        n_steps += 1
        if (r1 == "") != (r2 == ""):
            n_reach_diff += 1
        elif r1 != "":
            md = max(md, abs(float(r1) - float(r2)))
        if p1 != p2:
            pd += 1
            if pd <= 3:
                print("  path differs %s t=%s\n    satgenpy  %s\n    orbitmesh %s" % (pr, t1, p1, p2))
    print("pair %s: %d steps, max |RTT diff| %.1f ns, %d differing paths" % (pr, len(s_rtt), md, pd))
    max_diff = max(max_diff, md)
    n_path_diff += pd
# Full forwarding state: every (node, destination ground station) next hop at
# every step whose satgenpy state is known, satgenpy's fstate_<t>.txt against
# orbitmesh's schedules replayed to that instant.
#
# Known steps. satgenpy writes a full fstate file at the first step of every
# generate_dynamic_state call (the offset) and changes only after, so a step is
# known when the files from a full one up to it all exist. A full file is
# recognised by content: satgenpy's writer (fstate_calculation.py, without
# ground-station relays) emits one line per (satellite, station) and per
# ordered pair of distinct stations, so n_sat * n_gs + n_gs * (n_gs - 1) lines.
# A file ending mid-line, or the last file before a gap (a process may still be
# writing it, or was killed while it did) unless it is a complete full file, is
# not trusted, nor is anything after it until the next full file.
n_full = n_sat * n_gs + n_gs * (n_gs - 1)
step_ns = step_ms * 10**6
all_times = list(range(0, dur_s * 10**9, step_ns))
fpath = lambda t: "%s/satgenpy/dynamic_state/fstate_%d.txt" % (work, t)
exists = [os.path.exists(fpath(t)) for t in all_times]
known, full_at = [False] * len(all_times), [False] * len(all_times)
for i, t in enumerate(all_times):
    if not exists[i]:
        continue
    data = open(fpath(t), "rb").read()
    complete = data == b"" or data.endswith(b"\n")
    full_at[i] = complete and data.count(b"\n") == n_full
    last_before_gap = i + 1 < len(all_times) and not exists[i + 1]
    trusted = complete and (full_at[i] or not last_before_gap)
    known[i] = trusted and (full_at[i] or (i > 0 and known[i - 1]))
times = [t for i, t in enumerate(all_times) if known[i]]
def spans(flags):
    out, i = [], 0
    while i < len(flags):
        if flags[i]:
            j = i
            while j + 1 < len(flags) and flags[j + 1]:
                j += 1
            out.append("%.1f-%.1f s" % (all_times[i] / 1e9, all_times[j] / 1e9))
            i = j
        i += 1
    return ", ".join(out) or "none"
# orbitmesh: every node's deltas in one time-ordered list (a node's own deltas
# keep their order; different nodes touch different keys).
sched = {}
for f in glob.glob(om_dir + "/schedule/node-*.json"):
    d = json.load(open(f))
    sched[d["node"]] = d
om = {n: {e["destination"]: e["next_hop"] for e in d["initial"]["entries"]} for n, d in sched.items()}
events = sorted(((dl["activate_at_ns"], n, dl["changes"]) for n, d in sched.items() for dl in d["deltas"]),
                key=lambda e: e[0])
ev = 0
# The comparison is incremental: sg holds satgenpy's state, `differ` the keys
# whose next hops differ, updated only for the keys either side changed at a
# step (all keys at a full file). Entries are counted as before: every key
# satgenpy has at that step.
sg, order, differ = {}, {}, set()
entries = diffs = 0
all_pairs = all_reach = all_paths = 0
first_diffs = []
gs_nodes = []
def mine(key):
    m = om[key[0]].get(key[1])
    return -1 if m is None else m
def follow(table, src, dst):
    path, cur = [src], src
    while cur != dst:
        cur = table(cur, dst)
        if cur is None or cur < 0 or len(path) > len(om) + 1:
            return None
        path.append(cur)
    return path
for t in times:
    changed = set()
    is_full = False
    with open(fpath(t)) as f_in:
        n_lines = 0
        for line in f_in:
            c, dst, nh = map(int, line.split(",")[:3])
            key = (c, dst)
            if key not in order:
                order[key] = len(order)
            sg[key] = nh
            changed.add(key)
            n_lines += 1
        is_full = n_lines == n_full
    while ev < len(events) and events[ev][0] <= t:
        _, n, ch = events[ev]
        for e in ch:
            om[n][e["destination"]] = e["next_hop"]
            changed.add((n, e["destination"]))
        ev += 1
    if is_full:
        # A full file starts a known range (maybe after a gap): check every key.
        differ = {k for k, nh in sg.items() if mine(k) != nh}
        gs_nodes = sorted({dst for (_, dst) in sg})
    else:
        for k in changed:
            if k in sg:
                if mine(k) != sg[k]:
                    differ.add(k)
                else:
                    differ.discard(k)
    entries += len(sg)
    diffs += len(differ)
    if differ and len(first_diffs) < 5:
        for k in sorted(differ, key=order.__getitem__)[:5 - len(first_diffs)]:
            first_diffs.append((t, k[0], k[1], sg[k], mine(k)))
    # Every ordered station pair's path, followed through both forwarding
    # states. When no entry differs the two tables are identical on every key
    # a walk can visit (satgenpy has every (node, station) key from its full
    # file on, and `differ` covers them all), so the paths and reachability
    # are identical: such a step adds its pairs with 0 differences, unwalked.
    n_gs_pairs = len(gs_nodes) * (len(gs_nodes) - 1)
    all_pairs += n_gs_pairs
    if not differ:
        continue
    for src in gs_nodes:
        for dst in gs_nodes:
            if src == dst:
                continue
            p1 = follow(lambda c, d: sg.get((c, d)), src, dst)
            p2 = follow(lambda c, d: om.get(c, {}).get(d), src, dst)
            if (p1 is None) != (p2 is None):
                all_reach += 1
            elif p1 != p2:
                all_paths += 1
skipped = len(all_times) - len(times)
print("steps compared: %d of %d (%s), %d skipped%s" % (
    len(times), len(all_times), spans(known), skipped,
    " (no known satgenpy state: %s)" % spans([not k for k in known]) if skipped else ""))
print("full forwarding state: %d steps, %d (node, destination) entries compared, %d differ" % (len(times), entries, diffs))
print("all station pairs: %d pair-steps, %d differing paths, %d reachability differences"
      % (all_pairs, all_paths, all_reach))
for t, c, dst, nh, m in first_diffs:
    print("  t=%d node %d -> %d: satgenpy next hop %d, orbitmesh %d" % (t, c, dst, nh, m))
om = json.load(open(om_dir + "/summary.json"))
print("TOTAL: %d pair-steps, max |RTT diff| %.1f ns, %d differing paths, %d reachability differences"
      % (n_steps, max_diff, n_path_diff, n_reach_diff))
if os.path.exists(work + "/satgenpy_time.txt"):
    # One "CPU seconds, steps computed" line per satgenpy invocation (a resumed
    # run appends one); invocations killed before the end wrote none.
    cpu_s = steps = 0
    for line in open(work + "/satgenpy_time.txt"):
        if line.strip():
            cpu_s, steps = cpu_s + float(line.split()[0]), steps + int(line.split()[1])
    sat_ms = cpu_s * 1e3 / steps
    print("speed: satgenpy %.1f ms CPU/step, orbitmesh %.3f ms/step (1 thread, incl. schedule), ratio %.0fx"
          % (sat_ms, om["ms_per_step"], sat_ms / om["ms_per_step"]))
print("comparison took %.1f s (%.1f ms per compared step)"
      % (time.time() - t_start, (time.time() - t_start) * 1e3 / max(1, len(times))))
PY
