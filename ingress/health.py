"""`/healthz` (the process answers) and `/readyz` (Redis and Ray answer)."""

from __future__ import annotations

from typing import Annotated, Literal

import falcon
import falcon.asgi
import msgspec

from ingress.admin.envelope import reply
from ingress.services import Services


# The replies' data; their docstrings are the descriptions in the OpenAPI document.
class Alive(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The process answers."""

    status: Literal["ok"]


class Readiness(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which dependency answers."""

    redis: bool
    ray: bool
    history: Annotated[
        bool,
        msgspec.Meta(
            description="The history database answers; it does not decide the status "
            "(executions wait in Redis while it is down)."
        ),
    ]


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        reply(resp, Alive(status="ok"))


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
        reply(resp, Readiness(redis=redis_ok, ray=ray_ok, history=history_ok), status=status)
