#!/bin/bash
# Profiles on the decide path, measured in interleaved rounds (issues 9 and 10).
#
#   tests/bench/profile_bench.sh [read|goal|all]      (ROUNDS=3 DURATION=4 by default)
#
# read (issue 9): 1,000 generated segments over 5 slots; slots slot00 and
#   slot01 start with the example profile segments (visitor.visits, .known,
#   .score, .peak/.decline, .flag), so a decide of all 5 slots reads the
#   profile. One worker, a local redis-server, variantd-bench -c CONNS (8) -P 1
#   --contexts tests/bench/contexts.tsv --visitors 1000. Per round: the same
#   decide with profiles off (A) and on (B), back to back. Goal: B/A >= 0.6.
# goal (issue 10): one worker, profiles on, every decide with a vid and
#   consent; slot "hero" without a goal (p) and with one (g, one exposure per
#   decision), --visitors 5000 (returning visitors: the worker's caches
#   skip most writes) and 1000000 (visitors rotate past the worker's caches:
#   every decision sends its script). Goal: daemon CPU per decision of g
#   within 10 % of p.
#
# Per run it prints req/s, p50/p99, the daemon's and redis-server's CPU per
# decision (utime+stime from /proc), and Redis' own calls per decision and
# usec_per_call of each command (INFO commandstats after CONFIG RESETSTAT;
# commands run inside a script are listed too); then per scenario
# the median and the spread (min..max) over the rounds, and the per-round
# ratios. Only ratios of the same round compare: the machine is shared.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
B="${VARIANTD_BUILD:-$ROOT/build}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-4}"
CONNS="${CONNS:-8}"
WHAT="${1:-all}"
SECRET=00112233445566778899aabbccddeeff
HZ=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/vd-profbench.XXXXXX)
RPID=""
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_of() { awk '{print $14+$15}' "/proc/$1/stat"; }
rcli() { redis-cli -p "$RP" "$@"; }

RP=$(freeport)
/usr/bin/redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >/dev/null 2>&1 &
RPID=$!
for _ in $(seq 50); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done

# ---- definitions ----------------------------------------------------------------
/usr/bin/python3 "$ROOT/tests/bench/gen_ruleset.py" "$TMP/read" 1000 5 >/dev/null
cp "$ROOT/segments/profile.json" "$TMP/read/segments/profile.json"
mkdir -p "$TMP/read/scores" && cp "$ROOT/scores/interests.json" "$TMP/read/scores/"
/usr/bin/python3 - "$TMP/read/content-map/gen.json" <<'EOF'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
prof = ["critical-ticket", "win-back", "sneaker-fan", "known-customer", "returning-visitor"]
for s in m[:2]:
    v = sorted(s["variants"])[0]
    s["rules"] = [{"segment": g, "variant": v} for g in prof] + s["rules"]
json.dump(m, open(p, "w"))
EOF
READ_SLOTS=slot00,slot01,slot02,slot03,slot04

# One run: start the daemon, warm up, measure. Prints one line of key=value.
# run NAME DEFDIR SLOTS VISITORS PROFILES(0/1)
run() {
    local name=$1 dir=$2 slots=$3 visitors=$4 prof=$5 p out t0 t1 r0 r1 n
    p=$(freeport)
    local extra=()
    [ "$prof" = 1 ] && extra=(--profiles "redis://127.0.0.1:$RP/0" --profile-key-secret $SECRET)
    [ -d "$dir/scores" ] && extra+=(--scores "$dir/scores")
    "$B/variantd" --listen "127.0.0.1:$p" --segments "$dir/segments" --content-map "$dir/content-map" \
        --workers 1 --log-level warn "${extra[@]}" >"$TMP/daemon.log" 2>&1 &
    DPID=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
    "$B/variantd-bench" --connect "127.0.0.1:$p" -c "$CONNS" -P 1 -d 2 --contexts "$ROOT/tests/bench/contexts.tsv" \
        --slots "$slots" --visitors "$visitors" --quiet >/dev/null 2>&1
    rcli config resetstat >/dev/null
    t0=$(cpu_of $DPID); r0=$(cpu_of $RPID)
    out=$("$B/variantd-bench" --connect "127.0.0.1:$p" -c "$CONNS" -P 1 -d "$DURATION" --warmup 0 \
        --contexts "$ROOT/tests/bench/contexts.tsv" --slots "$slots" --visitors "$visitors" 2>&1 | grep BENCH_RESULT)
    t1=$(cpu_of $DPID); r1=$(cpu_of $RPID)
    kill $DPID; wait $DPID 2>/dev/null; DPID=""
    n=$(echo "$out" | grep -oE 'requests=[0-9]+' | cut -d= -f2)
    local rps=$(echo "$out" | grep -oE 'rps=[0-9.]+' | cut -d= -f2)
    local p50=$(echo "$out" | grep -oE 'p50_us=[0-9.]+' | cut -d= -f2)
    local p99=$(echo "$out" | grep -oE 'p99_us=[0-9.]+' | cut -d= -f2)
    local err=$(echo "$out" | grep -oE 'errors=[0-9]+' | cut -d= -f2)
    # Redis' own view: top-level commands per decision (EVALSHA/EVAL and the
    # plain HGETALL of a read; the calls inside scripts are listed with them
    # by Redis, so they are not added up) and usec_per_call of each.
    local cs=$(rcli info commandstats | tr -d '\r' | /usr/bin/python3 -c '
import sys
n = int(sys.argv[1]) or 1
parts = []
for l in sys.stdin:
    if not l.startswith("cmdstat_"): continue
    name, rest = l[8:].split(":", 1)
    f = dict(kv.split("=") for kv in rest.strip().split(","))
    if name in ("config", "info", "ping"): continue
    parts.append("%s=%.3f/dec@%.2fus" % (name, int(f["calls"]) / n, float(f["usec_per_call"])))
print(" ".join(parts))' "${n:-0}")
    printf '%-8s rps=%s p50_us=%s p99_us=%s errors=%s daemon_cpu_us=%s redis_cpu_us=%s %s\n' "$name" "$rps" "$p50" "$p99" "$err" \
        "$(awk -v d=$((t1 - t0)) -v hz=$HZ -v n=${n:-1} 'BEGIN{printf "%.2f", d/hz*1e6/n}')" \
        "$(awk -v d=$((r1 - r0)) -v hz=$HZ -v n=${n:-1} 'BEGIN{printf "%.2f", d/hz*1e6/n}')" "$cs"
}

LOG="$TMP/results"
: >"$LOG"
for round in $(seq "$ROUNDS"); do
    if [ "$WHAT" = read ] || [ "$WHAT" = all ]; then
        rcli flushall >/dev/null
        run off "$TMP/read" $READ_SLOTS 1000 0 | sed "s/^/$round read_/" | tee -a "$LOG"
        run on "$TMP/read" $READ_SLOTS 1000 1 | sed "s/^/$round read_/" | tee -a "$LOG"
    fi
    if [ "$WHAT" = goal ] || [ "$WHAT" = all ]; then
        for v in 5000 1000000; do
            rcli flushall >/dev/null
            run "p$v" "$ROOT/tests/bench/goal-cpu/p" hero $v 1 | sed "s/^/$round goal_/" | tee -a "$LOG"
            rcli flushall >/dev/null
            run "g$v" "$ROOT/tests/bench/goal-cpu/g" hero $v 1 | sed "s/^/$round goal_/" | tee -a "$LOG"
        done
    fi
done

/usr/bin/python3 - "$LOG" <<'EOF'
import re, statistics, sys
rows = {}
byround = {}
for l in open(sys.argv[1]):
    parts = l.split()
    if len(parts) < 3: continue
    rnd, name = parts[0], parts[1]
    f = dict(kv.split("=", 1) for kv in parts[2:] if "=" in kv and re.match(r"^[a-z0-9_]+=", kv))
    rows.setdefault(name, []).append(f)
    byround.setdefault(rnd, {})[name] = f
def num(x):
    try: return float(x.split("/")[0])
    except Exception: return float("nan")
print("\nmedians over %d round(s) (spread min..max):" % len(byround))
for name, fs in rows.items():
    out = []
    for k in ("rps", "p50_us", "p99_us", "daemon_cpu_us", "redis_cpu_us"):
        v = [num(f.get(k, "nan")) for f in fs]
        out.append("%s=%g (%g..%g)" % (k, statistics.median(v), min(v), max(v)))
    print("  %-14s %s" % (name, "  ".join(out)))
def ratios(a, b, key, label):
    r = []
    for rnd, d in sorted(byround.items()):
        if a in d and b in d:
            x, y = num(d[a][key]), num(d[b][key])
            if x > 0: r.append(y / x)
    if r:
        print("  %s per round: %s  median %.3f" % (label, " ".join("%.3f" % v for v in r), statistics.median(r)))
print("\nratios (same round):")
ratios("read_off", "read_on", "rps", "issue 9  read_on/read_off req/s (goal >= 0.6)")
ratios("read_off", "read_on", "daemon_cpu_us", "         read_on/read_off daemon CPU per decision")
for v in ("5000", "1000000"):
    ratios("goal_p" + v, "goal_g" + v, "daemon_cpu_us", "issue 10 g/p daemon CPU per decision, %7s visitors (goal <= 1.10)" % v)
    ratios("goal_p" + v, "goal_g" + v, "redis_cpu_us", "         g/p redis CPU per decision,  %7s visitors" % v)
EOF
