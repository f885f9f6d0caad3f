-- release: ARGV now, member id, attempt, not_before_ms|-1
do local replay = memo_replay() if replay ~= nil then return replay end end
local now, id, attempt, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local m = load(id)
if m == nil or not is_current(m.a, attempt) then return cjson.encode({ r = 'not_current' }) end
local n = num(m.b, 0) - 1
local due = tonumber(m.w)
if nb >= 0 then due = math.max(nb, due) end
m.a, m.b = '', fint(n)
drop_leases(attempt)
cnt('active', -1)
if m.q == '1' then
  finish(m, 'MANAGER_REQUEST', false)
else
  cnt('waiting', 1)
  if n > 0 then cnt('in_retry', 1) end
  schedule(m, id, due, now, stored_order())
end
save(id, m)
flush()
return memo_keep(cjson.encode({ r = 'released' }))
