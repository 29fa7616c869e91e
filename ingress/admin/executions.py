"""`/api/executions:*` and `/api/jobs:get` — the execution log."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import falcon
import falcon.asgi
import msgspec

from actors.router import Unavailable
from engine.definition import WorkflowVersion
from engine.records import Execution, Job, TriggerEvent, execution_of, now
from engine.status import Reason, Status, is_final
from ingress.admin.envelope import page_meta, reply
from ingress.admin.filters import execution_filter
from ingress.admin.params import filter_by_tk, int_param, query
from ingress.admin.resource import AdminResource
from ingress.refusals import (
    executor_unavailable,
    executors_unavailable,
    history_errors,
    store_unavailable,
)
from ingress.services import Services
from store.errors import StoreError
from store.execution_search import StillRunning
from store.filters import ExecutionFilter
from store.inbox import NotEnabled, StaleRoute

#: What a paging cursor looks like: an execution id.
_CURSOR = re.compile(r"[0-9a-z-]{1,64}")


class ExecutionSummary(msgspec.Struct, kw_only=True):
    """A list row: the execution without its (possibly large) context and output."""

    id: str
    key: str
    workflowId: int
    status: int | None
    reason: str | None
    error: str | None
    manually: bool
    replayOf: str | None
    attempt: int
    exhausted: bool
    createdAt: Any
    startedAt: Any
    finishedAt: Any


def summary(execution: Execution) -> ExecutionSummary:
    return ExecutionSummary(
        id=execution.id,
        key=execution.key,
        workflowId=execution.workflowId,
        status=execution.status,
        reason=execution.reason,
        error=execution.error,
        manually=execution.manually,
        replayOf=execution.replayOf,
        attempt=execution.attempt,
        exhausted=execution.exhausted,
        createdAt=execution.createdAt,
        startedAt=execution.startedAt,
        finishedAt=execution.finishedAt,
    )


class List(AdminResource):
    """Newest first, over the hot executions and the history (SPEC §9). Pages by
    `page`/`pageSize`, or by `cursor` (the `nextCursor` of the previous page:
    stable while new executions arrive)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        params = query(req)
        where = execution_filter(params)
        size = int_param(params, "pageSize", 20, low=1, high=1000)
        cursor = params.get("cursor")
        if cursor is not None:
            if not isinstance(cursor, str) or not _CURSOR.fullmatch(cursor):
                raise falcon.HTTPBadRequest(description="cursor: use the nextCursor of a page")
            where = msgspec.structs.replace(where, before=cursor)
            page = 1
        else:
            page = int_param(params, "page", 1, low=1, high=1_000_000)
        async with history_errors():
            executions, count = await self.services.search.page(
                where, offset=(page - 1) * size, limit=size
            )
        meta: dict[str, Any] = page_meta(count, page, size)
        meta["nextCursor"] = executions[-1].id if len(executions) == size else None
        reply(resp, [summary(e) for e in executions], meta=meta)


class Get(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        found = await find_execution(self.services, execution_id)
        if found is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        data = msgspec.structs.asdict(found[0])
        data["jobs"] = found[1]
        reply(resp, data)


async def find_execution(
    services: Services, execution_id: str
) -> tuple[Execution, list[Job]] | None:
    """An execution with its jobs wherever it is: in the stores, or still queued
    in its inbox (status null, no jobs). When the inbox misses too, the stores
    are read again: it may have finished meanwhile (its entry leaves the inbox in
    the step that makes it final)."""
    async with history_errors():
        found = await services.search.get(execution_id)
        if found is not None:
            return found
        queued = await queued_execution(services, execution_id)
        if queued is not None:
            return queued[0], []
        return await services.search.get(execution_id)


class Cancel(AdminResource):
    """Abort an execution that has not finished (NocoBase: ABORTED, reason
    manual_cancel): running in an executor, left over by a crash, or still
    queued in its workflow's inbox (its entry is then acknowledged in the same
    step, so it never runs)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        search = self.services.search
        async with history_errors():
            found = await search.get(execution_id)
        execution = found[0] if found else None
        if execution is not None and is_final(execution.status):
            raise falcon.HTTPBadRequest(description="the execution has already finished")
        try:
            running = await self.services.router.cancel(execution_id)
        except Unavailable:
            raise executor_unavailable() from None
        if not running:
            entry = None
            if execution is None:
                queued = await queued_execution(self.services, execution_id)
                if queued is None:
                    raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
                execution, entry = queued
            execution.status, execution.reason = Status.ABORTED, Reason.MANUAL_CANCEL
            execution.finishedAt = now()
            await self.services.executions.save(execution, entry=entry)
        async with history_errors():
            stored = await search.get(execution_id)
        if stored is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        reply(resp, summary(stored[0]))


class Destroy(AdminResource):
    """Delete final executions, by id (`filterByTk`) or by the list's filters
    (at least one): `{"data": {"count": N}}`. A running one is refused: cancel
    it first."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        params = query(req)
        target: ExecutionFilter | str
        if params.get("filterByTk") is not None:
            target = filter_by_tk(req)
        else:
            target = execution_filter(params)
            if target == ExecutionFilter():
                raise falcon.HTTPBadRequest(
                    description="give filterByTk or at least one filter[...] to destroy"
                )
        async with history_errors():
            try:
                count = await self.services.search.destroy(target)
            except StillRunning:
                raise falcon.HTTPBadRequest(
                    description="the execution has not finished: cancel it first"
                ) from None
        if isinstance(target, str) and count == 0:
            raise falcon.HTTPNotFound(description=f"execution {target!r} not found")
        reply(resp, {"count": count})


async def queued_execution(services: Services, execution_id: str) -> tuple[Execution, str] | None:
    """An accepted async event whose execution has not started (status null),
    read from its workflow's inbox, with its entry id; None when it is not there."""
    entry = await services.inbox.find(execution_id)
    event = entry.event if entry is not None else None
    if entry is None or event is None:
        return None
    execution = execution_of(event)
    return execution, entry.id


class NoVersion(Exception):
    """The workflow has no enabled version to replay on."""


class Replayer:
    """Runs executions' trigger contexts again, each as a new execution on its
    workflow's current enabled version (`replayOf` names the original)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._versions: dict[str, WorkflowVersion | None] = {}

    async def replay(self, original: Execution) -> tuple[str, int | None, bool]:
        """The new execution's id, its status (None while queued) and whether its
        workflow is sync (it has run) or async (it is stored)."""
        if original.key not in self._versions:
            self._versions[original.key] = await self.services.workflows.enabled_version(
                original.key
            )
        version = self._versions[original.key]
        if version is None:
            raise NoVersion(original.key)
        event = TriggerEvent.start(
            key=original.key,
            workflowId=version.id,
            context=original.context or {},
            replayOf=original.id,
        )
        if version.sync:
            execution = await self.services.router.run_manual(event)
            return execution.id, execution.status, True
        await self.services.inbox.add(event)
        return event.id, None, False


class Replay(AdminResource):
    """Replay one execution (`filterByTk`), or every final execution the list's
    filters match (SPEC §11: at least one filter; `{"data": {"count": N}}`)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        params = query(req)
        if params.get("filterByTk") is None:
            await self._replay_all(req, resp, params)
            return
        execution_id = filter_by_tk(req)
        async with history_errors():
            found = await self.services.search.get(execution_id)
        if found is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        original = found[0]
        try:
            new_id, status, ran = await Replayer(self.services).replay(original)
        except NoVersion:
            raise falcon.HTTPBadRequest(
                description=f"workflow {original.key!r} has no enabled version to replay on"
            ) from None
        except Unavailable:
            raise executors_unavailable() from None
        except (NotEnabled, StaleRoute):
            raise falcon.HTTPConflict(description="the workflow changed; retry") from None
        except (StoreError, OSError):
            raise store_unavailable() from None
        reply(
            resp,
            {"execution": {"id": new_id, "status": status}, "replayOf": original.id},
            status=200 if ran else 202,
        )

    async def _replay_all(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, params: dict[str, Any]
    ) -> None:
        where = execution_filter(params)
        if where == ExecutionFilter():
            raise falcon.HTTPBadRequest(
                description="give filterByTk or at least one filter[...] to replay"
            )
        replayer = Replayer(self.services)
        gate = asyncio.Semaphore(BULK_REPLAYS_AT_ONCE)
        replayed = skipped = 0

        async def one(original: Execution) -> None:
            nonlocal replayed, skipped
            async with gate:
                try:
                    await replayer.replay(original)
                    replayed += 1
                except (NoVersion, NotEnabled, StaleRoute):
                    skipped += 1

        cursor: str | None = None
        try:
            while True:
                async with history_errors():
                    page, _ = await self.services.search.page(
                        msgspec.structs.replace(where, before=cursor), limit=BULK_PAGE
                    )
                await asyncio.gather(*(one(e) for e in page if is_final(e.status)))
                if len(page) < BULK_PAGE:
                    break
                cursor = page[-1].id
        except Unavailable:
            raise executors_unavailable() from None
        except (StoreError, OSError):
            raise store_unavailable() from None
        reply(resp, {"count": replayed, "skipped": skipped})


#: Bulk replay: executions read per page, and replays in flight at once (a sync
#: workflow's replay runs while the request waits).
BULK_PAGE = 500
BULK_REPLAYS_AT_ONCE = 32


def routes(services: Services) -> list[tuple[str, object]]:
    return [
        ("/api/executions:list", List(services)),
        ("/api/executions:get", Get(services)),
        ("/api/executions:cancel", Cancel(services)),
        ("/api/executions:replay", Replay(services)),
        ("/api/executions:destroy", Destroy(services)),
    ]
