-- delete: ARGV id. Refused while the member is in a call.
local id = tonumber(ARGV[1])
local key = mkey(id)
local f = redis.call('HMGET', key, 's', 'w', 'y', 'e', 'n')
if f[5] == false then return cjson.encode({ r = 'not_found' }) end
if f[1] == 'a' then return cjson.encode({ r = 'in_call' }) end
if f[1] == 'e' then
  cnt('ended', -1)
  cnt('end:' .. str(f[3]), -1)
else
  unqueue(id, f[1], f[2])
  cnt('waiting', -1)
end
if f[4] ~= false then redis.call('HDEL', K_EXT, f[4]) end
redis.call('DEL', key, lkey(id))
flush()
return cjson.encode({ r = 'done' })
