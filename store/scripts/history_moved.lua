-- Forget the Redis copies of final executions: committed to SQL by the history
-- writer, or destroyed through the admin API. Their history stream entries are
-- acknowledged and deleted; their `moving` map entries, statuses and index
-- entries go. An execution whose `moving` entry points elsewhere (it was queued
-- again since) keeps its newer copy.
-- KEYS[1] history stream, KEYS[2] moving hash, KEYS[3] status hash
-- ARGV[1] consumer group, ARGV[2] index prefix of all executions, ARGV[3] the
-- prefix of destroyed-execution markers, ARGV[4] how long a marker lasts (s):
-- 0 when the writer calls, then per execution: id, stream entry id, index
-- prefix of its workflow key, status.
-- A destroy leaves a marker per execution it forgot. The writer's call returns
-- the ids it finds destroyed (marked): it committed them meanwhile, so their
-- rows must be deleted again. An id with neither a copy nor a marker was
-- forgotten by an earlier run of this same call (its reply was lost and the
-- client sent it again): nothing to do, and its rows stay.
local destroying = tonumber(ARGV[4]) > 0
local gone = {}
for i = 5, #ARGV, 4 do
  local id, entry, by_key, status = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local marker = ARGV[3] .. id
  redis.call('XACK', KEYS[1], ARGV[1], entry)
  redis.call('XDEL', KEYS[1], entry)
  local moving = redis.call('HGET', KEYS[2], id)
  if moving == entry then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', ARGV[2], id)
    redis.call('ZREM', ARGV[2] .. ':s:' .. status, id)
    redis.call('ZREM', by_key, id)
    redis.call('ZREM', by_key .. ':s:' .. status, id)
    if destroying then
      redis.call('SET', marker, '1', 'EX', ARGV[4])
    end
  elseif not moving and not destroying and redis.call('DEL', marker) == 1 then
    gone[#gone + 1] = id
  end
end
return gone
