-- terminate: ARGV id. Ends a waiting member with MANAGER_REQUEST; marks an active one (its call must be killed).
do local replay = memo_replay() if replay ~= nil then return replay end end
local id = tonumber(ARGV[1])
local m = load(id)
if m == nil then return cjson.encode({ r = 'not_found' }) end
if m.s == 'e' then return cjson.encode({ r = 'ended' }) end
if m.s == 'a' then
  m.q = '1'
  save(id, m)
  local attempt, _, _, node = active_of(m.a)
  -- Marks the attempt's `act` entry too: the completion checks it (see complete.lua).
  redis.call('HSET', K_ACT, attempt, idt(id) .. '|' .. node .. '|q')
  return memo_keep(cjson.encode({ r = 'kill', a = attempt, g = node }))
end
unqueue(id, m.s, m.w)
cnt('waiting', -1)
if called_before(m.b) then cnt('in_retry', -1) end
finish(m, 'MANAGER_REQUEST', false)
save(id, m)
flush()
return memo_keep(cjson.encode({ r = 'terminated' }))
