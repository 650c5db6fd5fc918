-- Cachette's one script: generation-counter invalidation and lock release.
-- KEYS: version counter, namespace counter, namespace deletion counter, data key
--       (op 'u': the lock key alone; op 'i': the counter alone).
-- ARGV[1] is the operation:
--   'r' read:   {gen, del, 1, payload, pttl} when the key holds a value of the current
--               generation, else {gen, del, 0}
--   'e' exists: {gen, del, 1 or 0}
--   'w' write:  ARGV[2] the generation the value was made under ('' = any), ARGV[3] the payload,
--               ARGV[4] PX milliseconds ('' = no expiry) -> {gen, del, 1 stored or 0 not}
--   'd' delete: {gen, del (after counting this delete), 1 if a live value went, else 0}
--   'u' unlock: ARGV[2] the holder's token -> 1 released, 0 not the holder
--   'i' invalidate: counts the counter up -> 1
-- gen is "{version counter}.{namespace counter}|", the prefix of every value written under it.
local op = ARGV[1]
if op == 'u' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
-- A missing counter (never set, or evicted) starts from the clock in microseconds, never from
-- a value it may have had: values written under an earlier generation stay dead.
local function start(key)
  local t = redis.call('TIME')
  local v = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', key, v)
  return v
end
if op == 'i' then
  -- Invalidate: count the counter up (started afresh if missing).
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCR', KEYS[1])
  else
    start(KEYS[1])
  end
  return 1
end
local c = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
local g = (c[1] or start(KEYS[1])) .. '.' .. (c[2] or start(KEYS[2])) .. '|'
local d = c[3] or start(KEYS[3])
if op == 'w' then
  if ARGV[2] ~= '' and ARGV[2] ~= g then
    return {g, d, 0}
  end
  if ARGV[4] == '' then
    redis.call('SET', KEYS[4], g .. ARGV[3])
  else
    redis.call('SET', KEYS[4], g .. ARGV[3], 'PX', ARGV[4])
  end
  return {g, d, 1}
end
local v = redis.call('GET', KEYS[4])
local live = v and string.sub(v, 1, #g) == g
if op == 'd' then
  if v then
    redis.call('UNLINK', KEYS[4])
  end
  d = tostring(redis.call('INCR', KEYS[3]))
  return {g, d, live and 1 or 0}
end
if not live then
  return {g, d, 0}
end
if op == 'e' then
  return {g, d, 1}
end
return {g, d, 1, string.sub(v, #g + 1), redis.call('PTTL', KEYS[4])}
