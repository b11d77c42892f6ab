#!/usr/bin/python3
"""check-layering — fails when a daemon file includes a header of a floor above
its own, when two files include each other in a circle, or when a tool
includes the daemon's runtime. The floors come from the Makefile (LAYERS),
bottom first; include/variantd/ is the public API and lies under them all.

usage: check-layering.py [--graph] [--objects DIR [--objlist FILE]] FLOOR...
  --graph        also print the include graph's size: files, arrows, cycles.
  --objects DIR  also check calls, not only includes: every symbol an object
                 file of DIR/daemon takes from another (nm) must be defined on
                 its own floor or below (a function declared low and defined
                 high is a loop that includes alone do not show). Only objects
                 of sources that exist are read (a stale object of a removed
                 folder is not a floor).
"""
import subprocess
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+["<]([^">]+)[">]', re.M)
# Daemon code allocates through core/alloc.h (counting, failure injection).
RAW_ALLOC = re.compile(r'(?<![\w.>])(malloc|calloc|realloc|free|strdup|strndup)\s*\(')


def sources(root):
    for top in ("daemon", "tools", "include"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), root)


def floor_of(path, floors):
    """The floor of a daemon file or of an include path ("rules/eval.h")."""
    parts = path.split("/")
    if parts[0] == "daemon":
        parts = parts[1:]
    if parts[0] == "include" or parts[0] == "variantd":
        return "variantd"
    if len(parts) == 1:
        return "main"          # daemon/main.c
    return parts[0] if parts[0] in floors else None


def resolve(inc, src, root):
    """The project file an include names: beside the including file first
    (as the compiler looks for quoted includes), then -Idaemon, -Iinclude.
    Angle brackets count too: <net/x.h> resolves through -Idaemon."""
    for base in (os.path.dirname(src), "daemon", "include"):
        p = os.path.normpath(os.path.join(base, inc))
        if not p.startswith("..") and os.path.isfile(os.path.join(root, p)):
            return p
    return None


def code_only(text):
    """The text without comments and string literals (for the allocator lint)."""
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def check_calls(objdir, floors, rank):
    objs = []
    for d, _, files in os.walk(os.path.join(objdir, "daemon")):
        for f in files:
            o = os.path.join(d, f)
            src = os.path.relpath(o, objdir)[:-2] + ".c"
            if f.endswith(".o") and os.path.isfile(src):
                objs.append(o)
    if not objs:
        return [f"no object files under {objdir}/daemon: build first"]
    out = subprocess.run(["nm", "-A", "--defined-only", "-g"] + sorted(objs),
                         capture_output=True, text=True, check=True).stdout
    where = {}
    for line in out.splitlines():
        obj, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) >= 3:
            where[parts[2]] = obj
    out = subprocess.run(["nm", "-A", "-u"] + sorted(objs), capture_output=True, text=True,
                         check=True).stdout
    errors = []
    for line in out.splitlines():
        obj, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or parts[-1] not in where:
            continue
        sym, dobj = parts[-1], where[parts[-1]]
        a = floor_of(os.path.relpath(obj, objdir), floors)
        b = floor_of(os.path.relpath(dobj, objdir), floors)
        if a in rank and b in rank and rank[b] > rank[a]:
            errors.append(f"{os.path.relpath(obj, objdir)} calls {sym}, defined in "
                          f"{os.path.relpath(dobj, objdir)}: floor '{b}' is above '{a}'")
    return errors


def main():
    args = sys.argv[1:]
    graph = "--graph" in args
    objdir = None
    if "--objects" in args:
        i = args.index("--objects")
        objdir = args[i + 1]
        del args[i:i + 2]
    floors = [a for a in args if not a.startswith("--")]
    if not floors:
        print(__doc__, file=sys.stderr)
        return 2
    rank = {"variantd": -1, "main": len(floors)}
    rank.update({f: i for i, f in enumerate(floors)})
    root = "."
    edges = {}
    errors = []
    for src in sorted(sources(root)):
        text = open(os.path.join(root, src), encoding="utf-8", errors="replace").read()
        mine = "tools" if src.startswith("tools/") else floor_of(src, floors)
        if mine is None:
            errors.append(f"{src}: folder is not a floor: add it to LAYERS in the Makefile")
            continue
        if src.startswith("daemon/") and src.endswith(".c") and src != "daemon/core/alloc.c":
            for m in RAW_ALLOC.finditer(code_only(text)):
                errors.append(f"{src}: calls {m.group(1)}() directly: daemon code allocates through "
                              "core/alloc.h (vd_malloc, vd_free, ...)")
        for inc in INCLUDE.findall(text):
            target = resolve(inc, src, root)
            if target is None:
                continue                     # a system header in quotes, or generated
            edges.setdefault(src, set()).add(target)
            theirs = floor_of(target, floors)
            if mine == "tools":
                if theirs in ("runtime", "main"):
                    errors.append(f"{src}: includes {inc}: tools build on the decision library, "
                                  "not on the daemon's runtime")
                continue
            if theirs is None:
                errors.append(f"{src}: includes {inc}, which is on no floor")
            elif rank[theirs] > rank[mine]:
                errors.append(f"{src}: includes {inc}: floor '{theirs}' is above '{mine}' "
                              f"(order, bottom first: {' < '.join(floors)})")
    # Circles among files: a DFS over the include graph.
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    for c in cycles:
        errors.append("include circle: " + " -> ".join(c))
    if objdir:
        errors += check_calls(objdir, floors, rank)
    if graph:
        files = set(edges) | {t for ts in edges.values() for t in ts}
        arrows = sum(len(ts) for ts in edges.values())
        between = {}
        for s, ts in edges.items():
            fs = "tools" if s.startswith("tools/") else floor_of(s, floors)
            for t in ts:
                ft = floor_of(t, floors)
                if fs != ft:
                    between[(fs, ft)] = between.get((fs, ft), 0) + 1
        print(f"include graph: {len(files)} files, {arrows} arrows, {len(cycles)} circles")
        for (a, b), k in sorted(between.items()):
            print(f"  {a} -> {b}: {k}")
    for e in errors:
        print("check-layering: " + e, file=sys.stderr)
    if errors:
        return 1
    print(f"check-layering: ok ({' < '.join(floors)}; include/variantd below all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
