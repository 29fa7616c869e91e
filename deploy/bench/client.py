"""The asyncio engine: a minimal HTTP/1.1 keep-alive client (enough for POSTing
webhooks and reading the reply), closed loop or open loop (a constant rate, a
ramp or a burst), signing each request when asked."""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from deploy.bench.arrivals import Arrivals, Constant, Ramp
from deploy.bench.bodies import Bodies
from deploy.bench.result import Result, summarize
from deploy.bench.signing import Signer
from deploy.bench.timeline import FAILED, Recorder

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.I)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.I)
REQUEST_TIMEOUT = 30.0

Progress = Callable[[int, int, Counter[int]], None]


@dataclass
class Target:
    """Where the load goes: one host:port, one or more webhook paths (used
    round-robin, so several workflows receive traffic at once), the headers
    every request carries, and the signer that adds a signature to each."""

    host: str
    port: int
    heads: list[bytes]  # per path: request line and the fixed headers
    signer: Signer | None = None
    _turn: int = 0
    _type_lines: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def parse(
        cls,
        urls: str | list[str],
        basic: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        signer: Signer | None = None,
    ) -> Target:
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
            lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: rayhook-bench"]
            if basic:
                lines.append("Authorization: Basic " + base64.b64encode(basic.encode()).decode())
            lines += [f"{name}: {value}" for name, value in headers or ()]
            heads.append(("\r\n".join(lines) + "\r\n").encode())
        return cls(host, port, heads, signer)

    def request(self, body: bytes, content_type: str) -> bytes:
        """One request's bytes: the next path's head, the body's type, its signature."""
        self._turn = (self._turn + 1) % len(self.heads)
        type_line = self._type_lines.get(content_type)
        if type_line is None:
            type_line = self._type_lines[content_type] = (
                f"Content-Type: {content_type}\r\n".encode()
            )
        signature = b""
        if self.signer is not None:
            signature = "".join(f"{n}: {v}\r\n" for n, v in self.signer.headers(body)).encode()
        length = b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        return self.heads[self._turn] + type_line + signature + length + body


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, body: bytes, content_type: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        assert self.reader is not None
        self.writer.write(self.target.request(body, content_type))
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
    """Counts for the summary and the live progress; every request also goes
    to the recorder (for the timeline), with offsets from the run's start."""

    started: float
    recorder: Recorder
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def record(self, status: int, due: float) -> None:
        done = time.perf_counter()
        self.latencies.append(done - due)
        self.statuses[status] += 1
        self.recorder.record(due - self.started, done - self.started, status)

    def fail(self, due: float, done: float | None = None) -> None:
        self.errors += 1
        done = time.perf_counter() if done is None else done
        self.recorder.record(due - self.started, done - self.started, FAILED)


async def _send(conn: Connection, bodies: Bodies, tally: _Tally, due: float) -> None:
    body, content_type = bodies.next()
    try:
        status = await asyncio.wait_for(conn.request(body, content_type), REQUEST_TIMEOUT)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        conn.close()
        tally.fail(due)
        return
    tally.record(status, due)


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
    recorder: Recorder | None = None,
) -> Result:
    """`concurrency` connections, each sending its next request when the last
    one is answered."""
    started = time.perf_counter()
    recorder = recorder or Recorder()
    recorder.started = started
    tally = _Tally(started, recorder)
    stop = asyncio.Event()
    deadline = started + duration

    async def worker() -> None:
        conn = Connection(target)
        while time.perf_counter() < deadline:
            await _send(conn, bodies, tally, time.perf_counter())
        conn.close()

    reporter = asyncio.create_task(_report(tally, progress, stop))
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stop.set()
    await reporter
    result = summarize(
        engine="python",
        mode="concurrency",
        target=concurrency,
        duration=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        errors=tally.errors,
    )
    result.load = f"concurrency {concurrency}"
    result.timeline = recorder.timeline(elapsed, None)
    return result


async def open_loop(
    target: Target,
    bodies: Bodies,
    *,
    arrivals: Arrivals,
    duration: float,
    max_connections: int,
    progress: Progress | None = None,
    recorder: Recorder | None = None,
    p99_bound_ms: float | None = None,
) -> Result:
    """Requests sent when `arrivals` says they are due, whatever the server
    does; latency counts from that time (no coordinated omission). Requests
    still waiting for a free connection when the time is up count as errors.
    A ramp also reports where the server saturated."""
    started = time.perf_counter()
    recorder = recorder or Recorder()
    recorder.started = started
    tally = _Tally(started, recorder)
    stop = asyncio.Event()
    due: asyncio.Queue[float] = asyncio.Queue()
    deadline = started + duration

    async def worker() -> None:
        conn = Connection(target)
        while True:
            scheduled = await due.get()
            if scheduled < 0:
                break
            await _send(conn, bodies, tally, scheduled)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(max_connections)]
    reporter = asyncio.create_task(_report(tally, progress, stop))
    issued = 0
    while (now := time.perf_counter()) < deadline:
        should = math.floor(arrivals.due(now - started))
        while issued < should:
            issued += 1
            due.put_nowait(started + arrivals.time_of(issued))
        await asyncio.sleep(0.002)
    # What is due by the end is offered too (the last tick fell just before it),
    # and a free connection takes it before the queue is closed.
    while issued < math.floor(arrivals.due(duration) + 1e-9):
        issued += 1
        due.put_nowait(started + arrivals.time_of(issued))
    await asyncio.sleep(0)
    ended = time.perf_counter()
    while not due.empty():
        tally.fail(due.get_nowait(), ended)
    for _ in workers:
        due.put_nowait(-1.0)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    stop.set()
    await reporter
    result = summarize(
        engine="python",
        mode="rate",
        target=arrivals.per_second if isinstance(arrivals, Constant) else arrivals.rate(duration),
        duration=elapsed,
        latencies=tally.latencies,
        statuses=tally.statuses,
        errors=tally.errors,
    )
    result.load = arrivals.label()
    result.timeline = recorder.timeline(duration, arrivals.due)
    if isinstance(arrivals, Ramp):
        result.saturation = recorder.saturation(duration, arrivals.due, p99_bound_ms)
    return result
