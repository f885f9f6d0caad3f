#!lua
-- gateway slot acquire: KEYS[1] slot zset; ARGV now, limit, attempt, until
local now, limit, attempt, untl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], attempt) ~= false then
  redis.call('ZADD', KEYS[1], untl, attempt)
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], untl, attempt)
return 1
