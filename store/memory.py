"""Redis's memory, read for backpressure (SPEC §9): refuse what cannot be kept
safely, before accepting it.

Redis runs with `maxmemory` and `noeviction`: past its high watermark an async
webhook gets 503 with `Retry-After` and a JSON error naming the cause, and the
provider retries later; what was acknowledged before is untouched and keeps
running (the room above the watermark is for it). Each worker reads Redis's
memory in the background, so a request pays nothing for the check: every
`POLL_SECONDS` while webhooks arrive, every `QUIET_POLL_SECONDS` while none do
(each read wakes an idle worker and Redis: on an idle stack the reads were a
third of a worker's CPU), and at once when the first webhook after a quiet
spell asks: that one webhook is judged on a reading up to QUIET_POLL_SECONDS
old (other workers may have accepted meanwhile), and the room above the
watermark absorbs that. The per-workflow backlog cap is checked inside the inbox's
own script (`store/scripts/inbox_add.lua`), atomically with the XADD."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from store.errors import raises_store_error

log = logging.getLogger("rayhook.backpressure")

POLL_SECONDS = 0.5
QUIET_POLL_SECONDS = 5.0


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
    _asked: bool = False  # a webhook asked since the last read
    _quiet: asyncio.Event | None = None  # set to end a quiet spell's wait

    def above_watermark(self) -> bool:
        """Whether webhooks are refused now (as last read). Asking keeps the
        reads frequent, and ends a quiet spell's long wait at once."""
        self._asked = True
        if self._quiet is not None:
            self._quiet.set()
        return self.high

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
            if self._asked:
                self._asked = False
                await asyncio.sleep(POLL_SECONDS)
                continue
            self._quiet = asyncio.Event()
            try:
                await asyncio.wait_for(self._quiet.wait(), QUIET_POLL_SECONDS)
            except TimeoutError:
                pass
            finally:
                self._quiet = None
