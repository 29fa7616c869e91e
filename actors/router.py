"""The ingress's way into the Ray layer: run sync executions on the pool, and
keep one supervisor per enabled workflow (create on enable, stop on disable)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import ray
from ray.actor import ActorHandle

from actors import pool
from engine.records import Execution, Reply, TriggerEvent, new_execution_id
from engine.settings import Settings

log = logging.getLogger("rayhook.router")

_encode = msgspec.msgpack.Encoder().encode
_decode_reply = msgspec.msgpack.Decoder(Reply).decode
_decode_execution = msgspec.json.Decoder(Execution).decode


#: How long an executor waits for a micro-batch's executions before answering
#: with the ones done (the rest follow one by one through `reply_of`).
BATCH_WAIT = 0.005
#: Micro-batches in flight per executor from one worker.
BATCHES_IN_FLIGHT = 2

_RAY_UNAVAILABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


class Unavailable(Exception):
    """The Ray layer cannot take the work now (actor restarting, cluster gone)."""


class SyncBatcher:
    """Sync requests bound for one executor, sent as one Ray call per batch.

    One Ray call per request caps a worker at ~1.6k/s on 2 cores; batching the
    requests that arrive together amortises the call. Replies still come back
    per request: the executor answers with those done within BATCH_WAIT and the
    others are fetched one by one, so a slow workflow delays only itself."""

    def __init__(self, handle: ActorHandle) -> None:
        self.handle = handle
        self._pending: list[tuple[str, bytes, asyncio.Future[bytes]]] = []
        self._in_flight = 0

    def submit(self, execution_id: str, payload: bytes) -> asyncio.Future[bytes]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((execution_id, payload, future))
        if self._in_flight < BATCHES_IN_FLIGHT:
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._send())
        return future

    async def _send(self) -> None:
        try:
            await asyncio.sleep(0)  # let this loop turn's other requests join
            while self._pending:
                batch, self._pending = self._pending, []
                await self._call(batch)
        finally:
            self._in_flight -= 1

    async def _call(self, batch: list[tuple[str, bytes, asyncio.Future[bytes]]]) -> None:
        try:
            replies = await self.handle.run_sync_batch.remote(
                [payload for _, payload, _ in batch], BATCH_WAIT
            )
        except _RAY_UNAVAILABLE as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(Unavailable(str(exc)))
            return
        for (execution_id, _, future), reply in zip(batch, replies, strict=True):
            if reply is not None:
                if not future.done():
                    future.set_result(reply)
            else:
                asyncio.get_running_loop().create_task(self._follow(execution_id, future))

    async def _follow(self, execution_id: str, future: asyncio.Future[bytes]) -> None:
        try:
            reply = await self.handle.reply_of.remote(execution_id)
        except _RAY_UNAVAILABLE as exc:
            if not future.done():
                future.set_exception(Unavailable(str(exc)))
            return
        if not future.done():
            future.set_result(reply)


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executors: list[ActorHandle] = []
        self._batchers: list[SyncBatcher] = []

    def connect(self) -> None:
        """Resolve (or create) the executor pool; blocking, call at startup."""
        self._executors = pool.executors(self.settings)
        self._batchers = [SyncBatcher(handle) for handle in self._executors]

    async def run_sync(self, event: TriggerEvent) -> Reply:
        if not self._batchers:
            self.connect()
        index = pool.executor_index(event.id, len(self._batchers))
        payload = await self._batchers[index].submit(event.id, _encode(event))
        return _decode_reply(payload)

    async def run_manual(self, event: TriggerEvent) -> Execution:
        actor = self._executor_for(event.id)
        try:
            payload = await actor.run_one.remote(_encode(event))
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Unavailable(str(exc)) from exc
        return _decode_execution(payload)

    async def test_node(
        self, node_type: str, config: dict[str, Any], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one node (`flow_nodes:test`) in an executor."""
        actor = self._executor_for(new_execution_id())
        try:
            return dict(await actor.test_node.remote(node_type, config, variables))
        except _RAY_UNAVAILABLE as exc:
            raise Unavailable(str(exc)) from exc

    async def cancel(self, execution_id: str) -> bool:
        """Ask the executor that owns the execution to abort it."""
        actor = self._executor_for(execution_id)
        try:
            return bool(await actor.cancel.remote(execution_id))
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Unavailable(str(exc)) from exc

    def _executor_for(self, execution_id: str) -> ActorHandle:
        if not self._executors:
            self.connect()
        return self._executors[pool.executor_index(execution_id, len(self._executors))]

    async def ready(self) -> bool:
        """Whether the Ray layer answers (an executor replies to a ping)."""
        try:
            actor = self._executor_for("readyz")
            await asyncio.wait_for(actor.ready.remote(), 2.0)
            return True
        except Exception:
            return False

    # -- the pool, the history writer, the supervisors ---------------------------------

    async def ensure_history_writer(self) -> None:
        """Make sure the deployment's HistoryWriter runs (idempotent)."""
        handle = await asyncio.to_thread(pool.history_writer, self.settings)
        await handle.stats.remote()

    async def supervisors(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every workflow supervisor awake in the pool, one row per workflow
        (a workflow active on several executors has one there each), and the
        executors that did not answer (restarting)."""
        if not self._executors:
            self.connect()
        replies = await asyncio.gather(
            *(e.supervisors.remote() for e in self._executors), return_exceptions=True
        )
        rows: dict[str, dict[str, Any]] = {}
        silent: list[str] = []
        for index, stats in enumerate(replies):
            if isinstance(stats, BaseException):
                silent.append(pool.executor_name(index))
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
                merged["executors"].append(pool.executor_name(index))
        return sorted(rows.values(), key=lambda r: str(r["key"])), silent
