"""Third-party MessagePack-RPC clients against the real daemon. msgpack5rpc
(npm, version pinned in tests/integration/package.json, fetched by `make
test`'s install step): pipelined requests, errors, a notification, as
docs/PROTOCOL.md promises. Python's msgpack is the harness's own client."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_tolerance import CONTENT, SEGMENTS
from conftest import write_defs

HERE = Path(__file__).resolve().parent
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
SEGS = SEGMENTS + [{"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}}]
CM = [dict(CONTENT[0], rules=CONTENT[0]["rules"] + [{"segment": "mobile", "variant": "hero-mobile"}],
           variants=dict(CONTENT[0]["variants"], **{"hero-mobile": {"t": "m"}}))] + CONTENT[1:]


def node_modules():
    if not shutil.which("node"):
        pytest.fail("node missing (Debian package nodejs: scripts/deps.sh test)")
    if not (HERE / "node_modules" / "msgpack5rpc").exists():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, "npm ci failed: " + r.stderr[-500:]


def test_msgpack5rpc_client(tmp_path, start_daemon):
    node_modules()
    seg, cm = write_defs(tmp_path, SEGS, CM)
    d = start_daemon(segments=seg, content_map=cm, stats=True)
    r = subprocess.run(["node", str(HERE / "msgpack5rpc_check.js"), str(d.port)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, IPHONE=IPHONE))
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ping"]["err"] is None and out["ping"]["res"]["pong"] is True
    assert out["berlin"]["err"] is None
    assert out["berlin"]["res"]["slots"]["hero"]["variant"] == "hero-berlin"
    assert out["berlin"]["res"]["slots"]["banner"]["variant"] == "banner-all"
    # msgpack5 packs {} as an empty map; a payload comes back as a map.
    assert out["mobile"]["res"]["slots"]["hero"] == {"variant": "hero-mobile", "payload": {"t": "m"},
                                                      "segment": "mobile"}
    assert out["bad"]["err"] == {"code": "invalid_params",
                                 "message": "slots is required (an array of slot names)"}
    assert out["unknown"]["err"]["code"] == "method_not_found"
    assert out["after"]["res"]["pong"] is True       # the notification left the connection usable
    m = d.metrics()
    assert m['variantd_rpc_calls_total{method="notification"}'] == 1
    assert m['variantd_rpc_calls_total{method="decide"}'] == 2     # the bad one is a params error
