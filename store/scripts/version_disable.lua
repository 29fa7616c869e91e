-- Disable a version if it is the enabled one (it stays current, as in NocoBase).
-- What its inbox holds still runs: the key joins the draining set, whose inboxes
-- the executors read until they are empty (`drain_done.lua`).
-- KEYS[1] enabled hash, KEYS[2] draining set, KEYS[3] inboxes-changed counter;
-- ARGV[1] workflow key, ARGV[2] version id. Returns 1 if disabled.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('INCR', KEYS[3])
  return 1
end
return 0
