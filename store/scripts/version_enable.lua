-- Make a version the current and enabled one of its key; the previous one is
-- thereby disabled (at most one enabled version per key).
-- KEYS[1] current hash, KEYS[2] enabled hash, KEYS[3] inboxes-changed counter;
-- ARGV[1] workflow key, ARGV[2] version id
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('INCR', KEYS[3])
end
return 1
