-- Replaces a member's data (update / upsert); number state survives when the numbers are unchanged.
-- Returns 'done', 'in_call' or 'not_found'.
local function replace(id, nm, v, c, p, z, x, u, e, now)
  local key = mkey(id)
  local f = redis.call('HMGET', key, 's', 'w', 'c', 'e', 't', 'b', 'u')
  if f[3] == false then return 'not_found' end
  if f[1] == 'a' then return 'in_call' end
  redis.call('SADD', K_TZS, z)
  local queued = f[1] == 'r' or f[1] == 'w'
  if queued then unqueue(id, f[1], f[2]) end
  local old_e = str(f[4])
  if old_e ~= e then
    if old_e ~= '' then redis.call('HDEL', K_EXT, old_e) end
    if e ~= '' then redis.call('HSET', K_EXT, e, idt(id)) end
  end
  local oc, nc = cjson.decode(f[3]), cjson.decode(c)
  local same = #oc == #nc
  if same then
    for i = 1, #oc do
      if oc[i][1] ~= nc[i][1] then same = false end
    end
  end
  if same then
    local old, new = unpack_nums(f[7]), unpack_nums(u)
    for i = 1, #old do old[i].prio = new[i].prio end
    u = pack_nums(old)
  else
    redis.call('HDEL', key, 'r')
  end
  redis.call('HSET', key, 'n', nm, 'c', c, 'u', u, 'h', '')
  local fields = { v = v, p = p, z = z, x = x, e = e }
  for name, val in pairs(fields) do
    if val == '' or (name == 'p' and val == '0') then
      redis.call('HDEL', key, name)
    else
      redis.call('HSET', key, name, val)
    end
  end
  if queued then
    schedule(key, id, tonumber(f[2]), now, stored_order(), num(p, 0), num(f[5], 0), num(f[6], 0))
  end
  return 'done'
end
