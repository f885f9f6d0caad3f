-- get: ARGV id, with_log (0|1). The member's fields (see VIEW_FIELDS in redis/reply.rs) and optionally its log.
local id = tonumber(ARGV[1])
local key = mkey(id)
local f = redis.call('HMGET', key, 'n', 'v', 'c', 'p', 'z', 'x', 'e', 's', 'w', 't', 'b', 'u', 'a', 'q', 'y', 'o')
if f[1] == false then return cjson.encode({ missing = 1 }) end
local h = false
if ARGV[2] == '1' then h = redis.call('GET', lkey(id)) end
return cjson.encode({ v = { id, f }, h = h })
