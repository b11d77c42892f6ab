#!/bin/bash
# CPU per decision of the daemon: the same decide (vid + consent, profiles on) with
# the slot without a goal (p) and with one (g, one exposure per decision). Issue 10's
# goal: g within 10 % of p. usage: tests/bench/goal_cpu.sh (about 40 s)
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
B="${VARIANTD_BUILD:-$ROOT/build}"
D="$ROOT/tests/bench/goal-cpu"
RP=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
RPID=$!
sleep 0.5
HZ=$(getconf CLK_TCK)
for round in 1 2 3; do
for kind in p g; do
  P=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $B/variantd --listen 127.0.0.1:$P --segments $D/$kind/segments --content-map $D/$kind/content-map --workers 1 \
     --profiles redis://127.0.0.1:$RP/0 --profile-key-secret 00112233445566778899aabbccddeeff --log-level warn >/dev/null 2>&1 &
  DP=$!
  sleep 0.5
  $B/variantd-bench --connect 127.0.0.1:$P -c 4 -d 1 --slots hero --visitors 5000 --quiet >/dev/null 2>&1
  T0=$(awk '{print $14+$15}' /proc/$DP/stat)
  OUT=$($B/variantd-bench --connect 127.0.0.1:$P -c 8 -d 4 --slots hero --visitors 5000 2>&1)
  T1=$(awk '{print $14+$15}' /proc/$DP/stat)
  N=$(echo "$OUT" | grep -oE 'requests [0-9]+' | head -1 | grep -oE '[0-9]+')
  echo "$round $kind requests=$N cpu_us_per_decision=$(awk -v d=$((T1-T0)) -v hz=$HZ -v n=$N 'BEGIN{printf "%.2f", d/hz*1e6/n}')"
  kill $DP; wait $DP 2>/dev/null
done
done
kill $RPID; wait $RPID 2>/dev/null
