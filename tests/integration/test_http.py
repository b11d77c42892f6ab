"""The edge HTTP port: GET/POST /v1/decide, visitor context from headers, and
every kind of bad input (each answered for that client only, and counted)."""
import json
import resource
import signal
import socket
import statistics
import time

import pytest

from conftest import RawHttp, write_defs

SEGMENTS = [
    {"id": "everyone", "match": {"all": []}},
    {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
    {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
    {"id": "german", "match": {"attr": "lang", "op": "eq", "value": "de"}},
    {"id": "sale-page", "match": {"attr": "url.path", "op": "prefix", "value": "/sale"}},
]
CONTENT = [
    {"slot": "home.hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                                    {"segment": "mobile", "variant": "hero-mobile"}],
     "default": "hero-generic",
     "variants": {"hero-berlin": {"t": "berlin", "n": 1}, "hero-mobile": {"t": "mobile"},
                  "hero-generic": {"t": "generic"}}},
    {"slot": "banner", "rules": [{"segment": "sale-page", "variant": "banner-sale"},
                                 {"segment": "german", "variant": "banner-de"}],
     "default": "banner-none",
     "variants": {"banner-sale": None, "banner-de": {"lang": "de"}, "banner-none": None}},
]
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")


@pytest.fixture
def defs(tmp_path):
    return write_defs(tmp_path, SEGMENTS, CONTENT)


@pytest.fixture
def edge(defs, start_daemon):
    seg, cm = defs
    return start_daemon("--http-max-body", "4096", segments=seg, content_map=cm,
                        http=True, stats=True)


def metric(d, name):
    return d.metrics().get(name, 0.0)


# ---- decisions ----

def test_get_answers_json_headers_and_cache_control(edge):
    st, h, body = edge.http("GET", "/v1/decide?slot=home.hero&slot=nope&slot=banner",
                            headers={"User-Agent": IPHONE})
    assert st == 200, body
    assert h["content-type"] == "application/json"
    res = json.loads(body)
    assert res["slots"]["home.hero"] == {"variant": "hero-mobile", "payload": {"t": "mobile"},
                                         "segment": "mobile"}
    assert res["slots"]["nope"] == {"error": "unknown slot"}
    assert res["slots"]["banner"] == {"variant": "banner-none", "payload": None, "segment": None}
    assert res["version"].startswith("f-")
    assert res["valid_until"] is None
    # One header per known slot; '.' becomes '-' (nginx: $upstream_http_x_variant_home_hero).
    assert h["x-variant-home-hero"] == "hero-mobile"
    assert h["x-variant-banner"] == "banner-none"
    assert not any(k.startswith("x-variant-nope") for k in h)
    # valid_until null: the configured ceiling (http-max-age, 60 by default).
    assert h["x-variant-max-age"] == "60"
    # The decision is this visitor's: no shared cache may keep it.
    assert h["cache-control"] == "private, no-store"


def test_get_result_equals_decide_on_the_decision_port(edge):
    st, _, body = edge.http("GET", "/v1/decide?slot=home.hero&slot=banner",
                            headers={"User-Agent": DESKTOP, "Accept-Language": "de-DE,de;q=0.9"})
    assert st == 200
    rpc = edge.client().decide(slots=["home.hero", "banner"], ua=DESKTOP, lang="de-DE,de;q=0.9")
    assert json.loads(body) == rpc
    assert rpc["slots"]["banner"]["variant"] == "banner-de"


def test_segments_list_is_opt_in_on_the_edge(edge):
    st, _, body = edge.http("GET", "/v1/decide?slot=home.hero", headers={"User-Agent": IPHONE})
    assert st == 200 and "segments" not in json.loads(body)
    st, _, body = edge.http("GET", "/v1/decide?slot=home.hero&segments=1", headers={"User-Agent": IPHONE})
    assert st == 200 and "mobile" in json.loads(body)["segments"]
    st, _, body = edge.http("POST", "/v1/decide", body=json.dumps({"slots": ["home.hero"], "ua": IPHONE,
                                                                  "segments": True}),
                            headers={"Content-Type": "application/json"})
    assert st == 200 and "mobile" in json.loads(body)["segments"]
    st, _, body = edge.http("POST", "/v1/decide", body=json.dumps({"slots": ["home.hero"], "segments": 1}),
                            headers={"Content-Type": "application/json"})
    assert st == 400 and b"segments must be a boolean" in body


def explain_context(d, headers, query="slot=home.hero"):
    st, _, body = d.http("GET", "/v1/decide?" + query + "&explain=1", headers=headers)
    assert st == 200, body
    return json.loads(body)["context"]


def test_client_ip_is_rightmost_untrusted_forwarded_address(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--trusted-proxies", "127.0.0.0/8, 10.0.0.0/8", segments=seg,
                     content_map=cm, http=True)
    # The visitor forged the left-most entry; our proxies appended the rest.
    ctx = explain_context(d, {"X-Forwarded-For": "9.9.9.9, 1.0.0.7, 10.1.2.3"})
    assert ctx["ip"] == "1.0.0.7"
    assert ctx["geo.city"] == "Berlin"
    # Several header lines are one list, the last line nearest to us.
    raw = RawHttp(d.http_port)
    raw.send("GET /v1/decide?slot=home.hero&explain=1 HTTP/1.1\r\nHost: x\r\n"
             "X-Forwarded-For: 2.0.0.1\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n")
    st, _, body = raw.response()
    assert st == 200 and json.loads(body)["context"]["ip"] == "2.0.0.1"
    raw.close()
    # X-Real-IP when there is no X-Forwarded-For.
    assert explain_context(d, {"X-Real-IP": "2.0.0.1"})["ip"] == "2.0.0.1"
    # Only trusted proxies in the chain, or nothing: never the proxy's own address.
    assert "ip" not in explain_context(d, {"X-Forwarded-For": "10.0.0.1"})
    assert "ip" not in explain_context(d, {})
    # Garbage in the chain: nothing beyond it is believed.
    assert "ip" not in explain_context(d, {"X-Forwarded-For": "1.0.0.7, not-an-ip, 10.0.0.1"})
    # Forms proxies write: ports, brackets around IPv4 too, a zone.
    for xff in ("1.0.0.7:51234", "[1.0.0.7]", "[1.0.0.7]:80", "1.0.0.7%eth0"):
        assert explain_context(d, {"X-Forwarded-For": xff + ", 10.1.2.3"})["ip"] == "1.0.0.7", xff


def test_trusted_proxies_take_bracketed_ipv6(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--trusted-proxies", "[::1],[fd00::]/8,127.0.0.1", segments=seg,
                     content_map=cm, http=True)
    assert explain_context(d, {"X-Forwarded-For": "2.0.0.1"})["ip"] == "2.0.0.1"


def test_untrusted_peer_is_the_visitor(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--trusted-proxies", "10.0.0.0/8", segments=seg, content_map=cm, http=True)
    # We connect from 127.0.0.1, not a trusted proxy: its headers are not believed.
    ctx = explain_context(d, {"X-Forwarded-For": "1.0.0.7", "X-Real-IP": "1.0.0.7"})
    assert ctx["ip"] == "127.0.0.1"


def test_url_lang_referer_and_visitor_cookie(edge):
    ctx = explain_context(edge, {"X-Original-URI": "/sale/shoes?utm_source=news", "Host": "shop.example",
                                 "X-Forwarded-Proto": "https", "Accept-Language": "de-CH, en;q=0.5",
                                 "Referer": "https://www.google.com/",
                                 "Cookie": "a=b; vid=visitor-42; c=d"},
                          query="slot=banner")
    assert ctx["url.host"] == "shop.example"
    assert ctx["url.path"] == "/sale/shoes"
    assert ctx["lang"] == "de"
    st, h, body = edge.http("GET", "/v1/decide?slot=banner",
                            headers={"X-Original-URI": "/sale/shoes", "Host": "shop.example"})
    assert h["x-variant-banner"] == "banner-sale"
    # The url parameter wins over X-Original-URI.
    st, h, body = edge.http("GET", "/v1/decide?slot=banner&url=https%3A%2F%2Fshop.example%2Fhome",
                            headers={"X-Original-URI": "/sale/shoes", "Host": "shop.example"})
    assert h["x-variant-banner"] == "banner-none"


def test_visitor_cookie_drives_sticky_split(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, [{"id": "everyone", "match": {"all": []}}],
                         [{"slot": "s", "rules": [{"segment": "everyone", "split": [
                             {"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}],
                             "salt": "x"}],
                           "default": "a", "variants": {"a": None, "b": None}}])
    d = start_daemon("--vid-cookie", "uid", segments=seg, content_map=cm, http=True)
    seen = set()
    for i in range(40):
        vid = f"visitor-{i}"
        st, h, _ = d.http("GET", "/v1/decide?slot=s", headers={"Cookie": f"uid={vid}"})
        assert st == 200
        rpc = d.client().decide(slots=["s"], vid=vid)
        assert h["x-variant-s"] == rpc["slots"]["s"]["variant"]
        seen.add(h["x-variant-s"])
    assert seen == {"a", "b"}


def test_cache_control_follows_valid_until(tmp_path, start_daemon):
    hour = time.gmtime().tm_hour
    seg, cm = write_defs(tmp_path, [{"id": "this-hour", "match": {
        "attr": "time.hour", "op": "between", "value": [hour, hour]}}],
        [{"slot": "s", "rules": [{"segment": "this-hour", "variant": "now"}],
          "default": "later", "variants": {"now": None, "later": None}}])
    d = start_daemon("--http-max-age", "86400", segments=seg, content_map=cm, http=True, geo=False)
    st, h, body = d.http("GET", "/v1/decide?slot=s")
    res = json.loads(body)
    assert res["valid_until"] is not None
    left = res["valid_until"] - time.time()
    assert h["cache-control"] == "private, no-store"
    max_age = int(h["x-variant-max-age"])
    assert 0 <= max_age <= 3600
    assert abs(max_age - left) <= 2


def test_post_takes_the_request_map_as_json(edge):
    st, h, body = edge.http("POST", "/v1/decide",
                            {"slots": ["home.hero", "nope"], "ua": IPHONE, "ip": "1.0.0.7"})
    assert st == 200, body
    res = json.loads(body)
    assert res["slots"]["home.hero"]["variant"] == "hero-berlin"
    assert res["slots"]["nope"] == {"error": "unknown slot"}
    assert h["x-variant-home-hero"] == "hero-berlin"
    rpc = edge.client().decide(slots=["home.hero", "nope"], ua=IPHONE, ip="1.0.0.7")
    assert res == rpc
    # The array form and explain work as on the decision port.
    st, _, body = edge.http("POST", "/v1/decide", [{"slots": ["banner"], "explain": True,
                                                    "attrs": {"role": "x", "n": 2, "b": True}}])
    res = json.loads(body)
    assert st == 200 and "trace" in res and res["context"]["attr.role"] == "x"


@pytest.mark.parametrize("body,message", [
    ({"ua": "x"}, "slots is required (an array of slot names)"),
    ({"slots": "home.hero"}, "slots must be an array of slot names"),
    ({"slots": ["ok", ""]}, "slots[1] must be a non-empty string"),
    ({"slots": ["a"] * 33}, "33 slots requested, the limit is 32"),
    ({"slots": ["a"], "ua": 5}, "ua must be a string"),
    ({"slots": ["a"], "explain": "yes"}, "explain must be a boolean"),
    ({"slots": ["a"], "ts": "now"}, "ts must be unix seconds between years 1 and 9999"),
    ({"slots": ["a"], "attrs": [1]}, "attrs must be a map"),
    ({"slots": ["a"], "attrs": {"k": [1]}}, "attrs.k must be a string, number or boolean"),
    ([1, 2], "params must be [ {request map} ]"),
    ("hello", "params must be a map or an array holding one map"),
])
def test_post_validation_matches_the_decision_port(edge, body, message):
    st, h, data = edge.http("POST", "/v1/decide", json.dumps(body))
    assert st == 400
    assert json.loads(data) == {"error": {"code": "invalid_params", "message": message}}
    assert h["cache-control"] == "no-store"
    err, _ = edge.client().call("decide", [body] if not isinstance(body, list) else body)
    assert err == {"code": "invalid_params", "message": message}


def test_bad_json_missing_slots_method_and_path(edge):
    st, _, data = edge.http("POST", "/v1/decide", '{"slots": [')
    err = json.loads(data)["error"]
    assert st == 400 and err["code"] == "bad_json" and "invalid JSON" in err["message"]
    st, _, data = edge.http("GET", "/v1/decide")
    assert st == 400 and "slot is required" in json.loads(data)["error"]["message"]
    st, h, data = edge.http("PUT", "/v1/decide", "{}")
    assert st == 405 and h["allow"] == "GET, HEAD, POST"
    assert json.loads(data)["error"]["code"] == "method_not_allowed"
    st, _, data = edge.http("GET", "/v2/other")
    assert st == 404 and json.loads(data)["error"]["code"] == "not_found"
    m = edge.metrics()
    assert m['variantd_protocol_errors_total{interface="edge",kind="invalid_request"}'] == 2
    assert m['variantd_protocol_errors_total{interface="edge",kind="method"}'] == 1
    assert m['variantd_protocol_errors_total{interface="edge",kind="not_found"}'] == 1
    assert m['variantd_http_responses_total{interface="edge",code="400"}'] == 2


# ---- limits ----

def test_oversized_headers_get_431_and_others_are_unaffected(edge):
    other = RawHttp(edge.http_port)
    raw = RawHttp(edge.http_port)
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 20000 + "\r\n\r\n")
    st, h, body = raw.response()
    assert st == 431
    assert json.loads(body)["error"]["code"] == "header_too_large"
    assert h["connection"] == "close"
    assert raw.closed()
    # Too many header lines are the same error.
    raw = RawHttp(edge.http_port)
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\n" + "".join(f"X-{i}: y\r\n" for i in range(100)) + "\r\n")
    assert raw.response()[0] == 431
    other.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
    assert other.response()[0] == 200
    assert metric(edge, 'variantd_protocol_errors_total{interface="edge",kind="header_too_large"}') == 2
    assert metric(edge, 'variantd_http_responses_total{interface="edge",code="431"}') == 2


def test_oversized_bodies_get_413(edge):
    # Declared too large: answered before the body is read.
    raw = RawHttp(edge.http_port)
    raw.send("POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + "x" * 100000)
    st, _, body = raw.response()
    assert st == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert raw.closed()
    # Chunked, growing past the limit.
    raw = RawHttp(edge.http_port)
    chunk = "x" * 3000
    raw.send("POST /v1/decide HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
             f"{len(chunk):x}\r\n{chunk}\r\n" * 2 + "0\r\n\r\n")
    assert raw.response()[0] == 413
    # Within the limit, chunked works.
    raw = RawHttp(edge.http_port)
    b = json.dumps({"slots": ["banner"]})
    raw.send("POST /v1/decide HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
             f"{len(b):x}\r\n{b}\r\n0\r\n\r\n")
    assert raw.response()[0] == 200
    assert metric(edge, 'variantd_protocol_errors_total{interface="edge",kind="body_too_large"}') == 2


def test_malformed_http_gets_400_and_close(edge):
    raw = RawHttp(edge.http_port)
    raw.send("GARBAGE\x01 / HTTP/9\r\n\r\n")
    st, _, body = raw.response()
    assert st == 400 and json.loads(body)["error"]["code"] == "bad_request"
    assert raw.closed()
    assert metric(edge, 'variantd_protocol_errors_total{interface="edge",kind="parse"}') == 1


def test_slow_client_is_closed_by_header_timeout(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--http-header-timeout", "2", segments=seg, content_map=cm, http=True, stats=True)
    raw = RawHttp(d.http_port)
    t0 = time.time()
    request = b"GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n"
    got = None
    for byte in request:       # one byte a second: never finishes within 2 s
        try:
            raw.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        raw.sock.settimeout(1.0)
        try:
            if raw._fill() and b"\r\n\r\n" in raw.buf:
                got = raw.response()
                break
        except socket.timeout:
            pass
    elapsed = time.time() - t0
    assert got is not None and got[0] == 408
    assert 1.5 <= elapsed <= 5, elapsed
    assert raw.closed()
    # A connection that never sends anything is closed too (silently).
    idle = RawHttp(d.http_port)
    assert idle.closed(timeout=5)
    m = d.metrics()
    assert m['variantd_protocol_errors_total{interface="edge",kind="timeout"}'] == 1
    assert m['variantd_http_responses_total{interface="edge",code="408"}'] == 1


def test_too_many_connections_get_503_then_close(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--http-max-connections", "5", segments=seg, content_map=cm, http=True,
                     stats=True)
    # The harness's readiness probe was a connection too: wait until the
    # daemon has seen it close, so all five slots are free.
    deadline = time.time() + 10
    while d.metrics()['variantd_connections{interface="edge"}'] != 0 and time.time() < deadline:
        time.sleep(0.05)
    held = [RawHttp(d.http_port) for _ in range(5)]
    for c in held:   # all five are really accepted and served
        c.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response()[0] == 200
    extra = RawHttp(d.http_port)
    extra.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = extra.response()
    assert st == 503 and json.loads(body)["error"]["code"] == "too_many_connections"
    assert h["retry-after"] == "1"
    assert extra.closed()
    held.pop().close()
    # The daemon frees the slot when it sees the close: wait for that (a
    # loaded machine may take longer than any fixed sleep), then connect.
    deadline = time.time() + 10
    while d.metrics()['variantd_connections{interface="edge"}'] != 4 and time.time() < deadline:
        time.sleep(0.05)
    again = RawHttp(d.http_port)
    again.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
    assert again.response()[0] == 200
    m = d.metrics()
    assert m['variantd_connections_total{interface="edge",event="rejected"}'] == 1
    assert m['variantd_connections{interface="edge"}'] == 5


# ---- connection handling ----

def test_http10_and_keep_alive(edge):
    raw = RawHttp(edge.http_port)
    raw.send("GET /v1/decide?slot=banner HTTP/1.0\r\n\r\n")
    st, h, _ = raw.response()
    assert st == 200 and h["connection"] == "close"
    assert raw.closed()
    raw = RawHttp(edge.http_port)
    for _ in range(3):
        raw.send("GET /v1/decide?slot=banner HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        st, h, _ = raw.response()
        assert st == 200 and h["connection"] == "keep-alive"
    raw = RawHttp(edge.http_port)
    for _ in range(3):   # HTTP/1.1 keeps the connection by default
        raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, _ = raw.response()
        assert st == 200 and "connection" not in h
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.response()[0] == 200
    assert raw.closed()


def test_pipelined_requests_are_answered_in_order(edge):
    raw = RawHttp(edge.http_port)
    reqs = []
    uas = [IPHONE, DESKTOP, IPHONE, DESKTOP]
    for i, ua in enumerate(uas):
        reqs.append(f"GET /v1/decide?slot=home.hero&slot=n{i} HTTP/1.1\r\nHost: x\r\n"
                    f"User-Agent: {ua}\r\n\r\n")
    b = json.dumps({"slots": ["banner", "p"]})
    reqs.append(f"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: {len(b)}\r\n\r\n{b}")
    reqs.append("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    raw.send("".join(reqs))
    for i, ua in enumerate(uas):
        st, h, body = raw.response()
        res = json.loads(body)
        assert st == 200 and f"n{i}" in res["slots"]
        assert h["x-variant-home-hero"] == ("hero-mobile" if ua == IPHONE else "hero-generic")
    st, _, body = raw.response()
    assert st == 200 and "p" in json.loads(body)["slots"]
    assert raw.response()[0] == 404
    # Still usable after the 404.
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.response()[0] == 200


def test_head_has_headers_and_no_body(edge):
    raw = RawHttp(edge.http_port)
    raw.send("HEAD /v1/decide?slot=home.hero HTTP/1.1\r\nHost: x\r\nUser-Agent: " + IPHONE + "\r\n\r\n")
    raw.sock.settimeout(5)
    while b"\r\n\r\n" not in raw.buf:
        assert raw._fill()
    head, _, rest = raw.buf.partition(b"\r\n\r\n")
    assert b"X-Variant-home-hero: hero-mobile" in head
    assert int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) > 0
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n")
    while b"HTTP/1.1" not in rest:
        raw._fill()
        rest = raw.buf.partition(b"\r\n\r\n")[2]
    assert rest.startswith(b"HTTP/1.1 200")   # nothing between: HEAD sent no body


def test_a_thousand_slow_clients_do_not_slow_others(defs, start_daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2500
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    seg, cm = defs
    # The daemon inherits the raised limit.
    d = start_daemon("--http-max-connections", "2000", segments=seg, content_map=cm, http=True,
                     stats=True)
    slow = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=5)
            s.sendall(b"GET /v1/decide?slot=ban")      # a request that never ends
            slow.append(s)
        fast = RawHttp(d.http_port)
        lat = []
        for i in range(200):
            if i % 50 == 0:
                for s in slow:     # the slow ones keep trickling
                    s.sendall(b"n")
            t0 = time.perf_counter()
            fast.send("GET /v1/decide?slot=banner&slot=home.hero HTTP/1.1\r\nHost: x\r\n\r\n")
            st, _, _ = fast.response()
            lat.append(time.perf_counter() - t0)
            assert st == 200
        med = statistics.median(lat)
        print(f"median latency with 1000 slow clients: {med * 1e3:.2f} ms, "
              f"p99 {sorted(lat)[int(len(lat) * 0.99) - 1] * 1e3:.2f} ms")
        assert med < 0.1
        assert d.metrics()['variantd_connections{interface="edge"}'] >= 1001
    finally:
        for s in slow:
            s.close()


def test_sigterm_answers_requests_in_flight_then_exits_0(defs, start_daemon):
    seg, cm = defs
    d = start_daemon(segments=seg, content_map=cm, http=True)
    idle = RawHttp(d.http_port)
    busy = RawHttp(d.http_port)
    busy.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n")   # head not finished yet
    time.sleep(0.2)
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert idle.closed(timeout=3)        # nothing in flight: closed at once
    busy.send("User-Agent: late\r\n\r\n")
    st, h, body = busy.response()
    assert st == 200 and h["connection"] == "close"
    assert json.loads(body)["slots"]["banner"]["variant"] == "banner-none"
    assert d.proc.wait(10) == 0
    # New connections are refused once draining.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d.http_port), timeout=1).recv(1)


def test_header_limit_above_the_parsers_own_is_still_431(defs, start_daemon):
    # libhttp-parser stops at 80 KiB by itself: that is a 431 as well.
    seg, cm = defs
    d = start_daemon("--http-max-header", "200000", segments=seg, content_map=cm, http=True)
    raw = RawHttp(d.http_port)
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 100000 + "\r\n\r\n")
    assert raw.response()[0] == 431
    ok = RawHttp(d.http_port)
    ok.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 50000 + "\r\n\r\n")
    assert ok.response()[0] == 200


def test_garbage_and_truncated_requests_never_hurt_the_server(edge):
    import random
    rnd = random.Random(4)
    valid = (b"POST /v1/decide?slot=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"Cookie: vid=1\r\nX-Forwarded-For: 1.0.0.7, ::1, [2001:db8::1]:80\r\n\r\n"
             b"5\r\n{\"slo\r\n0\r\n\r\n")
    for i in range(300):
        raw = RawHttp(edge.http_port, timeout=5)
        if i % 3 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        elif i % 3 == 1:
            data = valid[:rnd.randrange(len(valid))]
        else:
            b = bytearray(valid)
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            data = bytes(b)
        try:
            raw.send(data)
            raw.sock.shutdown(socket.SHUT_WR)
            r = raw.response(timeout=5)
            assert r is None or r[0] in (200, 400, 404, 405, 413, 431)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw.close()
    st, _, body = edge.http("GET", "/v1/decide?slot=banner")
    assert st == 200


def test_half_closed_client_still_gets_its_answers(edge):
    raw = RawHttp(edge.http_port)
    raw.send("GET /v1/decide?slot=banner HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    raw.sock.shutdown(socket.SHUT_WR)
    for _ in range(3):
        r = raw.response()
        assert r is not None and r[0] == 200
    assert raw.closed()


@pytest.mark.parametrize("args,message", [
    (["--trusted-proxies", "10.0.0.0/33"], "trusted-proxies: bad prefix length in '10.0.0.0/33'"),
    (["--trusted-proxies", "proxy.example"], "trusted-proxies: 'proxy.example' is not an IP address"),
    (["--http-listen", "localhost"], "edge port (--http-listen): bad address 'localhost'"),
])
def test_bad_edge_settings_stop_start_up(defs, args, message):
    import subprocess
    from conftest import VARIANTD, free_port
    seg, cm = defs
    r = subprocess.run([str(VARIANTD), "--listen", f"127.0.0.1:{free_port()}", "--segments", str(seg),
                        "--content-map", str(cm), "--http-listen", f"127.0.0.1:{free_port()}"] + args,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stdout + r.stderr


def test_a_client_not_reading_is_paused_then_served_in_order(defs, start_daemon):
    seg, cm = defs
    d = start_daemon("--max-output", "4096", segments=seg, content_map=cm, http=True)
    raw = RawHttp(d.http_port, timeout=20)
    n = 20000   # ~5 MB of answers: more than the socket buffers hold
    # Far more answers than max-output: the server stops reading until we read.
    payload = "".join(f"GET /v1/decide?slot=banner&slot=s{i} HTTP/1.1\r\nHost: x\r\n\r\n" for i in range(n))
    import threading
    t = threading.Thread(target=raw.send, args=(payload,))
    t.start()
    time.sleep(0.5)
    for i in range(n):
        st, _, body = raw.response(timeout=20)
        assert st == 200 and f"s{i}" in json.loads(body)["slots"], i
    t.join(10)
