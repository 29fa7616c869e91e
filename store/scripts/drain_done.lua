-- Stop reading a workflow's inbox once it has drained: not enabled, nothing in
-- its inbox (unread or pending), no timer waiting. Atomic with respect to a push
-- (`inbox_push.lua` adds the key back in the same step as its XADD), so no
-- event is ever left unread.
-- KEYS[1] draining set, KEYS[2] enabled hash, KEYS[3] inbox stream,
-- KEYS[4] timers-due index, KEYS[5] inboxes-changed counter; ARGV[1] workflow key.
-- Returns 1 if it stopped.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1
  or redis.call('XLEN', KEYS[3]) > 0
  or redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return 0
end
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('INCR', KEYS[5])
end
return 1
