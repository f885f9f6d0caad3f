-- terminate: ARGV id. Ends a waiting member with MANAGER_REQUEST; marks an active one (its call must be killed).
local id = tonumber(ARGV[1])
local key = mkey(id)
local f = redis.call('HMGET', key, 's', 'w', 'a', 'n')
if f[4] == false then return cjson.encode({ r = 'not_found' }) end
if f[1] == 'e' then return cjson.encode({ r = 'ended' }) end
if f[1] == 'a' then
  redis.call('HSET', key, 'q', '1')
  local attempt, _, _, node = active_of(f[3])
  return cjson.encode({ r = 'kill', a = attempt, g = node })
end
unqueue(id, f[1], f[2])
cnt('waiting', -1)
finish(key, 'MANAGER_REQUEST', false)
flush()
return cjson.encode({ r = 'terminated' })
