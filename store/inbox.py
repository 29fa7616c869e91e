"""The async inbox: one Redis Stream per workflow key, consumed by its supervisor
through one consumer group. An entry holds one msgpack-encoded `TriggerEvent`;
it is acknowledged and deleted (atomically with the execution's final status, see
`store.executions`) only once its execution is final."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from engine.records import TriggerEvent
from store.batching import PipelineBatcher
from store.connection import CLAIM_IDLE, DRAIN_DONE, INBOX_ADD, INBOX_PUSH
from store.dedupe import Deduplicated
from store.errors import raises_store_error
from store.keys import INBOX_GROUP, Keys

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(TriggerEvent).decode


class Glance(msgspec.Struct, frozen=True):
    """See `Inbox.glance`: `changes` (the inboxes-changed counter), `due` (workflow
    keys with a timer due), `next_due_ms` (when the earliest timer not due yet
    is, epoch ms; None: no timer)."""

    changes: int
    due: list[str]
    next_due_ms: float | None


class _EventId(msgspec.Struct):
    id: str


# Reading only the id skips building the context's objects: the supervisor
# routes by id and hands the payload on as bytes.
_decode_id = msgspec.msgpack.Decoder(_EventId).decode


class NotEnabled(Exception):
    """The workflow key has no enabled version (any more)."""


class BacklogFull(Exception):
    """The workflow's backlog reached its cap: nothing more is accepted for now."""

    def __init__(self, backlog: int) -> None:
        super().__init__(backlog)
        self.backlog = backlog


@dataclass(frozen=True, slots=True)
class Queued:
    """A stored event: its entry id, and its workflow's backlog just before it
    (the inbox's length: entries not yet final), which the ingress paces by."""

    entry: str
    backlog: int


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


@raises_store_error
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
        """`accept`, for callers that need only the entry id."""
        return (await self.accept(event, dedupe, max_backlog=max_backlog)).entry

    async def accept(
        self,
        event: TriggerEvent,
        dedupe: tuple[str, int] | None = None,
        *,
        max_backlog: int = 2**62,
    ) -> Queued:
        """Store an event durably (group-committed); its entry id and the backlog
        it joined.

        With `dedupe` (digest of the event id, window in seconds) a repeated
        delivery raises `Deduplicated` instead (store/dedupe.py). Raises `NotEnabled` / `StaleRoute`
        when the routed version is not the enabled one, `BacklogFull` when the
        workflow's backlog reached `max_backlog`, and `StoreError` when Redis
        is unavailable."""
        digest, window = dedupe or ("", 0)
        status, value, *rest = await self.batcher.submit_script(
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
            return Queued(value.decode(), int(rest[0]))
        if status == 3:
            raise BacklogFull(int(value))
        if status == 0:
            raise NotEnabled(event.key)
        if status == 2:
            raise Deduplicated(value.decode())
        raise StaleRoute(int(value))

    async def push(self, event: TriggerEvent) -> str:
        """Queue an event whatever the workflow's state (a resume of a waiting
        execution, whose version may no longer be the enabled one); a workflow
        that is not enabled is read until it has drained."""
        entry = await self.batcher.submit_script(
            INBOX_PUSH,
            [self.keys.inbox(event.key), self.keys.draining, self.keys.inboxes_changed],
            [event.key, _encode(event)],
        )
        return str(entry.decode())

    async def ensure_groups(self, keys: Sequence[str]) -> None:
        """The consumer group exists on each of these inboxes."""
        if not keys:
            return
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.xgroup_create(self.keys.inbox(key), INBOX_GROUP, id="0", mkstream=True)
        for reply in await pipe.execute(raise_on_error=False):
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                raise reply

    async def ensure_group(self, key: str) -> None:
        await self.ensure_groups([key])

    async def read_many(
        self, consumer: str, keys: Sequence[str], count: int, block_ms: int
    ) -> dict[str, list[Entry]]:
        """New entries of many inboxes in one XREADGROUP (at most `count` per
        inbox), waiting up to `block_ms` for the first: a trickle per workflow
        still arrives in batches."""
        if not keys:
            return {}
        streams = {self.keys.inbox(k): ">" for k in keys}
        reply = await self.client.xreadgroup(
            INBOX_GROUP, consumer, streams, count=count, block=block_ms
        )
        return self._by_key(reply)

    async def active_keys(self) -> tuple[set[str], set[str]]:
        """The workflow keys whose inboxes the executors read: the enabled ones,
        and the draining ones (not enabled, or pushed to since)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(self.keys.enabled)
        pipe.smembers(self.keys.draining)
        enabled, draining = await pipe.execute()
        return {k.decode() for k in enabled}, {k.decode() for k in draining}

    async def glance(self, now_ms: float, limit: int = 1000) -> Glance:
        """What the executors' chores look at each tick, in one round trip: the
        inboxes-changed counter (it moves whenever `active_keys` may have: every
        script that touches the enabled hash or the draining set INCRs it, so
        polling it spares reading both), the workflows with a timer due by
        `now_ms` (`timers:due`), and when the next timer is due."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.get(k.inboxes_changed)
        pipe.zrangebyscore(k.timers_due, "-inf", int(now_ms), start=0, num=limit)
        pipe.zrangebyscore(k.timers_due, f"({int(now_ms)}", "+inf", start=0, num=1, withscores=True)
        changes, due, upcoming = await pipe.execute()
        return Glance(
            changes=int(changes or 0),
            due=[key.decode() for key in due],
            next_due_ms=float(upcoming[0][1]) if upcoming else None,
        )

    async def drain_done(self, key: str) -> bool:
        """Stop reading `key`'s inbox if it is not enabled and has drained
        (store/scripts/drain_done.lua); whether it stopped."""
        k = self.keys
        done = await DRAIN_DONE(
            self.client,
            [k.draining, k.enabled, k.inbox(key), k.timers_due, k.inboxes_changed],
            [key],
        )
        return bool(done)

    async def read_own(
        self, consumer: str, after: dict[str, str], count: int
    ) -> dict[str, list[Entry]]:
        """Entries delivered to `consumer` and not acknowledged (its own pending
        entries), per inbox, with ids above `after[key]`. Each read counts as a
        delivery (the poison check relies on it)."""
        if not after:
            return {}
        streams = {self.keys.inbox(k): start for k, start in after.items()}
        reply = await self.client.xreadgroup(INBOX_GROUP, consumer, streams, count=count)
        return self._by_key(reply)

    async def keep_alive(self, key: str, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries `consumer` is still running (a live
        consumer's entries are never taken for a dead one's), without counting
        a delivery."""
        if entry_ids:
            await self.client.xclaim(
                self.keys.inbox(key), INBOX_GROUP, consumer, 0, entry_ids, justid=True
            )

    async def claim_idle(
        self, key: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Entry]:
        """Take over entries left idle that long by other consumers (a dead or
        retired executor); deleted ones are skipped."""
        reply = await self.client.xautoclaim(
            self.keys.inbox(key), INBOX_GROUP, consumer, min_idle_ms, "0-0", count=count
        )
        claimed = reply[1] if reply else []
        return [_entry(entry_id, fields) for entry_id, fields in claimed if fields]

    async def claim_idle_many(
        self, keys: Sequence[str], consumer: str, min_idle_ms: int, count: int
    ) -> dict[str, list[Entry]]:
        """`claim_idle` over many inboxes in one round trip (a script that asks
        only the inboxes holding entries)."""
        if not keys:
            return {}
        reply = await CLAIM_IDLE(
            self.client,
            [self.keys.inbox(k) for k in keys],
            [INBOX_GROUP, consumer, min_idle_ms, count],
        )
        out: dict[str, list[Entry]] = {}
        items = cast(list[Any], reply or [])
        for index, claimed in zip(items[::2], items[1::2], strict=True):
            entries = [_entry(i, _fields(f)) for i, f in claimed if f]
            if entries:
                out[keys[int(index) - 1]] = entries
        return out

    async def deliveries(self, key: str, entry_ids: list[str]) -> dict[str, int]:
        """How many times each pending entry was delivered (read or claimed)."""
        if not entry_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xpending_range(self.keys.inbox(key), INBOX_GROUP, entry_id, entry_id, 1)
        out: dict[str, int] = {}
        for entry_id, rows in zip(entry_ids, await pipe.execute(), strict=True):
            if rows:
                out[entry_id] = int(rows[0]["times_delivered"])
        return out

    async def mark_lone_run(self, consumer: str, key: str, entry_id: str) -> None:
        """`consumer` runs this entry alone from now on: should its process end
        before `clear_lone_run`, the entry alone is to blame (the poison check)."""
        await self.client.hset(self.keys.lone_runs, consumer, f"{key} {entry_id}")

    async def clear_lone_run(self, consumer: str) -> None:
        await self.client.hdel(self.keys.lone_runs, consumer)

    async def lone_runs(self) -> set[tuple[str, str]]:
        """The (workflow key, entry id) each consumer was running alone when it
        last marked one: those whose run did not end, if their consumer died."""
        values = await self.client.hvals(self.keys.lone_runs)
        return {cast(tuple[str, str], tuple(v.decode().split(" ", 1))) for v in values}

    async def ack(self, key: str, entry_ids: list[str]) -> None:
        if entry_ids:
            stream = self.keys.inbox(key)
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(stream, INBOX_GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
            await pipe.execute()

    def _by_key(self, reply: Any) -> dict[str, list[Entry]]:
        prefix = len(self.keys.inbox(""))
        out: dict[str, list[Entry]] = {}
        for stream, items in reply or []:
            entries = [_entry(entry_id, fields) for entry_id, fields in items]
            if entries:
                out[stream.decode()[prefix:]] = entries
        return out

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

    async def backlogs(self, keys: Sequence[str]) -> list[int]:
        """`backlog` of each of `keys`, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.xlen(self.keys.inbox(key))
        return [int(n) for n in await pipe.execute()]

    async def drop(self, key: str) -> None:
        await self.client.delete(self.keys.inbox(key))


@raises_store_error
class BlockingReader:
    """`Inbox.read_many` on a connection of its own, so that a read may block for
    seconds and still be cut short from elsewhere (`wake`: CLIENT UNBLOCK from
    the shared pool), e.g. when the set of inboxes to read changed.

    The connection's id is asked once and again after any failed read (a new
    connection has a new id); a read retried inside the client after a reconnect
    keeps the old id until `wake` finds it unknown (`forget`), so such a read
    runs to its timeout.

    Example::

        reader = BlockingReader(inbox)
        found = await reader.read(consumer, keys, 100, 5000)  # elsewhere: await reader.wake()
        await reader.close()
    """

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._client = aioredis.Redis(
            connection_pool=inbox.client.connection_pool, single_connection_client=True
        )
        self._id: int | None = None
        self.blocked_since: float | None = None  # monotonic, while a read waits

    async def read(
        self, consumer: str, keys: Sequence[str], count: int, block_ms: int
    ) -> dict[str, list[Entry]]:
        if not keys:
            return {}
        try:
            if self._id is None:
                self._id = int(await self._client.client_id())
            streams = {self.inbox.keys.inbox(k): ">" for k in keys}
            self.blocked_since = time.monotonic()
            reply = await self._client.xreadgroup(
                INBOX_GROUP, consumer, streams, count=count, block=block_ms
            )
        except BaseException:
            self._id = None
            raise
        finally:
            self.blocked_since = None
        return self.inbox._by_key(reply)

    async def wake(self) -> bool:
        """Cut the waiting read short (it returns nothing); whether one waited."""
        if self._id is None or self.blocked_since is None:
            return False
        return bool(await self.inbox.client.client_unblock(self._id))

    def forget(self) -> None:
        """The connection's id is not the one blocked (it reconnected): ask again."""
        self._id = None

    async def close(self) -> None:
        await self._client.aclose()


def _entries(reply: Any) -> list[Entry]:
    out: list[Entry] = []
    for _stream, items in reply or []:
        for entry_id, fields in items:
            out.append(_entry(entry_id, fields))
    return out


def _fields(flat: Any) -> dict[bytes, bytes]:
    """A stream entry's fields as a Lua script returns them (a flat list)."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _entry(entry_id: bytes, fields: dict[bytes, bytes] | None) -> Entry:
    payload = (fields or {}).get(b"e")
    if payload is not None:
        try:
            return Entry(entry_id.decode(), payload, _decode_id(payload).id)
        except msgspec.DecodeError:
            pass
    return Entry(entry_id.decode(), None)
