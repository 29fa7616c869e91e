-- Take over inbox entries left idle by other consumers (a dead or retired
-- executor), over many inboxes in one call: only inboxes holding entries are
-- asked (XLEN is O(1)), so an idle deployment of many workflows costs one
-- round trip, not one XAUTOCLAIM per inbox. An inbox without the group (dropped
-- meanwhile) is skipped.
-- KEYS inbox streams; ARGV[1] consumer group, ARGV[2] consumer, ARGV[3] min idle
-- ms, ARGV[4] at most this many per inbox.
-- Returns {index of the stream in KEYS (1-based), claimed entries, ...} for the
-- inboxes where something was claimed (entries as XAUTOCLAIM returns them).
local out = {}
for i, stream in ipairs(KEYS) do
  if redis.call('XLEN', stream) > 0 then
    local reply = redis.pcall('XAUTOCLAIM', stream, ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
    if type(reply) == 'table' and not reply.err and #reply[2] > 0 then
      out[#out + 1] = i
      out[#out + 1] = reply[2]
    end
  end
end
return out
