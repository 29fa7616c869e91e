-- Fire due timers of one workflow: each becomes an inbox entry (the event that
-- resumes its waiting execution) and leaves the timer set in the same step, so a
-- timer fires once, and a crash after this call loses nothing (the inbox holds it).
-- KEYS[1] timers zset, KEYS[2] timer payloads hash, KEYS[3] inbox stream
-- ARGV[1] now (epoch ms), ARGV[2] at most this many. Returns how many fired.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local payload = redis.call('HGET', KEYS[2], member)
  if payload then
    redis.call('XADD', KEYS[3], '*', 'e', payload)
  end
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
end
return #due
