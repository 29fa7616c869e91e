"""The async inbox: one Redis Stream per workflow key, consumed by its supervisor
through one consumer group. An entry holds one msgpack-encoded `TriggerEvent`;
it is acknowledged and deleted (atomically with the execution's final status, see
`store.executions`) only once its execution is final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from engine.records import TriggerEvent
from store.batching import PipelineBatcher
from store.connection import INBOX_ADD
from store.keys import INBOX_GROUP, Keys

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(TriggerEvent).decode


class _EventId(msgspec.Struct):
    id: str


# Reading only the id skips building the context's objects: the supervisor
# routes by id and hands the payload on as bytes.
_decode_id = msgspec.msgpack.Decoder(_EventId).decode


class NotEnabled(Exception):
    """The workflow key has no enabled version (any more)."""


class Duplicate(Exception):
    """A repeated delivery of an event id inside the dedupe window."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id


class BacklogFull(Exception):
    """The workflow's backlog reached its cap: nothing more is accepted for now."""

    def __init__(self, backlog: int) -> None:
        super().__init__(backlog)
        self.backlog = backlog


class StaleRoute(Exception):
    """Another version is enabled now; `version_id` is the one to route to."""

    def __init__(self, version_id: int) -> None:
        super().__init__(version_id)
        self.version_id = version_id


@dataclass(frozen=True, slots=True)
class Entry:
    """One inbox entry: its stream id, the msgpack event, and the event's
    execution id. `payload` is None when the entry is gone or unreadable."""

    id: str
    payload: bytes | None
    execution_id: str | None = None

    @property
    def event(self) -> TriggerEvent | None:
        """The whole event (decoded on demand), carrying this entry's id."""
        if self.payload is None:
            return None
        event = _decode(self.payload)
        event.entry = self.id
        return event


class Inbox:
    def __init__(self, client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher) -> None:
        self.client = client
        self.keys = keys
        self.batcher = batcher

    async def add(
        self,
        event: TriggerEvent,
        dedupe: tuple[str, int] | None = None,
        *,
        max_backlog: int = 2**62,
    ) -> str:
        """Store an event durably (group-committed); its entry id.

        With `dedupe` (digest of the event id, window in seconds) a repeated
        delivery raises `Duplicate` instead. Raises `NotEnabled` / `StaleRoute`
        when the routed version is not the enabled one, `BacklogFull` when the
        workflow's backlog reached `max_backlog`, and redis errors when the
        store is unavailable."""
        digest, window = dedupe or ("", 0)
        status, value = await self.batcher.submit_script(
            INBOX_ADD,
            [self.keys.enabled, self.keys.inbox(event.key), self.keys.dedupe(event.key, digest)],
            [
                event.key,
                str(event.workflowId),
                _encode(event),
                str(window) if dedupe else "",
                event.id,
                max_backlog,
            ],
        )
        if status == 1:
            return value.decode()
        if status == 3:
            raise BacklogFull(int(value))
        if status == 0:
            raise NotEnabled(event.key)
        if status == 2:
            raise Duplicate(value.decode())
        raise StaleRoute(int(value))

    async def push(self, event: TriggerEvent) -> str:
        """Queue an event whatever the workflow's state (a resume of a waiting
        execution, whose version may no longer be the enabled one)."""
        entry = await self.batcher.submit(
            "XADD", self.keys.inbox(event.key), "*", "e", _encode(event)
        )
        return entry.decode()

    async def ensure_group(self, key: str) -> None:
        try:
            await self.client.xgroup_create(
                self.keys.inbox(key), INBOX_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, key: str, consumer: str, count: int, block_ms: int) -> list[Entry]:
        reply = await self.client.xreadgroup(
            INBOX_GROUP, consumer, {self.keys.inbox(key): ">"}, count=count, block=block_ms
        )
        return _entries(reply)

    async def read_pending(
        self, key: str, consumer: str, count: int, after: str = "0"
    ) -> list[Entry]:
        """Entries delivered to `consumer` and not acknowledged (its own PEL),
        with ids above `after`."""
        reply = await self.client.xreadgroup(
            INBOX_GROUP, consumer, {self.keys.inbox(key): after}, count=count
        )
        return _entries(reply)

    async def stale(self, key: str, consumer: str, min_idle_ms: int, count: int) -> list[str]:
        """Ids pending for `consumer` longer than `min_idle_ms`."""
        rows = await self.client.xpending_range(
            self.keys.inbox(key),
            INBOX_GROUP,
            "-",
            "+",
            count,
            consumername=consumer,
            idle=min_idle_ms,
        )
        return [row["message_id"].decode() for row in rows]

    async def claim(
        self, key: str, consumer: str, entry_ids: list[str], min_idle_ms: int
    ) -> list[Entry]:
        """Take these pending entries (resetting their idle time); gone ones are skipped."""
        if not entry_ids:
            return []
        claimed = await self.client.xclaim(
            self.keys.inbox(key), INBOX_GROUP, consumer, min_idle_ms, entry_ids
        )
        return [_entry(entry_id, fields) for entry_id, fields in claimed if fields is not None]

    async def claim_idle(
        self, key: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Entry]:
        """Take over entries other consumers left pending (a renamed or dead consumer)."""
        reply = await self.client.xautoclaim(
            self.keys.inbox(key), INBOX_GROUP, consumer, min_idle_ms, "0-0", count=count
        )
        claimed = reply[1] if reply else []
        return [_entry(entry_id, fields) for entry_id, fields in claimed]

    async def ack(self, key: str, entry_ids: list[str]) -> None:
        if entry_ids:
            stream = self.keys.inbox(key)
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(stream, INBOX_GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            await pipe.execute()

    async def find(self, execution_id: str) -> Entry | None:
        """The inbox entry of an execution not started yet (scans every inbox:
        an admin operation, proportional to the backlog)."""
        async for stream in self.client.scan_iter(match=self.keys.inbox("*"), count=1000):
            start = "-"
            while True:
                items = await self.client.xrange(stream, min=start, max="+", count=1000)
                for entry_id, fields in items:
                    entry = _entry(entry_id, fields)
                    if entry.execution_id == execution_id:
                        return entry
                if len(items) < 1000:
                    break
                start = "(" + items[-1][0].decode()
        return None

    async def present(self, key: str, entry_ids: list[str]) -> set[str]:
        """Which of these entries are still in the stream, i.e. not settled (an
        entry goes in the same step as its execution's final write)."""
        if not entry_ids:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xrange(self.keys.inbox(key), entry_id, entry_id)
        replies = await pipe.execute()
        return {e for e, reply in zip(entry_ids, replies, strict=True) if reply}

    async def backlog(self, key: str) -> int:
        """Entries not yet final: unread plus pending (the stream keeps no others)."""
        return int(await self.client.xlen(self.keys.inbox(key)))

    async def drop(self, key: str) -> None:
        await self.client.delete(self.keys.inbox(key))


def _entries(reply: Any) -> list[Entry]:
    out: list[Entry] = []
    for _stream, items in reply or []:
        for entry_id, fields in items:
            out.append(_entry(entry_id, fields))
    return out


def _entry(entry_id: bytes, fields: dict[bytes, bytes] | None) -> Entry:
    payload = (fields or {}).get(b"e")
    if payload is not None:
        try:
            return Entry(entry_id.decode(), payload, _decode_id(payload).id)
        except msgspec.DecodeError:
            pass
    return Entry(entry_id.decode(), None)
