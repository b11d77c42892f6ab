"""variantctl: validate uses the daemon's compiler; decide/explain talk to a
running daemon and print readable output or JSON."""
import json
import subprocess

from conftest import ROOT, VARIANTCTL, write_defs

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


def ctl(*args):
    return subprocess.run([str(VARIANTCTL), *map(str, args)], capture_output=True, text=True,
                          timeout=30)


def test_validate_examples_ok():
    r = ctl("validate", ROOT / "segments", ROOT / "content-map")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("valid:") and "segments" in r.stdout


def test_validate_reports_precise_errors(tmp_path):
    seg, cm = write_defs(tmp_path, [
        {"id": "a", "match": {"all": [{"attr": "geo.cty", "op": "eq", "value": "X"}]}},
        {"id": "a", "match": {"all": []}},
    ], [{"slot": "s", "rules": [{"segment": "missing", "variant": "v"}], "default": "v",
         "variants": {"v": None}}])
    r = ctl("validate", seg, cm)
    assert r.returncode == 1
    assert "geo.cty" in r.stderr and "$.match.all[0]" in r.stderr
    assert "duplicate" in r.stderr and "missing" in r.stderr
    assert "segments/all.json" in r.stderr and "content-map/all.json" in r.stderr


def test_validate_missing_dir(tmp_path):
    r = ctl("validate", tmp_path / "nope", tmp_path / "nope2")
    assert r.returncode == 1 and "nope" in r.stderr


def test_decide_and_explain_against_daemon(daemon):
    r = ctl("decide", "--connect", daemon.addr, "--ip", "1.0.0.7", "--ua", IPHONE,
            "--slot", "home.hero", "--slot", "no.such.slot")
    assert r.returncode == 0, r.stderr
    assert "home.hero" in r.stdout and "error: unknown slot" in r.stdout
    r = ctl("decide", "--connect", daemon.addr, "--ip", "1.0.0.7", "--ua", IPHONE,
            "--slot", "home.hero", "--json", "--attr", "tier=gold", "--ts", "2026-11-23T19:30:00Z")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["slots"]["home.hero"]["variant"]
    r = ctl("explain", "--connect", daemon.addr, "--ip", "1.0.0.7", "--slot", "home.hero",
            "--json")
    out = json.loads(r.stdout)
    assert out["context"]["geo.city"] == "Berlin" and "home.hero" in out["trace"]
    r = ctl("explain", "--connect", daemon.addr, "--ip", "1.0.0.7", "--slot", "home.hero")
    assert "context:" in r.stdout and "geo.city" in r.stdout and "trace" in r.stdout
    # Client Hints: a reduced Android UA with a tablet model is a tablet.
    reduced = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/124.0.0.0 Mobile Safari/537.36")
    r = ctl("explain", "--connect", daemon.addr, "--ua", reduced, "--slot", "home.hero", "--json")
    assert json.loads(r.stdout)["context"]["device.type"] == "mobile"
    r = ctl("explain", "--connect", daemon.addr, "--ua", reduced, "--slot", "home.hero", "--json",
            "--hint", "sec-ch-ua-mobile=?0", "--hint", 'sec-ch-ua-model="SM-T870"')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["context"]["device.type"] == "tablet"


def test_cli_errors():
    r = ctl("decide", "--slot", "x", "--connect", "127.0.0.1:1")
    assert r.returncode == 1 and "cannot connect" in r.stderr
    r = ctl("decide", "--ip", "1.2.3.4")
    assert r.returncode == 2 and "--slot" in r.stderr
    r = ctl("frob")
    assert r.returncode == 2
    r = ctl("decide", "--slot", "x", "--hint", "sec-ch-ua-model")
    assert r.returncode == 2 and "--hint wants NAME=VALUE" in r.stderr
