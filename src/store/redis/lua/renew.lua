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
    local id, owner = act_of(act)
    local exp = redis.call('ZSCORE', K_LEASE, attempt)
    -- A lease that expired but was not recovered yet is still this node's: renew it (recovery and renewal are
    -- atomic, so whichever runs first wins).
    if owner == node and exp ~= false then
      local m = load(id)
      if m ~= nil and active_of(m.a) == attempt and m.q == '1' then
        apply(id, m, 'MANAGER_REQUEST', 'minus', '', NOW, '0', '', now, {}, {}, gone)
      else
        redis.call('ZADD', K_LEASE, fint(now + lease), attempt)
        ok = true
      end
    end
  end
  if not ok then lost[#lost + 1] = attempt end
end
end_batch(gone)
return cjson.encode({ v = lost })
