-- Accept an async event only while its workflow version is the enabled one, so a
-- stale route cache can never queue an event that no supervisor will drain.
-- KEYS[1] enabled hash, KEYS[2] inbox stream
-- ARGV[1] workflow key, ARGV[2] version id the ingress routed to, ARGV[3] payload
-- Returns {1, entry id} | {0, ""} (no enabled version) | {-1, enabled id} (stale route)
local enabled = redis.call('HGET', KEYS[1], ARGV[1])
if not enabled then
  return {0, ''}
end
if enabled ~= ARGV[2] then
  return {-1, enabled}
end
return {1, redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])}
