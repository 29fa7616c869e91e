"""Query strings parsed the way Node's `qs` does with NocoBase's options
(`strictNullHandling`, `arrayLimit: 100`): `a[b]=1` → `{"a": {"b": "1"}}`,
`a=1&a=2` → `{"a": ["1", "2"]}`, `?flag` → `{"flag": null}`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from qs_codec import DecodeOptions, decode

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
_OPTIONS = DecodeOptions(
    strict_null_handling=True,
    list_limit=101,
    parameter_limit=1000,
    depth=5,
    decoder=_decode_component,
)


def parse_query_string(query: str) -> dict[str, Any]:
    if not query:
        return {}
    return decode(query.lstrip("?"), _OPTIONS)
