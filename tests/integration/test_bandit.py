"""Bandit allocation and the report in running daemons (docs/LEARNING.md):
two daemons share one redis-server holding the counters; each learner reads
them every second and computes the weights at the same wall-clock instants."""
import json
import signal
import time

from conftest import publish, wait_for, write_defs

NS = "variantd"
SECRET = "00112233445566778899aabbccddeeff"
SEGMENTS = [{"id": "everyone", "match": {"all": []}}]


def slot_def(arms=("a", "b", "c"), holdout=None):
    s = {"slot": "hero", "goal": ["purchase"],
         "rules": [{"segment": "everyone", "allocate": "bandit", "salt": "hero-1",
                    "split": [{"variant": v, "weight": 1} for v in arms]}],
         "default": "generic", "variants": {v: {"t": v} for v in (*arms, "generic")}}
    if holdout is not None:
        s["holdout"] = holdout
    return s


def set_counts(r, counts, rule="everyone", slot="hero"):
    key = f"{NS}:x:{{{slot}}}:0:n"
    r.delete(key)
    for v, (e, c) in counts.items():
        r.hset(key, f"e|{rule}|{v}", e)
        r.hset(key, f"c|{rule}|{v}", c)
    r.sadd(f"{NS}:x:slots", slot)


def call(c, method, params):
    err, res = c.call(method, params)
    assert err is None, err
    return res


def bandit_trace(d):
    c = d.client()
    try:
        return call(c, "explain", [{"slots": ["hero"], "vid": "probe"}])["trace"]["hero"][0]
    finally:
        c.close()


def weights(d):
    t = bandit_trace(d)
    return t["learnt"], t["weights"]


def start_two(start_daemon, segs, cmap, url, *extra):
    args = ("--profiles", url, "--profile-key-secret", SECRET, "--bandit-interval", "1", "--bandit-min-exposures", "100",
            "--bandit-floor", "0.05", *extra)
    return [start_daemon(*args, segments=segs, content_map=cmap, geo=False, stats=True)
            for _ in range(2)]


def test_weights_identical_floor_tie_and_traffic(tmp_path, start_daemon, redis_server):
    srv = redis_server()
    r = srv.client()
    segs, cmap = write_defs(tmp_path, SEGMENTS, [slot_def()])
    set_counts(r, {"a": (1000, 20), "b": (1000, 50), "c": (1000, 200)})
    d1, d2 = start_two(start_daemon, segs, cmap, srv.url)
    assert wait_for(lambda: weights(d1)[0] and weights(d2)[0], timeout=10)
    w1, w2 = weights(d1)[1], weights(d2)[1]
    assert w1 == w2                                  # bit-identical on both daemons
    assert w1[0] == w1[1] == 0.05                    # the floor holds
    assert abs(sum(w1) - 1) < 1e-12 and abs(w1[2] - 0.9) < 1e-12

    # new visitors follow the weights: ~90 % get c
    c = d1.client()
    got = [c.decide(slots=["hero"], vid=f"v{i}")["slots"]["hero"]["variant"] for i in range(2000)]
    share = got.count("c") / len(got)
    assert 0.87 < share < 0.93, share

    # a tie stays even, on both daemons, after the next interval
    set_counts(r, {"a": (500, 40), "b": (500, 40), "c": (500, 40)})
    assert wait_for(lambda: weights(d1)[1] == weights(d2)[1] == [1 / 3] * 3 or
                    (weights(d1)[1] == weights(d2)[1] and len(set(weights(d1)[1])) == 1), timeout=10)

    # the exploration window: one arm below bandit-min-exposures -> weights as written
    set_counts(r, {"a": (5000, 40), "b": (5000, 400), "c": (99, 40)})
    assert wait_for(lambda: weights(d1)[0] is False and weights(d2)[0] is False, timeout=10)
    w = weights(d1)[1]
    assert [round(x, 4) for x in w] == [0.3333, 0.3334, 0.3333]   # the written split: 3333, 6667, 10000

    # weights on /metrics and /stats
    set_counts(r, {"a": (1000, 20), "b": (1000, 50), "c": (1000, 200)})
    assert wait_for(lambda: weights(d1)[0], timeout=10)
    m = d1.metrics()
    key = 'variantd_bandit_weight{slot="hero",rule="everyone",variant="c"}'
    assert abs(m[key] - 0.9) < 1e-6
    status, _, body = d1.stats_get("/stats")
    ex = json.loads(body)["experiments"]
    assert ex["available"] is True
    b = ex["bandit"][0]
    assert b["slot"] == "hero" and b["rule"] == "everyone" and b["learnt"] is True
    assert [a["variant"] for a in b["arms"]] == ["a", "b", "c"]
    assert ex["history"]["hero"]["everyone"]
    assert ex["report"]["slots"]["hero"]["rules"]["everyone"]["variants"]["c"]["exposures"] == 1000


def test_report_method(tmp_path, start_daemon, redis_server):
    srv = redis_server()
    r = srv.client()
    segs, cmap = write_defs(tmp_path, SEGMENTS, [slot_def(holdout=5)])
    set_counts(r, {"a": (100, 20), "b": (100, 20), "c": (100, 30)})
    set_counts_extra = f"{NS}:x:{{hero}}:0:n"
    r.hset(set_counts_extra, "e|holdout|generic", 100)
    r.hset(set_counts_extra, "c|holdout|generic", 10)
    r.hset(set_counts_extra, "v|everyone|c", "123.5")
    d = start_daemon("--profiles", srv.url, "--profile-key-secret", SECRET, segments=segs, content_map=cmap, geo=False, http=True)
    c = d.client()
    rep = wait_for(lambda: (lambda x: x if x["available"] else None)(call(c, "report", [{}])), timeout=10)
    s = rep["slots"]["hero"]
    v = s["rules"]["everyone"]["variants"]["c"]
    assert v["exposures"] == 100 and v["conversions"] == 30 and v["value"] == 123.5
    assert abs(v["rate"] - 0.3) < 1e-12 and v["ci95"][0] < 0.3 < v["ci95"][1]
    ps = [s["rules"]["everyone"]["variants"][x]["p_best"] for x in "abc"]
    assert ps[0] == ps[1] and abs(sum(ps) - 1) < 1e-9 and ps[2] > 0.8
    assert abs(s["uplift"]["diff"] - (70 / 300 - 0.1)) < 1e-12
    assert s["rules"]["everyone"]["allocate"] == "bandit"          # from the served definitions
    assert "Simpson" in s["rules"]["everyone"]["note"]
    assert "allocate" not in s["rules"]["holdout"]
    one = call(c, "report", [{"slot": "hero"}])
    assert one["slots"] == {"hero": s}
    assert call(c, "report", [{"slot": "nope"}])["slots"] == {}
    assert abs(time.time() - rep["as_of"]) < 10
    # the edge port: the same as JSON
    st, _, body = d.http("POST", "/v1/report", json.dumps({"slot": "hero"}))
    assert st == 200
    assert json.loads(body)["slots"]["hero"]["rules"]["everyone"]["variants"]["c"]["exposures"] == 100
    st, _, body = d.http("GET", "/v1/report")
    assert st == 200 and set(json.loads(body)["slots"]) == {"hero"}
    st, _, body = d.http("POST", "/v1/report", "[1]")
    assert st == 400 and json.loads(body)["error"]["code"] == "invalid_params"
    err, _ = c.call("report", [{"slot": 7}])
    assert err is not None and "invalid_params" in str(err)


def test_redis_down_keeps_last_weights_and_arm_removed(tmp_path, start_daemon, redis_server):
    srv = redis_server()
    r = srv.client()
    segs, cmap = write_defs(tmp_path, SEGMENTS, [slot_def()])
    set_counts(r, {"a": (1000, 20), "b": (1000, 50), "c": (1000, 200)})
    d1, d2 = start_two(start_daemon, segs, cmap, srv.url)
    assert wait_for(lambda: weights(d1)[0] and weights(d2)[0], timeout=10)
    before = weights(d1)[1]
    srv.stop()
    time.sleep(2.5)                                   # two intervals without Redis
    assert weights(d1) == (True, before) and weights(d2) == (True, before)
    assert d1.client().decide(slots=["hero"], vid="x")["slots"]["hero"]["variant"] in "abc"
    status, _, body = d1.stats_get("/stats")
    assert json.loads(body)["experiments"]["available"] is False

    # Redis back; then arm b leaves the definitions: the allocation stays valid
    srv.start()
    r = srv.client()
    set_counts(r, {"a": (1000, 20), "b": (1000, 50), "c": (1000, 200)})
    write_defs(tmp_path, SEGMENTS, [slot_def(arms=("a", "c"))])
    d1.signal(signal.SIGHUP)
    ok = wait_for(lambda: len(bandit_trace(d1)["weights"]) == 2 and bandit_trace(d1)["learnt"], timeout=10)
    assert ok
    w = bandit_trace(d1)["weights"]
    assert abs(sum(w) - 1) < 1e-12 and min(w) >= 0.05
    assert bandit_trace(d1)["variant"] == ["a", "c"]
    got = {d1.client().decide(slots=["hero"], vid=f"v{i}")["slots"]["hero"]["variant"] for i in range(300)}
    assert got <= {"a", "c"} and "c" in got


def test_stickiness_through_the_profile(tmp_path, start_daemon, redis_server):
    """A visitor with consent whose profile holds an exposure of the slot keeps
    its variant while the weights move; without consent the same vid follows
    the current weights by its bucket. The profile method shows the exposure."""
    srv = redis_server()
    r = srv.client()
    segs, cmap = write_defs(tmp_path, SEGMENTS, [slot_def()])
    set_counts(r, {"a": (1000, 20), "b": (1000, 50), "c": (1000, 200)})
    # a profile that misses profile-timeout is decided without (by design):
    # give the sanitizer build room
    d = start_two(start_daemon, segs, cmap, srv.url, "--profile-timeout", "2000")[0]
    assert wait_for(lambda: weights(d)[0] and abs(weights(d)[1][2] - 0.9) < 1e-9, timeout=10)
    c = d.client()
    P = {"consent": "personalization"}
    first = {}
    for i in range(20):
        v = f"s{i}"
        first[v] = c.decide(slots=["hero"], vid=v, **P)["slots"]["hero"]["variant"]
    assert wait_for(lambda: len(r.keys("vdp1:*")) >= 20 and
                    all(r.hget(k, "x:hero") for k in r.keys("vdp1:*")), timeout=10)
    # the counts turn: now a is the winner
    set_counts(r, {"a": (5000, 1000), "b": (5000, 50), "c": (5000, 200)})
    assert wait_for(lambda: abs(weights(d)[1][0] - 0.9) < 1e-9, timeout=10)
    moved = 0
    for v, was in first.items():
        assert c.decide(slots=["hero"], vid=v, **P)["slots"]["hero"]["variant"] == was   # sticky
        now = c.decide(slots=["hero"], vid=v)["slots"]["hero"]["variant"]              # no consent
        moved += now != was
    assert moved >= 10, moved
    prof = call(c, "profile", [{"vid": "s0"}])
    x = prof["exposures"]["hero"]
    assert x["variant"] == first["s0"] and x["rule"] == "everyone" and x["converted"] is False
