"""The stats port: /metrics (Prometheus text), /stats (JSON), /healthz,
/readyz, and the metrics reference in docs/OPERATIONS.md."""
import json
import re

import pytest

from conftest import ROOT, write_defs

SEGMENTS = [
    {"id": "everyone", "match": {"all": []}},
    {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
    {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
]
CONTENT = [
    {"slot": "home.hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                                    {"segment": "mobile", "variant": "hero-mobile"}],
     "default": "hero-generic",
     "variants": {"hero-berlin": None, "hero-mobile": None, "hero-generic": None}},
    {"slot": "banner", "rules": [{"segment": "everyone", "variant": "banner-all"}],
     "default": "banner-none", "variants": {"banner-all": None, "banner-none": None}},
]
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture
def d(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    return start_daemon(segments=seg, content_map=cm, http=True, stats=True)


def families(text):
    """{family: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE variantd_(\S+) (\S+)$", text, re.M))


def test_health_and_readiness(d):
    st, h, body = d.stats_get("/healthz")
    assert st == 200 and body == b"ok\n"
    st, _, body = d.stats_get("/readyz")
    assert st == 200 and body == b"ready\n"
    st, _, _ = d.http("POST", "/healthz", "x", port=d.stats_port)
    assert st == 405
    st, _, body = d.stats_get("/nope")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_metrics_count_decisions_by_slot_variant_and_segment(d):
    d.http("GET", "/v1/decide?slot=home.hero&slot=banner", headers={"X-Forwarded-For": "1.0.0.7"})
    d.http("GET", "/v1/decide?slot=home.hero", headers={"User-Agent": IPHONE})
    d.http("GET", "/v1/decide?slot=home.hero")
    d.client().decide(slots=["home.hero", "banner", "nope"], ua=IPHONE)
    st, h, body = d.stats_get("/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    m = d.metrics()
    assert m['variantd_slot_decisions_total{slot="home.hero",variant="hero-berlin"}'] == 1
    assert m['variantd_slot_decisions_total{slot="home.hero",variant="hero-mobile"}'] == 2
    assert m['variantd_slot_decisions_total{slot="home.hero",variant="hero-generic"}'] == 1
    assert m['variantd_slot_decisions_total{slot="banner",variant="banner-all"}'] == 2
    assert m['variantd_slot_decisions_total{slot="banner",variant="banner-none"}'] == 0
    # Segments count where a decision evaluated them and they matched: the
    # two requests for banner reach its rule "everyone"; the hero-only ones
    # stop at hero's first match and never look at it.
    assert m['variantd_segment_matches_total{segment="everyone"}'] == 2
    assert m['variantd_segment_matches_total{segment="mobile"}'] == 2
    assert m['variantd_segment_matches_total{segment="berlin"}'] == 1
    assert m["variantd_decisions_total"] == 4
    assert m['variantd_slots_total{result="unknown"}'] == 1
    assert m['variantd_requests_total{interface="edge",outcome="ok"}'] == 3
    assert m['variantd_requests_total{interface="rpc",outcome="ok"}'] == 1
    assert m['variantd_rpc_calls_total{method="decide"}'] == 1
    # The histogram: cumulative, +Inf == _count == decisions, in seconds.
    buckets = [(k, v) for k, v in m.items() if k.startswith("variantd_decision_duration_seconds_bucket")]
    assert buckets[-1][0].endswith('{le="+Inf"}')
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    assert buckets[-1][1] == m["variantd_decision_duration_seconds_count"] == 4
    assert 0 < m["variantd_decision_duration_seconds_sum"] < 1
    les = [float(re.search(r'le="([^"]+)"', k).group(1)) for k, _ in buckets[:-1]]
    assert les[0] < 0.001 and les == sorted(les)       # seconds, not nanoseconds
    # The ruleset, info-style, plus age and reload counters.
    version = d.client().call("ping", [])[1]["version"]
    assert m[f'variantd_ruleset_info{{version="{version}",source="files"}}'] == 1
    assert m["variantd_ready"] == 1
    assert m["variantd_ruleset_reloads_total"] == 1
    assert m["variantd_ruleset_reload_failures_total"] == 0
    assert m["variantd_ruleset_segments"] == 3 and m["variantd_ruleset_slots"] == 2
    assert 0 <= m["variantd_ruleset_age_seconds"] < 60
    assert m["variantd_redis_connected"] == 0
    # Text format rules: HELP and TYPE once per family, counters end in _total.
    fams = families(text)
    assert len(re.findall(r"^# HELP ", text, re.M)) == len(fams)
    for fam, typ in fams.items():
        if typ == "counter":
            assert fam.endswith("_total"), fam
    assert fams["decision_duration_seconds"] == "histogram"
    assert fams["connections"] == "gauge"


def test_no_visitor_data_in_any_label(d):
    secret = "visitor-secret-7f3a"
    d.http("GET", f"/v1/decide?slot={secret}&slot=banner&attr.email={secret}",
           headers={"User-Agent": secret, "Cookie": f"vid={secret}", "Referer": f"https://{secret}.example/",
                    "X-Original-URI": f"/{secret}"})
    d.client().decide(slots=[secret], ua=secret, vid=secret)
    _, _, metrics = d.stats_get("/metrics")
    _, _, stats = d.stats_get("/stats")
    assert secret.encode() not in metrics
    assert secret.encode() not in stats


def test_stats_json_has_the_same_numbers_plus_config_and_uptime(d):
    for _ in range(3):
        d.http("GET", "/v1/decide?slot=banner")
    d.http("GET", "/v1/decide")    # a 400
    st, h, body = d.stats_get("/stats")
    assert st == 200 and h["content-type"] == "application/json"
    s = json.loads(body)
    m = d.metrics()
    # Every table row is in both formats with the same value (the /metrics
    # scrape itself happened after /stats: only the stats port's own
    # request counters may differ).
    assert len(s["metrics"]) >= 80
    # One table names, types and explains every metric: each JSON key has
    # the help text its /metrics family carries.
    assert set(s["help"]) == set(s["metrics"])
    assert all(s["help"].values()), [k for k, v in s["help"].items() if not v]
    assert s["help"]["errors.edge.invalid_request"] == "Bad requests, by interface and kind"
    prom_help = {l.split(" ", 3)[2]: l.split(" ", 3)[3] for l in d.stats_get("/metrics")[2].decode().splitlines()
                 if l.startswith("# HELP ")}
    assert prom_help["variantd_protocol_errors_total"] == s["help"]["errors.edge.invalid_request"]
    assert s["metrics"]["decisions"] == m["variantd_decisions_total"] == 3
    assert s["metrics"]["requests.edge.ok"] == m['variantd_requests_total{interface="edge",outcome="ok"}'] == 3
    assert s["metrics"]["errors.edge.invalid_request"] == 1
    assert s["metrics"]["http.edge.400"] == m['variantd_http_responses_total{interface="edge",code="400"}'] == 1
    assert s["metrics"]["connections.edge.accepted"] == m['variantd_connections_total{interface="edge",event="accepted"}']
    assert s["decisions"]["banner"] == {"banner-all": 3, "banner-none": 0}
    assert s["segments"]["everyone"] == 3
    assert s["latency"]["count"] == 3
    assert s["latency"]["buckets"][-1] == {"le": "+Inf", "count": 3}
    assert s["ruleset"]["version"].startswith("f-") and s["ruleset"]["source"] == "files"
    assert s["ruleset"]["reloads"] == 1 and s["ready"] is True
    assert s["sync"] == {"mode": "files", "redis_connected": False}
    assert s["config"]["http-listen"] == f"127.0.0.1:{d.http_port}"
    assert s["config"]["vid-cookie"] == "vid"
    assert s["uptime_seconds"] >= 0


def test_reload_counts_and_restarts_per_ruleset_counters(tmp_path, start_daemon):
    import signal
    import time
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    d = start_daemon(segments=seg, content_map=cm, http=True, stats=True)
    d.http("GET", "/v1/decide?slot=banner")
    (seg / "bad.json").write_text("{not json")
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    m = d.metrics()
    assert m["variantd_ruleset_reload_failures_total"] == 1
    assert m['variantd_slot_decisions_total{slot="banner",variant="banner-all"}'] == 1
    (seg / "bad.json").unlink()
    (seg / "more.json").write_text(json.dumps({"id": "extra", "match": {"all": []}}))
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    m = d.metrics()
    assert m["variantd_ruleset_reloads_total"] == 2
    assert m['variantd_segment_matches_total{segment="extra"}'] == 0
    assert m['variantd_slot_decisions_total{slot="banner",variant="banner-all"}'] == 0
    assert m["variantd_decisions_total"] == 1      # process-wide counters keep counting


def test_operations_doc_lists_every_metric_family(d):
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    section = doc.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    _, _, body = d.stats_get("/metrics")
    fams = families(body.decode())
    assert len(fams) >= 20
    for fam, typ in fams.items():
        assert f"`variantd_{fam}`" in section, f"variantd_{fam} missing from docs/OPERATIONS.md"
    documented = set(re.findall(r"`variantd_([a-z_]+)`", section))
    assert documented <= set(fams), f"documented but not exported: {documented - set(fams)}"


def test_referrer_cache_counts_hits_and_misses(tmp_path, start_daemon):
    """The per-worker referring-host verdict cache: the first request from a
    host misses, the next ones hit with the same answer; a host whose table
    entry depends on the path (google.*/maps) answers by the path."""
    segs = [{"id": "organic", "match": {"attr": "source.medium", "op": "eq", "value": "organic"}},
            {"id": "social", "match": {"attr": "source.medium", "op": "eq", "value": "social"}}]
    content = [{"slot": "s", "rules": [{"segment": "organic", "variant": "o"},
                                       {"segment": "social", "variant": "so"}],
                "default": "x", "variants": {"o": None, "so": None, "x": None}}]
    seg, cm = write_defs(tmp_path, segs, content)
    dd = start_daemon("--workers", "1", segments=seg, content_map=cm, stats=True)
    c = dd.client()
    url = "https://shop.example/landing"
    want = [("https://www.google.com/", "o"), ("https://www.google.com/maps/place/x", "x"),
            ("https://www.facebook.com/", "so"), ("https://www.google.com/", "o"),
            ("https://www.google.com/maps/place/x", "x"), ("https://www.facebook.com/", "so"),
            ("https://www.google.com/?q=a", "o")]        # another query: the same key
    for ref, variant in want:
        assert c.decide(slots=["s"], referer=ref, url=url)["slots"]["s"]["variant"] == variant, ref
    c.decide(slots=["s"], url=url)                        # no Referer: no lookup
    m = dd.metrics()
    hit = m['variantd_cache_lookups_total{cache="referrer",result="hit"}']
    miss = m['variantd_cache_lookups_total{cache="referrer",result="miss"}']
    assert hit + miss == len(want)
    assert miss == 3 and hit == 4, (hit, miss)
