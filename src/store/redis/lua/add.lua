-- add: ARGV now, then per member 6 values: d, p, z, x, u, e ('' = absent). Returns one code per member:
-- {'a', id} added, {'u', id} updated (same external id), {'c', id} refused, in a call.
local now = tonumber(ARGV[1])
local order = stored_order()
local out = {}
local added = 0
local tzs = {}
local nowstr = ARGV[1]
for i = 2, #ARGV, 6 do
  local d, p, z, x, u, e = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local existing = false
  if e ~= '' then existing = redis.call('HGET', K_EXT, e) end
  if existing then
    local id = tonumber(existing, 16)
    local r = replace(id, d, p, z, x, u, e, now)
    if r == 'in_call' then out[#out + 1] = { 'c', id } else out[#out + 1] = { 'u', id } end
  else
    if not tzs[z] then
      tzs[z] = true
      redis.call('SADD', K_TZS, z)
    end
    local id = redis.call('INCR', K_SEQ)
    local key = mkey(id)
    local args = { 'HSET', key, 'd', d, 'u', u, 's', 'r', 'w', nowstr }
    if p ~= '0' then args[#args + 1] = 'p'; args[#args + 1] = p end
    if z ~= '' then args[#args + 1] = 'z'; args[#args + 1] = z end
    if x ~= '' then args[#args + 1] = 'x'; args[#args + 1] = x end
    if e ~= '' then
      args[#args + 1] = 'e'; args[#args + 1] = e
      redis.call('HSET', K_EXT, e, idt(id))
    end
    redis.call(unpack(args))
    redis.call('ZADD', K_READY, fint(primary(order, tonumber(p), 0, 0)), tok(now, id))
    added = added + 1
    out[#out + 1] = { 'a', id }
  end
end
if added > 0 then cnt('waiting', added) end
return cjson.encode({ v = out })
