-- claim: ARGV now, max_n, node, lease_ms, policy json, tz json, attempt ids...
-- Reply: { {hid, record, ...}, {ended...} }: each claimed member's id (as its key spells it) and its record as this
-- claim wrote it (state `a`, its `a` field `attempt|k|claimed|node`; redis/packed.rs reads it, and the completion
-- fast path builds the next record from it), each ended member as {id, cause}.
-- One MGET and one MSET per round of taken members: no per-member Redis call on the way to a claim.
local now, max_n, node, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local pol, tzmap = cjson.decode(ARGV[5]), cjson.decode(ARGV[6])
local missing = tz_missing(tzmap)
if missing then return missing end
check_layout()
local order = pol.o
-- Re-rank the ready order when the campaign's member order changed.
ORDER = redis.call('HGET', K_META, 'order')
if ORDER ~= order then
  redis.call('HSET', K_META, 'order', order)
  local all = redis.call('ZRANGE', K_READY, 0, -1)
  for _, t in ipairs(all) do
    local m = load(id_of_tok(t))
    if m ~= nil then
      redis.call('ZADD', K_READY, fint(primary(order, num(m.p, 0), num(m.t, 0), num(m.b, 0))), t)
    end
  end
end
ORDER = order
-- Promote waiting members whose due passed.
local due = redis.call('ZRANGEBYSCORE', K_WAIT, '-inf', now, 'WITHSCORES', 'LIMIT', 0, PROMOTE_CAP)
if #due > 0 then
  local gone, keys, sets = {}, {}, {}
  for i = 1, #due, 2 do
    gone[#gone + 1] = due[i]
    keys[#keys + 1] = P .. 'm:' .. due[i]
  end
  local recs = redis.call('MGET', unpack(keys))
  for j, rec in ipairs(recs) do
    if rec ~= false then
      local id = tonumber(due[2 * j - 1], 16)
      local m = parse_rec(id, rec)
      schedule(m, id, tonumber(due[2 * j]), now, order)
      sets[#sets + 1] = keys[j]
      sets[#sets + 1] = pack_rec(m)
    end
  end
  redis.call('ZREM', K_WAIT, unpack(gone))
  if #sets > 0 then redis.call('MSET', unpack(sets)) end
  flush_queue()
end
local free = pol.l - redis.call('ZCOUNT', K_LEASE, '(' .. fint(now), '+inf')
local want = math.min(max_n, free, #ARGV - 6)
local claims, ended = {}, {}
local leases, acts = {}, {}
local examined = 0
local expiry = fint(now + lease)
local a_tail, act_tail = '|' .. fint(now) .. '|' .. node, '|' .. node
local by_priority = pol.no == 'by_priority'
local sub, match, find, byte = string.sub, string.match, string.find, string.byte
-- What the claim reads at the start of a record (see pack_rec): `h`, `x`, `z`, and `b` with where it stands.
local HEAD = '^([^|]*)|([^|]*)|([^|]*)|()([^|]*)()|'
-- Small numbers as strings and back, remembered: Lua converts numbers with sprintf/strtod, which costs more than
-- everything else a claim does per member.
local NSTR, NNUM = {}, {}
local function nstr(n)
  local v = NSTR[n]
  if v == nil then
    v = fint(n)
    NSTR[n] = v
  end
  return v
end
local function nnum(s)
  local v = NNUM[s]
  if v == nil then
    v = num(s, 0)
    NNUM[s] = v
  end
  return v
end
-- Ends (cause) or reschedules (at) a popped member that cannot be called now; returns its new record.
local function set_aside(hid, rec, cause, at)
  local id = tonumber(hid, 16)
  local m = parse_rec(id, rec)
  if cause then
    cnt('waiting', -1)
    finish(m, cause, false)
    ended[#ended + 1] = { id, cause }
  else
    schedule(m, id, at, now, order)
  end
  return pack_rec(m)
end
while #leases / 2 < want and examined < want + EXAMINE_EXTRA do
  -- (ZRANGE then ZREMRANGEBYRANK rather than ZPOPMIN: the scores are not needed, and Redis formats each one with
  -- printf.)
  local take = math.min(want - #leases / 2, want + EXAMINE_EXTRA - examined)
  local heads = redis.call('ZRANGE', K_READY, 0, take - 1)
  if #heads == 0 then break end
  redis.call('ZREMRANGEBYRANK', K_READY, 0, #heads - 1)
  local keys, hids = {}, {}
  for h = 1, #heads do
    local hid = sub(heads[h], 12)
    hids[h] = hid
    keys[h] = P .. 'm:' .. hid
  end
  local recs = redis.call('MGET', unpack(keys))
  local sets = {}
  for j, rec in ipairs(recs) do
    examined = examined + 1
    -- (A ready entry without its member would be a bug elsewhere; there is nothing to claim.)
    if rec ~= false then
      local hid = hids[j]
      local hint, xs, z, pb, b, pe = match(rec, HEAD)
      -- The first line ends with an empty `a` ('|' then the newline) while the member waits.
      local eol = pe and find(rec, '\n', pe, true)
      if eol == nil or byte(rec, eol - 1) ~= 124 then error('member ' .. hid .. ': corrupt record') end
      local x = num(xs, nil)
      local new
      if x ~= nil and x <= now then
        new = set_aside(hid, rec, 'MEMBER_EXPIRED')
      else
        local point = point_of(tzmap, z)
        if point[1] ~= 1 then
          if point[2] < 0 then
            new = set_aside(hid, rec, 'QUEUE_EXPIRE')
          else
            local at = math.max(point[2], now + 1)
            if x ~= nil and x <= at then
              -- It would only be callable after it expires.
              new = set_aside(hid, rec, 'MEMBER_EXPIRED')
            else
              new = set_aside(hid, rec, nil, at)
            end
          end
        else
          local k, kstr
          if hint ~= '' then
            -- The choice made when the number state was last written (`kp,kt`: by_priority, top_down; empty =
            -- none left), see redis/fast.rs.
            local kp, kt = match(hint, '^(%d*),(%d*)$')
            if by_priority then kstr = kp else kstr = kt end
            if kstr ~= '' then k = nnum(kstr) end
          else
            -- No hint (a first attempt, or the last writer was not the completion fast path): choose here.
            local m = parse_rec(nil, rec)
            local last = num(m.r, 0)
            if last == 0 then last = nil else last = last - 1 end
            k = choose(pol.no, unpack_nums(m.u), last)
          end
          if k == nil then
            new = set_aside(hid, rec, 'NO_COMMUNICATIONS')
          else
            local attempt = ARGV[7 + #leases / 2]
            if kstr == nil then kstr = nstr(k) end
            new = sub(rec, 1, pb - 1) .. nstr(nnum(b) + 1) .. '|a' .. sub(rec, pe + 2, eol - 1) .. attempt .. '|' .. kstr
              .. a_tail .. sub(rec, eol)
            leases[#leases + 1] = expiry
            leases[#leases + 1] = attempt
            acts[#acts + 1] = attempt
            acts[#acts + 1] = hid .. act_tail
            claims[#claims + 1] = hid
            claims[#claims + 1] = new
          end
        end
      end
      sets[#sets + 1] = keys[j]
      sets[#sets + 1] = new
    end
  end
  if #sets > 0 then redis.call('MSET', unpack(sets)) end
end
if #leases > 0 then
  redis.call('ZADD', K_LEASE, unpack(leases))
  redis.call('HSET', K_ACT, unpack(acts))
  cnt('waiting', -#leases / 2)
  cnt('active', #leases / 2)
end
flush()
return { claims, ended }
