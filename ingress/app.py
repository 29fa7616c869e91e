"""The Falcon ASGI application: routes, the error format, lifespan."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import falcon.asgi

from engine.settings import Settings
from ingress import admin, console_files, openapi
from ingress.admin.resource import AdminAuth
from ingress.errors import handle_unexpected, serialize_error
from ingress.health import Health, Ready
from ingress.metrics import MetricsResource, WebhookMetrics
from ingress.services import Services
from ingress.webhook import WebhookResource
from integrations.wiring import install as install_integrations

log = logging.getLogger("rayhook.ingress")


class Lifespan:
    """Builds the worker's services inside its event loop, closes them at exit."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process_startup(self, scope: Any, event: Any) -> None:
        await self.services.start()

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        await self.services.stop()


def create_app(settings: Settings | None = None) -> falcon.asgi.App:
    settings = settings or Settings.from_env()
    install_integrations()  # the definition checks of the request and script nodes
    services = Services(settings)
    middleware: list[Any] = [Lifespan(services), AdminAuth(), WebhookMetrics()]
    app = falcon.asgi.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_route("/api/webhook:trigger/{key}", WebhookResource(services))
    admin.add_routes(app, services)
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(services))
    app.add_route("/metrics", MetricsResource(services))
    app.add_route(openapi.OPENAPI_PATH, openapi.OpenAPIResource())
    console_files.add_routes(app)
    return app
