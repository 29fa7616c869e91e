"""Safe evaluator for NocoBase's ``formula.js`` expression engine.

NocoBase evaluates a ``formula.js`` expression as JavaScript inside an SES
compartment whose globals are the Formula.js functions (``IF``, ``SUM``,
``CONCATENATE``...) plus the ``$$0``, ``$$1``... placeholders that
``{{ path }}`` templates were rewritten to. This module owns that language:
a tokenizer, a Pratt parser for the JavaScript expression grammar and a
tree-walking evaluator with JavaScript value semantics (``engine.jsvalues``).
User text never reaches ``eval``/``exec``; property access only reads JSON keys,
list indexes (0-based, as in JavaScript), ``length``; never Python attributes.

Supported syntax: number/string/array/object literals, ``true false null
undefined NaN Infinity``, ``+ - * / % **``, ``== != === !== < > <= >=``,
``&& || ?? !``, ``& | ^ ~ << >> >>>``, ``typeof``, ``a ? b : c``, ``a.b``,
``a[0]``, ``a?.b`` and calls of the functions in ``SUPPORTED_FUNCTIONS``.
Rejected when the workflow is defined: any other name (``Math``, ``Date``...),
method calls (``"a".toUpperCase()``), assignment, ``;``, template literals,
arrow functions and unknown functions -- never a silent wrong answer.

Results follow NocoBase: a numeric result that is NaN or ±Infinity is null,
other numbers are rounded to 9 decimals (half away from zero), integral ones
within ±2**53 become ints. Formula.js reports problems as error values
(``#VALUE!``, ``#DIV/0!``...); here they raise, so the job becomes ERROR with
the error's name, unless ``IFERROR``/``ISERROR`` catches it. Functions follow
the Excel semantics Formula.js implements; where Formula.js has a plain bug
(``MOD`` of a negative number, ``SUBSTITUTE`` skipping a first-character
match) the Excel answer is given. Work is bounded: sources over 10,000
characters or nested deeper than 100 levels are rejected and no text longer
than 1,000,000 characters is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

from engine.expressions import ExpressionError
from engine.expressions.language import CompiledProgram, Function, Parser, Token, error_at, flatten
from engine.expressions.results import DECIMAL_CONTEXT, plain_number, round_decimal, round_result
from engine.expressions.syntax import Chain, Conditional, EvaluationError, Values, at
from engine.expressions.syntax import Const as _Const
from engine.expressions.syntax import Node as _Node
from engine.jsvalues import (
    UNDEFINED,
    as_double,
    divide,
    is_nullish,
    is_number,
    js_string,
    less_than,
    loose_equal,
    number_to_string,
    power,
    to_int32,
    to_number,
    truthy,
)

MAX_TEXT = 1_000_000


class FormulaError(Exception):
    """A Formula.js error value (``#VALUE!``...), raised instead of returned.

    `where` is set once, by the innermost function call that raised it."""

    def __init__(self, code: str, reason: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason
        self.where = ""

    def __str__(self) -> str:
        text = f"{self.code} ({self.reason})" if self.reason else self.code
        return f"{self.where}{text}" if self.where else text


def _value_error(reason: str = "") -> FormulaError:
    return FormulaError("#VALUE!", reason)


# --- tokenizer ---------------------------------------------------------------------------------

_PUNCTUATORS = (
    ">>>", "===", "!==", "**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "<<", ">>",
    "+", "-", "*", "/", "%", "<", ">", "!", "~", "&", "|", "^", "?", ":", ",", ".",
    "(", ")", "[", "]", "{", "}",
)  # fmt: skip
_REJECTED = {
    "=>": "arrow functions are not supported",
    "++": '"++" is not supported (expressions cannot assign)',
    "--": '"--" is not supported (expressions cannot assign)',
    "=": 'assignment ("=") is not supported; use "==" or "===" to compare values',
    ";": '";" (several statements) is not supported',
    "`": "template literals are not supported; join text with + or CONCATENATE",
    "...": 'spread ("...") is not supported',
}
# JavaScript numbers are ASCII digits only (`٣` and `²` are not numbers there).
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+"
    r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?",
    re.ASCII,
)
_DIGITS = frozenset("0123456789")
_NAME = re.compile(r"[A-Za-z_$][\w$]*")
_SPACE = re.compile(r"\s+|//[^\n]*|/\*[\s\S]*?\*/")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _read_string(source: str, start: int) -> tuple[str, int]:
    """A JS string literal starting at `start`; returns its value and the end index."""
    quote, index = source[start], start + 1
    out: list[str] = []
    while index < len(source):
        char = source[index]
        if char == quote:
            return "".join(out), index + 1
        if char == "\n":
            break
        if char != "\\":
            out.append(char)
            index += 1
            continue
        index += 1
        if index >= len(source):
            break
        esc = source[index]
        if esc in _ESCAPES and not (esc == "0" and source[index + 1 : index + 2].isdigit()):
            out.append(_ESCAPES[esc])
            index += 1
        elif esc == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", source[index + 1 : index + 3]):
            out.append(chr(int(source[index + 1 : index + 3], 16)))
            index += 3
        elif esc == "u" and source[index + 1 : index + 2] == "{":
            end = source.find("}", index)
            digits = source[index + 2 : end] if end > 0 else ""
            if not re.fullmatch(r"[0-9a-fA-F]{1,6}", digits) or int(digits, 16) > 0x10FFFF:
                raise error_at("invalid unicode escape in string", index)
            out.append(chr(int(digits, 16)))
            index = end + 1
        elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", source[index + 1 : index + 5]):
            out.append(chr(int(source[index + 1 : index + 5], 16)))
            index += 5
        elif esc in "xu" or esc.isdigit():
            raise error_at(f'invalid escape sequence "\\{esc}" in string', index)
        elif esc == "\n":  # line continuation
            index += 1
        else:
            out.append(esc)
            index += 1
    raise error_at("unterminated string", start + 1)


def _tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(source):
        col = index + 1
        if match := _SPACE.match(source, index):
            index = match.end()
            continue
        char = source[index]
        if char in "\"'":
            value, index = _read_string(source, index)
            tokens.append(Token("str", source[col - 1 : index], col, value))
            continue
        if char in _DIGITS or (char == "." and source[index + 1 : index + 2] in _DIGITS):
            match = _NUMBER.match(source, index)
            assert match is not None
            text = match.group(0)
            index = match.end()
            if index < len(source) and (source[index].isalnum() or source[index] in "_$"):
                raise error_at(f'invalid number "{text}{source[index]}"', col)
            if text[:2].lower() in ("0x", "0b", "0o"):
                number = as_double(int(text[2:], {"x": 16, "b": 2, "o": 8}[text[1].lower()]))
            else:
                number = float(text)
            tokens.append(Token("num", text, col, number))
            continue
        if match := _NAME.match(source, index):
            tokens.append(Token("name", match.group(0), col))
            index = match.end()
            continue
        for text, message in _REJECTED.items():
            if source.startswith(text, index) and not (
                text == "=" and source.startswith(("==", "=>"), index)
            ):
                raise error_at(message, col)
        for text in _PUNCTUATORS:
            if source.startswith(text, index):
                if text == "?." and source[index + 2 : index + 3].isdigit():
                    text = "?"  # `a ?.5 : b` is a conditional, as in JS
                tokens.append(Token("op", text, col))
                index += len(text)
                break
        else:
            raise error_at(f'unexpected "{char}"', col)
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


# --- value semantics ---------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None or value is UNDEFINED:
        return "null" if value is None else "undefined"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime):
        return "a date"
    return "an object"


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _text(value: Any) -> str:
    """`String(value)` as JavaScript gives it (dates as `Date.prototype.toString`)."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return (
            f"{_WEEKDAYS[utc.weekday()]} {_MONTHS[utc.month - 1]} {utc.day:02d} {utc.year:04d} "
            f"{utc:%H:%M:%S} GMT+0000 (Coordinated Universal Time)"
        )
    if isinstance(value, list):
        return ",".join("" if is_nullish(item) else _text(item) for item in value)
    return js_string(value)


def _checked(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise EvaluationError(f"the text would be longer than {MAX_TEXT} characters")
    return text


def _primitive(value: Any) -> Any:
    """ToPrimitive with the default hint: objects and arrays become text, dates too."""
    if isinstance(value, (list, dict, datetime)):
        return _text(value)
    return value


def _add(a: Any, b: Any) -> Any:
    a, b = _primitive(a), _primitive(b)
    if isinstance(a, str) or isinstance(b, str):
        return _checked(_text(a) + _text(b))
    return to_number(a) + to_number(b)


def _divide(a: Any, b: Any) -> float:
    return divide(to_number(a), to_number(b))


def _remainder(a: Any, b: Any) -> float:
    x, y = to_number(a), to_number(b)
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    return x if math.isinf(y) else math.fmod(x, y)


def _power(a: Any, b: Any) -> float:
    return power(to_number(a), to_number(b))


def _int32(value: Any) -> int:
    return to_int32(to_number(value))


def _strict_equal(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, dict, datetime)):
        return a is b
    return bool(a == b)


def _gt(a: Any, b: Any) -> bool:
    return less_than(_primitive(b), _primitive(a)) is True


def _ge(a: Any, b: Any) -> bool:
    return less_than(_primitive(a), _primitive(b)) is False


def _lt(a: Any, b: Any) -> bool:
    return less_than(_primitive(a), _primitive(b)) is True


def _le(a: Any, b: Any) -> bool:
    return less_than(_primitive(b), _primitive(a)) is False


def _date_loose(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Dates compare by their time value, as `Date.prototype.valueOf` makes them."""

    def compare(a: Any, b: Any) -> bool:
        if isinstance(a, datetime) or isinstance(b, datetime):
            a = to_number(a) if isinstance(a, datetime) else a
            b = to_number(b) if isinstance(b, datetime) else b
        return op(a, b)

    return compare


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": lambda a, b: to_number(a) - to_number(b),
    "*": lambda a, b: to_number(a) * to_number(b),
    "/": _divide,
    "%": _remainder,
    "**": _power,
    "==": loose_equal,
    "!=": lambda a, b: not loose_equal(a, b),
    "===": _strict_equal,
    "!==": lambda a, b: not _strict_equal(a, b),
    "<": _date_loose(_lt),
    ">": _date_loose(_gt),
    "<=": _date_loose(_le),
    ">=": _date_loose(_ge),
    "&": lambda a, b: float(_int32(a) & _int32(b)),
    "|": lambda a, b: float(_int32(a) | _int32(b)),
    "^": lambda a, b: float(_int32(a) ^ _int32(b)),
    "<<": lambda a, b: float(_int32(_int32(a) << (_int32(b) & 31))),
    ">>": lambda a, b: float(_int32(a) >> (_int32(b) & 31)),
    ">>>": lambda a, b: float((_int32(a) % 2**32) >> (_int32(b) & 31)),
}


def _typeof(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _FunctionValue):
        return "function"
    return "object"


_UNARY: dict[str, Callable[[Any], Any]] = {
    "!": lambda value: not truthy(value),
    "-": lambda value: -to_number(value),
    "+": to_number,
    "~": lambda value: float(~_int32(value)),
    "typeof": _typeof,
}
_CANONICAL_INDEX = re.compile(r"0|[1-9]\d*")


def _property_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float) and key.is_integer() and abs(key) < 2**53:
        return str(int(key))
    return _text(key)


def _member(target: Any, key: Any) -> Any:
    """`target[key]` for JSON values: a missing property is undefined, as in JS."""
    if target is None or target is UNDEFINED:
        name = _property_key(key)
        raise EvaluationError(f"Cannot read properties of {_describe(target)} (reading '{name}')")
    name = _property_key(key)
    if isinstance(target, dict):
        return target.get(name, UNDEFINED)
    if isinstance(target, (list, str)):
        if name == "length":
            return len(target)
        if _CANONICAL_INDEX.fullmatch(name) and int(name) < len(target):
            return target[int(name)]
    return UNDEFINED


# --- Formula.js argument conversions (its utils/common.js) -------------------------------------


def _parse_number(value: Any) -> float:
    """Formula.js `parseNumber`: null is 0, booleans 0/1, numeric text its number."""
    if is_nullish(value):
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if is_number(value):
        return as_double(value)
    if isinstance(value, str) and value.strip() != "":
        number = to_number(value)
        if not math.isnan(number):
            return number
    raise _value_error(f"{_describe(value)} is not a number")


def _parse_string(value: Any) -> str:
    return "" if is_nullish(value) else _text(value)


def _numbers(args: Iterable[Any]) -> list[float]:
    return [as_double(v) for v in flatten(args) if is_number(v)]


def _round_decimal(number: float, digits: float, mode: str) -> float:
    if not math.isfinite(number):
        return number
    if not math.isfinite(digits):
        raise FormulaError("#NUM!", "the number of digits must be a finite number")
    return round_decimal(number, int(digits), mode)


def _rounder(mode: str) -> Callable[..., float]:
    def run(number: Any, digits: Any = 0.0) -> float:
        return _round_decimal(_parse_number(number), _parse_number(digits), mode)

    return run


def _clean(number: float, step: float) -> float:
    """A multiple of `step` without binary noise (CEILING(4.3, 0.1) is 4.3, not 4.300000001)."""
    exponent = -math.floor(math.log10(abs(step))) if step else 0
    return round(number, max(0, exponent) + 1) if exponent >= 0 else number


def _ceiling(number: Any, significance: Any = 1.0, mode: Any = 0.0) -> float:
    x, step = _parse_number(number), _parse_number(significance)
    if step == 0:
        return 0.0
    if x > 0 and step < 0:
        raise FormulaError("#NUM!", "CEILING of a positive number needs a positive significance")
    step = abs(step)
    if x < 0 and truthy(_parse_number(mode)):
        return _clean(-math.ceil(-x / step) * step, step)
    return _clean(math.ceil(x / step) * step, step)


def _floor(number: Any, significance: Any = 1.0) -> float:
    x, step = _parse_number(number), _parse_number(significance)
    if step == 0:
        if x == 0:
            return 0.0
        raise FormulaError("#DIV/0!", "FLOOR with a significance of 0")
    if x > 0 and step < 0:
        raise FormulaError("#NUM!", "FLOOR of a positive number needs a positive significance")
    step = abs(step)
    return _clean(math.floor(x / step) * step, step)


def _mod(dividend: Any, divisor: Any) -> float:
    a, b = _parse_number(dividend), _parse_number(divisor)
    if b == 0:
        raise FormulaError("#DIV/0!", "MOD by 0")
    return a - b * math.floor(a / b)


def _power_function(base: Any, exponent: Any) -> float:
    result = _power(_parse_number(base), _parse_number(exponent))
    if math.isnan(result):
        raise FormulaError("#NUM!", "POWER has no real result")
    return result


def _sqrt(value: Any) -> float:
    number = _parse_number(value)
    if number < 0:
        raise FormulaError("#NUM!", "SQRT of a negative number")
    return math.sqrt(number)


def _log_function(function: Callable[[float], float], name: str) -> Callable[[Any], float]:
    def run(value: Any) -> float:
        number = _parse_number(value)
        if number <= 0:
            raise FormulaError("#NUM!", f"{name} of a number that is not positive")
        return function(number)

    return run


def _log(value: Any, base: Any = 10.0) -> float:
    number, b = _parse_number(value), _parse_number(base)
    if number <= 0 or b <= 0 or b == 1:
        raise FormulaError("#NUM!", "LOG needs a positive number and a positive base other than 1")
    return math.log(number) / math.log(b)


def _sum(*args: Any) -> float:
    total = 0.0
    for value in args:
        if is_number(value):
            total += value
        elif isinstance(value, str):
            match = re.match(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", value)
            if match:  # parseFloat: the longest numeric prefix counts
                total += float(match.group(0))
        elif isinstance(value, list):
            total += _sum(*value)
    return total


def _product(*args: Any) -> float:
    defined = [v for v in flatten(args) if not is_nullish(v)]
    result = 1.0 if defined else 0.0
    for value in defined:
        result *= _parse_number(value)
    return result


def _sumproduct(*arrays: Any) -> float:
    columns = [flatten(a) if isinstance(a, list) else [a] for a in arrays]
    if any(len(column) != len(columns[0]) for column in columns):
        raise _value_error("SUMPRODUCT needs arrays of the same length")
    total = 0.0
    for row in zip(*columns, strict=True):
        product = 1.0
        for value in row:
            product *= as_double(value) if is_number(value) else 0.0
        total += product
    return total


def _average(*args: Any) -> float:
    numbers = _numbers(args)
    if not numbers:
        raise FormulaError("#DIV/0!", "AVERAGE of no numbers")
    return math.fsum(numbers) / len(numbers)


def _median(*args: Any) -> float:
    numbers = sorted(_numbers(args))
    if not numbers:
        raise FormulaError("#NUM!", "MEDIAN of no numbers")
    middle = len(numbers) // 2
    return numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2


def _extreme(pick: Callable[[list[float]], float]) -> Callable[..., float]:
    def run(*args: Any) -> float:
        numbers = _numbers(args)
        return pick(numbers) if numbers else 0.0

    return run


def _counta(*args: Any) -> float:
    return float(sum(1 for v in flatten(args) if not is_nullish(v) and v != ""))


def _sign(value: Any) -> float:
    number = _parse_number(value)
    return 0.0 if number == 0 else math.copysign(1.0, number)


def _truncate(number: Any, digits: Any = 0.0) -> float:
    return _round_decimal(_parse_number(number), _parse_number(digits), ROUND_DOWN)


# --- logical ---------------------------------------------------------------------------------


def _test_value(test: Any) -> Any:
    if isinstance(test, str):
        if test in ("true", "false"):
            return test == "true"
        raise _value_error(f'the condition "{test[:40]}" is text, not true or false')
    return test


def _if(test: Any, if_true: Any = UNDEFINED, *rest: Any) -> Any:
    if_false = rest[0] if rest else False
    if_true = 0.0 if is_nullish(if_true) else if_true
    if_false = 0.0 if is_nullish(if_false) else if_false
    test = _test_value(test)
    if isinstance(test, list):
        return [_if(item, if_true, if_false) for item in test]
    return if_true if truthy(test) else if_false


def _ifs(*args: Any) -> Any:
    if len(args) % 2:
        raise FormulaError("#N/A", "IFS takes pairs of condition and value")
    for index in range(0, len(args), 2):
        if truthy(_test_value(args[index])):
            value = args[index + 1]
            return 0.0 if is_nullish(value) else value
    raise FormulaError("#N/A", "no condition of IFS is true")


def _logical(name: str, combine: Callable[[list[bool]], Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        values = [truthy(v) for v in flatten(args) if not (is_nullish(v) or isinstance(v, str))]
        if not values:
            raise _value_error(f"{name} got no logical values")
        return combine(values)

    return run


def _not(value: Any) -> bool:
    if isinstance(value, str):
        raise _value_error("NOT of text")
    return not truthy(value)


def _switch(target: Any, *cases: Any) -> Any:
    for index in range(0, len(cases) - 1, 2):
        if _strict_equal(target, cases[index]):
            return cases[index + 1]
    if len(cases) % 2:
        return cases[-1]
    raise FormulaError("#N/A", "SWITCH found no match and has no default")


# --- text --------------------------------------------------------------------------------------


def _concatenate(*args: Any) -> str:
    parts = []
    for value in flatten(args):
        if isinstance(value, bool):
            parts.append("TRUE" if value else "FALSE")
        else:
            parts.append(_parse_string(value))
    return _checked("".join(parts))


def _textjoin(delimiter: Any, ignore_empty: Any, *args: Any) -> str:
    values = [_parse_string(v) for v in flatten(args)]
    if truthy(ignore_empty):
        values = [v for v in values if v != ""]
    return _checked(_parse_string(delimiter).join(values))


def _count_chars(value: Any) -> int:
    number = _parse_number(value)
    if math.isnan(number):
        return 0
    return max(0, int(number)) if math.isfinite(number) else (MAX_TEXT if number > 0 else 0)


def _len(text: Any) -> float:
    if isinstance(text, list):
        raise _value_error("LEN of an array")
    return float(len(_parse_string(text)))


def _left(text: Any, count: Any = 1.0) -> str:
    return _parse_string(text)[: _count_chars(count)]


def _right(text: Any, count: Any = 1.0) -> str:
    value, n = _parse_string(text), _count_chars(count)
    return value[len(value) - n :] if n < len(value) else value


def _mid(text: Any, start: Any, count: Any) -> str:
    first, n = _parse_number(start), _parse_number(count)
    if not (first > 0 and n > 0):
        raise _value_error("MID needs a start and a count above 0")
    begin = int(first) - 1
    end = begin + int(n) if math.isfinite(n) else None
    return _parse_string(text)[begin:end]


def _proper(text: Any) -> str:
    return re.sub(
        r"\w\S*",
        lambda m: m.group(0)[0].upper() + m.group(0)[1:].lower(),
        _parse_string(text),
        flags=re.ASCII,
    )


def _trim(text: Any) -> str:
    return re.sub(r"\s+", " ", _parse_string(text)).strip()


def _substitute(text: Any, old: Any, new: Any, instance: Any = UNDEFINED) -> Any:
    if not truthy(text) or not truthy(old):
        return text
    value, old_text, new_text = _parse_string(text), _parse_string(old), _parse_string(new)
    if instance is UNDEFINED:
        return _checked(value.replace(old_text, new_text))
    nth = math.floor(to_number(instance)) if math.isfinite(to_number(instance)) else math.nan
    if math.isnan(nth) or nth <= 0:
        raise _value_error("SUBSTITUTE needs an instance number above 0")
    index = -1
    for _ in range(int(nth)):
        index = value.find(old_text, index + 1)
        if index < 0:
            return value
    return _checked(value[:index] + new_text + value[index + len(old_text) :])


def _replace(text: Any, start: Any, count: Any, new: Any) -> str:
    first, n = _parse_number(start), _parse_number(count)
    if not isinstance(text, str) or not isinstance(new, str):
        raise _value_error("REPLACE needs text")
    begin = max(0, int(first) - 1)
    return _checked(text[:begin] + new + text[begin + max(0, int(n)) :])


def _find(needle: Any, haystack: Any, start: Any = 1.0, *, fold: bool = False) -> float:
    what, within = _parse_string(needle), _parse_string(haystack)
    if fold:
        if not isinstance(needle, str) or not isinstance(haystack, str):
            raise _value_error("SEARCH needs text")
        what, within = what.lower(), within.lower()
    begin = max(0, int(_parse_number(start)) - 1)
    found = within.find(what, begin)
    if found < 0:
        raise _value_error(f'"{what[:40]}" was not found')
    return float(found + 1)


def _fixed(number: float, decimals: float, no_commas: bool) -> str:
    if decimals < 0:
        factor = 10 ** (-int(decimals))
        text = number_to_string(_round_decimal(number / factor, 0, ROUND_HALF_UP) * factor)
    else:
        quantum = Decimal(1).scaleb(-int(decimals))
        exact = Decimal(number).quantize(quantum, ROUND_HALF_UP, context=DECIMAL_CONTEXT)
        text = f"{exact:f}"
    if not no_commas:
        whole, dot, fraction = text.partition(".")
        whole = re.sub(r"\B(?=(\d{3})+$)", ",", whole)
        text = whole + dot + fraction
    return text


def _text_function(value: Any, format_text: Any = UNDEFINED) -> str:
    if value is UNDEFINED:
        raise FormulaError("#N/A", "TEXT needs a value")
    if isinstance(value, datetime):
        return _iso(value)[:10]
    if is_nullish(format_text):
        return ""
    if is_number(format_text):
        return number_to_string(format_text)
    if not isinstance(format_text, str):
        raise _value_error("TEXT needs a format text")
    currency = "$" if format_text.startswith("$") else ""
    percent = format_text.endswith("%")
    pattern = format_text.replace("%", "").replace("$", "")
    decimals = pattern.split(".")[1].count("0") if "." in pattern else 0
    number = _parse_number(value) * (100 if percent else 1)
    text = _fixed(number, decimals, "," not in pattern)
    text = "-" + currency + text[1:] if text.startswith("-") else currency + text
    return text + ("%" if percent else "")


def _value(text: Any) -> float:
    if is_number(text):
        return float(text)
    text = "" if is_nullish(text) else text
    if not isinstance(text, str):
        raise _value_error(f"VALUE of {_describe(text)}")
    percent = text.strip().endswith("%") or text.strip().startswith("%")
    cleaned = text.strip().strip("%").strip().lstrip("$").replace(",", "")
    if cleaned == "":
        return 0.0
    number = to_number(cleaned)
    if math.isnan(number):
        raise _value_error(f'"{text[:40]}" is not a number')
    return number / 100 if percent else number


def _exact(a: Any, b: Any) -> bool:
    return _parse_string(a) == _parse_string(b)


def _rept(text: Any, times: Any) -> str:
    value, count = _parse_string(text), _parse_number(times)
    if count < 0:
        raise _value_error("REPT needs a count of 0 or more")
    if value and count * len(value) > MAX_TEXT:
        raise EvaluationError(f"the text would be longer than {MAX_TEXT} characters")
    return value * int(count)


def _t(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- information -------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _parity(value: Any, odd: bool) -> bool:
    number = _parse_number(value)
    return (math.floor(abs(number)) % 2 == 1) == odd


# --- dates (JavaScript Dates; the service's local time zone is UTC) ------------------------------

_EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)


def _iso(value: datetime) -> str:
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _js_date(year: float, month: float, day: float) -> datetime:
    """`new Date(year, month, day)`: months and days overflow into the next unit."""
    y = int(year)
    if 0 <= y <= 99:
        y += 1900
    m = int(month)
    y, m = y + m // 12, m % 12
    try:
        return datetime(y, m + 1, 1, tzinfo=UTC) + timedelta(days=int(day) - 1)
    except (ValueError, OverflowError):
        raise FormulaError("#NUM!", "the date is out of range") from None


def _parse_date(value: Any) -> datetime:
    """Formula.js `parseDate`: dates, Excel serial numbers, ISO and DD/MM/YYYY text."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if is_number(value) or (isinstance(value, str) and not math.isnan(to_number(value))):
        serial = to_number(value)
        if serial < 0 or serial >= 2958466:
            raise FormulaError("#NUM!", "a date serial number must be from 0 to 2958465")
        # Excel's calendar has a 29 February 1900: serials before it start a day later.
        epoch = _EXCEL_EPOCH + timedelta(days=1) if serial < 60 else _EXCEL_EPOCH
        return epoch + timedelta(days=serial)
    if isinstance(value, str):
        text = value.strip()
        if match := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
            year, month, day = (int(g) for g in match.groups())
            return _checked_date(year, month, day)
        if match := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
            day, month, year = (int(g) for g in match.groups())
            return _js_date(year, month - 1, day)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise _value_error(f"{_describe(value)} is not a date")


def _checked_date(year: int, month: int, day: int) -> datetime:
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise _value_error("not a valid date") from None


def _date(year: Any, month: Any, day: Any) -> datetime:
    y, m, d = _parse_number(year), _parse_number(month), _parse_number(day)
    if y < 0 or m < 0 or d < 0:
        raise FormulaError("#NUM!", "DATE needs numbers of 0 or more")
    return _js_date(y, m - 1, d)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _date_part(part: Callable[[datetime], int]) -> Callable[[Any], float]:
    return lambda value: float(part(_parse_date(value).astimezone(UTC)))


def _weekday(value: Any, kind: Any = 1.0) -> float:
    day = _parse_date(value).astimezone(UTC).weekday()  # Monday is 0
    mode = int(_parse_number(kind))
    if mode == 1:
        return float((day + 1) % 7 + 1)
    if mode == 2:
        return float(day + 1)
    if mode == 3:
        return float(day)
    raise FormulaError("#NUM!", "WEEKDAY's type must be 1, 2 or 3")


def _days(end: Any, start: Any) -> float:
    a, b = _parse_date(end).astimezone(UTC), _parse_date(start).astimezone(UTC)
    return float((a.date() - b.date()).days)


# --- the function table ------------------------------------------------------------------------


class _FunctionValue:
    """What a function name is when read as a value (only `typeof` can see it)."""


def _iferror(value: Callable[[], Any], alternative: Callable[[], Any]) -> Any:
    try:
        result = value()
    except FormulaError:
        return alternative()
    return 0.0 if result is None else result


def _iserror(value: Callable[[], Any]) -> bool:
    try:
        value()
    except FormulaError:
        return True
    return False


_FUNCTIONS: dict[str, Function] = {
    # logical
    "IF": Function(_if, 2, 3),
    "IFS": Function(_ifs, 2, None),
    "AND": Function(_logical("AND", all), 1, None),
    "OR": Function(_logical("OR", any), 0, None),
    "XOR": Function(_logical("XOR", lambda vs: sum(vs) % 2 == 1), 0, None),
    "NOT": Function(_not),
    "TRUE": Function(lambda: True, 0, 0),
    "FALSE": Function(lambda: False, 0, 0),
    "IFERROR": Function(_iferror, 2, 2, lazy=True),
    "SWITCH": Function(_switch, 2, None),
    # math
    "SUM": Function(_sum, 0, None),
    "SUMPRODUCT": Function(_sumproduct, 1, None),
    "PRODUCT": Function(_product, 0, None),
    "AVERAGE": Function(_average, 1, None),
    "MEDIAN": Function(_median, 1, None),
    "MIN": Function(_extreme(min), 0, None),
    "MAX": Function(_extreme(max), 0, None),
    "COUNT": Function(lambda *args: float(len(_numbers(args))), 0, None),
    "COUNTA": Function(_counta, 0, None),
    "ROUND": Function(_rounder(ROUND_HALF_UP), 1, 2),
    "ROUNDUP": Function(_rounder(ROUND_UP), 1, 2),
    "ROUNDDOWN": Function(_rounder(ROUND_DOWN), 1, 2),
    "TRUNC": Function(_truncate, 1, 2),
    "INT": Function(lambda v: float(math.floor(_parse_number(v)))),
    "ABS": Function(lambda v: abs(_parse_number(v))),
    "SIGN": Function(_sign),
    "CEILING": Function(_ceiling, 1, 3),
    "FLOOR": Function(_floor, 1, 2),
    "MOD": Function(_mod, 2, 2),
    "POWER": Function(_power_function, 2, 2),
    "SQRT": Function(_sqrt),
    "EXP": Function(lambda v: _power(math.e, _parse_number(v))),
    "LN": Function(_log_function(math.log, "LN")),
    "LOG10": Function(_log_function(math.log10, "LOG10")),
    "LOG": Function(_log, 1, 2),
    "PI": Function(lambda: math.pi, 0, 0),
    # text
    "CONCATENATE": Function(_concatenate, 0, None),
    "CONCAT": Function(_concatenate, 0, None),
    "TEXTJOIN": Function(_textjoin, 3, None),
    "LEN": Function(_len),
    "UPPER": Function(lambda v: _parse_string(v).upper()),
    "LOWER": Function(lambda v: _parse_string(v).lower()),
    "PROPER": Function(_proper),
    "TRIM": Function(_trim),
    "LEFT": Function(_left, 1, 2),
    "RIGHT": Function(_right, 1, 2),
    "MID": Function(_mid, 3, 3),
    "SUBSTITUTE": Function(_substitute, 3, 4),
    "REPLACE": Function(_replace, 4, 4),
    "FIND": Function(_find, 2, 3),
    "SEARCH": Function(lambda a, b, s=1.0: _find(a, b, s, fold=True), 2, 3),
    "TEXT": Function(_text_function, 1, 2),
    "VALUE": Function(_value),
    "EXACT": Function(_exact, 2, 2),
    "REPT": Function(_rept, 2, 2),
    "T": Function(_t),
    # information
    "ISBLANK": Function(lambda v: v is None),
    "ISNUMBER": Function(_is_number),
    "ISTEXT": Function(lambda v: isinstance(v, str)),
    "ISLOGICAL": Function(lambda v: isinstance(v, bool)),
    "ISEVEN": Function(lambda v: _parity(v, odd=False)),
    "ISODD": Function(lambda v: _parity(v, odd=True)),
    "ISERROR": Function(_iserror, 1, 1, lazy=True),
    # dates
    "NOW": Function(_now, 0, 0),
    "TODAY": Function(_today, 0, 0),
    "DATE": Function(_date, 3, 3),
    "YEAR": Function(_date_part(lambda d: d.year)),
    "MONTH": Function(_date_part(lambda d: d.month)),
    "DAY": Function(_date_part(lambda d: d.day)),
    "HOUR": Function(_date_part(lambda d: d.hour)),
    "MINUTE": Function(_date_part(lambda d: d.minute)),
    "SECOND": Function(_date_part(lambda d: d.second)),
    "WEEKDAY": Function(_weekday, 1, 2),
    "DAYS": Function(_days, 2, 2),
}

#: Every function a `formula.js` expression may call (the docs list the same).
SUPPORTED_FUNCTIONS: tuple[str, ...] = tuple(_FUNCTIONS)

_LITERALS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": UNDEFINED,
    "NaN": math.nan,
    "Infinity": math.inf,
}
_RESERVED = frozenset(
    [
        "new",
        "this",
        "function",
        "return",
        "var",
        "let",
        "const",
        "class",
        "delete",
        "void",
        "in",
        "instanceof",
        "yield",
        "await",
        "import",
        "export",
        "if",
        "else",
        "for",
        "while",
        "do",
        "switch",
        "case",
        "break",
        "continue",
        "throw",
        "try",
        "catch",
        "finally",
        "with",
        "debugger",
        "super",
    ]
)


# --- AST ---------------------------------------------------------------------------------------


@contextmanager
def _at(col: int, where: str = "") -> Iterator[None]:
    """`at`, and an error value learns where it was raised but travels on:
    IFERROR and ISERROR may catch it."""
    try:
        with at(col, where):
            yield
    except FormulaError as exc:
        if not exc.where:
            exc.where = f"{where}" if where else ""
            exc.reason = f"{exc.reason}, at column {col}" if exc.reason else f"at column {col}"
        raise


@dataclass(frozen=True, slots=True)
class _FunctionName(_Node):
    def evaluate(self, values: Values) -> Any:
        return _FunctionValue()


@dataclass(frozen=True, slots=True)
class _Unary(_Node):
    op: str
    operand: _Node

    def evaluate(self, values: Values) -> Any:
        value = self.operand.evaluate(values)
        with _at(self.col):
            return _UNARY[self.op](value)


class _Chain(Chain):
    # Binary operators raise no error values (FormulaError): `at` is enough.
    __slots__ = ()
    operators = _BINARY


@dataclass(frozen=True, slots=True)
class _Logical(_Node):
    """`&&`, `||` and `??` chains: short-circuit and yield an operand, as in JS."""

    op: str
    operands: tuple[_Node, ...]

    def evaluate(self, values: Values) -> Any:
        result: Any = UNDEFINED
        for node in self.operands:
            result = node.evaluate(values)
            if self.op == "&&" and not truthy(result):
                return result
            if self.op == "||" and truthy(result):
                return result
            if self.op == "??" and not is_nullish(result):
                return result
        return result


@dataclass(frozen=True, slots=True)
class _Member(_Node):
    target: _Node
    key: _Node
    optional: bool

    def evaluate(self, values: Values) -> Any:
        target = self.target.evaluate(values)
        if self.optional and is_nullish(target):
            return UNDEFINED
        key = self.key.evaluate(values)
        with _at(self.col):
            return _member(target, key)


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    name: str
    function: Function
    args: tuple[_Node, ...]

    def evaluate(self, values: Values) -> Any:
        label = f"{self.name}(): "
        if self.function.lazy:
            thunks = [_thunk(arg, values) for arg in self.args]
            with _at(self.col, label):
                return self.function.run(*thunks)
        args = [arg.evaluate(values) for arg in self.args]
        with _at(self.col, label):
            return self.function.run(*args)


def _thunk(node: _Node, values: Values) -> Callable[[], Any]:
    return lambda: node.evaluate(values)


# --- parser ------------------------------------------------------------------------------------

# Binary operators: (binding power, kind); JavaScript's precedence, loosest first.
_BINDING: dict[str, tuple[int, str]] = {
    "??": (3, "logical"),
    "||": (4, "logical"),
    "&&": (5, "logical"),
    "|": (6, "chain"),
    "^": (7, "chain"),
    "&": (8, "chain"),
    "==": (9, "chain"), "!=": (9, "chain"), "===": (9, "chain"), "!==": (9, "chain"),
    "<": (10, "chain"), ">": (10, "chain"), "<=": (10, "chain"), ">=": (10, "chain"),
    "<<": (11, "chain"), ">>": (11, "chain"), ">>>": (11, "chain"),
    "+": (12, "chain"), "-": (12, "chain"),
    "*": (13, "chain"), "/": (13, "chain"), "%": (13, "chain"),
    "**": (14, "right"),
}  # fmt: skip
_TERNARY_POWER = 2
_PREFIX = ("!", "-", "+", "~")


class _Parser(Parser[Token]):
    trailing_comma = True  # as in JavaScript

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._parenthesized: set[int] = set()  # ids of nodes written inside (...)

    def _tokenize(self, source: str) -> list[Token]:
        return _tokenize(source)

    def _expression(self, min_power: int = 0) -> _Node:
        with self._nested(self._peek().col):
            left = self._unary()
            chain: _Chain | None = None  # the chain this loop is building, if any
            logical: _Logical | None = None
            while True:
                token = self._peek()
                if token.is_op("?") and min_power <= _TERNARY_POWER:
                    self._advance()
                    then = self._expression(0)
                    self._expect(":")
                    otherwise = self._expression(_TERNARY_POWER)
                    left = Conditional(token.col, left, then, otherwise)
                    chain = logical = None
                    continue
                if token.kind != "op" or token.text not in _BINDING:
                    if token.kind in ("num", "str", "name") or token.is_op("(", "[", "{"):
                        hint = "an operator or a comma is missing"
                        if token.kind == "name" and token.text in ("in", "instanceof"):
                            hint = f'"{token.text}" is not supported'
                        raise error_at(f"unexpected {token.shown()} ({hint})", token.col)
                    return left
                power, kind = _BINDING[token.text]
                if power <= min_power and not (kind == "right" and power == min_power):
                    return left
                self._advance()
                if kind == "right":
                    if isinstance(left, _Unary) and id(left) not in self._parenthesized:
                        raise error_at(
                            'a unary operator before "**" needs parentheses, e.g. (-2) ** 2',
                            token.col,
                        )
                    right = self._expression(power - 1)
                    left = _Chain(token.col, left, (("**", token.col, right),))
                    chain = logical = None
                    continue
                right = self._expression(power)
                if kind == "logical":
                    if logical is not None and logical is left and logical.op == token.text:
                        left = logical = _Logical(
                            logical.col, logical.op, (*logical.operands, right)
                        )
                    else:
                        left = logical = _Logical(token.col, token.text, (left, right))
                    chain = None
                    continue
                same_level = (
                    chain is not None
                    and chain is left
                    and (_BINDING[chain.rest[-1][0]][0] == power)
                )
                if same_level and chain is not None:
                    left = chain = _Chain(
                        chain.col, chain.first, (*chain.rest, (token.text, token.col, right))
                    )
                else:
                    left = chain = _Chain(token.col, left, ((token.text, token.col, right),))
                logical = None

    def _unary(self) -> _Node:
        token = self._peek()
        if token.is_op(*_PREFIX) or (token.kind == "name" and token.text == "typeof"):
            self._advance()
            with self._nested(token.col):
                return _Unary(token.col, token.text, self._unary())
        if token.kind == "name" and token.text in ("void", "delete", "new", "await"):
            raise error_at(f'"{token.text}" is not supported', token.col)
        return self._postfix()

    def _postfix(self) -> _Node:
        return self._accessors(self._primary(self._advance()))

    def _group(self, token: Token) -> _Node:
        if self._peek().is_op(")"):
            raise error_at("empty parentheses (arrow functions are not supported)", token.col)
        node = self._expression(0)
        if self._peek().is_op(","):
            raise error_at("the comma operator is not supported", self._peek().col)
        self._expect(")")
        self._parenthesized.add(id(node))
        return node

    def _entry(self) -> tuple[str, _Node]:
        key = self._advance()
        if key.kind == "name":
            name = key.text
        elif key.kind == "str":
            name = key.value
        elif key.kind == "num":
            name = number_to_string(key.value)
        else:
            raise self._unexpected(key, "a property name")
        self._expect(":")
        return name, self._expression(0)

    def _name(self, token: Token) -> _Node:
        name = token.text
        if self._peek().is_op("("):
            spec = _FUNCTIONS.get(name)
            if spec is None:
                message = f'unknown function "{name}" at column {token.col}{_suggest(name)}'
                raise ExpressionError(message)
            self._advance()
            args = self._sequence(")", self._expression)
            if not spec.takes(len(args)):
                message = f'function "{name}" takes {spec.expected()} argument(s)'
                raise error_at(f"{message}, got {len(args)}", token.col)
            return _Call(token.col, name, spec, args)
        if name in _LITERALS:
            return _Const(token.col, _LITERALS[name])
        if placeholder := self._placeholder(token):
            return placeholder
        if name in _FUNCTIONS:
            return _FunctionName(token.col)
        if name in _RESERVED:
            raise error_at(f'"{name}" is not supported', token.col)
        upper = f' (did you mean "{name.upper()}(...)"?)' if name.upper() in _FUNCTIONS else ""
        raise error_at(
            f'unknown name "{name}"{upper}; an expression may use {{{{variables}}}}, literals '
            "and calls of the supported functions",
            token.col,
        )

    def _accessors(self, node: _Node) -> _Node:
        while True:
            token = self._peek()
            optional = token.is_op("?.")
            if token.is_op(".") or optional:
                self._advance()
                if optional and self._peek().is_op("["):
                    continue_token = self._advance()
                    key = self._expression(0)
                    self._expect("]")
                    node = _Member(continue_token.col, node, key, True)
                    continue
                name = self._advance()
                if name.kind != "name":
                    raise self._unexpected(name, "a property name")
                node = _Member(token.col, node, _Const(name.col, name.text), optional)
            elif token.is_op("["):
                self._advance()
                key = self._expression(0)
                self._expect("]")
                node = _Member(token.col, node, key, False)
            elif token.is_op("("):
                raise error_at(
                    "calling methods is not supported; use a supported function instead",
                    token.col,
                )
            else:
                return node


def _suggest(name: str) -> str:
    upper = name.upper()
    if upper in _FUNCTIONS and upper != name:
        return f' (function names are upper case: "{upper}")'
    return "; supported functions: " + ", ".join(SUPPORTED_FUNCTIONS)


# --- public API --------------------------------------------------------------------------------


def _normalise(value: Any, top: bool = True) -> Any:
    """JSON-ready results: undefined is null; numbers as NocoBase rounds them."""
    if value is UNDEFINED or isinstance(value, _FunctionValue):
        return None
    if isinstance(value, float):
        return round_result(value) if top else plain_number(value)
    if isinstance(value, list):
        return [_normalise(item, False) for item in value]
    if isinstance(value, dict):
        return {key: _normalise(item, False) for key, item in value.items()}
    return value


class CompiledFormula(CompiledProgram):
    """A parsed formula.js expression."""

    __slots__ = ()
    parser = _Parser

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        try:
            return super().evaluate(values)
        except FormulaError as exc:
            raise ExpressionError(str(exc)) from None

    def _result(self, value: Any) -> Any:
        return _normalise(value)


def compile_formulajs(source: str) -> CompiledFormula:
    """Parse ``source`` once, rejecting anything outside the supported subset."""
    return CompiledFormula.from_source(source)
