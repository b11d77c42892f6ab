#!/bin/sh
# make run: serves the example definitions on loopback: the decision port
# (PORT), the edge port (PORT+1) and the stats port with the dashboard
# (PORT+2). When redis-server is installed (scripts/deps.sh run installs it),
# a private one (loopback, a temporary directory, no persistence) holds the
# visitor profiles and is stopped with the daemon.
# usage: scripts/run-demo.sh BUILD_DIR DEMO_DB [PORT]
set -eu
BUILD="$1"
DB="$2"
PORT="${3:-7700}"
EDGE=$((PORT + 1))
STATS=$((PORT + 2))
set -- --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$EDGE" --stats-listen "127.0.0.1:$STATS" \
       --segments segments --content-map content-map --scores scores --geoip-db "$DB"
echo ""
echo "variantd (Ctrl-C stops it):"
echo "  decision port  127.0.0.1:$PORT   MessagePack-RPC (docs/PROTOCOL.md)"
echo "  edge port      127.0.0.1:$EDGE   HTTP GET/POST /v1/decide"
echo "  stats port     127.0.0.1:$STATS   dashboard: http://127.0.0.1:$STATS/   (/metrics, /stats)"
echo ""
echo "In another terminal, try (1.0.0.x is Berlin, 2.0.0.x New York in the demo GeoIP database):"
echo "  UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'"
echo "  curl -i 'http://127.0.0.1:$EDGE/v1/decide?slot=home.hero&slot=home.banner' -A \"\$UA\" -H 'X-Forwarded-For: 1.0.0.7'"
echo "  curl -s -X POST http://127.0.0.1:$EDGE/v1/decide -d '{\"slots\": [\"home.hero\"], \"ip\": \"2.0.0.1\", \"vid\": \"visitor-1\"}'"
echo "  $BUILD/variantctl explain --connect 127.0.0.1:$PORT --ip 1.0.0.7 --ua \"\$UA\" \\"
echo "    --referer https://www.google.com/ --slot home.hero --slot home.banner"
echo "  open http://127.0.0.1:$STATS/ for the dashboard"
if command -v redis-server >/dev/null 2>&1; then
  dir="$(mktemp -d)"
  rport=6390
  while [ "$rport" -lt 6490 ] && (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null; do
    rport=$((rport + 1))
  done 2>/dev/null || true
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  i=0
  while [ ! -s "$dir/redis.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  cleanup() {
    [ -s "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    sleep 0.2
    rm -rf "$dir"
  }
  trap cleanup EXIT INT TERM
  secret="$("$BUILD/variantctl" secret)"
  set -- "$@" --profiles "redis://127.0.0.1:$rport/0" --profile-key-secret "$secret"
  C="--connect 127.0.0.1:$PORT"
  echo ""
  echo "Profiles: a private redis-server on 127.0.0.1:$rport ($dir), stopped with the daemon."
  echo "A visitor who consents; a decide, two tracked events, the same decide again:"
  echo "  $BUILD/variantctl decide $C --vid demo-1 --consent personalization --slot home.promo   # promo-newcomer"
  echo "  $BUILD/variantctl track add_to_cart $C --vid demo-1 --category sneakers --consent personalization"
  echo "  $BUILD/variantctl track add_to_cart $C --vid demo-1 --category sneakers --consent personalization"
  echo "  $BUILD/variantctl explain $C --vid demo-1 --consent personalization --slot home.promo  # promo-sneakers"
  echo "  $BUILD/variantctl profile flag critical_ticket $C --vid demo-1 --ttl 3600   # support case: no promotion"
  echo "  $BUILD/variantctl profile show $C --vid demo-1"
  echo "  $BUILD/variantctl profile forget $C --vid demo-1"
else
  echo ""
  echo "(redis-server not installed: profiles are off; scripts/deps.sh run installs it)"
fi
echo ""
"$BUILD/variantd" "$@"
