#!/usr/bin/env bash
# tests/bench/syscalls.sh [P] — system calls per request of the decision port
# and of Redis GET under the same client (docs/PERFORMANCE.md, "The decision
# port against Redis"). Needs what `make bench` generated in build/bench (the
# reference set, the traffic model), strace and redis-server. For each
# system: a server on CPU 0 (variantd: --workers 1, slot hero), 1 s of
# `variantd-bench -c 50 -P P` to warm up, then `strace -c -f` attached for
# the whole of a 2 s run; prints each call's count divided by the run's
# requests. Loopback only; every server started here is stopped by its pid.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
B="$ROOT/build"
OUT="$B/bench"
P="${1:-1}"
"$ROOT/scripts/deps.sh" bench     # strace, redis-server
PIN0=(); PIN1=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN0=(taskset -c 0); PIN1=(taskset -c 1); fi
for f in "$OUT/set-ref/segments" "$OUT/traffic.tsv" "$B/variantd-bench"; do
    [ -e "$f" ] || { echo "syscalls.sh: $f missing (run make bench first)" >&2; exit 1; }
done
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
TMP="$(mktemp -d)"
SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$TMP"; return 0; }
trap cleanup EXIT
for sys in redis variantd; do
    port="$(free_port)"
    if [ "$sys" = redis ]; then
        "${PIN0[@]}" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
            --daemonize no --dir "$TMP" --logfile "$TMP/redis.log" &
        how=(--method redis-get)
    else
        "${PIN0[@]}" "$B/variantd" --listen "127.0.0.1:$port" --segments "$OUT/set-ref/segments" \
            --content-map "$OUT/set-ref/content-map" --geoip-db "$B/demo-city.mmdb" \
            --log-level warn --workers 1 >"$TMP/variantd.log" 2>&1 &
        how=(--slots hero)
    fi
    SPID=$!
    wait_tcp "$port"
    run() { "${PIN1[@]}" "$B/variantd-bench" --connect "127.0.0.1:$port" "${how[@]}" -c 50 -P "$P" \
                -d "$1" --warmup 0 --contexts "$OUT/traffic.tsv" --quiet; }
    run 1 >/dev/null
    strace -c -f -p "$SPID" -o "$TMP/strace" 2>/dev/null &
    tpid=$!
    sleep 0.5
    line="$(run 2 | grep BENCH_RESULT)"
    kill -INT "$tpid"; wait "$tpid" 2>/dev/null || true
    kill "$SPID"; wait "$SPID" 2>/dev/null || true
    SPID=""
    n="$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')"
    echo "$sys -P$P: $n requests"
    # strace -c: % time, seconds, usecs/call, calls, [errors,] syscall
    awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $NF != "syscall" {
        printf "  %-14s %10d  %.4f a request\n", $NF, $4, $4 / n }' "$TMP/strace"
done
