"""Request bodies for the load: files used round-robin, with `{{seq}}` (a
running number) and `{{uuid}}` (a fresh UUID4) substituted per request so each
event carries a distinct id. Other `{{...}}` text is left alone.

A body is sent as JSON when it starts with `{`, `[` or `"`, else as a form
(`application/x-www-form-urlencoded`, its trailing newline dropped), unless a
`Content-Type` given with `--header` says otherwise for every body."""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path

DEFAULT_BODY = b'{"id": "evt_{{seq}}", "type": "payment_intent.succeeded", "amount": 1200}'
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

_PLACEHOLDER = re.compile(rb"\{\{\s*(seq|uuid)\s*\}\}")


def media_type_of(template: bytes) -> str:
    return JSON_TYPE if template.lstrip()[:1] in (b"{", b"[", b'"') else FORM_TYPE


class Bodies:
    def __init__(self, templates: list[bytes], content_type: str | None = None) -> None:
        self.content_types = [content_type or media_type_of(t) for t in templates]
        templates = [
            t.rstrip(b"\r\n") if kind == FORM_TYPE else t
            for t, kind in zip(templates, self.content_types, strict=True)
        ]
        # re.split keeps the captured names at odd indexes: [text, name, text, ...]
        self.parts = [_PLACEHOLDER.split(t) for t in templates]
        self._cycle = itertools.cycle(list(zip(self.parts, self.content_types, strict=True)))
        self._seq = itertools.count(1)

    @classmethod
    def from_files(cls, paths: list[str], content_type: str | None = None) -> Bodies:
        templates = [Path(p).read_bytes() for p in paths] if paths else [DEFAULT_BODY]
        return cls(templates, content_type)

    @property
    def templates(self) -> list[bytes]:
        return [
            b"".join(p if i % 2 == 0 else b"{{" + p + b"}}" for i, p in enumerate(parts))
            for parts in self.parts
        ]

    def next(self) -> tuple[bytes, str]:
        """The next body and its content type."""
        parts, content_type = next(self._cycle)
        if len(parts) == 1:
            return parts[0], content_type
        out = bytearray(parts[0])
        for i in range(1, len(parts), 2):
            if parts[i] == b"seq":
                out += str(next(self._seq)).encode()
            else:
                out += str(uuid.uuid4()).encode()
            out += parts[i + 1]
        return bytes(out), content_type
