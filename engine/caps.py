"""Caps on what one execution may keep or send (RAYHOOK_MAX_RESULT_BYTES,
RAYHOOK_MAX_REPLY_HEADER_BYTES, RAYHOOK_MAX_REPLY_BODY_BYTES): a job result
beyond its cap is an ERROR, never a 100 MB record; a reply's templated headers
and body beyond theirs are an ERROR of the response node (sync) or are cut from
an async reply, whose event is already stored and must still get its 2xx."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from engine.records import Reply
from engine.settings import Settings

log = logging.getLogger("rayhook.caps")

_encode = msgspec.json.Encoder().encode
#: Per header line besides name and value: ": " and CRLF.
HEADER_OVERHEAD = 4


@dataclass(frozen=True, slots=True)
class Caps:
    """Attributes: `result_bytes`, `reply_header_bytes`, `reply_body_bytes`."""

    result_bytes: int
    reply_header_bytes: int
    reply_body_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Caps:
        return cls(
            settings.max_result_bytes,
            settings.max_reply_header_bytes,
            settings.max_reply_body_bytes,
        )

    def oversized_result(self, result: Any) -> dict[str, Any] | None:
        """The error result for a job result larger than the cap as JSON, or None.

        A result that is not JSON at all is left to the execution log to judge."""
        if result is None or isinstance(result, bool | int | float):
            return None
        try:
            size = len(_encode(result))
        except (TypeError, ValueError, OverflowError, RecursionError):
            return None
        if size <= self.result_bytes:
            return None
        return {
            "message": f"the job's result ({size} bytes as JSON) is larger than "
            f"{self.result_bytes} bytes (RAYHOOK_MAX_RESULT_BYTES)",
            "code": "ERR_RESULT_TOO_LARGE",
        }

    def reply_problem(self, headers: list[tuple[str, str]], body: Any) -> str | None:
        """Why a sync reply cannot be sent (its headers or body too large), or None."""
        header_bytes = sum(header_size(name, value) for name, value in headers)
        if header_bytes > self.reply_header_bytes:
            return (
                f"the reply's headers ({header_bytes} bytes) are larger than "
                f"{self.reply_header_bytes} bytes (RAYHOOK_MAX_REPLY_HEADER_BYTES)"
            )
        size = body_size(body)
        if size > self.reply_body_bytes:
            return (
                f"the reply's body ({size} bytes) is larger than "
                f"{self.reply_body_bytes} bytes (RAYHOOK_MAX_REPLY_BODY_BYTES)"
            )
        return None

    def fit_async_reply(self, reply: Reply, key: str) -> Reply:
        """An async reply within the caps: its event is stored already, so the
        sender must get a 2xx it accepts (else it retries and the event runs
        twice). Headers are kept in order while they fit; a body that does not
        fit becomes the default `ok`. What was cut is logged."""
        kept: list[tuple[str, str]] = []
        used = 0
        for name, value in reply.headers:
            size = header_size(name, value)
            if used + size > self.reply_header_bytes:
                log.warning(
                    "reply header %s (%d bytes) left out: the reply headers may hold %d bytes",
                    name,
                    size,
                    self.reply_header_bytes,
                    extra={"key": key},
                )
                continue
            kept.append((name, value))
            used += size
        reply.headers = kept
        size = body_size(reply.body)
        if size > self.reply_body_bytes:
            log.warning(
                "reply body (%d bytes) replaced by 'ok': the reply body may hold %d bytes",
                size,
                self.reply_body_bytes,
                extra={"key": key},
            )
            reply.body = "ok"
        return reply


DEFAULT_CAPS = Caps.from_settings(Settings())


def header_size(name: str, value: str) -> int:
    return len(name) + len(value) + HEADER_OVERHEAD


def body_size(body: Any) -> int:
    """Bytes the ingress sends for `body` (text as is, anything else as JSON)."""
    if isinstance(body, str):
        return len(body.encode("utf-8", "surrogatepass"))
    try:
        return len(_encode(body))
    except (TypeError, ValueError, OverflowError, RecursionError):
        return 0
