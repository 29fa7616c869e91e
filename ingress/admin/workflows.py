"""`/api/workflows:*` — create, list, get, update, revision, destroy, execute."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import msgspec

from actors.router import Unavailable
from engine.definition import (
    KEY_PATTERN,
    DefinitionError,
    VersionPatch,
    WebhookConfig,
    WorkflowDefinition,
    WorkflowVersion,
)
from engine.records import TriggerEvent
from engine.trigger import over_server_limit, security_warnings
from ingress.admin.body import convert, json_body
from ingress.admin.envelope import page_meta, reply
from ingress.admin.params import filter_by_tk, int_param, query
from ingress.admin.passwords import masked, unmasked
from ingress.admin.resource import AdminResource
from ingress.body import huge_ints_as_doubles
from ingress.errors import HTTPErrors
from ingress.refusals import execution_service_unavailable
from ingress.services import Services
from store.workflows import Frozen, NotFound


def view(version: WorkflowVersion, base_url: str) -> WorkflowVersion:
    shown = masked(version)
    shown.webhookUrl = f"{base_url}/api/webhook:trigger/{version.key}"
    return shown


class _Workflows(AdminResource):
    def base_url(self, req: falcon.asgi.Request) -> str:
        return (self.services.settings.public_url or req.prefix).rstrip("/")

    async def version(self, req: falcon.asgi.Request) -> WorkflowVersion:
        raw = filter_by_tk(req)
        try:
            return await self.services.workflows.get(int(raw))
        except (ValueError, NotFound):
            raise falcon.HTTPNotFound(description=f"workflow version {raw!r} not found") from None

    def check_body_limit(self, config: WebhookConfig) -> None:
        """A workflow's `maxBodyBytes` may only lower the server's limit."""
        problem = over_server_limit(config, self.services.settings.max_body_bytes)
        if problem is not None:
            raise HTTPErrors(400, [problem])

    async def after_change(self, key: str, enabled: bool) -> None:
        """The executors read the enabled workflows' inboxes (and a disabled
        one's until it drained) by themselves: only the route cache changes."""
        self.services.routes.forget(key)


class Create(_Workflows):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raw = await json_body(req, self.services.settings.max_body_bytes)
        definition = convert(raw, WorkflowDefinition, "definition")
        self.check_body_limit(definition.config)
        stored = None
        if definition.key is not None:
            check_key(definition.key)
            stored = await self.check_same_mode(definition)
        definition.config = unmasked(definition.config, stored)
        try:
            version = await self.services.workflows.create(definition)
        except DefinitionError as exc:
            raise HTTPErrors(400, exc.messages) from None
        await self.after_change(version.key, version.enabled)
        warnings = security_warnings(version.config)
        reply(resp, view(version, self.base_url(req)), warnings=warnings)

    async def check_same_mode(self, definition: WorkflowDefinition) -> WebhookConfig | None:
        """Refuse a new version that changes sync/async; the config of the key's
        current (else latest) version, if any."""
        siblings = await self.services.workflows.versions(key=definition.key)
        if siblings and siblings[0].sync != definition.sync:
            raise falcon.HTTPBadRequest(
                description=f"workflow {definition.key!r} is "
                f"{'sync' if siblings[0].sync else 'async'}; a new version cannot change that"
            )
        latest = max(siblings, key=lambda v: (v.current, v.id), default=None)
        return None if latest is None else latest.config


class List(_Workflows):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        params = query(req)
        filters = params.get("filter") or {}
        if not isinstance(filters, dict):
            raise falcon.HTTPBadRequest(description="filter must be filter[field]=value")
        current = filters.get("current")
        versions = await self.services.workflows.versions(
            key=filters.get("key") or None,
            current=None if current is None else str(current).lower() == "true",
        )
        if "enabled" in filters:
            wanted = str(filters["enabled"]).lower() == "true"
            versions = [v for v in versions if v.enabled == wanted]
        versions.sort(key=lambda v: v.id, reverse=True)
        count = len(versions)
        if str(params.get("paginate", "true")).lower() == "false":
            page, size = 1, max(count, 1)
        else:
            page = int_param(params, "page", 1, low=1, high=1_000_000)
            size = int_param(params, "pageSize", 20, low=1, high=1000)
        chunk = versions[(page - 1) * size : page * size]
        base = self.base_url(req)
        reply(resp, [view(v, base) for v in chunk], meta=page_meta(count, page, size))


class Get(_Workflows):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        reply(resp, view(await self.version(req), self.base_url(req)))


class Update(_Workflows):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        current = await self.version(req)
        raw = await json_body(req, self.services.settings.max_body_bytes)
        patch = convert(raw, VersionPatch, "update")
        if patch.config is not msgspec.UNSET:
            self.check_body_limit(patch.config)
            patch.config = unmasked(patch.config, current.config)
        try:
            version = await self.services.workflows.update(current.id, patch)
        except (DefinitionError, Frozen) as exc:
            messages = exc.messages if isinstance(exc, DefinitionError) else [str(exc)]
            raise HTTPErrors(400, messages) from None
        await self.after_change(version.key, version.enabled)
        warnings = security_warnings(version.config)
        reply(resp, view(version, self.base_url(req)), warnings=warnings)


class Revision(_Workflows):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        source = await self.version(req)
        version = await self.services.workflows.revision(source.id)
        reply(resp, view(version, self.base_url(req)))


class Destroy(_Workflows):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        version = await self.version(req)
        await self.services.workflows.destroy(version.id)
        if version.enabled:
            await self.after_change(version.key, False)
        version.enabled = version.current = False
        reply(resp, view(version, self.base_url(req)))


class Execute(_Workflows):
    """A manual run of one version with the given trigger context (`values`)."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        version = await self.version(req)
        raw = await json_body(req, self.services.settings.max_body_bytes)
        values: Any = raw.get("values", {}) if isinstance(raw, dict) else None
        if not isinstance(values, dict):
            raise falcon.HTTPBadRequest(description='send {"values": {...trigger context...}}')
        huge_ints_as_doubles(values)  # as a webhook's body: msgpack holds 64 bits
        event = TriggerEvent.start(
            key=version.key, workflowId=version.id, context=values, manually=True
        )
        try:
            execution = await self.services.router.run_manual(event)
        except Unavailable:
            raise execution_service_unavailable() from None
        reply(resp, {"execution": {"id": execution.id, "status": execution.status}})


def check_key(key: str) -> None:
    if not KEY_PATTERN.fullmatch(key):
        raise falcon.HTTPBadRequest(
            description="key: letters, digits, - and _ only, at most 64 characters"
        )


def routes(services: Services) -> list[tuple[str, object]]:
    return [
        ("/api/workflows:create", Create(services)),
        ("/api/workflows:list", List(services)),
        ("/api/workflows:get", Get(services)),
        ("/api/workflows:update", Update(services)),
        ("/api/workflows:revision", Revision(services)),
        ("/api/workflows:destroy", Destroy(services)),
        ("/api/workflows:execute", Execute(services)),
    ]
