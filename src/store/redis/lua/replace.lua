-- Replaces a member's data (update / upsert); number state survives when the numbers are unchanged.
-- Returns 'done', 'in_call' or 'not_found'.
local function replace(id, nm, v, c, p, z, x, u, e, now)
  local m = load(id)
  if m == nil then return 'not_found' end
  if m.s == 'a' then return 'in_call' end
  redis.call('SADD', K_TZS, z)
  local queued = m.s == 'r' or m.s == 'w'
  if queued then unqueue(id, m.s, m.w) end
  local old_e = ext_of(m)
  if old_e ~= e then
    if old_e ~= '' then redis.call('HDEL', K_EXT, old_e) end
    if e ~= '' then redis.call('HSET', K_EXT, e, idt(id)) end
  end
  local oc, nc = cjson.decode(m.c), cjson.decode(c)
  local same = #oc == #nc
  if same then
    for i = 1, #oc do
      if oc[i][1] ~= nc[i][1] then same = false end
    end
  end
  if same then
    local old, new = unpack_nums(m.u), unpack_nums(u)
    for i = 1, #old do old[i].prio = new[i].prio end
    u = pack_nums(old)
  else
    m.r = ''
  end
  if p == '0' then p = '' end
  m.n, m.c, m.u, m.h, m.v, m.p, m.z, m.x = nm, c, u, '', v, p, z, x
  if e == '' then m.e = '' else m.e = cjson.encode(e) end
  if queued then schedule(m, id, tonumber(m.w), now, stored_order()) end
  save(id, m)
  return 'done'
end
