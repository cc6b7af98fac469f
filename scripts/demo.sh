#!/usr/bin/env bash
# orbitmesh main demo: a live LEO mesh slice on this box.
#
# A 6 x 6 Walker shell at 1500 km (a proliferated transport layer) and 4
# ground stations (Tokyo, Delhi, Shanghai, Sao Paulo): 40 nodes, each a
# network namespace running orbitmesh-dp (AF_XDP, sleep-when-idle), joined
# by veth pairs (ISLs and ground links); a host behind each ground station.
# orbitmesh-ctl run swaps every node's FIB at the predicted instants, 20x
# faster than the orbits (2400 s of orbit in 120 s); the hosts exchange UDP
# streams with sequence numbers (and a ping); two ISLs on the traffic's
# paths fail mid-run and come back: the dataplanes' backups take over, the
# control process recomputes and pushes repaired FIBs.
#
# A line per second: delivered and lost packets per ground-station pair,
# path changes with their predicted latency, FIB versions in force. At the
# end: a summary table, $OUT/summary.md and $OUT/timeline.svg.
#
#   scripts/demo.sh                      # the standard run (~2.5 minutes)
#   DURATION=600s scripts/demo.sh        # shorter (30 s of wall time)
#   scripts/demo.sh --rate 500           # any orbitmesh-emu run flag
#   FAST_PATH=xdp scripts/demo.sh        # transit satellites switch labels in the
#                                        # kernel's XDP fast path (--fast-path xdp
#                                        # --no-delay): no delay line, so links hold
#                                        # no propagation delay (latency is the host's
#                                        # only) and do not follow the geometry
#
# Needs root. Everything it creates is removed at the end, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP)" >&2; exit 1; }
case "${FAST_PATH:-off}" in
  off) fast=() ;;
  xdp) fast=(--fast-path xdp --no-delay) ;;
  *) echo "demo: FAST_PATH=$FAST_PATH: expected xdp or off" >&2; exit 2 ;;
esac
bash scripts/setup.sh >/dev/null
# cargo's own progress, and an estimate of the time left (the first build
# compiles ~200 crates: minutes).
python3 scripts/demo-build.py dataplane control emulation
OUT=${OUT:-/tmp/orbitmesh-demo}
exec target/release/orbitmesh-emu run \
  --walker 6:6:70:1500 --min-elevation-deg 10 --max-gsl-m 5000000 \
  --ground-stations control/data/ground_stations/cities_top100.basic.txt --gs-count 4 \
  --duration "${DURATION:-2400s}" --time-scale "${SCALE:-20}" --rate "${RATE:-200}" \
  --random-failures 2 --restore-after 300s --seed 7 \
  --out "$OUT" ${fast[@]+"${fast[@]}"} "$@"
