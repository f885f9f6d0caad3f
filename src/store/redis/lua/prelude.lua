-- Shared helpers of the member-store scripts. KEYS[1] is the campaign prefix `dlr:{<campaign>}:`: every key
-- a script touches starts with it, so all of them live in the campaign's hash slot. Mirrors store/rules.rs and
-- store/memory/campaign.rs; keep the three in step. Member hash fields: see the layout table in redis/mod.rs.
local P = KEYS[1]
local NOW = ARGV[1]
local K_SEQ, K_READY, K_WAIT = P .. 'seq', P .. 'ready', P .. 'wait'
local K_LEASE, K_ACT, K_EXT = P .. 'lease', P .. 'act', P .. 'ext'
local K_TZS, K_CNT, K_META = P .. 'tzs', P .. 'cnt', P .. 'meta'
local TIER = 1099511627776 -- 2^40
local PROMOTE_CAP, EXAMINE_EXTRA, MAX_DUE = 5000, 1000, 17592186044415

local function fint(x) return string.format('%d', x) end
local function idt(id) return string.format('%010x', id) end
local function mkey(id) return P .. 'm:' .. idt(id) end
local function lkey(id) return P .. 'l:' .. idt(id) end
local function clamp_due(d)
  if d < 0 then return 0 end
  if d > MAX_DUE then return MAX_DUE end
  return d
end
local function tok(due, id) return string.format('%011x%010x', due, id) end
local function id_of_tok(t) return tonumber(string.sub(t, 12), 16) end
local function num(v, dflt)
  if v == false or v == nil or v == '' then return dflt end
  return tonumber(v)
end
local function str(v)
  if v == false or v == nil then return '' end
  return v
end

local function primary(order, prio, tries, att)
  if order == 'priority_first' then return -prio end
  if order == 'retries_first' then
    if att > 0 then return -prio end
    return TIER - prio
  end
  return math.min(tries, 4095) * TIER - prio
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

-- Number state: `prio,state,attempts,last_ms,cause` per number, `;` between numbers, trailing defaults omitted
-- (see record.rs). The number in a call is not marked here: the member's `a` field names it.
local function unpack_nums(s)
  local out = {}
  if s == false or s == nil or s == '' then return out end
  for entry in string.gmatch(s, '[^;]+') do
    local p, st, att, last, cause = string.match(entry, '^([^,]*),?([^,]*),?([^,]*),?([^,]*),?(.*)$')
    if st == '' then st = 'i' end
    out[#out + 1] = { prio = tonumber(p) or 0, st = st, att = tonumber(att) or 0, last = tonumber(last) or 0, cause = cause }
  end
  return out
end

local function pack_num(n)
  if n.cause ~= '' then
    return fint(n.prio) .. ',' .. n.st .. ',' .. fint(n.att) .. ',' .. fint(n.last) .. ',' .. n.cause
  elseif n.last ~= 0 then
    return fint(n.prio) .. ',' .. n.st .. ',' .. fint(n.att) .. ',' .. fint(n.last)
  elseif n.att ~= 0 then
    return fint(n.prio) .. ',' .. n.st .. ',' .. fint(n.att)
  elseif n.st ~= 'i' then
    return fint(n.prio) .. ',' .. n.st
  end
  return fint(n.prio)
end

local function pack_nums(nums)
  local parts = {}
  for i, n in ipairs(nums) do parts[i] = pack_num(n) end
  return table.concat(parts, ';')
end

local function parse_num(entry)
  local p, st, att, last, cause = string.match(entry, '^([^,]*),?([^,]*),?([^,]*),?([^,]*),?(.*)$')
  if st == '' then st = 'i' end
  return { prio = tonumber(p) or 0, st = st, att = tonumber(att) or 0, last = tonumber(last) or 0, cause = cause }
end

local function num_entries(s)
  local out = {}
  for entry in string.gmatch(s, '[^;]+') do out[#out + 1] = entry end
  return out
end

-- Every number done? (entries as num_entries returns them)
local function all_done(entries)
  for _, e in ipairs(entries) do
    if string.match(e, '^[^,]*,([^,]*)') ~= 'd' then return false end
  end
  return true
end

-- Index (0-based) of the number to dial, or nil when every number is done.
local function choose(order, nums, last)
  if order == 'by_priority' then
    local best = nil
    for i, n in ipairs(nums) do
      if n.st ~= 'd' then
        if best == nil then
          best = i
        else
          local o = nums[best]
          if n.prio > o.prio or (n.prio == o.prio and (n.att < o.att or (n.att == o.att and n.last < o.last))) then
            best = i
          end
        end
      end
    end
    if best then return best - 1 end
    return nil
  end
  local len = #nums
  local start = 0
  if last then start = last + 1 end
  for step = 0, len - 1 do
    local i = (start + step) % len
    if nums[i + 1].st ~= 'd' then return i end
  end
  return nil
end

-- Counter deltas are gathered and written once per script run (flush).
local CNT = {}
local function cnt(field, delta) CNT[field] = (CNT[field] or 0) + delta end
local function flush()
  for k, v in pairs(CNT) do
    if v ~= 0 then redis.call('HINCRBY', K_CNT, k, v) end
  end
  CNT = {}
end

local ORDER = nil
local function stored_order()
  if ORDER == nil then
    ORDER = redis.call('HGET', K_META, 'order')
    if ORDER == false then ORDER = 'priority_first' end
  end
  return ORDER
end

-- Queue entries gathered by `schedule` in batch mode, written by flush_queue.
local READY_ADD, WAIT_ADD = {}, {}
local function flush_queue()
  if #READY_ADD > 0 then redis.call('ZADD', K_READY, unpack(READY_ADD)) end
  if #WAIT_ADD > 0 then redis.call('ZADD', K_WAIT, unpack(WAIT_ADD)) end
  READY_ADD, WAIT_ADD = {}, {}
end

-- Puts member `id` due at `due` into the ready order (due now) or the wait set (later). In batch mode (`sets`, an
-- HSET argument list, given) the state fields go into `sets` and the queue entries wait for flush_queue.
local function schedule(key, id, due, now, order, prio, tries, att, sets)
  due = clamp_due(due)
  local s, zkey, score, member
  if due <= now then
    s, zkey, score, member = 'r', K_READY, fint(primary(order, prio, tries, att)), tok(due, id)
  else
    s, zkey, score, member = 'w', K_WAIT, fint(due), idt(id)
  end
  if sets then
    local batch = READY_ADD
    if s == 'w' then batch = WAIT_ADD end
    batch[#batch + 1] = score
    batch[#batch + 1] = member
  else
    redis.call('ZADD', zkey, score, member)
  end
  if sets then
    sets[#sets + 1] = 's'; sets[#sets + 1] = s
    sets[#sets + 1] = 'w'; sets[#sets + 1] = fint(due)
  else
    redis.call('HSET', key, 's', s, 'w', fint(due))
  end
  return due
end

local function unqueue(id, s, w)
  if s == 'r' then
    redis.call('ZREM', K_READY, tok(tonumber(w), id))
  elseif s == 'w' then
    redis.call('ZREM', K_WAIT, idt(id))
  end
end

-- Ends a member (the caller already took it off its state gauge).
local function finish(key, cause, success, sets)
  local own = sets == nil
  if own then sets = {} end
  sets[#sets + 1] = 's'; sets[#sets + 1] = 'e'
  sets[#sets + 1] = 'y'; sets[#sets + 1] = cause
  if success then
    sets[#sets + 1] = 'o'; sets[#sets + 1] = '1'
    cnt('success', 1)
  end
  cnt('ended', 1)
  cnt('end:' .. cause, 1)
  if own then
    redis.call('HSET', key, unpack(sets))
    redis.call('HDEL', key, 'q')
  end
end

-- The timezones of the campaign that the caller did not evaluate, as the reply {'need', tz...} (nil when all are
-- there).
local function tz_missing(tzmap)
  local missing = {}
  for _, t in ipairs(redis.call('SMEMBERS', K_TZS)) do
    if tzmap[t] == nil then missing[#missing + 1] = t end
  end
  if tzmap[''] == nil then missing[#missing + 1] = '' end
  if #missing > 0 then
    table.insert(missing, 1, 'need')
    return missing
  end
  return nil
end

local function point_of(tzmap, z)
  local p = tzmap[str(z)]
  if p == nil then return { 0, -1, -1 } end
  return p
end

-- The active attempt field `a`: `attempt|k|claimed_ms|node`.
local function active_of(a)
  if a == false or a == nil or a == '' then return nil end
  local attempt, k, m, node = string.match(a, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return attempt, tonumber(k), tonumber(m), node, k, m
end

-- (Compares in place: no new Lua string, as Redis's Lua hashes every byte of each one it makes.)
local function is_current(a, attempt)
  return a ~= false and a ~= nil and string.byte(a, #attempt + 1) == 124 and string.find(a, attempt, 1, true) == 1
end

local function some(v)
  if v == nil or v < 0 then return nil end
  return v
end

-- Applies a final result to the member's current attempt; returns the fate {'e', cause, 0|1} or {'d', due}.
-- Lease entries are left to the caller (`gone` collects the attempt ids to drop).
-- `f` are the member's fields `a u t b x q z p` (as read by the caller).
-- `ans`, `hup`, `talk` are the strings as received ('' = absent); NOW is ARGV[1], the string of `now`.
local function apply(key, id, f, cause, class, ans, hup, talk, note, now, pol, tzmap, gone)
  local attempt, k, claimed, node, kstr, mstr = active_of(f[1])
  local entries = num_entries(f[2])
  local tries, n, x, q = num(f[3], 0), num(f[4], 0), num(f[5], nil), f[6] == '1'
  local point = point_of(tzmap, f[7])
  local prio = num(f[8], 0)
  gone[#gone + 1] = attempt
  cnt('active', -1)
  cnt('calls', 1)
  if ans ~= '' then cnt('answered', 1) end
  cnt(class, 1)
  local nm = parse_num(entries[k + 1])
  nm.st = 'i'
  nm.last = claimed
  nm.cause = cause
  local max = pol.mt
  local end_cause, success, due = nil, false, nil
  local resched = false
  if class == 'ok' then
    end_cause, success = cause, true
  elseif class == 'retry' then
    tries = tries + 1
    nm.att = nm.att + 1
    if pol.tpn then
      if nm.att >= max then nm.st = 'd' end
      entries[k + 1] = pack_num(nm)
      if all_done(entries) then end_cause = 'MAX_TRY_COUNT' end
    elseif tries >= max then
      end_cause = 'MAX_TRY_COUNT'
    end
    if end_cause == nil then resched, due = true, some(point[3]) end
  elseif class == 'error' then
    tries = tries + 1
    nm.att = nm.att + 1
    nm.st = 'd'
    entries[k + 1] = pack_num(nm)
    if all_done(entries) then
      end_cause = cause
    elseif (not pol.tpn) and tries >= max then
      end_cause = 'MAX_TRY_COUNT'
    else
      resched, due = true, some(point[2])
    end
  else
    resched, due = true, some(point[3])
  end
  if q and class ~= 'ok' then
    end_cause, success, resched = 'MANAGER_REQUEST', false, false
  end
  if resched then
    if due == nil then
      end_cause = 'QUEUE_EXPIRE'
    elseif x ~= nil and x <= due then
      end_cause = 'MEMBER_EXPIRED'
    end
  end
  entries[k + 1] = pack_num(nm)
  -- `h` (the next-number hint) is emptied: only the completion fast path (redis/fast.rs) writes it, with `u`.
  local sets = { 'u', table.concat(entries, ';'), 'r', fint(k + 1), 'a', '', 'h', '' }
  if tries > 0 then sets[#sets + 1] = 't'; sets[#sets + 1] = fint(tries) end
  local fate, fe, fs, fd
  if end_cause then
    finish(key, end_cause, success, sets)
    fe, fs, fd = end_cause, '0', ''
    if success then fs = '1' end
    fate = { 'e', end_cause, tonumber(fs) }
  else
    cnt('waiting', 1)
    due = schedule(key, id, due, now, stored_order(), prio, tries, n, sets)
    fe, fs, fd = '', '0', fint(due)
    fate = { 'd', due }
  end
  if q then redis.call('HDEL', key, 'q') end
  redis.call('HSET', key, unpack(sets))
  -- Log line (see LogEntry::parse_line):
  -- attempt|no|k|claimed|answered|hangup|talk|cause|class|end|success|due|at|note|node
  redis.call('APPEND', lkey(id), attempt .. '|' .. f[4] .. '|' .. kstr .. '|' .. mstr .. '|' .. (ans or '') .. '|'
    .. (hup or '') .. '|' .. talk .. '|' .. cause .. '|' .. class .. '|' .. fe .. '|' .. fs .. '|' .. fd .. '|' .. NOW
    .. '|' .. (note or '') .. '|' .. node .. '\n')
  return fate
end

-- Drops the leases of attempts that ended (one ZREM and one HDEL for all).
local function drop_leases(gone)
  if #gone > 0 then
    redis.call('ZREM', K_LEASE, unpack(gone))
    redis.call('HDEL', K_ACT, unpack(gone))
  end
end

-- Ends a batch of `apply` calls: leases, queue entries, counters.
local function end_batch(gone)
  drop_leases(gone)
  flush_queue()
  flush()
end
