"""Request bodies for the load: files used round-robin, with `{{seq}}` (a
running number) and `{{uuid}}` (a fresh UUID4) substituted per request so each
event carries a distinct id. Other `{{...}}` text is left alone."""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path

DEFAULT_BODY = b'{"id": "evt_{{seq}}", "type": "payment_intent.succeeded", "amount": 1200}'

_PLACEHOLDER = re.compile(rb"\{\{\s*(seq|uuid)\s*\}\}")


class Bodies:
    def __init__(self, templates: list[bytes]) -> None:
        # re.split keeps the captured names at odd indexes: [text, name, text, ...]
        self.parts = [_PLACEHOLDER.split(t) for t in templates]
        self._cycle = itertools.cycle(self.parts)
        self._seq = itertools.count(1)

    @classmethod
    def from_files(cls, paths: list[str]) -> Bodies:
        return cls([Path(p).read_bytes() for p in paths] if paths else [DEFAULT_BODY])

    @property
    def templates(self) -> list[bytes]:
        return [
            b"".join(p if i % 2 == 0 else b"{{" + p + b"}}" for i, p in enumerate(parts))
            for parts in self.parts
        ]

    def next(self) -> bytes:
        parts = next(self._cycle)
        if len(parts) == 1:
            return parts[0]
        out = bytearray(parts[0])
        for i in range(1, len(parts), 2):
            if parts[i] == b"seq":
                out += str(next(self._seq)).encode()
            else:
                out += str(uuid.uuid4()).encode()
            out += parts[i + 1]
        return bytes(out)
