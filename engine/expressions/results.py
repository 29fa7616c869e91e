"""How NocoBase's evaluators hand a result back, shared by the math.js and
formula.js engines (`@nocobase/evaluators`: both end in mathjs `round(result, 9)`).

A result that is a number is rounded to 9 decimals, half away from zero, and
NaN or ±Infinity becomes null. Numbers inside a list or an object are not
rounded (NocoBase rounds only a number result); there too NaN and ±Infinity are
null, as JSON writes them. An integral double within ±2**53 becomes an int, so
`2.0` is written `2` as JavaScript writes it.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

RESULT_DECIMALS = 9
MAX_SAFE_INTEGER = 2**53
#: Enough digits to quantize any finite double.
DECIMAL_CONTEXT = Context(prec=400)


def round_decimal(value: float, places: int, mode: str = ROUND_HALF_UP) -> float:
    """`value` rounded to `places` decimals (a negative count rounds to tens,
    hundreds...) in decimal, the way both evaluators' ROUND functions round.
    NaN, ±Infinity and a count beyond what a double holds leave it unchanged."""
    if not math.isfinite(value):
        return value
    try:
        # repr is the shortest round-tripping decimal, as JavaScript prints it,
        # so 1.005 rounds to 1.01 and 0.0000000005 to 0.000000001.
        step = Decimal(1).scaleb(-places)
        return float(Decimal(repr(value)).quantize(step, mode, context=DECIMAL_CONTEXT))
    except ArithmeticError:
        return value


def round_result(value: float) -> float | int | None:
    """A number result as NocoBase gives it: rounded to 9 decimals."""
    if not math.isfinite(value):
        return None
    return plain_number(round_decimal(value, RESULT_DECIMALS))


def plain_number(value: float) -> float | int | None:
    """A number inside a result: not rounded; NaN and ±Infinity are null."""
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER else value


def normalise_result(value: Any, *, top: bool = True) -> Any:
    """A result made JSON-ready by the rules above (lists and objects recursively)."""
    if isinstance(value, float):
        return round_result(value) if top else plain_number(value)
    if isinstance(value, list):
        return [normalise_result(item, top=False) for item in value]
    if isinstance(value, dict):
        return {key: normalise_result(item, top=False) for key, item in value.items()}
    return value
