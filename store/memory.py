"""Redis's memory, read for backpressure (SPEC §9): refuse what cannot be kept
safely, before accepting it.

Redis runs with `maxmemory` and `noeviction`: past its high watermark an async
webhook gets 503 with `Retry-After` and a JSON error naming the cause, and the
provider retries later; what was acknowledged before is untouched and keeps
running (the room above the watermark is for it). Each worker reads Redis's
memory every `POLL_SECONDS` in the background, so a request pays nothing for
the check. The per-workflow backlog cap is checked inside the inbox's own
script (`store/scripts/inbox_add.lua`), atomically with the XADD."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from store.errors import raises_store_error

log = logging.getLogger("rayhook.backpressure")

POLL_SECONDS = 0.5


@raises_store_error
@dataclass
class RedisMemory:
    """Attributes: `used` and `limit` (Redis's maxmemory; 0 = none) in bytes, as
    last read, and `high` (used above the watermark share of the limit)."""

    client: aioredis.Redis
    watermark: float
    used: int = 0
    limit: int = 0
    high: bool = False
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def read(self) -> None:
        info = await self.client.info("memory")
        self.used, self.limit = int(info["used_memory"]), int(info.get("maxmemory") or 0)
        high = bool(self.limit) and self.used >= self.watermark * self.limit
        if high != self.high:
            log.warning(
                "redis memory %s the high watermark: %d of %d bytes (%.0f %%)%s",
                "above" if high else "back below",
                self.used,
                self.limit,
                100 * self.watermark,
                "; async webhooks are refused with 503" if high else "",
            )
        self.high = high

    async def _watch(self) -> None:
        while True:
            try:
                await self.read()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: requests meet that themselves (503)
                pass
            await asyncio.sleep(POLL_SECONDS)
