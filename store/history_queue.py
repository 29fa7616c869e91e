"""The Redis side of the move to the SQL history (SPEC §9): the history stream
that final executions wait on, read by the history writer through a consumer
group, and the step that forgets their Redis copies once SQL has committed them.

A crash anywhere loses nothing: an entry stays pending in the group until
`moved` ran, and a writer that restarts reads its pending entries again (the
SQL write is an idempotent upsert)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from store.connection import HISTORY_MOVED
from store.errors import raises_store_error
from store.history import ArchivedExecution, archived
from store.keys import HISTORY_GROUP, Keys

log = logging.getLogger("rayhook.history")

#: How long a destroyed execution's marker lasts: longer than a writer holds a
#: batch it could not commit (the SQL server down), within reason.
DESTROYED_MARKER_SECONDS = 86_400
#: Executions per `history_moved` call, and entries per read of the stream.
#: Redis runs one command at a time and every webhook waits behind it: one call
#: for a whole batch (400 executions under the sync benchmark) held it 6 ms on
#: average, 13 ms at most, five times a second (docs/performance.md). Calls this
#: small let the webhooks' commands in between.
MOVED_CHUNK = 100
READ_CHUNK = 200


@dataclass(frozen=True, slots=True)
class QueuedExecution:
    """One history stream entry: its id and the final execution it carries."""

    entry: str
    record: ArchivedExecution

    @property
    def copy(self) -> RedisCopy:
        return RedisCopy(self.record.id, self.entry, self.record.key, self.record.status)


@dataclass(frozen=True, slots=True)
class RedisCopy:
    """Where a final execution waits in Redis: its stream entry, and the key
    and status that name its index entries."""

    execution_id: str
    entry: str
    key: str
    status: int


@raises_store_error
class HistoryQueue:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.keys.history, HISTORY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def take(self, consumer: str, count: int, block_ms: int) -> list[QueuedExecution]:
        """Up to `count` new entries (waiting up to `block_ms` for the first
        one), read `READ_CHUNK` at a time."""
        taken: list[QueuedExecution] = []
        block: int | None = block_ms
        while len(taken) < count:
            chunk = min(count - len(taken), READ_CHUNK)
            reply = await self.client.xreadgroup(
                HISTORY_GROUP, consumer, {self.keys.history: ">"}, count=chunk, block=block
            )
            taken += await self._entries(reply)
            if sum(len(items) for _stream, items in reply or []) < chunk:
                break  # the stream has no more now
            block = None
        return taken

    async def pending(self, consumer: str, count: int, after: str = "0") -> list[QueuedExecution]:
        """Entries this consumer took and did not finish (after a restart)."""
        reply = await self.client.xreadgroup(
            HISTORY_GROUP, consumer, {self.keys.history: after}, count=count
        )
        return await self._entries(reply)

    async def claim_idle(
        self, consumer: str, min_idle_ms: int, count: int
    ) -> list[QueuedExecution]:
        """Entries another writer took and left (it died, or was renamed)."""
        reply = await self.client.xautoclaim(
            self.keys.history, HISTORY_GROUP, consumer, min_idle_ms, "0-0", count=count
        )
        claimed = reply[1] if reply else []
        return await self._entries([(self.keys.history, claimed)])

    async def moved(self, copies: Sequence[RedisCopy], *, destroyed: bool = False) -> list[str]:
        """Forget these Redis copies: committed to SQL by the writer, or
        `destroyed` (which leaves a marker per execution for a day). The writer
        gets back the ids destroyed while it committed them: their rows must go
        again. Safe to run twice (a retried call after a lost reply): what is
        already forgotten stays so, and its rows stay."""
        if not copies:
            return []
        ttl = DESTROYED_MARKER_SECONDS if destroyed else 0
        keys = [self.keys.history, self.keys.moving, self.keys.execution_statuses]
        gone: list[str] = []
        for start in range(0, len(copies), MOVED_CHUNK):  # safe to repeat: see above
            args: list[Any] = [HISTORY_GROUP, self.keys.executions(), self.keys.destroyed(""), ttl]
            for copy in copies[start : start + MOVED_CHUNK]:
                args += [copy.execution_id, copy.entry, self.keys.executions(copy.key), copy.status]
            found: Any = await HISTORY_MOVED(self.client, keys, args)
            gone += [g.decode() for g in found or []]
        return gone

    async def length(self) -> int:
        return int(await self.client.xlen(self.keys.history))

    async def oldest_ms(self) -> int | None:
        """When the oldest entry still waiting was queued (epoch ms)."""
        first = await self.client.xrange(self.keys.history, "-", "+", count=1)
        return int(first[0][0].split(b"-")[0]) if first else None

    async def _entries(self, reply: Any) -> list[QueuedExecution]:
        out: list[QueuedExecution] = []
        unreadable: list[tuple[bytes, dict[bytes, bytes]]] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                if not fields:  # deleted while pending: nothing left to move
                    await self.client.xack(self.keys.history, HISTORY_GROUP, entry_id)
                    continue
                try:
                    record = archived(fields[b"x"], fields[b"j"])
                except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.error("history entry %s is unreadable: %s", entry_id, exc)
                    unreadable.append((entry_id, fields))
                    continue
                out.append(QueuedExecution(entry_id.decode(), record))
        if unreadable:
            await self._set_aside(unreadable)
        return out

    async def _set_aside(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Keep what cannot be read on a stream of its own (a bug to look at),
        out of the writer's way."""
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields in entries:
            pipe.xadd(self.keys.history_unreadable, fields)
            pipe.xack(self.keys.history, HISTORY_GROUP, entry_id)
            pipe.xdel(self.keys.history, entry_id)
        await pipe.execute()
