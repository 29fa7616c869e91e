"""One error format for every reply: `{"errors": [{"message": ...}]}`.

`ErrorEnvelope` is both what is encoded and, through msgspec's JSON Schema,
the `ErrorEnvelope` component of the OpenAPI document (ingress/openapi.py)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import falcon
import msgspec

log = logging.getLogger("rayhook.ingress")

_encode = msgspec.json.Encoder().encode

_Cause = Annotated[str, msgspec.Meta(description="Why a 503: what to wait for before retrying.")]


class ErrorDetail(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One problem: `message` for people, `cause` (503 only) for retrying clients."""

    message: str
    cause: _Cause | msgspec.UnsetType = msgspec.UNSET


class ErrorEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every error reply: one entry per problem."""

    errors: Annotated[list[ErrorDetail], msgspec.Meta(min_length=1)]


def error_body(*messages: str, cause: str | None = None) -> bytes:
    reason = msgspec.UNSET if cause is None else cause
    return _encode(ErrorEnvelope([ErrorDetail(m, reason) for m in messages]))


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon's error serializer: our envelope, JSON always."""
    messages = getattr(exc, "messages", None) or [exc.description or exc.title or "error"]
    resp.data = error_body(*messages, cause=getattr(exc, "cause", None))
    resp.content_type = falcon.MEDIA_JSON


class HTTPErrors(falcon.HTTPError):
    """An error reply with several messages (definition validation)."""

    def __init__(self, status: int, messages: list[str], **kwargs: Any) -> None:
        super().__init__(status, description=messages[0] if messages else None, **kwargs)
        self.messages = messages


async def handle_unexpected(req: Any, resp: Any, exc: Exception, params: Any) -> None:
    """Anything unhandled: log it with its stack, answer a bare 500."""
    if isinstance(exc, falcon.HTTPError):
        raise exc
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(description="internal error")
