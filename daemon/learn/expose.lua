-- expose.lua — one exposure of (slot, rule key, variant) to one visitor.
-- Counted once per visitor and pair per attribution window, atomically: the
-- visitor's exposure (a field of the profile hash) and the shared counters
-- change in the same script, so two daemons deciding for the same visitor at
-- the same moment count it once. Key layout: docs/LEARNING.md.
--
-- KEYS[1]  the visitor's profile hash (field "x:<slot>" holds the exposure)
-- ARGV     1 namespace, 2 slot, 3 rule key, 4 variant, 5 ts (unix s),
--          6 attribution window (s), 7 UTC day YYYYMMDD, 8 profile TTL (s, 0:
--          leave the TTL to the profile writer), 9 stream key ("" = off),
--          10 stream MAXLEN, 11 "bandit" when the rule allocates by bandit,
--          12 the decision's time in microseconds (orders two decisions of one
--          visitor whose writes arrive out of order: the later decision's
--          exposure stays in the profile; absent = 0)
-- Returns  {1, variant} counted; {0, variant} already exposed to this pair
--          within the window (variant: the one in the profile)
--
-- The function below is also the exposure step of the profile store's
-- decide script (daemon/profile/scripts.c), which runs it for every slot of
-- a decision behind the visit, in one command; it returns the status, the
-- variant and the ts of the exposure the profile holds for the pair.
local function expose(k, ns, slot, rule, variant, ts_s, window, day, ttl, stream, maxlen, bandit, us_s)
  local ts = tonumber(ts_s)
  local base = ns .. ':x:{' .. slot .. '}'
  local epoch = redis.call('GET', base .. ':epoch') or '0'
  local field = 'x:' .. slot
  us_s = us_s or '0'
  if not string.match(us_s, '^%d+$') then us_s = '0' end
  local us = tonumber(us_s)
  local cur = redis.call('HGET', k, field)
  local keep = false
  if cur then
    local e, r, v, t, c, u = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|(%-?%d+)|(%d)|?(%d*)$')
    t = tonumber(t)
    if e == epoch and r == rule and v == variant and t and math.abs(ts - t) < window then
      return 0, v, t
    end
    -- A later decision's exposure is already there (its write overtook this
    -- one): count this exposure, keep that one in the profile.
    keep = e == epoch and tonumber(u) ~= nil and tonumber(u) > us
  end
  if not keep then
    redis.call('HSET', k, field, epoch .. '|' .. rule .. '|' .. variant .. '|' .. ts_s .. '|0|' .. us_s)
  end
  if tonumber(ttl) > 0 then
    redis.call('EXPIRE', k, ttl)
  end
  local pair = rule .. '|' .. variant
  redis.call('HINCRBY', base .. ':' .. epoch .. ':n', 'e|' .. pair, 1)
  local d = base .. ':' .. epoch .. ':d:' .. day
  redis.call('HINCRBY', d, 'e|' .. pair, 1)
  redis.call('EXPIRE', d, 34560000)
  redis.call('SADD', ns .. ':x:slots', slot)
  if bandit == 'bandit' then
    redis.call('SADD', base .. ':bandit', rule)
  end
  if stream ~= '' then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'type', 'exposure', 'slot', slot,
               'rule', rule, 'variant', variant, 'ts', ts_s, 'epoch', epoch, 'visitor', k)
  end
  if keep then
    return 1, variant, -1
  end
  return 1, variant, ts
end
-- standalone
local status, variant = expose(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]),
                               ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
return {status, variant}
