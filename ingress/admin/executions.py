"""`/api/executions:*` and `/api/jobs:get` — the execution log."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import msgspec

from actors.router import Unavailable
from engine.records import Execution
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


class ExecutionSummary(msgspec.Struct, kw_only=True):
    """A list row: the execution without its (possibly large) context and output."""

    id: str
    key: str
    workflowId: int
    status: int | None
    reason: str | None
    error: str | None
    manually: bool
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
        if execution is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        jobs = await self.services.executions.jobs(execution_id)
        data = msgspec.structs.asdict(execution)
        data["jobs"] = jobs
        reply(resp, data)


class Cancel(AdminResource):
    """Abort a running execution (NocoBase: ABORTED with reason manual_cancel)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        execution_id = filter_by_tk(req)
        log = self.services.executions
        execution = await log.get(execution_id)
        if execution is None:
            raise falcon.HTTPNotFound(description=f"execution {execution_id!r} not found")
        if is_final(execution.status):
            raise falcon.HTTPBadRequest(description="the execution has already finished")
        try:
            canceled = await self.services.router.cancel(execution_id)
        except Unavailable:
            raise falcon.HTTPServiceUnavailable(description="executor unavailable; retry") from None
        if not canceled:
            # Not running anywhere (its executor restarted): record the abort; the
            # supervisor then acknowledges its inbox entry instead of re-running it.
            execution.status, execution.reason = Status.ABORTED, Reason.MANUAL_CANCEL
            await log.save(execution)
        execution = await log.get(execution_id) or execution
        reply(resp, summary(execution))


class JobGet(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        job_id = filter_by_tk(req)
        job = await self.services.executions.job(job_id)
        if job is None:
            raise falcon.HTTPNotFound(description=f"job {job_id!r} not found")
        reply(resp, job)


class NotYet(AdminResource):
    """SPEC routes whose feature is not in this release: a clear 501, not a 404."""

    def __init__(self, services: Services, feature: str) -> None:
        super().__init__(services)
        self.feature = feature

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise falcon.HTTPNotImplemented(description=f"{self.feature} is not available yet")

    on_get = on_post


def routes(services: Services) -> list[tuple[str, object]]:
    return [
        ("/api/executions:list", List(services)),
        ("/api/executions:get", Get(services)),
        ("/api/executions:cancel", Cancel(services)),
        ("/api/executions:replay", NotYet(services, "executions:replay")),
        ("/api/jobs:get", JobGet(services)),
        ("/api/jobs:resume", NotYet(services, "jobs:resume (manual nodes)")),
    ]
