"""Logging for every rayhook process: one JSON object per line in production
(`RAYHOOK_LOG_FORMAT=json`), readable lines locally. A record's workflow key
and execution id travel as `extra={"key": ..., "execution": ...}`. Nothing here
logs request bodies or headers; callers never pass secrets, and `$env` values
that reach a line all the same (inside an exception's text) are masked."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable

from engine.redaction import SecretMask

ENV_PREFIX = "RAYHOOK_ENV_"
_FIELDS = ("key", "execution", "job", "version")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = " ".join(f"{n}={getattr(record, n)}" for n in _FIELDS if getattr(record, n, None))
        return f"{line} [{tags}]" if tags else line


class MaskingFormatter(logging.Formatter):
    """Another formatter's line with the `$env` values masked."""

    def __init__(self, inner: logging.Formatter, mask: SecretMask) -> None:
        super().__init__()
        self.inner = inner
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask.text(self.inner.format(record))


def configure(
    level: str | None = None, fmt: str | None = None, *, secrets: Iterable[str] | None = None
) -> None:
    """Set up the `rayhook` loggers of this process (idempotent). `secrets`:
    the `$env` values to mask (default: this process's RAYHOOK_ENV_*)."""
    fmt = fmt or os.environ.get("RAYHOOK_LOG_FORMAT", "text")
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if secrets is None:
        secrets = (v for k, v in os.environ.items() if k.startswith(ENV_PREFIX))
    values = list(secrets)
    # A JSON line holds a value as JSON text: mask that form too.
    mask = SecretMask([*values, *(json.dumps(v)[1:-1] for v in values)])
    handler.setFormatter(MaskingFormatter(formatter, mask) if mask else formatter)
    logger = logging.getLogger("rayhook")
    logger.handlers[:] = [handler]
    logger.setLevel((level or os.environ.get("RAYHOOK_LOG_LEVEL", "info")).upper())
    logger.propagate = False
