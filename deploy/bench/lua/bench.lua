-- The wrk engine of `rayhook bench`: bodies round-robin with {{seq}} and
-- {{uuid}} substituted, the webhook paths round-robin, the fixed headers, a
-- signature per request (hmac.lua), and a count of reply statuses printed as
-- one RAYHOOK-BENCH line of JSON. The settings (BODY_FILES, CONTENT_TYPES,
-- PATHS, HEADERS, SIGN, SIGN_KEY, SIGN_HEADER) are prepended by deploy/bench/wrk.py.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  seq = tid * 1000000000
  math.randomseed(os.time() + tid * 7919)
  bodies = {}
  for i, path in ipairs(BODY_FILES) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
  idx = 0
  pidx = tid
  if SIGN ~= "" then key = hmac_key(SIGN_KEY) end
end

local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0xffffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffffffffff))
end

local function headers_for(body)
  local headers = {}
  for name, value in pairs(HEADERS) do headers[name] = value end
  headers["Content-Type"] = CONTENT_TYPES[idx]
  if SIGN == "" then return headers end
  local ts = tostring(os.time())
  if SIGN == "stripe" then
    headers["Stripe-Signature"] = "t=" .. ts .. ",v1=" .. to_hex(hmac_sha256(key, ts .. "." .. body))
  elseif SIGN == "github" then
    headers["X-Hub-Signature-256"] = "sha256=" .. to_hex(hmac_sha256(key, body))
  elseif SIGN == "hmac-sha256" then
    headers[SIGN_HEADER] = to_hex(hmac_sha256(key, body))
  elseif SIGN == "slack" then
    headers["X-Slack-Request-Timestamp"] = ts
    headers["X-Slack-Signature"] = "v0=" .. to_hex(hmac_sha256(key, "v0:" .. ts .. ":" .. body))
  elseif SIGN == "standard-webhooks" then
    local id = "msg_bench_" .. tid .. "_" .. seq
    headers["webhook-id"] = id
    headers["webhook-timestamp"] = ts
    headers["webhook-signature"] = "v1," .. to_base64(hmac_sha256(key, id .. "." .. ts .. "." .. body))
  end
  return headers
end

function request()
  idx = idx % #bodies + 1
  seq = seq + 1
  pidx = pidx % #PATHS + 1
  local body = bodies[idx]:gsub("{{%s*seq%s*}}", tostring(seq)):gsub("{{%s*uuid%s*}}", uuid)
  return wrk.format("POST", PATHS[pidx], headers_for(body), body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do agg[code] = (agg[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(agg) do table.insert(parts, string.format('"%d": %d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    '\nRAYHOOK-BENCH {"requests": %d, "duration_us": %d, "errors": %d, "p50": %d, ' ..
    '"p90": %d, "p99": %d, "max": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
