"""The 18 comparison calculators of the `basic` condition engine and its and/or
groups, with JavaScript operator semantics (NocoBase `logicCalculate.ts`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.jsvalues import (
    UNDEFINED,
    is_nullish,
    is_number,
    js_string,
    less_than,
    loose_equal,
    parse_date,
)
from engine.templates import Placeholder, Renderer, Single, compile_template

Comparer = Callable[[Any, Any], bool]


def _has_date(a: Any, b: Any) -> bool:
    return isinstance(a, datetime) or isinstance(b, datetime)


def _date_blocked(a: Any, b: Any) -> bool:
    return isinstance(a, bool) or isinstance(b, bool) or is_nullish(a) or is_nullish(b)


def _date_compare(a: Any, b: Any, op: Callable[[float, float], bool]) -> bool:
    x, y = parse_date(a), parse_date(b)
    if math.isnan(x) or math.isnan(y):
        return False
    return op(x, y)


def equal(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        return False if _date_blocked(a, b) else _date_compare(a, b, lambda x, y: x == y)
    return loose_equal(a, b)


def not_equal(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        if _date_blocked(a, b):
            return True
        x, y = parse_date(a), parse_date(b)
        return x != y  # NaN != anything, as in JS
    return not loose_equal(a, b)


def gt(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        return False if _date_blocked(a, b) else _date_compare(a, b, lambda x, y: x > y)
    return less_than(b, a) is True


def gte(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        return False if _date_blocked(a, b) else _date_compare(a, b, lambda x, y: x >= y)
    return less_than(a, b) is False  # JS: a >= b is !(a < b) unless undefined


def lt(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        return False if _date_blocked(a, b) else _date_compare(a, b, lambda x, y: x < y)
    return less_than(a, b) is True


def lte(a: Any, b: Any) -> bool:
    if _has_date(a, b):
        return False if _date_blocked(a, b) else _date_compare(a, b, lambda x, y: x <= y)
    return less_than(b, a) is False


def _same_value_zero(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return a is b
    return bool(a == b)


def includes(a: Any, b: Any) -> bool:
    """`a.includes(b)`: substring for text, membership for arrays, TypeError otherwise."""
    if isinstance(a, str):
        return js_string(b) in a
    if isinstance(a, list):
        return any(_same_value_zero(item, b) for item in a)
    raise TypeError(f"includes needs a string or an array on the left, got {_kind(a)}")


def not_includes(a: Any, b: Any) -> bool:
    return not includes(a, b)


def _text(value: Any) -> str:
    if is_nullish(value):
        raise TypeError(f"Cannot read properties of {js_string(value)} (reading 'toString')")
    return js_string(value)


def starts_with(a: Any, b: Any) -> bool:
    return _text(a).startswith(_text(b))


def not_starts_with(a: Any, b: Any) -> bool:
    return not starts_with(a, b)


def ends_with(a: Any, b: Any) -> bool:
    return _text(a).endswith(_text(b))


def not_ends_with(a: Any, b: Any) -> bool:
    return not ends_with(a, b)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


CALCULATORS: dict[str, Comparer] = {
    "equal": equal,
    "notEqual": not_equal,
    "gt": gt,
    "gte": gte,
    "lt": lt,
    "lte": lte,
    "==": equal,
    "!=": not_equal,
    ">": gt,
    ">=": gte,
    "<": lt,
    "<=": lte,
    "includes": includes,
    "notIncludes": not_includes,
    "startsWith": starts_with,
    "notStartsWith": not_starts_with,
    "endsWith": ends_with,
    "notEndsWith": not_ends_with,
}


class CalculationError(ValueError):
    """A malformed `calculation` tree; `field` is the path inside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Comparison:
    comparer: Comparer | None  # None: an empty item, which NocoBase counts as true
    operands: tuple[Renderer, ...]

    @property
    def placeholders(self) -> list[Placeholder]:
        return [ph for r in self.operands for ph in r.placeholders]

    def evaluate(self, scope: Any) -> bool:
        if self.comparer is None or not self.operands:
            return True
        a = _operand(self.operands[0], scope)
        b = _operand(self.operands[1], scope) if len(self.operands) > 1 else UNDEFINED
        return bool(self.comparer(a, b))


def _operand(renderer: Renderer, scope: Any) -> Any:
    """An operand's value; a path that does not exist is JS `undefined`, not null."""
    if isinstance(renderer, Single):
        return renderer.placeholder.resolve(scope, missing=UNDEFINED)
    return renderer.render(scope)


@dataclass(frozen=True, slots=True)
class Group:
    any_of: bool  # "or" when true, "and" otherwise
    items: tuple[Comparison | Group, ...]

    def evaluate(self, scope: Any) -> bool:
        if self.any_of:
            return any(item.evaluate(scope) for item in self.items)
        return all(item.evaluate(scope) for item in self.items)


Calculation = Comparison | Group


def compile_calculation(raw: Any, field: str = "calculation") -> Calculation:
    """Check and compile a `{group: {type, calculations}}` / `{calculator, operands}` tree."""
    if raw is None:
        return Group(False, ())
    if not isinstance(raw, dict):
        raise CalculationError(field, "expected an object")
    if "group" in raw:
        extra = set(raw) - {"group"}
        if extra:
            raise CalculationError(field, f"unknown field `{sorted(extra)[0]}` beside `group`")
        group = raw["group"]
        if not isinstance(group, dict):
            raise CalculationError(f"{field}.group", "expected an object")
        unknown = set(group) - {"type", "calculations"}
        if unknown:
            raise CalculationError(f"{field}.group", f"unknown field `{sorted(unknown)[0]}`")
        kind = group.get("type", "and")
        if kind not in ("and", "or"):
            raise CalculationError(f"{field}.group.type", f'expected "and" or "or", got {kind!r}')
        items = group.get("calculations") or []
        if not isinstance(items, list):
            raise CalculationError(f"{field}.group.calculations", "expected an array")
        return Group(
            kind == "or",
            tuple(
                compile_calculation(item, f"{field}.group.calculations[{i}]")
                for i, item in enumerate(items)
            ),
        )
    unknown = set(raw) - {"calculator", "operands"}
    if unknown:
        raise CalculationError(field, f"unknown field `{sorted(unknown)[0]}`")
    name = raw.get("calculator")
    operands = raw.get("operands") or []
    if not isinstance(operands, list) or len(operands) > 2:
        raise CalculationError(f"{field}.operands", "expected an array of at most two operands")
    if not name:
        return Comparison(None, ())
    comparer = CALCULATORS.get(name)
    if comparer is None:
        raise CalculationError(
            f"{field}.calculator",
            f'unknown calculator "{name}"; known: {", ".join(CALCULATORS)}',
        )
    return Comparison(comparer, tuple(compile_template(o) for o in operands))


def calculation_placeholders(calc: Calculation) -> list[Any]:
    if isinstance(calc, Comparison):
        return calc.placeholders
    return [ph for item in calc.items for ph in calculation_placeholders(item)]
