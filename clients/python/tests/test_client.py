"""variantd_client against the real daemon: the sync Client and the asyncio
AsyncClient behave alike (decide, explain, track, defaults within the budget,
one retry on a dead connection, reconnect after idle-timeout and restart)."""
import asyncio
import socket
import threading
import time

import pytest

from variantd_client import AsyncClient, Client

DEFAULTS = {"home.hero": {"variant": "hero-fallback", "payload": {"t": "fallback"}}, "ab": "ab-a"}
FALLBACK = {"variant": "hero-fallback", "payload": {"t": "fallback"}, "segment": None}


class SyncAdapter:
    """The same test body for both clients: calls are awaited or not."""

    def __init__(self, **kw):
        self.c = Client(**kw)

    def __getattr__(self, name):
        f = getattr(self.c, name)
        return lambda *a: f(*a)


class AsyncAdapter:
    def __init__(self, **kw):
        self.loop = asyncio.new_event_loop()
        self.c = AsyncClient(**kw)

    def __getattr__(self, name):
        f = getattr(self.c, name)
        return lambda *a: self.loop.run_until_complete(f(*a))

    def close(self):
        self.loop.run_until_complete(self.c.close())
        self.loop.close()


@pytest.fixture(params=["sync", "asyncio"])
def make_client(request):
    made = []

    def make(**kw):
        c = (SyncAdapter if request.param == "sync" else AsyncAdapter)(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def wait_metric(d, key, want, timeout=5):
    deadline = time.time() + timeout
    while True:
        v = d.metrics().get(key)
        if v == want or time.time() > deadline:
            return v
        time.sleep(0.02)


def test_decide_explain_and_errors(start_daemon, make_client):
    d = start_daemon()
    c = make_client(port=d.port, budget=2.0, defaults=DEFAULTS)
    r = c.decide({"slots": ["home.hero", "nope"], "vid": "v-1", "attrs": {"tier": "gold"}})
    assert r["ok"] is True
    assert r["slots"]["home.hero"] == {"variant": "hero-gold", "payload": {"t": "gold"}, "segment": "gold"}
    assert r["slots"]["nope"] == {"variant": None, "payload": None, "segment": None}
    assert r["version"].startswith("f-")
    x = c.explain({"slots": ["home.hero"], "attrs": {"tier": "silver"}})
    assert x["ok"] and x["slots"]["home.hero"]["variant"] == "hero-generic"
    assert x["context"]["attr.tier"] == "silver" and "home.hero" in x["trace"]
    # bytes are sent as bin and read as strings by the daemon
    b = c.decide({"slots": ["home.hero"], "attrs": {"tier": b"gold"}})
    assert b["slots"]["home.hero"]["variant"] == "hero-gold"
    bad = c.decide({"slots": ["home.hero"], "ts": "yesterday"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_params"
    assert bad["slots"]["home.hero"] == FALLBACK
    assert c.ping()["pong"] is True


def test_track_is_a_notification(start_daemon, make_client):
    d = start_daemon()
    c = make_client(port=d.port, budget=2.0)
    assert c.track({"vid": "v-1", "event": "purchase", "value": 42.5}) is True
    assert c.track({"vid": "v-1", "event": "signup"}) is True
    assert wait_metric(d, 'variantd_rpc_calls_total{method="notification"}', 2) == 2
    assert c.decide({"slots": ["ab"], "vid": "v-1"})["ok"] is True


def test_idle_timeout_and_restart_cost_no_failed_call(start_daemon, make_client):
    d = start_daemon(args=("--idle-timeout", "1"))
    c = make_client(port=d.port, budget=2.0)
    assert c.decide({"slots": ["home.hero"]})["ok"] is True
    time.sleep(1.6)          # the daemon closes the idle persistent connection
    r = c.decide({"slots": ["home.hero"]})
    assert r["ok"] is True, r.get("error")
    assert d.metrics()['variantd_connections_total{interface="rpc",event="closed_idle"}'] >= 1
    port, stats = d.port, d.stats_port
    assert d.stop() == 0
    d2 = start_daemon(port=port, stats_port=stats)
    r = c.decide({"slots": ["home.hero"], "attrs": {"tier": "gold"}})
    assert r["ok"] is True, r.get("error")
    assert r["slots"]["home.hero"]["variant"] == "hero-gold"
    assert d2.port == port


class DropFirst:
    """A proxy whose first connection reads a frame and closes without an
    answer (a daemon restarting under the call); later ones reach the daemon."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.accepted = 0
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stopped:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:
                s.recv(65536)
                s.close()
                continue
            up = socket.create_connection(("127.0.0.1", self.upstream))
            for a, b in ((s, up), (up, s)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.srv.close()


def test_a_dead_connection_is_retried_once(start_daemon, make_client):
    d = start_daemon()
    p = DropFirst(d.port)
    try:
        c = make_client(port=p.port, budget=2.0)
        r = c.decide({"slots": ["home.hero"], "attrs": {"tier": "gold"}})
        assert r["ok"] is True, r.get("error")
        assert r["slots"]["home.hero"]["variant"] == "hero-gold"
        assert p.accepted == 2
    finally:
        p.close()


def test_defaults_within_the_budget(make_client):
    with socket.socket() as s:       # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errors = []

    def logger(e):
        errors.append(e["code"])
        raise RuntimeError("a logger that fails")

    c = make_client(port=port, defaults=DEFAULTS, on_error=logger)
    t0 = time.monotonic()
    r = c.decide({"slots": ["home.hero", "ab"]})
    assert time.monotonic() - t0 < 1.0
    assert r["ok"] is False and r["error"]["code"] == "unavailable"
    assert r["slots"] == {"home.hero": FALLBACK, "ab": {"variant": "ab-a", "payload": None, "segment": None}}
    assert c.track({"event": "x"}) is False
    assert errors == ["unavailable", "unavailable"]

    # Accepts, never answers: the 50 ms budget holds.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        c = make_client(port=silent.getsockname()[1], defaults=DEFAULTS)
        t0 = time.monotonic()
        r = c.decide({"slots": ["home.hero"]})
        took = time.monotonic() - t0
        assert r["ok"] is False and r["error"]["code"] == "timeout"
        assert r["slots"]["home.hero"] == FALLBACK
        assert 0.045 <= took < 1.0, took
    finally:
        silent.close()


def test_async_calls_are_pipelined_on_one_connection(start_daemon):
    d = start_daemon()

    async def main():
        c = AsyncClient(port=d.port, budget=2.0)
        try:
            res = await asyncio.gather(*[
                c.decide({"slots": ["home.hero"], "attrs": {"tier": "gold" if i % 2 else "none"}})
                for i in range(20)])
            return [r["slots"]["home.hero"]["variant"] for r in res]
        finally:
            await c.close()

    key = 'variantd_connections_total{interface="rpc",event="accepted"}'
    before = d.metrics()[key]              # the harness's readiness probe
    got = asyncio.run(main())
    assert got == ["hero-gold" if i % 2 else "hero-generic" for i in range(20)]
    assert d.metrics()[key] - before == 1
