-- get: ARGV id, with_log (0|1). The member's fields (see VIEW_FIELDS in redis/mod.rs) and optionally its log.
local id = tonumber(ARGV[1])
local key = mkey(id)
local f = redis.call('HMGET', key, 'd', 'p', 'z', 'x', 'e', 's', 'w', 't', 'n', 'u', 'a', 'q', 'c', 'o')
if f[1] == false then return cjson.encode({ missing = 1 }) end
local h = false
if ARGV[2] == '1' then h = redis.call('HGET', key, 'h') end
return cjson.encode({ v = { id, f }, h = h })
