"""A steady webhook load in a background thread, for fault injection: every
request carries a unique event id; the replies say which were accepted (2xx,
with the execution id) and when the service answered again after a fault."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Outcome:
    sent: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # event id → execution id
    refused: dict[int, int] = field(default_factory=dict)  # status (0: no answer) → count
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (time, 2xx)

    def first_success_after(self, moment: float) -> float | None:
        for at, ok in self.answers:
            if at >= moment and ok:
                return at
        return None


class Load:
    """Posts `{"id": <unique>, "amount": n}` to `url` (or to each of a list of
    URLs in turn) from `connections` concurrent clients, each pausing `pause` s
    between requests."""

    def __init__(self, url: str | list[str], *, connections: int = 8, pause: float = 0.005) -> None:
        self.urls = itertools.cycle([url] if isinstance(url, str) else url)
        self.connections, self.pause = connections, pause
        self.outcome = Outcome()
        self._stop = threading.Event()
        self.paused = threading.Event()  # set: the clients send nothing
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._ids = itertools.count(1)
        self._prefix = f"evt{time.monotonic_ns()}"

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Outcome:
        self._stop.set()
        self._thread.join(60)
        return self.outcome

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.connections)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        out = self.outcome
        while not self._stop.is_set():
            if self.paused.is_set():
                await asyncio.sleep(0.05)
                continue
            event_id = f"{self._prefix}-{next(self._ids)}"
            out.sent += 1
            try:
                reply = await client.post(
                    next(self.urls), json={"id": event_id, "amount": out.sent}
                )
                status = reply.status_code
            except httpx.HTTPError:
                status = 0
                await asyncio.sleep(0.05)
            ok = 200 <= status < 300
            out.answers.append((time.monotonic(), ok))
            if ok:
                out.accepted[event_id] = reply.headers["x-rayhook-execution"]
            else:
                out.refused[status] = out.refused.get(status, 0) + 1
            await asyncio.sleep(self.pause)
