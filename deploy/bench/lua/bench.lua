-- The wrk engine of `rayhook bench`: bodies round-robin with {{seq}} and
-- {{uuid}} substituted, the webhook paths round-robin, the fixed headers, a
-- signature per request (hmac.lua), and a count of reply statuses printed as
-- one RAYHOOK-BENCH line of JSON. The settings (BODY_FILES, CONTENT_TYPES,
-- PATHS, HEADERS, SIGN, SIGN_KEY, SIGN_HEADER) are prepended by deploy/bench/wrk.py.
-- wrk shares the machine with the server it loads: each request only joins
-- parts found once in init (a pattern search over the body per request took
-- about 40 % of wrk's CPU, docs/performance.md).
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  seq = tid * 1000000000
  math.randomseed(os.time() + tid * 7919)
  bodies, unsigned_headers = {}, {}
  for i, path in ipairs(BODY_FILES) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = parts_of(f:read("*a"))
    f:close()
    unsigned_headers[i] = fixed_headers(i)
  end
  idx = 0
  pidx = tid
  if SIGN ~= "" then key = hmac_key(SIGN_KEY) end
end

-- A body template as its literal parts and its placeholders ({"seq"} or
-- {"uuid"}, spaces allowed inside the braces); any other {{...}} stays as it is.
function parts_of(template)
  local parts, at, from = {}, 1, 1
  while true do
    local s, e, name = template:find("{{%s*(%a+)%s*}}", from)
    if not s then break end
    if name == "seq" or name == "uuid" then
      table.insert(parts, template:sub(at, s - 1))
      table.insert(parts, {name})
      at = e + 1
    end
    from = e + 1
  end
  table.insert(parts, template:sub(at))
  return parts
end

function fixed_headers(i)
  local headers = {}
  for name, value in pairs(HEADERS) do headers[name] = value end
  headers["Content-Type"] = CONTENT_TYPES[i]
  return headers
end

local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0xffffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffffffffff))
end

local function headers_for(body)
  if SIGN == "" then return unsigned_headers[idx] end
  local headers = fixed_headers(idx)
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
  local parts, out, seq_text = bodies[idx], {}, tostring(seq)
  for i = 1, #parts do
    local part = parts[i]
    if type(part) == "string" then
      out[i] = part
    elseif part[1] == "seq" then
      out[i] = seq_text
    else
      out[i] = uuid()
    end
  end
  local body = table.concat(out)
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
