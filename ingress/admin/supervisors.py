"""`GET /api/supervisors:list`: the workflow supervisors awake in the execution
actors (operators find them by name, `supervisor:<key>`), with each workflow's
backlog: what runs, what waits, what ended since it woke. Executors that do
not answer (restarting) are named in `meta.unavailable`."""

from __future__ import annotations

import falcon
import falcon.asgi
import msgspec

from ingress.admin.envelope import page_meta, reply
from ingress.admin.resource import AdminResource
from ingress.services import Services


class SupervisorView(msgspec.Struct, kw_only=True):
    """One awake workflow supervisor, summed over the executors it is awake on."""

    name: str
    key: str
    inflight: int
    dispatched: int
    finished: int
    quarantined: int
    awakeSince: float  # epoch seconds
    idleSeconds: float
    executors: list[str]
    backlog: int  # entries in the workflow's inbox: unread plus running


class SupervisorList(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        rows, silent = await self.services.router.supervisors()
        backlogs = await self.services.inbox.backlogs([str(row["key"]) for row in rows])
        views = [
            msgspec.convert({**row, "backlog": backlog}, SupervisorView)
            for row, backlog in zip(rows, backlogs, strict=True)
        ]
        meta = {**page_meta(len(views), 1, max(1, len(views))), "unavailable": silent}
        reply(resp, views, meta=meta)


def routes(services: Services) -> list[tuple[str, object]]:
    return [("/api/supervisors:list", SupervisorList(services))]
