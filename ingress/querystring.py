"""Query strings parsed the way Node's `qs` does with NocoBase's options
(`strictNullHandling`, `arrayLimit: 100`): `a[b]=1` → `{"a": {"b": "1"}}`,
`a=1&a=2` → `{"a": ["1", "2"]}`, `?flag` → `{"flag": null}`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from qs_codec import DecodeOptions, decode
from qs_codec.models.overflow_dict import OverflowDict

_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


def _decode_component(text: str | None, *_args: Any, **_kwargs: Any) -> str | None:
    """qs's `decode`: `+` is a space, then `decodeURIComponent`, and on a malformed
    escape (which makes it throw) the text as it was."""
    if text is None:
        return None
    text = text.replace("+", " ")
    if "%" not in text or _BAD_ESCAPE.search(text):
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


# qs keeps index <= arrayLimit as a list index; qs-codec's limit is exclusive.
_LIST_LIMIT = 101
_PARAMETER_LIMIT = 1000
_OPTIONS = DecodeOptions(
    strict_null_handling=True,
    list_limit=_LIST_LIMIT,
    parameter_limit=_PARAMETER_LIMIT,
    depth=5,
    decoder=_decode_component,
)


def parse_query_string(query: str) -> dict[str, Any]:
    if not query:
        return {}
    query = query.lstrip("?")
    # Only a key given more than _LIST_LIMIT times overflows, and qs-codec merges
    # those repeats in quadratic time (it copies the whole overflow object on each).
    if query.count("&") >= _LIST_LIMIT:
        repeated = _repeated_values(query)
        if any(len(values) > _LIST_LIMIT for values in repeated.values()):
            return decode({key: _combined(values) for key, values in repeated.items()}, _OPTIONS)
    return decode(query, _OPTIONS)


def _repeated_values(query: str) -> dict[str, list[str | None]]:
    """qs-codec's first pass (key → every value given for it, in order) for our
    options, in linear time."""
    query = query.replace("%5B", "[").replace("%5b", "[").replace("%5D", "]").replace("%5d", "]")
    repeated: dict[str, list[str | None]] = {}
    for part in query.split("&")[:_PARAMETER_LIMIT]:
        if not part:
            continue
        bracket_equals = part.find("]=")
        split = part.find("=") if bracket_equals == -1 else bracket_equals + 1
        if split == -1:
            key, value = _decode_component(part), None
        else:
            key, value = _decode_component(part[:split]), _decode_component(part[split + 1 :])
        if key:
            repeated.setdefault(key, []).append(value)
    return repeated


def _combined(values: list[str | None]) -> Any:
    """What qs's `combine` makes of a key's values: one value, a list, or past
    the list limit an object with numeric keys."""
    if len(values) == 1:
        return values[0]
    if len(values) <= _LIST_LIMIT:
        return values
    return OverflowDict({str(index): value for index, value in enumerate(values)})
