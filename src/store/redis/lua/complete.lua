-- complete: ARGV now, policy json, tz json, then per result 7 values:
-- attempt, member id, cause, class, answered_ms|-1, hangup_ms|-1, talk. Results are applied in order.
local now, pol, tzmap = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local missing = tz_missing(tzmap)
if missing then return cjson.encode({ need = missing }) end
local out, gone = {}, {}
for i = 4, #ARGV, 7 do
  local attempt, id, cause, class = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local key = mkey(id)
  local f = redis.call('HMGET', key, 'a', 'n')
  if f[2] == false then
    out[#out + 1] = { r = 'not_current' }
  elseif f[1] ~= attempt then
    local log = redis.call('GET', lkey(id))
    if log ~= false and string.find(log, attempt, 1, true) then
      out[#out + 1] = { r = 'duplicate' }
    else
      out[#out + 1] = { r = 'not_current' }
    end
  else
    local fate = apply(key, id, cause, class, some(tonumber(ARGV[i + 4])), some(tonumber(ARGV[i + 5])),
      tonumber(ARGV[i + 6]), now, pol, tzmap, gone)
    out[#out + 1] = { r = 'applied', f = fate }
  end
end
drop_leases(gone)
flush()
return cjson.encode({ v = out })
