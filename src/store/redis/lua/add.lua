-- add: ARGV now, then per member 9 values: n, v, c, p, z, x, u, e ('' = absent), h (the number hint, see claim.lua).
-- Reply: {first new id, codes, ids of upserts...}: one code per member, `a` added (new ids are consecutive from the
-- first), `u` updated (same external id), `c` refused (that member is in a call); upserts' ids follow in order.
do local replay = memo_replay() if replay ~= nil then return replay end end
local now = tonumber(ARGV[1])
local nowstr = ARGV[1]
local W = 9
-- A campaign's ready order starts ranked by the default member order (a claim with another order re-ranks it).
if redis.call('HSETNX', K_META, 'order', 'priority_first') == 1 then ORDER = 'priority_first' end
if redis.call('EXISTS', K_SEQ) == 0 then redis.call('HSET', K_META, 'layout', LAYOUT) end
check_layout()
local order = stored_order()
local codes, upserts = {}, {}
-- First pass: which members are upserts of a known external id (or of one added earlier in this batch).
local existing = {}
local batch_ext = {}
local fresh = 0
for i = 2, #ARGV, W do
  local e = ARGV[i + 7]
  local known = false
  if e ~= '' then
    known = redis.call('HGET', K_EXT, e)
    if not known and batch_ext[e] then known = 'batch' end
    batch_ext[e] = true
  end
  existing[i] = known
  if not known then fresh = fresh + 1 end
end
local next_id = 0
if fresh > 0 then next_id = redis.call('INCRBY', K_SEQ, fresh) - fresh end
local ready, tzs, sets = {}, {}, {}
for i = 2, #ARGV, W do
  local nm, v, c, p, z, x, u, e, h = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
      ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local known = existing[i]
  if known == 'batch' then
    -- The member was added earlier in this batch: store it and put it in the ready order before changing it.
    if #sets > 0 then
      redis.call('MSET', unpack(sets))
      sets = {}
    end
    if #ready > 0 then
      redis.call('ZADD', K_READY, unpack(ready))
      ready = {}
    end
    known = redis.call('HGET', K_EXT, e)
  end
  if known then
    local id = tonumber(known, 16)
    local r = replace(id, nm, v, c, p, z, x, u, e, now)
    if r == 'in_call' then codes[#codes + 1] = 'c' else codes[#codes + 1] = 'u' end
    upserts[#upserts + 1] = id
  else
    tzs[z] = true
    next_id = next_id + 1
    local id = next_id
    local ej = ''
    if e ~= '' then
      ej = cjson.encode(e)
      redis.call('HSET', K_EXT, e, idt(id))
    end
    if p == '0' then p = '' end
    sets[#sets + 1] = mkey(id)
    -- (pack_rec's layout, with the claim's number hint `h` as the caller worked it out)
    sets[#sets + 1] = h .. '|' .. x .. '|' .. z .. '||r|' .. nowstr .. '||' .. u .. '|||||' .. p .. '|\n' .. c .. '\n' .. v
      .. '\n' .. ej .. '\n' .. nm
    ready[#ready + 1] = fint(primary(order, num(p, 0), 0, 0))
    ready[#ready + 1] = tok(now, id)
    codes[#codes + 1] = 'a'
  end
end
if #ready > 0 then redis.call('ZADD', K_READY, unpack(ready)) end
if #sets > 0 then redis.call('MSET', unpack(sets)) end
local tzlist = {}
for z, _ in pairs(tzs) do tzlist[#tzlist + 1] = z end
if #tzlist > 0 then redis.call('SADD', K_TZS, unpack(tzlist)) end
cnt('waiting', fresh)
flush()
local first = 0
if fresh > 0 then first = next_id - fresh + 1 end
local reply = { first, table.concat(codes) }
for _, id in ipairs(upserts) do reply[#reply + 1] = id end
return memo_keep(reply)
