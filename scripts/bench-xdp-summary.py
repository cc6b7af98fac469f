#!/usr/bin/env python3
"""Issue 16's targets from orbitmesh-bench runs (results.json): each peer's
zero-loss rate, limit and CPU per frame (and rate / DUT core busy: what
the DUT's core could carry at that cost per frame, a projection, not a
measurement, telling how much room a DUT had when the generator limited), and orbitmesh-xdp's ratios to
each peer against the targets (>= 0.9x xdp-min, >= 1.3x the kernel,
>= 2x testpmd; DUT CPU per frame <= 0.7x the kernel's, at every offered cost rate),
plus the swap test.
  scripts/bench-xdp-summary.py bench/results/2026-11-30-xdp-threaded-1 [...]
"""
import json
import statistics
import sys

TARGETS = {"xdp-min": 0.9, "xdp-min-busy": 0.9, "kernel": 1.3, "testpmd": 2.0}
# The fast path sleeping when idle, and busy polling (its worker's system
# calls run dut0's NAPI on the DUT core, as net_af_xdp does for testpmd).
FAST = ["orbitmesh-xdp", "orbitmesh-xdp-busy"]


def row(d):
    z = d["sizes"][0] if d.get("sizes") else None
    if not z:
        return None
    b = z.get("best") or {}
    c = d["cost"][0] if d.get("cost") else {}
    return {
        "tput": z["search"]["throughput_pps"] / 1e6,
        "limit": z["search"]["limit"],
        "dut_busy": b.get("dut_core_busy", 0) * 100,
        "gen_busy": b.get("gen_core_busy", 0) * 100,
        "dut_ns": b.get("dut_core_ns_per_frame", 0),
        "gen_ns": b.get("gen_core_ns_per_frame", 0),
        "c_rate": c.get("stats", {}).get("offered_pps", 0) / 1e6,
        "c_lost": c.get("stats", {}).get("lost", 0),
        "c_dut_ns": c.get("dut_core_ns_per_frame", 0),
        "c_gen_ns": c.get("gen_core_ns_per_frame", 0),
        "costs": costs(d),
        "own": own_losses(d),
        "short": short_rates(d),
    }


def by_rate(d):
    """A DUT's cost trials grouped by offered Mpps."""
    by = {}
    for c in d.get("cost") or []:
        by.setdefault(round(c["stats"]["offered_pps"] / 1e6, 3), []).append(c)
    return by


def costs(d):
    """DUT core ns per delivered frame by offered Mpps (the median where a
    rate was offered more than once)."""
    return {k: statistics.median(c.get("dut_core_ns_per_frame", 0) for c in v)
            for k, v in by_rate(d).items()}


def short_rates(d):
    """The offered cost rates (Mpps) at which the generator sent under 97%
    of the rate (the relay generator tops out near 0.6 Mpps): those cells
    do not compare peers at the same rate."""
    return {k for k, v in by_rate(d).items()
            if any(c["stats"].get("sent_pps", 0) < 0.97 * c["stats"]["offered_pps"] for c in v)}


def own_losses(d):
    """Frames lost by the DUT itself (lost less the testbed's) by offered
    Mpps, every trial at that rate; None where dut0 was not watched."""
    return {k: [None if testbed(c) is None else c["stats"]["lost"] - testbed(c) for c in v]
            for k, v in by_rate(d).items()}


def cost_table(rows):
    """Every offered cost rate: each peer's DUT core ns per frame, and the
    fast path's ratio to the kernel's (target <= 0.7x) and xdp-min's."""
    rates = sorted({k for x in rows.values() for k in x["costs"]})
    if len(rates) < 2:
        return
    print("\n| DUT core ns/frame at | " + " | ".join(f"{k:.3f} Mpps" for k in rates) + " |")
    print("|---|" + "---:|" * len(rates))
    for name, x in rows.items():
        print(f"| {name} | " + " | ".join(
            (f"{x['costs'][k]:.0f}" + ("*" if k in x["short"] else "")) if k in x["costs"] else "-" for k in rates) + " |")
    for fast in FAST:
        for peer, t in [("kernel", " (target <= 0.70)"), ("xdp-min", "")]:
            f, p = rows.get(fast), rows.get(peer)
            if not f or not p:
                continue
            cells = [(f"{f['costs'][k] / p['costs'][k]:.2f}x" + ("*" if k in f["short"] | p["short"] else ""))
                     if f["costs"].get(k) and p["costs"].get(k) else "-" for k in rates]
            if any(c != "-" for c in cells):
                print(f"| {fast} / {peer}{t} | " + " | ".join(cells) + " |")
    # What each lost of its own at the same rates, where a zero-loss search
    # turns on single trials.
    print("\n| frames lost by the DUT itself at | " + " | ".join(f"{k:.3f} Mpps" for k in rates) + " |")
    print("|---|" + "---:|" * len(rates))
    for name, x in rows.items():
        cells = [(", ".join("-" if v is None else str(v) for v in x["own"][k]) + ("*" if k in x["short"] else ""))
                 if k in x["own"] else "-" for k in rates]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if any(x["short"] for x in rows.values()):
        print("\n*: the generator sent under 97% of the offered rate (not the same rate as the others).")


def testbed(t):
    """Frames of a trial dut0's full ring refused while the DUT's core was
    away (the harness's TrialRecord::testbed_lost), None if not watched."""
    p = t.get("dut0_polls")
    if not p or "refused_away" not in p:
        return None
    return min(p["refused_away"], t["stats"]["lost"])


def away(t):
    """The swap trial's stalls and the frames the testbed lost, if watched."""
    p = t.get("dut0_polls")
    lost = testbed(t)
    if lost is None:
        return ""
    return (f"; dut0 stalled {p['stalls']} times for {p['stalled_ns'] / 1e6:.1f} ms in all; of the frames lost "
            f"{lost} were refused by dut0's ring while the DUT's core was away: lost by the DUT "
            f"{t['stats']['lost'] - lost}")


def main():
    for path in sys.argv[1:]:
        r = json.load(open(path.rstrip("/") + "/results.json"))
        print(f"\n### {r['name']} ({r['started_utc']} UTC, threaded NAPI: {r['cfg']['threaded_napi']}, "
              f"generator: {r['cfg'].get('gen', 'xsk')}, zero loss by the "
              f"{'DUT and the testbed' if r['cfg'].get('charge_testbed', True) else 'DUT (the refusals of the testbed left out)'})\n")
        st = r.get("stalls")
        if st:
            print(f"Testbed check: DUT core away {st['away_gaps']} times in {st['secs']:.0f} s, {st['away_over_1ms']} over 1 ms, "
                  f"longest {st['away_max_us']} us (256 frames / that = "
                  f"{256 / (st['away_max_us'] * 1e-6) / 1e6 if st['away_max_us'] else float('inf'):.3f} Mpps)\n")
        print("| peer | zero-loss Mpps | limit | DUT core busy | gen core busy | DUT core ns/frame | gen core ns/frame | both cores ns/frame | rate / DUT core busy (Mpps) | at the same rate: Mpps, lost | DUT core ns/frame | both cores ns/frame |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        rows = {}
        for d in r["duts"]:
            x = row(d)
            if x is None:
                print(f"| {d['dut']} | {d.get('skipped') or d.get('error')} |")
                continue
            rows[d["dut"]] = x
            print(f"| {d['dut']} | {x['tput']:.3f} | {x['limit']} | {x['dut_busy']:.0f}% | {x['gen_busy']:.0f}% | "
                  f"{x['dut_ns']:.0f} | {x['gen_ns']:.0f} | {x['dut_ns'] + x['gen_ns']:.0f} | "
                  f"{x['tput'] / max(x['dut_busy'] / 100, 1e-9):.2f} | "
                  f"{x['c_rate']:.2f}, {x['c_lost']} | {x['c_dut_ns']:.0f} | {x['c_dut_ns'] + x['c_gen_ns']:.0f} |")
        for fast in FAST:
            f = rows.get(fast)
            if not f:
                continue
            print(f"\n| {fast} against | rate ratio | target | met | DUT CPU/frame ratio (at zero-loss rates) | at the same rate |")
            print("|---|---:|---:|---|---:|---:|")
            for peer in ["xdp-min", "xdp-min-busy", "kernel", "testpmd", "orbitmesh", "orbitmesh-xdp"]:
                if peer == fast:
                    continue
                p = rows.get(peer)
                if not p or p["tput"] == 0:
                    continue
                ratio = f["tput"] / p["tput"]
                t = TARGETS.get(peer)
                cpu = f["dut_ns"] / p["dut_ns"] if p["dut_ns"] else float("nan")
                ccpu = f["c_dut_ns"] / p["c_dut_ns"] if p["c_dut_ns"] else float("nan")
                met = "-" if t is None else ("yes" if ratio >= t else "NO")
                cpu_t = " (target <= 0.70)" if peer == "kernel" else ""
                print(f"| {peer} | {ratio:.2f}x | {'-' if t is None else f'>= {t}x'} | {met} | {cpu:.2f}x{cpu_t} | {ccpu:.2f}x |")
        cost_table(rows)
        for d in r["duts"]:
            w = d.get("swap")
            if not w:
                continue
            t, k = w["trial"]["stats"], w["trial"]["stats"]["sink"]
            mis = k["wrong_port"] + k["wrong_label"]
            print(f"\nswaps {d['dut']}: {w['swaps_done']} done, {w['swap_errors']} errors, at {t['sent_pps'] / 1e6:.3f} Mpps: "
                  f"sent {t['sent']}, received {k['received']} (FIB A {k['received'] - k['alt_label'] - k['wrong_label']}, "
                  f"FIB B {k['alt_label']}), lost {t['lost']}, misforwarded {mis}; call {w['swap_call_mean_ms']:.2f} ms mean, "
                  f"{w['swap_call_max_ms']:.2f} max; without swaps just before: lost {w['control']['stats']['lost']} of {w['control']['stats']['sent']}"
                  + ("" if testbed(w["control"]) is None else f" ({testbed(w['control'])} by the testbed)")
                  + away(w["trial"]))


if __name__ == "__main__":
    main()
