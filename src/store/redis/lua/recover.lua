-- recover: ARGV now, policy json, tz json, max, lost class
-- Reply: one entry per recovered attempt: {attempt, member id, node, fate} (fate as apply returns it).
do local replay = memo_replay() if replay ~= nil then return replay end end
local now, pol, tzmap, max, class = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3]), tonumber(ARGV[4]),
    ARGV[5]
local missing = tz_missing(tzmap)
if missing then return missing end
local out, gone = {}, {}
local expired = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', now, 'LIMIT', 0, max)
for _, attempt in ipairs(expired) do
  local act = redis.call('HGET', K_ACT, attempt)
  if act == false then
    gone[#gone + 1] = attempt
  else
    local id, node = act_of(act)
    local m = load(id)
    if m == nil or not is_current(m.a, attempt) then
      gone[#gone + 1] = attempt
    else
      local fate = apply(id, m, 'LOST_ATTEMPT', class, '', '', '0', '', now, pol, tzmap, gone)
      out[#out + 1] = { attempt, id, node, fate }
    end
  end
end
end_batch(gone)
if #out > 0 then memo_keep(out) end
return out
