#!/bin/sh
# Fetches isbot's maintained bot pattern list from its npm package (pinned
# version, checked against the registry's published sha512) and writes it as
# one pattern per line to data/bots/isbot-patterns.txt, with a header that
# names origin, version and licence. No Node at run time: the daemon embeds
# the text file and compiles it with PCRE2 at start-up (context/bots.c).
#
# usage: scripts/fetch-isbot.sh [OUT]      (needs npm and /usr/bin/python3)
set -eu
VERSION=5.2.4
# `npm view isbot@5.2.4 dist.integrity`
INTEGRITY='sha512-qFPSy82nnxEUrHdKpIQPVpYwsGJqL/+VGWYVYP5c8XMOyRRPDVb1C5ZMwmKs3nB4Evsw/ux0WqHBkf2UUawC1A=='
OUT="${1:-data/bots/isbot-patterns.txt}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "isbot@$VERSION" >/dev/null )
tgz="$tmp/isbot-$VERSION.tgz"
got="sha512-$(/usr/bin/python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")"
if [ "$got" != "$INTEGRITY" ]; then
  echo "fetch-isbot: isbot-$VERSION.tgz does not match the pinned integrity" >&2
  exit 1
fi
tar xzf "$tgz" -C "$tmp" package/index.js package/LICENSE package/package.json
/usr/bin/python3 - "$tmp/package" "$VERSION" "$OUT.tmp" <<'PY'
import json, re, sys
pkg, version, out = sys.argv[1:4]
meta = json.load(open(pkg + "/package.json"))
assert meta["version"] == version, meta["version"]
assert meta["license"] == "Unlicense", meta["license"]
src = open(pkg + "/index.js", encoding="utf-8").read()
m = re.search(r"// src/patterns\.json\nvar patterns_default = (\[.*?\n\]);", src, re.S)
if not m:
    sys.exit("fetch-isbot: no pattern list in index.js (the package layout changed)")
pats = json.loads(m.group(1))
assert pats and all(isinstance(p, str) and "\n" not in p for p in pats)
with open(out, "w", encoding="utf-8") as f:
    f.write("# isbot %s pattern list (src/patterns.json of the npm package isbot@%s)\n" % (version, version))
    f.write("# Origin: https://github.com/omrilotan/isbot, fetched by scripts/fetch-isbot.sh\n")
    f.write("# Licence: Unlicense (public domain). One regular expression per line,\n")
    f.write("# matched case-insensitively against the whole User-Agent.\n")
    for p in pats:
        f.write(p + "\n")
print("fetch-isbot: %d patterns from isbot %s" % (len(pats), version))
PY
mv "$OUT.tmp" "$OUT"
