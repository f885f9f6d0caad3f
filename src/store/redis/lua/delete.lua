-- delete: ARGV id. Refused while the member is in a call.
do local replay = memo_replay() if replay ~= nil then return replay end end
local id = tonumber(ARGV[1])
local m = load(id)
if m == nil then return cjson.encode({ r = 'not_found' }) end
if m.s == 'a' then return cjson.encode({ r = 'in_call' }) end
if m.s == 'e' then
  cnt('ended', -1)
  cnt('end:' .. m.y, -1)
else
  unqueue(id, m.s, m.w)
  cnt('waiting', -1)
  if called_before(m.b) then cnt('in_retry', -1) end
end
local e = ext_of(m)
if e ~= '' then redis.call('HDEL', K_EXT, e) end
drop_log(id, m.b)
redis.call('DEL', mkey(id))
flush()
return memo_keep(cjson.encode({ r = 'done' }))
