#!/usr/bin/env bash
# variantd-sim against two daemons sharing one throwaway redis-server (part of
# make bench): three arms with true rates 2 %, 5 % and 20 %, bandit-interval
# 1 s. Prints counted vs truth (must be equal) and the conversions of the
# bandit against an even split of the same visitors.
#   SIM_VISITORS=N (default 20000; BENCH_QUICK=1: 6000)   SIM_PACE=V/s (default 1000)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${VARIANTD_BUILD:-$ROOT/build}"
OUT="$BUILD/bench"
mkdir -p "$OUT"
VISITORS="${SIM_VISITORS:-$([ "${BENCH_QUICK:-0}" = 1 ] && echo 6000 || echo 20000)}"
PACE="${SIM_PACE:-1000}"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; return 0; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 did not open" >&2; return 1; }

RPORT="$(free_port)"
RDIR="$(mktemp -d)"
/usr/bin/redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RDIR" >"$OUT/sim-redis.log" 2>&1 &
PIDS+=($!)
wait_tcp "$RPORT"
CONNECT=()
for _ in 1 2; do
    P="$(free_port)"
    "$BUILD/variantd" --listen "127.0.0.1:$P" --segments "$ROOT/tests/bench/sim/segments" \
        --content-map "$ROOT/tests/bench/sim/content-map" --profiles "redis://127.0.0.1:$RPORT/0" --profile-key-secret 00112233445566778899aabbccddeeff \
        --bandit-interval 1 --bandit-min-exposures 100 --bandit-floor 0.05 --workers 1 \
        --log-level warn >>"$OUT/sim-variantd.log" 2>&1 &
    PIDS+=($!)
    wait_tcp "$P"
    CONNECT+=(--connect "127.0.0.1:$P")
done
"$BUILD/variantd-sim" "${CONNECT[@]}" --redis "redis://127.0.0.1:$RPORT/0" --slot sim.hero \
    --rate a=0.02 --rate b=0.05 --rate c=0.20 --visitors "$VISITORS" --pace "$PACE" --views 2 \
    --threads 4 --delay 0.2 | tee "$OUT/sim.txt"
rm -rf "$RDIR"
