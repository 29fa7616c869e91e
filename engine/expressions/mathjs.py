"""Safe evaluator for the subset of the math.js expression language used by workflow nodes.

Owns parsing and evaluating NocoBase ``math.js`` expressions after template preprocessing: each
``{{ path }}`` arrives as a ``$$0``, ``$$1``... placeholder whose value is passed to
:meth:`CompiledMathjs.evaluate`. Pipeline: tokenizer -> precedence parser -> AST of frozen
dataclasses -> tree-walking evaluator. User text never reaches ``eval``/``exec``/``compile`` and
property access only reads dict keys, never Python attributes. Work is bounded: sources over
10,000 characters or nested deeper than 100 levels are rejected, arithmetic is float-only (no
huge ints), ``factorial`` above 170 is Infinity and ``concat`` results hold at most 100,000 items.

Semantics are math.js defaults with ``number`` (an IEEE double) as the numeric type:

* Strings convert with JavaScript ``Number()`` rules (``"2" * "3"`` is 6, ``"abc" + 1`` fails),
  booleans are 1/0 and null is 0. Division by zero gives ±Infinity/NaN, ``mod`` takes the sign
  of the divisor, ``round`` rounds half away from zero, and ``floor``/``ceil``/``fix``/``mod``
  first snap values that are nearly integral.
* Numbers compare with math.js's tolerance (relTol 1e-12, absTol 1e-15); relations chain
  (``a < b < c`` is ``a < b and b < c``); null equals only null.
* ``and``/``or``/``xor``/``not`` and ``a ? b : c`` use JavaScript truthiness (0, NaN, "", null
  and false are falsy; lists and objects are truthy); ``and``/``or`` short-circuit.
* ``evaluate`` normalises results as NocoBase's evaluator does after math.js
  (``engine/expressions/results.py``): a number result is rounded to 9 decimals, NaN/±Infinity
  become None, and integral floats within ±2**53 become ints.

Deliberate deviations from math.js:

* Two strings compare as text (math.js converts both to numbers): ``==``/``!=`` exactly and
  ``<``/``>``/``<=``/``>=`` lexicographically, so ``"10" < "9"`` is true.
* ``==``/``!=`` on lists/objects is deep equality giving one boolean (math.js compares matrices
  element-wise). Arithmetic operators reject lists rather than broadcast; single-value
  functions such as ``abs`` or ``round`` do map over lists as in math.js.
* Logical operators accept any value through truthiness; math.js rejects non-numeric strings.
* Would-be complex results (``sqrt(-1)``, ``log(-2)``) are NaN, like math.js's ``predictable``
  option. ``datetime`` values only compare with other datetimes.
* ``string`` uses math.js ``format`` (``string(100000)`` is ``"1e+5"``), for objects too, where
  math.js gives ``"[object Object]"``. ``concat`` rejects nested lists (math.js joins matrices
  along their last dimension); ``min``/``max``/``sum``... flatten any mix of values and lists.
* Rejected at compile time: implicit multiplication, assignment and function definitions, units
  (``to``/``in``), ranges (``1:3``), ``;``, transpose, ``m[1, 2]`` and method calls. Newlines
  are whitespace.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.expressions import ExpressionError
from engine.expressions.language import CompiledProgram, Function, Parser, Token, error_at, flatten
from engine.expressions.results import normalise_result, round_decimal
from engine.expressions.syntax import Chain, Conditional, EvaluationError, Values, at
from engine.expressions.syntax import Const as _Const
from engine.expressions.syntax import Node as _Node
from engine.jsvalues import as_double, divide, power, to_int32, truthy

MAX_ITEMS = 100_000
_REL_TOL, _ABS_TOL = 1e-12, 1e-15
_FACTORIAL_LIMIT = 170  # 171! overflows a double, so anything larger is Infinity anyway
_NO_ARGUMENT = object()  # tells log(x) from log(x, null)


# --- tokenizer ---------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "xor", "not", "mod", "to", "in"})
_REJECTED = {
    "===": ('"===" is not supported', 'use "=="'),
    "!==": ('"!==" is not supported', 'use "!="'),
    "&&": ('"&&" is not supported', 'use "and"'),
    "||": ('"||" is not supported', 'use "or"'),
    "=": ('assignment ("=") is not supported', 'use "==" to compare values'),
    ";": ('";" (multiple statements or matrix rows) is not supported', ""),
}
_TOKEN = re.compile(
    r"(?P<space>\s+|#[^\n]*)"  # math.js comments run to the end of the line
    r"|(?P<num>0x[0-9a-fA-F]+|0b[01]+|0o[0-7]+"
    # a dot before * / ^ is an element-wise operator: math.js reads "2./3" as 2 ./ 3
    r"|(?:[0-9]+(?:\.(?![*/^])[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>(?:[^\W0-9]|\$)[\w$]*)"
    r"|(?P<str>\"(?:[^\"\\]|\\[\s\S])*\"|'(?:[^'\\]|\\[\s\S])*')"
    r"|(?P<op>>>>|===|!==|&&|\|\||\.[*/^]|\^\||<<|>>|[=!<>]=|[-+*/%^!~&|<>()\[\]{},.?:=;])"
)
_SINGLE_QUOTED = re.compile(r"\\([\s\S])|\"")
_BASES = {"x": 16, "b": 2, "o": 8}


@dataclass(frozen=True, slots=True)
class _Token(Token):
    def operator(self) -> str | None:
        keyword = self.kind == "name" and self.text in _KEYWORDS
        return self.text if self.kind == "op" or keyword else None

    def starts_operand(self) -> bool:
        name = self.kind == "name" and self.text not in _KEYWORDS
        return name or self.kind == "num" or self.is_op("(")

    def ends_operand(self) -> bool:
        """After such a token a quote is math.js's transpose operator, not a string."""
        name = self.kind == "name" and self.text not in _KEYWORDS
        return name or self.kind in ("num", "str") or self.is_op(")", "]", "}", "!")

    def shown(self) -> str:
        if self.kind in ("end", "str"):
            return "end of expression" if self.kind == "end" else self.text
        return f'"{self.text}"'


def _unquote(text: str, col: int) -> str:
    """String literal value: math.js decodes escapes with JSON.parse, and so do we."""
    body = text[1:-1]
    if text[0] == "'":  # as math.js does: \' is a plain quote, a bare " needs escaping
        body = _SINGLE_QUOTED.sub(
            lambda m: '\\"' if m[1] is None else ("'" if m[1] == "'" else m[0]), body
        )
    try:
        return json.loads(f'"{body}"', strict=False)
    except json.JSONDecodeError as exc:
        raise error_at(f"invalid escape sequence in string ({exc.msg})", col) from None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(source):
        col = index + 1
        if source[index] == "'" and tokens and tokens[-1].ends_operand():
            raise error_at('the transpose operator "\'" is not supported', col)
        match = _TOKEN.match(source, index)
        if match is None:
            quote = source[index] in "\"'"
            raise error_at("unterminated string" if quote else f'unexpected "{source[index]}"', col)
        kind, text, index = str(match.lastgroup), match[0], match.end()
        if kind == "op" and text in _REJECTED:
            raise error_at(_REJECTED[text][0], col, _REJECTED[text][1])
        if kind == "num":
            base = _BASES.get(text[1:2])
            value = as_double(int(text[2:], base)) if base else float(text)
            tokens.append(_Token(kind, text, col, value))
        elif kind != "space":
            tokens.append(_Token(kind, text, col, _unquote(text, col) if kind == "str" else None))
    tokens.append(_Token("end", "", len(source) + 1))
    return tokens


# --- value semantics ---------------------------------------------------------------------------

_DECIMAL_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_PREFIXED_NUMBER = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)", re.ASCII)
_NOUNS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
    (datetime, "a date"),
)
_CONTAINERS = (list, dict, datetime)
_INFINITIES = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}


def _describe(value: Any) -> str:
    nouns = (noun for kind, noun in _NOUNS if isinstance(value, kind))
    return "null" if value is None else next(nouns, f"a {type(value).__name__}")


def _quote(text: str) -> str:
    return '"' + (text if len(text) <= 40 else text[:40] + "...") + '"'


def _js_number(text: str) -> float | None:
    """JavaScript ``Number(text)``; None where JS gives NaN."""
    text = text.strip()
    if not text or text in _INFINITIES:
        return _INFINITIES[text] if text else 0.0
    if _PREFIXED_NUMBER.fullmatch(text):
        return as_double(int(text[2:], _BASES[text[1].lower()]))
    return float(text) if _DECIMAL_NUMBER.fullmatch(text) else None


def _num(value: Any) -> float:
    """math.js's implicit conversion of an operand to a number."""
    if isinstance(value, float):
        return value
    if isinstance(value, int):  # bool included: True is 1
        return as_double(value)
    if value is None:
        return 0.0
    if isinstance(value, str) and (number := _js_number(value)) is not None:
        return number
    shown = _quote(value) if isinstance(value, str) else _describe(value)
    raise EvaluationError(f"Cannot convert {shown} to a number")


def _nearly_equal(x: float, y: float) -> bool:
    if x == y or math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= max(_REL_TOL * max(abs(x), abs(y)), _ABS_TOL)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, _CONTAINERS) or isinstance(b, _CONTAINERS):
        return isinstance(a, datetime) and isinstance(b, datetime) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return _nearly_equal(_num(a), _num(b))


def _order(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 like math.js ``compare``; None when a NaN leaves the values unordered."""
    both = (a, b)
    if all(isinstance(v, str) for v in both) or all(isinstance(v, datetime) for v in both):
        try:
            return (a > b) - (a < b)
        except TypeError:
            raise EvaluationError("cannot compare dates with and without a time zone") from None
    if isinstance(a, _CONTAINERS) or isinstance(b, _CONTAINERS):
        raise EvaluationError(f"cannot compare {_describe(a)} with {_describe(b)}")
    x, y = _num(a), _num(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return 0 if _nearly_equal(x, y) else (1 if x > y else -1)


def _compare(a: Any, b: Any) -> float:
    order = _order(a, b)
    return -1.0 if order is None else float(order)  # math.js answers -1 when NaN is involved


_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": lambda a, b: _order(a, b) == -1,
    ">": lambda a, b: _order(a, b) == 1,
    "<=": lambda a, b: _order(a, b) in (-1, 0),
    ">=": lambda a, b: _order(a, b) in (1, 0),
}


def _divide(a: Any, b: Any) -> float:
    return divide(_num(a), _num(b))


def _snap(x: float, fallback: Callable[[float], int]) -> float:
    """math.js floor/ceil: a value within tolerance of an integer counts as that integer."""
    if not math.isfinite(x):
        return x
    nearest = float(round(x))
    return nearest if _nearly_equal(x, nearest) else float(fallback(x))


_floor = functools.partial(_snap, fallback=math.floor)
_ceil = functools.partial(_snap, fallback=math.ceil)


def _mod(a: Any, b: Any) -> float:
    x, y = _num(a), _num(b)
    return x if y == 0 else x - y * _floor(_divide(x, y))


def _pow(a: Any, b: Any) -> float:
    x, y = _num(a), _num(b)
    if x < 0 and math.isfinite(y) and not y.is_integer():
        return math.nan  # math.js would answer a complex number (JS: 0 for -Infinity)
    return power(x, y)


def _int32(value: Any, function: str) -> int:
    number = _num(value)
    if not number.is_integer():  # also rejects NaN and ±Infinity
        raise EvaluationError(f"Integers expected in function {function}")
    return to_int32(number)


def _factorial(value: Any) -> float:
    n = _num(value)
    if n < 0:
        raise EvaluationError("cannot take the factorial of a negative number")
    if math.isnan(n) or n > _FACTORIAL_LIMIT:
        return n if math.isnan(n) else math.inf
    return float(math.factorial(int(n))) if n.is_integer() else math.gamma(n + 1)


def _format_number(x: float) -> str:
    """math.js ``format`` in its default 'auto' notation (exponent below -3 or from 5 up)."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if x == 0:
        return "0"
    parts = Decimal(repr(abs(x))).normalize().as_tuple()
    digits, exponent = "".join(map(str, parts.digits)), int(parts.exponent)
    magnitude, sign = len(digits) - 1 + exponent, "-" if x < 0 else ""
    if not -3 <= magnitude < 5:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if magnitude >= 0 else '-'}{abs(magnitude)}"
    point = len(digits) + exponent
    if exponent >= 0:
        return sign + digits + "0" * exponent
    return sign + (
        f"{digits[:point]}.{digits[point:]}" if point > 0 else f"0.{'0' * -point}{digits}"
    )


def _format(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return _format_number(_num(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        text = "[" + ", ".join(map(_format, value)) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_format(str(k))}: {_format(v)}" for k, v in value.items()) + "}"
    else:
        raise EvaluationError(f"cannot format {_describe(value)}")
    if len(text) > MAX_ITEMS:
        raise EvaluationError(f"the text would be longer than {MAX_ITEMS} characters")
    return text


def _access(target: Any, key: Any) -> Any:
    if isinstance(target, dict) and isinstance(key, str):
        return target.get(key)  # a missing property is undefined (None), as in JS
    if not isinstance(target, (list, str)) or isinstance(key, str):
        what = f"property {_quote(key)}" if isinstance(key, str) else "an index"
        raise EvaluationError(f"cannot read {what} of {_describe(target)}")
    if isinstance(key, bool) or not isinstance(key, (int, float)):
        raise EvaluationError(f"an index must be a number, not {_describe(key)}")
    if isinstance(key, float) and not key.is_integer():
        raise EvaluationError(f"an index must be an integer, got {_format_number(key)}")
    if not 1 <= key <= len(target):
        valid = f"1 to {len(target)}" if target else "none, it is empty"
        message = f"index {int(key)} is out of range (indices are 1-based; valid: {valid})"
        raise EvaluationError(message)
    return target[int(key) - 1]


# --- functions ---------------------------------------------------------------------------------


def _map_items(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply ``function`` to a value, or to every item of a (nested) list as math.js does."""

    def apply(value: Any) -> Any:
        return [apply(item) for item in value] if isinstance(value, list) else function(value)

    return apply


def _numeric(function: Callable[[float], Any]) -> Callable[[Any], Any]:
    def run(x: float) -> Any:
        try:
            return function(x)
        except OverflowError:
            return math.inf
        except ValueError:  # outside the real domain: math.js would answer a complex number
            return math.nan

    return _map_items(lambda value: run(_num(value)))


def _log_of(function: Callable[[float], float]) -> Callable[[Any], Any]:
    return _numeric(lambda x: -math.inf if x == 0 else function(x))


def _log(value: Any, base: Any = _NO_ARGUMENT) -> Any:
    ln = _log_of(math.log)
    return ln(value) if base is _NO_ARGUMENT else _divide(ln(value), ln(base))


def _cbrt(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    # math.js's algorithm: a Newton step after exp/log makes exact cubes exact (cbrt(27) == 3)
    root = math.exp(math.log(abs(x)) / 3)
    return math.copysign((abs(x) / (root * root) + 2 * root) / 3, x)


def _round(value: Any, places: Any = 0.0) -> Any:
    count = _num(places)
    if not (count.is_integer() and 0 <= count <= 15):
        raise EvaluationError("the number of decimals must be an integer from 0 to 15")
    return _map_items(lambda item: round_decimal(_num(item), int(count)))(value)


def _median(numbers: list[float]) -> float:
    ordered, middle = sorted(numbers), len(numbers) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _aggregate(name: str, reduce: Callable[[list[float]], float]) -> Callable[..., float]:
    def run(*args: Any) -> float:
        numbers = [_num(item) for item in flatten(args)]
        if not numbers and name not in ("sum", "prod"):
            raise EvaluationError(f"cannot calculate the {name} of an empty list")
        if name in ("min", "max", "median") and any(map(math.isnan, numbers)):
            return math.nan
        return reduce(numbers)

    return run


def _total(numbers: list[float], start: float = 0.0, step: Any = operator.add) -> float:
    return functools.reduce(step, numbers, start)  # left to right as in JS; 3.12's sum() differs


def _integers(args: tuple[Any, ...]) -> list[int]:
    numbers = [_num(arg) for arg in args]
    if not all(n.is_integer() for n in numbers):
        raise EvaluationError("the arguments must be integers")
    return [int(n) for n in numbers]


def _lcm(*args: Any) -> float:
    result, *rest = _integers(args)
    for number in rest:
        result = math.lcm(result, number)
        if result.bit_length() > 1024:  # beyond any double: stop before the ints grow further
            return math.inf
    return as_double(result)


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value and (number := _js_number(value)) is not None:
        return truthy(number)
    if value is None or isinstance(value, (int, float)):
        return truthy(value)
    shown = _quote(value) if isinstance(value, str) else _describe(value)
    raise EvaluationError(f"Cannot convert {shown} to a boolean")


def _number(value: Any = 0.0) -> Any:
    return _map_items(lambda item: math.nan if item == "NaN" else _num(item))(value)


def _to_boolean(value: Any = False) -> Any:
    return _map_items(_boolean)(value)


def _string(value: Any = "") -> Any:
    if isinstance(value, list):
        return [_string(item) for item in value]
    return value if isinstance(value, str) else _format(value)


def _size(value: Any) -> list[int]:
    if isinstance(value, (dict, datetime)):
        raise EvaluationError(f"size is not defined for {_describe(value)}")
    if isinstance(value, str):
        return [len(value)]
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value or not all(isinstance(r, list) and len(r) == len(value[0]) for r in value):
            break
        value = value[0]
    return dims


def _count(value: Any) -> int:
    if not isinstance(value, (list, str)):
        raise EvaluationError(f"expected a list or a string, not {_describe(value)}")
    return len(value) if isinstance(value, str) else math.prod(_size(value))


def _concat(*args: Any) -> Any:
    if sum(len(arg) if isinstance(arg, (str, list)) else 0 for arg in args) > MAX_ITEMS:
        raise EvaluationError(f"the result would have more than {MAX_ITEMS} items")
    if all(isinstance(arg, str) for arg in args):
        return "".join(args)
    if not all(isinstance(arg, list) for arg in args):
        raise EvaluationError("expected only lists or only strings")
    if any(isinstance(item, list) for arg in args for item in arg):
        raise EvaluationError("concatenating nested lists (matrices) is not supported")
    return [item for arg in args for item in arg]


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: _num(a) + _num(b),
    "-": lambda a, b: _num(a) - _num(b),
    "*": lambda a, b: _num(a) * _num(b),
    "/": _divide,
    "%": _mod,
    "mod": _mod,
    "^": _pow,
    "|": lambda a, b: _int32(a, "bitOr") | _int32(b, "bitOr"),
    "^|": lambda a, b: _int32(a, "bitXor") ^ _int32(b, "bitXor"),
    "&": lambda a, b: _int32(a, "bitAnd") & _int32(b, "bitAnd"),
    "<<": lambda a, b: to_int32(_int32(a, "leftShift") << (_int32(b, "leftShift") & 31)),
    ">>": lambda a, b: _int32(a, "rightArithShift") >> (_int32(b, "rightArithShift") & 31),
    ">>>": lambda a, b: (_int32(a, "rightLogShift") % 2**32) >> (_int32(b, "rightLogShift") & 31),
}
_BINARY.update({".*": _BINARY["*"], "./": _divide, ".^": _pow})  # same as plain ops on scalars

_UNARY: dict[str, Callable[[Any], Any]] = {
    "-": lambda value: -_num(value),
    "+": _num,
    "not": lambda value: not truthy(value),
    "~": lambda value: ~_int32(value, "bitNot"),
    "!": _map_items(_factorial),
}


_FUNCTIONS: dict[str, Function] = {
    "abs": Function(_numeric(abs)),
    "add": Function(lambda *args: functools.reduce(_BINARY["+"], args), 2, None),
    "subtract": Function(_BINARY["-"], 2, 2),
    "multiply": Function(lambda *args: functools.reduce(_BINARY["*"], args), 2, None),
    "divide": Function(_divide, 2, 2),
    "mod": Function(_mod, 2, 2),
    "pow": Function(_pow, 2, 2),
    "sqrt": Function(_numeric(math.sqrt)),
    "cbrt": Function(_numeric(_cbrt)),
    "exp": Function(_numeric(math.exp)),
    "log": Function(_log, 1, 2),
    "log10": Function(_log_of(math.log10)),
    "log2": Function(_log_of(math.log2)),
    "ceil": Function(_numeric(_ceil)),
    "floor": Function(_numeric(_floor)),
    "fix": Function(_numeric(lambda x: _floor(x) if x > 0 else _ceil(x))),
    "round": Function(_round, 1, 2),
    "sign": Function(_numeric(lambda x: x if x == 0 or math.isnan(x) else math.copysign(1, x))),
    "min": Function(_aggregate("min", min), 1, None),
    "max": Function(_aggregate("max", max), 1, None),
    "sum": Function(_aggregate("sum", _total), 1, None),
    "mean": Function(_aggregate("mean", lambda ns: _total(ns) / len(ns)), 1, None),
    "median": Function(_aggregate("median", _median), 1, None),
    "prod": Function(_aggregate("prod", lambda ns: _total(ns, 1.0, operator.mul)), 1, None),
    "gcd": Function(lambda *args: float(math.gcd(*_integers(args))), 2, None),
    "lcm": Function(_lcm, 2, None),
    "hypot": Function(lambda *args: math.hypot(*map(_num, flatten(args))), 1, None),
    "factorial": Function(_map_items(_factorial)),
    "sin": Function(_numeric(math.sin)),
    "cos": Function(_numeric(math.cos)),
    "tan": Function(_numeric(math.tan)),
    "asin": Function(_numeric(math.asin)),
    "acos": Function(_numeric(math.acos)),
    "atan": Function(_numeric(math.atan)),
    "atan2": Function(lambda y, x: math.atan2(_num(y), _num(x)), 2, 2),
    "number": Function(_number, 0),
    "string": Function(_string, 0),
    "boolean": Function(_to_boolean, 0),
    "equal": Function(_RELATIONS["=="], 2, 2),
    "unequal": Function(_RELATIONS["!="], 2, 2),
    "larger": Function(_RELATIONS[">"], 2, 2),
    "largerEq": Function(_RELATIONS[">="], 2, 2),
    "smaller": Function(_RELATIONS["<"], 2, 2),
    "smallerEq": Function(_RELATIONS["<="], 2, 2),
    "compare": Function(_compare, 2, 2),
    "and": Function(lambda a, b: truthy(a) and truthy(b), 2, 2),
    "or": Function(lambda a, b: truthy(a) or truthy(b), 2, 2),
    "not": Function(_UNARY["not"]),
    "xor": Function(lambda a, b: truthy(a) != truthy(b), 2, 2),
    "isNaN": Function(_map_items(lambda v: math.isnan(_num(v)))),
    "isNumeric": Function(_map_items(lambda v: isinstance(v, (int, float)))),
    "isInteger": Function(_map_items(lambda v: _num(v).is_integer())),
    "isZero": Function(_map_items(lambda v: _num(v) == 0)),
    "isPositive": Function(_map_items(lambda v: _num(v) > 0)),
    "isNegative": Function(_map_items(lambda v: _num(v) < 0)),
    "size": Function(_size),
    "concat": Function(_concat, 1, None),
    "count": Function(_count),
}
SUPPORTED_FUNCTIONS: tuple[str, ...] = tuple(sorted(_FUNCTIONS, key=str.lower))

_CONSTANTS: dict[str, float] = {
    "pi": math.pi, "PI": math.pi, "e": math.e, "E": math.e, "tau": math.tau,
    "phi": (1 + math.sqrt(5)) / 2, "Infinity": math.inf, "NaN": math.nan,
    "LN2": math.log(2), "LN10": math.log(10), "LOG2E": 1.4426950408889634,
    "LOG10E": 0.4342944819032518, "SQRT2": math.sqrt(2), "SQRT1_2": math.sqrt(0.5),
}  # fmt: skip
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None, "undefined": None}


# --- AST ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Apply(_Node):
    """A prefix/postfix operator or a function call: evaluate every argument, then run."""

    label: str  # "sqrt(): " for calls, so errors name the function; "" for operators
    run: Callable[..., Any]
    args: tuple[_Node, ...]

    def evaluate(self, values: Values) -> Any:
        args = [arg.evaluate(values) for arg in self.args]
        with at(self.col, self.label):
            return self.run(*args)


class _Chain(Chain):
    __slots__ = ()
    operators = _BINARY


@dataclass(frozen=True, slots=True)
class _Logical(_Node):
    op: str  # "and" | "or" | "xor"
    operands: tuple[_Node, ...]

    def evaluate(self, values: Values) -> Any:
        if self.op == "xor":
            return functools.reduce(
                operator.xor, (truthy(n.evaluate(values)) for n in self.operands)
            )
        decisive = self.op == "or"  # the truthiness that settles the answer early
        for node in self.operands:
            if truthy(node.evaluate(values)) == decisive:
                return decisive
        return not decisive


@dataclass(frozen=True, slots=True)
class _Compare(_Node):
    ops: tuple[tuple[str, int], ...]
    operands: tuple[_Node, ...]

    def evaluate(self, values: Values) -> Any:
        left = self.operands[0].evaluate(values)
        for (op, col), node in zip(self.ops, self.operands[1:], strict=True):
            right = node.evaluate(values)
            with at(col):
                if not _RELATIONS[op](left, right):
                    return False
            left = right
        return True


@dataclass(frozen=True, slots=True)
class _Access(_Node):
    target: _Node
    key: _Node

    def evaluate(self, values: Values) -> Any:
        target, key = self.target.evaluate(values), self.key.evaluate(values)
        with at(self.col):
            return _access(target, key)


# --- parser ------------------------------------------------------------------------------------

# Binary operator precedence levels, loosest first (math.js order); `?:` is looser than all.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("or",), ("xor",), ("and",), ("|",), ("^|",), ("&",),
    ("==", "!=", "<", ">", "<=", ">="),
    ("<<", ">>", ">>>"),
    ("+", "-"),
    ("*", "/", ".*", "./", "%", "mod"),
)  # fmt: skip
_LEVEL_OF = {op: level for level, ops in enumerate(_LEVELS) for op in ops}
_LOGICAL_LEVELS, _RELATIONAL_LEVEL = range(3), 6


def _build(operands: list[_Node], ops: list[tuple[str, int]], lo: int, hi: int) -> _Node:
    """Tree for operands[lo..hi]: split at the loosest-binding operators present."""
    if lo == hi:
        return operands[lo]
    level = min(_LEVEL_OF[ops[k][0]] for k in range(lo, hi))
    splits = [k for k in range(lo, hi) if _LEVEL_OF[ops[k][0]] == level]
    bounds = zip([lo, *(k + 1 for k in splits)], [*splits, hi], strict=True)
    parts = [_build(operands, ops, start, end) for start, end in bounds]
    joins = [ops[k] for k in splits]
    if level in _LOGICAL_LEVELS:
        return _Logical(joins[0][1], joins[0][0], tuple(parts))
    if level == _RELATIONAL_LEVEL:  # math.js chains relations: a < b < c
        return _Compare(joins[0][1], tuple(joins), tuple(parts))
    rest = tuple((op, col, part) for (op, col), part in zip(joins, parts[1:], strict=True))
    return _Chain(joins[0][1], parts[0], rest)


class _Parser(Parser[_Token]):
    """Recursive descent for operands; a flat operator list per group keeps recursion shallow."""

    def _tokenize(self, source: str) -> list[_Token]:
        return _tokenize(source)

    def _unexpected(self, token: _Token, expected: str = "") -> ExpressionError:
        if token.is_op(":"):
            return error_at('ranges ("a:b") are not supported', token.col)
        if not expected and token.kind == "name" and token.text in _KEYWORDS:
            return error_at(f'unexpected operator "{token.text}"', token.col)
        return super()._unexpected(token, expected)

    def _expression(self) -> _Node:
        with self._nested(self._peek().col):
            operands: list[_Node] = [self._unary()]
            ops: list[tuple[str, int]] = []
            while True:
                token = self._peek()
                op = token.operator()
                if op in _LEVEL_OF:
                    ops.append((op, self._advance().col))
                    operands.append(self._unary())
                elif op == "?":
                    self._advance()
                    then = self._expression()
                    self._expect(":")
                    test = _build(operands, ops, 0, len(ops))
                    return Conditional(token.col, test, then, self._expression())
                elif op in ("to", "in"):
                    raise error_at(f'unit conversion ("{op}") is not supported', token.col)
                elif token.starts_operand():
                    hint = 'write "*" explicitly (units are not supported either)'
                    raise error_at("implicit multiplication is not supported", token.col, hint)
                else:
                    return _build(operands, ops, 0, len(ops))

    def _unary(self) -> _Node:
        token = self._peek()
        if token.is_op("-", "+", "~") or (token.kind == "name" and token.text == "not"):
            self._advance()
            with self._nested(token.col):
                return _Apply(token.col, "", _UNARY[token.text], (self._unary(),))
        if token.is_op("!"):
            raise error_at('"!" before a value is not supported', token.col, 'use "not"')
        base = self._postfix()
        if not (token := self._peek()).is_op("^", ".^"):
            return base
        self._advance()
        with self._nested(token.col):  # right-associative, and the exponent may be signed: 2^-1
            exponent = self._unary()
        return _Chain(token.col, base, ((token.text, token.col, exponent),))

    def _postfix(self) -> _Node:
        token = self._advance()
        node = self._primary(token)
        if token.kind != "num":  # math.js has no accessors on number literals
            node = self._accessors(node)
        while self._peek().is_op("!"):
            node = _Apply(self._advance().col, "", _UNARY["!"], (node,))
        return node

    def _entry(self) -> tuple[str, _Node]:
        key = self._advance()
        if key.kind not in ("str", "name"):
            raise self._unexpected(key, "a property name")
        self._expect(":")
        return (key.value if key.kind == "str" else key.text), self._expression()

    def _name(self, token: _Token) -> _Node:
        name = token.text
        if self._peek().is_op("("):
            if name not in _FUNCTIONS:
                hint = "supported: " + ", ".join(SUPPORTED_FUNCTIONS)
                raise error_at(f'unknown function "{name}"', token.col, hint)
            self._advance()
            args = self._sequence(")", self._expression)
            spec = _FUNCTIONS[name]
            if not spec.takes(len(args)):
                message = f'function "{name}" at column {token.col} takes {spec.expected()}'
                raise ExpressionError(f"{message} argument(s), got {len(args)}", token.col)
            return _Apply(token.col, f"{name}(): ", spec.run, args)
        if name in _KEYWORDS:
            raise self._unexpected(token)
        if name in _LITERALS or name in _CONSTANTS:
            return _Const(token.col, _LITERALS[name] if name in _LITERALS else _CONSTANTS[name])
        if placeholder := self._placeholder(token):
            return placeholder
        if name in _FUNCTIONS:
            raise error_at(f'"{name}" is a function', token.col, f"call it, e.g. {name}(...)")
        hint = "allowed names are placeholders ($$0, ...), true, false, null and the constants "
        raise error_at(f'unknown symbol "{name}"', token.col, hint + ", ".join(_CONSTANTS))

    def _accessors(self, node: _Node) -> _Node:
        while True:
            token = self._peek()
            if token.is_op("."):
                self._advance()
                if (name := self._advance()).kind != "name":
                    raise self._unexpected(name, 'a property name after "."')
                node = _Access(token.col, node, _Const(name.col, name.text))
            elif token.is_op("["):
                self._advance()
                index = self._expression()
                if (closing := self._advance()).is_op(","):
                    hint = "chain indexes instead, e.g. m[1][2]"
                    raise error_at("multi-dimensional indexes are not supported", closing.col, hint)
                if not closing.is_op("]"):
                    raise self._unexpected(closing, '"]"')
                node = _Access(token.col, node, index)
            elif token.is_op("(") and isinstance(node, _Access):
                raise error_at("calling methods is not supported", token.col)
            else:
                return node


# --- public API --------------------------------------------------------------------------------


class CompiledMathjs(CompiledProgram):
    """A parsed math.js expression."""

    __slots__ = ()
    parser = _Parser

    def _result(self, value: Any) -> Any:
        return normalise_result(value)


def compile_mathjs(source: str) -> CompiledMathjs:
    """Parse ``source`` once, rejecting anything outside the supported subset."""
    if not isinstance(source, str):
        raise TypeError(f"expression source must be a str, not {type(source).__name__}")
    return CompiledMathjs.from_source(source)
