-- Disable a version if it is the enabled one (it stays current, as in NocoBase).
-- KEYS[1] enabled hash; ARGV[1] workflow key, ARGV[2] version id. Returns 1 if disabled.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
