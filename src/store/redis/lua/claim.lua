-- claim: ARGV now, max_n, node, lease_ms, policy json, tz json, attempt ids...
-- Reply: { {hid, record, ...}, {ended...} }: each claimed member's id (as its key spells it) and its record as this
-- claim wrote it (state `a`, its `a` field `attempt|k|claimed|node`; redis/packed.rs reads it, and the completion
-- fast path builds the next record from it), each ended member as {id, cause}.
-- One MGET and one MSET per round of taken members: no per-member Redis call on the way to a claim.
-- A resend of a claim that already ran (its reply lost with the connection) returns what that run returned: the
-- memo when it ended members, else the members its attempt ids hold in `act`, as it left them (nothing changes
-- an active member's record before its claimer has heard of the claim).
do local replay = memo_replay() if replay ~= nil then return replay end end
if ARGV[7] ~= nil and redis.call('HEXISTS', K_ACT, ARGV[7]) == 1 then
  local claims, n = {}, 0
  for i = 7, #ARGV do
    local act = redis.call('HGET', K_ACT, ARGV[i])
    if act == false then break end
    local hid = string.match(act, '^([^|]*)')
    n = n + 1
    claims[2 * n - 1] = hid
    claims[2 * n] = redis.call('GET', P .. 'm:' .. hid)
  end
  return { claims, {} }
end
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
-- (Tables are appended to with explicit counts: `#t` is a search in Lua 5.1.)
local claims, ended, nended = {}, {}, 0
-- `retried`: members taken that were called before (they leave `in_retry` as well as `waiting`).
local leases, acts, got, retried = {}, {}, 0, 0
local examined = 0
local expiry = fint(now + lease)
local a_tail, act_tail = '|' .. fint(now) .. '|' .. node, '|' .. node
local by_priority = pol.no == 'by_priority'
local sub, match, find, byte = string.sub, string.match, string.find, string.byte
-- What the claim reads at the start of a record (see pack_rec): `h`, `x`, `z`, and `b` with where it stands.
local HEAD = '^([^|]*)|([^|]*)|([^|]*)|()([^|]*)()|'
-- Per call, remembered by the string they come from (Lua converts numbers with sprintf and strtod, and a pattern
-- match costs more than everything else a claim does per member): the attempt count after this claim, by `b`;
-- the number to call, by hint (`kp,kt`: the choice under by_priority and top_down; empty = none left, false =
-- not a hint).
local NEXT_B, HINT_K = {}, {}
-- Ends (cause) or reschedules (at) a popped member that cannot be called now; returns its new record.
local function set_aside(hid, rec, cause, at)
  local id = tonumber(hid, 16)
  local m = parse_rec(id, rec)
  if cause then
    cnt('waiting', -1)
    if called_before(m.b) then cnt('in_retry', -1) end
    finish(m, cause, false)
    nended = nended + 1
    ended[nended] = { id, cause }
  else
    schedule(m, id, at, now, order)
  end
  return pack_rec(m)
end
while got < want and examined < want + EXAMINE_EXTRA do
  -- (ZRANGE then ZREMRANGEBYRANK rather than ZPOPMIN: the scores are not needed, and Redis formats each one with
  -- printf.)
  local take = math.min(want - got, want + EXAMINE_EXTRA - examined)
  local heads = redis.call('ZRANGE', K_READY, 0, take - 1)
  local nheads = #heads
  if nheads == 0 then break end
  redis.call('ZREMRANGEBYRANK', K_READY, 0, nheads - 1)
  local keys, hids = {}, {}
  for h = 1, nheads do
    local hid = sub(heads[h], 12)
    hids[h] = hid
    keys[h] = P .. 'm:' .. hid
  end
  local recs = redis.call('MGET', unpack(keys))
  local sets, nsets = {}, 0
  for j = 1, nheads do
    local rec = recs[j]
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
          -- The number to call, as a string (nil: none left).
          local kstr = HINT_K[hint]
          if kstr == nil then
            -- The choice made when the number state was last written (see redis/completion.rs).
            local kp, kt = match(hint, '^(%d*),(%d*)$')
            if kp == nil then
              kstr = false
            elseif by_priority then
              kstr = kp
            else
              kstr = kt
            end
            HINT_K[hint] = kstr
          end
          if kstr == false then
            -- No hint (a first attempt, or the last writer was not the completion fast path): choose here.
            local m = parse_rec(nil, rec)
            local last = num(m.r, 0)
            if last == 0 then last = nil else last = last - 1 end
            local k = choose(pol.no, unpack_nums(m.u), last)
            if k == nil then kstr = '' else kstr = fint(k) end
          end
          if kstr == '' then
            new = set_aside(hid, rec, 'NO_COMMUNICATIONS')
          else
            local attempt = ARGV[7 + got]
            local nb = NEXT_B[b]
            if nb == nil then
              nb = fint(num(b, 0) + 1)
              NEXT_B[b] = nb
            end
            new = sub(rec, 1, pb - 1) .. nb .. '|a' .. sub(rec, pe + 2, eol - 1) .. attempt .. '|' .. kstr .. a_tail
              .. sub(rec, eol)
            got = got + 1
            if called_before(b) then retried = retried + 1 end
            leases[2 * got - 1] = expiry
            leases[2 * got] = attempt
            acts[2 * got - 1] = attempt
            acts[2 * got] = hid .. act_tail
            claims[2 * got - 1] = hid
            claims[2 * got] = new
          end
        end
      end
      sets[nsets + 1] = keys[j]
      sets[nsets + 2] = new
      nsets = nsets + 2
    end
  end
  if nsets > 0 then redis.call('MSET', unpack(sets)) end
end
if got > 0 then
  redis.call('ZADD', K_LEASE, unpack(leases))
  redis.call('HSET', K_ACT, unpack(acts))
  cnt('waiting', -got)
  cnt('in_retry', -retried)
  cnt('active', got)
end
flush()
if nended > 0 then return memo_keep({ claims, ended }) end
return { claims, ended }
