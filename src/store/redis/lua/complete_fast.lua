-- complete_fast: writes outcomes the Rust side already decided (see redis/fast.rs), all or nothing.
-- ARGV now, member order assumed, counter deltas (JSON object), then per result 9 values:
--   hid, attempt, the attempt's `act` entry as the claim wrote it (`hid|node`), the member's new record, queue
--   ('r' ready, 'w' wait, '' none), queue score, queue entry, log field (`hid.attempt no`), log line.
-- Each attempt must still have the `act` entry its claim wrote: every script that changes an active member's record
-- drops the entry (completion, recovery, release) or changes it (a terminate marks it), so the record is still the
-- one the claim wrote and the decision made from it stands. The ready order must be ranked by the assumed order.
-- Otherwise nothing is written and the reply is 'conflict' (the caller falls back to `complete`, which decides in
-- Lua). Reply: 'ok'.
local W = 9
if stored_order() ~= ARGV[2] then return 'conflict' end
local attempts = {}
for i = 5, #ARGV, W do attempts[#attempts + 1] = ARGV[i] end
local cur = redis.call('HMGET', K_ACT, unpack(attempts))
for j = 1, #attempts do
  if cur[j] ~= ARGV[W * j - 3] then return 'conflict' end
end
local sets, logs = {}, {}
for j = 1, #attempts do
  local i = W * j - 5
  sets[#sets + 1] = P .. 'm:' .. ARGV[i]
  sets[#sets + 1] = ARGV[i + 3]
  local z = ARGV[i + 4]
  if z == 'r' then
    READY_ADD[#READY_ADD + 1] = ARGV[i + 5]
    READY_ADD[#READY_ADD + 1] = ARGV[i + 6]
  elseif z == 'w' then
    WAIT_ADD[#WAIT_ADD + 1] = ARGV[i + 5]
    WAIT_ADD[#WAIT_ADD + 1] = ARGV[i + 6]
  end
  logs[#logs + 1] = ARGV[i + 7]
  logs[#logs + 1] = ARGV[i + 8]
end
redis.call('MSET', unpack(sets))
redis.call('HSET', K_LOG, unpack(logs))
for k, v in pairs(cjson.decode(ARGV[3])) do cnt(k, v) end
end_batch(attempts)
return 'ok'
