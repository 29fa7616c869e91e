"""Redis's memory as the ingress watches it (store/memory.py), on the machine's
Redis: read often while webhooks arrive, rarely while none do, and at once for
the first webhook after a quiet spell."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from store import memory
from store.memory import RedisMemory


class CountedMemory(RedisMemory):
    """Notes when each read starts (the reads themselves are real)."""

    reads: list[float]

    async def read(self) -> None:
        self.reads.append(time.monotonic())
        await super().read()


async def test_reads_are_rare_while_nothing_asks_and_prompt_once_a_webhook_does(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(memory, "QUIET_POLL_SECONDS", 1.0)
    watched = CountedMemory(client, 0.9)
    watched.reads = []
    watched.start()
    try:
        await asyncio.sleep(0.6)
        assert len(watched.reads) == 1, "read again although no webhook asked"
        assert watched.used > 0

        asked = time.monotonic()
        assert watched.above_watermark() is False  # no maxmemory on this Redis
        await asyncio.sleep(0.1)
        assert len(watched.reads) >= 2 and watched.reads[1] - asked < 0.05

        while time.monotonic() - asked < 0.6:  # webhooks keep arriving
            watched.above_watermark()
            await asyncio.sleep(0.01)
        assert len(watched.reads) >= 8, "not every POLL_SECONDS while webhooks arrive"

        settled = len(watched.reads)
        await asyncio.sleep(0.5)  # quiet again: the read due for the last ask, then none
        assert len(watched.reads) <= settled + 2
    finally:
        await watched.stop()
