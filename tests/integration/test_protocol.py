"""The decision port's framing, methods and every kind of bad input."""
import socket
import struct
import time

import msgpack
import pytest

from conftest import write_defs

SEGMENTS = [
    {"id": "everyone", "match": {"all": []}},
    {"id": "mobile", "match": {"attr": "device.type", "op": "eq", "value": "mobile"}},
    {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
]
CONTENT = [
    {"slot": "hero", "rules": [{"segment": "berlin", "variant": "hero-berlin"},
                               {"segment": "mobile", "variant": "hero-mobile"}],
     "default": "hero-generic",
     "variants": {"hero-berlin": {"t": "berlin", "n": 1}, "hero-mobile": {"t": "mobile"},
                  "hero-generic": {"t": "generic"}}},
    {"slot": "banner", "rules": [{"segment": "everyone", "variant": "banner-all"}],
     "default": "banner-none", "variants": {"banner-all": None, "banner-none": None}},
]
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture
def small(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    return start_daemon(segments=seg, content_map=cm)


def test_ping_reports_ruleset(small):
    err, res = small.client().call("ping", [])
    assert err is None
    assert res["pong"] is True and res["ready"] is True
    assert res["version"].startswith("f-") and res["source"] == "files"


def test_decide_answers_each_slot_and_unknown_slot_alone(small):
    c = small.client()
    res = c.decide(slots=["hero", "nope", "banner"], ip="1.0.0.7", ua=IPHONE, segments=True)
    assert res["slots"]["hero"] == {"variant": "hero-berlin", "payload": {"t": "berlin", "n": 1},
                                    "segment": "berlin"}
    assert res["slots"]["banner"]["variant"] == "banner-all"
    assert res["slots"]["nope"] == {"error": "unknown slot"}
    assert sorted(res["segments"]) == ["berlin", "everyone", "mobile"]
    assert res["valid_until"] is None
    # The bare-map form of params is accepted too.
    err, res2 = c.call("decide", {"slots": ["hero"], "ua": IPHONE, "ip": "2.0.0.1"})
    assert err is None and res2["slots"]["hero"]["variant"] == "hero-mobile"
    # Default when nothing matches, with segment null.
    res3 = c.decide(slots=["hero"], ip="2.0.0.1")
    assert res3["slots"]["hero"] == {"variant": "hero-generic", "payload": {"t": "generic"},
                                     "segment": None}


def test_explain_has_context_and_trace(small):
    c = small.client()
    err, res = c.call("explain", [{"slots": ["hero"], "ip": "1.0.0.7", "ua": IPHONE,
                                   "url": "https://shop.example/x?utm_campaign=spring&a=1",
                                   "attrs": {"tier": "gold", "n": 3}}])
    assert err is None
    ctx = res["context"]
    assert ctx["geo.city"] == "Berlin" and ctx["geo.country"] == "DE"
    assert ctx["device.type"] == "mobile"
    assert ctx["url.query.utm_campaign"] == "spring"
    assert ctx["attr.tier"] == "gold" and ctx["attr.n"] == 3
    assert ctx["time.weekday"] in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    trace = res["trace"]["hero"]
    assert trace[0] == {"segment": "berlin", "variant": "hero-berlin", "matched": True, "chosen": True}
    assert trace[1]["segment"] == "mobile" and trace[1]["chosen"] is False
    # decide with explain: true is the same as explain.
    res2 = c.decide(slots=["hero"], ip="1.0.0.7", explain=True)
    assert "trace" in res2 and "context" in res2


def test_pipelining_1000_requests_in_order(small):
    c = small.client()
    packer = msgpack.Packer()
    blob = b"".join(packer.pack([0, i, "decide", [{"slots": ["hero"],
                                                  "ip": "1.0.0.7" if i % 2 else "2.0.0.9"}]])
                    for i in range(1, 1001))
    c.send_raw(blob)
    for i in range(1, 1001):
        reply = c.recv()
        assert reply is not None and reply[0] == 1 and reply[1] == i and reply[2] is None
        want = "hero-berlin" if i % 2 else "hero-generic"
        assert reply[3]["slots"]["hero"]["variant"] == want


def test_buffers_given_back_when_idle_then_regrown(small):
    """A connection's flat buffers are freed after two silent seconds and
    grown again on demand: afterwards a burst whose frames straddle the
    first 16 KiB allocation (a 40 KB frame among small ones, all in one
    write) is still answered in order and right."""
    c = small.client()
    assert c.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"
    time.sleep(3.2)
    packer = msgpack.Packer()
    frames = []
    for i in range(1, 301):
        req = {"slots": ["hero"], "ip": "1.0.0.7" if i % 2 else "2.0.0.9"}
        if i == 150:
            req["padding"] = "x" * 40000     # unknown keys are ignored
        frames.append(packer.pack([0, i, "decide", [req]]))
    c.send_raw(b"".join(frames))
    for i in range(1, 301):
        reply = c.recv()
        assert reply is not None and reply[1] == i and reply[2] is None
        want = "hero-berlin" if i % 2 else "hero-generic"
        assert reply[3]["slots"]["hero"]["variant"] == want
    # And once more after the buffers were given back a second time.
    time.sleep(3.2)
    assert c.decide(slots=["hero"], ip="2.0.0.9")["slots"]["hero"]["variant"] == "hero-generic"


def _read_replies(sock, n, timeout=20):
    """The next n replies on sock as their raw bytes, one by one."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    buf = b""
    out = []
    start = 0
    deadline = time.time() + timeout
    sock.settimeout(timeout)
    while len(out) < n:
        assert time.time() < deadline, f"{len(out)} of {n} replies"
        data = sock.recv(1 << 16)
        assert data, f"closed after {len(out)} of {n} replies"
        buf += data
        unpacker.feed(data)
        for _ in unpacker:
            end = unpacker.tell()
            out.append(buf[start:end])
            start = end
    return out


def test_pipelined_replies_byte_identical_to_one_at_a_time(tmp_path, start_daemon):
    """Replies are written straight into the connection's output buffer:
    600 pipelined frames in one write (decides of every size, replies
    larger than the room reserved for one, errors in between, msgids of
    every width) get, byte for byte, the replies the same frames get one
    at a time on fresh connections."""
    content = CONTENT + [
        {"slot": "big", "rules": [{"segment": "berlin", "variant": "big-berlin"}],
         "default": "big-none",
         "variants": {"big-berlin": {"blob": "b" * 5000}, "big-none": {"blob": "n" * 900}}}]
    seg, cm = write_defs(tmp_path, SEGMENTS, content)
    d = start_daemon(segments=seg, content_map=cm)
    shapes = [
        {"slots": ["hero"], "ip": "1.0.0.7"},
        {"slots": ["hero", "banner", "nope"], "ip": "2.0.0.9", "ua": IPHONE, "segments": True},
        {"slots": ["big"], "ip": "1.0.0.7"},
        {"slots": ["big", "hero"], "ip": "2.0.0.9", "url": "https://shop.example/?utm_source=x"},
        {"slots": 5},                                   # invalid_params: an error reply
        {"slots": ["banner"], "padding": "p" * 3000},   # a frame larger than most reads
    ]
    packer = msgpack.Packer(use_bin_type=True)
    frames = []
    for i in range(1, 601):
        msgid = i + (70000 if i % 7 == 0 else 200 if i % 5 == 0 else 0)
        frames.append(packer.pack([0, msgid, "decide", [shapes[i % len(shapes)]]]))
    c = d.client()
    c.send_raw(b"".join(frames))
    got = _read_replies(c.sock, len(frames))
    c.close()
    for i, frame in enumerate(frames):
        one = d.client()
        one.send_raw(frame)
        want = _read_replies(one.sock, 1)[0]
        one.close()
        assert got[i] == want, f"frame {i}: {got[i][:80]!r} != {want[:80]!r}"


def test_request_split_across_reads(small):
    c = small.client()
    data = msgpack.packb([0, 7, "decide", [{"slots": ["hero"], "ip": "1.0.0.7"}]])
    for b in data:
        c.send_raw(bytes([b]))
        time.sleep(0.001)
    reply = c.recv()
    assert reply[1] == 7 and reply[3]["slots"]["hero"]["variant"] == "hero-berlin"


def test_notifications_get_no_reply(small):
    c = small.client()
    c.send([2, "decide", [{"slots": ["hero"]}]])
    err, res = c.call("ping", [])
    assert err is None and res["pong"]


@pytest.mark.parametrize("params,needle", [
    ([{}], "slots is required"),
    ([{"slots": "hero"}], "slots must be an array"),
    ([{"slots": [1]}], "slots[0]"),
    ([{"slots": ["hero"], "ip": 5}], "ip must be a string"),
    ([{"slots": ["hero"], "ts": "now"}], "ts must be"),
    ([{"slots": ["hero"], "ts": 1e300}], "ts must be"),
    ([{"slots": ["hero"], "explain": "yes"}], "explain must be a boolean"),
    ([{"slots": ["hero"], "attrs": [1, 2]}], "attrs must be a map"),
    ([{"slots": ["hero"], "attrs": {"k": [1]}}], "attrs.k"),
    ([{"slots": ["hero"], "attrs": {f"k{i}": i for i in range(40)}}], "limit"),
    ([{"slots": ["s%d" % i for i in range(33)]}], "limit"),
    ([1, 2], "params must be"),
    ("x", "params must be"),
])
def test_invalid_params_get_error_and_connection_stays(small, params, needle):
    c = small.client()
    err, res = c.call("decide", params)
    assert res is None and err["code"] == "invalid_params" and needle in err["message"], err
    # Same connection keeps working.
    assert c.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"


def test_unknown_method_and_bad_shapes_keep_connection(small):
    c = small.client()
    err, _ = c.call("frobnicate", [])
    assert err["code"] == "method_not_found" and "frobnicate" in err["message"]
    c.send([0, 9, 42, []])                      # method not a string
    r = c.recv()
    assert r[1] == 9 and r[2]["code"] == "invalid_request"
    c.send([0, 10, "decide"])                   # three elements
    r = c.recv()
    assert r[1] == 10 and r[2]["code"] == "invalid_request"
    assert c.call("ping", [])[0] is None


@pytest.mark.parametrize("raw", [
    b"\xc1",                                     # never-used byte
    msgpack.packb({"not": "an array"}),          # not an RPC frame
    msgpack.packb("hello"),
    msgpack.packb([5, 1, "decide", []]),         # unknown type
    msgpack.packb([0, -1, "decide", []]),        # msgid not uint32
    b"\xdd\xff\xff\xff\xff",                     # array32 of 4 billion: must not allocate
    b"\xdf\xff\xff\xff\xff",                     # map32 of 4 billion
    b"\xdb\xff\xff\xff\xff",                     # str32 of 4 GB
])
def test_untrustworthy_frames_close_only_that_connection(small, raw):
    bystander = small.client()
    bad = small.client()
    bad.send_raw(raw)
    assert bad.closed(), "connection should be closed"
    assert bystander.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"


def test_too_large_frame_gets_error_with_msgid_then_close(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    d = start_daemon("--max-frame", "4096", segments=seg, content_map=cm)
    c = d.client()
    c.request("decide", [{"slots": ["hero"], "ua": "x" * 10000}], msgid=77)
    reply = c.recv()
    assert reply is not None and reply[1] == 77 and reply[2]["code"] == "frame_too_large"
    assert c.closed()
    # A frame under the limit is fine on a new connection.
    assert d.client().decide(slots=["hero"], ua="y" * 3000)["slots"]["hero"]["variant"]


def test_too_deep_frame_gets_error_then_close(small):
    c = small.client()
    deep = ["deep"]
    for _ in range(20):          # 20 nested arrays inside params: over max-depth 16
        deep = [deep]
    c.send([0, 5, "decide", deep])
    reply = c.recv()
    assert reply is not None and reply[1] == 5 and reply[2]["code"] == "too_deep"
    assert c.closed()


def test_hostile_context_values_still_answer(small):
    c = small.client()
    for req in [
        {"ip": "999.1.1.1"}, {"ip": "1.2.3"}, {"ip": ""}, {"ip": "::ffff:1.0.0.7"},
        {"ip": "not an ip at all" * 100}, {"ua": ""}, {"ua": "\x00\xff" * 20000},
        {"url": "::::////????"}, {"url": "http://[bad"}, {"referer": "\x01\x02"},
        {"lang": ";;;q=,,,"}, {"tz": "Mars/Olympus"}, {"vid": "v" * 5000},
    ]:
        req["slots"] = ["hero"]
        res = c.decide(**req)
        assert res["slots"]["hero"]["variant"] in ("hero-generic", "hero-berlin", "hero-mobile"), req
    # v4-mapped IPv6 is the IPv4 address.
    assert c.decide(slots=["hero"], ip="::ffff:1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"


def test_duplicate_slot_answered_once(small):
    res = small.client().decide(slots=["hero", "hero"], ip="1.0.0.7")
    assert list(res["slots"]) == ["hero"]


def test_idle_connections_are_closed(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    d = start_daemon("--idle-timeout", "1", segments=seg, content_map=cm)
    c = d.client()
    assert c.call("ping", [])[0] is None
    assert c.closed(timeout=5)


def test_idle_timeout_spares_a_talking_connection(tmp_path, start_daemon):
    """The idle timeout counts from the last request, not from the connect:
    a connection that talks every 0.4 s outlives several idle-timeouts."""
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    d = start_daemon("--idle-timeout", "1", segments=seg, content_map=cm)
    c = d.client()
    for _ in range(8):
        assert c.call("ping", [])[0] is None
        time.sleep(0.4)
    assert c.call("ping", [])[0] is None
    assert c.closed(timeout=5)


def test_max_connections(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    d = start_daemon("--max-connections", "2", segments=seg, content_map=cm)
    time.sleep(0.3)   # let the daemon see the readiness probe's connection close
    a, b = d.client(), d.client()
    assert a.call("ping", [])[0] is None and b.call("ping", [])[0] is None
    # The third is accepted by the kernel but closed by us (or left in the backlog).
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=2)
    extra.sendall(msgpack.packb([0, 1, "ping", []]))
    extra.settimeout(2)
    try:
        got = extra.recv(100)
    except (socket.timeout, ConnectionResetError):
        got = b""
    assert got == b""
    a.close()
    time.sleep(0.3)
    assert d.client().call("ping", [])[0] is None
    err, stats_probe = b.call("ping", [])
    assert err is None


def test_slow_reader_does_not_block_others(small):
    """A client pipelining without reading stops being read; others go on."""
    hog = small.client()
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    blob = msgpack.packb([0, 1, "explain", [{"slots": ["hero", "banner"], "ip": "1.0.0.7"}]]) * 2000
    hog.sock.settimeout(2)
    try:
        hog.send_raw(blob)
    except socket.timeout:
        pass
    other = small.client()
    assert other.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"


def test_sigterm_exits_cleanly(small):
    c = small.client()
    assert c.call("ping", [])[0] is None
    assert small.stop() == 0


def test_explain_lists_repeated_names_once_with_the_value_rules_see(small):
    err, res = small.client().call("explain", [{
        "slots": ["hero"], "url": "https://shop.example/?a=1&a=2&utm%5Fsource=x&b=",
        "attrs": {"tier": "gold"}}])
    assert err is None
    ctx = res["context"]
    assert ctx["url.query.a"] == "1" and ctx["url.query.utm_source"] == "x" and ctx["url.query.b"] == ""
    assert ctx["attr.tier"] == "gold"


def test_segments_list_is_opt_in(small):
    """Without "segments": true (or explain) the result has no `segments`
    key: a decision evaluates only what the requested slots' rules reach.
    The chosen variants and valid_until are the same either way."""
    c = small.client()
    lean = c.decide(slots=["hero", "banner"], ip="1.0.0.7", ua=IPHONE)
    full = c.decide(slots=["hero", "banner"], ip="1.0.0.7", ua=IPHONE, segments=True)
    assert "segments" not in lean and sorted(full["segments"]) == ["berlin", "everyone", "mobile"]
    assert lean["slots"] == full["slots"] and lean["valid_until"] == full["valid_until"]
    assert set(lean) == {"version", "slots", "valid_until"}
    off = c.decide(slots=["hero"], ip="1.0.0.7", ua=IPHONE, segments=False)
    assert "segments" not in off
    err, ex = c.call("explain", [{"slots": ["hero"], "ip": "1.0.0.7", "ua": IPHONE}])
    assert err is None and "segments" in ex
    err, _ = c.call("decide", [{"slots": ["hero"], "segments": "yes"}])
    assert err and "segments must be a boolean" in str(err)


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_max_output_bounds_replies_written_straight_in(tmp_path, start_daemon):
    """A decide's reply is written straight into the connection's output
    buffer; max-output still stops reading a client that pipelines without
    reading: 1,500 decides whose replies are 20 KB each (30 MB) leave the
    daemon's memory far below that, and once read every reply comes, in
    order."""
    import threading
    content = CONTENT + [
        {"slot": "big", "rules": [], "default": "big-all",
         "variants": {"big-all": {"blob": "z" * 20000}}}]
    seg, cm = write_defs(tmp_path, SEGMENTS, content)
    d = start_daemon("--max-output", "4096", segments=seg, content_map=cm)
    c = d.client()
    assert c.decide(slots=["big"])["slots"]["big"]["variant"] == "big-all"   # buffers allocated
    base = _rss_kb(d.proc.pid)
    n = 1500
    packer = msgpack.Packer(use_bin_type=True)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)   # the kernel holds little of it
    payload = b"".join(packer.pack([0, i, "decide", [{"slots": ["big"]}]]) for i in range(n))
    sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
    sender.start()
    time.sleep(2)
    grown = _rss_kb(d.proc.pid) - base
    assert grown < 10 * 1024, f"daemon grew by {grown} KB while the client did not read"
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    got = 0
    deadline = time.time() + 60
    while got < n:
        assert time.time() < deadline, f"{got} of {n} replies"
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            raise AssertionError(f"no reply for 20 s after {got} of {n}")
        assert data, f"closed after {got} of {n} replies"
        unpacker.feed(data)
        for msg in unpacker:
            assert msg[0] == 1 and msg[1] == got and msg[2] is None, msg[:3]
            assert msg[3]["slots"]["big"]["variant"] == "big-all"
            got += 1
    sender.join(10)
    s.close()
    # the connection and the daemon go on
    assert c.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "hero-berlin"
