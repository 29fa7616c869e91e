-- Fire due timers of one workflow: each becomes an inbox entry (the event that
-- resumes its waiting execution) and leaves the timer set in the same step, so a
-- timer fires once, and a crash after this call loses nothing (the inbox holds it).
-- The workflow's entry in the timers-due index moves to its next timer (or goes),
-- and its inbox is read until drained even if the workflow was disabled since.
-- KEYS[1] timers zset, KEYS[2] timer payloads hash, KEYS[3] inbox stream,
-- KEYS[4] timers-due index, KEYS[5] draining set, KEYS[6] inboxes-changed counter
-- ARGV[1] now (epoch ms), ARGV[2] at most this many, ARGV[3] workflow key.
-- Returns how many fired.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local payload = redis.call('HGET', KEYS[2], member)
  if payload then
    redis.call('XADD', KEYS[3], '*', 'e', payload)
  end
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
end
if #due > 0 and redis.call('SADD', KEYS[5], ARGV[3]) == 1 then
  redis.call('INCR', KEYS[6])
end
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if earliest[2] then
  redis.call('ZADD', KEYS[4], earliest[2], ARGV[3])
else
  redis.call('ZREM', KEYS[4], ARGV[3])
end
return #due
