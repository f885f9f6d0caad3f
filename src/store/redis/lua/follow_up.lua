-- follow_up: ARGV id, attempt, follow-up (`<next ms or ''>,<1 = reset tries, else 0>`). Keeps an agent's follow-up
-- of the member's attempt in the attempt's `act` entry (`hid|node[|q]|f<follow-up>`), where its completion reads it
-- (redis/completion.rs); changing the entry also makes a completion decided before it conflict and decide again.
-- A resend writes the same entry again. Reply: 'set' or 'not_current'.
local id, attempt = tonumber(ARGV[1]), ARGV[2]
local m = load(id)
local act = redis.call('HGET', K_ACT, attempt)
if m == nil or not is_current(m.a, attempt) or act == false then return 'not_current' end
act = string.gsub(act, '|f[^|]*', '')
redis.call('HSET', K_ACT, attempt, act .. '|f' .. ARGV[3])
return 'set'
