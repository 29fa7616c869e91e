"""The ingress's way into the Ray layer: run sync executions on the pool, and
keep one supervisor per enabled workflow (create on enable, stop on disable)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import msgspec
import ray
from ray.actor import ActorHandle

from actors import pool
from engine.records import Execution, Reply, TriggerEvent
from engine.settings import Settings

log = logging.getLogger("rayhook.router")

_encode = msgspec.msgpack.Encoder().encode
_decode_reply = msgspec.msgpack.Decoder(Reply).decode
_decode_execution = msgspec.json.Decoder(Execution).decode


class Unavailable(Exception):
    """The Ray layer cannot take the work now (actor restarting, cluster gone)."""


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executors: list[ActorHandle] = []

    def connect(self) -> None:
        """Resolve (or create) the executor pool; blocking, call at startup."""
        self._executors = pool.executors(self.settings)

    async def run_sync(self, event: TriggerEvent) -> Reply:
        actor = self._executor_for(event.id)
        try:
            payload = await actor.run_sync.remote(_encode(event))
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Unavailable(str(exc)) from exc
        return _decode_reply(payload)

    async def run_manual(self, event: TriggerEvent) -> Execution:
        actor = self._executor_for(event.id)
        try:
            payload = await actor.run_one.remote(_encode(event))
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise Unavailable(str(exc)) from exc
        return _decode_execution(payload)

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

    # -- supervisors ---------------------------------------------------------------

    async def ensure_supervisors(self, keys: Iterable[str]) -> None:
        """Make sure each enabled key has its supervisor (idempotent)."""
        for key in keys:
            for attempt in range(20):
                handle = await asyncio.to_thread(pool.supervisor, self.settings, key)
                try:
                    await handle.start.remote()
                    break
                except ray.exceptions.RayActorError:
                    # It was exiting after a disable; its name frees up shortly.
                    await asyncio.sleep(0.1 * (attempt + 1))

    async def stop_supervisor(self, key: str) -> None:
        """Ask a disabled workflow's supervisor to drain its inbox and exit."""
        handle = await asyncio.to_thread(pool.existing_supervisor, self.settings, key)
        if handle is not None:
            try:
                await handle.stop.remote()
            except ray.exceptions.RayActorError:
                pass

    async def sync_supervisor(self, key: str, enabled: bool) -> None:
        if enabled:
            await self.ensure_supervisors([key])
        else:
            await self.stop_supervisor(key)
