"""`AdminResource`, the base of every admin resource, and `AdminAuth`, the
middleware that checks its bearer token before any responder runs."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from ingress.auth import BEARER_CHALLENGE, bearer_matches
from ingress.services import Services


class AdminResource:
    """Base of admin resources: `AdminAuth` checks the bearer token before any
    of their responders runs."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def authorize(self, req: falcon.asgi.Request) -> None:
        token = self.services.settings.admin_token
        if not bearer_matches(req.get_header("Authorization"), token):
            raise falcon.HTTPUnauthorized(
                description="admin API: send Authorization: Bearer <RAYHOOK_ADMIN_TOKEN>"
                if token
                else "admin API disabled: RAYHOOK_ADMIN_TOKEN is not set",
                challenges=[BEARER_CHALLENGE],
            )


class AdminAuth:
    """Middleware: every request routed to an `AdminResource` needs the token."""

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, params: Any
    ) -> None:
        if isinstance(resource, AdminResource):
            await resource.authorize(req)
