"""What integration nodes use to reach the outside world (HTTP, SQL, SMTP, a JS
sandbox): shared per process, created lazily inside the running event loop, and
owned by whoever runs executions (an ExecutionActor, or a test). Pure nodes
never touch it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec

from engine.records import Execution, Job
from engine.settings import Settings

log = logging.getLogger("rayhook.effects")

T = TypeVar("T")


class SubflowOutcome(msgspec.Struct, kw_only=True):
    """A called workflow's end (`queued`: an async child, its end comes later)."""

    executionId: str
    queued: bool = False
    status: int | None = None
    output: Any = None


class SubflowRunner(Protocol):
    """What runs a called workflow: the ExecutionActor, which has the store."""

    async def call(
        self, *, key: str, context: Any, parent: Execution, job: Job
    ) -> SubflowOutcome: ...


class Effects:
    """Attributes: `settings` (allow-lists, data sources, limits). Clients (the
    request node's HTTP client, the sql node's pools, the script node's V8
    threads) are opened on first use by `client`, inside the running event loop,
    and closed by `aclose`.

    Example, in a node's `run`::

        pool = await run.effects.client("sql:main", open_pool, close_pool)
    """

    def __init__(self, settings: Settings, subflows: SubflowRunner | None = None) -> None:
        self.settings = settings
        self.subflows = subflows
        self._clients: dict[str, asyncio.Future[Any]] = {}
        self._closers: dict[str, Callable[[Any], Awaitable[None]]] = {}

    async def client(
        self,
        name: str,
        open: Callable[[Settings], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> T:
        """The client called `name`, opened by `open(settings)` on first use.

        Concurrent first uses share one opening; an opening that failed is
        forgotten, so that the next use tries again."""
        opening = self._clients.get(name)
        if opening is None:
            opening = asyncio.ensure_future(open(self.settings))
            self._clients[name] = opening
            self._closers[name] = close
        try:
            # Shielded: a caller that is canceled (a workflow timeout) must not
            # cancel an opening that other callers share.
            value: T = await asyncio.shield(opening)
        except BaseException:
            failed = opening.done() and (opening.cancelled() or opening.exception() is not None)
            if failed and self._clients.get(name) is opening:
                del self._clients[name], self._closers[name]
            raise
        return value

    async def aclose(self) -> None:
        """Close every client opened so far."""
        clients, closers = self._clients, self._closers
        self._clients, self._closers = {}, {}
        for name, opening in clients.items():
            if not opening.done():
                await asyncio.wait([opening])
            if opening.cancelled() or opening.exception() is not None:
                continue  # never opened: nothing to close
            try:
                await closers[name](opening.result())
            except Exception:
                log.warning("closing the %s client failed", name, exc_info=True)
