"""The asyncio engine: a minimal HTTP/1.1 keep-alive client (enough for POSTing
webhooks and reading the reply), closed loop or open loop."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from deploy.bench.bodies import Bodies
from deploy.bench.result import Result, summarize

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.I)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.I)
REQUEST_TIMEOUT = 30.0

Progress = Callable[[int, int, Counter[int]], None]


@dataclass
class Target:
    """Where the load goes: one host:port, one or more webhook paths (used
    round-robin, so several workflows receive traffic at once)."""

    host: str
    port: int
    heads: list[bytes]  # per path: request line and headers, up to Content-Length
    _turn: int = 0

    @classmethod
    def parse(cls, urls: str | list[str], basic: str | None = None) -> Target:
        urls = [urls] if isinstance(urls, str) else urls
        first = urlsplit(urls[0])
        host, port = first.hostname or "127.0.0.1", first.port or 80
        heads = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme != "http":
                raise ValueError("only http:// URLs are supported")
            if (parts.hostname or "127.0.0.1", parts.port or 80) != (host, port):
                raise ValueError("every URL must be on the same host and port")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            lines = [
                f"POST {path} HTTP/1.1",
                f"Host: {host}:{port}",
                "Content-Type: application/json",
                "User-Agent: rayhook-bench",
            ]
            if basic:
                lines.append("Authorization: Basic " + base64.b64encode(basic.encode()).decode())
            heads.append(("\r\n".join(lines) + "\r\nContent-Length: ").encode())
        return cls(host, port, heads)

    def next_head(self) -> bytes:
        self._turn = (self._turn + 1) % len(self.heads)
        return self.heads[self._turn]


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        assert self.reader is not None
        head = self.target.next_head()
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = _CONTENT_LENGTH.search(head)
        if length is not None:
            await self.reader.readexactly(int(length.group(1)))
        elif _CHUNKED.search(head):
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if _CLOSE.search(head):
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def record(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] += 1


async def _send(conn: Connection, body: bytes, tally: _Tally, started: float) -> None:
    try:
        status = await asyncio.wait_for(conn.request(body), REQUEST_TIMEOUT)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        conn.close()
        tally.errors += 1
        return
    tally.record(status, time.perf_counter() - started)


async def _report(tally: _Tally, progress: Progress | None, stop: asyncio.Event) -> None:
    while progress is not None and not stop.is_set():
        progress(len(tally.latencies), tally.errors, tally.statuses)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


async def closed_loop(
    target: Target,
    bodies: Bodies,
    *,
    concurrency: int,
    duration: float,
    progress: Progress | None = None,
) -> Result:
    """`concurrency` connections, each sending its next request when the last
    one is answered."""
    tally = _Tally()
    stop = asyncio.Event()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        conn = Connection(target)
        while time.perf_counter() < deadline:
            await _send(conn, bodies.next(), tally, time.perf_counter())
        conn.close()

    reporter = asyncio.create_task(_report(tally, progress, stop))
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stop.set()
    await reporter
    return summarize(
        engine="python",
        mode="concurrency",
        target=concurrency,
        duration=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        errors=tally.errors,
    )


async def open_loop(
    target: Target,
    bodies: Bodies,
    *,
    rate: float,
    duration: float,
    max_connections: int,
    progress: Progress | None = None,
) -> Result:
    """Requests scheduled at a fixed `rate`, whatever the server does; latency
    counts from the scheduled time (no coordinated omission). Requests still
    waiting for a free connection when the time is up count as errors."""
    tally = _Tally()
    stop = asyncio.Event()
    due: asyncio.Queue[float] = asyncio.Queue()
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        conn = Connection(target)
        while True:
            scheduled = await due.get()
            if scheduled < 0:
                break
            await _send(conn, bodies.next(), tally, scheduled)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(max_connections)]
    reporter = asyncio.create_task(_report(tally, progress, stop))
    issued = 0
    while (now := time.perf_counter()) < deadline:
        should = int((now - started) * rate)
        while issued < should:
            issued += 1
            due.put_nowait(started + issued / rate)
        await asyncio.sleep(min(0.002, 1 / rate))
    unsent = due.qsize()
    while not due.empty():
        due.get_nowait()
    tally.errors += unsent
    for _ in workers:
        due.put_nowait(-1.0)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    stop.set()
    await reporter
    return summarize(
        engine="python",
        mode="rate",
        target=rate,
        duration=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        errors=tally.errors,
    )
