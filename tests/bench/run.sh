#!/usr/bin/env bash
# make bench — variantd measured side by side with reference systems, in one run,
# on this machine (loopback only; every load is bounded in time; every server
# started here is stopped by its pid).
#
#   BENCH_QUICK=1   one short round of everything (about a minute)
#   BENCH_ROUNDS=N  rounds per comparison (default 3; medians are reported)
#   BENCH_SECONDS=S measured seconds per run (default 5, quick 2)
#   BENCH_VISITORS=N distinct visitors of the traffic model (default 100000)
#   BENCH_PIN=0     do not pin servers and load generators to separate CPUs
#   BENCH_RT=0      skip the extra half-rate latency run at real-time priority
#   BENCH_ONLY=S    only these sections (space-separated: tcp http scale shapes swap
#                   profiles), e.g. BENCH_ONLY=profiles BENCH_QUICK=1 (~1 minute)
#   BENCH_TRACKS=N  track notifications per profiles round (default 100000, quick 20000)
#   BENCH_STORE_CPU=N the CPU of the profiles section's redis-server (default 1)
#
# Workloads (issue 13): four generated set shapes (tests/bench/gen_ruleset.py
# --shape=ours|country|nested|url) at 1,000 and 10,000 segments, pages of 1,
# 5 and 20 slots, and a traffic model (tests/bench/gen_traffic.py: distinct
# visitors, Zipf-like User-Agents from ../shared/data, IPs over the GeoIP
# networks, referrers and landings by medium) generated here at bench time.
# Each goal is a ratio of two systems measured back to back in the same
# round; summarize.py prints the median ratio and its spread over rounds.
# Where the machine has two or more CPUs, servers run on CPU 0 and load
# generators on CPU 1 (taskset), so latency is not the client's queueing.
#
# Section 5 (issue 9) measures profiles against a redis-server started here:
# a 5-slot decide (2 slots with visitor.* rules) with and without profiles,
# its p99 at half its peak rate, a decide whose slots use no visitor.*
# (Redis commands it causes, profile reads: none), and track notifications
# (applied ones counted in Redis itself); Redis commands per decision and per
# track come from Redis' own INFO commandstats. The daemon is pinned like the
# others (CPU 0); the store runs on CPU 1, beside the load generator.
#
# Writes build/bench/results.tsv (one row per measured run) and
# build/bench/summary.md (the median table), and prints the table.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$ROOT/build"
SHARED="${VD_SHARED_DIR:-$ROOT/../shared}"
OUT="$BUILD/bench"
QUICK="${BENCH_QUICK:-0}"
ROUNDS="${BENCH_ROUNDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}"
SECS="${BENCH_SECONDS:-$([ "$QUICK" = 1 ] && echo 2 || echo 5)}"
CONNS=50
VISITORS="${BENCH_VISITORS:-100000}"
SHAPES="ours country nested url"
ONLY="${BENCH_ONLY:-tcp http scale shapes swap profiles}"
TRACKS="${BENCH_TRACKS:-$([ "$QUICK" = 1 ] && echo 20000 || echo 100000)}"
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c 0); CLI_PIN=(taskset -c 1); STORE_PIN=(taskset -c "${BENCH_STORE_CPU:-1}")
else
    SRV_PIN=(); CLI_PIN=(); STORE_PIN=()
fi
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
# BENCH_RT=0: skip the half-rate latency run at real-time priority (needs root).
RT="${BENCH_RT:-1}"
if [ "$RT" = 1 ] && { ! command -v chrt >/dev/null || [ "$(id -u)" != 0 ]; }; then RT=0; fi
CLK_TCK="$(getconf CLK_TCK)"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
printf 'section\tsystem\tround\trps\tp50_us\tp99_us\tp999_us\terrors\tcpu_us_per_req\textra\n' >"$RESULTS"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; return 0; }
trap cleanup EXIT

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; log "port $1 did not open"; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '$1=="VmRSS:"{print $2}' "/proc/$1/status"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
row() { local IFS=$'\t'; echo "$*" >>"$RESULTS"; }
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

start_variantd() { # start_variantd SEGDIR MAPDIR extra-args... -> VD_PID VD_PORT
    VD_PORT="$(free_port)"
    "${SRV_PIN[@]}" "$BUILD/variantd" --listen "127.0.0.1:$VD_PORT" --segments "$1" --content-map "$2" \
        --geoip-db "$BUILD/demo-city.mmdb" --log-level warn "${@:3}" >>"$OUT/variantd.log" 2>&1 &
    VD_PID=$!
    PIDS+=("$VD_PID")
    wait_tcp "$VD_PORT"
}

# measure PID CMD...: runs CMD, prints "cpu_us_per_req" for PID given the request count in $REQS
measure_cpu() { # measure_cpu PID START_TICKS REQUESTS
    local t1; t1="$(cpu_ticks "$1")"
    awk -v d=$((t1 - $2)) -v hz="$CLK_TCK" -v n="$3" 'BEGIN{ if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print "nan" }'
}

log "building"
make -C "$ROOT" --no-print-directory all >/dev/null
"$ROOT/scripts/deps.sh" bench

log "generating rulesets"
if [ "$ONLY" != profiles ]; then
    for n in 100 1000 10000; do /usr/bin/python3 "$ROOT/tests/bench/gen_ruleset.py" "$OUT/set-$n" "$n" 20; done
    /usr/bin/python3 "$ROOT/tests/bench/gen_ruleset.py" "$OUT/set-ref" 1000 20 --reference
    for shape in $SHAPES; do
        for n in 1000 10000; do
            /usr/bin/python3 "$ROOT/tests/bench/gen_ruleset.py" "$OUT/shape-$shape-$n" "$n" 20 "--shape=$shape"
        done
    done
fi
/usr/bin/python3 "$ROOT/tests/bench/gen_ruleset.py" "$OUT/set-profiles" 1000 5 --profile-slots=2
CTX="$ROOT/tests/bench/contexts.tsv"
# The traffic model; without ../shared/data (User-Agents, referrers) the 20
# fixed contexts stand in, and the summary says so.
TRAFFIC="$OUT/traffic.tsv"
if ! /usr/bin/python3 "$ROOT/tests/bench/gen_traffic.py" "$TRAFFIC" --visitors "$VISITORS" --data "$SHARED/data"; then
    log "no traffic model (../shared/data missing?): using $CTX"
    TRAFFIC="$CTX"
fi
PAGE1="slot00"
PAGE5="slot00,slot01,slot02,slot03,slot04"
PAGE20="$(seq -f 'slot%02g' 0 19 | paste -sd,)"
page_slots() { case "$1" in 1) echo "$PAGE1" ;; 5) echo "$PAGE5" ;; *) echo "$PAGE20" ;; esac; }

# ---- 1. TCP decide vs redis GET -------------------------------------------
# redis GET and variantd in turn, driven by the same client (variantd-bench;
# --method redis-get sends redis-benchmark -t get -r 100000's GETs), same
# connection count, same pinning; variantd over the traffic model: the
# reference slot (1 slot), and each shape's 1-slot and 20-slot pages at
# 1,000 segments.
redis_run() { # redis_run ROUND P
    local r="$1" P="$2" port rpid t0 line cpu
    port="$(free_port)"
    "${SRV_PIN[@]}" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        --dir "$OUT" --logfile "$OUT/redis.log" &
    rpid=$!; PIDS+=("$rpid"); wait_tcp "$port"
    "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$port" --method redis-get -c "$CONNS" -P "$P" -d 1 \
        --warmup 0 --contexts "$TRAFFIC" --quiet >/dev/null || true
    t0="$(cpu_ticks "$rpid")"
    line="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$port" --method redis-get -c "$CONNS" -P "$P" \
             -d "$SECS" --warmup 0 --contexts "$TRAFFIC" --quiet | grep BENCH_RESULT)"
    cpu="$(measure_cpu "$rpid" "$t0" "$(kv requests "$line")")"
    stop "$rpid"
    row tcp "redis GET -P$P" "$r" "$(kv rps "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" \
        "$(kv p999_us "$line")" "$(kv errors "$line")" "$cpu" "same client (variantd-bench --method redis-get)"
}
vd_run() { # vd_run ROUND P SETDIR SLOTS NAME NOTE
    local r="$1" P="$2" t0 line cpu
    start_variantd "$3/segments" "$3/content-map" --workers 1
    "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -P "$P" -d 1 --warmup 0 \
        --contexts "$TRAFFIC" --slots "$4" --quiet >/dev/null || true
    t0="$(cpu_ticks "$VD_PID")"
    line="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -P "$P" -d "$SECS" \
             --warmup 0 --contexts "$TRAFFIC" --slots "$4" --quiet | grep BENCH_RESULT)"
    cpu="$(measure_cpu "$VD_PID" "$t0" "$(kv requests "$line")")"
    stop "$VD_PID"
    row tcp "$5" "$r" "$(kv rps "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" \
        "$(kv p999_us "$line")" "$(kv errors "$line")" "$cpu" "$6"
}
tcp_round() {
    local r="$1" shape
    redis_run "$r" 1
    vd_run "$r" 1 "$OUT/set-ref" hero "variantd decide -P1" "1000 segments, 1 worker, traffic model"
    for shape in $SHAPES; do
        vd_run "$r" 1 "$OUT/shape-$shape-1000" "$PAGE1" "variantd $shape 1-slot -P1" "1000 segments"
        vd_run "$r" 1 "$OUT/shape-$shape-1000" "$PAGE20" "variantd $shape 20-slot -P1" "1000 segments"
    done
    redis_run "$r" 16
    vd_run "$r" 16 "$OUT/set-ref" hero "variantd decide -P16" "1000 segments, 1 worker, traffic model"
}

# ---- 2. HTTP edge vs nginx geoip2+maps -------------------------------------
http_round() {
    local r="$1"
    if [ ! -x "$SHARED/bench/run-nginx.sh" ]; then
        log "skipped: $SHARED/bench not present (HTTP comparison)"
        return 0
    fi
    if ! "$BUILD/variantd" --help | grep -q -- '--http-listen'; then
        log "skipped: this build has no edge HTTP port"
        return 0
    fi
    local line
    line="$(NGINX_WORKERS=1 NGINX_MODE=geoip2 WRK_DURATION="$SECS" WRK_WARMUP=1 QUIET_WAIT=10 \
             RESULTS_DIR="$OUT/peers" bash "$SHARED/bench/run-nginx.sh" 2>>"$OUT/nginx.log" | grep '^RESULT' || true)"
    if [ -n "$line" ]; then
        local rps cpu; rps="$(kv rps "$line")"; cpu="$(kv server_cpu_pct "$line")"
        row http "nginx geoip2+maps (1 worker)" "$r" "${rps%.*}" \
            "$(awk -v v="$(kv p50_ms "$line")" 'BEGIN{print v*1000}')" \
            "$(awk -v v="$(kv p99_ms "$line")" 'BEGIN{print v*1000}')" \
            "$(awk -v v="$(kv p999_ms "$line")" 'BEGIN{print v*1000}')" "$(kv errors "$line")" \
            "$(awk -v c="$cpu" -v r="$rps" 'BEGIN{ if (r > 0) printf "%.2f", c / 100 * 1e6 / r; else print "nan" }')" "wrk 2t/50c"
    fi
    # Ours: the same wrk script and fixtures, path /v1/decide.
    sed 's#"/decide?slot=hero"#"/v1/decide?slot=hero"#' "$SHARED/bench/requests.lua" >"$OUT/requests-v1.lua"
    local hport; hport="$(free_port)"
    if ! start_variantd "$OUT/set-ref/segments" "$OUT/set-ref/content-map" --workers 1 --http-listen "127.0.0.1:$hport" \
        || ! wait_tcp "$hport"; then
        log "variantd edge port did not start (see $OUT/variantd.log)"
        return 0
    fi
    (cd "$SHARED/bench" && PEER_MODE=decide timeout 30 wrk -t2 -c"$CONNS" -d1s -s "$OUT/requests-v1.lua" "http://127.0.0.1:$hport" >/dev/null 2>&1) || true
    local t0 out cpu; t0="$(cpu_ticks "$VD_PID")"
    out="$(cd "$SHARED/bench" && PEER_MODE=decide timeout 60 wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 5s --latency \
            -s "$OUT/requests-v1.lua" "http://127.0.0.1:$hport" 2>&1 | grep WRK_RESULT || true)"
    if [ -n "$out" ]; then
        local n errs; n="$(kv requests "$out")"
        cpu="$(measure_cpu "$VD_PID" "$t0" "$n")"
        errs=$(( $(kv err_connect "$out") + $(kv err_read "$out") + $(kv err_write "$out") + $(kv err_timeout "$out") + $(kv non2xx "$out") ))
        row http "variantd edge (1 worker)" "$r" "$(kv rps "$out" | cut -d. -f1)" "$(kv p50_us "$out")" "$(kv p99_us "$out")" \
            "$(kv p999_us "$out")" "$errs" "$cpu" "1000 segments"
    fi
    stop "$VD_PID"
}

# ---- 3. scale: 100 / 1,000 / 10,000 segments over 20 slots -----------------
scale_round() {
    local r="$1" n line t0 cpu ir1 ir2
    for n in 100 1000 10000; do
        local sport; sport="$(free_port)"
        start_variantd "$OUT/set-$n/segments" "$OUT/set-$n/content-map" --workers 1 --stats-listen "127.0.0.1:$sport"
        "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d 1 --warmup 0 --contexts "$TRAFFIC" \
            --slots slot00,slot01,slot02,slot03 --quiet >/dev/null || true
        t0="$(cpu_ticks "$VD_PID")"
        line="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d "$SECS" --warmup 0 \
                 --contexts "$TRAFFIC" --slots slot00,slot01,slot02,slot03 --quiet | grep BENCH_RESULT)"
        cpu="$(measure_cpu "$VD_PID" "$t0" "$(kv requests "$line")")"
        local rss; rss="$(rss_kb "$VD_PID")"
        # Server-side decision time: p99 bucket bound of the daemon's own histogram.
        local sp99; sp99="$(curl -s "http://127.0.0.1:$sport/metrics" | /usr/bin/python3 -c '
import sys
b = [(float(l.split("le=\"")[1].split("\"")[0].replace("+Inf", "inf")), float(l.split()[-1]))
     for l in sys.stdin if l.startswith("variantd_decision_duration_seconds_bucket")]
total = b[-1][1] if b else 0
print(next((f"{le * 1e6:.0f}" for le, c in b if total and c >= 0.99 * total), "nan"))')"
        # End-to-end latency at half the peak rate just measured.
        local half; half="$(awk -v r="$(kv rps "$line")" 'BEGIN{printf "%d", r / 2}')"
        local hl; hl="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d "$SECS" --warmup 0.5 \
                 --rate "$half" --contexts "$TRAFFIC" --slots slot00,slot01,slot02,slot03 --quiet | grep BENCH_RESULT)"
        # The same at real-time priority (SCHED_FIFO, server and load
        # generator), so the other processes of a shared machine cannot
        # delay either: what is left is the daemon's own latency. Bounded
        # (SECS at half the peak, the kernel's RT throttling applies).
        local hlrt=""
        if [ "$RT" = 1 ] && chrt -a -f -p 5 "$VD_PID" >/dev/null 2>&1; then
            hlrt="$(chrt -f 5 "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d "$SECS" \
                     --warmup 0.5 --rate "$half" --contexts "$TRAFFIC" --slots slot00,slot01,slot02,slot03 --quiet | grep BENCH_RESULT)"
        fi
        stop "$VD_PID"
        local micro; micro="$("$BUILD/vd-microbench" "$OUT/set-$n/segments" "$OUT/set-$n/content-map" \
                  --geoip-db "$BUILD/demo-city.mmdb" --contexts "$CTX" --slot-count 4 -n 20000 --warm 2000 2>/dev/null | grep MICRO_RESULT)"
        local ir="nan"
        if [ "$r" = 1 ] && command -v valgrind >/dev/null; then
            # Instructions per decision: the difference of two runs cancels start-up.
            ir1="$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BUILD/vd-microbench" "$OUT/set-$n/segments" \
                   "$OUT/set-$n/content-map" --geoip-db "$BUILD/demo-city.mmdb" --contexts "$CTX" --slot-count 4 \
                   -n 1000 --warm 100 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')"
            ir2="$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BUILD/vd-microbench" "$OUT/set-$n/segments" \
                   "$OUT/set-$n/content-map" --geoip-db "$BUILD/demo-city.mmdb" --contexts "$CTX" --slot-count 4 \
                   -n 3000 --warm 100 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')"
            ir="$(awk -v a="$ir1" -v b="$ir2" 'BEGIN{ printf "%.0f", (b - a) / 2000 }')"
        fi
        row scale "variantd $n segments" "$r" "$(kv rps "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" \
            "$(kv p999_us "$line")" "$(kv errors "$line")" "$cpu" \
            "decide_ns=$(kv ns_per_decision "$micro") server_p99_us_le=$sp99 half_rate_p99_us=$(kv p99_us "$hl") half_rate_rt_p99_us=$(kv p99_us "$hlrt") instr=$ir allocs=$(kv allocs_per_decision "$micro") rss_kb=$rss"
    done
}

# ---- 3b. shapes x pages in process: instructions (callgrind) and time ------
# Only the measured decisions are instrumented (vd-microbench's client
# requests); instructions are exact and repeat, so they are taken once.
# The traffic model is sent in order from its start, in two phases: cold
# (decisions 3,001-5,000: caches filling, as just after a start) and steady
# (after 90 % of the model: visitors not seen before, every cache at the
# hit rate of a daemon that has run a while).
micro_instr() { # micro_instr SETDIR SLOTS WARM [OPTIONS...] -> "instructions-per-decision ua-hit-rate"
    local n=2000 out set="$1" slots="$2" warm="$3"
    shift 3
    out="$(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null "$BUILD/vd-microbench" \
        "$set/segments" "$set/content-map" --geoip-db "$BUILD/demo-city.mmdb" --contexts "$TRAFFIC" --slots "$slots" \
        -n "$n" --warm "$warm" "$@" 2>&1)"
    printf '%s %s\n' "$(printf '%s\n' "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' |
                          awk -v n="$n" '{ printf "%.0f", $1 / n }')" \
                     "$(printf '%s\n' "$out" | grep MICRO_RESULT | sed -n 's/.*ua_hit_rate=\([0-9.]*\).*/\1/p')"
}
shapes_round() {
    local r="$1" shape n page line ir irs uas aoff aon
    for shape in $SHAPES; do
        for n in 1000 10000; do
            [ "$QUICK" = 1 ] && [ "$n" = 10000 ] && continue
            for page in 1 5 20; do
                line="$("$BUILD/vd-microbench" "$OUT/shape-$shape-$n/segments" "$OUT/shape-$shape-$n/content-map" \
                        --geoip-db "$BUILD/demo-city.mmdb" --contexts "$TRAFFIC" --slots "$(page_slots "$page")" \
                        -n 20000 --warm 2000 2>/dev/null | grep MICRO_RESULT)"
                ir="nan"; irs="nan"; uas="nan"; aoff="nan"; aon="nan"
                if [ "$r" = 1 ] && command -v valgrind >/dev/null; then
                    ir="$(micro_instr "$OUT/shape-$shape-$n" "$(page_slots "$page")" 3000 | cut -d' ' -f1)"
                    read -r irs uas < <(micro_instr "$OUT/shape-$shape-$n" "$(page_slots "$page")" $((VISITORS * 9 / 10)))
                    # The answer cache (config answer-cache, off by default) on
                    # pages of 5 and 20 slots, against the same run without it;
                    # both on a live clock of 1,000 decisions a second (the
                    # rows' own times are an hour apart: no time-bound answer
                    # would ever be reused).
                    if [ "$page" != 1 ] && [ "$n" = 1000 ]; then
                        aoff="$(micro_instr "$OUT/shape-$shape-$n" "$(page_slots "$page")" $((VISITORS * 9 / 10)) \
                                --clock-rate 1000 | cut -d' ' -f1)"
                        aon="$(micro_instr "$OUT/shape-$shape-$n" "$(page_slots "$page")" $((VISITORS * 9 / 10)) \
                                --clock-rate 1000 --answer-cache 16384 | cut -d' ' -f1)"
                    fi
                fi
                row shape "$shape $n segments $page-slot" "$r" nan nan nan nan 0 nan \
                    "decide_ns=$(kv ns_per_decision "$line") instr=${ir:-nan} instr_steady=${irs:-nan} ua_hit_steady=${uas:-nan} instr_clock=${aoff:-nan} instr_answer_cache=${aon:-nan} matched=$(kv matched_per_decision "$line") ua_hit=$(kv ua_hit_rate "$line") geo_hit=$(kv geo_hit_rate "$line") src_hit=$(kv src_hit_rate "$line") allocs=$(kv allocs_per_decision "$line")"
            done
        done
    done
}

# ---- 4. live swap of a 10,000-segment set under load ------------------------
# For every set shape: a daemon serving its 1,000-segment set under 50
# connections of load gets the 10,000-segment set (files renamed into place,
# SIGHUP); swap_ms is the time until 16 fresh connections at once all answer
# with the new version (tests/bench/swap.sh, swap_poll.py). The daemon runs
# unpinned with its default workers: the swap is compiled by the control
# thread next to busy workers, as in production.
swap_round() {
    local r="$1" shape line
    for shape in $SHAPES; do
        line="$("$ROOT/tests/bench/swap.sh" "$OUT/shape-$shape-1000" "$OUT/shape-$shape-10000" "$TRAFFIC" "$BUILD" \
            | grep '^SWAP ')" || { log "swap $shape failed"; continue; }
        row swap "variantd $shape 1,000 -> 10,000 segments" "$r" "$(kv rps "$line")" nan "$(kv p99_us "$line")" \
            "$(kv p999_us "$line")" "$(kv errors "$line")" "nan" \
            "swap_ms=$(kv swap_ms "$line") compile_ms=$(kv compile_ms "$line") rss_kb_10000=$(kv rss_kb "$line")"
    done
}

# ---- 5. profiles (issue 9): a local redis-server as the store ---------------
PSET="$OUT/set-profiles"
PSECRET=000102030405060708090a0b0c0d0e0f
PVISITORS=1000
PAGE_P5="slot00,slot01,slot02,slot03,slot04"   # slot00, slot01 use visitor.*
PAGE_P3="slot02,slot03,slot04"                 # no visitor.* at all
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'; }
# Commands Redis executed since the last CONFIG RESETSTAT, from its INFO
# commandstats (INFO and CONFIG excluded): "SENT INSIDE" — the commands the
# daemon sent (its scripts: EVALSHA, EVAL after NOSCRIPT; and the plain
# HGETALL a read pipelines behind its visit script or sends alone) and those
# its scripts ran (HMGET, HSET, ...; Redis counts both).
redis_cmds() {
    redis-cli -p "$1" info commandstats | tr -d '\r' |
        awk -F'[:,=]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_config" {
            if ($1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" || $1 == "cmdstat_hgetall") s += $3; else i += $3 }
            END { print s + 0, i + 0 }'
}
per() { awk -v a="$1" -v n="$2" -v d="$3" 'BEGIN { printf "%.*f", d, (n > 0 ? a / n : 0) }'; }
# Events of TYPE applied to the profiles, summed in Redis.
redis_events() {
    redis-cli -p "$1" eval "local t = 0 for _, k in ipairs(redis.call('KEYS', 'vdp1:*')) do
        t = t + (tonumber(redis.call('HGET', k, 'e:' .. ARGV[1])) or 0) end return t" 0 "$2"
}
prof_run() { # prof_run ROUND NAME SLOTS ON(0/1) REDIS_PORT HALF(0/1)
    local r="$1" name="$2" slots="$3" on="$4" rport="$5" sport t0 line cpu n cmds="nan" reads hl="nan"
    local -a pargs=()
    [ "$on" = 1 ] && pargs=(--profiles "redis://127.0.0.1:$rport/0" --profile-key-secret "$PSECRET"
                            --profile-batch-keys 64)
    sport="$(free_port)"
    start_variantd "$PSET/segments" "$PSET/content-map" --scores "$PSET/scores" --workers 1 \
        --stats-listen "127.0.0.1:$sport" "${pargs[@]}"
    "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d 1 --warmup 0 \
        --contexts "$TRAFFIC" --slots "$slots" --visitors "$PVISITORS" --quiet >/dev/null || true
    redis-cli -p "$rport" config resetstat >/dev/null
    reads="$(metric "$sport" variantd_profile_reads_total)"
    t0="$(cpu_ticks "$VD_PID")"
    line="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d "$SECS" --warmup 0 \
             --contexts "$TRAFFIC" --slots "$slots" --visitors "$PVISITORS" --quiet | grep BENCH_RESULT)"
    n="$(kv requests "$line")"
    cpu="$(measure_cpu "$VD_PID" "$t0" "$n")"
    local inner="nan"
    if [ "$on" = 1 ]; then
        read -r cmds inner <<<"$(redis_cmds "$rport")"
        cmds="$(per "$cmds" "$n" 3)"; inner="$(per "$inner" "$n" 2)"
    fi
    reads="$(awk -v a="$reads" -v b="$(metric "$sport" variantd_profile_reads_total)" -v n="$n" \
             'BEGIN { printf "%.3f", (n > 0 ? (b - a) / n : 0) }')"
    if [ "$6" = 1 ]; then
        local half; half="$(awk -v r="$(kv rps "$line")" 'BEGIN{printf "%d", r / 2}')"
        hl="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" -c "$CONNS" -d "$SECS" \
               --warmup 0.5 --rate "$half" --contexts "$TRAFFIC" --slots "$slots" --visitors "$PVISITORS" --quiet |
               grep BENCH_RESULT)"
        hl="$(kv p99_us "$hl")"
    fi
    stop "$VD_PID"
    row profiles "$name" "$r" "$(kv rps "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" \
        "$(kv p999_us "$line")" "$(kv errors "$line")" "$cpu" \
        "redis_cmds_per_req=$cmds redis_inner_per_req=$inner profile_reads_per_req=$reads half_rate_p99_us=${hl:-nan}"
}
track_run() { # track_run ROUND REDIS_PORT
    local r="$1" rport="$2" sport t0 line cpu n lost0 lost1 ev0 ev1 cmds conns=4
    sport="$(free_port)"
    start_variantd "$PSET/segments" "$PSET/content-map" --scores "$PSET/scores" --workers 1 \
        --stats-listen "127.0.0.1:$sport" --profiles "redis://127.0.0.1:$rport/0" --profile-key-secret "$PSECRET" \
        --profile-batch-keys 64
    "${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" --method track -c "$conns" -n 5000 \
        --visitors "$PVISITORS" --event product_view:sneakers --quiet >/dev/null || true
    redis-cli -p "$rport" config resetstat >/dev/null
    lost0="$(metric "$sport" variantd_track_lost_total)"
    ev0="$(redis_events "$rport" product_view)"
    t0="$(cpu_ticks "$VD_PID")"
    line="$("${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$VD_PORT" --method track -c "$conns" \
             -n "$TRACKS" --visitors "$PVISITORS" --event product_view:sneakers --quiet | grep BENCH_RESULT)" || true
    n="$(kv requests "$line")"
    cpu="$(measure_cpu "$VD_PID" "$t0" "$n")"
    local inner
    read -r cmds inner <<<"$(redis_cmds "$rport")"
    cmds="$(per "$cmds" "$((n + conns))" 4)"; inner="$(per "$inner" "$((n + conns))" 2)"
    lost1="$(metric "$sport" variantd_track_lost_total)"
    ev1="$(redis_events "$rport" product_view)"
    stop "$VD_PID"
    # Applied = counted in the profiles by Redis; the conns track requests
    # that close the run are events too.
    local applied=$((ev1 - ev0 - conns))
    row profiles "track notifications" "$r" "$(kv rps "$line")" nan nan nan "$(kv errors "$line")" "$cpu" \
        "sent=$n applied=$applied lost=$((n - applied)) lost_counted=$(awk -v a="$lost0" -v b="$lost1" 'BEGIN{print b - a}') redis_cmds_per_track=$cmds redis_inner_per_track=$inner visitors=$PVISITORS"
}
profiles_round() {
    local r="$1" rport rpid
    if ! command -v redis-server >/dev/null; then
        log "skipped: no redis-server (profiles)"
        return 0
    fi
    rport="$(free_port)"
    "${STORE_PIN[@]}" redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize no \
        --dir "$OUT" --logfile "$OUT/redis-profiles.log" &
    rpid=$!; PIDS+=("$rpid"); wait_tcp "$rport"
    prof_run "$r" "decide 5 slots, profiles off" "$PAGE_P5" 0 "$rport" 0
    prof_run "$r" "decide 5 slots (2 visitor.*), profiles on" "$PAGE_P5" 1 "$rport" 1
    prof_run "$r" "decide 3 slots, profiles off" "$PAGE_P3" 0 "$rport" 0
    prof_run "$r" "decide 3 slots (no visitor.*), profiles on" "$PAGE_P3" 1 "$rport" 0
    track_run "$r" "$rport"
    stop "$rpid"
}

for r in $(seq 1 "$ROUNDS"); do
    if want tcp; then log "round $r/$ROUNDS: TCP vs redis"; tcp_round "$r"; fi
    if want http; then log "round $r/$ROUNDS: HTTP vs nginx"; http_round "$r"; fi
    if want scale; then log "round $r/$ROUNDS: scale"; scale_round "$r"; fi
    if want shapes; then log "round $r/$ROUNDS: shapes x pages"; shapes_round "$r"; fi
    if want swap; then log "round $r/$ROUNDS: live swap"; swap_round "$r"; fi
    if want profiles; then log "round $r/$ROUNDS: profiles"; profiles_round "$r"; fi
done
/usr/bin/python3 "$ROOT/tests/bench/summarize.py" "$RESULTS" | tee "$OUT/summary.md"
