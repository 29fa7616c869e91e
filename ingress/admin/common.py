"""What every admin resource shares: the bearer-token check, reading a JSON
body, query filters, and the `{"data": ...}` envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
import falcon.asgi
import msgspec

from engine.definition import DefinitionError, describe_validation_error, load_document
from engine.jsvalues import iso_datetime
from ingress.auth import BEARER_CHALLENGE, bearer_matches
from ingress.body import read_body
from ingress.errors import HTTPErrors
from ingress.querystring import parse_query_string
from ingress.services import Services


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return iso_datetime(obj)
    raise NotImplementedError(type(obj).__name__)


_encode = msgspec.json.Encoder(enc_hook=_enc_hook).encode


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


def reply(
    resp: falcon.asgi.Response,
    data: Any,
    *,
    status: int = 200,
    meta: Any = None,
    warnings: list[str] | None = None,
) -> None:
    envelope: dict[str, Any] = {"data": data}
    if meta is not None:
        envelope["meta"] = meta
    if warnings is not None:
        envelope["warnings"] = warnings
    resp.status = status
    resp.data = _encode(envelope)
    resp.content_type = falcon.MEDIA_JSON


async def json_body(req: falcon.asgi.Request, limit: int) -> Any:
    """The request body as plain values (JSON, or YAML when sent as YAML)."""
    data = await read_body(req, limit)
    if not data.strip():
        return {}
    is_yaml = "yaml" in (req.content_type or "")
    try:
        return load_document(data, filename="x.yaml" if is_yaml else "x.json")
    except DefinitionError as exc:
        raise HTTPErrors(400, exc.messages) from None
    except UnicodeDecodeError:
        raise falcon.HTTPBadRequest(description="request body is not valid UTF-8") from None


def convert(value: Any, kind: type[Any], what: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise HTTPErrors(400, [f"{what}: {describe_validation_error(exc, '')}"]) from None


def query(req: falcon.asgi.Request) -> dict[str, Any]:
    return parse_query_string(req.query_string)


def filter_by_tk(req: falcon.asgi.Request) -> str:
    value = query(req).get("filterByTk")
    if not isinstance(value, str) or not value:
        raise falcon.HTTPBadRequest(description="filterByTk is required")
    return value


def int_param(params: dict[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise falcon.HTTPBadRequest(description=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise falcon.HTTPBadRequest(description=f"{name} must be from {low} to {high}")
    return value


def page_meta(count: int, page: int, page_size: int) -> dict[str, int]:
    return {"count": count, "page": page, "pageSize": page_size}
