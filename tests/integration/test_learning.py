"""Learning counters in Redis (docs/LEARNING.md): the exposure and conversion
Lua scripts the daemon ships (daemon/learn/*.lua, embedded as they are), run
against a real redis-server; `variantctl report` reads them back.

The scripts are the unit of exactness: every daemon counts through them, so
what holds here for many concurrent connections holds for many daemons."""
import json
import math
import random
import threading

from conftest import ROOT, variantctl

NS = "variantd"
DAY = 86400
WINDOW = 7 * DAY
EXPOSE = (ROOT / "daemon/learn/expose.lua").read_text()
CONVERT = (ROOT / "daemon/learn/convert.lua").read_text()
T0 = 1_790_000_000   # 2026-09-21


def day(ts):
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y%m%d")


def expose(r, visitor, slot, rule, variant, ts, window=WINDOW, stream="", bandit=False, us=None):
    return r.eval(EXPOSE, 1, visitor, NS, slot, rule, variant, ts, window, day(ts), 0, stream, 1000,
                  "bandit" if bandit else "", ts * 1000000 if us is None else us)


def convert(r, visitor, slots, ts, value=0, event="purchase", window=WINDOW, stream=""):
    return r.eval(CONVERT, 1, visitor, NS, ts, window, repr(float(value)), day(ts), stream, 1000, event,
                  *slots)


def totals(r, slot, epoch=0):
    return {k: v for k, v in r.hgetall(f"{NS}:x:{{{slot}}}:{epoch}:n").items()}


def report(redis_url, *args):
    _, out, _ = variantctl("report", *args, "--json", "--redis", redis_url)
    return json.loads(out)


def test_exposure_once_per_window_and_pair(redis_server):
    r = redis_server().client()
    assert expose(r, "p:v1", "home.hero", "everyone", "hero-a", T0) == [1, "hero-a"]
    # the same pair again inside the window: not counted, the profile says so
    assert expose(r, "p:v1", "home.hero", "everyone", "hero-a", T0 + WINDOW - 1) == [0, "hero-a"]
    assert totals(r, "home.hero") == {"e|everyone|hero-a": "1"}
    # another variant (a new arm, or the visitor moved to another rule): a new exposure
    assert expose(r, "p:v1", "home.hero", "everyone", "hero-b", T0 + 10)[0] == 1
    assert expose(r, "p:v1", "home.hero", "default", "hero-b", T0 + 20)[0] == 1
    # a window after the last exposure of that pair: counted again
    assert expose(r, "p:v1", "home.hero", "default", "hero-b", T0 + 20 + WINDOW)[0] == 1
    assert totals(r, "home.hero") == {"e|everyone|hero-a": "1", "e|everyone|hero-b": "1",
                                      "e|default|hero-b": "2"}
    # the profile holds one exposure per slot: epoch|rule|variant|ts|converted
    t = T0 + 20 + WINDOW
    assert r.hget("p:v1", "x:home.hero") == f"0|default|hero-b|{t}|0|{t * 1000000}"
    # daily buckets, kept ~400 days
    d = r.hgetall(f"{NS}:x:{{home.hero}}:0:d:{day(T0)}")
    assert d["e|everyone|hero-a"] == "1"
    assert 0 < r.ttl(f"{NS}:x:{{home.hero}}:0:d:{day(T0)}") <= 400 * DAY
    assert r.smembers(f"{NS}:x:slots") == {"home.hero"}


def test_late_write_of_an_earlier_decision_keeps_the_later_exposure(redis_server):
    """Two daemons decide for one visitor; the first decision's write arrives
    last: both exposures count, the later decision stays in the profile and
    takes the conversion."""
    r = redis_server().client()
    assert expose(r, "p:v", "s", "everyone", "c", T0, us=2_000_000)[0] == 1
    assert expose(r, "p:v", "s", "everyone", "a", T0, us=1_000_000)[0] == 1
    assert r.hget("p:v", "x:s").split("|")[2] == "c"
    assert convert(r, "p:v", ["s"], T0 + 1) == [1]
    t = totals(r, "s")
    assert t["e|everyone|a"] == "1" and t["e|everyone|c"] == "1" and t["c|everyone|c"] == "1"


def test_conversion_windows_and_reasons(redis_server):
    r = redis_server().client()
    slot = "home.hero"
    expose(r, "p:in", slot, "everyone", "a", T0)
    expose(r, "p:out", slot, "everyone", "a", T0)
    expose(r, "p:early", slot, "everyone", "a", T0)
    # just inside the window converts, with its value; just outside does not
    assert convert(r, "p:in", [slot], T0 + WINDOW - 1, value=19.5) == [1]
    assert convert(r, "p:out", [slot], T0 + WINDOW) == [-1]
    # an event before the exposure was not caused by it
    assert convert(r, "p:early", [slot], T0 - 1) == [-1]
    # each exposure converts once
    assert convert(r, "p:in", [slot], T0 + 100, value=5) == [-2]
    # a goal event without any exposure: ignored, counted
    assert convert(r, "p:nobody", [slot], T0) == [0]
    t = totals(r, slot)
    assert t["e|everyone|a"] == "3"
    assert t["c|everyone|a"] == "1"
    assert float(t["v|everyone|a"]) == 19.5
    assert t["u|outside"] == "2" and t["u|converted"] == "1" and t["u|none"] == "1"
    assert r.hget("p:in", f"x:{slot}").split("|")[4] == "1"


def test_goal_of_another_slot(redis_server):
    """The daemon passes only the slots whose goal the event is: an exposure
    of another slot stays unconverted, and its counters do not move."""
    r = redis_server().client()
    expose(r, "p:v", "home.hero", "everyone", "a", T0)
    expose(r, "p:v", "home.banner", "everyone", "x", T0)
    assert convert(r, "p:v", ["home.banner"], T0 + 5, event="signup") == [1]
    assert "c|everyone|a" not in totals(r, "home.hero")
    assert r.hget("p:v", "x:home.hero").split("|")[4] == "0"
    # the hero's goal arrives later: converts the hero's exposure only
    assert convert(r, "p:v", ["home.hero"], T0 + 6) == [1]
    assert convert(r, "p:v", ["home.hero", "home.banner"], T0 + 7) == [-2, -2]


def test_exact_under_concurrency(redis_server):
    """Many connections expose and convert the same visitors at the same
    time (as many daemons do): counters equal the truth, no loss, no double."""
    srv = redis_server()
    rng = random.Random(7)
    visitors = [f"p:{i}" for i in range(300)]
    arm = {v: rng.choice(["a", "b", "c"]) for v in visitors}
    buyers = {v for v in visitors if rng.random() < 0.4}
    errors = []

    def worker(seed):
        try:
            c = srv.client()
            g = random.Random(seed)
            order = visitors[:]
            g.shuffle(order)
            for v in order:
                expose(c, v, "s", "everyone", arm[v], T0 + g.randint(0, 50))
            g.shuffle(order)
            for v in order:
                if v in buyers:
                    convert(c, v, ["s"], T0 + 100 + g.randint(0, 50), value=2.5)
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    t = totals(srv.client(), "s")
    for a in "abc":
        exp = sum(1 for v in visitors if arm[v] == a)
        conv = sum(1 for v in buyers if arm[v] == a)
        assert int(t[f"e|everyone|{a}"]) == exp
        assert int(t.get(f"c|everyone|{a}", 0)) == conv
        assert math.isclose(float(t.get(f"v|everyone|{a}", 0)), 2.5 * conv)
    # every other worker found each buyer's exposure converted already
    assert int(t["u|converted"]) == 7 * len(buyers)


def test_event_stream_and_consumer_group(redis_server):
    r = redis_server().client()
    stream = f"{NS}:events:learn"
    expose(r, "p:v", "s", "everyone", "a", T0, stream=stream)
    expose(r, "p:v", "s", "everyone", "a", T0 + 1, stream=stream)     # not counted, not appended
    convert(r, "p:v", ["s"], T0 + 2, value=3, stream=stream)
    # the docs' warehouse loader: a consumer group reading new entries
    r.xgroup_create(stream, "warehouse", id="0")
    got = r.xreadgroup("warehouse", "loader-1", {stream: ">"}, count=10)
    entries = [f for _, f in got[0][1]]
    assert [e["type"] for e in entries] == ["exposure", "conversion"]
    assert entries[0]["variant"] == "a" and entries[0]["rule"] == "everyone"
    assert entries[1]["value"] == "3.0" and entries[1]["event"] == "purchase"
    r.xack(stream, "warehouse", *[i for i, _ in got[0][1]])
    assert r.xpending(stream, "warehouse")["pending"] == 0


def test_report_and_reset(redis_server):
    srv = redis_server()
    r = srv.client()
    slot = "home.hero"
    for i in range(200):
        expose(r, f"p:{i}", slot, "everyone", "a" if i % 2 else "b", T0, bandit=True)
    for i in range(0, 200, 5):        # b: 20 of 100, a: 20 of 100 (i % 5 == 0, odd/even alike)
        convert(r, f"p:{i}", [slot], T0 + 1, value=10)
    for i in range(100):
        expose(r, f"q:{i}", slot, "holdout", "generic", T0)
    for i in range(10):
        convert(r, f"q:{i}", [slot], T0 + 1)
    convert(r, "p:nobody", [slot], T0)
    rep = report(srv.url)
    s = rep["slots"][slot]
    a = s["rules"]["everyone"]["variants"]["a"]
    assert a["exposures"] == 100 and a["conversions"] == 20 and a["value"] == 200.0
    assert abs(a["rate"] - 0.2) < 1e-12
    # Wilson 95 % for 20/100
    assert abs(a["ci95"][0] - 0.13329) < 1e-4 and abs(a["ci95"][1] - 0.28883) < 1e-4
    b = s["rules"]["everyone"]["variants"]["b"]
    assert a["p_best"] == b["p_best"] == 0.5         # a tie stays even
    assert s["rules"]["everyone"]["allocate"] == "bandit"
    assert "Simpson" in s["rules"]["everyone"]["note"]
    assert s["rules"]["holdout"]["variants"]["generic"]["p_best"] == 1.0
    up = s["uplift"]
    assert abs(up["diff"] - 0.1) < 1e-12 and up["ci95"][0] < 0.1 < up["ci95"][1]
    assert up["holdout"] == {"exposures": 100, "conversions": 10}
    assert s["unattributed"]["no_exposure"] == 1
    # the same through the one-slot form and the table
    assert report(srv.url, slot)["slots"][slot] == s
    _, table, _ = variantctl("report", slot, "--redis", srv.url)
    assert "everyone" in table and "20.00%" in table and "uplift over holdout" in table

    # reset: a new experiment; the old counters stay (archived), old exposures no longer convert
    _, out, _ = variantctl("report", "--reset", slot, "--redis", srv.url)
    assert "experiment 1" in out
    assert totals(r, slot, 0)["e|everyone|a"] == "100"
    assert convert(r, "p:1", [slot], T0 + 2) == [-3]
    assert expose(r, "p:1", slot, "everyone", "a", T0 + 3) == [1, "a"]   # counted anew
    s2 = report(srv.url, slot)["slots"][slot]
    assert s2["epoch"] == 1
    assert s2["rules"]["everyone"]["variants"]["a"]["exposures"] == 1
    assert s2["unattributed"]["before_reset"] == 1
    assert "allocate" not in s2["rules"]["everyone"]


# ---- through running daemons: decide records exposures, track converts ----

SECRET = "00112233445566778899aabbccddeeff"


def learning_defs(tmp_path):
    from conftest import write_defs
    return write_defs(tmp_path, [{"id": "everyone", "match": {"all": []}}], [
        {"slot": "hero", "goal": ["purchase"], "holdout": 10,
         "rules": [{"segment": "everyone", "salt": "h1",
                    "split": [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]}],
         "default": "g", "variants": {"a": 1, "b": 2, "g": 3}},
        {"slot": "banner", "goal": ["signup"],
         "rules": [{"segment": "everyone", "variant": "x"}], "default": "y", "variants": {"x": 1, "y": 2}},
        {"slot": "plain", "rules": [], "default": "p", "variants": {"p": 1}},
    ])


def call(c, method, params):
    err, res = c.call(method, params)
    assert err is None, err
    return res


def test_daemons_count_exposures_and_conversions_exactly(tmp_path, start_daemon, redis_server):
    """Two daemons, several connections each, the same visitors hitting both:
    the counters equal what the visitors did."""
    from conftest import wait_for
    srv = redis_server()
    r = srv.client()
    segs, cmap = learning_defs(tmp_path)
    ds = [start_daemon("--profiles", srv.url, "--profile-key-secret", SECRET, segments=segs,
                       content_map=cmap, geo=False) for _ in range(2)]
    now = int(__import__("time").time())
    visitors = [f"v{i}" for i in range(120)]
    shown, rule_of = {}, {}
    buyers = set(visitors[::3])
    errors = []

    def worker(k):
        try:
            cs = [d.client() for d in ds]
            for i, v in enumerate(visitors):
                c = cs[(i + k) % 2]
                res = call(c, "decide", [{"slots": ["hero", "plain"], "vid": v, "consent": "personalization",
                                          "ts": now}])
                h = res["slots"]["hero"]
                shown.setdefault(v, h["variant"])
                assert shown[v] == h["variant"]
                rule_of[v] = "holdout" if h.get("holdout") else h["segment"] or "default"
            for i, v in enumerate(visitors):
                if v in buyers:
                    assert call(cs[(i + k + 1) % 2], "track",
                                [{"event": "purchase", "vid": v, "ts": now + 10, "value": 2.5,
                                  "consent": "personalization"}])["ok"] is True
        except Exception as e:
            errors.append(e)

    import threading
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    want_e, want_c = {}, {}
    for v in visitors:
        key = f"{rule_of[v]}|{shown[v]}"
        want_e[key] = want_e.get(key, 0) + 1
        if v in buyers:
            want_c[key] = want_c.get(key, 0) + 1

    def counted():
        t = totals(r, "hero")
        e = {k[2:]: int(x) for k, x in t.items() if k.startswith("e|")}
        c = {k[2:]: int(x) for k, x in t.items() if k.startswith("c|")}
        return (e, c) if (e, c) == (want_e, want_c) else None
    assert wait_for(counted, timeout=10), (totals(r, "hero"), want_e, want_c)
    t = totals(r, "hero")
    assert int(t["u|converted"]) == 3 * len(buyers)       # the other workers' tracks found it converted
    assert "holdout|g" in want_e                         # the holdout is counted under its own key
    assert not any(k.startswith(f"{NS}:x:{{plain}}") for k in r.keys("*"))   # no goal: nothing counted


def test_daemon_windows_no_exposure_other_slot_and_no_consent(tmp_path, start_daemon, redis_server):
    from conftest import wait_for
    srv = redis_server()
    r = srv.client()
    segs, cmap = learning_defs(tmp_path)
    d = start_daemon("--profiles", srv.url, "--profile-key-secret", SECRET, "--attribution-window", "1",
                     segments=segs, content_map=cmap, geo=False)
    c = d.client()
    P = {"consent": "personalization"}
    now = int(__import__("time").time())
    for v in ("in", "out"):
        call(c, "decide", [{"slots": ["hero", "banner"], "vid": v, "ts": now - 2 * DAY, **P}])
    # just inside (window 1 day after the exposure) and just outside
    call(c, "track", [{"event": "purchase", "vid": "in", "ts": now - 2 * DAY + DAY - 1, **P}])
    call(c, "track", [{"event": "purchase", "vid": "out", "ts": now - 2 * DAY + DAY, **P}])
    # a goal event without an exposure: ignored, counted
    call(c, "track", [{"event": "purchase", "vid": "stranger", "ts": now, **P}])
    # a goal of another slot converts that slot only
    call(c, "track", [{"event": "signup", "vid": "in", "ts": now - 2 * DAY + 5, **P}])
    # no consent: nothing recorded
    call(c, "decide", [{"slots": ["hero"], "vid": "shy", "ts": now}])
    call(c, "track", [{"event": "purchase", "vid": "shy", "ts": now}])

    def settled():
        t = totals(r, "hero")
        conv = sum(int(x) for k, x in t.items() if k.startswith("c|"))
        return t if conv == 1 and t.get("u|outside") == "1" and t.get("u|none") == "1" else None
    t = wait_for(settled, timeout=10)
    assert t, totals(r, "hero")
    assert sum(int(x) for k, x in t.items() if k.startswith("e|")) == 2
    b = totals(r, "banner")
    assert b.get("c|everyone|x") == "1" and b.get("e|everyone|x") == "2"
    # the profile holds the exposure (variant, rule, ts, converted), and goal
    # types count in visitor.events.TYPE
    prof = call(c, "profile", [{"vid": "in"}])
    assert prof["exposures"]["hero"]["converted"] is True
    assert prof["exposures"]["banner"]["variant"] == "x"
    assert prof["events"]["purchase"] == 1 and prof["events"]["signup"] == 1


def test_one_command_per_decision_and_exposures_not_sent_twice(tmp_path, start_daemon, redis_server):
    """A decide of slots with goals that does not read its profile is one
    decide command (visit + every exposure); the same exposure again within
    the minute is not sent (the script would count nothing); the counters
    and the visit stay what they would be; a reset is seen by the next
    learner reading and exposures count again in the new experiment."""
    from conftest import wait_for
    srv = redis_server()
    r = srv.client()
    segs, cmap = learning_defs(tmp_path)
    d = start_daemon("--profiles", srv.url, "--profile-key-secret", SECRET, "--workers", "1",
                     segments=segs, content_map=cmap, geo=False, stats=True)
    c = d.client()
    P = {"consent": "personalization"}
    now = int(__import__("time").time())
    call(c, "decide", [{"slots": ["hero", "banner", "plain"], "vid": "one", "ts": now, **P}])
    assert wait_for(lambda: any(k.startswith(f"{NS}:x:{{banner}}") for k in r.keys("*")), timeout=5)
    stats = r.info("commandstats")
    calls = sum(v["calls"] - v["failed_calls"] for k, v in stats.items() if k.startswith("cmdstat_eval"))
    assert calls == 1, stats           # one script did the visit and both exposures
    assert wait_for(lambda: d.metrics().get("variantd_profile_new_total") == 1, timeout=5)
    for i in range(5):
        res = call(c, "decide", [{"slots": ["hero", "banner"], "vid": "one", "ts": now + 1 + i, **P}])
    m = d.metrics()
    assert m["variantd_profile_exposures_coalesced_total"] == 10
    assert m["variantd_profile_visits_coalesced_total"] == 5
    hero = res["slots"]["hero"]
    key = f"{'holdout' if hero.get('holdout') else hero['segment']}|{hero['variant']}"
    assert totals(r, "hero") == {f"e|{key}": "1"}
    assert totals(r, "banner") == {"e|everyone|x": "1"}
    # A reset: once the learner read the new epoch, the exposure counts anew.
    _, out, _ = variantctl("report", "--reset", "banner", "--redis", srv.url)

    def counted_anew():
        call(c, "decide", [{"slots": ["banner"], "vid": "one", "ts": now + 10, **P}])
        return totals(r, "banner", epoch=1) == {"e|everyone|x": "1"}
    assert wait_for(counted_anew, timeout=10)
