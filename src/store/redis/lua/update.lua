-- update: ARGV now, id, d, p, z, x, u, e
local now, id = tonumber(ARGV[1]), tonumber(ARGV[2])
local e = ARGV[8]
if e ~= '' then
  local owner = redis.call('HGET', K_EXT, e)
  if owner ~= false and tonumber(owner, 16) ~= id then
    return cjson.encode({ taken = tonumber(owner, 16) })
  end
end
return cjson.encode({ r = replace(id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], e, now) })
