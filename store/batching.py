"""Group commit: commands issued during one event-loop turn go to Redis in one
pipeline, and each caller gets its own reply.

With `appendfsync always`, Redis fsyncs once per pipeline, not per command: this
is what lets the accept path answer only after its event is on disk and still
serve thousands of requests per second (ARCHITECTURE.md, "Facts").
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.connection import Script

log = logging.getLogger(__name__)

_Item = tuple[tuple[Any, ...], "asyncio.Future[Any] | None", Script | None]


class PipelineBatcher:
    """Queues commands and flushes them in one pipeline per loop turn; callers get
    Redis's raw replies (`b"OK"`, ints, bytes), error replies as exceptions.

    One flush is in flight at a time: commands that arrive meanwhile form the next
    batch, so batches grow with load instead of connections multiplying.
    """

    def __init__(self, client: aioredis.Redis, *, max_batch: int = 1000) -> None:
        self.client = client
        self.max_batch = max_batch
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queue a command; the future resolves with its reply (or its error)."""
        future = asyncio.get_running_loop().create_future()
        self._queue((args, future, None))
        return future

    def submit_script(
        self, script: Script, keys: list[str], args: list[Any]
    ) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self._queue((("EVALSHA", script.sha, len(keys), *keys, *args), future, script))
        return future

    def fire_script(self, script: Script, keys: list[str], args: list[Any]) -> None:
        """Queue a script call whose reply nobody awaits (errors are logged)."""
        self._queue((("EVALSHA", script.sha, len(keys), *keys, *args), None, script))

    def fire(self, *args: Any) -> None:
        """Queue a command whose reply nobody awaits (errors are logged)."""
        self._queue((args, None, None))

    async def drain(self) -> None:
        """Wait until everything queued so far has been sent and answered."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _queue(self, item: _Item) -> None:
        self._pending.append(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.sleep(0)  # let this turn's other callers join the batch
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    await self._flush(batch)
                except Exception as exc:  # never leave a caller waiting
                    for _, future, _ in batch:
                        _settle(future, exc)
        finally:
            self._task = None
            if self._pending:  # queued while we were finishing
                self._task = asyncio.get_running_loop().create_task(self._run())

    async def _flush(self, batch: list[_Item]) -> None:
        try:
            replies = await self._send([args for args, _, _ in batch])
        except Exception as exc:  # connection-level failure: every caller learns it
            for _, future, _ in batch:
                _settle(future, exc)
            if any(future is None for _, future, _ in batch):
                log.warning("redis batch of %d failed: %s", len(batch), exc)
            return
        retry: list[_Item] = []
        for item, reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError) and item[2] is not None:
                retry.append(item)
            else:
                _settle(item[1], reply)
        if retry:  # Redis restarted and forgot the scripts: load them and go again
            try:
                for script in {item[2] for item in retry if item[2] is not None}:
                    await self.client.script_load(script.source)
                replies = await self._send([args for args, _, _ in retry])
            except Exception as exc:
                replies = [exc] * len(retry)
            for item, reply in zip(retry, replies, strict=True):
                _settle(item[1], reply)

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip for the whole batch, on one pooled connection.

        The commands are packed by hiredis (C) rather than redis-py's pipeline,
        which costs ~20 µs of Python per command: on the hot paths every event
        is one or two commands. Error replies are returned, not raised. The
        socket timeout bounds the whole batch's replies with one timer, not one
        per reply (each was a timer set and cancelled)."""
        packed = b"".join(pack_command(args) for args in commands)
        pool = self.client.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            try:
                async with asyncio.timeout(connection.socket_timeout):
                    for _ in commands:
                        try:
                            replies.append(await connection.read_response(timeout=math.inf))
                        except ResponseError as exc:
                            replies.append(exc)
            except TimeoutError:
                raise RedisTimeoutError(
                    f"no reply from redis within {connection.socket_timeout} s"
                ) from None
            return replies
        except BaseException:
            # A half-read connection must not go back to the pool in use.
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)


def _settle(future: asyncio.Future[Any] | None, reply: Any) -> None:
    if future is None:
        if isinstance(reply, BaseException):
            log.warning("redis command failed: %s", reply)
        return
    if future.done():
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)


__all__ = ["PipelineBatcher", "ResponseError"]
