#!/bin/sh
# make run: serves the example definitions on 127.0.0.1:7700. When
# redis-server is installed (scripts/deps.sh run installs it), a private one
# (loopback, a temporary directory, no persistence) holds the visitor
# profiles and is stopped with the daemon.
# usage: scripts/run-demo.sh BUILD_DIR DEMO_DB
set -eu
BUILD="$1"
DB="$2"
set -- --listen 127.0.0.1:7700 --segments segments --content-map content-map --scores scores \
       --geoip-db "$DB"
if command -v redis-server >/dev/null 2>&1; then
  dir="$(mktemp -d)"
  port=6390
  while [ "$port" -lt 6490 ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done 2>/dev/null || true
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
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
  set -- "$@" --profiles "redis://127.0.0.1:$port/0" --profile-key-secret "$secret"
  echo ""
  echo "profiles: a private redis-server on 127.0.0.1:$port ($dir), stopped with the daemon."
  echo "A visitor who consents; a decide, two tracked events, the same decide again:"
  echo "  $BUILD/variantctl decide --vid demo-1 --consent personalization --slot home.promo   # promo-newcomer"
  echo "  $BUILD/variantctl track add_to_cart --vid demo-1 --category sneakers --consent personalization"
  echo "  $BUILD/variantctl track add_to_cart --vid demo-1 --category sneakers --consent personalization"
  echo "  $BUILD/variantctl explain --vid demo-1 --consent personalization --slot home.promo  # promo-sneakers, visitor.score.sneakers"
  echo "  $BUILD/variantctl profile flag critical_ticket --vid demo-1 --ttl 3600              # support case: no promotion"
  echo "  $BUILD/variantctl profile show --vid demo-1"
  echo "  $BUILD/variantctl profile forget --vid demo-1"
else
  echo "(redis-server not installed: profiles are off; scripts/deps.sh run installs it)"
fi
echo ""
echo "variantd: decision port 127.0.0.1:7700 (Ctrl-C stops it). In another terminal, try:"
echo "  $BUILD/variantctl explain --ip 1.0.0.7 --referer https://www.google.com/ \\"
echo "    --ua 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1' \\"
echo "    --slot home.hero --slot home.banner"
echo ""
"$BUILD/variantd" "$@"
