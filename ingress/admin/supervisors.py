"""`GET /api/supervisors:list`: the workflow supervisors awake in the execution
actors (operators find them by name, `supervisor:<key>`), with each workflow's
backlog: what runs, what waits, what ended since it woke."""

from __future__ import annotations

import falcon
import falcon.asgi

from actors.router import Unavailable
from ingress.admin.common import AdminResource, page_meta, reply
from ingress.refusals import executors_unavailable
from ingress.services import Services


class SupervisorList(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        try:
            rows = await self.services.router.supervisors()
        except Unavailable:
            raise executors_unavailable() from None
        pipe = self.services.redis.pipeline(transaction=False)
        for row in rows:
            pipe.xlen(self.services.keys.inbox(str(row["key"])))
        for row, backlog in zip(rows, await pipe.execute(), strict=True):
            row["backlog"] = backlog
        reply(resp, rows, meta=page_meta(len(rows), 1, max(1, len(rows))))


def routes(services: Services) -> list[tuple[str, object]]:
    return [("/api/supervisors:list", SupervisorList(services))]
