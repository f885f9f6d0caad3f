-- renew: ARGV now, lease_ms, node, attempt ids... ; returns the ids whose calls must be dropped: those no longer
-- this node's (completed, recovered), and those whose member was terminated through the API while in the call
-- (completed here with MANAGER_REQUEST, class minus: the member ends with MANAGER_REQUEST).
local now, lease, node = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local lost, gone = {}, {}
for i = 4, #ARGV do
  local attempt = ARGV[i]
  local act = redis.call('HGET', K_ACT, attempt)
  local ok = false
  if act ~= false then
    local bar = string.find(act, '|', 1, true)
    local exp = redis.call('ZSCORE', K_LEASE, attempt)
    -- A lease that expired but was not recovered yet is still this node's: renew it (recovery and renewal are
    -- atomic, so whichever runs first wins).
    if string.sub(act, bar + 1) == node and exp ~= false then
      local id = tonumber(string.sub(act, 1, bar - 1), 16)
      local key = mkey(id)
      local f = redis.call('HMGET', key, 'a', 'u', 't', 'b', 'x', 'q', 'z', 'p')
      local cur = active_of(f[1])
      if cur == attempt and f[6] == '1' then
        apply(key, id, f, 'MANAGER_REQUEST', 'minus', '', NOW, '0', '', now, {}, {}, gone)
      else
        redis.call('ZADD', K_LEASE, fint(now + lease), attempt)
        ok = true
      end
    end
  end
  if not ok then lost[#lost + 1] = attempt end
end
drop_leases(gone)
flush()
return cjson.encode({ v = lost })
