"""An admin request's query parameters: parsed as NocoBase sends them
(`filter[...]`, `filterByTk`, `page`, ...), and the checks they pass."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from ingress.querystring import parse_query_string


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
