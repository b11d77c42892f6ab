"""Allocation-failure injection (core/alloc.h: VD_ALLOC_FAIL_EVERY=N makes
every Nth allocation of the daemon fail, counted from start-up), with N
swept: whatever allocation fails, the daemon refuses to start with an error
exit, answers a request with an error reply, or refuses a reload and keeps
the old ruleset — never a crash, a sanitizer or leak report, a hang, or a
wrong answer (every answer given equals the answer of a daemon without
injection, for the ruleset it says it used).

A representative workload per N: the example definitions with the demo
GeoIP database, the decision, edge and stats ports; 12 decides, 3 edge
GETs, /metrics; a SIGHUP that reloads changed definitions; 12 decides again;
SIGTERM. `make integration` sweeps a short list of N; `make alloc-fail`
sweeps many more (VD_ALLOC_SWEEP=full)."""
import json
import os
import shutil
import signal
import socket
import time

import msgpack
import pytest

from conftest import DEMO_DB, ROOT, Daemon, http_request, wait_for

# A small zoneinfo (the demo database's zones) keeps start-up to a few
# hundred allocations, so the sweep reaches GeoIP, the compiler, the ports,
# connections and the reload, not only the time zone loader.
ZONES = ["UTC", "America/Chicago", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo",
         "America/Toronto", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "Europe/Amsterdam",
         "Europe/Berlin", "Europe/London", "Europe/Madrid", "Europe/Paris", "Europe/Vienna",
         "Europe/Zurich", "zone1970.tab", "zone.tab"]
SHORT = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597]
FULL = sorted(set(list(range(1, 120)) + list(range(120, 700, 7)) + list(range(700, 2500, 37)) +
                  [3001, 4093, 6007, 8191, 12011, 16381]))
SWEEP = FULL if os.environ.get("VD_ALLOC_SWEEP") == "full" else SHORT

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
TS = 1733335200  # a fixed instant: time.* and valid_until are the same in every run


def slots():
    names = []
    for f in sorted((ROOT / "content-map").glob("*.json")):
        doc = json.loads(f.read_text())
        names += [s["slot"] for s in (doc if isinstance(doc, list) else [doc])]
    return names


def requests():
    sl = slots()
    base = [
        {"ip": "1.0.0.7", "ua": IPHONE, "referer": "https://www.google.com/"},
        {"ip": "2.0.0.1", "ua": DESKTOP, "url": "https://shop.example/?utm_source=newsletter&utm_medium=email"},
        {"ip": "::ffff:1.0.0.7", "ua": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
        {"ip": "10.1.2.3", "lang": "de-DE,de;q=0.9", "attrs": {"cart_value": 250, "tier": "vip"}},
        {"ip": "3.0.0.1", "ua": IPHONE, "vid": "visitor-42", "tz": "America/New_York"},
        {"ip": "nonsense", "ua": "", "referer": "not a url"},
    ]
    out = []
    for i, r in enumerate(base):
        out.append(dict(r, slots=sl, ts=TS))
        out.append(dict(r, slots=sl[: 1 + i % len(sl)], ts=TS + 3600 * 7, vid=f"v{i}"))
    return out


def zoneinfo(tmp_path):
    z = tmp_path / "zoneinfo"
    if not z.exists():
        for name in ZONES:
            (z / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f"/usr/share/zoneinfo/{name}", z / name)
    return z


def workdir(tmp_path):
    """The example definitions copied, plus a changed copy for the reload."""
    d = tmp_path / "defs"
    shutil.copytree(ROOT / "segments", d / "segments")
    shutil.copytree(ROOT / "content-map", d / "content-map")
    if (ROOT / "scores").is_dir():      # found beside segments/, as in the repository
        shutil.copytree(ROOT / "scores", d / "scores")
    return d


def change(d):
    f = d / "content-map" / "home.json"
    doc = json.loads(f.read_text())
    doc[0]["default"] = sorted(doc[0]["variants"])[0]
    doc[0]["rules"] = doc[0]["rules"][1:]
    f.write_text(json.dumps(doc))


def call(sock, unpacker, msgid, req, method="decide"):
    sock.sendall(msgpack.packb([0, msgid, method, [req]], use_bin_type=True))
    while True:
        for reply in unpacker:
            return reply
        data = sock.recv(1 << 16)
        if not data:
            return None
        unpacker.feed(data)


def decide_all(port, reqs):
    """[(error, result)] per request; None for a request whose connection the
    daemon closed (allowed: it could not take the connection)."""
    out = []
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return [None] * len(reqs)
    un = msgpack.Unpacker(raw=False, strict_map_key=False)
    try:
        for i, r in enumerate(reqs):
            reply = call(s, un, i + 1, r)
            if reply is None:
                out += [None] * (len(reqs) - len(out))
                break
            assert reply[0] == 1 and reply[1] == i + 1, reply
            out.append((reply[2], reply[3]))
    except (ConnectionResetError, BrokenPipeError):
        out += [None] * (len(reqs) - len(out))
    finally:
        s.close()
    return out


EDGE_PATHS = ["/v1/decide?slot=home.hero&slot=nav.promo",
              "/v1/decide?slot=home.hero&url=https%3A%2F%2Fshop.example%2F%3Futm_source%3Dx",
              "/v1/decide?slot=nope"]
EDGE_HEADERS = {"User-Agent": IPHONE, "X-Real-IP": "1.0.0.7"}


def edge_all(port):
    out = []
    for p in EDGE_PATHS:
        try:
            st, _, body = http_request(port, "GET", p, headers=EDGE_HEADERS)
        except OSError:
            out.append(None)
            continue
        out.append((st, body))
    return out


def strip(result):
    """An answer without what legitimately differs between runs."""
    if isinstance(result, dict):
        return {k: strip(v) for k, v in result.items() if k not in ("age", "loaded_at")}
    return result


def strip_ref(result):
    r = strip(result)
    r.pop("version", None)
    return r


def reference(tmp_path, defs_dir):
    d = Daemon(tmp_path, args=["--workers", "1", "--zoneinfo", str(zoneinfo(tmp_path))],
               segments=defs_dir / "segments", content_map=defs_dir / "content-map",
               http=True, stats=True)
    d.start()
    try:
        dec = decide_all(d.port, requests())
        edge = edge_all(d.http_port)
    finally:
        assert d.stop() == 0
    assert all(x is not None and x[0] is None for x in dec)
    return {"version": dec[0][1]["version"], "decide": [strip_ref(x[1]) for x in dec],
            "edge": [(st, json.loads(body)) for st, body in edge]}


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alloc-ref")
    d = workdir(tmp)
    old = reference(tmp, d)
    change(d)
    new = reference(tmp, d)
    assert old["version"] != new["version"]
    return old, new


def check_answers(got, allowed, what):
    """Every answer that is not an error equals the answer of one of the
    allowed reference rulesets (versions differ: file-mode versions hash the
    paths too), and one version string always means the same ruleset."""
    cands = {}
    for i, x in enumerate(got):
        if x is None:
            continue
        err, res = x
        if err is not None:
            continue          # an error reply is allowed
        r = strip(res)
        v = r.pop("version", None)
        which = {k for k, ref in enumerate(allowed) if ref["decide"][i] == r}
        assert which, f"{what} {i}: wrong answer (version {v}): {r}"
        cands[v] = cands.get(v, which) & which
        assert cands[v], f"{what} {i}: version {v} answers as two different rulesets"


def check_edge(got, allowed, what):
    for i, x in enumerate(got):
        if x is None:
            continue
        st, body = x
        if st >= 500:
            continue          # out of memory may answer 5xx
        b = json.loads(body)
        if isinstance(b, dict):
            b.pop("version", None)
        ok = False
        for r in allowed:
            rb = dict(r["edge"][i][1]) if isinstance(r["edge"][i][1], dict) else r["edge"][i][1]
            if isinstance(rb, dict):
                rb.pop("version", None)
            ok = ok or (st == r["edge"][i][0] and b == rb)
        assert ok, f"{what} {i}: {st} {body[:300]!r}"


def sanitizer_report(log):
    return any(s in log for s in ("Sanitizer", "runtime error:", "Segmentation", "double free",
                                  "corrupted", "Aborted"))


def start_injected(tmp_path, n, var, dd, args, **kw):
    """A daemon with every nth allocation failing (env var `var`): up and
    listening, or None when it refused to start — with an error exit, not a
    crash or a sanitizer report."""
    env = {var: str(n),
           # an ASan/LSan report must not look like an ordinary error exit
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
           "UBSAN_OPTIONS": "halt_on_error=1:exitcode=66"}
    d = Daemon(tmp_path, args=["--workers", "1", "--zoneinfo", str(zoneinfo(tmp_path))] + args,
               segments=dd / "segments", content_map=dd / "content-map", env=env, **kw)
    d.start(expect_ready=False)
    up = wait_for(lambda: d.proc.poll() is not None or _listening(d.port), 20, 0.02)
    assert up, "neither listening nor exited within 20 s"
    if d.proc.poll() is None:
        return d
    rc = d.proc.returncode
    log = d.read_log()
    d.log.close()
    assert rc > 0 and rc != 66, f"N={n}: start-up ended with {rc}:\n{log[-3000:]}"
    assert not sanitizer_report(log), log[-3000:]
    return None


def stop_clean(d, n):
    """Stops d; no sanitizer report and a clean exit. Returns its log."""
    rc = d.stop(timeout=30)
    log = d.read_log()
    assert not sanitizer_report(log), f"N={n}:\n{log[-3000:]}"
    assert rc in (0, 1), f"N={n}: exit {rc}:\n{log[-3000:]}"
    return log


@pytest.mark.parametrize("n", SWEEP)
def test_every_nth_allocation_fails(tmp_path, refs, n):
    old, new = refs
    dd = workdir(tmp_path)
    d = start_injected(tmp_path, n, "VD_ALLOC_FAIL_EVERY", dd, [], http=True, stats=True)
    if d is None:
        return
    try:
        reqs = requests()
        check_answers(decide_all(d.port, reqs), [old], f"N={n} before reload")
        check_edge(edge_all(d.http_port), [old], f"N={n} edge")
        try:
            st, _, _ = http_request(d.stats_port, "GET", "/metrics")
            assert st == 200 or st >= 500
        except OSError:
            pass
        change(dd)
        d.signal(signal.SIGHUP)
        time.sleep(0.5)
        after = decide_all(d.port, reqs)
        check_answers(after, [old, new], f"N={n} after reload")
        assert d.proc.poll() is None, f"N={n}: daemon died:\n{d.read_log()[-3000:]}"
    finally:
        stop_clean(d, n)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


# With profiles on (a real redis-server): tracks, decides that read the
# profile, profile/flag/forget, with every Nth allocation failing from the
# moment the daemon serves (VD_ALLOC_FAIL_EVERY_SERVING: the request path
# and the profile link, not start-up). Answers depend on which writes got
# through, so each is checked for its form, not against a reference; what
# must hold is the rest: no crash, sanitizer or leak report, hang, or
# unclean exit.
PSWEEP = (list(range(1, 60)) if os.environ.get("VD_ALLOC_SWEEP") == "full"
          else [1, 2, 3, 5, 8, 13, 21, 34, 55])
PSECRET = "00112233445566778899aabbccddeeff"


def profile_calls(port):
    """(method, params, reply or None) for a workload of every profile method."""
    calls = []
    for i in range(4):
        v = f"alloc-{i % 2}"
        calls += [("track", {"event": "add_to_cart", "category": "sneakers", "vid": v,
                             "consent": "personalization", "ts": TS + i}),
                  ("decide", dict(requests()[i], vid=v, consent="personalization", ts=TS + 60 + i))]
    calls += [("flag", {"vid": "alloc-0", "flag": "critical_ticket", "ttl": 600}),
              ("profile", {"vid": "alloc-0"}),
              ("decide", {"slots": slots(), "vid": "alloc-0", "uid": "cust-0", "consent": "personalization"}),
              ("forget", {"uid": "cust-0"})]
    out = []
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return [(m, p, None) for m, p in calls]
    un = msgpack.Unpacker(raw=False, strict_map_key=False)
    try:
        for i, (m, p) in enumerate(calls):
            reply = call(s, un, i + 1, p, m)
            if reply is None:
                out += [(m2, p2, None) for m2, p2 in calls[i:]]
                break
            assert reply[0] == 1 and reply[1] == i + 1, reply
            out.append((m, p, reply))
    except (ConnectionResetError, BrokenPipeError):
        out += [(m, p, None) for m, p in calls[len(out):]]
    finally:
        s.close()
    return out


@pytest.mark.parametrize("n", PSWEEP)
def test_every_nth_allocation_fails_with_profiles(tmp_path, redis_server, n):
    store = redis_server()
    dd = workdir(tmp_path)
    d = start_injected(tmp_path, n, "VD_ALLOC_FAIL_EVERY_SERVING", dd,
                       ["--profiles", store.url, "--profile-key-secret", PSECRET,
                        "--profile-timeout", "500", "--scores", str(dd / "scores")])
    if d is None:
        return
    try:
        # Twice, the second after the profile link's reconnect backoff (a
        # failure may take the link down): failures land deeper the 2nd time.
        got = profile_calls(d.port)
        time.sleep(0.4)
        got += profile_calls(d.port)
        for m, p, reply in got:
            if reply is None or reply[2] is not None:
                continue          # the connection or the request refused: allowed
            res = reply[3]
            if m == "decide":
                assert res["profile"] in ("ok", "unavailable", "timeout"), res
                assert set(res["slots"]) == set(p["slots"]), res
            elif m in ("track", "flag"):
                assert res == {"ok": True}, res
            elif m == "profile":
                assert res["found"] in (True, False) and isinstance(res["scores"], dict), res
            else:
                assert set(res) == {"deleted"}, res
        assert d.proc.poll() is None, f"N={n}: daemon died:\n{d.read_log()[-3000:]}"
    finally:
        log = stop_clean(d, n)
    # The workload makes more than 59 allocations once serving: each N
    # failed at least one of them (else this case tested nothing).
    assert "allocations failed on purpose" in log, f"N={n}: no failure injected"
