-- peek: what deciding attempts' results needs, read at once (redis/completion.rs decides, complete.lua writes with
-- a check, so this read needs no lock). ARGV: now ('' = the attempts given), max, then (attempt, member id) pairs;
-- with `now`, the attempts are instead the campaign's leases expired by then, oldest first, at most `max`, each
-- with the member its `act` entry names.
-- Reply: {order, {attempt, act, record, current, log}...}: the member order the ready order is ranked by; per
-- attempt its `act` entry (false = none), its member's record (false = none), 1 when the member is in that attempt
-- (else 0), and, when it is not, the member's attempt log (to tell a duplicate from an unknown attempt).
local pairs_in = {}
if ARGV[1] ~= '' then
  for _, attempt in ipairs(redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
    pairs_in[#pairs_in + 1] = { attempt, nil }
  end
else
  for i = 3, #ARGV, 2 do pairs_in[#pairs_in + 1] = { ARGV[i], tonumber(ARGV[i + 1]) } end
end
local out = { stored_order() }
for _, p in ipairs(pairs_in) do
  local attempt, id = p[1], p[2]
  local act = redis.call('HGET', K_ACT, attempt)
  if id == nil and act ~= false then id = act_of(act) end
  local rec, current, log = false, 0, ''
  if id ~= nil then
    rec = redis.call('GET', mkey(id))
    if rec ~= false then
      local m = parse_rec(id, rec)
      if is_current(m.a, attempt) then current = 1 else log = log_of(id, m.b) end
    end
  end
  out[#out + 1] = { attempt, act, rec, current, log }
end
return out
