/* scripts.c — the Lua scripts that read and change profiles in Redis
 * (layout 1, docs/PROFILES.md). Each touches only its KEYS[1] (the track
 * batch: its KEYS, one per command through a proxy), so they run on a plain
 * Redis, through a nutcracker/twemproxy pool or on a Cluster.
 * The arithmetic is the one of context/visitor.c, line for line. */
#include "profile/scripts.h"

#include <string.h>

#include "core/sha1.h"
#include "learn/counters.h"

/* Shared prologue: the visit bookkeeping of vd_visit_touch, lean: one
 * HMGET (the alias, the visit fields, the known mark), one HSET of what
 * changed (nothing for a repeat view that does not move last_seen), no
 * number formatting (the times are written as the daemon sent them).
 * Returns nil, alias on a merged vid's key. */
#define TOUCH                                                                              \
    "local function touch(k, ts, gap, known)\n"                                            \
    "  local h = redis.call('HMGET', k, 'a', 'v', 'fs', 'ls', 'k')\n"                       \
    "  if h[1] then return nil, h[1] end\n"                                                \
    "  local v, fs, ls = tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0\n"   \
    "  local t = ARGV[1]\n"                                                                \
    "  local w = {}\n"                                                                     \
    "  local began = 0\n"                                                                  \
    "  if v == 0 then v = 1; began = 1; w = {'v', 1, 'fs', t, 'ls', t, 'vs', t, 'pe', 0}\n"  \
    "  else\n"                                                                             \
    "    if ts < fs then w[#w + 1] = 'fs'; w[#w + 1] = t end\n"                              \
    "    if ts - ls > gap then\n"                                                          \
    "      v = v + 1; began = 1\n"                                                         \
    "      w[#w + 1] = 'v'; w[#w + 1] = v; w[#w + 1] = 'pe'; w[#w + 1] = h[4]\n"              \
    "      w[#w + 1] = 'vs'; w[#w + 1] = t; w[#w + 1] = 'ls'; w[#w + 1] = t\n"                \
    "    elseif ts > ls then w[#w + 1] = 'ls'; w[#w + 1] = t end\n"                          \
    "  end\n"                                                                              \
    "  if known and h[5] ~= '1' then w[#w + 1] = 'k'; w[#w + 1] = '1' end\n"                 \
    "  if #w > 0 then redis.call('HSET', k, unpack(w)) end\n"                               \
    "  return v, began\n"                                                                  \
    "end\n"

/* A score's value in the hash: encoding 2 (since 2026-12-03) is the byte 2
 * then four little-endian doubles (value, t, peak, peak_t) -- packing is
 * ~5x cheaper in Redis' Lua than "%.17g" text, which was a third of a
 * track's cost; encoding 1, the text "value t peak peak_t", is still read
 * (profiles written before) and rewritten as 2 by the next event. */
#define SCORE_IO                                                                           \
    "local function sread(raw)\n"                                                          \
    "  if #raw == 33 and string.byte(raw, 1) == 2 then\n"                                  \
    "    local _, a, b, c, d = struct.unpack('<Bdddd', raw)\n"                             \
    "    return a, b, c, d\n"                                                              \
    "  end\n"                                                                              \
    "  local a, b, c, d = string.match(raw, '(%S+) (%S+) (%S+) (%S+)')\n"                  \
    "  return tonumber(a) or 0, tonumber(b) or 0, tonumber(c) or 0, tonumber(d) or 0\n"    \
    "end\n"                                                                                \
    "local function swrite(v, t, pk, pt) return struct.pack('<Bdddd', 2, v, t, pk, pt) end\n"

/* KEYS[1] profile; ARGV: ts, gap_s, ttl_s, known (0/1). The TTL is set when
 * a visit begins (a repeat view within the visit leaves it), so "profile-ttl
 * without a visit". A decision that reads the profile pipelines an HGETALL
 * right behind this (store.c): one round trip, and Redis converts no hash
 * to Lua and back.
 * -> {"alias", uid_hash} | {"ok", visits, began} */
static const char visit_lua[] =
    TOUCH
    "local k = KEYS[1]\n"
    "local v, began = touch(k, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4] == '1')\n"
    "if not v then return {'alias', began} end\n"
    "if began == 1 then redis.call('EXPIRE', k, ARGV[3]) end\n"
    "return {'ok', v, began}\n";

/* KEYS[1] profile; ARGV: ts, gap_s, ttl_s, known, type, count (0/1), then
 * (score id, points, half_life_s) triples. vd_score_add per score.
 * -> {"alias", uid_hash} | {"ok", visits, began} */
static const char event_lua[] =
    TOUCH
    SCORE_IO
    "local k = KEYS[1]\n"
    "local ts = tonumber(ARGV[1])\n"
    "local v, began = touch(k, ts, tonumber(ARGV[2]), ARGV[4] == '1')\n"
    "if not v then return {'alias', began} end\n"
    "if ARGV[6] == '1' then redis.call('HINCRBY', k, 'e:' .. ARGV[5], 1) end\n"
    "for i = 7, #ARGV - 2, 3 do\n"
    "  local f = 's:' .. ARGV[i]\n"
    "  local p, hl = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "  local val, t, pk, pt = 0, 0, 0, 0\n"
    "  local cur = redis.call('HGET', k, f)\n"
    "  if cur then val, t, pk, pt = sread(cur) end\n"
    "  if val == 0 and t == 0 then val = p; t = ts\n"
    "  elseif ts >= t then val = val * 2 ^ (-(ts - t) / hl) + p; t = ts\n"
    "  else val = val + p * 2 ^ (-(t - ts) / hl) end\n"
    "  if pk > 0 and ts <= pt then pk = pk + p * 2 ^ (-(pt - ts) / hl) end\n"
    "  if val >= pk then pk = val; pt = t end\n"
    "  redis.call('HSET', k, f, swrite(val, t, pk, pt))\n"
    "end\n"
    "redis.call('EXPIRE', k, tonumber(ARGV[3]))\n"
    "return {'ok', v, began}\n";

/* KEYS[1] profile; ARGV: flag, expires_at (0 = until cleared), clear (0/1), ttl_s.
 * -> {"alias", uid_hash} | {"ok"} */
static const char flag_lua[] =
    "local k = KEYS[1]\n"
    "local a = redis.call('HGET', k, 'a')\n"
    "if a then return {'alias', a} end\n"
    "if ARGV[3] == '1' then redis.call('HDEL', k, 'f:' .. ARGV[1])\n"
    "else\n"
    "  redis.call('HSET', k, 'f:' .. ARGV[1], ARGV[2])\n"
    "  redis.call('EXPIRE', k, tonumber(ARGV[4]))\n"
    "end\n"
    "return {'ok'}\n";

/* KEYS[1] profile. -> {"alias", uid_hash} | {"ok", 0, 0, [HGETALL]} */
static const char show_lua[] =
    "local k = KEYS[1]\n"
    "local a = redis.call('HGET', k, 'a')\n"
    "if a then return {'alias', a} end\n"
    "return {'ok', 0, 0, redis.call('HGETALL', k)}\n";

/* KEYS[1] profile. -> {"ok", deleted (0/1), alias or false} */
static const char forget_lua[] =
    "local k = KEYS[1]\n"
    "local a = redis.call('HGET', k, 'a')\n"
    "local n = redis.call('DEL', k)\n"
    "return {'ok', n, a or false}\n";

/* KEYS[1] the vid's profile; ARGV: uid hash, ttl_s. Once per vid: hands
 * its fields over and leaves an alias to the uid's profile.
 * -> [HGETALL] (maybe empty) | nil when already merged */
static const char claim_lua[] =
    "local k = KEYS[1]\n"
    "if redis.call('HGET', k, 'a') then return false end\n"
    "local all = redis.call('HGETALL', k)\n"
    "redis.call('DEL', k)\n"
    "redis.call('HSET', k, 'a', ARGV[1])\n"
    "redis.call('EXPIRE', k, tonumber(ARGV[2]))\n"
    "return all\n";

/* KEYS[1] the uid's profile; ARGV: ttl_s, n, n (score id, half_life_s)
 * pairs, then the claimed field/value pairs. vd_visit_merge and
 * vd_score_merge; events added; flags united (the later expiry wins,
 * 0 = until cleared wins over any). -> 1 */
static const char merge_lua[] =
    SCORE_IO
    "local k = KEYS[1]\n"
    "local n = tonumber(ARGV[2])\n"
    "local hl = {}\n"
    "for i = 0, n - 1 do hl[ARGV[3 + 2 * i]] = tonumber(ARGV[4 + 2 * i]) end\n"
    "local src = {}\n"
    "for i = 3 + 2 * n, #ARGV - 1, 2 do src[ARGV[i]] = ARGV[i + 1] end\n"
    "local sv = tonumber(src['v']) or 0\n"
    "if sv > 0 then\n"
    "  local h = redis.call('HMGET', k, 'v', 'fs', 'ls', 'vs', 'pe')\n"
    "  local v = tonumber(h[1]) or 0\n"
    "  local sfs, sls = tonumber(src['fs']) or 0, tonumber(src['ls']) or 0\n"
    "  local svs, spe = tonumber(src['vs']) or 0, tonumber(src['pe']) or 0\n"
    "  if v == 0 then\n"
    "    redis.call('HMSET', k, 'v', sv, 'fs', src['fs'], 'ls', src['ls'], 'vs', src['vs'], 'pe', src['pe'])\n"
    "  else\n"
    "    local fs, ls = tonumber(h[2]) or 0, tonumber(h[3]) or 0\n"
    "    if sfs < fs then fs = sfs end\n"
    "    if sls > ls then redis.call('HMSET', k, 'ls', src['ls'], 'vs', src['vs'], 'pe', src['pe']) end\n"
    "    redis.call('HMSET', k, 'v', v + sv, 'fs', string.format('%d', fs))\n"
    "  end\n"
    "end\n"
    "for f, val in pairs(src) do\n"
    "  local p = string.sub(f, 1, 2)\n"
    "  if p == 'e:' then redis.call('HINCRBY', k, f, tonumber(val) or 0)\n"
    "  elseif p == 'f:' then\n"
    "    local d = redis.call('HGET', k, f)\n"
    "    if not d or (d ~= '0' and (val == '0' or (tonumber(val) or 0) > (tonumber(d) or 0))) then\n"
    "      redis.call('HSET', k, f, val) end\n"
    "  elseif p == 's:' then\n"
    "    local d = redis.call('HGET', k, f)\n"
    "    local h2 = hl[string.sub(f, 3)]\n"
    "    if not d then redis.call('HSET', k, f, val)\n"
    "    elseif h2 then\n"
    "      local dv, dt, dp, dpt = sread(d)\n"
    "      local sv2, st, sp, spt = sread(val)\n"
    "      local t = dt\n"
    "      if st > t then t = st end\n"
    "      local nv = dv * 2 ^ (-(t - dt) / h2) + sv2 * 2 ^ (-(t - st) / h2)\n"
    "      if sp > dp then dp = sp; dpt = spt end\n"
    "      if nv >= dp then dp = nv; dpt = t end\n"
    "      redis.call('HSET', k, f, swrite(nv, t, dp, dpt))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', k, 'k', '1')\n"
    "redis.call('EXPIRE', k, tonumber(ARGV[1]))\n"
    "return 1\n";

/* The track path (store.c batches a worker's events of one event-loop turn).
 * KEYS: profiles; ARGV: gap_s, ttl_s; nf, the nf fields the batch's events
 * touch ("e:TYPE" counters, "s:ID" scores); ns, then ns event shapes, each:
 * known (0/1), the counter's field number (1-based; 0: not counted), m, then
 * m (field number, points, half_life_s) triples (the half-life is the
 * event's own: a reload within the batch may change it); then for each key in KEYS order: expire (0/1), n, then n
 * (ts, shape number) pairs in arrival order. The daemon names fields and
 * shapes once per batch (most batches have one or two shapes), so a key
 * costs the script two numbers per event and it builds no strings.
 * Per profile: one HMGET of everything its events touch, the events applied
 * in order in memory (touch, event counters, vd_score_add: the arithmetic of
 * event_lua, event by event), one HSET of what changed, and the EXPIRE
 * unless the daemon set this key's TTL less than session-gap/30 ago (a new
 * key always gets it). A key holding an alias (a merged vid) is left alone:
 * its events are re-sent to the uid's profile.
 * -> one element per key: 1 a new profile, 0 an existing one, or the uid
 *    hash of an alias */
static const char track_batch_lua[] =
    SCORE_IO
    "local gap = tonumber(ARGV[1])\n"
    "local call = redis.call\n"
    "local nf = tonumber(ARGV[3])\n"
    "local p = 4 + nf\n"
    "local shapes = {}\n"
    "local ns = tonumber(ARGV[p])\n"
    "p = p + 1\n"
    "for s = 1, ns do\n"
    "  local c, m = tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])\n"
    /* f: the shape's fields; names/pos: its HMGET list and where each
     * field lands in the reply (a key with one event uses them as they are) */
    "  local sh = {known = ARGV[p] == '1', c = c, m = m, xf = {}, pts = {}, hl = {}, f = {}, names = {}, pos = {}}\n"
    "  if c > 0 then sh.f[1] = c end\n"
    "  p = p + 3\n"
    "  for x = 1, m do\n"
    "    local g = tonumber(ARGV[p])\n"
    "    sh.xf[x] = g; sh.pts[x] = tonumber(ARGV[p + 1]); sh.hl[x] = tonumber(ARGV[p + 2])\n"
    "    sh.f[#sh.f + 1] = g\n"
    "    p = p + 3\n"
    "  end\n"
    "  for x, g in ipairs(sh.f) do sh.names[x] = ARGV[3 + g]; sh.pos[g] = 4 + x end\n"
    "  shapes[tostring(s)] = sh\n"
    "end\n"
    "local out = {}\n"
    "for j = 1, #KEYS do\n"
    "  local k = KEYS[j]\n"
    "  local x, n = ARGV[p], tonumber(ARGV[p + 1])\n"
    "  local e0 = p + 2\n"
    "  p = e0 + 2 * n\n"
    "  local names, pos\n"
    "  if n == 1 then\n"
    "    local sh = shapes[ARGV[e0 + 1]]\n"
    "    names, pos = sh.names, sh.pos\n"
    "  else\n"
    "    names, pos = {}, {}\n"
    "    for e = e0 + 1, p - 1, 2 do\n"
    "      for _, g in ipairs(shapes[ARGV[e]].f) do\n"
    "        if not pos[g] then names[#names + 1] = ARGV[3 + g]; pos[g] = 4 + #names end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local h = call('HMGET', k, 'a', 'v', 'fs', 'ls', unpack(names))\n"
    "  if h[1] then\n"
    "    out[j] = h[1]\n"
    "  else\n"
    "    local v = tonumber(h[2]) or 0\n"
    "    local fs, ls = tonumber(h[3]) or 0, tonumber(h[4]) or 0\n"
    "    local v0, fs0, ls0 = v, fs, ls\n"
    /* Times are written as the daemon sent them (decimal integers). */
    "    local fsS, lsS, vsS, peS = h[3] or '0', h[4] or '0', nil, nil\n"
    "    local new, known = 0, false\n"
    "    local cur = {}\n"
    "    for e = e0, p - 1, 2 do\n"
    "      local tsS = ARGV[e]\n"
    "      local ts = tonumber(tsS)\n"
    "      local sh = shapes[ARGV[e + 1]]\n"
    "      if sh.known then known = true end\n"
    "      if v == 0 then v = 1; fs = ts; ls = ts; fsS = tsS; lsS = tsS; vsS = tsS; peS = '0'; new = 1\n"
    "      else\n"
    "        if ts < fs then fs = ts; fsS = tsS end\n"
    "        if ts - ls > gap then v = v + 1; peS = lsS; vsS = tsS; ls = ts; lsS = tsS\n"
    "        elseif ts > ls then ls = ts; lsS = tsS end\n"
    "      end\n"
    "      local c = sh.c\n"
    "      if c > 0 then cur[c] = (cur[c] or tonumber(h[pos[c]]) or 0) + 1 end\n"
    "      for s = 1, sh.m do\n"
    "        local g, pts, hg = sh.xf[s], sh.pts[s], sh.hl[s]\n"
    "        local st = cur[g]\n"
    "        if not st then\n"
    "          st = {0, 0, 0, 0}\n"
    "          local raw = h[pos[g]]\n"
    "          if raw then st[1], st[2], st[3], st[4] = sread(raw) end\n"
    "          cur[g] = st\n"
    "        end\n"
    "        local val, t, pk, pt = st[1], st[2], st[3], st[4]\n"
    "        if val == 0 and t == 0 then val = pts; t = ts\n"
    "        elseif ts >= t then val = val * 2 ^ (-(ts - t) / hg) + pts; t = ts\n"
    "        else val = val + pts * 2 ^ (-(t - ts) / hg) end\n"
    "        if pk > 0 and ts <= pt then pk = pk + pts * 2 ^ (-(pt - ts) / hg) end\n"
    "        if val >= pk then pk = val; pt = t end\n"
    "        st[1], st[2], st[3], st[4] = val, t, pk, pt\n"
    "      end\n"
    "    end\n"
    /* Only what changed is written: within a visit that is ls alone. */
    "    local w = {}\n"
    "    if v ~= v0 then w = {'v', v, 'vs', vsS, 'pe', peS} end\n"
    "    if fs ~= fs0 or v0 == 0 then w[#w + 1] = 'fs'; w[#w + 1] = fsS end\n"
    "    if ls ~= ls0 or v0 == 0 then w[#w + 1] = 'ls'; w[#w + 1] = lsS end\n"
    "    if known then w[#w + 1] = 'k'; w[#w + 1] = '1' end\n"
    "    for g, st in pairs(cur) do\n"
    "      w[#w + 1] = ARGV[3 + g]\n"
    "      if type(st) == 'table' then w[#w + 1] = swrite(st[1], st[2], st[3], st[4])\n"
    "      else w[#w + 1] = st end\n"
    "    end\n"
    "    if #w > 0 then call('HSET', k, unpack(w)) end\n"
    "    if x == '1' or v0 == 0 then call('EXPIRE', k, ARGV[2]) end\n"
    "    out[j] = new\n"
    "  end\n"
    "end\n"
    "return out\n";
/* decide: a decision's exposures (slots with a goal) and, unless it read
 * the profile already, its visit, in one command. Built at start-up: the
 * visit's TOUCH, the expose() function of learn/expose.lua (the text above
 * its "-- standalone" line), and this driver. Touches the counter keys as
 * expose.lua does (docs/LEARNING.md: counting needs a single Redis).
 * KEYS[1] profile; ARGV: 1 ts, 2 gap_s, 3 ttl_s, 4 known, 5 visit (0/1),
 * 6 namespace, 7 window_s, 8 UTC day, 9 stream, 10 stream MAXLEN, 11 the
 * decision's time in microseconds, 12 the profile TTL the exposure sets (0:
 * none), then (slot, rule key, variant, "bandit"|"") per exposure.
 * -> {"alias", uid_hash} | {"ok", visits, began, {status, ts, ...}} (ts:
 * that of the exposure the profile holds for the pair; -1 if another) */
static const char decide_driver[] =
    "local k = KEYS[1]\n"
    "local v, began = 0, 0\n"
    "if ARGV[5] == '1' then\n"
    "  v, began = touch(k, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4] == '1')\n"
    "  if not v then return {'alias', began} end\n"
    "  if began == 1 then redis.call('EXPIRE', k, ARGV[3]) end\n"
    "else\n"
    "  local a = redis.call('HGET', k, 'a')\n"
    "  if a then return {'alias', a} end\n"
    "end\n"
    "local out = {}\n"
    "local window = tonumber(ARGV[7])\n"
    "for i = 13, #ARGV - 3, 4 do\n"
    "  local st, _, t = expose(k, ARGV[6], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[1], window, ARGV[8],\n"
    "                          ARGV[12], ARGV[9], ARGV[10], ARGV[i + 3], ARGV[11])\n"
    "  out[#out + 1] = st\n"
    "  out[#out + 1] = t\n"
    "end\n"
    "return {'ok', v, began, out}\n";

static char decide_lua[8192];

static vd_script scripts[VD_SCRIPT__COUNT] = {
    [VD_SCRIPT_VISIT] = { "visit", visit_lua, sizeof visit_lua - 1, "" },
    [VD_SCRIPT_EVENT] = { "event", event_lua, sizeof event_lua - 1, "" },
    [VD_SCRIPT_FLAG] = { "flag", flag_lua, sizeof flag_lua - 1, "" },
    [VD_SCRIPT_SHOW] = { "show", show_lua, sizeof show_lua - 1, "" },
    [VD_SCRIPT_FORGET] = { "forget", forget_lua, sizeof forget_lua - 1, "" },
    [VD_SCRIPT_CLAIM] = { "claim", claim_lua, sizeof claim_lua - 1, "" },
    [VD_SCRIPT_MERGE] = { "merge", merge_lua, sizeof merge_lua - 1, "" },
    [VD_SCRIPT_TRACK_BATCH] = { "track_batch", track_batch_lua, sizeof track_batch_lua - 1, "" },
    [VD_SCRIPT_DECIDE] = { "decide", decide_lua, 0, "" },
};

static void build_decide(void)
{
    static const char touch[] = TOUCH;
    vd_str x = vd_learn_expose_script();
    const char *end = strstr(x.p, "\n-- standalone\n");
    size_t xn = end ? (size_t)(end - x.p) + 1 : 0;
    size_t n = sizeof touch - 1, d = sizeof decide_driver - 1;
    if (!xn || n + xn + d >= sizeof decide_lua)
        return;               /* cannot happen with the shipped texts (test_learn_counters) */
    memcpy(decide_lua, touch, n);
    memcpy(decide_lua + n, x.p, xn);
    memcpy(decide_lua + n + xn, decide_driver, d + 1);
    scripts[VD_SCRIPT_DECIDE].len = n + xn + d;
}

void vd_scripts_init(void)
{
    if (!scripts[VD_SCRIPT_DECIDE].len)
        build_decide();
    for (int i = 0; i < VD_SCRIPT__COUNT; i++)
        if (!scripts[i].sha[0])
            vd_sha1_hex(scripts[i].body, scripts[i].len, scripts[i].sha);
}

const vd_script *vd_script_get(int id)
{
    return id >= 0 && id < VD_SCRIPT__COUNT ? &scripts[id] : 0;
}
