"""`RaySession`: an ingress process's connection to Ray, opened when a request
needs it and closed again once idle.

A connected process is a Ray driver, whose core-worker threads cost about 0.3 %
of a core even when idle (docs/performance.md, "Idle cost"). The ingress needs
Ray only for what is rare (cancels, manual runs, node tests, the supervisors'
figures, and creating the actors at startup); sync calls and readiness go
through Redis. So a gunicorn worker is a driver only while it uses Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import ray

from engine.settings import Settings

log = logging.getLogger("rayhook.ray")


class RaySession:
    """Attributes: `settings` (`ray_idle_seconds`: a session unused this long is
    closed; opening one again takes about a second), `opened` (whether this object
    called `ray.init`: a session the process had before, as in tests, is
    borrowed and never closed here), `users` (calls in progress)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.opened = False
        self.users = 0
        self.generation = 0  # how many times this object connected
        self._last_use = 0.0
        self._lock = asyncio.Lock()
        self._closer: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return ray.is_initialized()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[None]:
        """Ray is connected inside the block (and not closed under it)."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Connect if needed; pair with `release`."""
        self.users += 1
        try:
            async with self._lock:
                if not ray.is_initialized():
                    handlers = _python_handlers()
                    await asyncio.to_thread(self._init)
                    _reinstall(handlers)
                    self.opened = True
                    self.generation += 1
                    log.info("connected to ray (on demand)")
        except BaseException:
            self.users -= 1
            raise

    def release(self) -> None:
        self.users -= 1
        self._last_use = time.monotonic()
        if self.opened and (self._closer is None or self._closer.done()):
            self._closer = asyncio.get_running_loop().create_task(self._close_when_idle())

    async def close(self) -> None:
        """Disconnect now if this object connected and nothing uses Ray."""
        async with self._lock:
            if self.opened and self.users == 0 and ray.is_initialized():
                handlers = _python_handlers()
                await asyncio.to_thread(ray.shutdown)
                _reinstall(handlers)
                self.opened = False
                log.info("disconnected from ray (idle)")

    async def stop(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
            await asyncio.gather(self._closer, return_exceptions=True)

    async def _close_when_idle(self) -> None:
        while self.opened:
            wait = self._last_use + self.settings.ray_idle_seconds - time.monotonic()
            if wait <= 0 and self.users == 0:
                await self.close()
                return
            await asyncio.sleep(max(wait, 0.1))

    def _init(self) -> None:
        ray.init(
            address=self.settings.ray_address or "auto",
            namespace=self.settings.namespace,
            log_to_driver=False,
        )


#: Signals a gunicorn worker handles. Ray's core worker installs its own handler
#: for some of them when it connects, and resets them to the default when it
#: disconnects: SIGTERM would then kill the worker at once instead of letting
#: its requests finish.
_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT", "SIGHUP", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def _python_handlers() -> dict[int, Any]:
    return {sig: signal.getsignal(sig) for sig in _SIGNALS}


def _reinstall(handlers: dict[int, Any]) -> None:
    """Put back the process's own signal handlers (main thread only, where the
    event loop runs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
