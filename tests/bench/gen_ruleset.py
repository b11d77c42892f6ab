#!/usr/bin/python3
"""Generates a synthetic but realistic definition set for scale benchmarks:
N segments over S slots, each slot with rules over its share of segments.

usage: gen_ruleset.py OUTDIR N_SEGMENTS [N_SLOTS=20] [--reference]
writes OUTDIR/segments/gen.json and OUTDIR/content-map/gen.json.
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


def predicate(r, i):
    kind = r.randrange(10)
    if kind == 0:
        return {"attr": "geo.country", "op": "in", "value": r.sample(COUNTRIES, r.randint(1, 4))}
    if kind == 1:
        return {"attr": "geo.city", "op": "eq", "value": r.choice(CITIES)}
    if kind == 2:
        return {"attr": "device.type", "op": "eq", "value": r.choice(DEVICES)}
    if kind == 3:
        return {"attr": "source.medium", "op": "in", "value": r.sample(MEDIA, r.randint(1, 2))}
    if kind == 4:
        a = r.randrange(24)
        return {"attr": "time.hour", "op": "between", "value": [a, (a + r.randint(1, 8)) % 24]}
    if kind == 5:
        return {"attr": "time.weekday", "op": "in", "value": r.sample(WEEKDAYS, r.randint(1, 3))}
    if kind == 6:
        return {"attr": "lang", "op": "eq", "value": r.choice(LANGS)}
    if kind == 7:
        return {"attr": "url.path", "op": "prefix", "value": r.choice(["/bikes", "/sale", "/blog", "/fr", "/checkout"])}
    if kind == 8:
        return {"attr": "source.campaign", "op": "prefix", "value": f"camp-{i % 50}"}
    return {"attr": "attr.tier", "op": "in", "value": r.sample(["gold", "silver", "bronze", "platinum"], 2)}


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


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    reference = "--reference" in sys.argv
    out = Path(args[0])
    n = int(args[1])
    slots = int(args[2]) if len(args) > 2 else 20
    if reference:
        n -= len(REFERENCE_SEGMENTS)
        slots -= 1
    r = random.Random(42 + n)
    segs = []
    for i in range(n):
        # Most segments are anchored on a selective attribute, as real ones are.
        preds = [predicate(r, i) for _ in range(r.randint(1, 3))]
        segs.append({"id": f"seg-{i:05d}", "description": "generated", "match": {"all": preds}})
    cms = []
    per_slot = max(1, n // slots)
    for s in range(slots):
        rules = []
        for k in range(per_slot):
            seg = s * per_slot + k
            if seg >= n:
                break
            rules.append({"segment": f"seg-{seg:05d}", "variant": f"v{k % 8}"})
        variants = {f"v{k}": {"template": f"slot{s}/v{k}.html"} for k in range(8)}
        variants["default"] = {"template": f"slot{s}/default.html"}
        cms.append({"slot": f"slot{s:02d}", "rules": rules, "default": "default", "variants": variants})
    if reference:
        segs = REFERENCE_SEGMENTS + segs
        cms = [REFERENCE_SLOT] + cms
    (out / "segments").mkdir(parents=True, exist_ok=True)
    (out / "content-map").mkdir(parents=True, exist_ok=True)
    (out / "segments" / "gen.json").write_text(json.dumps(segs))
    (out / "content-map" / "gen.json").write_text(json.dumps(cms))


if __name__ == "__main__":
    main()
