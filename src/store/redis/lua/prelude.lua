-- Shared helpers of the member-store scripts. KEYS[1] is the campaign prefix `dlr:{<campaign>}:`: every key
-- a script touches starts with it, so all of them live in the campaign's hash slot (Redis Cluster). KEYS[2..12]
-- declare the campaign's fixed keys (redis/keys.rs CAMPAIGN_SCRIPT_KEYS, same order); member records are found
-- while the script runs and share the hash tag. The queue rules here (ready order, number choice) mirror
-- store/rules.rs and store/memory/campaign.rs; keep them in step. What a result does to its member (SPEC §4) is not
-- here: store/outcome.rs decides it and complete.lua writes it. A member is one string record: see parse_rec below
-- and the layout table in redis/mod.rs.
local P = KEYS[1]
local NOW = ARGV[1]
if (#KEYS ~= 12 and #KEYS ~= 13) or KEYS[2] ~= P .. 'seq' or KEYS[12] ~= P .. 'causes' then
  error('campaign script called without its declared keys')
end
local K_SEQ, K_READY, K_WAIT = KEYS[2], KEYS[3], KEYS[4]
local K_LEASE, K_ACT, K_EXT = KEYS[5], KEYS[6], KEYS[7]
local K_TZS, K_CNT, K_META, K_LOG = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
-- The hangup-cause histogram (store/causes.rs): cause → attempts, at most MAX_CAUSES causes, then OTHER.
local K_CAUSES, MAX_CAUSES = KEYS[12], 200
-- The call's reply kept for a resend (KEYS[13], `memo:<call id>`, see redis/keys.rs memo_key): a client that lost
-- the reply with its connection and sends the same call again gets the first run's reply instead of a second run.
local K_MEMO = KEYS[13]
local MEMO_MS = 120000
local function memo_replay()
  if K_MEMO == nil then return nil end
  local v = redis.call('GET', K_MEMO)
  if v == false then return nil end
  if string.sub(v, 1, 1) == 's' then return string.sub(v, 2) end
  return cjson.decode(string.sub(v, 2))
end
local function memo_keep(out)
  if K_MEMO ~= nil then
    local v
    if type(out) == 'string' then v = 's' .. out else v = 't' .. cjson.encode(out) end
    redis.call('SET', K_MEMO, v, 'PX', MEMO_MS)
  end
  return out
end
local TIER = 1099511627776 -- 2^40
local PROMOTE_CAP, EXAMINE_EXTRA, MAX_DUE = 5000, 1000, 17592186044415

local function fint(x) return string.format('%d', x) end
local function idt(id) return string.format('%010x', id) end
local function mkey(id) return P .. 'm:' .. idt(id) end
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

-- A member is one string (see the layout in redis/mod.rs and redis/packed.rs):
--   h|x|z|b|s|w|t|u|r|q|y|o|p|a  NL  c  NL  v  NL  e  NL  n
-- The first line holds what the queue logic reads and writes, `|`-separated ('' = the field's default); `a`, the
-- active attempt `attempt|k|claimed|node`, is last because it holds `|` itself. Then the numbers and variables
-- (JSON, no newline), the external id (JSON string, '' = none) and the name (raw, to the end). What a claim reads
-- (`h`, `x`, `z`) and rewrites (`b`, `s`) comes first, so it matches only the start of the line.
local REC = '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|'
  .. '([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$'
local function parse_rec(id, rec)
  local h, x, z, b, s, w, t, u, r, q, y, o, p, a, c, v, e, n = string.match(rec, REC)
  if s == nil then error('member ' .. (id and idt(id) or '?') .. ': corrupt record') end
  return { s = s, w = w, t = t, b = b, u = u, r = r, h = h, q = q, y = y, o = o, x = x, p = p, z = z, a = a, c = c,
    v = v, e = e, n = n }
end
local function pack_rec(m)
  return m.h .. '|' .. m.x .. '|' .. m.z .. '|' .. m.b .. '|' .. m.s .. '|' .. m.w .. '|' .. m.t .. '|' .. m.u .. '|'
    .. m.r .. '|' .. m.q .. '|' .. m.y .. '|' .. m.o .. '|' .. m.p .. '|' .. m.a .. '\n' .. m.c .. '\n' .. m.v .. '\n'
    .. m.e .. '\n' .. m.n
end
-- The member's fields, or nil when there is no such member.
local function load(id)
  local rec = redis.call('GET', mkey(id))
  if rec == false then return nil end
  return parse_rec(id, rec)
end
local function save(id, m) redis.call('SET', mkey(id), pack_rec(m)) end
-- The member's external id ('' = none); `m.e` holds it as a JSON string.
local function ext_of(m)
  if m.e == '' then return '' end
  return cjson.decode(m.e)
end
-- What get.lua and list.lua return of a member: VIEW_FIELDS in redis/reply.rs, in that order.
local function view(m)
  return { m.n, m.v, m.c, m.p, m.z, m.x, ext_of(m), m.s, m.w, m.t, m.b, m.u, m.a, m.q, m.y, m.o }
end

local function primary(order, prio, tries, att)
  if order == 'priority_first' then return -prio end
  if order == 'retries_first' then
    if att > 0 then return -prio end
    return TIER - prio
  end
  return math.min(tries, 4095) * TIER - prio
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

-- Counter deltas are gathered and written once per script run (flush). A field `cause:<CAUSE>` (a result's
-- hangup cause, decided in store/outcome.rs) goes to the histogram K_CAUSES instead, bounded as
-- store/causes.rs count_cause bounds it.
local CNT = {}
local function cnt(field, delta) CNT[field] = (CNT[field] or 0) + delta end
local function flush_cnt()
  for k, v in pairs(CNT) do
    if v ~= 0 then
      if string.sub(k, 1, 6) == 'cause:' then
        local c = string.sub(k, 7)
        if redis.call('HEXISTS', K_CAUSES, c) == 0 and redis.call('HLEN', K_CAUSES) >= MAX_CAUSES then c = 'OTHER' end
        redis.call('HINCRBY', K_CAUSES, c, v)
      elseif k == 'in_retry' then
        -- Never below zero: members waiting after an attempt since before this counter existed leave it without
        -- having entered it; once they were called again it is exact.
        if redis.call('HINCRBY', K_CNT, k, v) < 0 then redis.call('HSET', K_CNT, k, 0) end
      else
        redis.call('HINCRBY', K_CNT, k, v)
      end
    end
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

-- The member layout this code reads and writes (`meta` field `layout`, set when a campaign is first added to). A
-- campaign written by a build that kept members as hashes has members but no mark: refuse it rather than misread it.
local LAYOUT = '2'
local function check_layout()
  if redis.call('HGET', K_META, 'layout') ~= LAYOUT and redis.call('EXISTS', K_SEQ) == 1 then
    error('campaign ' .. P .. ' was written by an older fsdialer (member hashes, layout 1): re-import its members')
  end
end

-- Queue entries gathered by `schedule`, written by flush_queue (every script that schedules ends with flush).
local READY_ADD, WAIT_ADD = {}, {}
local function flush_queue()
  if #READY_ADD > 0 then redis.call('ZADD', K_READY, unpack(READY_ADD)) end
  if #WAIT_ADD > 0 then redis.call('ZADD', K_WAIT, unpack(WAIT_ADD)) end
  READY_ADD, WAIT_ADD = {}, {}
end

-- Writes what the script gathered: queue entries and counter deltas.
local function flush()
  flush_queue()
  flush_cnt()
end

-- Puts member `id` (fields `m`, whose `p`, `t` and `b` rank it) due at `due` into the ready order (due now) or the
-- wait set (later): sets `m.s` and `m.w` (the caller saves `m`) and gathers the queue entry. Returns the due.
local function schedule(m, id, due, now, order)
  due = clamp_due(due)
  if due <= now then
    m.s = 'r'
    READY_ADD[#READY_ADD + 1] = fint(primary(order, num(m.p, 0), num(m.t, 0), num(m.b, 0)))
    READY_ADD[#READY_ADD + 1] = tok(due, id)
  else
    m.s = 'w'
    WAIT_ADD[#WAIT_ADD + 1] = fint(due)
    WAIT_ADD[#WAIT_ADD + 1] = idt(id)
  end
  m.w = fint(due)
  return due
end

-- Takes member `id` (state `s`, due `w`) out of the ready order or the wait set.
local function unqueue(id, s, w)
  flush_queue()
  if s == 'r' then
    redis.call('ZREM', K_READY, tok(tonumber(w), id))
  elseif s == 'w' then
    redis.call('ZREM', K_WAIT, idt(id))
  end
end

-- Whether a member with attempts count `b` (the record's field) was called before: a waiting one is in retry
-- (the `in_retry` counter; `b` is '' before the first claim, '0' after a claim released uncounted).
local function called_before(b) return b ~= '' and b ~= '0' end

-- Ends a member (the caller already took it off its state gauge, and saves `m`).
local function finish(m, cause, success)
  m.s, m.y, m.q = 'e', cause, ''
  if success then
    m.o = '1'
    cnt('success', 1)
  end
  cnt('ended', 1)
  cnt('end:' .. cause, 1)
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

-- The attempt log: one field `<hid>.<attempt no>` per attempt in the campaign's `log` hash, its line as the value.
-- The log fields a member with attempts count `b` may have (nil when none).
local function log_fields(id, b)
  local n = num(b, 0)
  if n == 0 then return nil end
  local fields, hid = {}, idt(id)
  for i = 1, n do fields[i] = hid .. '.' .. i end
  return fields
end

-- The member's log lines in attempt order ('' when none).
local function log_of(id, b)
  local fields = log_fields(id, b)
  if fields == nil then return '' end
  local out = {}
  for _, l in ipairs(redis.call('HMGET', K_LOG, unpack(fields))) do
    if l then out[#out + 1] = l end
  end
  return table.concat(out)
end

-- Removes the member's attempt log.
local function drop_log(id, b)
  local fields = log_fields(id, b)
  if fields then redis.call('HDEL', K_LOG, unpack(fields)) end
end

-- An `act` entry `hid|node` (`|q` follows once the member was terminated in the call): member id and node.
local function act_of(act)
  local hid, node = string.match(act, '^([^|]*)|([^|]*)')
  return tonumber(hid, 16), node
end

-- (Compares in place: no new Lua string, as Redis's Lua hashes every byte of each one it makes.)
local function is_current(a, attempt)
  return a ~= false and a ~= nil and string.byte(a, #attempt + 1) == 124 and string.find(a, attempt, 1, true) == 1
end

-- Drops the leases of the attempts given (ids that ended; one ZREM and one HDEL for all).
local function drop_leases(...)
  if select('#', ...) > 0 then
    redis.call('ZREM', K_LEASE, ...)
    redis.call('HDEL', K_ACT, ...)
  end
end
