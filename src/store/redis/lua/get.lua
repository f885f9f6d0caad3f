-- get: ARGV id, with_log (0|1). The member's fields (see VIEW_FIELDS in redis/reply.rs) and optionally its log.
local id = tonumber(ARGV[1])
local m = load(id)
if m == nil then return cjson.encode({ missing = 1 }) end
local h = false
if ARGV[2] == '1' then h = log_of(id, m.b) end
return cjson.encode({ v = { id, view(m) }, h = h })
