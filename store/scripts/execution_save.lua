-- Store an execution's state and move it between the status indexes, atomically;
-- with an inbox entry, acknowledge and delete that entry in the same step, so a
-- final status and its XACK can never be seen apart (exactly-once effect). A final
-- status is never overwritten: a duplicate run (a redelivered entry) only acks.
-- One call per execution carries its job records, its run count, the timers of
-- its waiting delay nodes and the event that resumes its caller (a subflow), so
-- none of these can be lost between two writes.
-- KEYS[1] execution JSON key, KEYS[2] jobs hash, KEYS[3] status hash,
-- KEYS[4] inbox stream (or any key when ARGV[6] is empty), KEYS[5] the version's
-- run counter, KEYS[6] timers zset, KEYS[7] timer payloads hash, KEYS[8] the
-- caller's inbox stream (any key when there is no caller to resume)
-- ARGV[1] execution id, ARGV[2] JSON ('' = delete the execution), ARGV[3] new status
-- ('null' while queued), ARGV[4] score (created ms), ARGV[5] index prefix of all
-- executions, ARGV[6] inbox entry id or '', ARGV[7] consumer group,
-- ARGV[8] index prefix of the workflow key, ARGV[9] '1' to count a run of the
-- version, ARGV[10] T timers, then T × (fire-at ms, member, payload), then the
-- caller's resume payload or '', then job id, job JSON pairs. Index names follow
-- store/keys.py: <prefix> and <prefix>:s:<status>.
local id = ARGV[1]
local timers = tonumber(ARGV[10])
local notify_at = 11 + 3 * timers
local jobs_at = notify_at + 1
local old = redis.call('HGET', KEYS[3], id)
if old and old ~= 'null' and old ~= '0' and ARGV[2] ~= '' then
  if ARGV[6] ~= '' then
    redis.call('XACK', KEYS[4], ARGV[7], ARGV[6])
    redis.call('XDEL', KEYS[4], ARGV[6])
  end
  return 0
end
if old then
  redis.call('ZREM', ARGV[5] .. ':s:' .. old, id)
  redis.call('ZREM', ARGV[8] .. ':s:' .. old, id)
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', ARGV[5], id)
  redis.call('ZREM', ARGV[8], id)
else
  redis.call('SET', KEYS[1], ARGV[2])
  if #ARGV >= jobs_at then
    redis.call('HSET', KEYS[2], unpack(ARGV, jobs_at))
  end
  redis.call('HSET', KEYS[3], id, ARGV[3])
  redis.call('ZADD', ARGV[5], ARGV[4], id)
  redis.call('ZADD', ARGV[8], ARGV[4], id)
  redis.call('ZADD', ARGV[5] .. ':s:' .. ARGV[3], ARGV[4], id)
  redis.call('ZADD', ARGV[8] .. ':s:' .. ARGV[3], ARGV[4], id)
end
for i = 0, timers - 1 do
  local at = 11 + 3 * i
  redis.call('ZADD', KEYS[6], ARGV[at], ARGV[at + 1])
  redis.call('HSET', KEYS[7], ARGV[at + 1], ARGV[at + 2])
end
if ARGV[notify_at] ~= '' then
  redis.call('XADD', KEYS[8], '*', 'e', ARGV[notify_at])
end
if ARGV[9] == '1' then
  redis.call('INCR', KEYS[5])
end
if ARGV[6] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[7], ARGV[6])
  redis.call('XDEL', KEYS[4], ARGV[6])
end
return 1
