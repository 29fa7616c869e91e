"""An admin request's body: JSON (or YAML when sent as YAML) read as plain
values, and converted to a struct with a 400 naming what is wrong."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import msgspec

from engine.definition import DefinitionError, describe_validation_error, load_document
from ingress.body import read_body
from ingress.errors import HTTPErrors


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
