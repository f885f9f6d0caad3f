-- recover: ARGV now, policy json, tz json, max, lost class
local now, pol, tzmap, max, class = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3]), tonumber(ARGV[4]),
    ARGV[5]
local missing = tz_missing(tzmap)
if missing then return cjson.encode({ need = missing }) end
local out = {}
local expired = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', now, 'LIMIT', 0, max)
for _, attempt in ipairs(expired) do
  local act = redis.call('HGET', K_ACT, attempt)
  if act == false then
    redis.call('ZREM', K_LEASE, attempt)
  else
    local bar = string.find(act, '|', 1, true)
    local id = tonumber(string.sub(act, 1, bar - 1), 16)
    local node = string.sub(act, bar + 1)
    local key = mkey(id)
    if redis.call('HGET', key, 'a') ~= attempt then
      redis.call('ZREM', K_LEASE, attempt)
      redis.call('HDEL', K_ACT, attempt)
    else
      cnt('lost', 1)
      local fate = apply(key, id, 'LOST_ATTEMPT', class, nil, nil, 0, now, pol, tzmap)
      out[#out + 1] = { attempt, id, node, fate }
    end
  end
end
return cjson.encode({ v = out })
