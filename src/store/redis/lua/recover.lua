-- recover: ARGV now, policy json, tz json, max, lost class
local now, pol, tzmap, max, class = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3]), tonumber(ARGV[4]),
    ARGV[5]
local missing = tz_missing(tzmap)
if missing then return cjson.encode({ need = missing }) end
local out, gone = {}, {}
local expired = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', now, 'LIMIT', 0, max)
for _, attempt in ipairs(expired) do
  local act = redis.call('HGET', K_ACT, attempt)
  if act == false then
    gone[#gone + 1] = attempt
  else
    local bar = string.find(act, '|', 1, true)
    local id = tonumber(string.sub(act, 1, bar - 1), 16)
    local node = string.sub(act, bar + 1)
    local key = mkey(id)
    if redis.call('HGET', key, 'a') ~= attempt then
      gone[#gone + 1] = attempt
    else
      cnt('lost', 1)
      local fate = apply(key, id, 'LOST_ATTEMPT', class, nil, nil, 0, now, pol, tzmap, gone)
      out[#out + 1] = { attempt, id, node, fate }
    end
  end
end
drop_leases(gone)
flush()
return cjson.encode({ v = out })
