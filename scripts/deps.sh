#!/bin/sh
# Installs the Debian packages a target needs, only those missing.
# usage: scripts/deps.sh build|run|test|bench
# The machine may have only gcc, make and apt: every other tool comes from here.
set -eu
BUILD="make gcc pkg-config libhttp-parser-dev libevent-dev libhiredis-dev libmsgpack-dev libmaxminddb-dev libjansson-dev libpsl-dev libsystemd-dev libpcre2-dev tzdata libmaxmind-db-writer-perl perl"
RUN="$BUILD redis-server redis-tools"
TEST="$BUILD libcmocka-dev python3 python3-pytest python3-msgpack python3-redis redis-server redis-tools nutcracker nginx varnish mmdb-bin libclang-rt-14-dev clang-14 systemd chromium nodejs php-cli php-msgpack phpunit php-fpm php-mysql mariadb-server wordpress redis-sentinel"
BENCH="$TEST wrk valgrind strace libnginx-mod-http-geoip2 nodejs curl"
case "${1:-build}" in
  build) want="$BUILD" ;;
  run)   want="$RUN" ;;
  test)  want="$TEST" ;;
  bench) want="$BENCH" ;;
  *) echo "usage: $0 build|run|test|bench" >&2; exit 2 ;;
esac
# The dashboard test drives Chromium with playwright-core from npm. A NodeSource
# nodejs ships its own npm and conflicts with Debian's: add npm only if absent.
if [ "${1:-build}" != build ] && [ "${1:-build}" != run ] && ! command -v npm >/dev/null 2>&1; then
  want="$want npm"
fi
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
# Quiet on success, the whole apt output on failure.
# Wait for a concurrent apt/dpkg (another checkout installing) instead of failing.
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600"
if ! { $APT update -qq && $APT install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "deps: apt-get failed (see above)" >&2
  exit 1
fi
rm -f "$log"
echo "deps: installed:$missing" >&2
