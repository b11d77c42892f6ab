"""A real Varnish (Debian package) in front of a small origin, using the
example VCL docs/varnish.vcl: Varnish asks variantd for the visitor's
variant (never caching that answer), caches the page once per variant, and
keeps it until the decision's valid_until (X-Variant-Max-Age)."""
import http.client
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT, free_port, wait_for, write_defs

VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
VARNISHSTAT = shutil.which("varnishstat") or "/usr/bin/varnishstat"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")


class Origin:
    """The site: renders the variant Varnish names, counts what it renders."""

    def __init__(self):
        self.fetches = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                v = self.headers.get("X-Variant-home-hero", "none")
                origin.fetches.append((self.path, v, self.headers.get("Cookie")))
                body = f"<h1>page {v}</h1>\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Set-Cookie", "session=should-not-be-cached")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def vcl(tmp_path, edge_port, origin_port):
    text = (ROOT / "docs" / "varnish.vcl").read_text()
    a = '.host = "127.0.0.1";\n    .port = "7701";'
    b = '.host = "127.0.0.1";\n    .port = "8081";'
    assert a in text and b in text
    text = text.replace(a, f'.host = "127.0.0.1";\n    .port = "{edge_port}";')
    text = text.replace(b, f'.host = "127.0.0.1";\n    .port = "{origin_port}";')
    p = tmp_path / "site.vcl"
    p.write_text(text)
    return p


def get(port, headers, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        c.close()


def varnishstat(workdir, field):
    r = subprocess.run([VARNISHSTAT, "-n", str(workdir), "-1", "-f", field], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == field:
            return int(parts[1])
    raise AssertionError(r.stdout)


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


def test_varnish_caches_the_page_per_variant_until_valid_until(tmp_path, origin, start_daemon):
    if not os.path.exists(VARNISHD):
        pytest.fail("varnishd missing (Debian package varnish: scripts/deps.sh test)")
    # hero-campaign until T (a few seconds from now): valid_until = T, so the
    # page object expires then and the next visitor gets the next variant.
    until = int(time.time()) + 6
    seg, cm = write_defs(tmp_path, [
        {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
        {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
        {"id": "campaign", "match": {"attr": "time.utc", "op": "lt", "value": until}},
    ], [
        {"slot": "home.hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                                        {"segment": "mobile", "variant": "hero-mobile"},
                                        {"segment": "campaign", "variant": "hero-campaign"}],
         "default": "hero-generic",
         "variants": {v: None for v in ["hero-berlin", "hero-mobile", "hero-campaign",
                                        "hero-generic"]}},
    ])
    d = start_daemon("--http-max-age", "600", segments=seg, content_map=cm, http=True,
                     stats=True)
    port = free_port()
    workdir = tmp_path / "varnish"
    workdir.mkdir()
    log = open(tmp_path / "varnishd.log", "wb")
    proc = subprocess.Popen([VARNISHD, "-F", "-j", "none", "-n", str(workdir),
                             "-a", f"127.0.0.1:{port}", "-T", f"127.0.0.1:{free_port()}",
                             "-f", str(vcl(tmp_path, d.http_port, origin.port)),
                             "-s", "malloc,16m", "-p", "thread_pools=1", "-p", "thread_pool_min=5",
                             "-p", "shortlived=0"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "varnishd.log").read_text()
            try:
                get(port, {"User-Agent": DESKTOP}, path="/warmup")
                break
            except OSError:
                assert time.time() < deadline, "varnishd did not start"
                time.sleep(0.1)
        origin.fetches.clear()
        hits0 = varnishstat(workdir, "MAIN.cache_hit")

        berlin = {"X-Forwarded-For": "1.0.0.7", "User-Agent": DESKTOP, "Cookie": "vid=a"}
        newyork_phone = {"X-Forwarded-For": "2.0.0.1", "User-Agent": IPHONE, "Cookie": "vid=b"}
        other_phone = {"X-Forwarded-For": "9.9.9.9", "User-Agent": IPHONE, "Cookie": "vid=c"}
        elsewhere = {"X-Forwarded-For": "9.9.9.9", "User-Agent": DESKTOP, "Cookie": "vid=d"}

        # Different contexts, different pages.
        st, h, body = get(port, berlin)
        assert (st, body, h["x-variant"], h["x-cache"]) == (200, "<h1>page hero-berlin</h1>\n",
                                                           "hero-berlin", "MISS")
        assert "set-cookie" not in h
        st, h, body = get(port, newyork_phone)
        assert (body, h["x-cache"]) == ("<h1>page hero-mobile</h1>\n", "MISS")
        # Another visitor with the same variant shares the cached page.
        st, h, body = get(port, other_phone)
        assert (body, h["x-cache"]) == ("<h1>page hero-mobile</h1>\n", "HIT")
        st, h, body = get(port, elsewhere)
        assert (body, h["x-cache"]) == ("<h1>page hero-campaign</h1>\n", "MISS")
        ttl = int(h["cache-control"].removeprefix("private, max-age="))
        assert 0 < ttl <= until - int(time.time()) + 1
        st, h, body = get(port, elsewhere)
        assert (body, h["x-cache"]) == ("<h1>page hero-campaign</h1>\n", "HIT")
        # A visitor cannot pick a variant by sending the header.
        st, h, body = get(port, dict(elsewhere, **{"X-Variant-home-hero": "hero-berlin"}))
        assert body == "<h1>page hero-campaign</h1>\n"
        assert [f[1] for f in origin.fetches] == ["hero-berlin", "hero-mobile", "hero-campaign"]
        assert all(f[2] is None for f in origin.fetches)       # no cookie reaches the origin
        # varnishd adds a worker's counters to MAIN.* when its task ends,
        # which may be just after the response went out: poll briefly.
        assert wait_for(lambda: varnishstat(workdir, "MAIN.cache_hit") - hits0 == 3, timeout=5), \
            varnishstat(workdir, "MAIN.cache_hit") - hits0
        # Every page view was one decision: the decisions were never cached.
        m = d.metrics()
        assert m['variantd_requests_total{interface="edge",outcome="ok"}'] == 7

        # valid_until passes: the campaign object has expired, the same
        # visitor now gets (and the cache now holds) the default page.
        while time.time() < until + 0.5:
            time.sleep(0.1)
        st, h, body = get(port, elsewhere)
        assert (body, h["x-cache"]) == ("<h1>page hero-generic</h1>\n", "MISS")
        # The Berlin page does not depend on time: still cached (http-max-age 600).
        st, h, body = get(port, berlin)
        assert (body, h["x-cache"]) == ("<h1>page hero-berlin</h1>\n", "HIT")

        # variantd gone: the default page, not an error.
        d.stop()
        st, h, body = get(port, berlin)
        assert st == 200 and body == "<h1>page hero-generic</h1>\n", (st, body)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
