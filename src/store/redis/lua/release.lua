-- release: ARGV now, member id, attempt, not_before_ms|-1
local now, id, attempt, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local key = mkey(id)
local f = redis.call('HMGET', key, 'a', 'b', 'u', 'w', 'q', 'p', 't')
if not is_current(f[1], attempt) then return cjson.encode({ r = 'not_current' }) end
local n = num(f[2], 0) - 1
local due = tonumber(f[4])
if nb >= 0 then due = math.max(nb, due) end
redis.call('HSET', key, 'a', '', 'b', fint(n))
drop_leases({ attempt })
cnt('active', -1)
if f[5] == '1' then
  finish(key, 'MANAGER_REQUEST', false)
else
  cnt('waiting', 1)
  schedule(key, id, due, now, stored_order(), num(f[6], 0), num(f[7], 0), n)
end
flush()
return cjson.encode({ r = 'released' })
