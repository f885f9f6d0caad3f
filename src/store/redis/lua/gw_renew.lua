#!lua
-- gateway slot renew: KEYS[1] slot zset; ARGV now, until, attempts...; returns the attempts not renewed
local now = tonumber(ARGV[1])
local lost = {}
for i = 3, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s ~= false and tonumber(s) > now then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
