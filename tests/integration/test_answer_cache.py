"""The whole-answer cache (config `answer-cache`, off by default; rules/answers.h,
docs/PERFORMANCE.md "A cache of whole answers") never changes a reply.

1. Two daemons, one with `--answer-cache`, one without, on a generated
   country-shaped set of 20 slots: the same requests (the bench's contexts,
   repeated, with visitor ids, pages of 1, 5 and 20 slots, request times
   across an hour boundary and a day) get equal replies.
2. Over the traffic model (tests/bench/gen_traffic.py; needs ../shared/data)
   and the four generated set shapes, `vd-microbench --answer-check 1` decides
   every request with and without the cache and compares the MessagePack
   bytes, valid_until and matched segments: 0 differ, and the cache hits."""
import re
import subprocess

import pytest

from conftest import BUILD, DEMO_DB, ROOT, SHARED

GEN_RULESET = ROOT / "tests" / "bench" / "gen_ruleset.py"
GEN_TRAFFIC = ROOT / "tests" / "bench" / "gen_traffic.py"
MICROBENCH = BUILD / "vd-microbench"


def gen_set(tmp_path, shape, n=300, slots=20):
    out = tmp_path / f"shape-{shape}"
    subprocess.run(["/usr/bin/python3", str(GEN_RULESET), str(out), str(n), str(slots), f"--shape={shape}"],
                   check=True, stdout=subprocess.DEVNULL)
    return out / "segments", out / "content-map"


def contexts():
    rows = []
    for line in (ROOT / "tests" / "bench" / "contexts.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        f = (line.split("\t") + [""] * 5)[:5]
        rows.append(dict(ip=f[0], ua=f[1], referer=f[2], url=f[3], lang=f[4]))
    return rows


def page(k):
    return [f"slot{i:02d}" for i in range(k)]


def test_daemon_replies_equal_with_and_without(tmp_path, start_daemon):
    seg, cm = gen_set(tmp_path, "country")
    on = start_daemon("--workers", "1", "--answer-cache", "4096", segments=seg, content_map=cm)
    off = start_daemon("--workers", "1", segments=seg, content_map=cm)
    con, coff = on.client(), off.client()
    t0 = 1795003200 - 40            # 40 s before an hour boundary
    n = 0
    for rnd in range(3):
        for i, ctx in enumerate(contexts()):
            for k in (1, 5, 20):
                req = dict(ctx, slots=page(k), vid=f"v{(i * 7 + rnd) % 5}",
                           ts=t0 + rnd * 30 + (86400 if rnd == 2 else 0) + i)
                req = {key: val for key, val in req.items() if val != ""}
                assert con.decide(**req) == coff.decide(**req), req
                n += 1
    assert n == 9 * len(contexts())


def run_check(segs, cmap, traffic, k):
    out = subprocess.run([str(MICROBENCH), str(segs), str(cmap), "--geoip-db", str(DEMO_DB), "--contexts",
                          str(traffic), "--slots", ",".join(page(k)), "-n", "20000", "--warm", "0",
                          "--answer-cache", "4096", "--answer-check", "1", "--clock-rate", "20"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"MICRO_ANSWER_CHECK decisions=(\d+) differ=(\d+)", out)
    h = re.search(r"MICRO_ANSWERS entries=\d+ hits=(\d+) misses=(\d+)", out)
    assert m and h, out
    return int(m.group(1)), int(m.group(2)), int(h.group(1))


def test_traffic_model_replies_equal_with_and_without(tmp_path):
    if not (SHARED / "data" / "ua").is_dir():
        pytest.skip("corpus not present (../shared/data)")
    traffic = tmp_path / "traffic.tsv"
    subprocess.run(["/usr/bin/python3", str(GEN_TRAFFIC), str(traffic), "--visitors", "20000",
                    "--data", str(SHARED / "data")], check=True, capture_output=True)
    for shape in ("ours", "country", "nested", "url"):
        segs, cmap = gen_set(tmp_path, shape)
        for k in (1, 5, 20):
            # 20 decisions a second from 30 s before an hour boundary: 1,000 s.
            decisions, differ, hits = run_check(segs, cmap, traffic, k)
            assert decisions == 20000
            assert differ == 0, (shape, k)
            assert hits > 2000, (shape, k, hits)
