"""The `{"data": ..., "meta": ..., "warnings": ...}` envelope every admin
answer (and `/healthz`, `/readyz`) is sent in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
import falcon.asgi
import msgspec

from engine.jsvalues import iso_datetime


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return iso_datetime(obj)
    raise NotImplementedError(type(obj).__name__)


_encode = msgspec.json.Encoder(enc_hook=_enc_hook).encode


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


def page_meta(count: int, page: int, page_size: int) -> dict[str, int]:
    return {"count": count, "page": page, "pageSize": page_size}
