"""Context II through the daemon: Client Hints on both ports (the hints map
of decide, the Sec-CH-UA* headers of the edge port), net.* from the ASN and
Anonymous-IP test databases, and start-up refusing a database of the wrong
type."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import ROOT, SHARED, VARIANTD, free_port, wait_for, write_defs

MMDB = SHARED / "data" / "mmdb"
ASN_DB = MMDB / "GeoLite2-ASN-Test.mmdb"
ANON_DB = MMDB / "GeoIP2-Anonymous-IP-Test.mmdb"
pytestmark = pytest.mark.skipif(not ASN_DB.exists() or not ANON_DB.exists(),
                                reason="corpus not present")

SEGMENTS = [
    {"id": "tablets", "match": {"attr": "device.type", "op": "eq", "value": "tablet"}},
    {"id": "vpn-users", "match": {"any": [{"attr": "net.vpn", "op": "eq", "value": True},
                                          {"attr": "net.tor", "op": "eq", "value": True}]}},
    {"id": "hosting", "match": {"attr": "net.hosting", "op": "eq", "value": True}},
    {"id": "telstra", "match": {"attr": "net.asn", "op": "in", "value": [1221]}},
    {"id": "telstra-by-name", "match": {"attr": "net.org", "op": "prefix", "value": "telstra"}},
]
CONTENT = [
    {"slot": "hero", "rules": [{"segment": "tablets", "variant": "hero-tablet"}],
     "default": "hero-generic", "variants": {"hero-tablet": None, "hero-generic": None}},
    {"slot": "net", "rules": [{"segment": "vpn-users", "variant": "net-vpn"},
                              {"segment": "telstra", "variant": "net-telstra"}],
     "default": "net-none", "variants": {"net-vpn": None, "net-telstra": None, "net-none": None}},
]
REDUCED = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Mobile Safari/537.36")
TABLET_HINTS = {"sec-ch-ua": '"Chromium";v="124", "Google Chrome";v="124"',
                "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Android"',
                "sec-ch-ua-model": '"SM-T870"'}


@pytest.fixture
def defs(tmp_path):
    return write_defs(tmp_path, SEGMENTS, CONTENT)


@pytest.fixture
def ctx2(defs, start_daemon):
    seg, cm = defs
    return start_daemon("--asn-db", str(ASN_DB), "--anonymous-ip-db", str(ANON_DB),
                        segments=seg, content_map=cm, http=True)


def test_hints_decide_the_device_on_both_ports(ctx2):
    c = ctx2.client()
    # The reduced UA alone says phone; the hints say tablet.
    res = c.decide(slots=["hero"], ua=REDUCED, explain=True)
    assert res["context"]["device.type"] == "mobile"
    res = c.decide(slots=["hero"], ua=REDUCED, hints=TABLET_HINTS, explain=True)
    assert res["context"]["device.type"] == "tablet"
    assert res["context"]["device.os"] == "Android"
    assert res["slots"]["hero"]["variant"] == "hero-tablet"
    # Edge GET: the same headers, read by the edge port itself.
    headers = {"User-Agent": REDUCED}
    headers.update({k.title(): v for k, v in TABLET_HINTS.items()})
    st, h, body = ctx2.http("GET", "/v1/decide?slot=hero&explain=1", headers=headers)
    assert st == 200, body
    assert json.loads(body)["context"]["device.type"] == "tablet"
    assert h["x-variant-hero"] == "hero-tablet"
    st, _, body = ctx2.http("GET", "/v1/decide?slot=hero", headers={"User-Agent": REDUCED})
    assert json.loads(body)["slots"]["hero"]["variant"] == "hero-generic"
    # Edge POST: the hints map as JSON.
    st, _, body = ctx2.http("POST", "/v1/decide", {"slots": ["hero"], "ua": REDUCED,
                                                   "hints": TABLET_HINTS})
    assert st == 200 and json.loads(body)["slots"]["hero"]["variant"] == "hero-tablet"
    # Hints alone (no UA) still give a device.
    res = c.decide(slots=["hero"], hints=TABLET_HINTS, explain=True)
    assert res["context"]["device.type"] == "tablet"


@pytest.mark.parametrize("body,message", [
    ({"slots": ["hero"], "hints": 5}, "hints must be a map of Client Hint headers"),
    ({"slots": ["hero"], "hints": {"sec-ch-ua-model": 5}}, "hints.sec-ch-ua-model must be a string"),
])
def test_bad_hints_are_invalid_params_on_both_ports(ctx2, body, message):
    st, _, data = ctx2.http("POST", "/v1/decide", json.dumps(body))
    assert st == 400
    assert json.loads(data) == {"error": {"code": "invalid_params", "message": message}}
    err, _ = ctx2.client().call("decide", [body])
    assert err == {"code": "invalid_params", "message": message}
    # Unknown hint names are ignored, like unknown request keys.
    res = ctx2.client().decide(slots=["hero"], hints={"sec-ch-ua-arch": '"x86"'})
    assert res["slots"]["hero"]["variant"] == "hero-generic"


def test_net_attributes_from_the_databases(ctx2):
    c = ctx2.client()
    res = c.decide(slots=["net"], ip="81.2.69.1", explain=True)   # VPN, Tor, hosting in the test DB
    ctx = res["context"]
    assert ctx["net.vpn"] is True and ctx["net.tor"] is True and ctx["net.hosting"] is True
    assert ctx["net.anonymous"] is True
    assert "net.asn" not in ctx                                  # not in the ASN test DB
    assert res["slots"]["net"]["variant"] == "net-vpn"
    assert set(res["segments"]) >= {"vpn-users", "hosting"}
    res = c.decide(slots=["net"], ip="1.128.0.1", explain=True)   # AS1221 Telstra
    ctx = res["context"]
    assert ctx["net.asn"] == 1221 and ctx["net.org"] == "Telstra Pty Ltd"
    assert ctx["net.vpn"] is False and ctx["net.hosting"] is False
    assert res["slots"]["net"]["variant"] == "net-telstra"
    assert "telstra-by-name" in res["segments"]


def test_net_attributes_are_missing_without_databases(defs, start_daemon):
    seg, cm = defs
    d = start_daemon(segments=seg, content_map=cm)
    res = d.client().decide(slots=["net"], ip="81.2.69.1", explain=True)
    assert not any(k.startswith("net.") for k in res["context"])
    assert res["slots"]["net"]["variant"] == "net-none"


@pytest.mark.parametrize("flag,db,message", [
    ("--asn-db", ANON_DB, 'database type "GeoIP2-Anonymous-IP" is not an ASN database'),
    ("--anonymous-ip-db", ASN_DB, 'database type "GeoLite2-ASN" is not an Anonymous-IP database'),
    ("--asn-db", MMDB / "missing.mmdb", "asn-db: "),
])
def test_wrong_database_type_stops_start_up(defs, flag, db, message):
    seg, cm = defs
    r = subprocess.run([str(VARIANTD), "--listen", f"127.0.0.1:{free_port()}", "--segments", str(seg),
                        "--content-map", str(cm), flag, str(db)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stdout + r.stderr


def test_start_up_log_names_the_bot_list(ctx2):
    log = ctx2.read_log()
    assert "bot patterns: isbot 5.2.4:" in log
    assert "asn-db " in log and "GeoLite2-ASN" in log


def _make_asn(path, entry):
    subprocess.run(["perl", str(ROOT / "scripts" / "make-asn-mmdb.pl"), str(path), entry],
                   check=True, timeout=60)


def test_network_databases_reload_with_the_geoip_database(tmp_path, defs, start_daemon):
    """A renamed-over ASN file is picked up by the periodic check (no
    restart); a file of the wrong type is refused and the one served stays."""
    seg, cm = defs
    live_asn = tmp_path / "asn.mmdb"
    live_anon = tmp_path / "anon.mmdb"
    shutil.copy(ASN_DB, live_asn)
    shutil.copy(ANON_DB, live_anon)
    d = start_daemon("--asn-db", str(live_asn), "--anonymous-ip-db", str(live_anon),
                     "--geoip-check-interval", "1", segments=seg, content_map=cm)
    c = d.client()

    def asn():
        return c.decide(slots=["net"], ip="1.128.0.1", explain=True)["context"].get("net.asn")

    assert asn() == 1221
    new = tmp_path / "asn.new"
    _make_asn(new, "1.128.0.0/11=64500:Example Net")
    os.rename(new, live_asn)
    assert wait_for(lambda: asn() == 64500, timeout=10), d.read_log()[-2000:]
    ctx = c.decide(slots=["net"], ip="1.128.0.1", explain=True)["context"]
    assert ctx["net.org"] == "Example Net"
    assert "asn-db " in d.read_log() and "reloaded" in d.read_log()
    # The wrong kind of database: refused, the Anonymous-IP one still served.
    wrong = tmp_path / "anon.new"
    shutil.copy(ASN_DB, wrong)
    os.rename(wrong, live_anon)
    assert wait_for(lambda: "anonymous-ip-db reload rejected" in d.read_log(), timeout=10)
    ctx = c.decide(slots=["net"], ip="81.2.69.1", explain=True)["context"]
    assert ctx["net.vpn"] is True
    # SIGHUP asks for the same check at once.
    new = tmp_path / "asn.new"
    _make_asn(new, "1.128.0.0/11=64501:Other Net")
    os.rename(new, live_asn)
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: asn() == 64501, timeout=10)
