"""The admin API (SPEC §6): NocoBase resource:action routes, bearer-token auth,
`{"data": ...}` replies with `meta` on lists."""

from __future__ import annotations

import falcon.asgi

from ingress.admin import executions, jobs, parse, supervisors, workflows
from ingress.services import Services


def add_routes(app: falcon.asgi.App, services: Services) -> None:
    for path, resource in (
        *workflows.routes(services),
        *executions.routes(services),
        *jobs.routes(services),
        *parse.routes(services),
        *supervisors.routes(services),
    ):
        app.add_route(path, resource)
