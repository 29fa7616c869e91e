-- Queue an event (a resume of a waiting execution) whatever its workflow's state,
-- and have the workflow's inbox read until it has drained: the executors read
-- the enabled workflows' inboxes and those in the draining set.
-- KEYS[1] inbox stream, KEYS[2] draining set, KEYS[3] inboxes-changed counter;
-- ARGV[1] workflow key, ARGV[2] payload.
-- Returns the entry id.
local entry = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('INCR', KEYS[3])
end
return entry
