-- Store an execution's state and move it between the status indexes, atomically;
-- with an inbox entry, acknowledge and delete that entry in the same step, so a
-- final status and its XACK can never be seen apart (exactly-once effect). A final
-- status is never overwritten: a duplicate run (a redelivered entry) only acks.
-- One call per execution carries its job records, its run count, the timers of
-- its waiting delay nodes and the events it queues (the resume of its caller
-- when it was a subflow, the starts of its async subflows), so none of these can
-- be lost between two writes, and a child never starts before its caller's wait
-- is recorded. A sync call's reply can travel with it (ARGV[12], ARGV[13]):
-- published only when this call stores the run's end, it reaches the caller
-- with the save's fsync, one round trip instead of two.
-- Modes: 'hot' keeps a running or waiting execution under its own keys; 'final'
-- queues it, with all its jobs, on the history stream for the history writer
-- (its hot keys go; it stays in the status hash and indexes, and `moving` maps
-- it to its stream entry, until the writer has committed it to SQL); 'drop'
-- forgets it (an execution the workflow does not keep).
-- KEYS[1] execution JSON key, KEYS[2] jobs hash, KEYS[3] status hash,
-- KEYS[4] inbox stream (or any key when ARGV[7] is empty), KEYS[5] the version's
-- run counter, KEYS[6] timers zset, KEYS[7] timer payloads hash, KEYS[8] inboxes-changed counter,
-- KEYS[9] history stream, KEYS[10] moving hash, KEYS[11] timers-due index,
-- KEYS[12] draining set
-- ARGV[1] execution id, ARGV[2] mode, ARGV[3] execution JSON, ARGV[4] new status
-- ('null' while queued), ARGV[5] score (created ms), ARGV[6] index prefix of all
-- executions, ARGV[7] inbox entry id or '', ARGV[8] consumer group,
-- ARGV[9] index prefix of the workflow key, ARGV[10] '1' to count a run of the
-- version, ARGV[11] T timers, ARGV[12] the channel of a sync call's reply or '',
-- ARGV[13] that reply, then T × (fire-at ms, member, payload), then the
-- execution's workflow key, Q events to queue, then Q × (inbox stream, workflow
-- key, payload), then job id, job JSON pairs. Index names follow
-- store/keys.py: <prefix> and <prefix>:s:<status>.
local id, mode = ARGV[1], ARGV[2]
local timers = tonumber(ARGV[11])
local key_at = 14 + 3 * timers
local queued = tonumber(ARGV[key_at + 1])
local jobs_at = key_at + 2 + 3 * queued
local function ack()
  if ARGV[7] ~= '' then
    redis.call('XACK', KEYS[4], ARGV[8], ARGV[7])
    redis.call('XDEL', KEYS[4], ARGV[7])
  end
end
local old = redis.call('HGET', KEYS[3], id)
if old and old ~= 'null' and old ~= '0' and mode ~= 'drop' then
  ack()
  return 0
end
if old then
  redis.call('ZREM', ARGV[6] .. ':s:' .. old, id)
  redis.call('ZREM', ARGV[9] .. ':s:' .. old, id)
end
local function index()
  redis.call('HSET', KEYS[3], id, ARGV[4])
  redis.call('ZADD', ARGV[6], ARGV[5], id)
  redis.call('ZADD', ARGV[9], ARGV[5], id)
  redis.call('ZADD', ARGV[6] .. ':s:' .. ARGV[4], ARGV[5], id)
  redis.call('ZADD', ARGV[9] .. ':s:' .. ARGV[4], ARGV[5], id)
end
if mode == 'hot' then
  redis.call('SET', KEYS[1], ARGV[3])
  for i = jobs_at, #ARGV, 2 do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  index()
elseif mode == 'final' then
  local jobs = {}
  if redis.call('EXISTS', KEYS[2]) == 1 then
    -- jobs written while it ran (or before it waited): merged with the last ones
    for i = jobs_at, #ARGV, 2 do
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    end
    jobs = redis.call('HVALS', KEYS[2])
  else
    for i = jobs_at + 1, #ARGV, 2 do
      jobs[#jobs + 1] = ARGV[i]
    end
  end
  redis.call('DEL', KEYS[1], KEYS[2])
  local entry = redis.call('XADD', KEYS[9], '*', 'x', ARGV[3], 'j', '[' .. table.concat(jobs, ',') .. ']')
  redis.call('HSET', KEYS[10], id, entry)
  index()
else
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', ARGV[6], id)
  redis.call('ZREM', ARGV[9], id)
end
for i = 0, timers - 1 do
  local at = 14 + 3 * i
  redis.call('ZADD', KEYS[6], ARGV[at], ARGV[at + 1])
  redis.call('HSET', KEYS[7], ARGV[at + 1], ARGV[at + 2])
  -- the workflow's earliest timer, in the index the executors watch
  redis.call('ZADD', KEYS[11], 'LT', ARGV[at], ARGV[key_at])
end
for i = 0, queued - 1 do
  local at = key_at + 2 + 3 * i
  redis.call('XADD', ARGV[at], '*', 'e', ARGV[at + 2])
  if redis.call('SADD', KEYS[12], ARGV[at + 1]) == 1 then
    redis.call('INCR', KEYS[8])
  end
end
if ARGV[10] == '1' then
  redis.call('INCR', KEYS[5])
end
ack()
if ARGV[12] ~= '' then
  redis.call('PUBLISH', ARGV[12], ARGV[13])
end
return 1
