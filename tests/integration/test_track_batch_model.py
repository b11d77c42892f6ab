"""The track batch script (daemon/profile/scripts.c, track_batch_lua) against
a model of vd_visit_touch + vd_score_add, field by field and bit for bit:
many visitors, several visits each, events out of order, keys whose events
have different shapes (scored, counted only, neither), uid (known) and vid
profiles, batches of one and of many keys. The raw hash is compared, so
peak and peak_t (which the profile method does not show) are checked too."""
import random
import struct
import time

import pytest

from test_profiles import DAY, SECRET, SCORES, P, write_profile_defs

GAP = 30 * 60
HL = {s["id"]: s["half_life_days"] * DAY for s in SCORES}
# (type, category) -> [(score, points)] as vd_score_counts decides it here.
KINDS = {
    ("product_view", "sneakers"): [("sneakers", 1)],
    ("product_view", None): [],            # counted, scores nothing (category)
    ("add_to_cart", "sneakers"): [("sneakers", 5)],
    ("add_to_cart", "shoes"): [],
    ("page_view", None): [("engagement", 1)],
    ("other_event", None): [],             # neither counted nor scored
}
COUNTED = {"product_view", "add_to_cart", "page_view"}


def score_add(st, pts, ts, hl):
    """track_batch_lua's (and event_lua's) arithmetic, in Python floats (pow)."""
    val, t, pk, pt = st
    if val == 0 and t == 0:
        val, t = pts, ts
    elif ts >= t:
        val = val * 2 ** (-(ts - t) / hl) + pts
        t = ts
    else:
        val = val + pts * 2 ** (-(t - ts) / hl)
    if pk > 0 and ts <= pt:
        pk = pk + pts * 2 ** (-(pt - ts) / hl)
    if val >= pk:
        pk, pt = val, t
    return (val, float(t), pk, float(pt))


def model(events, known):
    h = {"v": 0}
    for kind, ts in events:
        if h["v"] == 0:
            h.update(v=1, fs=ts, ls=ts, vs=ts, pe=0)
        else:
            if ts < h["fs"]:
                h["fs"] = ts
            if ts - h["ls"] > GAP:
                h.update(v=h["v"] + 1, pe=h["ls"], vs=ts, ls=ts)
            elif ts > h["ls"]:
                h["ls"] = ts
        if kind[0] in COUNTED:
            h["e:" + kind[0]] = h.get("e:" + kind[0], 0) + 1
        for sid, pts in KINDS[kind]:
            h["s:" + sid] = score_add(h.get("s:" + sid, (0, 0, 0, 0)), pts, ts, HL[sid])
    if known:
        h["k"] = 1
    return h


def decode(raw):
    out = {}
    for f, v in raw.items():
        f = f.decode()
        if f.startswith("s:"):
            assert len(v) == 33 and v[0] == 2, (f, v)
            out[f] = struct.unpack("<dddd", v[1:])
        else:
            out[f] = int(v)
    return out


@pytest.mark.parametrize("batch_keys,warm", [(1, False), (64, False), (1, True), (64, True)])
def test_track_batches_match_the_model_bit_for_bit(tmp_path, start_daemon, redis_server, batch_keys, warm):
    """warm: the script already in Redis' cache. Cold, the daemon's first
    batches used to be answered NOSCRIPT and sent again as EVAL after the
    EVALSHAs sent meanwhile had run: a profile's events applied out of order
    (another visit count, the last bits of a score, another peak)."""
    store = redis_server()
    segs, cmap = write_profile_defs(tmp_path)
    d = start_daemon("--profiles", store.url, "--profile-key-secret", SECRET, "--workers", "1",
                     "--profile-batch-keys", str(batch_keys), "--profile-timeout", "500",
                     segments=segs, content_map=cmap, stats=True)
    c = d.client()
    rng = random.Random(11 + batch_keys)
    base = int(time.time()) - 20 * DAY
    who = [("vid", f"m-{i}") for i in range(40)] + [("uid", f"u-{i}") for i in range(20)]
    events = {w: [] for w in who}
    frame = bytearray()
    kinds = list(KINDS)
    # Each visitor's first event: a distinct, earliest ts, so its key is
    # found by its first_seen.
    order = []
    for i, w in enumerate(who):
        order.append((w, kinds[i % len(kinds)], base - 1000 * (i + 1)))
    for _ in range(3000):
        w = who[rng.randrange(len(who))]
        kind = kinds[rng.randrange(len(kinds))]
        # several visits over three days, out of order within a day
        ts = base + rng.randrange(3) * DAY + rng.choice((0, 7200, 14400)) + rng.randrange(1500)
        order.append((w, kind, ts))
    for w, kind, ts in order:
        events[w].append((kind, ts))
        p = P(event=kind[0], ts=ts, **{w[0]: w[1]})
        if kind[1]:
            p["category"] = kind[1]
        frame += c.packer.pack([2, "track", [p]])
    if warm:
        # The batch script in Redis' cache first: an EVALSHA answered
        # NOSCRIPT is sent again as EVAL after commands sent meanwhile.
        err, _ = c.call("track", [P(event="other_event", vid="warm")])
        assert err is None, err
    c.send_raw(bytes(frame))
    err, _ = c.call("track", [P(event="other_event", vid="sync")])
    assert err is None, err
    m = d.metrics()
    assert m["variantd_track_lost_total"] == 0
    assert m["variantd_track_events_total"] == len(order) + 1 + warm
    r = store.client(raw=True)
    by_fs = {}
    for k in r.keys("vdp1:*"):
        h = decode(r.hgetall(k))
        by_fs[h["fs"]] = h
    for i, w in enumerate(who):
        want = model(events[w], w[0] == "uid")
        got = by_fs[base - 1000 * (i + 1)]
        assert got == want, (w, {f: (got.get(f), want.get(f)) for f in set(got) | set(want)
                                 if got.get(f) != want.get(f)})


def test_a_decide_behind_a_track_sees_it_with_the_script_cache_cold(tmp_path, start_daemon,
                                                                  redis_server):
    """docs/PROFILES.md: a decide after a track on the same connection sees
    it. The visit script is cached (a decide ran), the track batch script
    is not (no track yet since the daemon connected). The track's batch
    went first as EVALSHA, was answered NOSCRIPT and sent again as EVAL --
    after the decide's read had run without it."""
    store = redis_server()
    segs, cmap = write_profile_defs(tmp_path)
    d = start_daemon("--profiles", store.url, "--profile-key-secret", SECRET, "--workers", "1",
                     "--profile-timeout", "500", segments=segs, content_map=cmap, stats=True)
    c = d.client()
    now = int(time.time())
    r = c.decide(slots=["score"], vid="ryw", ts=now, **P())
    assert r["profile"] == "ok" and r["slots"]["score"]["variant"] == "no"
    frame = c.packer.pack([2, "track", [P(event="add_to_cart", category="sneakers", vid="ryw",
                                            ts=now + 1)]])
    frame += c.packer.pack([0, 77, "decide", [P(slots=["score"], vid="ryw", ts=now + 1)]])
    c.send_raw(frame)
    reply = c.recv()
    assert reply[1] == 77 and reply[2] is None, reply
    assert reply[3]["profile"] == "ok"
    assert reply[3]["slots"]["score"]["variant"] == "yes", reply[3]   # 5 points of the cart
