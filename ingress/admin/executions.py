"""`/api/executions:*` and `/api/jobs:get` — the execution log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import falcon
import falcon.asgi
import msgspec
from redis.exceptions import RedisError

from actors.router import Unavailable
from engine.records import Execution, TriggerEvent, new_execution_id, now
from engine.status import Reason, Status, is_final
from ingress.admin.common import (
    AdminResource,
    filter_by_tk,
    int_param,
    page_meta,
    query,
    reply,
)
from ingress.services import Services
from store.inbox import NotEnabled, StaleRoute


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
        createdAt=execution.createdAt,
        startedAt=execution.startedAt,
        finishedAt=execution.finishedAt,
    )


def parse_status(raw: Any) -> int | str | None:
    if raw is None:
        return "any"
    if str(raw).lower() in ("null", "queueing"):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise falcon.HTTPBadRequest(
            description=f"filter[status]: {raw!r} is not a status"
        ) from None


class List(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        params = query(req)
        filters = params.get("filter") or {}
        if not isinstance(filters, dict):
            raise falcon.HTTPBadRequest(description="filter must be filter[field]=value")
        page = int_param(params, "page", 1, low=1, high=1_000_000)
        size = int_param(params, "pageSize", 20, low=1, high=1000)
        executions, count = await self.services.executions.page(
            key=filters.get("workflowKey") or filters.get("key") or None,
            status=parse_status(filters.get("status")),
            page=page,
            page_size=size,
        )
        reply(resp, [summary(e) for e in executions], meta=page_meta(count, page, size))


class Get(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        execution = await self.services.executions.get(execution_id)
        if execution is None:  # accepted, not started yet: still in its inbox
            execution = await queued_execution(self.services, execution_id)
        jobs = await self.services.executions.jobs(execution_id)
        data = msgspec.structs.asdict(execution)
        data["jobs"] = jobs
        reply(resp, data)


class Cancel(AdminResource):
    """Abort an execution that has not finished (NocoBase: ABORTED, reason
    manual_cancel): running in an executor, left over by a crash, or still
    queued in its workflow's inbox (it is then acknowledged, never run)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        log = self.services.executions
        execution = await log.get(execution_id)
        if execution is not None and is_final(execution.status):
            raise falcon.HTTPBadRequest(description="the execution has already finished")
        try:
            running = await self.services.router.cancel(execution_id)
        except Unavailable:
            raise falcon.HTTPServiceUnavailable(description="executor unavailable; retry") from None
        if not running:
            if execution is None:
                execution = await queued_execution(self.services, execution_id)
            execution.status, execution.reason = Status.ABORTED, Reason.MANUAL_CANCEL
            execution.finishedAt = now()
            await log.save(execution)
        stored = await log.get(execution_id)
        if stored is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        reply(resp, summary(stored))


async def queued_execution(services: Services, execution_id: str) -> Execution:
    """An accepted async event whose execution has not started: status null,
    read from its workflow's inbox (404 when it is not there either)."""
    entry = await services.inbox.find(execution_id)
    event = entry.event if entry is not None else None
    if event is None:
        raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
    return Execution(
        id=event.id,
        key=event.key,
        workflowId=event.workflowId,
        status=None,
        context=event.context,
        manually=event.manually,
        replayOf=event.replayOf,
        createdAt=datetime.fromtimestamp(event.createdAt / 1000, UTC),
    )


class Replay(AdminResource):
    """Run an execution's trigger context again, on the workflow's current
    version, as a new execution (`replayOf` names the original)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        original = await self.services.executions.get(execution_id)
        if original is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        version = await self.services.workflows.enabled_version(original.key)
        if version is None:
            raise falcon.HTTPBadRequest(
                description=f"workflow {original.key!r} has no enabled version to replay on"
            )
        event = TriggerEvent(
            id=new_execution_id(),
            key=original.key,
            workflowId=version.id,
            context=original.context or {},
            createdAt=time.time() * 1000,
            replayOf=original.id,
        )
        if version.sync:
            try:
                execution = await self.services.router.run_manual(event)
            except Unavailable:
                raise falcon.HTTPServiceUnavailable(
                    description="the execution service is unavailable; retry later"
                ) from None
            reply(
                resp,
                {
                    "execution": {"id": execution.id, "status": execution.status},
                    "replayOf": original.id,
                },
            )
            return
        try:
            await self.services.inbox.add(event)
        except (NotEnabled, StaleRoute):
            raise falcon.HTTPConflict(description="the workflow changed; retry") from None
        except (RedisError, OSError):
            raise falcon.HTTPServiceUnavailable(
                description="the event store is unavailable; retry later"
            ) from None
        reply(
            resp,
            {"execution": {"id": event.id, "status": None}, "replayOf": original.id},
            status=202,
        )


def routes(services: Services) -> list[tuple[str, object]]:
    return [
        ("/api/executions:list", List(services)),
        ("/api/executions:get", Get(services)),
        ("/api/executions:cancel", Cancel(services)),
        ("/api/executions:replay", Replay(services)),
    ]
