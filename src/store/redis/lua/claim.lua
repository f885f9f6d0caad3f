-- claim: ARGV now, max_n, node, lease_ms, policy json, tz json, attempt ids...
-- Reply: { {claim...}, {ended...} }, each claim {attempt, id, attempt_no, k, name, vars, numbers, tz, priority,
-- number state, tries, expire} (the last three as stored: the completion fast path decides from them, see fast.rs).
local now, max_n, node, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local pol, tzmap = cjson.decode(ARGV[5]), cjson.decode(ARGV[6])
local missing = tz_missing(tzmap)
if missing then return missing end
local order = pol.o
-- Re-rank the ready order when the campaign's member order changed.
ORDER = redis.call('HGET', K_META, 'order')
if ORDER ~= order then
  redis.call('HSET', K_META, 'order', order)
  local all = redis.call('ZRANGE', K_READY, 0, -1)
  for _, t in ipairs(all) do
    local f = redis.call('HMGET', mkey(id_of_tok(t)), 'p', 't', 'b')
    redis.call('ZADD', K_READY, fint(primary(order, num(f[1], 0), num(f[2], 0), num(f[3], 0))), t)
  end
end
ORDER = order
-- Promote waiting members whose due passed.
local due = redis.call('ZRANGEBYSCORE', K_WAIT, '-inf', now, 'WITHSCORES', 'LIMIT', 0, PROMOTE_CAP)
if #due > 0 then
  local gone = {}
  for i = 1, #due, 2 do
    local id = tonumber(due[i], 16)
    gone[#gone + 1] = due[i]
    local key = mkey(id)
    local f = redis.call('HMGET', key, 'p', 't', 'b')
    schedule(key, id, tonumber(due[i + 1]), now, order, num(f[1], 0), num(f[2], 0), num(f[3], 0))
  end
  redis.call('ZREM', K_WAIT, unpack(gone))
end
local free = pol.l - redis.call('ZCOUNT', K_LEASE, '(' .. fint(now), '+inf')
local want = math.min(max_n, free, #ARGV - 6)
local claims, ended = {}, {}
local leases, acts = {}, {}
local examined = 0
local expiry = fint(now + lease)
local a_tail, act_tail = '|' .. fint(now) .. '|' .. node, '|' .. node
while #claims < want and examined < want + EXAMINE_EXTRA do
  local heads = redis.call('ZPOPMIN', K_READY, math.min(want - #claims, want + EXAMINE_EXTRA - examined))
  if #heads == 0 then break end
  for h = 1, #heads, 2 do
    examined = examined + 1
    local hid = string.sub(heads[h], 12)
    local id = tonumber(hid, 16)
    local key = P .. 'm:' .. hid
    local f = redis.call('HMGET', key, 'x', 'z', 'u', 'r', 'b', 'n', 'v', 'c', 'p', 't', 'h')
    local x = num(f[1], nil)
    if x ~= nil and x <= now then
      cnt('waiting', -1)
      finish(key, 'MEMBER_EXPIRED', false)
      ended[#ended + 1] = { id, 'MEMBER_EXPIRED' }
    else
      local point = point_of(tzmap, f[2])
      if point[1] ~= 1 then
        if point[2] < 0 then
          cnt('waiting', -1)
          finish(key, 'QUEUE_EXPIRE', false)
          ended[#ended + 1] = { id, 'QUEUE_EXPIRE' }
        else
          local at = math.max(point[2], now + 1)
          if x ~= nil and x <= at then
            -- It would only be callable after it expires.
            cnt('waiting', -1)
            finish(key, 'MEMBER_EXPIRED', false)
            ended[#ended + 1] = { id, 'MEMBER_EXPIRED' }
          else
            schedule(key, id, at, now, order, 0, 0, 0)
          end
        end
      else
        local last = num(f[4], 0)
        if last == 0 then last = nil else last = last - 1 end
        local k
        local hint = f[11]
        if hint and hint ~= '' then
          -- The choice made when the number state was last written (`kp,kt`: by_priority, top_down; empty =
          -- none left), see redis/fast.rs.
          local kp, kt = string.match(hint, '^(%d*),(%d*)$')
          if pol.no == 'by_priority' then k = tonumber(kp) else k = tonumber(kt) end
        elseif pol.no == 'by_priority' and not string.find(f[3], ',', 1, true) then
          -- Fast path: no number called yet, so the highest priority wins (the first on ties).
          local best, i = nil, 0
          for p in string.gmatch(f[3], '[^;]+') do
            p = tonumber(p)
            if best == nil or p > best then best, k = p, i end
            i = i + 1
          end
        else
          k = choose(pol.no, unpack_nums(f[3]), last)
        end
        if k == nil then
          cnt('waiting', -1)
          finish(key, 'NO_COMMUNICATIONS', false)
          ended[#ended + 1] = { id, 'NO_COMMUNICATIONS' }
        else
          local attempt = ARGV[7 + #claims]
          local n = num(f[5], 0) + 1
          redis.call('HSET', key, 's', 'a', 'b', fint(n), 'a', attempt .. '|' .. fint(k) .. a_tail)
          leases[#leases + 1] = expiry
          leases[#leases + 1] = attempt
          acts[#acts + 1] = attempt
          acts[#acts + 1] = hid .. act_tail
          claims[#claims + 1] = { attempt, id, n, k, f[6], str(f[7]), f[8], str(f[2]), num(f[9], 0), f[3], str(f[10]), str(f[1]) }
        end
      end
    end
  end
end
if #claims > 0 then
  redis.call('ZADD', K_LEASE, unpack(leases))
  redis.call('HSET', K_ACT, unpack(acts))
  cnt('waiting', -#claims)
  cnt('active', #claims)
end
flush()
return { claims, ended }
