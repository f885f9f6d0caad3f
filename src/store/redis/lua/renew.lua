-- renew: ARGV now, lease_ms, node, attempt ids... ; returns the ids that were not renewed (lost)
local now, lease, node = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local lost = {}
for i = 4, #ARGV do
  local attempt = ARGV[i]
  local act = redis.call('HGET', K_ACT, attempt)
  local ok = false
  if act ~= false then
    local bar = string.find(act, '|', 1, true)
    local exp = redis.call('ZSCORE', K_LEASE, attempt)
    if string.sub(act, bar + 1) == node and exp ~= false and tonumber(exp) > now then
      redis.call('ZADD', K_LEASE, fint(now + lease), attempt)
      ok = true
    end
  end
  if not ok then lost[#lost + 1] = attempt end
end
return cjson.encode({ v = lost })
