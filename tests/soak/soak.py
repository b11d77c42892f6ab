#!/usr/bin/python3
"""Soak test: variantd in Redis mode under mixed load for N minutes while its
environment misbehaves, printing one line a minute; fails on any error or on
memory / fd growth.

    make soak                      # 30 minutes (SOAK_MINUTES=N to change)
    /usr/bin/python3 tests/soak/soak.py --build build --minutes 2

Load, all at once, against one daemon with 2 workers:
  * 2 clients doing one `decide` at a time (their latencies give the p99),
    1 client pipelining batches of 64 `decide`s;
  * 1 edge-port client (GET /v1/decide, keep-alive) and 1 stats-port client
    (GET /metrics, /healthz);
  * clients that disconnect mid-reply: 200 pipelined decides, read a little,
    close; an HTTP request closed before its answer is read;
and around it:
  * a release published every 10 s (variantctl publish, alternating sets);
  * Redis restarted (SIGTERM, it saves and reloads its RDB) every
    --redis-restart seconds (120 by default);
  * a SIGHUP every 15 s.

An error is: a decide answered with an error or a version never published,
a client connection of the steady clients refused / reset / closed, an edge
or stats answer that is not 200, an `error:` line in the daemon's log, the
daemon exiting. Growth is: RSS at the end above 1.25 x the end-of-first-
minute RSS + 8 MB, or more than 8 fds above the first minute's count.
"""
import argparse
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import msgpack  # noqa: E402

from conftest import RedisServer, free_port, publish, write_defs  # noqa: E402


class Stats:
    def __init__(self):
        self.mu = threading.Lock()
        self.reset()
        self.errors_total = 0
        self.error_samples = []

    def reset(self):
        self.lat = []
        self.decides = self.edge = self.stats = self.drops = 0
        self.publishes = self.restarts = self.hups = self.errors = 0

    def add(self, **kw):
        with self.mu:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, what):
        with self.mu:
            self.errors += 1
            self.errors_total += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{time.strftime('%H:%M:%S')} {what}")

    def take(self):
        with self.mu:
            snap = dict(lat=self.lat, decides=self.decides, edge=self.edge, stats=self.stats,
                        drops=self.drops, publishes=self.publishes, restarts=self.restarts,
                        hups=self.hups, errors=self.errors)
            self.reset()
            return snap


STOP = threading.Event()
ST = Stats()
VERSIONS = set()
VLOCK = threading.Lock()


def known(v):
    with VLOCK:
        return v in VERSIONS


def defs(tmp, i):
    seg = [{"id": "everyone", "match": {"all": []}},
           {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
           {"id": "spam", "match": {"attr": "url.path", "op": "contains",
                                    "value": [f"term-{k}" for k in range(200)]}}]
    seg += [{"id": f"c{k}", "match": {"attr": "attr.tier", "op": "eq", "value": f"t{k}"}}
            for k in range(100)]
    cm = [{"slot": "hero", "rules": [{"segment": "spam", "variant": "spam"},
                                     {"segment": "mobile", "variant": "m"},
                                     {"segment": "everyone", "variant": f"v{i % 2}"}],
           "default": "d", "variants": {"spam": None, "m": {"x": 1}, "v0": {"n": 0},
                                        "v1": {"n": 1}, "d": None}}]
    return write_defs(tmp, seg, cm, name=f"set{i % 2}")


def decide_req(msgid):
    return [0, msgid, "decide", [{"slots": ["hero"], "vid": str(msgid),
                                   "url": f"https://x.example/p/{msgid % 97}/term-{msgid % 300}",
                                   "attrs": {"tier": f"t{msgid % 120}"}}]]


UNSEEN = set()      # versions answered before the publisher recorded them


def check_reply(r):
    if r[2] is not None:
        ST.error(f"decide error {r[2]}")
    elif not known(r[3]["version"]):
        with VLOCK:
            UNSEEN.add(r[3]["version"])


def prober(port):
    """One decide at a time: the latency sample."""
    packer = msgpack.Packer(use_bin_type=True)
    while not STOP.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            un = msgpack.Unpacker(raw=False, strict_map_key=False)
            msgid = 0
            while not STOP.is_set():
                msgid += 1
                t = time.monotonic()
                s.sendall(packer.pack(decide_req(msgid)))
                r = None
                while r is None:
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError("closed by the daemon")
                    un.feed(data)
                    for r in un:
                        break
                dt = time.monotonic() - t
                check_reply(r)
                with ST.mu:
                    ST.lat.append(dt)
                    ST.decides += 1
                time.sleep(0.002)
            s.close()
        except OSError as e:
            if not STOP.is_set():
                ST.error(f"prober: {e!r}")
                time.sleep(0.5)


def pipeliner(port):
    packer = msgpack.Packer(use_bin_type=True)
    while not STOP.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            un = msgpack.Unpacker(raw=False, strict_map_key=False)
            msgid = 0
            while not STOP.is_set():
                batch = b"".join(packer.pack(decide_req(msgid + k)) for k in range(64))
                msgid += 64
                s.sendall(batch)
                got = 0
                while got < 64:
                    data = s.recv(1 << 16)
                    if not data:
                        raise ConnectionError("closed by the daemon")
                    un.feed(data)
                    for r in un:
                        got += 1
                        check_reply(r)
                ST.add(decides=64)
                time.sleep(0.01)
            s.close()
        except OSError as e:
            if not STOP.is_set():
                ST.error(f"pipeliner: {e!r}")
                time.sleep(0.5)


def http_loop(port, paths, counter):
    while not STOP.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while not STOP.is_set():
                for p in paths:
                    c.request("GET", p, headers={"User-Agent": "soak", "Cookie": "vid=42"})
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        ST.error(f"GET {p}: {r.status}")
                    ST.add(**{counter: 1})
                time.sleep(0.02 if counter == "edge" else 0.5)
            c.close()
        except (OSError, http.client.HTTPException) as e:
            if not STOP.is_set():
                ST.error(f"{counter}: {e!r}")
                time.sleep(0.5)


def dropper(port, http_port):
    """Clients that go away mid-reply. Their own failures are expected."""
    packer = msgpack.Packer(use_bin_type=True)
    n = 0
    while not STOP.is_set():
        n += 1
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"".join(packer.pack(decide_req(k)) for k in range(200)))
            s.recv(random.choice((1, 100, 4000)))
            if n % 2:   # an abortive close (RST) every other time
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            h = socket.create_connection(("127.0.0.1", http_port), timeout=5)
            h.sendall(b"GET /v1/decide?slot=hero HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
            h.close()
            ST.add(drops=1)
        except OSError:
            pass
        time.sleep(0.2)


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def p99(xs):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--redis-restart", type=float, default=120, help="seconds between Redis restarts")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    os.environ["VARIANTD_BUILD"] = a.build
    build = ROOT / a.build
    import tempfile
    tmp = Path(a.dir or tempfile.mkdtemp(prefix="variantd-soak-"))
    redis = RedisServer(tmp, extra=["--save", "3600 1"]).start()
    d = None
    try:
        v = publish(redis.url, *defs(tmp, 0))
        VERSIONS.add(v)
        port, hport, sport = free_port(), free_port(), free_port()
        log_path = tmp / "variantd.log"
        log = open(log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        d = subprocess.Popen([str(build / "variantd"), "--listen", f"127.0.0.1:{port}",
                              "--http-listen", f"127.0.0.1:{hport}",
                              "--stats-listen", f"127.0.0.1:{sport}",
                              "--redis", redis.url, "--redis-poll-interval", "500",
                              "--redis-timeout", "1000", "--workers", "2",
                              "--snapshot", str(tmp / "last-good.json")],
                             stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1)
        threads = [threading.Thread(target=prober, args=(port,)) for _ in range(2)]
        threads.append(threading.Thread(target=pipeliner, args=(port,)))
        threads.append(threading.Thread(target=http_loop, args=(
            hport, ["/v1/decide?slot=hero&url=https%3A%2F%2Fx.example%2Fa"], "edge")))
        threads.append(threading.Thread(target=http_loop, args=(sport, ["/metrics", "/healthz"], "stats")))
        threads.append(threading.Thread(target=dropper, args=(port, hport)))
        for t in threads:
            t.start()

        start = time.time()
        nreports = max(1, round(a.minutes))
        every = a.minutes * 60 / nreports
        next_pub, next_restart, next_hup, next_report = start + 10, start + a.redis_restart, start + 15, start + every
        i = 1
        log_seen = 0
        rows = []
        print(f"soak: {a.minutes:g} min, build {a.build}, daemon pid {d.pid}, logs in {tmp}", flush=True)
        print(f"{'min':>4} {'rss_kb':>8} {'fds':>4} {'decides':>8} {'p99_ms':>7} {'edge':>6} {'stats':>5} "
              f"{'drops':>5} {'pubs':>4} {'rst':>3} {'hup':>3} {'errors':>6}", flush=True)
        while len(rows) < nreports and d.poll() is None:
            now = time.time()
            if now >= next_pub:
                next_pub += 10
                try:
                    v = publish(redis.url, *defs(tmp, i), "--message", f"soak {i}")
                    with VLOCK:
                        VERSIONS.add(v)
                    i += 1
                    ST.add(publishes=1)
                except AssertionError:
                    pass      # Redis restarting right now: the next one will do
            if now >= next_restart:
                next_restart += a.redis_restart
                redis.stop()
                time.sleep(1)
                redis.start()
                ST.add(restarts=1)
            if now >= next_hup:
                next_hup += 15
                d.send_signal(signal.SIGHUP)
                ST.add(hups=1)
            if now >= next_report:
                next_report += every
                text = log_path.read_text(errors="replace")
                for line in text[log_seen:].splitlines():
                    if " error: " in line:
                        ST.error(f"log: {line[:200]}")
                log_seen = len(text)
                s = ST.take()
                row = (len(rows) + 1, rss_kb(d.pid), fds(d.pid), s["decides"], p99(s["lat"]), s["edge"],
                       s["stats"], s["drops"], s["publishes"], s["restarts"], s["hups"], s["errors"])
                rows.append(row)
                print(f"{row[0]:>4} {row[1]:>8} {row[2]:>4} {row[3]:>8} {row[4]:>7.2f} {row[5]:>6} {row[6]:>5} "
                      f"{row[7]:>5} {row[8]:>4} {row[9]:>3} {row[10]:>3} {row[11]:>6}", flush=True)
            time.sleep(0.05)
        exited = d.poll()
        STOP.set()
        for t in threads:
            t.join(15)
        if exited is None:
            d.send_signal(signal.SIGTERM)
            try:
                rc = d.wait(20)
            except subprocess.TimeoutExpired:
                d.kill()
                rc = "killed after 20 s"
        else:
            rc = f"exited during the soak with {exited}"
        log.close()
        failures = []
        if rc != 0:
            failures.append(f"daemon: {rc}")
        with VLOCK:
            never = UNSEEN - VERSIONS
        if never:
            failures.append(f"decisions answered by versions never published: {sorted(never)[:5]}")
        if ST.errors_total:
            failures.append(f"{ST.errors_total} errors, first: " + "; ".join(ST.error_samples[:5]))
        if len(rows) >= 2:
            base_rss, base_fds = rows[0][1], rows[0][2]
            last_rss, last_fds = rows[-1][1], rows[-1][2]
            if last_rss > base_rss * 1.25 + 8192:
                failures.append(f"RSS grew from {base_rss} kB to {last_rss} kB")
            if last_fds > base_fds + 8:
                failures.append(f"fds grew from {base_fds} to {last_fds}")
        if not rows or sum(r[3] for r in rows) == 0:
            failures.append("no decisions were made")
        if failures:
            print("soak FAILED:\n  " + "\n  ".join(failures), flush=True)
            print(f"daemon log: {log_path}")
            return 1
        print(f"soak passed: {sum(r[3] for r in rows)} decides, {sum(r[8] for r in rows)} publishes, "
              f"{sum(r[9] for r in rows)} Redis restarts, {sum(r[10] for r in rows)} SIGHUPs, 0 errors")
        return 0
    finally:
        STOP.set()
        if d is not None and d.poll() is None:
            d.kill()
            d.wait()
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
