"""The ingress's way to the execution actors: sync calls over Redis pub/sub
(`store.sync_calls`), and Ray calls for what is rare (manual runs, node tests,
cancels, the supervisors' figures), and the actors' creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import ray
from ray.actor import ActorHandle

from actors import handles
from actors.ray_session import RaySession
from engine.records import Execution, Reply, TriggerEvent, new_execution_id
from engine.settings import Settings
from store.sync_calls import LOST, SyncCalls, SyncReply

log = logging.getLogger("rayhook.router")

_encode = msgspec.msgpack.Encoder().encode
_decode_reply = msgspec.msgpack.Decoder(Reply).decode
_decode_execution = msgspec.json.Decoder(Execution).decode


_RAY_UNAVAILABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


class Unavailable(Exception):
    """The Ray layer cannot take the work now (actor restarting, cluster gone)."""


class SyncCaller:
    """This process's sync calls to the execution actors (`store.sync_calls`):
    a request published on the executor's channel, the reply awaited on this
    process's own channel. A call fails at once (`Unavailable`) when no executor
    listens, when its executor restarts, or when this process's subscription was
    lost meanwhile.

    A call goes to the executor with the fewest of this process's calls
    waiting (ties in turn), not to the owner of its execution id: a sync
    execution id is always fresh (a repeated delivery gets the first one's
    reply, `config.dedupe`), so no run of it can be under way elsewhere. With
    the id's hash, 64 calls in flight split as unevenly as 36/28 and the longer
    queue set the tail (docs/performance.md)."""

    def __init__(self, calls: SyncCalls, executors: int) -> None:
        self.calls = calls
        self.executors = executors
        self.reply_to = calls.keys.sync_replies(uuid.uuid4().hex)
        self._waiting: dict[str, tuple[int, asyncio.Future[bytes]]] = {}
        self._queued = [0] * executors  # this process's calls waiting on each executor
        self._turn = 0
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen for replies (calls answer 503 until the subscription holds)."""
        self._task = asyncio.get_running_loop().create_task(self._listen())
        try:
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except TimeoutError:
            log.warning("not subscribed for sync replies yet (Redis away?)")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def call(self, execution_id: str, payload: bytes) -> bytes:
        """The msgpack `Reply` of the sync execution `payload` starts."""
        if self._task is None:
            await self.start()
        if not self._subscribed.is_set():
            raise Unavailable("not listening for sync replies (Redis away?)")
        index = self._least_queued()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[execution_id] = (index, future)
        self._queued[index] += 1
        try:
            if not await self.calls.call(index, self.reply_to, payload):
                raise Unavailable(f"execution actor {index} is not listening (restarting?)")
            return await future
        finally:
            self._queued[index] -= 1
            self._waiting.pop(execution_id, None)

    def _least_queued(self) -> int:
        """The executor with the fewest calls waiting; among equals, the next in turn."""
        queued, count = self._queued, self.executors
        start = self._turn = (self._turn + 1) % count
        best = start
        for step in range(1, count):
            index = (start + step) % count
            if queued[index] < queued[best]:
                best = index
        return best

    async def _listen(self) -> None:
        async for item in self.calls.replies(self.reply_to, self._subscribed):
            if isinstance(item, SyncReply):
                found = self._waiting.get(item.execution_id)
                if found is not None and not found[1].done():
                    found[1].set_result(item.reply)
                continue
            lost = "replies were lost" if item == LOST else f"execution actor {item} restarted"
            for index, future in list(self._waiting.values()):
                if (item == LOST or index == item) and not future.done():
                    future.set_exception(Unavailable(lost))


class Router:
    """Attributes: `settings`, `sync` (the sync calls, over Redis), `ray` (the
    process's Ray session, connected only while Ray calls are made)."""

    def __init__(
        self, settings: Settings, calls: SyncCalls, ray_session: RaySession | None = None
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.ray = ray_session or RaySession(settings)
        self._executors: list[ActorHandle] = []
        self._resolved = -1  # the session generation `_executors` belong to
        self.sync = SyncCaller(calls, settings.executors)

    async def start_pool(self) -> None:
        """Create the executor pool if it does not run (idempotent)."""
        async with self._pool():
            pass

    @contextlib.asynccontextmanager
    async def _pool(self) -> AsyncIterator[list[ActorHandle]]:
        """The executors' handles, Ray connected for the block."""
        async with self.ray.use():
            if self._resolved != self.ray.generation or not self._executors:
                self._executors = await asyncio.to_thread(handles.executors, self.settings)
                self._resolved = self.ray.generation
            yield self._executors

    async def run_sync(self, event: TriggerEvent) -> Reply:
        return _decode_reply(await self.sync.call(event.id, _encode(event)))

    async def run_manual(self, event: TriggerEvent) -> Execution:
        async with self._pool() as pool:
            actor = _executor_for(pool, event.id)
            try:
                payload = await actor.run_one.remote(_encode(event))
            except _RAY_UNAVAILABLE as exc:
                raise Unavailable(str(exc)) from exc
        return _decode_execution(payload)

    async def test_node(
        self, node_type: str, config: dict[str, Any], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one node (`flow_nodes:test`) in an executor."""
        async with self._pool() as pool:
            actor = _executor_for(pool, new_execution_id())
            try:
                return dict(await actor.test_node.remote(node_type, config, variables))
            except _RAY_UNAVAILABLE as exc:
                raise Unavailable(str(exc)) from exc

    async def cancel(self, execution_id: str) -> bool:
        """Ask every executor to abort the execution: an async one runs on
        whichever executor read its inbox entry. True if one was running it."""
        async with self._pool() as pool:
            try:
                found: list[bool] = await asyncio.gather(
                    *(e.cancel.remote(execution_id) for e in pool)
                )
            except _RAY_UNAVAILABLE as exc:
                raise Unavailable(str(exc)) from exc
        return any(found)

    async def ready(self) -> bool:
        """Whether the execution actors run: each listens on its sync channel
        (asked of Redis, so a readiness probe does not make this process a Ray
        driver)."""
        try:
            listening = await asyncio.wait_for(self.calls.listeners(self.settings.executors), 2.0)
        except Exception:
            return False
        return all(listening)

    # -- the pool and the supervisors --------------------------------------------------

    async def supervisors(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every workflow supervisor awake in the pool, one row per workflow
        (a workflow active on several executors has one there each), and the
        executors that did not answer (restarting)."""
        async with self._pool() as pool:
            replies = await asyncio.gather(
                *(e.supervisors.remote() for e in pool), return_exceptions=True
            )
        rows: dict[str, dict[str, Any]] = {}
        silent: list[str] = []
        for index, stats in enumerate(replies):
            if isinstance(stats, BaseException):
                silent.append(handles.executor_name(index))
                continue
            for row in stats:
                merged = rows.setdefault(
                    str(row["key"]),
                    {
                        **row,
                        "inflight": 0,
                        "dispatched": 0,
                        "finished": 0,
                        "quarantined": 0,
                        "executors": [],
                    },
                )
                for counter in ("inflight", "dispatched", "finished", "quarantined"):
                    merged[counter] += row[counter]
                merged["awakeSince"] = min(merged["awakeSince"], row["awakeSince"])
                merged["idleSeconds"] = min(merged["idleSeconds"], row["idleSeconds"])
                merged["executors"].append(handles.executor_name(index))
        return sorted(rows.values(), key=lambda r: str(r["key"])), silent


def _executor_for(pool: list[ActorHandle], execution_id: str) -> ActorHandle:
    return pool[handles.executor_index(execution_id, len(pool))]
