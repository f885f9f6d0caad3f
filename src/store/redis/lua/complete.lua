-- complete: writes the outcomes of attempts that the Rust side decided (store/outcome.rs, via redis/completion.rs),
-- all or nothing, once it checked that each member is still in that attempt.
-- ARGV: now, member order assumed, counter deltas (JSON object), n results, r ready entries, w wait entries, the
-- attempts' `act` entries as the decision read them (`hid|node[|q]`) joined by newlines, `expired_by` ('' = no
-- check; else each attempt's lease must have expired by then: a recovery must not take a call just renewed),
-- d attempts to drop; then the sections, each in the results' order: n attempt ids; n (member key, new record);
-- r (score, entry) for the ready order; w (due, entry) for the wait set; n (log field `hid.attempt no`, log line);
-- d attempt ids whose lease and `act` entry go (leases whose member moved on: nothing to decide).
-- The check: each attempt's `act` entry is still the one the decision read. Every script that changes an active
-- member's record drops that entry (completion, release) or changes it (a terminate marks it, a take-over names
-- another node), so the record is still the one the decision was made from. The ready order must be ranked by the
-- assumed order. Otherwise nothing is written and the reply is 'conflict' (the caller reads again and decides
-- again), unless the call is a resend of one that ran (then 'ok' again). Reply: 'ok'.
-- Why sections: each goes to its Redis command as it came (`unpack` over a range of ARGV), so no Lua code runs per
-- result beyond one check; Redis's Lua is slow next to its commands, and it hashes every string it makes.
if stored_order() ~= ARGV[2] then return 'conflict' end
local n, r, w, d = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[9])
local expired_by = ARGV[8]
local a0 = 10
local s0 = a0 + n
local r0 = s0 + 2 * n
local w0 = r0 + 2 * r
local l0 = w0 + 2 * w
local d0 = l0 + 2 * n
if n + d < 1 or d0 + d - 1 ~= #ARGV then error('complete: ' .. #ARGV .. ' arguments for ' .. n .. ' results') end
if n > 0 then
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
  if expired_by ~= '' then
    local limit = tonumber(expired_by)
    for j = 1, n do
      local exp = redis.call('ZSCORE', K_LEASE, ARGV[a0 + j - 1])
      if exp == false or tonumber(exp) > limit then return 'conflict' end
    end
  end
  redis.call('MSET', unpack(ARGV, s0, r0 - 1))
  if r > 0 then redis.call('ZADD', K_READY, unpack(ARGV, r0, w0 - 1)) end
  if w > 0 then redis.call('ZADD', K_WAIT, unpack(ARGV, w0, l0 - 1)) end
  redis.call('HSET', K_LOG, unpack(ARGV, l0, d0 - 1))
  drop_leases(unpack(ARGV, a0, s0 - 1))
  for k, v in pairs(cjson.decode(ARGV[3])) do cnt(k, v) end
  flush_cnt()
end
-- (Dropping a lease whose attempt is over is the same whether it happens once or twice.)
if d > 0 then drop_leases(unpack(ARGV, d0, #ARGV)) end
return 'ok'
