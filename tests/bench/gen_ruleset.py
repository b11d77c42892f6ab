#!/usr/bin/python3
"""Generates a synthetic but realistic definition set for scale benchmarks:
N segments over S slots, each slot with rules over its share of segments.

usage: gen_ruleset.py OUTDIR N_SEGMENTS [N_SLOTS=20] [--reference] [--shape=SHAPE]
                     [--profile-slots=K]
writes OUTDIR/segments/gen.json and OUTDIR/content-map/gen.json.

--profile-slots=K (issue 9's profile benchmark) also writes
OUTDIR/scores/gen.json (three decayed interest scores) and gives every
second segment of the first K slots a visitor.* condition (returning
visitor, known customer, an interest score, a win-back decline, a support
flag), so those slots read the profile and the others never do.

Shapes (issue 13: rule sets a user would bring, not only the one the index
was tuned on); every shape has N_SLOTS slots, so pages of 1, 5 and 20 slots
can be asked of each:
  ours     (default) a specific anchor (campaign, path, city, attr, query)
           plus 0-2 broad conditions per segment; each slot's rules use its
           own share of the segments
  country  each segment keyed on 1-4 countries, most adding a device type,
           a medium, an hour window or a path prefix; long rule lists: every
           slot has ~3 x N/N_SLOTS rules over all segments (shared)
  nested   deeply nested any/all/not with references to earlier segments,
           leaves on URL, query, campaign and language; no top-level guard
  url      dominated by url.path prefix/contains and url.query.NAME rules
The traffic model (gen_traffic.py) draws its paths, campaigns and query
values from the same vocabularies (VOCAB_SPACE), so each shape matches a
realistic share of visitors at 1,000 and at 10,000 segments.
--reference adds slot "hero" with the decision that ../shared/bench's
reference systems (nginx geoip2+maps, node) implement (7 segments; the
generated ones fill up to N_SEGMENTS over the other slots)."""
import json
import random
import sys
from pathlib import Path

COUNTRIES = ["DE", "US", "FR", "GB", "JP", "AU", "BR", "IN", "NL", "CH", "AT", "CA", "ES", "NZ",
             "IT", "PL", "SE", "NO", "DK", "FI", "BE", "PT", "IE", "MX", "AR", "ZA", "KR", "CN"]
CITIES = ["Berlin", "New York", "Paris", "London", "Tokyo", "Sydney", "Hamburg", "Munich", "Madrid"]
DEVICES = ["mobile", "tablet", "desktop", "other"]
MEDIA = ["organic", "paid", "social", "email", "referral", "direct"]
LANGS = ["de", "en", "fr", "es", "ja", "nl", "pt", "it"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def broad(r):
    """A broad condition that many visitors meet (device, time, medium...)."""
    kind = r.randrange(6)
    if kind == 0:
        return {"attr": "device.type", "op": "eq", "value": r.choice(DEVICES)}
    if kind == 1:
        a = r.randrange(24)
        return {"attr": "time.hour", "op": "between", "value": [a, (a + r.randint(1, 8)) % 24]}
    if kind == 2:
        return {"attr": "time.weekday", "op": "in", "value": r.sample(WEEKDAYS, r.randint(1, 3))}
    if kind == 3:
        return {"attr": "source.medium", "op": "in", "value": r.sample(MEDIA, r.randint(1, 2))}
    if kind == 4:
        return {"attr": "lang", "op": "eq", "value": r.choice(LANGS)}
    return {"attr": "geo.country", "op": "in", "value": r.sample(COUNTRIES, r.randint(1, 4))}


def anchor(r, space):
    """A specific condition, as large sets have: one campaign, one product
    category, one city, one landing host. The value space grows with the
    set, so a visitor meets a constant number of them at any size."""
    kind = r.randrange(5)
    k = r.randrange(space)
    if kind == 0:
        return {"attr": "source.campaign", "op": "eq", "value": f"camp-{k}"}
    if kind == 1:
        return {"attr": "url.path", "op": "prefix", "value": f"/c/{k}/"}
    if kind == 2:
        return {"attr": "geo.city", "op": "in", "value": [CITIES[k % len(CITIES)] if k < len(CITIES) else f"City {k}"]}
    if kind == 3:
        return {"attr": "attr.segment_key", "op": "eq", "value": f"k{k}"}
    return {"attr": "url.query.ref", "op": "eq", "value": f"partner-{k}"}


VOCAB_SPACE = 2500          # campaigns, categories, partners: shared with gen_traffic.py
PATH_WORDS = ["sale", "new", "outlet", "gift", "bikes", "shoes", "kids", "home", "garden", "sport"]
QUERY_NAMES = ["ref", "promo", "color", "size", "sort", "q"]


def country_segment(r, i, space):
    preds = [{"attr": "geo.country", "op": "in", "value": r.sample(COUNTRIES[:12], r.randint(1, 4))}]
    kind = r.randrange(5)
    if kind == 0:
        preds.append({"attr": "device.type", "op": "in", "value": r.sample(DEVICES[:3], r.randint(1, 2))})
    elif kind == 1:
        preds.append({"attr": "source.medium", "op": "eq", "value": r.choice(MEDIA)})
    elif kind == 2:
        a = r.randrange(24)
        preds.append({"attr": "time.hour", "op": "between", "value": [a, (a + r.randint(2, 8)) % 24]})
    elif kind == 3:
        preds.append({"attr": "url.path", "op": "prefix", "value": f"/c/{r.randrange(space)}/"})
    if r.random() < 0.3:
        preds.append({"attr": "lang", "op": "in", "value": r.sample(LANGS, 2)})
    return {"all": preds}


def nested_leaf(r, space):
    kind = r.randrange(7)
    if kind == 0:
        return {"attr": "url.path", "op": "prefix", "value": f"/c/{r.randrange(space)}/"}
    if kind == 1:
        return {"attr": "url.path", "op": "contains", "value": r.choice(PATH_WORDS)}
    if kind == 2:
        return {"attr": f"url.query.{r.choice(QUERY_NAMES)}", "op": "exists"}
    if kind == 3:
        return {"attr": "source.campaign", "op": "prefix", "value": f"camp-{r.randrange(10)}"}
    if kind == 4:
        return {"attr": "lang", "op": "in", "value": r.sample(LANGS, r.randint(1, 3))}
    if kind == 5:
        return {"attr": "source.medium", "op": "in", "value": r.sample(MEDIA, r.randint(1, 3))}
    return {"attr": "device.type", "op": "eq", "value": r.choice(DEVICES)}


def nested_node(r, i, space, depth, refs):
    if depth == 0 or r.random() < 0.3:
        if i > 10 and r.random() < 0.25:
            ref = r.randrange(max(0, i - 200), i)
            if REF_DEPTH[ref] < 6:     # chains stay well inside VD_MAX_REF_DEPTH
                refs.append(ref)
                return {"segment": f"seg-{ref:05d}"}
        return nested_leaf(r, space)
    kind = r.randrange(5)
    if kind == 0:
        return {"not": nested_node(r, i, space, depth - 1, refs)}
    op = "all" if kind in (1, 2) else "any"
    return {op: [nested_node(r, i, space, depth - 1, refs) for _ in range(r.randint(2, 3))]}


REF_DEPTH = []


def nested_segment(r, i, space):
    refs = []
    node = {r.choice(["any", "all"]): [nested_node(r, i, space, 3, refs) for _ in range(r.randint(2, 3))]}
    REF_DEPTH.append(1 + max((REF_DEPTH[x] for x in refs), default=0))
    return node


def url_segment(r, i, space):
    k = r.randrange(space)
    kind = r.randrange(6)
    if kind == 0:
        first = {"attr": "url.path", "op": "prefix", "value": f"/c/{k}/"}
    elif kind == 1:
        first = {"attr": "url.path", "op": "contains", "value": f"{r.choice(PATH_WORDS)}-{k % 50}"}
    elif kind == 2:
        first = {"attr": f"url.query.{r.choice(QUERY_NAMES[:3])}", "op": "eq", "value": f"partner-{k}"}
    elif kind == 3:
        first = {"attr": "url.path", "op": "prefix", "value": [f"/p/{k}", f"/c/{k}/{r.choice(PATH_WORDS)}"]}
    elif kind == 4:
        first = {"attr": "url.query.q", "op": "contains", "value": r.choice(PATH_WORDS)}
    else:
        first = {"attr": "url.path", "op": "contains", "value": r.choice(PATH_WORDS)}
    preds = [first]
    if r.random() < 0.4:
        preds.append(broad(r))
    return {"all": preds}


def predicates(r, i, space):
    # Most segments pair a specific anchor with broad conditions; a few
    # dozen are broad only (site-wide audiences), as in real sets.
    if i % max(1, space // 10) == 0:
        return [broad(r) for _ in range(r.randint(1, 2))]
    return [anchor(r, space)] + [broad(r) for _ in range(r.randint(0, 2))]


REFERENCE_SEGMENTS = [
    {"id": "ref-bot", "match": {"attr": "device.type", "op": "eq", "value": "bot"}},
    {"id": "ref-de-paid", "match": {"all": [{"attr": "geo.country", "op": "eq", "value": "DE"},
                                             {"attr": "source.medium", "op": "eq", "value": "paid"}]}},
    {"id": "ref-de-evening", "match": {"all": [{"attr": "geo.country", "op": "eq", "value": "DE"},
                                                {"attr": "time.hour", "op": "between", "value": [17, 21]}]}},
    {"id": "ref-mobile-social", "match": {"all": [{"attr": "device.type", "op": "eq", "value": "mobile"},
                                                   {"attr": "source.medium", "op": "eq", "value": "social"}]}},
    {"id": "ref-us-desktop", "match": {"all": [{"attr": "geo.country", "op": "eq", "value": "US"},
                                                {"attr": "device.type", "op": "eq", "value": "desktop"}]}},
    {"id": "ref-organic", "match": {"attr": "source.medium", "op": "eq", "value": "organic"}},
    {"id": "ref-fr", "match": {"attr": "geo.country", "op": "eq", "value": "FR"}},
]
REFERENCE_SLOT = {
    "slot": "hero",
    "rules": [
        {"segment": "ref-bot", "variant": "default"},
        {"segment": "ref-de-paid", "variant": "de-paid"},
        {"segment": "ref-de-evening", "variant": "de-evening"},
        {"segment": "ref-mobile-social", "variant": "mobile-social"},
        {"segment": "ref-us-desktop", "variant": "us-desktop"},
        {"segment": "ref-organic", "split": [{"variant": "organic-a", "weight": 50},
                                             {"variant": "organic-b", "weight": 50}], "salt": "hero-ab"},
        {"segment": "ref-fr", "variant": "fr"},
    ],
    "default": "default",
    "variants": {v: {"template": f"hero/{v}.html"} for v in
                 ["default", "de-paid", "de-evening", "mobile-social", "us-desktop", "organic-a",
                  "organic-b", "fr"]},
}


SCORES = [
    {"id": "sneakers", "half_life_days": 14, "events": {"product_view": 1, "add_to_cart": 5, "purchase": 20},
     "categories": ["sneakers", "running"]},
    {"id": "outdoor", "half_life_days": 21, "events": {"product_view": 1, "add_to_cart": 5, "purchase": 20},
     "categories": ["tents", "jackets", "boots", "outdoor"]},
    {"id": "engagement", "half_life_days": 30,
     "events": {"page_view": 1, "product_view": 2, "add_to_cart": 5, "purchase": 10}},
]


def visitor_condition(r):
    kind = r.randrange(6)
    if kind == 0:
        return {"attr": "visitor.visits", "op": "gte", "value": r.randint(2, 5)}
    if kind == 1:
        return {"attr": "visitor.known", "op": "eq", "value": True}
    if kind == 2:
        return {"attr": f"visitor.score.{r.choice(['sneakers', 'outdoor'])}", "op": "gte", "value": r.randint(3, 20)}
    if kind == 3:
        return {"all": [{"attr": "visitor.peak.engagement", "op": "gte", "value": 50},
                        {"attr": "visitor.decline.engagement", "op": "gte", "value": 0.7}]}
    if kind == 4:
        return {"not": {"attr": "visitor.flag.critical_ticket", "op": "exists"}}
    return {"attr": "visitor.new", "op": "eq", "value": True}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    profile_slots = int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--profile-slots=")), 0))
    reference = "--reference" in sys.argv
    shape = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--shape=")), "ours")
    if shape not in ("ours", "country", "nested", "url"):
        sys.exit(f"gen_ruleset.py: unknown shape {shape}")
    out = Path(args[0])
    n = int(args[1])
    slots = int(args[2]) if len(args) > 2 else 20
    if reference:
        n -= len(REFERENCE_SEGMENTS)
        slots -= 1
    r = random.Random(42 + n)
    segs = []
    space = max(20, n // 4)
    for i in range(n):
        if shape == "country":
            match = country_segment(r, i, space)
        elif shape == "nested":
            match = nested_segment(r, i, space)
        elif shape == "url":
            match = url_segment(r, i, space)
        else:
            match = {"all": predicates(r, i, space)}
        segs.append({"id": f"seg-{i:05d}", "description": f"generated ({shape})", "match": match})
    cms = []
    per_slot = max(1, n // slots)
    for s in range(slots):
        rules = []
        if shape == "country":
            # Long lists over shared segments: each slot ranks 3x its share.
            picks = sorted(r.sample(range(n), min(n, 3 * per_slot)))
        else:
            picks = [s * per_slot + k for k in range(per_slot) if s * per_slot + k < n]
        for k, seg in enumerate(picks):
            rules.append({"segment": f"seg-{seg:05d}", "variant": f"v{k % 8}"})
        variants = {f"v{k}": {"template": f"slot{s}/v{k}.html"} for k in range(8)}
        variants["default"] = {"template": f"slot{s}/default.html"}
        cms.append({"slot": f"slot{s:02d}", "rules": rules, "default": "default", "variants": variants})
        if s < profile_slots:
            for k, seg in enumerate(picks):
                if k % 2 == 0:
                    m = segs[seg]["match"]
                    segs[seg]["match"] = {"all": [m, visitor_condition(r)]}
    if reference:
        segs = REFERENCE_SEGMENTS + segs
        cms = [REFERENCE_SLOT] + cms
    (out / "segments").mkdir(parents=True, exist_ok=True)
    (out / "content-map").mkdir(parents=True, exist_ok=True)
    (out / "segments" / "gen.json").write_text(json.dumps(segs))
    (out / "content-map" / "gen.json").write_text(json.dumps(cms))
    if profile_slots:
        (out / "scores").mkdir(parents=True, exist_ok=True)
        (out / "scores" / "gen.json").write_text(json.dumps(SCORES))


if __name__ == "__main__":
    main()
