"""What third-party MessagePack clients send, accepted as the contract means
it: PHP's empty array where a map is expected, a PHP list with gaps (a map
with integer keys), strings packed as `bin` (Python bytes, ASGI headers);
and the counter for splits reached without a vid."""
import msgpack
import pytest

from conftest import write_defs

SEGMENTS = [
    {"id": "everyone", "match": {"all": []}},
    {"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}},
    {"id": "gold", "match": {"attr": "attr.tier", "op": "eq", "value": "gold"}},
]
CONTENT = [
    {"slot": "hero", "rules": [{"segment": "gold", "variant": "hero-gold"},
                               {"segment": "berlin", "variant": "hero-berlin"}],
     "default": "hero-generic",
     "variants": {"hero-gold": None, "hero-berlin": None, "hero-generic": None}},
    {"slot": "banner", "rules": [{"segment": "everyone", "variant": "banner-all"}],
     "default": "banner-none", "variants": {"banner-all": None, "banner-none": None}},
    {"slot": "ab", "rules": [{"segment": "everyone", "split": [
        {"variant": "ab-a", "weight": 50}, {"variant": "ab-b", "weight": 50}]}],
     "default": "ab-a", "variants": {"ab-a": None, "ab-b": None}},
]


@pytest.fixture
def d(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEGMENTS, CONTENT)
    return start_daemon(segments=seg, content_map=cm, http=True, stats=True)


def raw_call(d, frame):
    c = d.client()
    try:
        c.send_raw(frame)
        reply = c.recv()
        assert reply is not None and reply[0] == 1, reply
        return reply[2], reply[3]
    finally:
        c.close()


def test_empty_array_stands_for_an_empty_map(d):
    c = d.client()
    # PHP: ['slots' => ['hero'], 'attrs' => []]
    err, res = c.call("decide", [{"slots": ["hero"], "attrs": []}])
    assert err is None, err
    assert res["slots"]["hero"]["variant"] == "hero-generic"
    # PHP's [[]] and []: an empty request map, refused for what it lacks.
    for params in ([[]], []):
        err, _ = c.call("decide", params)
        assert err["code"] == "invalid_params"
        assert err["message"] == "slots is required (an array of slot names)", params
    # A non-empty array is still not a map.
    err, _ = c.call("decide", [{"slots": ["hero"], "attrs": [1]}])
    assert err["message"] == "attrs must be a map"
    # The JSON codec agrees (json_encode([]) is []).
    st, _, body = d.http("POST", "/v1/decide", {"slots": ["hero"], "attrs": []})
    assert st == 200, body


def test_gappy_php_list_of_slots(d):
    # PHP: array_filter(['hero', '', 'banner']) -> [0 => 'hero', 2 => 'banner']
    err, res = raw_call(d, msgpack.packb([0, 1, "decide", [{"slots": {0: "hero", 2: "banner"}}]]))
    assert err is None, err
    assert set(res["slots"]) == {"hero", "banner"}
    # A map with string keys is no list.
    err, _ = raw_call(d, msgpack.packb([0, 2, "decide", [{"slots": {"a": "hero"}}]]))
    assert err["code"] == "invalid_params"
    assert "integer keys" in err["message"]
    # json_encode writes the same PHP array with string keys: the edge port agrees.
    st, _, body = d.http("POST", "/v1/decide", {"slots": {"0": "hero", "2": "banner"}, "attrs": []})
    assert st == 200, body
    import json
    assert set(json.loads(body)["slots"]) == {"hero", "banner"}
    st, _, body = d.http("POST", "/v1/decide", {"slots": {"a": "hero"}})
    assert st == 400 and b"integer keys" in body


def test_bin_strings_are_read_as_utf8(d):
    frame = msgpack.packb([0, 7, b"decide", [{b"slots": [b"hero", b"banner"],
                                              b"ip": b"1.0.0.7", b"attrs": {b"tier": b"none"}}]],
                          use_bin_type=True)
    err, res = raw_call(d, frame)
    assert err is None, err
    assert res["slots"]["hero"]["variant"] == "hero-berlin"
    assert res["slots"]["banner"]["variant"] == "banner-all"
    frame = msgpack.packb([0, 8, "decide", [{"slots": ["hero"], "attrs": {b"tier": b"gold"}}]],
                          use_bin_type=True)
    err, res = raw_call(d, frame)
    assert err is None and res["slots"]["hero"]["variant"] == "hero-gold"


@pytest.mark.parametrize("req,msg", [
    ({"slots": ["hero"], "ua": b"\xff\xfe"}, "ua is binary that is not UTF-8"),
    ({"slots": [b"he\xc0\xafro"]}, "slots[0] is binary that is not UTF-8"),
    ({"slots": ["hero"], "attrs": {"tier": b"\xed\xa0\x80"}}, "attrs.tier is binary that is not UTF-8"),
    ({"slots": ["hero"], b"\x80": "x"}, "request keys must be strings (UTF-8)"),
])
def test_bin_that_is_not_utf8_is_a_clear_error(d, req, msg):
    err, _ = raw_call(d, msgpack.packb([0, 3, "decide", [req]], use_bin_type=True))
    assert err == {"code": "invalid_params", "message": msg}


def test_splits_without_vid_are_counted(d):
    c = d.client()
    m0 = d.metrics()["variantd_splits_without_vid_total"]
    assert m0 == 0
    arms = {c.decide(slots=["ab", "hero"])["slots"]["ab"]["variant"] for _ in range(4)}
    assert len(arms) == 1                 # no vid: one arm for everyone
    c.decide(slots=["ab"], vid="visitor-1")
    c.decide(slots=["hero"])              # no split reached
    assert d.metrics()["variantd_splits_without_vid_total"] == 4
    status, _, body = d.stats_get("/stats")
    import json
    assert json.loads(body)["metrics"]["splits.no_vid"] == 4
