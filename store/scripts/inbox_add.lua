-- Accept an async event only while its workflow version is the enabled one, so a
-- stale route cache can never queue an event that no supervisor will drain; with
-- deduplication, only the first delivery of an event id is queued.
-- A workflow whose backlog (its stream's length: entries not yet final) reached
-- the cap takes nothing more until it drains (backpressure, SPEC §9).
-- KEYS[1] enabled hash, KEYS[2] inbox stream, KEYS[3] dedupe key (any key without)
-- ARGV[1] workflow key, ARGV[2] version id the ingress routed to, ARGV[3] payload,
-- ARGV[4] dedupe window in seconds or '', ARGV[5] the event's execution id,
-- ARGV[6] the backlog cap
-- Returns {1, entry id, backlog before it} | {0, ""} (no enabled version) |
-- {-1, enabled id} (stale route) | {2, first execution id} (a repeated delivery) |
-- {3, backlog} (full)
local enabled = redis.call('HGET', KEYS[1], ARGV[1])
if not enabled then
  return {0, ''}
end
if enabled ~= ARGV[2] then
  return {-1, enabled}
end
if ARGV[4] ~= '' then
  local first = redis.call('GET', KEYS[3])
  if first then
    return {2, first}
  end
end
local backlog = redis.call('XLEN', KEYS[2])
if backlog >= tonumber(ARGV[6]) then
  return {3, tostring(backlog)}
end
local entry = redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[4])
end
return {1, entry, backlog}
