"""The example definitions (segments/, content-map/) served by the real
daemon with the demo GeoIP database: end-to-end decisions for realistic
visitors at fixed instants."""
from datetime import datetime, timezone

import pytest

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ALL_SLOTS = ["home.hero", "home.banner", "nav.promo", "footer.newsletter",
             "pdp.recommendation", "checkout.shipping-note", "checkout.payment-hint"]


def ts(s):
    return int(datetime.fromisoformat(s).timestamp())


def variants(res):
    return {k: v.get("variant") for k, v in res["slots"].items()}


def test_berlin_evening_iphone(daemon):
    c = daemon.client()
    # Monday 2026-11-23, 19:30 in Berlin (UTC+1).
    res = c.decide(slots=ALL_SLOTS, ip="1.0.0.7", ua=IPHONE, ts=ts("2026-11-23T19:30:00+01:00"),
                   segments=True)
    hero = res["slots"]["home.hero"]
    assert hero["variant"] == "hero-berlin-night" and hero["segment"] == "berlin-evening-mobile"
    assert hero["payload"]  # the payload object from the content map
    assert {"berlin", "berlin-evening-mobile", "evening", "touch-devices", "dach", "eu-visitors",
            "humans"} <= set(res["segments"])
    assert "bots" not in res["segments"]
    # home.banner's rule "night-owl-mobile" (22:00-05:59) was evaluated and
    # failed: at 22:00 local it could start matching, so that is the bound.
    assert res["valid_until"] == ts("2026-11-23T22:00:00+01:00")
    # For home.hero alone the evening window ends at local midnight; the Black
    # Friday rules before it cannot flip earlier than that either.
    hero_only = c.decide(slots=["home.hero"], ip="1.0.0.7", ua=IPHONE,
                         ts=ts("2026-11-23T19:30:00+01:00"))
    assert hero_only["valid_until"] == ts("2026-11-24T00:00:00+01:00")


def test_bots_get_defaults_and_no_time_dependence(daemon):
    res = daemon.client().decide(slots=ALL_SLOTS, ip="1.0.0.7", ua=GOOGLEBOT,
                                 ts=ts("2026-11-23T19:30:00+01:00"), segments=True)
    v = variants(res)
    assert v["home.hero"] == "hero-generic" and res["slots"]["home.hero"]["segment"] == "bots"
    assert v["nav.promo"] == "nav-none" and v["pdp.recommendation"] == "reco-bestsellers"
    assert "bots" in res["segments"] and "berlin-evening-mobile" not in res["segments"]
    assert res["valid_until"] is None


def test_black_friday_by_continent(daemon):
    c = daemon.client()
    t = ts("2026-11-28T12:00:00+00:00")
    assert variants(c.decide(slots=["home.hero"], ip="3.0.0.9", ua=DESKTOP, ts=t))["home.hero"] \
        == "hero-black-friday-eu"
    assert variants(c.decide(slots=["home.hero"], ip="2.0.0.9", ua=DESKTOP, ts=t))["home.hero"] \
        == "hero-black-friday-na"
    # A day before it is not Black Friday in Paris.
    t0 = ts("2026-11-26T12:00:00+00:00")
    assert variants(c.decide(slots=["home.hero"], ip="3.0.0.9", ua=DESKTOP, ts=t0))["home.hero"] \
        == "hero-generic"


def test_black_friday_starts_at_local_midnight(daemon):
    c = daemon.client()
    # 23:59:59 on Nov 26 in Paris is 22:59:59 UTC; one second later it is Black Friday there.
    before = c.decide(slots=["home.hero"], ip="3.0.0.9", ua=DESKTOP,
                      ts=ts("2026-11-26T23:59:59+01:00"))
    assert variants(before)["home.hero"] == "hero-generic"
    assert before["valid_until"] == ts("2026-11-27T00:00:00+01:00")
    after = c.decide(slots=["home.hero"], ip="3.0.0.9", ua=DESKTOP,
                     ts=ts("2026-11-27T00:00:00+01:00"))
    assert variants(after)["home.hero"] == "hero-black-friday-eu"


def test_organic_search_split_is_sticky(daemon):
    c = daemon.client()
    req = dict(slots=["home.hero"], ip="4.0.0.9", ua=DESKTOP, referer="https://www.google.co.uk/",
               ts=ts("2026-11-23T10:00:00+00:00"))
    seen = {}
    for i in range(60):
        v = variants(c.decide(vid=f"visitor-{i}", **req))["home.hero"]
        assert v in ("hero-organic-a", "hero-organic-b")
        assert variants(c.decide(vid=f"visitor-{i}", **req))["home.hero"] == v  # sticky
        seen[v] = seen.get(v, 0) + 1
    assert len(seen) == 2 and min(seen.values()) >= 15


def test_staff_network_and_email_campaign(daemon):
    c = daemon.client()
    t = ts("2026-11-23T10:00:00+00:00")
    res = c.decide(slots=["home.banner", "nav.promo"], ip="203.0.113.77", ua=DESKTOP, ts=t)
    assert variants(res) == {"home.banner": "banner-staff-internal", "nav.promo": "nav-staff"}
    url = ("https://shop.trailgear.example/?utm_source=newsletter&utm_medium=email"
           "&utm_campaign=november&utm_content=hero-banner")
    res = c.decide(slots=["nav.promo", "footer.newsletter"], ip="1.0.0.9", ua=DESKTOP, url=url, ts=t)
    assert variants(res) == {"nav.promo": "nav-newsletter-story", "footer.newsletter": "footer-thanks"}


def test_language_and_caller_attributes(daemon):
    c = daemon.client()
    t = ts("2026-11-23T10:00:00+00:00")
    res = c.decide(slots=["footer.newsletter"], ip="2.0.0.9", ua=DESKTOP, lang="de-CH,de;q=0.9,en;q=0.5", ts=t)
    assert variants(res)["footer.newsletter"] == "footer-signup-de"
    res = c.decide(slots=["pdp.recommendation"], ip="2.0.0.9", ua=DESKTOP, ts=t,
                   attrs={"loyalty_tier": "Gold"})
    assert variants(res)["pdp.recommendation"] == "reco-premium"
    res = c.decide(slots=["pdp.recommendation"], ip="2.0.0.9", ua=DESKTOP, ts=t,
                   attrs={"cart_value": 20})
    assert variants(res)["pdp.recommendation"] == "reco-accessories-free-shipping"


def test_explain_context_for_demo_visitor(daemon):
    err, res = daemon.client().call("explain", [{
        "slots": ["home.hero"], "ip": "1.0.0.7", "ua": IPHONE, "lang": "de-DE,de;q=0.9",
        "referer": "https://www.google.de/search?q=gravel+bike",
        "url": "https://shop.trailgear.example/bikes/gravel?utm_campaign=winter-2026",
        "ts": ts("2026-11-23T19:30:00+01:00")}])
    assert err is None
    ctx = res["context"]
    assert ctx["geo.country"] == "DE" and ctx["geo.city"] == "Berlin" and ctx["geo.eu"] is True
    assert ctx["geo.timezone"] == "Europe/Berlin" and ctx["geo.region"] == "BE"
    assert ctx["time.hour"] == 19 and ctx["time.minute"] == 19 * 60 + 30
    assert ctx["time.weekday"] == "mon" and ctx["time.date"] == "2026-11-23"
    assert ctx["device.type"] == "mobile" and ctx["device.os"] == "iOS"
    assert ctx["source.medium"] == "organic" and ctx["source.name"] == "google"
    assert ctx["source.campaign"] == "winter-2026" and ctx["lang"] == "de"
    assert ctx["url.path"] == "/bikes/gravel"
    assert res["trace"]["home.hero"][0]["segment"] == "bots"


def test_new_zealand_falls_back_to_country_zone(daemon):
    # The demo DB has no time zone for 17.0.0.0/24 (NZ): tzdata's zone for NZ is used.
    err, res = daemon.client().call("explain", [{"slots": [], "ip": "17.0.0.1",
                                                 "ts": ts("2026-01-15T00:00:00+00:00")}])
    assert err is None
    assert res["context"]["geo.timezone"] == "Pacific/Auckland"
    assert res["context"]["time.hour"] == 13   # NZDT = UTC+13 in January
