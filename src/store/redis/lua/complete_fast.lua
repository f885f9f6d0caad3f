-- complete_fast: writes outcomes the Rust side already decided (see redis/fast.rs), all or nothing.
-- ARGV: now, member order assumed, counter deltas (JSON object), n results, r ready entries, w wait entries, the
-- attempts' `act` entries as their claims wrote them (`hid|node`) joined by newlines; then the sections, each in
-- the results' order: n attempt ids; n (member key, new record); r (score, entry) for the ready order; w (due,
-- entry) for the wait set; n (log field `hid.attempt no`, log line).
-- Each attempt must still have the `act` entry its claim wrote: every script that changes an active member's record
-- drops the entry (completion, recovery, release) or changes it (a terminate marks it), so the record is still the
-- one the claim wrote and the decision made from it stands. The ready order must be ranked by the assumed order.
-- Otherwise nothing is written and the reply is 'conflict' (the caller falls back to `complete`, which decides in
-- Lua), unless the call is a resend of one that ran (then 'ok' again). Reply: 'ok'.
-- Why sections: each goes to its Redis command as it came (`unpack` over a range of ARGV), so no Lua code runs per
-- result beyond one check; Redis's Lua is slow next to its commands, and it hashes every string it makes.
if stored_order() ~= ARGV[2] then return 'conflict' end
local n, r, w = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a0 = 8
local s0 = a0 + n
local r0 = s0 + 2 * n
local w0 = r0 + 2 * r
local l0 = w0 + 2 * w
if n < 1 or l0 + 2 * n - 1 ~= #ARGV then error('complete_fast: ' .. #ARGV .. ' arguments for ' .. n .. ' results') end
local cur = redis.call('HMGET', K_ACT, unpack(ARGV, a0, s0 - 1))
-- A resend of this call after it ran (the reply was lost with the connection) finds every attempt gone and every
-- log line it wrote in place: it answers 'ok' again, as the run did.
local function already_written()
  local fields = {}
  for j = 1, n do
    if cur[j] ~= false then return false end
    fields[j] = ARGV[l0 + 2 * (j - 1)]
  end
  local lines = redis.call('HMGET', K_LOG, unpack(fields))
  for j = 1, n do
    if lines[j] ~= ARGV[l0 + 2 * j - 1] then return false end
  end
  return true
end
for j = 1, n do
  if cur[j] == false then
    if already_written() then return 'ok' end
    return 'conflict'
  end
end
if table.concat(cur, '\n') ~= ARGV[7] then return 'conflict' end
redis.call('MSET', unpack(ARGV, s0, r0 - 1))
if r > 0 then redis.call('ZADD', K_READY, unpack(ARGV, r0, w0 - 1)) end
if w > 0 then redis.call('ZADD', K_WAIT, unpack(ARGV, w0, l0 - 1)) end
redis.call('HSET', K_LOG, unpack(ARGV, l0, #ARGV))
drop_leases(unpack(ARGV, a0, s0 - 1))
for k, v in pairs(cjson.decode(ARGV[3])) do cnt(k, v) end
flush_cnt()
return 'ok'
