#!/usr/bin/env bash
# swap.sh — one live swap under load, as `make bench` section 4 measures it:
#
#   tests/bench/swap.sh FROM_SET TO_SET TRAFFIC [BUILD]
#
# FROM_SET and TO_SET are folders with segments/ and content-map/ (say
# build/bench/shape-nested-1000 and build/bench/shape-nested-10000). A daemon
# (unpinned, default workers: the control thread compiles next to busy
# workers, as in production) serves FROM_SET while variantd-bench drives 50
# connections over the TRAFFIC model; TO_SET's files are renamed into place
# and a poller (swap_poll.py) sends SIGHUP itself, then opens 16 fresh
# connections at once (spread over the workers by SO_REUSEPORT), round after
# round, until all of them answer `ping` with a new version. Prints one line:
#
#   SWAP swap_ms=… compile_ms=… errors=… rps=… p99_us=… p999_us=… rss_kb=…
#
# swap_ms: SIGHUP to every worker serving the new set; compile_ms: the
# daemon's own "compiled in" figure for the reload (files read + compile);
# errors: failed decisions of the load during the whole run. Loopback only;
# every process started here is stopped by its pid. SWAP_ARGS adds daemon
# flags (say SWAP_ARGS="--compile-nice 0" to compare priorities).
set -euo pipefail
FROM="$1" TO="$2" TRAFFIC="$3"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${4:-$ROOT/build}"
SECS="${SWAP_SECONDS:-3}"
WORK="$(mktemp -d /tmp/vd-swap.XXXXXX)"
VD_PID="" BPID=""
cleanup() {
    for p in "$BPID" "$VD_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "${SWAP_KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
    return 0
}
trap cleanup EXIT
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then CLI_PIN=(taskset -c 1); else CLI_PIN=(); fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

mkdir -p "$WORK/live"
cp -r "$FROM/segments" "$FROM/content-map" "$WORK/live/"
PORT="$(free_port)"
geo=()
[ -f "$BUILD/demo-city.mmdb" ] && geo=(--geoip-db "$BUILD/demo-city.mmdb")
"$BUILD/variantd" --listen "127.0.0.1:$PORT" --segments "$WORK/live/segments" \
    --content-map "$WORK/live/content-map" "${geo[@]}" ${SWAP_ARGS:-} --log-level info >"$WORK/variantd.log" 2>&1 &
VD_PID=$!
wait_tcp "$PORT"
v0="$("$BUILD/variantctl" ping --connect "127.0.0.1:$PORT" | sed -n 's/.*"version": "\(.*\)".*/\1/p')"
"${CLI_PIN[@]}" "$BUILD/variantd-bench" --connect "127.0.0.1:$PORT" -c 50 -d $((SECS + 2)) --warmup 0 \
    --contexts "$TRAFFIC" --slots slot00,slot01 --quiet >"$WORK/bench.txt" &
BPID=$!
sleep 1
for d in segments content-map; do
    for f in "$TO/$d"/*.json; do
        cp "$f" "$WORK/live/$d/.$(basename "$f").tmp"
        mv "$WORK/live/$d/.$(basename "$f").tmp" "$WORK/live/$d/$(basename "$f")"
    done
done
swap_ms="$(/usr/bin/python3 "$ROOT/tests/bench/swap_poll.py" "$PORT" "$v0" "$VD_PID")"
wait "$BPID" || true
BPID=""
line="$(grep BENCH_RESULT "$WORK/bench.txt" || true)"
rss="$(awk '$1=="VmRSS:"{print $2}' "/proc/$VD_PID/status")"
# The second "ruleset … compiled in" line is the reload's (the first, start-up's).
compile_ms="$(sed -n 's/.*ruleset .* compiled in \([0-9.]*\) ms.*/\1/p' "$WORK/variantd.log" | sed -n 2p)"
echo "SWAP swap_ms=$swap_ms compile_ms=${compile_ms:-nan} errors=$(kv errors "$line") rps=$(kv rps "$line")" \
     "p99_us=$(kv p99_us "$line") p999_us=$(kv p999_us "$line") rss_kb=$rss"
