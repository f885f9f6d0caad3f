-- complete: ARGV now, policy json, tz json, attempt, member id, cause, class, answered_ms|-1, hangup_ms|-1, talk
local now, pol, tzmap = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local attempt, id, cause, class = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local missing = tz_missing(tzmap)
if missing then return cjson.encode({ need = missing }) end
local key = mkey(id)
local f = redis.call('HMGET', key, 'a', 'h', 'd')
if f[3] == false then return cjson.encode({ r = 'not_current' }) end
if f[1] ~= attempt then
  if f[2] ~= false and string.find(f[2], attempt, 1, true) then return cjson.encode({ r = 'duplicate' }) end
  return cjson.encode({ r = 'not_current' })
end
local fate = apply(key, id, cause, class, some(tonumber(ARGV[8])), some(tonumber(ARGV[9])), tonumber(ARGV[10]), now,
  pol, tzmap)
return cjson.encode({ r = 'applied', f = fate })
