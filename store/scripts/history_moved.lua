-- Forget the Redis copies of executions the history writer has committed to SQL:
-- their history stream entries (acknowledged and deleted), their `moving` map
-- entries, their statuses and index entries. An execution whose `moving` entry
-- points elsewhere (it was queued again since) keeps its newer copy.
-- KEYS[1] history stream, KEYS[2] moving hash, KEYS[3] status hash
-- ARGV[1] consumer group, ARGV[2] index prefix of all executions, then per
-- execution: id, stream entry id, index prefix of its workflow key, status.
-- Returns the ids whose `moving` entry was gone: destroyed while the writer
-- committed them, so their rows must be deleted again.
local gone = {}
for i = 3, #ARGV, 4 do
  local id, entry, by_key, status = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  redis.call('XACK', KEYS[1], ARGV[1], entry)
  redis.call('XDEL', KEYS[1], entry)
  if redis.call('HGET', KEYS[2], id) == entry then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', ARGV[2], id)
    redis.call('ZREM', ARGV[2] .. ':s:' .. status, id)
    redis.call('ZREM', by_key, id)
    redis.call('ZREM', by_key .. ':s:' .. status, id)
  elseif not redis.call('HGET', KEYS[2], id) then
    gone[#gone + 1] = id
  end
end
return gone
