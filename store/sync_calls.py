"""Sync webhook calls between the ingress and the execution actors, over Redis
pub/sub (no Ray call on the sync path).

The ingress publishes a request on an executor's channel (`{ns}:sync:<i>`):
the event and the channel to answer on (one per ingress process). The executor
runs the execution, and the write that stores its end publishes the reply there
(`ReplyTo`), so a fast execution never waits for a slow one and no reply is
fetched later. Pub/sub is neither stored nor written to the AOF: a sync call is
not durable (the caller gets its reply, or a 5xx and retries), so it costs no
fsync, and a request nobody hears is known at once (PUBLISH counts its
receivers). An executor announces each start on `{ns}:executors`, so an ingress
fails at once the calls the previous process took with it.

Measured on this 2-core machine before this change: the Ray call was ~22 % of a
gunicorn worker's samples under the sync benchmark, five times the Falcon
request handling, and a reply later than 5 ms cost a second call (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import redis.asyncio as aioredis

from store.batching import PipelineBatcher
from store.errors import raises_store_error
from store.keys import Keys

log = logging.getLogger("rayhook.sync")


class SyncRequest(msgspec.Struct, array_like=True):
    reply_to: str  # the caller's reply channel
    event: bytes  # the msgpack TriggerEvent


class SyncReply(msgspec.Struct, array_like=True):
    execution_id: str
    reply: bytes  # the msgpack Reply


@dataclass(slots=True)
class ReplyTo:
    """Where a sync call's reply goes. The write that ends the call's run
    publishes it in the same atomic step (`execution_save.lua`), so it leaves
    Redis with that write's fsync: one round trip instead of two. `sent` says
    whether it did; if not (the write failed, or found the run recorded
    already), the executor publishes the reply itself."""

    channel: str
    execution_id: str
    sent: bool = False

    def message(self, reply: bytes) -> bytes:
        """What travels on the channel, for the msgpack `Reply`."""
        return _encode(SyncReply(self.execution_id, reply))


#: `replies` yields this when replies may have been lost (a new subscription).
LOST = -1

_encode = msgspec.msgpack.Encoder().encode
_request = msgspec.msgpack.Decoder(SyncRequest).decode
_reply = msgspec.msgpack.Decoder(SyncReply).decode


@raises_store_error
@dataclass(frozen=True, slots=True)
class SyncCalls:
    """The channels of one namespace, and what travels on them. Calls and
    replies published during one event-loop turn go to Redis in one pipeline
    (`store.batching`): one PUBLISH per round trip through redis-py was the
    largest single cost of a sync call on both sides (docs/performance.md)."""

    client: aioredis.Redis
    keys: Keys
    _published: PipelineBatcher = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_published", PipelineBatcher(self.client))

    async def call(self, executor: int, reply_to: str, event: bytes) -> int:
        """Publish a request to an executor; how many executors heard it (0: none
        listens on that channel now)."""
        heard = await self._published.submit(
            "PUBLISH", self.keys.sync_calls(executor), _encode(SyncRequest(reply_to, event))
        )
        return int(heard)

    async def listeners(self, executors: int) -> list[bool]:
        """Whether each executor listens on its channel now (PUBSUB NUMSUB)."""
        channels = [self.keys.sync_calls(i) for i in range(executors)]
        counts = await self.client.pubsub_numsub(*channels)
        return [int(n) > 0 for _channel, n in counts]

    async def answer(self, reply_to: ReplyTo, reply: bytes) -> None:
        await self._published.submit("PUBLISH", reply_to.channel, reply_to.message(reply))

    async def announce_start(self, executor: int) -> None:
        await self.client.publish(self.keys.executor_starts, str(executor))

    async def requests(
        self, executor: int, subscribed: asyncio.Event
    ) -> AsyncIterator[SyncRequest]:
        """The requests published to an executor, for as long as it listens
        (`subscribed` is set once it does)."""
        async for _channel, data in self._messages([self.keys.sync_calls(executor)], subscribed):
            try:
                yield _request(data)
            except msgspec.DecodeError:
                log.error("an unreadable sync request on executor %d's channel", executor)

    async def replies(
        self, reply_to: str, subscribed: asyncio.Event
    ) -> AsyncIterator[SyncReply | int]:
        """Replies sent to `reply_to`, and the index of each executor that
        (re)started (its calls in flight are lost)."""
        channels = [reply_to, self.keys.executor_starts]
        async for channel, data in self._messages(channels, subscribed):
            if channel == "":  # subscribed again: replies meanwhile are lost
                yield LOST
                continue
            if channel == self.keys.executor_starts:
                yield int(data)
                continue
            try:
                yield _reply(data)
            except msgspec.DecodeError:
                log.error("an unreadable sync reply on %s", reply_to)

    async def _messages(
        self, channels: list[str], subscribed: asyncio.Event
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Subscribe (again after a lost connection) and yield (channel, data);
        ("", b"") after subscribing again (what was published meanwhile is lost)."""
        again = False
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(*channels)
                    subscribed.set()
                    if again:
                        yield "", b""
                    again = True
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=5.0
                        )
                        if message is not None and message["type"] == "message":
                            yield message["channel"].decode(), message["data"]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: subscribe again when it is back
                subscribed.clear()
                log.warning("sync channels lost redis (%s); subscribing again", exc)
                await asyncio.sleep(0.5)
