-- update: ARGV now, id, n, v, c, p, z, x, u, e
local now, id = tonumber(ARGV[1]), tonumber(ARGV[2])
local e = ARGV[10]
if e ~= '' then
  local owner = redis.call('HGET', K_EXT, e)
  if owner ~= false and tonumber(owner, 16) ~= id then
    return cjson.encode({ taken = tonumber(owner, 16) })
  end
end
local r = replace(id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], e, now)
flush()
return cjson.encode({ r = r })
