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
local ns, slot, rule, variant = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ts, window = tonumber(ARGV[5]), tonumber(ARGV[6])
local base = ns .. ':x:{' .. slot .. '}'
local epoch = redis.call('GET', base .. ':epoch') or '0'
local field = 'x:' .. slot
local us_s = ARGV[12] or '0'
if not string.match(us_s, '^%d+$') then us_s = '0' end
local us = tonumber(us_s)
local cur = redis.call('HGET', KEYS[1], field)
local keep = false
if cur then
  local e, r, v, t, c, u = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|(%-?%d+)|(%d)|?(%d*)$')
  t = tonumber(t)
  if e == epoch and r == rule and v == variant and t and math.abs(ts - t) < window then
    return {0, v}
  end
  -- A later decision's exposure is already there (its write overtook this
  -- one): count this exposure, keep that one in the profile.
  keep = e == epoch and tonumber(u) ~= nil and tonumber(u) > us
end
if not keep then
  redis.call('HSET', KEYS[1], field, epoch .. '|' .. rule .. '|' .. variant .. '|' .. ARGV[5] .. '|0|' .. us_s)
end
if tonumber(ARGV[8]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
local pair = rule .. '|' .. variant
redis.call('HINCRBY', base .. ':' .. epoch .. ':n', 'e|' .. pair, 1)
local day = base .. ':' .. epoch .. ':d:' .. ARGV[7]
redis.call('HINCRBY', day, 'e|' .. pair, 1)
redis.call('EXPIRE', day, 34560000)
redis.call('SADD', ns .. ':x:slots', slot)
if ARGV[11] == 'bandit' then
  redis.call('SADD', base .. ':bandit', rule)
end
if ARGV[9] ~= '' then
  redis.call('XADD', ARGV[9], 'MAXLEN', '~', ARGV[10], '*', 'type', 'exposure', 'slot', slot,
             'rule', rule, 'variant', variant, 'ts', ARGV[5], 'epoch', epoch, 'visitor', KEYS[1])
end
return {1, variant}
