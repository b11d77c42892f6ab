-- convert.lua — a goal event converts the visitor's live exposures, once.
-- For each slot whose goal the event is: the exposure in the profile (field
-- "x:<slot>") converts when it belongs to the slot's current epoch, the event
-- is no earlier than it and younger than the attribution window, and it has
-- not converted yet; it is then marked converted and (slot, rule key,
-- variant) gains one conversion and the event's value, in the same script,
-- so a second daemon receiving the same event finds it converted. Events
-- that convert nothing are counted per slot by reason. Key layout:
-- docs/LEARNING.md.
--
-- KEYS[1]  the visitor's profile hash
-- ARGV     1 namespace, 2 ts, 3 attribution window (s), 4 value, 5 UTC day
--          YYYYMMDD, 6 stream key ("" = off), 7 stream MAXLEN, 8 event type,
--          9.. the slots that have this event as a goal
-- Returns  one status per slot: 1 converted, 0 no exposure, -1 outside the
--          window, -2 already converted, -3 exposure from before a reset
local ns, ts, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local value = tonumber(ARGV[4]) or 0
local out = {}
for i = 9, #ARGV do
  local slot = ARGV[i]
  local base = ns .. ':x:{' .. slot .. '}'
  local epoch = redis.call('GET', base .. ':epoch') or '0'
  local totals = base .. ':' .. epoch .. ':n'
  local field = 'x:' .. slot
  local cur = redis.call('HGET', KEYS[1], field)
  local status, reason = 0, 'u|none'
  local e, r, v, t, c, u
  if cur then
    e, r, v, t, c, u = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|(%-?%d+)|(%d)|?(%d*)$')
    t = tonumber(t)
  end
  if not t then
    status, reason = 0, 'u|none'
  elseif e ~= epoch then
    status, reason = -3, 'u|reset'
  elseif c == '1' then
    status, reason = -2, 'u|converted'
  elseif ts < t or ts - t >= window then
    status, reason = -1, 'u|outside'
  else
    status = 1
  end
  local day = base .. ':' .. epoch .. ':d:' .. ARGV[5]
  if status == 1 then
    redis.call('HSET', KEYS[1], field, e .. '|' .. r .. '|' .. v .. '|' .. t .. '|1|' .. u)
    local pair = r .. '|' .. v
    redis.call('HINCRBY', totals, 'c|' .. pair, 1)
    redis.call('HINCRBY', day, 'c|' .. pair, 1)
    if value ~= 0 then
      redis.call('HINCRBYFLOAT', totals, 'v|' .. pair, ARGV[4])
      redis.call('HINCRBYFLOAT', day, 'v|' .. pair, ARGV[4])
    end
    if ARGV[6] ~= '' then
      redis.call('XADD', ARGV[6], 'MAXLEN', '~', ARGV[7], '*', 'type', 'conversion', 'slot', slot,
                 'rule', r, 'variant', v, 'ts', ARGV[2], 'epoch', epoch, 'event', ARGV[8],
                 'value', ARGV[4], 'visitor', KEYS[1])
    end
  else
    redis.call('HINCRBY', totals, reason, 1)
    redis.call('HINCRBY', day, reason, 1)
  end
  redis.call('EXPIRE', day, 34560000)
  out[#out + 1] = status
end
return out
