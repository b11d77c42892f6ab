"""The dashboard at / of the stats port, in a real headless Chromium: the
numbers it shows equal /stats, it loads nothing from elsewhere, and a
screenshot lands in tests/artifacts/dashboard.png."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, write_defs

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


def playwright_ready():
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} missing (Debian package chromium: scripts/deps.sh test)"
    if not shutil.which("node"):
        return "node missing (Debian package nodejs)"
    if not (HERE / "node_modules" / "playwright-core").exists():
        if not shutil.which("npm"):
            return "npm missing: cannot install playwright-core"
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return "npm ci failed: " + r.stderr[-500:]
    return None


def test_dashboard_shows_the_stats(tmp_path, start_daemon):
    why = playwright_ready()
    if why:
        pytest.skip(why)
    seg, cm = write_defs(tmp_path, [
        {"id": "everyone", "match": {"all": []}},
        {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
        {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
    ] + [{"id": f"quiet-{i}", "match": {"attr": "attr.never", "op": "eq", "value": "x"}}
         for i in range(30)], [
        {"slot": "home.hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                                        {"segment": "mobile", "variant": "hero-mobile"}],
         "default": "hero-generic",
         "variants": {"hero-berlin": None, "hero-mobile": None, "hero-generic": None}},
        {"slot": "footer", "rules": [], "default": "footer-plain", "variants": {"footer-plain": None}},
        {"slot": "ab", "rules": [{"segment": "everyone", "split": [
            {"variant": "ab-a", "weight": 50}, {"variant": "ab-b", "weight": 50}]}],
         "default": "ab-a", "variants": {"ab-a": None, "ab-b": None}},
    ] + [{"slot": f"unused-{i}", "rules": [], "default": f"u{i}", "variants": {f"u{i}": None}}
         for i in range(20)])
    d = start_daemon(segments=seg, content_map=cm, http=True, stats=True)
    for i in range(7):
        d.http("GET", "/v1/decide?slot=home.hero&slot=footer", headers={"User-Agent": IPHONE})
    for i in range(3):
        d.http("GET", "/v1/decide?slot=home.hero", headers={"X-Forwarded-For": "1.0.0.9"})
    d.http("GET", "/v1/decide?slot=home.hero")
    d.http("POST", "/v1/decide", "{broken 9.8.7.6")
    # Errors on both decision interfaces, carrying visitor data that must not show.
    d.http("GET", "/v1/decide?url=https://secret.example/", headers={"X-Forwarded-For": "9.8.7.6"})
    err, _ = d.client().call("decide", [{"slots": ["home.hero"], "ip": 5, "ua": "SecretBrowser/1.0"}])
    assert err["code"] == "invalid_params"
    # A split reached without vid: the dashboard warns.
    d.client().decide(slots=["ab"])
    st, h, page = d.stats_get("/")
    assert st == 200 and h["content-type"].startswith("text/html")
    assert b"<script src" not in page and b"@import" not in page and b"url(http" not in page

    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    r = subprocess.run(["node", str(HERE / "dashboard_check.js"), f"http://127.0.0.1:{d.stats_port}/",
                        str(shot), str(tmp_path / "chromium-profile")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    shown = json.loads(r.stdout.strip().splitlines()[-1])
    _, _, body = d.stats_get("/stats")
    stats = json.loads(body)

    assert shown["external"] == [] and shown["pageErrors"] == []
    assert shown["version"] == stats["ruleset"]["version"]
    assert shown["source"] == "files" and shown["sync"] == "files"
    assert shown["decisions"] == stats["metrics"]["decisions"] == 12
    assert shown["decisionsText"] == "12"
    assert shown["variants"] == stats["decisions"]
    assert shown["variants"]["home.hero"] == {"hero-mobile": 7, "hero-berlin": 3, "hero-generic": 1}
    assert shown["segments"] == stats["segments"]
    errors = sum(v for k, v in stats["metrics"].items() if k.startswith(("errors.", "refused.")))
    assert shown["errors"] == errors == 3
    assert shown["rate"] == "0"            # nothing decided between the two polls
    assert shown["p50"].endswith(("µs", "ms")) and shown["p99"] != "–"
    assert "ready" in shown["status"]
    assert shot.stat().st_size > 10000

    # Recent errors: time, interface and port, code, message; newest first; no visitor data.
    rows = shown["recentErrors"]
    assert [r[1:3] for r in rows] == [[f"rpc :{d.port}", "invalid_params"],
                                      [f"edge :{d.http_port}", "invalid_params"],
                                      [f"edge :{d.http_port}", "bad_json"]]
    assert rows[0][3] == "ip must be a string"
    assert all(len(r[0]) == 12 and r[0][2] == ":" for r in rows)      # HH:MM:SS.mmm
    assert [e["code"] for e in stats["recent_errors"]] == ["invalid_params", "invalid_params", "bad_json"]
    page_text = json.dumps(shown)
    for secret in ("9.8.7.6", "SecretBrowser", "secret.example"):
        assert secret not in page_text and secret not in body.decode()
    # Configuration panel: every setting, as /stats has it.
    assert shown["config"] == {k: (v if v != "" else "—") for k, v in stats["config"].items()}
    assert shown["config"]["stats-listen"] == f"127.0.0.1:{d.stats_port}"
    # Charts: legends, and axis labels drawn left of and under the plot.
    assert shown["legends"] == ["decisions / s", "p50p99"]
    assert shown["axisInk"]["left"] > 50 and shown["axisInk"]["bottom"] > 50
    # The split without vid is counted and warned about.
    assert stats["metrics"]["splits.no_vid"] == 1
    assert shown["warnVid"] and "Splits without vid: 1" in shown["warnVid"]
    # Zero rows are folded: 30 quiet segments and 20 unused slots' variants
    # (plus ab-b, hero-*) behind fold rows; unfolding shows them.
    folds = dict(shown["folds"])
    assert folds["segments"].endswith("segments with 0"), folds
    assert int(folds["segments"].split()[1]) >= 30
    assert shown["hiddenAfterUnfold"] == 0
    assert shown["hiddenRows"] >= 50
    assert shown["pageHeight"] <= 1600, shown["pageHeight"]
