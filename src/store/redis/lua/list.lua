-- list: ARGV after, span, limit, state filter ('' | waiting | active | ended), end cause filter ('' = any), name
-- filter ('' = any; else ASCII-lowercased: members whose name, ASCII-lowercased, contains it; ListQuery::name_matches).
-- Returns members (their fields, see VIEW_FIELDS in redis/reply.rs), the last id examined and whether more remain.
local after, span, limit, state, cause = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local name = ARGV[6] or ''
local seq = num(redis.call('GET', K_SEQ), 0)
local hi = math.min(after + span, seq)
local out, last = {}, after
local states = { r = 'waiting', w = 'waiting', a = 'active', e = 'ended' }
for id = after + 1, hi do
  local m = load(id)
  if m ~= nil then
    if #out >= limit then return cjson.encode({ v = out, last = last, more = 1 }) end
    last = id
    if (state == '' or states[m.s] == state) and (cause == '' or m.y == cause)
      and (name == '' or string.find(string.lower(m.n), name, 1, true)) then
      out[#out + 1] = { id, view(m) }
    end
  end
end
local more = 0
if hi < seq then more = 1 end
return cjson.encode({ v = out, last = hi, more = more })
