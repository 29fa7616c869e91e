"""`POST /api/webhook:trigger/<key>` (SPEC §2): the hot path.

Checks run in the order of the SPEC table: route (404), method (405), Basic auth
(401), media type (415, JSON unless `config.request.bodyTypes` adds form or
text), size (413), then the signature over the raw bytes (401) and the body's
parse (400). A repeated delivery (`config.dedupe`) gets the first
delivery's reply and starts nothing. An async event is
answered only after Redis stored it (group-committed with the other requests of
the same loop turn); a sync one waits for its execution's reply."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import falcon
import falcon.asgi
import msgspec

from actors.router import Unavailable as ExecutorsUnavailable
from engine import sync_replies
from engine.caps import Caps
from engine.records import Reply, TriggerEvent
from ingress import pacing
from ingress.auth import BASIC_CHALLENGE, basic_allows
from ingress.body import (
    JSON,
    body_type,
    decode_json,
    decode_other,
    has_body,
    huge_ints_as_doubles,
    read_body,
)
from ingress.errors import error_body
from ingress.querystring import parse_query_string
from ingress.refusals import (
    backlog_full,
    executors_unavailable,
    redis_memory_high,
    refuse,
    store_unavailable,
    workflow_changing,
    workflow_store_unavailable,
)
from ingress.routes import Route
from ingress.services import Services
from ingress.signatures import verify
from store.dedupe import Deduplicated, digest
from store.errors import StoreError
from store.inbox import BacklogFull, NotEnabled, StaleRoute

EXECUTION_HEADER = "X-Rayhook-Execution"

SIGNATURE_CHALLENGE = 'Signature realm="rayhook"'
_encode = msgspec.json.Encoder().encode
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(Reply).decode
#: Extra wait beyond `options.timeout` before the ingress gives up on the executor.
SYNC_GRACE_SECONDS = 10.0
#: How long a sync call without `options.timeout` waits for its reply before a 503.
SYNC_CEILING_SECONDS = 300.0
#: What every server sends in a header: a token name; a value of visible ASCII,
#: space and Latin-1 (HTTP allows a tab too, but some validators refuse it).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSENDABLE = re.compile(r"[^\x20-\x7e\x80-\xff]")
T = TypeVar("T")


class WebhookResource:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.caps = Caps.from_settings(services.settings)
        self.redacted = frozenset(services.settings.redact_headers)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str) -> None:
        route = await self._route(key)
        req.context.workflow_key = key  # a known key: a metrics label
        req.context.mode = "sync" if route.sync else "async"
        _authenticate(req, route, self.settings.env)
        raw = b""
        kind = JSON
        if has_body(req):
            kind = body_type(req.content_type, route.trigger.body_types)
            raw = await read_body(req, route.trigger.body_limit(self.settings.max_body_bytes))
        self._verify(req, route, raw)
        body: Any
        if not raw:
            body = {}
        elif kind == JSON:
            body = decode_json(raw, self.settings.max_json_depth)
        else:
            body = decode_other(kind, raw)
        query = parse_query_string(req.query_string)
        if route.sync:
            reply = await self._run_sync(req, route, query, body, raw)
        else:
            reply = await self._accept(req, route, query, body, raw)
        write_reply(resp, reply)

    def _verify(self, req: falcon.asgi.Request, route: Route, raw: bytes) -> None:
        """The signature, over the raw bytes, before anything parses them."""
        signature = route.trigger.signature
        if signature is None:
            return
        url = ""
        if signature.scheme == "twilio":  # the only scheme that signs the URL
            public = self.settings.public_url
            url = public.rstrip("/") + req.relative_uri if public else req.url
        if not verify(signature, req.headers_lower, raw, self.settings.env, url=url):
            raise falcon.HTTPUnauthorized(
                description="invalid or missing signature", challenges=[SIGNATURE_CHALLENGE]
            )

    async def _accept(
        self, req: falcon.asgi.Request, route: Route, query: dict[str, Any], body: Any, raw: bytes
    ) -> Reply:
        """Store the event, then build the configured reply."""
        if self.services.memory.above_watermark():
            refuse(req, redis_memory_high(self.settings.redis_high_watermark))
        cap = self.settings.max_backlog
        for _attempt in range(2):
            event = _event(req, route, query, body, raw, self.redacted)
            dedupe = self._dedupe(route, event)
            add = partial(self.services.inbox.accept, event, dedupe, max_backlog=cap)
            try:
                queued = await _encodable(event, add)
            except Deduplicated as repeat:  # answered like the first, nothing queued
                reply = self._async_reply(route, event)
                reply.executionId = repeat.execution_id
                return reply
            except NotEnabled:
                self.services.routes.forget(route.key)
                raise falcon.HTTPNotFound(
                    description=f"no enabled workflow with key {route.key!r}"
                ) from None
            except StaleRoute:  # another version was enabled meanwhile: serve with it
                route = await self._route(route.key, fresh=True)
                _authenticate(req, route, self.settings.env)
                self._verify(req, route, raw)
                if route.sync:
                    return await self._run_sync(req, route, query, body, raw)
                continue
            except BacklogFull as full:
                refuse(req, backlog_full(full.backlog, cap))
            except (StoreError, OSError):
                refuse(req, store_unavailable())
            reply = self._async_reply(route, event)
            reply.executionId = event.id
            pause = pacing.delay(queued.backlog, self.settings.pace_backlog)
            if pause:  # stored already: only the reply waits (ingress/pacing.py)
                req.context.paced = pause
                await asyncio.sleep(pause)
            return reply
        raise workflow_changing()

    def _async_reply(self, route: Route, event: TriggerEvent) -> Reply:
        """The configured reply, within the reply caps (the event is stored)."""
        reply = route.trigger.reply.render(event.context, self.settings.env)
        return self.caps.fit_async_reply(reply, route.key)

    def _dedupe(self, route: Route, event: TriggerEvent) -> tuple[str, int] | None:
        """(digest of the delivery's id, window) when the workflow deduplicates."""
        dedupe = route.trigger.dedupe
        if dedupe is None:
            return None
        event_id = dedupe.event_id(event.context, self.settings.env)
        return None if event_id is None else (digest(event_id), dedupe.window)

    async def _route(self, key: str, fresh: bool = False) -> Route:
        routes = self.services.routes
        route = None if fresh else routes.cached(key)
        if route is None:
            try:
                route = await (routes.reload(key) if fresh else routes.lookup(key))
            except (StoreError, OSError):
                raise workflow_store_unavailable() from None
        if route is None:
            raise falcon.HTTPNotFound(description=f"no enabled workflow with key {key!r}")
        return route

    async def _run_sync(
        self, req: falcon.asgi.Request, route: Route, query: dict[str, Any], body: Any, raw: bytes
    ) -> Reply:
        if self.services.memory.above_watermark():
            refuse(req, redis_memory_high(self.settings.redis_high_watermark))
        event = _event(req, route, query, body, raw, self.redacted)
        dedupe = self._dedupe(route, event)
        if dedupe is None:
            return await self._call(req, route, event)
        claims = self.services.dedupe
        event_digest, window = dedupe
        try:
            first = await claims.claim(route.key, event_digest, event.id, window)
        except (StoreError, OSError):
            refuse(req, store_unavailable())
        if first is not None:
            return await self._first_reply(route, event_digest, first)
        try:
            reply = await self._call(req, route, event)
        except falcon.HTTPError:
            await claims.release(route.key, event_digest)
            raise
        if not sync_replies.served(reply):  # the provider's retry runs it again
            await claims.release(route.key, event_digest)
        else:
            await claims.remember_reply(route.key, event_digest, _pack(reply), window)
        return reply

    async def _first_reply(self, route: Route, event_digest: str, first: str) -> Reply:
        """A repeated sync delivery: the first delivery's stored reply, waiting for
        it while the first one still runs."""
        limit = route.timeout_ms / 1000 + SYNC_GRACE_SECONDS if route.timeout_ms > 0 else 30.0
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            stored = await self.services.dedupe.reply(route.key, event_digest)
            if stored is not None:
                return _unpack(stored)
            await asyncio.sleep(0.05)
        return sync_replies.first_still_running(first)

    async def _call(self, req: falcon.asgi.Request, route: Route, event: TriggerEvent) -> Reply:
        timed = route.timeout_ms > 0
        limit = route.timeout_ms / 1000 + SYNC_GRACE_SECONDS if timed else SYNC_CEILING_SECONDS
        try:
            return await asyncio.wait_for(
                _encodable(event, partial(self.services.router.run_sync, event)), limit
            )
        except TimeoutError:
            if not timed:  # no reply at all: the reply (or its executor) was lost
                refuse(req, executors_unavailable())
            return sync_replies.timed_out(event.id, route.timeout_ms)
        except ExecutorsUnavailable:
            refuse(req, executors_unavailable())

    async def _not_allowed(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str
    ) -> None:
        await self._route(key)
        raise falcon.HTTPMethodNotAllowed(
            ["POST"], description=f"{req.method} is not allowed; webhooks are POSTed"
        )

    on_get = on_put = on_patch = on_delete = on_head = on_options = _not_allowed


def _authenticate(req: falcon.asgi.Request, route: Route, env: Mapping[str, str]) -> None:
    credentials = route.trigger.credentials
    if credentials is not None and not basic_allows(
        req.get_header("Authorization"), credentials, env
    ):
        raise falcon.HTTPUnauthorized(
            description="missing or wrong credentials", challenges=[BASIC_CHALLENGE]
        )


def _event(
    req: falcon.asgi.Request,
    route: Route,
    query: dict[str, Any],
    body: Any,
    raw: bytes,
    redacted: frozenset[str],
) -> TriggerEvent:
    return TriggerEvent.start(
        key=route.key,
        workflowId=route.version_id,
        context=route.trigger.build_context(req.headers_lower, query, body, raw, redacted),
    )


async def _encodable(event: TriggerEvent, send: Callable[[], Awaitable[T]]) -> T:
    """`send()` the event; if msgpack cannot encode it (an integer beyond 64
    bits in the body: it fails before anything is sent), once more with such
    integers read as doubles."""
    try:
        return await send()
    except OverflowError:
        huge_ints_as_doubles(event.context)
        return await send()


def write_reply(resp: falcon.asgi.Response, reply: Reply) -> None:
    resp.status = reply.status
    if reply.message is not None:
        resp.data = error_body(reply.message)
        resp.content_type = falcon.MEDIA_JSON
    elif isinstance(reply.body, str):
        resp.text = reply.body
        resp.content_type = "text/plain; charset=utf-8"
    else:
        resp.data = _encode(reply.body)
        resp.content_type = falcon.MEDIA_JSON
    for name, value in reply.headers:
        # A value rendered from the request may hold what HTTP cannot carry (CR/LF,
        # controls, characters beyond Latin-1): those characters are dropped, so
        # the reply is still sent (an async event is already stored).
        if not (value.isascii() and value.isprintable()):  # the common case skips the scan
            value = _UNSENDABLE.sub("", value)
        if _HEADER_NAME.fullmatch(name):
            resp.set_header(name, value)
    if reply.executionId:
        resp.set_header(EXECUTION_HEADER, reply.executionId)
