#!/usr/bin/python3
"""The bench's traffic model: one request per distinct visitor, at bench time
(no third-party data is copied into the repository).

usage: gen_traffic.py OUT.tsv [--visitors N] [--geo-tsv FILE] [--data DIR] [--seed S]

  * User-Agents: every distinct string of DIR/ua/device_detector_ua.tsv and
    DIR/ua/uap_core_browser.tsv (../shared/data: LGPL-3.0 / Apache-2.0 test
    corpora, read here, never copied), in a seeded random order, drawn with a
    Zipf popularity (weight 1/rank^1.0): a few strings carry much of the
    traffic, a long tail is seen once, as a site's logs show.
  * IPs: a random host of a network of the GeoIP database's source table
    (FILE, default data/geo/demo-city.tsv, the bench's database), weighted by
    network size; 4 % from addresses no network covers (unknown geo).
  * Referrer and landing URL by traffic medium with realistic shares (direct
    34 %, organic search 30 %, social 12 %, paid 10 %, referral 7 %, email 5 %,
    internal 2 %); referrer hosts per medium from
    DIR/referer/snowplow_referers_yml_domains.tsv (GPL-3.0, read only), paid
    and email landings carry utm_* (and gclid); paths, campaigns and partner
    values come from gen_ruleset.py's vocabularies with a Zipf popularity.
  * Accept-Language by a skewed share of languages.
Every row is a distinct visitor (ip, ua, referer, url, lang); the file is the
order in which the bench sends them. Columns: ip ua referer url lang (the
format of tests/bench/contexts.tsv)."""
import bisect
import ipaddress
import itertools
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_ruleset import LANGS, PATH_WORDS, QUERY_NAMES, VOCAB_SPACE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def zipf_picker(r, n, s=1.0):
    cum = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))
    total = cum[-1]
    return lambda: bisect.bisect_left(cum, r.random() * total)


def read_tsv(path, col):
    out = []
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        i = head.index(col)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > i and parts[i]:
                out.append(parts)
    return out, head


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = Path(args[0])
    opt = dict(zip(args[1::2], args[2::2]))
    visitors = int(opt.get("--visitors", 100000))
    data = Path(opt.get("--data", ROOT.parent / "shared" / "data"))
    geo_tsv = Path(opt.get("--geo-tsv", ROOT / "data" / "geo" / "demo-city.tsv"))
    r = random.Random(int(opt.get("--seed", 13)))

    uas = []
    seen = set()
    for name in ("device_detector_ua.tsv", "uap_core_browser.tsv"):
        p = data / "ua" / name
        if not p.exists():
            continue
        rows, head = read_tsv(p, "user_agent")
        for row in rows:
            ua = row[head.index("user_agent")]
            if ua not in seen:
                seen.add(ua)
                uas.append(ua)
    if not uas:
        sys.exit(f"gen_traffic.py: no User-Agents under {data}/ua")
    uas.sort()
    r.shuffle(uas)
    pick_ua = zipf_picker(r, len(uas))

    nets = []
    for line in open(geo_tsv, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        nets.append(ipaddress.ip_network(line.split("\t")[0], strict=False))
    nets = [n for n in nets if n.version == 4] or nets
    cum_nets = list(itertools.accumulate(n.num_addresses for n in nets))

    def pick_ip():
        if r.random() < 0.04:
            return f"203.0.113.{r.randrange(1, 255)}"
        x = r.random() * cum_nets[-1]
        n = nets[bisect.bisect_left(cum_nets, x)]
        return str(n.network_address + r.randrange(1, max(2, n.num_addresses - 1)))

    hosts = {}
    ref_tsv = data / "referer" / "snowplow_referers_yml_domains.tsv"
    if ref_tsv.exists():
        rows, head = read_tsv(ref_tsv, "referer_url")
        for row in rows:
            hosts.setdefault(row[head.index("medium")], []).append(row[head.index("referer_url")])
    search = hosts.get("search") or ["https://www.google.com/"]
    # A few engines carry most search traffic; the long tail keeps the PSL
    # and host caches honest.
    search = ["https://www.google.com/", "https://www.google.de/", "https://www.bing.com/search?q=x",
              "https://duckduckgo.com/"] * 20 + search
    social = ["https://www.facebook.com/", "https://t.co/abc", "https://www.instagram.com/",
              "https://www.linkedin.com/"] * 10 + (hosts.get("social") or [])
    webmail = hosts.get("email") or ["https://mail.google.com/"]

    pick_cat = zipf_picker(r, VOCAB_SPACE, 0.9)
    pick_camp = zipf_picker(r, VOCAB_SPACE, 0.9)
    langs = ["de-DE,de;q=0.9,en;q=0.8", "en-US,en;q=0.9", "en-GB,en;q=0.8", "fr-FR,fr;q=0.9", "es-ES",
             "ja-JP", "nl-NL,nl;q=0.9", "pt-BR", "it-IT", ""]
    lang_w = [28, 24, 8, 9, 6, 5, 5, 4, 4, 7]
    assert len(langs) == len(lang_w) and all(l[:2] in LANGS or not l for l in langs)

    def path():
        x = r.random()
        if x < 0.25:
            return "/"
        if x < 0.65:
            p = f"/c/{pick_cat()}/"
            return p + (r.choice(PATH_WORDS) if r.random() < 0.5 else "")
        if x < 0.80:
            return f"/p/{pick_cat()}"
        if x < 0.90:
            return f"/{r.choice(PATH_WORDS)}-{pick_cat() % 50}"
        return f"/search?q={r.choice(PATH_WORDS)}"

    def with_query(url, params):
        if not params:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params)

    mediums = ["direct", "organic", "social", "paid", "referral", "email", "internal"]
    med_w = [34, 30, 12, 10, 7, 5, 2]
    rows = set()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write("# ip\tua\treferer\turl\tlang — generated by tests/bench/gen_traffic.py\n")
        while len(rows) < visitors:
            medium = r.choices(mediums, med_w)[0]
            url = "https://shop.example" + path()
            params = []
            ref = ""
            if medium == "organic":
                ref = r.choice(search)
            elif medium == "social":
                ref = r.choice(social)
                if r.random() < 0.4:
                    params = [("utm_source", "facebook"), ("utm_medium", "social"),
                              ("utm_campaign", f"camp-{pick_camp()}")]
            elif medium == "paid":
                ref = "https://www.google.com/"
                params = [("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", f"camp-{pick_camp()}"),
                          ("gclid", f"EAIaIQob{r.randrange(10 ** 8)}")]
            elif medium == "referral":
                ref = f"https://blog{r.randrange(500)}.example.org/post/{r.randrange(1000)}"
            elif medium == "email":
                ref = r.choice(webmail) if r.random() < 0.3 else ""
                params = [("utm_source", "newsletter"), ("utm_medium", "email"),
                          ("utm_campaign", f"camp-{pick_camp()}")]
            elif medium == "internal":
                ref = "https://shop.example" + path()
            if r.random() < 0.08:
                params.append((r.choice(QUERY_NAMES[:3]), f"partner-{pick_cat()}"))
            url = with_query(url, params)
            row = (pick_ip(), uas[pick_ua()], ref, url, r.choices(langs, lang_w)[0])
            if row in rows:
                continue
            rows.add(row)
            f.write("\t".join(row) + "\n")
    print(f"gen_traffic.py: {visitors} visitors, {len(uas)} User-Agents, {len(nets)} networks -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
