"""Dedupe (`config.dedupe`): a repeated delivery of an event id within the
workflow's window is answered like the first, and starts nothing.

One Redis key per delivered id (`dedupe:{key}:{digest}`, the first delivery's
execution id), claimed two ways:
- async: by the inbox's own script (`inbox_add.lua`), atomically with the
  XADD; `Inbox.add` raises `Deduplicated` for a repeat;
- sync: by `SyncDedupe.claim` before the call; the first delivery's reply is
  kept for the window (`…:reply`) for the repeats, and a claim whose call was
  not served is released so the provider's retry runs."""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from store.batching import PipelineBatcher
from store.errors import raises_store_error
from store.keys import Keys


def digest(event_id: str) -> str:
    """A fixed-size key part for any event id a provider may send."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


class Deduplicated(Exception):
    """A repeated delivery of an event id inside the dedupe window: nothing was
    queued; `execution_id` is the first delivery's execution."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id


@raises_store_error
class SyncDedupe:
    """The claims of sync deliveries' ids and the replies kept for repeats."""

    def __init__(self, client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher) -> None:
        self.client = client
        self.keys = keys
        self.batcher = batcher

    async def claim(
        self, key: str, event_digest: str, execution_id: str, window: int
    ) -> str | None:
        """None when this delivery is the first (it now owns the id); otherwise
        the execution id of the first delivery."""
        name = self.keys.dedupe(key, event_digest)
        claimed = await self.batcher.submit("SET", name, execution_id, "NX", "EX", window)
        if claimed:
            return None
        first = await self.client.get(name)
        return first.decode() if first else None

    async def remember_reply(self, key: str, event_digest: str, reply: bytes, window: int) -> None:
        name = self.keys.dedupe_reply(key, event_digest)
        await self.batcher.submit("SET", name, reply, "EX", window)

    async def reply(self, key: str, event_digest: str) -> bytes | None:
        return await self.client.get(self.keys.dedupe_reply(key, event_digest))

    async def release(self, key: str, event_digest: str) -> None:
        """Forget a claim whose delivery could not be served (so a retry runs)."""
        await self.batcher.submit("DEL", self.keys.dedupe(key, event_digest))
