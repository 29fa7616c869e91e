"""The `wrk` engine: wrk's C event loop with a Lua script that sends the bodies
round-robin (substituting `{{seq}}`/`{{uuid}}`) and counts reply statuses."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from deploy.bench.bodies import Bodies
from deploy.bench.result import Result

_SCRIPT = r"""
local threads = {}
local body_files = {BODY_FILES}
local paths = {PATHS}
local auth = "AUTH"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  seq = tid * 1000000000
  math.randomseed(os.time() + tid * 7919)
  bodies = {}
  for i, path in ipairs(body_files) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
  idx = 0
  pidx = tid
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if auth ~= "" then wrk.headers["Authorization"] = auth end
end

local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0xffffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffffffffff))
end

function request()
  idx = idx % #bodies + 1
  seq = seq + 1
  pidx = pidx % #paths + 1
  local body = bodies[idx]:gsub("{{%s*seq%s*}}", tostring(seq)):gsub("{{%s*uuid%s*}}", uuid)
  return wrk.format(nil, paths[pidx], nil, body)
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
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def closed_loop(
    urls: str | list[str],
    bodies: Bodies,
    *,
    concurrency: int,
    duration: float,
    threads: int,
    basic: str | None = None,
) -> Result:
    urls = [urls] if isinstance(urls, str) else urls
    webhook_paths = [
        (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for parts in map(urlsplit, urls)
    ]
    with tempfile.TemporaryDirectory(prefix="rayhook-wrk-") as folder:
        paths = []
        for i, template in enumerate(bodies.templates):
            path = Path(folder) / f"body{i}.json"
            path.write_bytes(template)
            paths.append(str(path))
        auth = "Basic " + base64.b64encode(basic.encode()).decode() if basic else ""
        script = Path(folder) / "bench.lua"
        lua_files = "{" + ", ".join(json.dumps(p) for p in paths) + "}"
        lua_paths = "{" + ", ".join(json.dumps(p) for p in webhook_paths) + "}"
        script.write_text(
            _SCRIPT.replace("{BODY_FILES}", lua_files)
            .replace("{PATHS}", lua_paths)
            .replace("AUTH", auth)
        )
        completed = subprocess.run(
            [
                "wrk",
                "-t",
                str(max(1, min(threads, concurrency))),
                "-c",
                str(concurrency),
                "-d",
                f"{max(1, round(duration))}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                urls[0],
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=duration + 120,
        )
    line = next(
        (ln for ln in completed.stdout.splitlines() if ln.startswith("RAYHOOK-BENCH ")), None
    )
    if line is None:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout[-500:]}")
    data = json.loads(line.removeprefix("RAYHOOK-BENCH "))
    seconds = data["duration_us"] / 1e6
    statuses = Counter({int(k): v for k, v in data["statuses"].items()})
    answered = sum(statuses.values())
    return Result(
        engine="wrk",
        mode="concurrency",
        target=concurrency,
        duration=seconds,
        requests=data["requests"] + data["errors"],
        errors=data["errors"],
        rps=answered / seconds if seconds else 0.0,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        statuses={str(k): v for k, v in sorted(statuses.items())},
    )
