"""Reading a webhook body: media type (415), size (413), JSON and depth (400).

Falcon and gunicorn impose no size limit, so it is enforced here: the declared
length first, then a running count while streaming (chunked bodies)."""

from __future__ import annotations

from typing import Any

import falcon
import msgspec

from engine.jsvalues import as_double

_decode = msgspec.json.Decoder().decode
#: Integers msgpack (how events are stored and passed on) can hold.
_MSGPACK_INTS = range(-(2**63), 2**64)


def is_json_media(content_type: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, charset utf-8 if any."""
    if not content_type:
        return False
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def has_body(req: falcon.asgi.Request) -> bool:
    length = req.content_length
    if length is not None:
        return length > 0
    return req.get_header("Transfer-Encoding") is not None


async def read_body(req: falcon.asgi.Request, max_bytes: int) -> bytes:
    length = req.content_length
    if length is not None:
        if length > max_bytes:
            raise falcon.HTTPContentTooLarge(
                description=f"request body is larger than the limit of {max_bytes} bytes"
            )
        return await req.stream.read()
    chunks: list[bytes] = []
    total = 0
    async for chunk in req.stream:
        total += len(chunk)
        if total > max_bytes:
            raise falcon.HTTPContentTooLarge(
                description=f"request body is larger than the limit of {max_bytes} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(data: bytes, max_depth: int) -> Any:
    """Parse JSON; 400 for invalid JSON, invalid UTF-8 or nesting over `max_depth`."""
    if not data.strip():
        return {}
    try:
        value = _decode(data)
    except msgspec.DecodeError as exc:
        raise falcon.HTTPBadRequest(description=f"request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise falcon.HTTPBadRequest(description="request body is not valid UTF-8") from None
    except RecursionError:
        raise falcon.HTTPBadRequest(
            description=f"request body is nested deeper than {max_depth} levels"
        ) from None
    # Cheap pre-check: fewer brackets than the limit cannot nest deeper than it.
    if data.count(b"{") + data.count(b"[") > max_depth and depth_of(value) > max_depth:
        raise falcon.HTTPBadRequest(
            description=f"request body is nested deeper than {max_depth} levels"
        )
    return value


def huge_ints_as_doubles(value: Any) -> Any:
    """Integers msgpack cannot hold become doubles (±Infinity past 1.8e308), as
    Node.js reads every JSON number; the rest is left as it is, in place.

    msgspec decodes JSON integers of any size; rather than look for such rare
    ones in every body, the ingress calls this when encoding an event fails."""
    if not isinstance(value, dict | list):
        return as_double(value) if type(value) is int and value not in _MSGPACK_INTS else value
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if type(child) is int:
                if child not in _MSGPACK_INTS:
                    item[key] = as_double(child)
            elif isinstance(child, dict | list):
                stack.append(child)
    return value


def depth_of(value: Any) -> int:
    """Nesting depth of containers (`{}` is 1, `{"a": []}` is 2), iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest
