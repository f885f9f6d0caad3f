-- terminate: ARGV id. Ends a waiting member with MANAGER_REQUEST; marks an active one (its call must be killed).
local id = tonumber(ARGV[1])
local m = load(id)
if m == nil then return cjson.encode({ r = 'not_found' }) end
if m.s == 'e' then return cjson.encode({ r = 'ended' }) end
if m.s == 'a' then
  m.q = '1'
  save(id, m)
  local attempt, _, _, node = active_of(m.a)
  -- Marks the attempt's `act` entry too: the completion fast path checks it (see complete_fast.lua).
  redis.call('HSET', K_ACT, attempt, idt(id) .. '|' .. node .. '|q')
  return cjson.encode({ r = 'kill', a = attempt, g = node })
end
unqueue(id, m.s, m.w)
cnt('waiting', -1)
finish(m, 'MANAGER_REQUEST', false)
save(id, m)
flush()
return cjson.encode({ r = 'terminated' })
