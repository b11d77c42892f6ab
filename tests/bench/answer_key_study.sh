#!/usr/bin/env bash
# answer_key_study.sh — would a cache of whole answers pay? (issue 13; docs/PERFORMANCE.md,
# "A cache of whole answers: the study"). Needs `make` and the bench's generated sets and
# traffic model in BUILD/bench (make bench, or a copy of another tree's build/bench).
#
#   tests/bench/answer_key_study.sh [BUILD] [SHAPES]
#
# Prints, per shape (N segments, default 1,000) and page (1, 5, 20 slots):
#  1. hit rates of LRU caches of 1k, 4k, 16k, 64k entries for key (a) "raw" and key (b)
#     "verdicts", live clock of RATE decisions/s (default 1,000), WARM requests of warm-up
#     (default 0: every measured request a visitor not seen before; 100000: each visitor's
#     second request), vd-microbench --answer-key-study;
#  2. instructions per decision (callgrind, steady state: --warm 100000, 2,000 measured)
#     without a key and with each key computed before the decision, and the decision's
#     own share after the key (what a hit could skip at most), --answer-key-cost;
#  3. the break-even hit rate and the expected cost at the 16k hit rate.
set -euo pipefail
B=${1:-build}; SH=${2:-"ours country nested url"}
N=${N:-1000}; RATE=${RATE:-1000}; WARM=${WARM:-0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
page() { local k=$1 s="" i; for ((i=0;i<k;i++)); do s+=$(printf 'slot%02d,' $i); done; echo ${s%,}; }
incl() { callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E ":$2 \[.*vd-microbench\]" | head -1 |
         awk '{gsub(",","",$1); print int($1/2000)}'; }
for sh in $SH; do for p in 1 5 20; do
  args=("$B/bench/shape-$sh-$N/segments" "$B/bench/shape-$sh-$N/content-map" --geoip-db "$B/demo-city.mmdb"
        --contexts "$B/bench/traffic.tsv" --slots "$(page $p)")
  { echo "## $sh $p"; "$B/vd-microbench" "${args[@]}" -n 100000 --warm "$WARM" --answer-key-study "$RATE" 2>/dev/null; } \
    >> "$out/hits.txt"
  for k in none raw verdicts; do
    o="$out/cg.$sh.$p.$k"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$o" "$B/vd-microbench" "${args[@]}" \
      -n 2000 --warm 100000 --answer-key-cost $k >/dev/null 2>&1
    tot=$(callgrind_annotate "$o" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
    echo "$sh $p $k total=$((tot / 2000)) key=$(incl "$o" answer_key) decide=$(incl "$o" vd_decide_alloc)" \
         "emit=$(incl "$o" vd_result_emit) ctxget=$(incl "$o" vd_context_get)" >> "$out/cost.txt"
  done
done; done
grep -E '^##|^ANSWER_KEY' "$out/hits.txt"
cat "$out/cost.txt"
/usr/bin/python3 - "$out/hits.txt" "$out/cost.txt" "$RATE" <<'PY'
import re, sys
hits, cost, rate = sys.argv[1], sys.argv[2], sys.argv[3]
c = {}
for l in open(cost):
    f = l.split()
    c[(f[0], f[1], f[2])] = {k: int(v or 0) for k, v in (x.split('=') for x in f[3:])}
h, cur = {}, None
for l in open(hits):
    if l.startswith('##'):
        cur = tuple(l.split()[1:3])
        continue
    m = re.search(r'clock=live:%s/s key=(\w+) .*hit_16k=([\d.]+)' % rate, l)
    if m:
        h[cur + (m.group(1),)] = float(m.group(2))
print("| shape | page | no key | raw: with key, hit 16k, break-even, expected | verdicts: with key, hit 16k, break-even, expected |")
print("|---|---|---|---|---|")
for (s, p, k) in sorted(c, key=lambda x: (x[0], int(x[1]))):
    if k != 'none':
        continue
    base = c[(s, p, 'none')]['total']
    row = f"| {s} | {p} | {base:,} |"
    for k in ('raw', 'verdicts'):
        x = c[(s, p, k)]
        save, extra, hr = x['decide'], x['total'] - base, h.get((s, p, k), 0.0)
        exp = x['total'] - hr * save
        row += f" {x['total']:,}, {hr * 100:.0f} %, {extra / save * 100:.0f} %, {exp:,.0f} ({exp / base:.2f}x) |"
    print(row)
PY
