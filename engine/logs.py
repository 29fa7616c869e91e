"""Logging for every rayhook process: one JSON object per line in production
(`RAYHOOK_LOG_FORMAT=json`), readable lines locally. A record's workflow key
and execution id travel as `extra={"key": ..., "execution": ...}`. Nothing here
logs request bodies or headers; callers never pass secrets."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

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


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Set up the `rayhook` loggers of this process (idempotent)."""
    fmt = fmt or os.environ.get("RAYHOOK_LOG_FORMAT", "text")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("rayhook")
    logger.handlers[:] = [handler]
    logger.setLevel((level or os.environ.get("RAYHOOK_LOG_LEVEL", "info")).upper())
    logger.propagate = False
