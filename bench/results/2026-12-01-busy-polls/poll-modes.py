#!/usr/bin/env python3
"""Reads an ftrace of refusals-trace.sh (../2026-12-01-vcpu-stalls/) and
prints (1) how long dut0's full polls (64 frames) take on the DUT's core,
timed from the end of the previous poll or from the NAPI thread's switch-in
(so only the poll's own work), with how many of them had frames refused by
dut0's ring while they ran; (2) the gaps of over 1 ms between two polls
with the frames refused in them and in the 2 ms after; (3) dut0's NAPI
thread's time per polled frame.
usage: poll-modes.py TRACE"""
import bisect
import re
import sys

TS = re.compile(r'\] \S+ (\d+\.\d+):')
f = sys.argv[1]
full, gaps, refs = [], [], []
last = last_poll = on = None
busy = 0.0
frames = 0
t0 = t1 = None
for line in open(f):
    m = TS.search(line)
    if not m:
        continue
    t = float(m.group(1))
    if 'kfree_skb' in line:
        refs.append(t)
    elif 'napi_poll:' in line and 'dut0' in line:
        w = int(re.search(r'work (\d+)', line).group(1))
        frames += w
        t0 = t if t0 is None else t0
        t1 = t
        if last is not None and w == 64:
            full.append((last, t))
        if last_poll is not None and t - last_poll > 1e-3:
            gaps.append((last_poll, t))
        last = last_poll = t
    elif 'sched_switch' in line and 'prev_comm=napi/dut0' in line:
        last = None
        if on is not None:
            busy += t - on
            on = None
    elif 'sched_switch' in line and 'next_comm=napi/dut0' in line:
        last = on = t
refs.sort()


def refused(a, b):
    return bisect.bisect_left(refs, b) - bisect.bisect_left(refs, a)


d = sorted((b - a) * 1e6 for a, b in full)
q = lambda p: d[min(len(d) - 1, int(len(d) * p))]
print(f"{f}: {len(d)} full polls, us: p10 {q(.1):.0f} p50 {q(.5):.0f} p90 {q(.9):.0f} p99 {q(.99):.0f}")
for lo, hi in ((0, 60), (60, 100), (100, float('inf'))):
    sel = [(a, b) for a, b in full if lo <= (b - a) * 1e6 < hi]
    w = sum(1 for a, b in sel if refused(a, b))
    n = sum(refused(a, b) for a, b in sel)
    print(f"  {lo}-{hi} us: {len(sel)} polls ({100 * len(sel) / max(1, len(d)):.0f}%), "
          f"{w} with refusals while they ran, {n} frames refused")
print(f"frames refused in all: {len(refs)}")
after = 0
for a, b in gaps:
    n = refused(b, b + 2e-3)
    after += n
    print(f"  gap {(b - a) * 1e6:.0f} us at {a:.6f}: refused in it {refused(a, b)}, in the 2 ms after {n}")
print(f"gaps over 1 ms: {len(gaps)}, frames refused in the 2 ms after them: {after}")
print(f"polled {frames} frames in {t1 - t0:.2f} s ({frames / (t1 - t0) / 1e6:.3f} Mpps); "
      f"dut0's NAPI thread ran {100 * busy / (t1 - t0):.1f}% of it, {busy / frames * 1e9:.0f} ns per frame")
