-- renew: ARGV now, lease_ms, node, attempt ids... Extends this node's leases. Reply {v = lost, t = terminated}:
-- `lost`, the ids no longer this node's (completed, recovered); `terminated`, {attempt, member id} of the attempts
-- whose member was terminated through the API while in the call (not renewed: the caller completes them with
-- MANAGER_REQUEST, so the member ends, and drops their calls).
local now, lease, node = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local lost, terminated = {}, {}
for i = 4, #ARGV do
  local attempt = ARGV[i]
  local act = redis.call('HGET', K_ACT, attempt)
  local ok = false
  if act ~= false then
    local id, owner = act_of(act)
    local exp = redis.call('ZSCORE', K_LEASE, attempt)
    -- A lease that expired but was not recovered yet is still this node's: renew it (recovery writes only leases
    -- still expired, so whichever comes first wins).
    if owner == node and exp ~= false then
      local m = load(id)
      if m ~= nil and active_of(m.a) == attempt and m.q == '1' then
        terminated[#terminated + 1] = { attempt, id }
        ok = true
      else
        redis.call('ZADD', K_LEASE, fint(now + lease), attempt)
        ok = true
      end
    end
  end
  if not ok then lost[#lost + 1] = attempt end
end
return cjson.encode({ v = lost, t = terminated })
