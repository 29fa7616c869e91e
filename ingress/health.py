"""`/healthz` (the process answers) and `/readyz` (Redis and Ray answer)."""

from __future__ import annotations

import asyncio

import falcon
import falcon.asgi

from ingress.admin.common import reply
from ingress.services import Services


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        reply(resp, {"status": "ok"})


class Ready:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        redis_ok = await self._redis()
        ray_ok = await self.services.router.ready()
        status = 200 if redis_ok and ray_ok else 503
        reply(resp, {"redis": redis_ok, "ray": ray_ok}, status=status)

    async def _redis(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.services.redis.ping(), 2.0))
        except Exception:
            return False
