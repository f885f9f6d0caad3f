-- complete_fast: applies outcomes the Rust side already decided (see redis/fast.rs), all or nothing.
-- ARGV now, member order assumed, counter deltas (JSON object), then per result 12 values:
--   hid, attempt, expected `a`, u, r, t ('' = leave), s (r|w|e), due ms (r|w) or end cause (e),
--   ready score (r) or success '1'|'' (e) or '' (w), ready token (r) or '', log line, number hint `h`.
-- Each member must still be in the attempt the decision was made for (its `a` field unchanged since the claim,
-- so nothing else about it changed: update, delete and upsert are refused while in a call) with no terminate
-- pending, and the ready order must be ranked by the assumed order. Otherwise nothing is written and the reply
-- is 'conflict' (the caller falls back to `complete`, which decides in Lua). Reply: 'ok'.
local W = 12
if stored_order() ~= ARGV[2] then return 'conflict' end
for i = 4, #ARGV, W do
  local f = redis.call('HMGET', P .. 'm:' .. ARGV[i], 'a', 'q')
  if f[1] ~= ARGV[i + 2] or f[2] == '1' then return 'conflict' end
end
local gone = {}
for i = 4, #ARGV, W do
  local hid, s = ARGV[i], ARGV[i + 6]
  local key = P .. 'm:' .. hid
  local sets = { 'u', ARGV[i + 3], 'r', ARGV[i + 4], 'a', '', 's', s, 'h', ARGV[i + 11] }
  if ARGV[i + 5] ~= '' then sets[#sets + 1] = 't'; sets[#sets + 1] = ARGV[i + 5] end
  if s == 'e' then
    sets[#sets + 1] = 'y'; sets[#sets + 1] = ARGV[i + 7]
    if ARGV[i + 8] == '1' then sets[#sets + 1] = 'o'; sets[#sets + 1] = '1' end
  else
    sets[#sets + 1] = 'w'; sets[#sets + 1] = ARGV[i + 7]
    if s == 'r' then
      READY_ADD[#READY_ADD + 1] = ARGV[i + 8]
      READY_ADD[#READY_ADD + 1] = ARGV[i + 9]
    else
      WAIT_ADD[#WAIT_ADD + 1] = ARGV[i + 7]
      WAIT_ADD[#WAIT_ADD + 1] = hid
    end
  end
  redis.call('HSET', key, unpack(sets))
  redis.call('APPEND', P .. 'l:' .. hid, ARGV[i + 10])
  gone[#gone + 1] = ARGV[i + 1]
end
for k, v in pairs(cjson.decode(ARGV[3])) do cnt(k, v) end
end_batch(gone)
return 'ok'
