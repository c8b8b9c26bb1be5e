#!/usr/bin/env bash
# Interleaved rounds of two builds of the benchmark harness: BASE (an earlier
# build, e.g. `spindle bench` of an older commit) and NEW (`spindle-bench`),
# each suite --quick --json, one JSON line per figure tagged with its round
# and build. Summarise with bench/compare/summarize.py OUT/all.jsonl.
#
#   BASE="/path/to/old/spindle bench" NEW="target/release/spindle-bench" \
#   ROUNDS=7 SUITES="sync queue process pool" OUT=target/compare \
#   bench/compare/interleave.sh
set -u
rounds=${ROUNDS:-7}
out=${OUT:-target/compare}
base=${BASE:?BASE: the earlier harness command}
new=${NEW:-target/release/spindle-bench}
suites=${SUITES:-"sync queue process pool"}
mkdir -p "$out"
: > "$out/all.jsonl"
for r in $(seq 1 "$rounds"); do
  for s in $suites; do
    for who in base new; do
      if [ $who = base ]; then cmd="$base $s --quick --json"; else cmd="$new $s --quick --json"; fi
      $cmd 2>>"$out/err.log" | sed "s/^{/{\"round\":$r,\"who\":\"$who\",/" >> "$out/all.jsonl"
    done
  done
  echo "round $r done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
