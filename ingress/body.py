"""Reading a webhook body: media type (415), size (413), JSON and depth (400),
and the opt-in form and text bodies (`config.request.bodyTypes`).

Falcon and gunicorn impose no size limit, so it is enforced here: the declared
length first, then a running count while streaming (chunked bodies)."""

from __future__ import annotations

from typing import Any

import falcon
import msgspec

from engine.jsvalues import as_double
from ingress.querystring import FormError, parse_form

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
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return False
    return True


JSON, FORM, TEXT = "json", "form", "text"
_UTF8 = ("utf-8", "utf8")
_TEXT_CHARSETS = (*_UTF8, "us-ascii", "ascii")
_DESCRIBED = {
    JSON: "JSON (Content-Type: application/json)",
    FORM: "a form (application/x-www-form-urlencoded)",
    TEXT: "text (text/*, application/xml)",
}


def body_type(content_type: str | None, accepted: frozenset[str]) -> str:
    """Which of the workflow's `bodyTypes` a body of this media type is; 415 when
    none. JSON is looked at first, so the default costs what it always did."""
    if is_json_media(content_type):
        if JSON in accepted:
            return JSON
        kind: str | None = JSON
    else:
        kind = _other_type(content_type)
    if kind not in accepted:
        wanted = " or ".join(_DESCRIBED[k] for k in (JSON, FORM, TEXT) if k in accepted)
        raise falcon.HTTPUnsupportedMediaType(description=f"the body must be {wanted}")
    return kind


def _other_type(content_type: str | None) -> str | None:
    """`form`, or `text` with no charset or UTF-8 (or its subset US-ASCII), else
    None. A form's charset is not looked at: the body is percent-escaped ASCII."""
    if not content_type:
        return None
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media == "application/x-www-form-urlencoded":
        return FORM
    if (
        media.startswith("text/")
        or media == "application/xml"
        or (media.startswith("application/") and media.endswith("+xml"))
    ):
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                _TEXT_CHARSETS
            ):
                return None
        return TEXT
    return None


def decode_other(kind: str, data: bytes) -> Any:
    """A form body as a qs-style object, a text body as a string; 400 when it is
    not UTF-8, or a form that cannot be read without losing fields."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise falcon.HTTPBadRequest(description="request body is not valid UTF-8") from None
    if kind == TEXT:
        return text
    try:
        return parse_form(text)
    except FormError as exc:
        raise falcon.HTTPBadRequest(
            description=f"request body is not a valid form: {exc}"
        ) from None


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
