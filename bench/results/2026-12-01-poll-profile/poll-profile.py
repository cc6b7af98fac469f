#!/usr/bin/env python3
"""dut0's NAPI polls in a poll-profile.sh recording: the full polls' (64
frames) durations, the NAPI thread's CPU time per frame by function, and
where the time of fast (< 60 us) and slow (> 100 us) full polls goes.

A poll runs from the previous napi_poll event of dut0's NAPI thread (or
its switch-in) to its own napi_poll event; polls the thread was preempted
in are left out. A sample counts PERIOD of CPU time.

usage: perf script -i OUT.data -F comm,tid,time,event,ip,sym,trace > OUT.txt
       python3 poll-profile.py OUT.txt [PERIOD_US]
"""
import collections
import re
import sys

LINE = re.compile(r'^\s*(.*?)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$')


def parse(path):
    """Full polls as (us, work, [sym]) and the NAPI thread's samples."""
    polls, samples = [], collections.Counter()
    napi, start, cur, preempted, frames = None, None, [], False, 0
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        tid, t, ev, rest = int(m.group(2)), float(m.group(3)), m.group(4), m.group(5)
        if ev == 'napi:napi_poll':
            if 'device dut0 ' not in rest:
                continue
            napi = tid
            work = int(re.search(r'work (\d+)', rest).group(1))
            frames += work
            if start is not None and not preempted:
                polls.append(((t - start) * 1e6, work, cur))
            start, cur, preempted = t, [], False
        elif ev == 'sched:sched_switch' and napi is not None:
            nxt = int(re.search(r'next_pid=(\d+)', rest).group(1))
            prev = int(re.search(r'prev_pid=(\d+)', rest).group(1))
            if nxt == napi:
                start, cur, preempted = t, [], False
            elif prev == napi:
                preempted = re.search(r'prev_state=(\S+)', rest).group(1).startswith('R')
                start = None
        elif ev == 'cpu-clock' and tid == napi:
            fields = rest.split()
            sym = fields[1] if len(fields) > 1 else '?'
            samples[sym] += 1
            if start is not None:
                cur.append(sym)
    return polls, samples, frames


def main():
    path = sys.argv[1]
    period_us = float(sys.argv[2]) if len(sys.argv) > 2 else 50.0
    polls, samples, frames = parse(path)
    full = sorted(p[0] for p in polls if p[1] == 64)
    total = sum(samples.values())
    print(f"{path}: {frames} frames polled, NAPI thread {total * period_us * 1e3 / max(frames, 1):.0f} ns/frame")
    for sym, k in samples.most_common(8):
        print(f"  {k * period_us * 1e3 / max(frames, 1):6.0f} ns/frame  {sym}")
    if not full:
        return
    q = lambda x: full[int(x * (len(full) - 1))]
    slow = sum(d > 100 for d in full)
    print(f"full polls: {len(full)}, us p10 {q(.1):.0f} p50 {q(.5):.0f} p90 {q(.9):.0f}, "
          f"over 100 us {100 * slow / len(full):.1f}%")
    for name, sel in (("fast (< 60 us)", [p for p in polls if p[1] == 64 and p[0] < 60]),
                      ("slow (> 100 us)", [p for p in polls if p[1] == 64 and p[0] > 100])):
        c = collections.Counter(s for p in sel for s in p[2])
        n = max(len(sel), 1)
        print(f"  {name}: {len(sel)} polls, {sum(c.values()) * period_us / n:.0f} us sampled per poll; top:")
        for sym, k in c.most_common(4):
            print(f"    {k * period_us / n:6.1f} us/poll  {sym}")


if __name__ == '__main__':
    main()
