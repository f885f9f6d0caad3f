-- reset: ARGV now, after, span. Revives ended, unsuccessful members with ids in (after, after+span].
local now, after, span = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local seq = num(redis.call('GET', K_SEQ), 0)
local hi = math.min(after + span, seq)
local order = stored_order()
local revived = 0
for id = after + 1, hi do
  local key = mkey(id)
  local f = redis.call('HMGET', key, 's', 'o', 'y', 'u', 'p', 'b')
  if f[1] == 'e' and f[2] ~= '1' then
    local nums = unpack_nums(f[4])
    for _, n in ipairs(nums) do
      n.st = 'i'
      n.att = 0
    end
    redis.call('HDEL', key, 'y', 't', 'q')
    redis.call('HSET', key, 'u', pack_nums(nums), 'h', '')
    cnt('ended', -1)
    cnt('end:' .. str(f[3]), -1)
    cnt('waiting', 1)
    schedule(key, id, now, now, order, num(f[5], 0), 0, num(f[6], 0))
    revived = revived + 1
  end
end
flush()
local next = -1
if hi < seq then next = hi end
return cjson.encode({ n = revived, next = next })
