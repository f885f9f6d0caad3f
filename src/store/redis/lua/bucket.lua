#!lua
-- token bucket: KEYS[1] hash {t = tokens, ts = last ms}, KEYS[2] this call's memo (same hash tag; see
-- redis/keys.rs bucket_memo); ARGV rate_per_sec, burst, n, now. Returns tokens granted.
-- Same arithmetic, in the same order, as memory::bucket_step.
-- A resend of the call (the client lost the reply with its connection and sent it again) gets the first run's
-- grant from the memo instead of taking tokens a second time.
local kept = redis.call('GET', KEYS[2])
if kept ~= false then return tonumber(kept) end
local rate, burst, n, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = burst, now
if st[1] ~= false then
  tokens, ts = tonumber(st[1]), tonumber(st[2])
end
local elapsed = math.max(now - ts, 0)
tokens = math.min(tokens + elapsed * rate / 1000, burst)
local granted = math.max(math.min(n, math.floor(tokens)), 0)
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens - granted), 'ts', string.format('%d', math.max(ts, now)))
redis.call('SET', KEYS[2], granted, 'PX', 120000)
return granted
