"""Paths into JSON values: template paths (`a.b.0.c`, with NocoBase's array
mapping), request-mapping paths (`query[0].a`, lodash `get` style) and the path
listing behind `webhook:parse`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_MISSING: Any = object()
_INDEX = re.compile(r"^\d+$")
#: Digits of the longest index a list could have; longer indexes are always out
#: of range (and past Python's int-from-text limit at 4,300 digits).
_MAX_INDEX_DIGITS = 18
_BRACKET_PATH = re.compile(r"""[^.[\]]+|\[(?:(\d+)|"([^"]*)"|'([^']*)')\]""")


def lookup(root: Any, segments: tuple[str, ...]) -> Any:
    """Resolve `segments` in `root`; `MISSING` when a step does not exist.

    Where a segment meets a list and is not an index, the list is replaced by the
    items' values for that segment, flattened one level (NocoBase's
    `appendArrayColumn`), so `orders.items.sku` yields every sku.
    """
    value = root
    for seg in segments:
        if value is None:
            return _MISSING
        if isinstance(value, dict):
            value = value.get(seg, _MISSING)
        elif isinstance(value, list):
            if _INDEX.match(seg):
                value = _item(value, seg)
            elif seg == "length":
                value = len(value)
            else:
                mapped: list[Any] = []
                for item in value:
                    got = item.get(seg) if isinstance(item, dict) else None
                    if isinstance(got, list):
                        mapped.extend(got)
                    else:
                        mapped.append(got)
                value = mapped
        elif isinstance(value, str):
            if seg == "length":
                value = len(value)
            elif _INDEX.match(seg):
                value = _item(value, seg)
            else:
                return _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


MISSING = _MISSING


def _item(sequence: list[Any] | str, index: str) -> Any:
    if len(index) > _MAX_INDEX_DIGITS:
        return _MISSING
    position = int(index)
    return sequence[position] if position < len(sequence) else _MISSING


def parse_request_path(path: str) -> tuple[str | int, ...]:
    """Split a lodash-style path: `query[0].a` → `("query", 0, "a")`."""
    parts: list[str | int] = []
    for match in _BRACKET_PATH.finditer(path):
        index, dq, sq = match.groups()
        if index is not None:
            # lodash reads indexes as text, so one too long for any list stays text.
            parts.append(int(index) if len(index) <= _MAX_INDEX_DIGITS else index)
        elif dq is not None:
            parts.append(dq)
        elif sq is not None:
            parts.append(sq)
        else:
            text = match.group(0)
            parts.append(text)
    return tuple(parts)


def get_request_path(root: Any, path: tuple[str | int, ...]) -> Any:
    """lodash `get` (no array mapping); None when the path does not exist."""
    value = root
    for seg in path:
        if isinstance(value, dict):
            value = value.get(str(seg))
        elif isinstance(value, list):
            try:
                idx = int(seg)
            except ValueError:
                return None
            value = value[idx] if 0 <= idx < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def list_paths(value: Any, limit: int = 10_000) -> list[str]:
    """Every path in a JSON value, parents first: `{"b": {"c": 2}}` → `b`, `b.c`.

    List items are addressed as `[n]` (`query[0].a`), the form the request
    mapping reads. Stops after `limit` paths so a huge sample stays cheap.
    """
    out: list[str] = []
    for path in _walk(value, ""):
        out.append(path)
        if len(out) >= limit:
            break
    return out


def _walk(value: Any, prefix: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _walk(child, path)
    elif isinstance(value, list):
        for idx, child in enumerate(value):
            path = f"{prefix}[{idx}]"
            yield path
            yield from _walk(child, path)
