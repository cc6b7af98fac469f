#!/usr/bin/env python3
"""Release build for the demos, with cargo's own progress and an estimate
of the time left.

    python3 scripts/demo-build.py dataplane control emulation

Runs `cargo build --release -p PKG...`: cargo's progress (its bar on a
terminal, its "Compiling ..." lines otherwise) goes to stderr as usual,
and every 15 s a line says how many of the build's units are done and,
at the pace of the units compiled so far (building from scratch: from
the last full build's duration when that says more), about how long is
left. The number of units comes from the last build of the same
packages (recorded in target/release/.demo-build.json with its
duration) or, the first time, from `cargo metadata` (the packages the
given ones depend on, their build scripts and the binaries: an
approximation, shown as "~N": 187 for the demo's 3 packages where cargo
built 170, 163 for dataplane and control where it built 161). Exits with cargo's status.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

EVERY_S = 15


FOREIGN = ("windows", "wasm", "macos", "ios", "android", "apple", "darwin", "redox",
           "hermit", "wasi", "fuchsia", "solaris", "illumos", "bsd", "haiku", "vxworks",
           "emscripten", "msvc")


def on_linux(kind):
    """Whether a dependency's platform condition (if any) may hold here:
    a rough reading of cfg(...), enough to leave out Windows- or
    wasm-only crates."""
    t = kind.get("target")
    if not t or "not(" in t or "unix" in t or "linux" in t:
        return True
    return not any(w in t for w in FOREIGN)


def units_from_metadata(pkgs):
    """~ compiler artifacts of building `pkgs`: every package reachable by
    normal and build dependencies (its library, its build script) and the
    binaries of the given packages."""
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = json.loads(out)
    by_id = {p["id"]: p for p in m["packages"]}
    nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
    roots = [i for i in m["workspace_members"] if by_id[i]["name"] in pkgs]
    seen, todo = set(), list(roots)
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if any(k["kind"] in (None, "build") and on_linux(k) for k in d["dep_kinds"]):
                todo.append(d["pkg"])
    units = 0
    for i in seen:
        kinds = [k for t in by_id[i]["targets"] for k in t["kind"]]
        units += 1 + ("custom-build" in kinds)
        if i in roots:
            units += kinds.count("bin")
    return units


def fmt_s(s):
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def main():
    pkgs = sys.argv[1:]
    if not pkgs:
        sys.exit("usage: demo-build.py PACKAGE...")
    record = Path("target/release/.demo-build.json")
    last = {}
    try:
        last = json.loads(record.read_text()).get(" ".join(pkgs), {})
    except (OSError, ValueError):
        pass
    if last.get("units"):
        total, approx = last["units"], ""
        note = f"== building (release) {', '.join(pkgs)}: {total} units"
        if last.get("full_s"):
            note += f"; the last build that compiled them all took {fmt_s(last['full_s'])}"
        print(note, file=sys.stderr, flush=True)
    else:
        total, approx = units_from_metadata(pkgs), "~"
        print(f"== building (release) {', '.join(pkgs)}: ~{total} units to compile "
              "(the first build takes minutes; cargo's progress follows)",
              file=sys.stderr, flush=True)
    cmd = ["cargo", "build", "--release", "--message-format=json-render-diagnostics"]
    for p in pkgs:
        cmd += ["-p", p]
    # Over cargo's bar on a terminal; no escape codes into a file or pipe.
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    done = compiled = 0
    next_note = t0 + EVERY_S
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        done += 1
        if not msg.get("fresh"):
            compiled += 1
        now = time.monotonic()
        if now >= next_note and compiled and done < total:
            next_note = now + EVERY_S
            if approx and done >= 0.9 * total:
                # The count is only an estimate: no guess from it now.
                print(f"{clear}   {done} units done in {fmt_s(now - t0)} (~{total} expected)",
                      file=sys.stderr, flush=True)
                continue
            pace = (now - t0) / compiled
            left = max(total - done, 0) * pace
            # From scratch: the heavy crates come last, so the last full
            # build's duration says more than the pace so far.
            if last.get("full_s") and compiled == done:
                left = max(left, last["full_s"] - (now - t0))
            print(f"{clear}   {done} of {approx}{total} units done in {fmt_s(now - t0)}; "
                  f"about {fmt_s(left)} left at the pace so far",
                  file=sys.stderr, flush=True)
    status = proc.wait()
    took = time.monotonic() - t0
    if status == 0:
        entry = {"units": done, "last_s": round(took, 1), "compiled": compiled,
                 "full_s": last.get("full_s")}
        if compiled >= 0.9 * done:
            entry["full_s"] = round(took, 1)
        try:
            all_ = json.loads(record.read_text()) if record.exists() else {}
        except ValueError:
            all_ = {}
        all_[" ".join(pkgs)] = entry
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(all_, indent=1) + "\n")
        what = f"{compiled} compiled" if compiled else "all up to date"
        print(f"   built in {fmt_s(took)} ({done} units, {what})", file=sys.stderr, flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
