"""The list filters of `executions:list` / `executions:destroy` (SPEC §9), read
from NocoBase-style query parameters into one `ExecutionFilter`:

    filter[workflowKey]=KEY            (also filter[key])
    filter[status]=1&filter[status]=-1 (repeatable; null or queueing: queued)
    filter[createdAt][$gte]=ISO-8601   ($lte too; both inclusive)
    filter[exhausted]=true|false
    filter[context.body.data.object.id]=pi_123

Anything else is a 400 naming the filter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon

from engine.paths import parse_request_path
from store.filters import ContextMatch, ExecutionFilter

_CONTEXT = "context."
_ROOTS = ("headers", "query", "body", "rawBody")


def execution_filter(params: dict[str, Any]) -> ExecutionFilter:
    filters = params.get("filter")
    if filters is None:
        return ExecutionFilter()
    if not isinstance(filters, dict):
        raise falcon.HTTPBadRequest(description="filter must be filter[field]=value")
    key: str | None = None
    statuses: tuple[int | None, ...] = ()
    created: dict[str, int] = {}
    exhausted: bool | None = None
    context: list[ContextMatch] = []
    for name, value in filters.items():
        if name in ("workflowKey", "key"):
            key = _text(f"filter[{name}]", value)
        elif name == "status":
            statuses = tuple(_status(v) for v in (value if isinstance(value, list) else [value]))
        elif name == "createdAt":
            created = _range(value)
        elif name == "exhausted":
            exhausted = _flag("filter[exhausted]", value)
        elif name.startswith(_CONTEXT):
            context.append(ContextMatch(_path(name), _text(f"filter[{name}]", value)))
        else:
            raise falcon.HTTPBadRequest(
                description=f"filter[{name}]: unknown filter; use workflowKey, status, "
                "createdAt, exhausted or a context path such as context.body.id"
            )
    return ExecutionFilter(
        key=key,
        statuses=statuses,
        created_from=created.get("$gte"),
        created_to=created.get("$lte"),
        context=tuple(context),
        exhausted=exhausted,
    )


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise falcon.HTTPBadRequest(description=f"{where}: give one value")
    return value


def _status(value: Any) -> int | None:
    text = _text("filter[status]", value)
    if text.lower() in ("null", "queueing"):
        return None
    try:
        return int(text)
    except ValueError:
        raise falcon.HTTPBadRequest(
            description=f"filter[status]: {text!r} is not a status number (or null)"
        ) from None


def _flag(where: str, value: Any) -> bool:
    text = _text(where, value).lower()
    if text not in ("true", "false"):
        raise falcon.HTTPBadRequest(description=f"{where}: true or false, not {text!r}")
    return text == "true"


def _range(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise falcon.HTTPBadRequest(
            description="filter[createdAt]: use filter[createdAt][$gte] and/or [$lte]"
        )
    bounds: dict[str, int] = {}
    for op, raw in value.items():
        where = f"filter[createdAt][{op}]"
        if op not in ("$gte", "$lte"):
            raise falcon.HTTPBadRequest(description=f"{where}: only $gte and $lte are known")
        text = _text(where, raw)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise falcon.HTTPBadRequest(
                description=f"{where}: {text!r} is not an ISO 8601 date or time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        bounds[op] = int(moment.timestamp() * 1000)
    return bounds


def _path(name: str) -> tuple[str | int, ...]:
    """`context.body.items.0.id` → ("body", "items", 0, "id"): digits index lists."""
    where = f"filter[{name}]"
    path = parse_request_path(name[len(_CONTEXT) :])
    if not path or path[0] not in _ROOTS:
        raise falcon.HTTPBadRequest(
            description=f"{where}: a context path starts with headers, query, body or rawBody"
        )
    out: list[str | int] = []
    for segment in path:
        text = str(segment)
        if not text or '"' in text or "\\" in text:
            raise falcon.HTTPBadRequest(description=f"{where}: {text!r} cannot be searched")
        out.append(int(text) if text.isdigit() and len(text) < 10 else text)
    return tuple(out)
