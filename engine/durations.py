"""Durations as people write them in settings and definitions: `"1s"`, `"250ms"`,
`"10m"`, `"2h"`, `"14d"`, `"1w"`, or a bare number of seconds. One parser for
every place that takes one (retention, retry backoff, node retries)."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")


class DurationError(ValueError):
    """Text that is not a duration; the message says what is accepted."""


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`: a number (seconds) or text such as `"1.5s"`, `"10m"`,
    `"14d"`. Negative, infinite and unknown units are refused."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if match is None:
            raise DurationError(
                f"{value!r} is not a duration: write a number and a unit, "
                "ms, s, m, h, d or w (e.g. 500ms, 1s, 10m, 14d)"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"{value!r} is not a duration ≥ 0")
    return seconds
