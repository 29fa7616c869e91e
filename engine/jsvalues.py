"""JavaScript value semantics that NocoBase's calculators and templates rely on.

NocoBase compares operands with JS operators (`a == b`, `a > b`) and interpolates
with `String(value)`. Payloads arrive as JSON, so the rules are reproduced here for
JSON values plus `datetime` (JS `Date`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import msgspec


class _Undefined:
    """JS `undefined`: what a path that does not exist yields inside a condition,
    where it must not behave like null (`undefined <= 100` is false in JS)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def is_nullish(value: Any) -> bool:
    """`value == null` in JS: null or undefined."""
    return value is None or value is UNDEFINED


_NUMBER_TEXT = re.compile(
    r"^\s*(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[+-]?Infinity)\s*$"
)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_double(value: float | int) -> float:
    """A number as JS holds it: JSON integers too large for a double (msgspec
    keeps them as ints) are ±Infinity, as `Number("1e400")` is."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def number_to_string(value: float | int) -> str:
    """ECMAScript `Number::toString`: `1.0` → `"1"`, `1e-5` → `"0.00001"`,
    `1e21` → `"1e+21"`, `2**64` → `"18446744073709552000"`."""
    if isinstance(value, int):
        if abs(value) < 2**53:
            return str(value)
        value = as_double(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as the spec asks.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    exponent = int(exp_text or 0) + len(int_part)  # position of the decimal point
    if int_part == "0":
        stripped = frac_part.lstrip("0")
        exponent = int(exp_text or 0) - (len(frac_part) - len(stripped))
        digits = stripped
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def iso_datetime(value: datetime) -> str:
    """`Date.prototype.toISOString()`: UTC, milliseconds, trailing `Z`."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_display_string(value: Any) -> str:
    """How a value reads inside interpolated text.

    Follows `String(value)` except for objects and arrays, which render as JSON
    instead of JS's `[object Object]` / comma-joined text (a deliberate, documented
    deviation: nobody wants `[object Object]` in a webhook reply).
    """
    if value is None or value is UNDEFINED:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_to_string(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    return msgspec.json.encode(value, enc_hook=_enc_hook).decode()


def js_string(value: Any) -> str:
    """`String(value)` exactly, for the calculators that coerce with `toString()`."""
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return to_display_string(value)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return iso_datetime(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def to_number(value: Any) -> float:
    """`Number(value)` (ToNumber) for JSON values and dates."""
    if value is UNDEFINED:
        return math.nan
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if is_number(value):
        return as_double(value)
    if isinstance(value, datetime):
        return value.timestamp() * 1000.0
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        if not _NUMBER_TEXT.match(text):
            return math.nan
        lowered = text.lower()
        if lowered.startswith(("0x", "0o", "0b")):
            return float(int(text, 0))
        return float(text)
    if isinstance(value, list):
        return to_number(js_string(value))
    return math.nan


def divide(x: float, y: float) -> float:
    """`x / y` on doubles: by zero it is ±Infinity or NaN, as IEEE 754 says,
    where Python raises ZeroDivisionError."""
    if y != 0:
        return x / y
    if x == 0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


def power(x: float, y: float) -> float:
    """`x ** y` (`Math.pow`) on doubles: NaN where the result would be complex,
    ±Infinity where it overflows or zero has a negative exponent; never an exception."""
    if math.isnan(y) or (math.isinf(y) and abs(x) == 1):
        return math.nan  # where Python's math.pow answers 1.0
    if y == 0:
        return 1.0
    odd = y % 2 == 1  # only an odd integer leaves 1
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and odd else math.inf
    except ValueError:  # a negative number to a fraction, or zero to a negative power
        if x != 0:
            return math.nan
        return -math.inf if math.copysign(1.0, x) < 0 and odd else math.inf


def to_int32(number: float | int) -> int:
    """ToInt32 of a number: NaN and ±Infinity are 0, others are truncated and
    wrapped to a signed 32-bit integer (what bitwise operators work on)."""
    if isinstance(number, float) and not math.isfinite(number):
        return 0
    wrapped = int(number) & 0xFFFFFFFF
    return wrapped - 0x100000000 if wrapped & 0x80000000 else wrapped


def _to_primitive(value: Any) -> Any:
    if isinstance(value, list | dict):
        return js_string(value)
    return value


def loose_equal(a: Any, b: Any) -> bool:
    """JS `a == b` (Abstract Equality) over JSON values."""
    if is_nullish(a) or is_nullish(b):
        return is_nullish(a) and is_nullish(b)
    if type(a) is type(b) or (is_number(a) and is_number(b)):
        if isinstance(a, list | dict):
            return a is b  # objects compare by identity in JS
        return bool(a == b)
    if isinstance(a, list | dict) and isinstance(b, list | dict):
        return a is b
    a, b = _to_primitive(a), _to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, datetime) or isinstance(b, datetime):
        return to_number(a) == to_number(b)
    return to_number(a) == to_number(b)


def less_than(a: Any, b: Any) -> bool | None:
    """JS Abstract Relational Comparison `a < b`; None stands for `undefined` (NaN)."""
    a, b = _to_primitive(a), _to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        # JS compares UTF-16 code units; for the BMP this is code-point order.
        return a < b
    x, y = to_number(a), to_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return x < y


def truthy(value: Any) -> bool:
    """JS truthiness (`Boolean(value)`)."""
    if value is None or value is False or value is UNDEFINED:
        return False
    if is_number(value):
        return not (value == 0 or (isinstance(value, float) and math.isnan(value)))
    if isinstance(value, str):
        return value != ""
    return True


def parse_date(value: Any) -> float:
    """`new Date(value).getTime()`; NaN when JS would give an Invalid Date."""
    if isinstance(value, datetime):
        return to_number(value)
    if is_number(value):
        return as_double(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return math.nan
        if parsed.tzinfo is None:
            # JS reads a date-only string as UTC and a date-time as local time; the
            # service runs in UTC, so both are UTC here.
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp() * 1000.0
    return math.nan
