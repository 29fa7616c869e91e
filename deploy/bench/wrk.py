"""The `wrk` engine: wrk's C event loop with a Lua script (`lua/`) that sends
the bodies round-robin (substituting `{{seq}}`/`{{uuid}}`), signs each request
when asked, and counts reply statuses. Closed loop only."""

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
from deploy.bench.signing import Signer

_LUA = Path(__file__).with_name("lua")


def script(
    body_files: list[str],
    content_types: list[str],
    paths: list[str],
    headers: list[tuple[str, str]],
    signer: Signer | None,
) -> str:
    """The Lua script for one run: its settings, then hmac.lua and bench.lua."""
    settings = [
        f"BODY_FILES = {_lua_list(body_files)}",
        f"CONTENT_TYPES = {_lua_list(content_types)}",
        f"PATHS = {_lua_list(paths)}",
        "HEADERS = {"
        + ", ".join(f"[{_lua_string(n)}] = {_lua_string(v)}" for n, v in headers)
        + "}",
        f"SIGN = {_lua_string(signer.scheme if signer else '')}",
        f"SIGN_KEY = {_lua_bytes(signer.key if signer else b'')}",
        f"SIGN_HEADER = {_lua_string(signer.header if signer else '')}",
    ]
    return "\n".join([*settings, (_LUA / "hmac.lua").read_text(), (_LUA / "bench.lua").read_text()])


def _lua_bytes(data: bytes) -> str:
    """Any bytes as a Lua literal (three-digit decimal escapes: nothing to misread)."""
    return '"' + "".join(f"\\{b:03d}" for b in data) + '"'


def _lua_string(text: str) -> str:
    return _lua_bytes(text.encode())


def _lua_list(items: list[str]) -> str:
    return "{" + ", ".join(_lua_string(item) for item in items) + "}"


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
    headers: list[tuple[str, str]] | None = None,
    signer: Signer | None = None,
) -> Result:
    urls = [urls] if isinstance(urls, str) else urls
    webhook_paths = [
        (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for parts in map(urlsplit, urls)
    ]
    fixed = [("User-Agent", "rayhook-bench"), *(headers or ())]
    if basic:
        fixed.append(("Authorization", "Basic " + base64.b64encode(basic.encode()).decode()))
    with tempfile.TemporaryDirectory(prefix="rayhook-wrk-") as folder:
        paths = []
        for i, template in enumerate(bodies.templates):
            path = Path(folder) / f"body{i}"
            path.write_bytes(template)
            paths.append(str(path))
        lua = Path(folder) / "bench.lua"
        lua.write_text(script(paths, bodies.content_types, webhook_paths, fixed, signer))
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
                str(lua),
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
        load=f"concurrency {concurrency}",
    )
