-- release: ARGV now, member id, attempt, not_before_ms|-1
local now, id, attempt, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local key = mkey(id)
local f = redis.call('HMGET', key, 'a', 'k', 'b', 'u', 'w', 'q', 'p', 't')
if f[1] ~= attempt then return cjson.encode({ r = 'not_current' }) end
local nums = unpack_nums(f[4])
local k = tonumber(f[2])
nums[k + 1].st = 'i'
local n = num(f[3], 0) - 1
local due = tonumber(f[5])
if nb >= 0 then due = math.max(nb, due) end
redis.call('HDEL', key, 'a', 'g', 'k', 'm')
redis.call('HSET', key, 'u', pack_nums(nums), 'b', fint(n))
drop_leases({ attempt })
cnt('active', -1)
if f[6] == '1' then
  finish(key, 'MANAGER_REQUEST', false)
else
  cnt('waiting', 1)
  schedule(key, id, due, now, stored_order(), num(f[7], 0), num(f[8], 0), n)
end
flush()
return cjson.encode({ r = 'released' })
