"""`/healthz` (the process answers) and `/readyz` (Redis and Ray answer)."""

from __future__ import annotations

import falcon
import falcon.asgi

from ingress.admin.envelope import reply
from ingress.services import Services


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        reply(resp, {"status": "ok"})


class Ready:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Ready when Redis and Ray answer. The history store is reported but does
        not decide: while it is down webhooks are still served (executions wait
        in Redis), so the pod must keep its traffic."""
        redis_ok = await self.services.redis.reachable()
        ray_ok = await self.services.router.ready()
        history_ok = await self.services.history.ping()
        status = 200 if redis_ok and ray_ok else 503
        reply(resp, {"redis": redis_ok, "ray": ray_ok, "history": history_ok}, status=status)
