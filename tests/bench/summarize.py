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
        notes = " ".join(f"{k}={fmt(v, 2 if k in ('allocs',) else 0)}" for k, v in a["extra"].items())
        out.append(f"| {sec} | {sysname} | {a['n']} | {fmt(a['rps'])} | {fmt(a['p50_us'], 1)} | {fmt(a['p99_us'], 1)} | "
                   f"{fmt(a['p999_us'], 1)} | {fmt(a['errors_total'])} | {fmt(a['cpu_us_per_req'], 2)} | {notes} |")

    def ratio(a, b, col):
        x, y = agg.get(a, {}).get(col), agg.get(b, {}).get(col)
        return x / y if x and y else None

    out.append("")
    out.append("| goal | measured | target |")
    out.append("|---|---|---|")
    goals = [
        ("TCP -P1 req/s vs redis GET", ratio(("tcp", "variantd decide -P1"), ("tcp", "redis GET -P1"), "rps"), "≥ 1.0×"),
        ("TCP -P1 server CPU/req vs redis", ratio(("tcp", "variantd decide -P1"), ("tcp", "redis GET -P1"), "cpu_us_per_req"), "≤ 1.0×"),
        ("TCP -P16 req/s vs redis GET", ratio(("tcp", "variantd decide -P16"), ("tcp", "redis GET -P16"), "rps"), "≥ 0.8×"),
        ("HTTP req/s vs nginx geoip2", ratio(("http", "variantd edge (1 worker)"), ("http", "nginx geoip2+maps (1 worker)"), "rps"), "≥ 1.0×"),
        ("HTTP server CPU/req vs nginx", ratio(("http", "variantd edge (1 worker)"), ("http", "nginx geoip2+maps (1 worker)"), "cpu_us_per_req"), "≤ 0.75×"),
    ]
    for name, v, target in goals:
        out.append(f"| {name} | {fmt(v, 2) + '×' if v else '–'} | {target} |")
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
        out.append(f"| end-to-end p99 at half the peak rate, 1,000 segments | {s1k['half_rate_p99_us'] / 1000:.2f} ms | ≤ 1 ms |")
    sw = agg.get(("swap", "variantd 1,000 -> 10,000 segments"))
    if sw:
        out.append(f"| 10,000-segment swap live | {fmt(sw['extra'].get('swap_ms'))} ms, {fmt(sw['errors_total'])} failed, "
                   f"p99.9 {fmt(sw['p999_us'], 0)} µs | ≤ 200 ms, 0 failed |")
        rss = sw["extra"].get("rss_kb_10000")
        if rss:
            out.append(f"| RSS with 10,000 segments | {rss / 1024:.1f} MB | ≤ 64 MB |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
