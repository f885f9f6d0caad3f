-- complete: ARGV now, policy json, tz json, then per result 8 values:
-- attempt, member id, cause, class, answered_ms|'', hangup_ms|'', talk, note ('' = none; escaped: no '|' or newline).
-- Results are applied in order.
-- Reply: one entry per result: {'d', due} / {'e', cause, success} applied, {'dup'} duplicate, {'nc'} not current.
do local replay = memo_replay() if replay ~= nil then return replay end end
local now, pol, tzmap = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local missing = tz_missing(tzmap)
if missing then return missing end
local out, gone = {}, {}
for i = 4, #ARGV, 8 do
  local attempt, id, cause, class = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local m = load(id)
  if m == nil or not is_current(m.a, attempt) then
    local log = ''
    if m ~= nil then log = log_of(id, m.b) end
    if string.find(log, attempt .. '|', 1, true) then
      out[#out + 1] = { 'dup' }
    else
      out[#out + 1] = { 'nc' }
    end
  else
    out[#out + 1] = apply(id, m, cause, class, ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], now, pol, tzmap, gone)
  end
end
end_batch(gone)
return memo_keep(out)
