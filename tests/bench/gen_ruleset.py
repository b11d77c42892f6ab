#!/usr/bin/python3
"""Generates a synthetic but realistic definition set for scale benchmarks:
N segments over S slots, each slot with rules over its share of segments.

usage: gen_ruleset.py OUTDIR N_SEGMENTS [N_SLOTS=20]
writes OUTDIR/segments/gen.json and OUTDIR/content-map/gen.json"""
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


def main():
    out = Path(sys.argv[1])
    n = int(sys.argv[2])
    slots = int(sys.argv[3]) if len(sys.argv) > 3 else 20
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
    (out / "segments").mkdir(parents=True, exist_ok=True)
    (out / "content-map").mkdir(parents=True, exist_ok=True)
    (out / "segments" / "gen.json").write_text(json.dumps(segs))
    (out / "content-map" / "gen.json").write_text(json.dumps(cms))


if __name__ == "__main__":
    main()
