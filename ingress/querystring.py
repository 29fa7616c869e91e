"""Query strings parsed the way Node's `qs` does with NocoBase's options
(`strictNullHandling`, `arrayLimit: 100`): `a[b]=1` → `{"a": {"b": "1"}}`,
`a=1&a=2` → `{"a": ["1", "2"]}`, `?flag` → `{"flag": null}`.

A form body (`application/x-www-form-urlencoded`) is the same text in the body
and is parsed the same way, with one difference: what qs would quietly drop or
reshape (parameters past the limit, keys nested past the depth) or leave as
written (a malformed `%` escape) is refused, since a body's fields are the data."""

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
PARAMETER_LIMIT = 1000
DEPTH_LIMIT = 5
_OPTIONS = DecodeOptions(
    strict_null_handling=True,
    list_limit=_LIST_LIMIT,
    parameter_limit=PARAMETER_LIMIT,
    depth=DEPTH_LIMIT,
    decoder=_decode_component,
)
_FORM_OPTIONS = DecodeOptions(
    strict_null_handling=True,
    list_limit=_LIST_LIMIT,
    parameter_limit=PARAMETER_LIMIT,
    depth=DEPTH_LIMIT,
    strict_depth=True,
    decoder=_decode_component,
)


class FormError(ValueError):
    """A form body that cannot be read without losing or changing its fields."""


def parse_query_string(query: str) -> dict[str, Any]:
    if not query:
        return {}
    return _parse(query.lstrip("?"), _OPTIONS)


def parse_form(text: str) -> dict[str, Any]:
    """A form body, as the query would be parsed; `FormError` for one with a
    malformed `%` escape, more than 1,000 parameters or keys nested deeper than 5."""
    bad = _BAD_ESCAPE.search(text)
    if bad is not None:
        raise FormError(
            f"malformed percent escape {text[bad.start() : bad.start() + 3]!r} "
            f"at character {bad.start()}"
        )
    # qs counts every `&`-separated part, empty ones too.
    if text.count("&") >= PARAMETER_LIMIT:
        raise FormError(f"more than {PARAMETER_LIMIT} parameters")
    try:
        return _parse(text, _FORM_OPTIONS)
    except IndexError:  # qs-codec's strict_depth
        raise FormError(f"a key is nested deeper than {DEPTH_LIMIT} levels") from None


def _parse(query: str, options: DecodeOptions) -> dict[str, Any]:
    # Only a key given more than _LIST_LIMIT times overflows, and qs-codec merges
    # those repeats in quadratic time (it copies the whole overflow object on each).
    if query.count("&") >= _LIST_LIMIT:
        repeated = _repeated_values(query)
        if any(len(values) > _LIST_LIMIT for values in repeated.values()):
            return decode({key: _combined(values) for key, values in repeated.items()}, options)
    return decode(query, options)


def _repeated_values(query: str) -> dict[str, list[str | None]]:
    """qs-codec's first pass (key → every value given for it, in order) for our
    options, in linear time."""
    query = query.replace("%5B", "[").replace("%5b", "[").replace("%5D", "]").replace("%5d", "]")
    repeated: dict[str, list[str | None]] = {}
    for part in query.split("&")[:PARAMETER_LIMIT]:
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
