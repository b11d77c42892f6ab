"""A real nginx (Debian package) in front of variantd, using the example
config docs/nginx-auth-request.conf: visitors with different contexts (city
from X-Forwarded-For, mobile or desktop User-Agent) get different pages."""
import http.client
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT, free_port, write_defs

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")
REDUCED = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Mobile Safari/537.36")
VARIANTS = ["hero-berlin", "hero-mobile", "hero-newyork", "hero-generic"]


def nginx_conf(tmp_path, site, nginx_port, edge_port):
    """The documented example, pointed at this test's ports and folders, inside
    a main config that keeps every file nginx writes under tmp_path."""
    example = (ROOT / "docs" / "nginx-auth-request.conf").read_text()
    example = example.replace("server 127.0.0.1:7701;", f"server 127.0.0.1:{edge_port};")
    example = example.replace("listen 8080;", f"listen 127.0.0.1:{nginx_port};")
    example = example.replace("root /var/www/site;", f"root {site};")
    assert str(site) in example and str(edge_port) in example
    t = tmp_path / "nginx"
    (t / "tmp").mkdir(parents=True)
    user = "user root;\n" if os.geteuid() == 0 else ""   # workers must read tmp_path (0700)
    conf = f"""{user}daemon off;
worker_processes 1;
pid {t}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {t}/tmp/body;
    proxy_temp_path {t}/tmp/proxy;
    fastcgi_temp_path {t}/tmp/fastcgi;
    uwsgi_temp_path {t}/tmp/uwsgi;
    scgi_temp_path {t}/tmp/scgi;
    default_type text/html;
{example}
}}
"""
    p = t / "nginx.conf"
    p.write_text(conf)
    return t, p


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    (site / "variants").mkdir(parents=True)
    for v in VARIANTS:
        (site / "variants" / f"{v}.html").write_text(f"<h1>page {v}</h1>\n")
    return site


def get(port, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/", headers=headers)
        r = c.getresponse()
        get.last_headers = {k.lower(): v for k, v in r.getheaders()}
        return r.status, r.getheader("X-Variant"), r.read().decode()
    finally:
        c.close()


def test_nginx_routes_visitors_to_their_variant(tmp_path, site, start_daemon):
    if not os.path.exists(NGINX):
        pytest.skip("nginx missing (Debian package nginx: scripts/deps.sh test)")
    seg, cm = write_defs(tmp_path, [
        {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
        {"id": "newyork", "match": {"attr": "geo.city", "op": "eq", "value": "New York"}},
        {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
    ], [
        {"slot": "home.hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                                        {"segment": "mobile", "variant": "hero-mobile"},
                                        {"segment": "newyork", "variant": "hero-newyork"}],
         "default": "hero-generic", "variants": {v: None for v in VARIANTS}},
    ])
    d = start_daemon(segments=seg, content_map=cm, http=True, stats=True)
    port = free_port()
    ndir, conf = nginx_conf(tmp_path, site, port, d.http_port)
    log = open(ndir / "nginx.log", "wb")
    proc = subprocess.Popen([NGINX, "-p", str(ndir), "-c", str(conf), "-e", "stderr"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        while True:
            assert proc.poll() is None, (ndir / "nginx.log").read_text()
            try:
                get(port, {})
                break
            except OSError:
                assert time.time() < deadline, "nginx did not start"
                time.sleep(0.05)
        cases = [
            ({"X-Forwarded-For": "1.0.0.7", "User-Agent": DESKTOP}, "hero-berlin"),
            ({"X-Forwarded-For": "1.0.0.7", "User-Agent": IPHONE}, "hero-berlin"),
            ({"X-Forwarded-For": "2.0.0.1", "User-Agent": DESKTOP}, "hero-newyork"),
            ({"X-Forwarded-For": "2.0.0.1", "User-Agent": IPHONE}, "hero-mobile"),
            ({"X-Forwarded-For": "9.9.9.9", "User-Agent": DESKTOP}, "hero-generic"),
            ({"User-Agent": DESKTOP}, "hero-generic"),   # nginx's own peer (loopback) is no visitor
        ]
        for headers, want in cases:
            st, variant, body = get(port, headers)
            assert st == 200, (headers, st, body)
            assert variant == want, (headers, variant)
            assert body == f"<h1>page {want}</h1>\n"
            # The page may be kept by the browser for the decision's lifetime
            # (X-Variant-Max-Age: http-max-age here), never by a shared cache.
            assert get.last_headers["cache-control"] == "private, max-age=60"
        # Every page view was one edge decision, counted by variant.
        m = d.metrics()
        assert m['variantd_slot_decisions_total{slot="home.hero",variant="hero-berlin"}'] == 2
        assert m['variantd_slot_decisions_total{slot="home.hero",variant="hero-mobile"}'] == 1
        assert m['variantd_requests_total{interface="edge",outcome="ok"}'] >= 6
        # Client Hints pass through auth_request to the edge port: a reduced
        # Android UA is a phone, until the hints name a tablet model.
        reduced = {"X-Forwarded-For": "9.9.9.9", "User-Agent": REDUCED}
        assert get(port, reduced)[1] == "hero-mobile"
        hinted = dict(reduced, **{"Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Android"',
                                  "Sec-CH-UA-Model": '"SM-T870"'})
        assert get(port, hinted)[1] == "hero-generic"
        # The page asks browsers for the model (docs: Accept-CH).
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        c.close()
        assert "Sec-CH-UA-Model" in (r.getheader("Accept-CH") or "")
        # variantd gone: nginx falls back to the default page instead of failing.
        d.stop()
        st, variant, body = get(port, {"X-Forwarded-For": "1.0.0.7"})
        assert st == 200 and body == "<h1>page hero-generic</h1>\n"
        assert variant.startswith("hero-generic")
        assert get.last_headers["cache-control"] == "no-store"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
