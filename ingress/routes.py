"""Which version serves a webhook key, cached in each worker process.

Filled from Redis, invalidated through the `changed` pub/sub channel (and fully
refreshed every few seconds in case a message was missed). A miss always asks
Redis, so a workflow created through another worker is served at once. A stale
entry cannot queue an event for a disabled workflow: the inbox's Lua gate checks
the enabled version atomically with the XADD."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass

from engine.definition import WorkflowVersion
from engine.trigger import CompiledTrigger, compile_trigger
from store.workflows import WorkflowStore

log = logging.getLogger("rayhook.routes")

FULL_REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Route:
    key: str
    version_id: int
    sync: bool
    timeout_ms: int
    trigger: CompiledTrigger


def route_of(version: WorkflowVersion) -> Route:
    return Route(
        key=version.key,
        version_id=version.id,
        sync=version.sync,
        timeout_ms=version.options.timeout,
        trigger=compile_trigger(version.config, sync=version.sync),
    )


class RouteTable:
    def __init__(self, workflows: WorkflowStore) -> None:
        self.workflows = workflows
        self._routes: dict[str, Route] = {}
        self._task: asyncio.Task[None] | None = None

    def cached(self, key: str) -> Route | None:
        return self._routes.get(key)

    async def lookup(self, key: str) -> Route | None:
        route = self._routes.get(key)
        if route is None:
            route = await self.reload(key)
        return route

    async def reload(self, key: str) -> Route | None:
        version = await self.workflows.enabled_version(key)
        if version is None:
            self._routes.pop(key, None)
            return None
        route = route_of(version)
        self._routes[key] = route
        return route

    def forget(self, key: str) -> None:
        self._routes.pop(key, None)

    async def refresh_all(self) -> None:
        enabled = await self.workflows.enabled_ids()
        for key in list(self._routes):
            if enabled.get(key) != self._routes[key].version_id:
                self._routes.pop(key, None)
        for key, version_id in enabled.items():
            if key not in self._routes:
                try:
                    await self.reload(key)
                except Exception:
                    log.exception("route %s (version %s) could not be loaded", key, version_id)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            try:
                await self.refresh_all()
                async with aclosing(self.workflows.changes(FULL_REFRESH_SECONDS)) as changes:
                    # None: subscribed (changes made before), or a quiet while.
                    async for key in changes:
                        if key is None:
                            await self.refresh_all()
                        else:
                            self.forget(key)
                            await self.reload(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("route watcher lost redis (%s); retrying", exc)
                await asyncio.sleep(1.0)
