-- reset: ARGV now, after, span. Revives ended, unsuccessful members with ids in (after, after+span].
do local replay = memo_replay() if replay ~= nil then return replay end end
local now, after, span = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local seq = num(redis.call('GET', K_SEQ), 0)
local hi = math.min(after + span, seq)
local order = stored_order()
local revived = 0
for id = after + 1, hi do
  local m = load(id)
  if m ~= nil and m.s == 'e' and m.o ~= '1' then
    local nums = unpack_nums(m.u)
    for _, n in ipairs(nums) do
      n.st = 'i'
      n.att = 0
    end
    cnt('ended', -1)
    cnt('end:' .. m.y, -1)
    cnt('waiting', 1)
    if called_before(m.b) then cnt('in_retry', 1) end
    m.y, m.t, m.q, m.u, m.h = '', '', '', pack_nums(nums), ''
    schedule(m, id, now, now, order)
    save(id, m)
    revived = revived + 1
  end
end
flush()
local next = -1
if hi < seq then next = hi end
return memo_keep(cjson.encode({ n = revived, next = next }))
