#!/usr/bin/python3
"""Median table of build/bench/results.tsv, with the ratios the goals name.
usage: summarize.py RESULTS.tsv"""
import csv
import math
import statistics
import sys
from collections import OrderedDict


def num(v):
    """A finite number, or None (missing, "nan", "–")."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["section"], r["system"]), []).append(r)
    agg = {}
    for key, rs in groups.items():
        a = {c: med([num(r[c]) for r in rs]) for c in ("rps", "p50_us", "p99_us", "p999_us", "errors", "cpu_us_per_req")}
        extras = {}
        for r in rs:
            for part in r["extra"].split():
                if "=" in part:
                    k, v = part.split("=", 1)
                    extras.setdefault(k, []).append(num(v))
        a["extra"] = {k: med(v) for k, v in extras.items()}
        a["n"] = len(rs)
        a["errors_total"] = sum(num(r["errors"]) or 0 for r in rs)
        agg[key] = a

    out = []
    out.append("| section | system | runs | req/s (median) | p50 µs | p99 µs | p99.9 µs | errors (all runs) | server CPU µs/req | notes |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for (sec, sysname), a in agg.items():
        notes = " ".join(f"{k}={fmt(v, 2 if k == 'allocs' or 'hit' in k else 0)}" for k, v in a["extra"].items())
        out.append(f"| {sec} | {sysname} | {a['n']} | {fmt(a['rps'])} | {fmt(a['p50_us'], 1)} | {fmt(a['p99_us'], 1)} | "
                   f"{fmt(a['p999_us'], 1)} | {fmt(a['errors_total'])} | {fmt(a['cpu_us_per_req'], 2)} | {notes} |")

    def ratio(a, b, col):
        """Median over rounds of the per-round ratio a/b (both systems measured
        back to back in that round), with the spread (min-max) over rounds."""
        by_round = {}
        for r in rows:
            k = (r["section"], r["system"])
            if k in (a, b):
                by_round.setdefault(r["round"], {})[k] = num(r[col])
        rs = [v[a] / v[b] for v in by_round.values() if v.get(a) and v.get(b)]
        if not rs:
            return None
        return statistics.median(rs), min(rs), max(rs)

    def fmt_ratio(v):
        if not v:
            return "–"
        m, lo, hi = v
        return f"{m:.2f}× ({lo:.2f}–{hi:.2f})" if hi > lo else f"{m:.2f}×"

    out.append("")
    out.append("Ratios: median of the per-round ratios (the two systems measured back to back in one round), "
               "spread (min–max over rounds) in parentheses.")
    out.append("")
    out.append("| goal | measured | target |")
    out.append("|---|---|---|")
    redis1, redis16 = ("tcp", "redis GET -P1"), ("tcp", "redis GET -P16")
    goals = [
        ("TCP 1-slot req/s vs redis GET (reference slot, traffic model)", ratio(("tcp", "variantd decide -P1"), redis1, "rps"), "≥ 1.3×"),
        ("TCP 1-slot server CPU/req vs redis GET", ratio(("tcp", "variantd decide -P1"), redis1, "cpu_us_per_req"), "≤ 1.0×"),
    ]
    for shape in ("ours", "country", "nested", "url"):
        goals.append((f"TCP {shape} 1-slot req/s vs redis GET", ratio(("tcp", f"variantd {shape} 1-slot -P1"), redis1, "rps"), "≥ 1.3×"))
        goals.append((f"TCP {shape} 20-slot req/s vs redis GET", ratio(("tcp", f"variantd {shape} 20-slot -P1"), redis1, "rps"), "≥ 1.0×"))
    goals += [
        ("TCP 16 in flight req/s vs redis GET -P16", ratio(("tcp", "variantd decide -P16"), redis16, "rps"), "≥ 0.5×"),
        ("HTTP edge req/s vs nginx geoip2+maps", ratio(("http", "variantd edge (1 worker)"), ("http", "nginx geoip2+maps (1 worker)"), "rps"), "≥ 1.3×"),
        ("HTTP edge server CPU/req vs nginx", ratio(("http", "variantd edge (1 worker)"), ("http", "nginx geoip2+maps (1 worker)"), "cpu_us_per_req"), "≤ 0.6×"),
    ]
    for name, v, target in goals:
        out.append(f"| {name} | {fmt_ratio(v)} | {target} |")
    # In process, per shape and page: instructions per decision (callgrind).
    shapes = ("ours", "country", "nested", "url")
    # Two phases of the same traffic model: "cold" measures visitors 3,001-5,000
    # after start (caches filling), "steady" 2,000 visitors after 90 % of the
    # model has passed (every cache at its running hit rate; none of the
    # measured visitors seen before).
    for key, phase in (("instr", "cold"), ("instr_steady", "steady")):
        for n in (1000, 10000):
            instr = {}
            for shape in shapes:
                for page in (1, 5, 20):
                    e = agg.get(("shape", f"{shape} {n} segments {page}-slot"), {}).get("extra", {})
                    if e.get(key):
                        instr[(shape, page)] = e[key]
            if not instr:
                continue
            for shape in shapes:
                one, twenty = instr.get((shape, 1)), instr.get((shape, 20))
                if one and twenty:
                    out.append(f"| {n:,} segments, {shape}, {phase}: 20-slot vs 1-slot instructions | {twenty / one:.2f}× "
                               f"({fmt(twenty)} vs {fmt(one)}) | ≤ 2× |")
            for page in (1, 5, 20):
                vals = {sh: instr[(sh, page)] for sh in shapes if (sh, page) in instr}
                if len(vals) > 1:
                    hi = max(vals, key=vals.get)
                    lo = min(vals, key=vals.get)
                    out.append(f"| {n:,} segments, {page}-slot page, {phase}: costliest shape vs cheapest | "
                               f"{vals[hi] / vals[lo]:.2f}× ({hi} {fmt(vals[hi])} vs {lo} {fmt(vals[lo])}) | ≤ 1.5× |")
    # The answer cache (an option, off by default) against the same run
    # without it, steady phase, live clock.
    for shape in shapes:
        for page in (5, 20):
            e = agg.get(("shape", f"{shape} 1000 segments {page}-slot"), {}).get("extra", {})
            off, on = e.get("instr_clock"), e.get("instr_answer_cache")
            if off and on:
                out.append(f"| 1,000 segments, {shape}, {page}-slot page: with `answer-cache 16384` vs without "
                           f"(option, off by default) | {on / off:.2f}× ({fmt(on)} vs {fmt(off)}) | printed |")
    hits = [a["extra"] for (sec, _), a in agg.items() if sec == "shape"]
    ua = med([e.get("ua_hit") for e in hits])
    geo = med([e.get("geo_hit") for e in hits])
    src = med([e.get("src_hit") for e in hits])
    ua_steady = med([e.get("ua_hit_steady") for e in hits])
    if ua_steady is not None:
        out.append(f"| User-Agent cache hits at the steady state (visitors 90,001-92,000) | {ua_steady * 100:.1f} % | printed |")
    if ua is not None:
        out.append(f"| cache hit rates over the traffic model (in process) | User-Agent {ua * 100:.1f} %, "
                   f"GeoIP record {geo * 100 if geo is not None else float('nan'):.1f} %, "
                   f"referring host {src * 100 if src is not None else float('nan'):.1f} % | printed |")
    s100 = agg.get(("scale", "variantd 100 segments"), {}).get("extra", {})
    s10k = agg.get(("scale", "variantd 10000 segments"), {}).get("extra", {})
    if s100.get("instr") and s10k.get("instr"):
        out.append(f"| instructions/decision 10,000 vs 100 segments | {s10k['instr'] / s100['instr']:.2f}× "
                   f"({fmt(s10k['instr'])} vs {fmt(s100['instr'])}) | ≤ 2× |")
    s1k = agg.get(("scale", "variantd 1000 segments"), {}).get("extra", {})
    if s1k.get("server_p99_us_le"):
        out.append(f"| server-side decision time p99, 1,000 segments | ≤ {fmt(s1k['server_p99_us_le'])} µs (histogram bucket; "
                   f"in-process mean {s1k.get('decide_ns', 0) / 1000:.1f} µs) | ≤ 50 µs |")
    if s1k.get("half_rate_p99_us"):
        spread = [num(p.split("=", 1)[1]) for r in rows if (r["section"], r["system"]) == ("scale", "variantd 1000 segments")
                  for p in r["extra"].split() if p.startswith("half_rate_p99_us=")]
        spread = [v for v in spread if v is not None]
        sp = f" ({min(spread) / 1000:.2f}–{max(spread) / 1000:.2f})" if len(spread) > 1 else ""
        out.append(f"| end-to-end p99 at half the peak rate, 1,000 segments, 4 slots, traffic model | "
                   f"{s1k['half_rate_p99_us'] / 1000:.2f} ms{sp} | ≤ 1 ms |")
    if s1k.get("half_rate_rt_p99_us"):
        spread = [num(p.split("=", 1)[1]) for r in rows if (r["section"], r["system"]) == ("scale", "variantd 1000 segments")
                  for p in r["extra"].split() if p.startswith("half_rate_rt_p99_us=")]
        spread = [v for v in spread if v is not None]
        sp = f" ({min(spread) / 1000:.2f}–{max(spread) / 1000:.2f})" if len(spread) > 1 else ""
        out.append(f"| the same, server and load generator at real-time priority (the neighbours cannot delay them) | "
                   f"{s1k['half_rate_rt_p99_us'] / 1000:.2f} ms{sp} | ≤ 1 ms |")
    for shape in shapes:
        key = ("swap", f"variantd {shape} 1,000 -> 10,000 segments")
        sw = agg.get(key)
        if not sw:
            continue
        ms = [num(p.split("=", 1)[1]) for r in rows if (r["section"], r["system"]) == key
              for p in r["extra"].split() if p.startswith("swap_ms=")]
        ms = [v for v in ms if v is not None]
        sp = f" ({min(ms):.0f}–{max(ms):.0f} over {len(ms)})" if len(ms) > 1 else ""
        out.append(f"| 10,000-segment swap live, {shape} | {fmt(sw['extra'].get('swap_ms'))} ms{sp}, "
                   f"compile {fmt(sw['extra'].get('compile_ms'))} ms, {fmt(sw['errors_total'])} failed, "
                   f"p99.9 {fmt(sw['p999_us'], 0)} µs | ≤ 150 ms, 0 failed |")
        rss = sw["extra"].get("rss_kb_10000")
        if rss:
            out.append(f"| RSS with 10,000 segments, {shape} | {rss / 1024:.1f} MB | ≤ 64 MB |")
    # Profiles (issue 9): a local redis-server as the store.
    P = "profiles"
    on5, off5 = (P, "decide 5 slots (2 visitor.*), profiles on"), (P, "decide 5 slots, profiles off")
    on3, off3 = (P, "decide 3 slots (no visitor.*), profiles on"), (P, "decide 3 slots, profiles off")
    trk = (P, "track notifications")

    def spread(key, col=None, extra=None):
        vals = []
        for r in rows:
            if (r["section"], r["system"]) != key:
                continue
            if col:
                vals.append(num(r[col]))
            else:
                vals += [num(p.split("=", 1)[1]) for p in r["extra"].split() if p.startswith(extra + "=")]
        vals = [v for v in vals if v is not None]
        return vals

    def med_spread(vals, scale=1.0, digits=0):
        if not vals:
            return "–"
        m = statistics.median(vals) / scale
        sp = f" ({min(vals) / scale:,.{digits}f}–{max(vals) / scale:,.{digits}f})" if len(vals) > 1 else ""
        return f"{m:,.{digits}f}{sp}"

    if on5 in agg:
        out.append(f"| profiles: decide 5 slots (2 use visitor.*) req/s, profiles on vs off (1,000 segments, "
                   f"{fmt(agg[on5]['rps'])} vs {fmt(agg.get(off5, {}).get('rps'))}) | "
                   f"{fmt_ratio(ratio(on5, off5, 'rps'))} | ≥ 0.6× |")
        out.append(f"| profiles: end-to-end p99 at half the peak rate, profiles on | "
                   f"{med_spread(spread(on5, extra='half_rate_p99_us'), 1000, 2)} ms | ≤ 1 ms |")
        out.append(f"| profiles: Redis commands per decision (5 slots, reads; INFO commandstats) | "
                   f"{med_spread(spread(on5, extra='redis_cmds_per_req'), 1, 3)} sent "
                   f"(scripts ran {med_spread(spread(on5, extra='redis_inner_per_req'), 1, 2)} inside) | printed |")
    if on3 in agg:
        reads = spread(on3, extra="profile_reads_per_req")
        out.append(f"| profiles: decide whose slots use no visitor.*: profile reads (waits) per decision | "
                   f"{med_spread(reads, 1, 3)} | 0 |")
        out.append(f"| profiles: same decide, Redis commands per decision (pipelined visit writes, coalesced) | "
                   f"{med_spread(spread(on3, extra='redis_cmds_per_req'), 1, 3)} sent "
                   f"(scripts ran {med_spread(spread(on3, extra='redis_inner_per_req'), 1, 2)} inside) | ≤ 1 |")
        out.append(f"| profiles: same decide req/s, profiles on vs off | {fmt_ratio(ratio(on3, off3, 'rps'))} | printed |")
    if trk in agg:
        lost = sum(spread(trk, extra="lost"))
        counted = sum(spread(trk, extra="lost_counted"))
        sent = sum(spread(trk, extra="sent"))
        vis = agg[trk]["extra"].get("visitors")
        out.append(f"| profiles: track notifications/s into one daemon (1 worker, {fmt(vis)} visitors; "
                   f"applied = counted in Redis) | {med_spread(spread(trk, col='rps'))}/s; "
                   f"{fmt(lost)} of {fmt(sent)} not applied, {fmt(counted)} counted lost | ≥ 100,000/s, 0 lost |")
        out.append(f"| profiles: Redis commands per track (INFO commandstats; batched scripts) | "
                   f"{med_spread(spread(trk, extra='redis_cmds_per_track'), 1, 4)} sent "
                   f"(scripts ran {med_spread(spread(trk, extra='redis_inner_per_track'), 1, 2)} inside) | printed |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
