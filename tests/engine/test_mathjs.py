"""Tests for engine.expressions.mathjs: the safe math.js subset evaluator."""

from __future__ import annotations

import math
import pickle
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.expressions import ExpressionError
from engine.expressions.language import MAX_DEPTH, MAX_SOURCE_LENGTH
from engine.expressions.mathjs import SUPPORTED_FUNCTIONS, CompiledMathjs, compile_mathjs

VALUES: dict[str, Any] = {
    "$$0": [10, 20, 30],
    "$$1": None,
    "$$2": "abc",
    "$$3": {"name": "Ada", "nested": {"score": 5}, "items": [{"id": 7}]},
    "$$4": datetime(2024, 1, 1),
    "$$5": datetime(2024, 1, 2),
    "$$6": datetime(2024, 1, 2, tzinfo=UTC),
    "$$7": "12.5",
    "$$8": 2**80,
}


def run(source: str, values: dict[str, Any] | None = None) -> Any:
    compiled = compile_mathjs(source)
    return compiled.evaluate(VALUES if values is None else values)


def assert_same(actual: Any, expected: Any) -> None:
    """Equal and of the same JSON type, so 2 (int) and 2.0 (float) are told apart."""
    assert actual == expected
    assert type(actual) is type(expected)
    if isinstance(expected, list):
        for got, want in zip(actual, expected, strict=True):
            assert_same(got, want)


OPERATORS = [
    ("1 + 2", 3),
    ("5 - 7", -2),
    ("4 * 2.5", 10),
    ("7 / 2", 3.5),
    ("6 .* 2", 12),
    ("6 ./ 4", 1.5),
    ("2 .^ 3", 8),
    ("2 ^ 10", 1024),
    ("7 % 3", 1),
    ("7 mod 3", 1),
    ("-7 mod 3", 2),
    ("7 mod -3", -2),
    ("5.5 mod 2", 1.5),
    ("7 mod 0", 7),
    ("-(3)", -3),
    ("+'4'", 4),
    ("+true", 1),
    ("not 0", True),
    ("not 'x'", False),
    ("~5", -6),
    ("5!", 120),
    ("0!", 1),
    ("5 | 3", 7),
    ("5 ^| 3", 6),
    ("5 & 3", 1),
    ("1 << 4", 16),
    ("-16 >> 2", -4),
    ("-1 >>> 28", 15),
    ("1 << 31", -2147483648),
    ("true and false", False),
    ("0 or 'x'", True),
    ("true xor true", False),
    ("true xor false", True),
    ("1 == 1", True),
    ("1 != 1", False),
    ("1 < 2", True),
    ("2 > 1", True),
    ("2 <= 2", True),
    ("1 >= 2", False),
    ("true ? 'yes' : 'no'", "yes"),
    ("0 ? 'yes' : 'no'", "no"),
]


@pytest.mark.parametrize(("source", "expected"), OPERATORS)
def test_each_operator_computes_its_math_js_result(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


PRECEDENCE = [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("2 * 3 % 4", 2),
    ("2 * 3 ^ 2", 18),
    ("-2 ^ 2", -4),
    ("2 ^ -1", 0.5),
    ("2 ^ 3 ^ 2", 512),
    ("(2 ^ 3) ^ 2", 64),
    ("2 ^ 3!", 64),
    ("-3!", -6),
    ("2 + 3!", 8),
    ("1 << 1 + 1", 4),
    ("1 | 2 == 3", 1),
    ("1 or 0 and 0", True),
    ("true xor true or true", True),
    ("not true == false", True),
    ("1 < 2 < 3", True),
    ("3 > 2 > 1", True),
    ("1 < 3 < 2", False),
    ("1 == 1 < 2", True),
    ("1 + 1 ? 'a' : 'b'", "a"),
    ("false ? 1 : true ? 2 : 3", 2),
    ("true ? false ? 1 : 2 : 3", 2),
    ("true ? 1 : 2 + 10", 1),
    ("[1, 2, 3][1 + 1]", 2),
    ("-$$0[1]", -10),
    ("$$3.nested.score ^ 2", 25),
]


@pytest.mark.parametrize(("source", "expected"), PRECEDENCE)
def test_precedence_and_associativity_follow_math_js(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


LITERALS = [
    ("1.5", 1.5),
    (".5", 0.5),
    ("1e3", 1000),
    ("2.5E-1", 0.25),
    ("0x1F", 31),
    ("0b101", 5),
    ("0o17", 15),
    ('"a\\"b"', 'a"b'),
    ("'it\\'s'", "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ('"tab\\tnew\\nline"', "tab\tnew\nline"),
    ('"\\u00e9"', "é"),
    ('"\\ud83d\\ude00"', "😀"),
    ("true", True),
    ("false", False),
    ("null", None),
    ("undefined", None),
    ("[1, 'a', [true]]", [1, "a", [True]]),
    ("[]", []),
    ('{a: 1, "b c": [2]}', {"a": 1, "b c": [2]}),
    ("{}", {}),
    ("{not: 1}.not", 1),
    ("1 + 2 # a trailing comment", 3),
    ("1 +\n 2", 3),
]


@pytest.mark.parametrize(("source", "expected"), LITERALS)
def test_literals_parse_to_json_like_values(source: str, expected: Any) -> None:
    assert run(source) == expected


CONSTANTS = [
    ("pi", math.pi),
    ("PI", math.pi),
    ("e", math.e),
    ("E", math.e),
    ("tau", math.tau),
    ("phi", 1.618033988749895),
    ("LN2", math.log(2)),
    ("LN10", math.log(10)),
    ("LOG2E", 1 / math.log(2)),
    ("LOG10E", 1 / math.log(10)),
    ("SQRT2", math.sqrt(2)),
    ("SQRT1_2", math.sqrt(0.5)),
]


@pytest.mark.parametrize(("source", "expected"), CONSTANTS)
def test_constants_have_their_math_js_values(source: str, expected: float) -> None:
    # A number result is rounded to 9 decimals (NocoBase's evaluator).
    assert run(source) == round(expected, 9)


def test_infinity_and_nan_constants_normalise_to_none() -> None:
    assert run("Infinity") is None
    assert run("NaN") is None
    assert run("Infinity > 1e308") is True


FUNCTIONS = [
    ("abs(-2)", 2),
    ("abs([-1, [-2]])", [1, [2]]),
    ("add(1, 2, 3)", 6),
    ("subtract(5, 3)", 2),
    ("multiply(2, 3, 4)", 24),
    ("divide(6, 4)", 1.5),
    ("mod(-7, 3)", 2),
    ("pow(2, 10)", 1024),
    ("sqrt(16)", 4),
    ("cbrt(27)", 3),
    ("cbrt(-8)", -2),
    ("exp(0)", 1),
    ("log(e)", 1),
    ("log(100, 10)", 2),
    ("log(8, 2)", 3),
    ("log10(1000)", 3),
    ("log2(8)", 3),
    ("ceil(1.2)", 2),
    ("ceil(-1.2)", -1),
    ("floor(-1.2)", -2),
    ("floor(0.1 * 3 * 10)", 3),
    ("fix(-1.7)", -1),
    ("fix(1.7)", 1),
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(1.2345, 2)", 1.23),
    ("round(1.005, 2)", 1.01),
    ("round([1.4, 1.6])", [1, 2]),
    ("sign(-3)", -1),
    ("sign(0)", 0),
    ("min(3, 1, 2)", 1),
    ("min([3, [1]], 2)", 1),
    ("max([1, 5, 3])", 5),
    ("sum(1, 2, 3)", 6),
    ("sum([0.1, 0.2, 0.3])", 0.6),
    ("sum([])", 0),
    ("mean([1, 2, 3, 4])", 2.5),
    ("median([3, 1, 2])", 2),
    ("median(4, 1, 3, 2)", 2.5),
    ("prod(2, 3, 4)", 24),
    ("gcd(12, 18)", 6),
    ("gcd(12, 18, 8)", 2),
    ("lcm(4, 6)", 12),
    ("hypot(3, 4)", 5),
    ("hypot([3, 4])", 5),
    ("factorial(5)", 120),
    ("factorial(2.5)", 3.323350970),
    ("sin(0)", 0),
    ("cos(0)", 1),
    ("tan(0)", 0),
    ("asin(1) == pi / 2", True),
    ("acos(1)", 0),
    ("atan(1) * 4 == pi", True),
    ("atan2(1, 1) == pi / 4", True),
    ("number('12.5')", 12.5),
    ("number(true)", 1),
    ("number(null)", 0),
    ("number()", 0),
    ("number(['1', '2'])", [1, 2]),
    ("string(2)", "2"),
    ("string(2.5)", "2.5"),
    ("string(6 / 3)", "2"),
    ("string(true)", "true"),
    ("string(null)", "null"),
    ("string('x')", "x"),
    ("string(100000)", "1e+5"),
    ("string(0.0001)", "1e-4"),
    ("string(0.001)", "0.001"),
    ("string([1, false])", ["1", "false"]),
    ("string({a: 'x', b: [1]})", '{"a": "x", "b": [1]}'),
    ("boolean('true')", True),
    ("boolean('FALSE')", False),
    ("boolean('2')", True),
    ("boolean(0)", False),
    ("boolean(null)", False),
    ("equal(1, 1)", True),
    ("unequal(1, 2)", True),
    ("larger(2, 1)", True),
    ("largerEq(1, 1)", True),
    ("smaller(1, 2)", True),
    ("smallerEq(2, 1)", False),
    ("compare(1, 2)", -1),
    ("compare(2, 2)", 0),
    ("compare('b', 'a')", 1),
    ("and(true, false)", False),
    ("or(0, 1)", True),
    ("not(0)", True),
    ("xor(true, false)", True),
    ("mod(7, 3)", 1),
    ("isNaN(NaN)", True),
    ("isNaN(1)", False),
    ("isNumeric(1)", True),
    ("isNumeric(true)", True),
    ("isNumeric('1')", False),
    ("isNumeric(null)", False),
    ("isInteger(2)", True),
    ("isInteger(2.5)", False),
    ("isInteger('12')", True),
    ("isZero(0)", True),
    ("isPositive(2)", True),
    ("isNegative(-2)", True),
    ("isNegative([1, -1])", [False, True]),
    ("size([1, 2, 3])", [3]),
    ("size('abcd')", [4]),
    ("size([[1, 2], [3, 4], [5, 6]])", [3, 2]),
    ("size(5)", []),
    ("concat([1], [2, 3])", [1, 2, 3]),
    ("concat('a', 'b', 'c')", "abc"),
    ("count([1, 2, 3])", 3),
    ("count([[1, 2], [3, 4]])", 4),
    ("count('abcd')", 4),
]


@pytest.mark.parametrize(("source", "expected"), FUNCTIONS)
def test_each_supported_function_computes_its_math_js_result(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


def test_every_supported_function_is_covered_by_the_function_table() -> None:
    called = {source.split("(")[0] for source, _ in FUNCTIONS}
    assert set(SUPPORTED_FUNCTIONS) <= called


def test_supported_functions_is_exactly_the_documented_list() -> None:
    documented = [
        "abs",
        "add",
        "subtract",
        "multiply",
        "divide",
        "mod",
        "pow",
        "sqrt",
        "cbrt",
        "exp",
        "log",
        "log10",
        "log2",
        "ceil",
        "floor",
        "fix",
        "round",
        "sign",
        "min",
        "max",
        "sum",
        "mean",
        "median",
        "prod",
        "gcd",
        "lcm",
        "hypot",
        "factorial",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "number",
        "string",
        "boolean",
        "equal",
        "unequal",
        "larger",
        "largerEq",
        "smaller",
        "smallerEq",
        "compare",
        "and",
        "or",
        "not",
        "xor",
        "isNaN",
        "isNumeric",
        "isInteger",
        "isZero",
        "isPositive",
        "isNegative",
        "size",
        "concat",
        "count",
    ]
    assert sorted(SUPPORTED_FUNCTIONS) == sorted(documented)


COERCION = [
    ('"2" + 3', 5),
    ('"2" * "3"', 6),
    ("' 4 ' - 1", 3),
    ("'' + 1", 1),
    ("'1e3' / 10", 100),
    ("'0x10' + 0", 16),
    ("true + true", 2),
    ("null + 1", 1),
    ("$$7 * 2", 25),
    ("$$8 + 0 > 1e24", True),
    ("10 == '10'", True),
    ("2 < '10'", True),
    ("true == 1", True),
    ('"abc" == "abc"', True),
    ('"abc" != "abd"', True),
    ('"abc" < "abd"', True),
    ('"10" < "9"', True),
    ("null == null", True),
    ("null == 0", False),
    ("null == ''", False),
    ("null != 0", True),
    ("null < 1", True),
    ("0.1 + 0.2 == 0.3", True),
    ("1 == 1 + 1e-13", True),
    ("1 < 1 + 1e-13", False),
    ("1 <= 1 + 1e-13", True),
    ("1 < 1 + 1e-9", True),
    ("NaN == NaN", False),
    ("NaN < 1", False),
    ("[1, [2, 3]] == [1, [2, 3]]", True),
    ("[1, 2] == [1, 3]", False),
    ("[1, 2] == [1, 2, 3]", False),
    ("{a: 1, b: [2]} == {b: [2], a: 1}", True),
    ("{a: 1} == {a: 2}", False),
    ("[1] == 1", False),
    ("$$3 == $$3", True),
    ("$$4 < $$5", True),
    ("$$4 == $$4", True),
    ("$$4 == 1", False),
]


@pytest.mark.parametrize(("source", "expected"), COERCION)
def test_string_number_coercion_and_comparison_rules(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


TRUTHINESS = [
    ("'' ? 1 : 2", 2),
    ("'0' ? 1 : 2", 1),
    ("0 ? 1 : 2", 2),
    ("NaN ? 1 : 2", 2),
    ("null ? 1 : 2", 2),
    ("[] ? 1 : 2", 1),
    ("{} ? 1 : 2", 1),
    ("'a' and 1", True),
    ("[] and {}", True),
    ("NaN or 0", False),
    ("not ''", True),
    ("not []", False),
]


@pytest.mark.parametrize(("source", "expected"), TRUTHINESS)
def test_logic_uses_javascript_truthiness_and_returns_booleans(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


def test_and_or_short_circuit_so_guarded_property_access_is_safe() -> None:
    assert run("$$1 != null and $$1.x > 1") is False
    assert run("$$1 == null or $$1.x > 1") is True
    assert run("$$1 == null ? 0 : $$1.x") == 0


ACCESSORS = [
    ("$$0[1]", 10),
    ("$$0[3]", 30),
    ("$$2[1]", "a"),
    ("'hello'[5]", "o"),
    ("$$3.name", "Ada"),
    ('$$3["name"]', "Ada"),
    ("$$3.nested.score", 5),
    ("$$3.items[1].id", 7),
    ("$$3[concat('na', 'me')]", "Ada"),
    ("$$3.missing", None),
    ("$$3.__class__", None),
    ("[[1, 2], [3, 4]][2][1]", 3),
    ("{a: {b: 1}}.a.b", 1),
    ("($$0)[2]", 20),
]


@pytest.mark.parametrize(("source", "expected"), ACCESSORS)
def test_accessors_read_properties_and_one_based_indexes(source: str, expected: Any) -> None:
    assert_same(run(source), expected)


NORMALISATION = [
    ("0.1 + 0.2", 0.3),
    ("6 / 3", 2),
    ("1 / 3", 0.333333333),
    ("2 / 3", 0.666666667),
    ("-2 / 3", -0.666666667),
    ("0.0000000005", 0.000000001),  # half away from zero, on the decimal digits
    ("123456789.123456789", 123456789.123456789),
    ("2 ^ 53", 2**53),
    ("2 ^ 53 + 2", 9007199254740994.0),
    ("1e21", 1e21),
    ("-0", 0),
    ("1 / 0", None),
    ("-1 / 0", None),
    ("0 / 0", None),
    ("sqrt(-1)", None),
    ("log(0)", None),
    # Only a number result is rounded (NocoBase returns matrices and objects as they are).
    ("[0.1 + 0.2, 1 / 0, 4 / 2]", [0.30000000000000004, None, 2]),
    ("{x: 1 / 3}", {"x": 1 / 3}),
    ("$$8", 2**80),
    ("1 == 1", True),
]


def test_results_are_rounded_to_9_decimals_like_the_nocobase_evaluator() -> None:
    # @nocobase/evaluators ends math.js with `math.round(result, 9)`.
    assert run("1 / 3") == 0.333333333
    assert run("$$0 / 7", {"$$0": 22}) == 3.142857143


@pytest.mark.parametrize(("source", "expected"), NORMALISATION)
def test_results_are_normalised_like_nocobase(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


def test_normalised_integral_results_are_ints_for_json() -> None:
    assert type(run("6 / 3")) is int
    assert type(run("0.5 + 0.5")) is int
    assert type(run("true")) is bool


def test_placeholders_lists_exactly_the_placeholders_used() -> None:
    compiled = compile_mathjs("$$0 + $$12 * $$0 > max($$3, 1)")
    assert isinstance(compiled, CompiledMathjs)
    assert compiled.placeholders == frozenset({"$$0", "$$12", "$$3"})
    assert compile_mathjs("1 + 1").placeholders == frozenset()


def test_a_compiled_expression_survives_pickling() -> None:
    restored = pickle.loads(pickle.dumps(compile_mathjs("round($$0 * 1.5)")))
    assert restored.evaluate({"$$0": 3}) == 5
    assert restored.placeholders == frozenset({"$$0"})


def test_a_compiled_expression_is_reusable_with_different_values() -> None:
    compiled = compile_mathjs("$$0 * 2")
    assert compiled.evaluate({"$$0": 2}) == 4
    assert compiled.evaluate({"$$0": "2.5"}) == 5


COMPILE_ERRORS = [
    ("1 + * 2", r'unexpected "\*" at column 5'),
    ("(1 + 2", r'expected "\)" but found end of expression at column 7'),
    ("1 +", r"unexpected end of expression at column 4"),
    ("1 2", r"implicit multiplication is not supported at column 3"),
    ("2pi", r"implicit multiplication is not supported at column 2"),
    ("2 $$0", r"implicit multiplication is not supported at column 3"),
    ("(1)(2)", r"implicit multiplication is not supported at column 4"),
    ("$$0 && $$1", r'"&&" is not supported at column 5; use "and"'),
    ("$$0 || $$1", r'"\|\|" is not supported at column 5; use "or"'),
    ("1 === 1", r'"===" is not supported at column 3; use "=="'),
    ("!true", r'"!" before a value is not supported at column 1; use "not"'),
    ("foo(1)", r'unknown function "foo" at column 1; supported: abs, acos, add'),
    ("$$0(1)", r'unknown function "\$\$0" at column 1'),
    ("foo + 1", r'unknown symbol "foo" at column 1'),
    ("x", r'unknown symbol "x" at column 1'),
    ("$x", r'unknown symbol "\$x" at column 1'),
    ("abs + 1", r'"abs" is a function at column 1'),
    ("a = 1", r'assignment \("="\) is not supported at column 3'),
    ("f(x) = x ^ 2", r'assignment \("="\) is not supported at column 6'),
    ("5 cm", r"implicit multiplication is not supported at column 3"),
    ("2 to 3", r'unit conversion \("to"\) is not supported at column 3'),
    ("2 in 3", r'unit conversion \("in"\) is not supported at column 3'),
    ("[1, 2]'", r"the transpose operator \"'\" is not supported at column 7"),
    ("1:3", r"ranges .* are not supported at column 2"),
    ("[1:3]", r"ranges .* are not supported at column 3"),
    ("1; 2", r'";" .* is not supported at column 2'),
    ("sqrt(1, 2)", r'function "sqrt" at column 1 takes 1 argument\(s\), got 2'),
    ("round(1, 2, 3)", r'function "round" at column 1 takes 1 to 2 argument\(s\), got 3'),
    ("add(1)", r'function "add" at column 1 takes at least 2 argument\(s\), got 1'),
    ("atan2()", r'function "atan2" at column 1 takes 2 argument\(s\), got 0'),
    ('"abc', r"unterminated string at column 1"),
    ('"\\x"', r"invalid escape sequence in string .* at column 1"),
    ("1 @ 2", r'unexpected "@" at column 3'),
    ("and 1", r'unexpected operator "and" at column 1'),
    ("1 not 2", r'unexpected operator "not" at column 3'),
    ("1 ? 2", r'expected ":" but found end of expression at column 6'),
    ("{a 1}", r'expected ":" but found "1" at column 4'),
    ("{1: 2}", r'expected a property name but found "1" at column 2'),
    ("[1, 2", r'expected "," or "\]" but found end of expression at column 6'),
    ("$$0.", r'expected a property name after "." but found end of expression at column 5'),
    ("$$0[1, 2]", r"multi-dimensional indexes are not supported at column 6"),
    ("$$0.f(1)", r"calling methods is not supported at column 6"),
    ("", r"the expression is empty"),
    ("  # only a comment", r"the expression is empty"),
]


@pytest.mark.parametrize(("source", "message"), COMPILE_ERRORS)
def test_unsupported_or_invalid_syntax_is_rejected_at_compile_time(
    source: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_mathjs(source)


def test_compile_errors_carry_the_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_mathjs("1 + foo")
    assert caught.value.column == 5


def test_sources_longer_than_the_limit_are_rejected() -> None:
    source = "1+" * (MAX_SOURCE_LENGTH // 2) + "1"
    with pytest.raises(ExpressionError, match="too long"):
        compile_mathjs(source)


@pytest.mark.parametrize(
    "source",
    [
        "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5),
        "-" * (MAX_DEPTH + 5) + "1",
        "2" + "^2" * (MAX_DEPTH + 5),
        "abs(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5),
        "$$0" + ".a" * (MAX_DEPTH + 5),
        "3" + "!" * (MAX_DEPTH + 5),
    ],
)
def test_expressions_nested_deeper_than_the_limit_are_rejected(source: str) -> None:
    with pytest.raises(ExpressionError, match="nested more than 100 levels"):
        compile_mathjs(source)


def test_nesting_up_to_the_limit_and_long_flat_chains_are_accepted() -> None:
    depth = MAX_DEPTH - 1
    assert run("(" * depth + "1" + ")" * depth) == 1
    assert run("+".join(["1"] * 2000)) == 2000
    assert run(" and ".join(["true"] * 500)) is True


RUNTIME_ERRORS = [
    ('"abc" + 1', r'Cannot convert "abc" to a number at column 7'),
    ("$$2 * 2", r'Cannot convert "abc" to a number at column 5'),
    ('5 == "a"', r'Cannot convert "a" to a number'),
    ("sqrt('x')", r'sqrt\(\): Cannot convert "x" to a number at column 1'),
    ("number('12px')", r'Cannot convert "12px" to a number'),
    ("boolean('maybe')", r'Cannot convert "maybe" to a boolean'),
    ("$$0[0]", r"index 0 is out of range \(indices are 1-based; valid: 1 to 3\) at column 4"),
    ("$$0[4]", r"index 4 is out of range"),
    ("[][1]", r"index 1 is out of range .*empty"),
    ("$$0[1.5]", r"an index must be an integer, got 1.5"),
    ("$$0[true]", r"an index must be a number, not a boolean"),
    ("$$0['a']", r'cannot read property "a" of a list'),
    ("$$1.x", r'cannot read property "x" of null at column 4'),
    ("$$1[1]", r"cannot read an index of null"),
    ("$$2.length", r'cannot read property "length" of a string'),
    ("(5).x", r'cannot read property "x" of a number'),
    ("[1] + 1", r"Cannot convert a list to a number"),
    ("{a: 1} * 2", r"Cannot convert an object to a number"),
    ("$$4 + 1", r"Cannot convert a date to a number"),
    ("$$4 < $$6", r"cannot compare dates with and without a time zone"),
    ("[1] < [2]", r"cannot compare a list with a list"),
    ("1.5 & 1", r"Integers expected in function bitAnd"),
    ("~0.5", r"Integers expected in function bitNot"),
    ("factorial(-1)", r"factorial\(\): cannot take the factorial of a negative number"),
    ("(-1)!", r"cannot take the factorial of a negative number at column 5"),
    ("gcd(1.5, 2)", r"gcd\(\): the arguments must be integers"),
    ("round(1, 20)", r"round\(\): the number of decimals must be an integer from 0 to 15"),
    ("min([])", r"cannot calculate the min of an empty list"),
    ("mean([])", r"cannot calculate the mean of an empty list"),
    ("concat(1, 2)", r"concat\(\): expected only lists or only strings"),
    ("concat([1], 'a')", r"expected only lists or only strings"),
    ("concat([[1]], [[2]])", r"nested lists \(matrices\) is not supported"),
    ("count(5)", r"count\(\): expected a list or a string, not a number"),
    ("size({})", r"size is not defined for an object"),
]


@pytest.mark.parametrize(("source", "message"), RUNTIME_ERRORS)
def test_runtime_errors_raise_expression_error_with_location(source: str, message: str) -> None:
    compiled = compile_mathjs(source)
    with pytest.raises(ExpressionError, match=message):
        compiled.evaluate(VALUES)


def test_missing_placeholder_values_are_reported_by_name() -> None:
    with pytest.raises(ExpressionError, match=r"no value was supplied for \$\$1, \$\$2"):
        compile_mathjs("$$0 + $$1 + $$2").evaluate({"$$0": 1})


def test_deeply_nested_input_values_fail_cleanly() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_mathjs("abs($$0)").evaluate({"$$0": value})
    assert compile_mathjs("count($$0)").evaluate({"$$0": value}) == 1


BOUNDED_WORK = [
    ("factorial(1e9)", None),
    ("factorial(171)", None),
    ("170! > 1e306", True),
    ("2 ^ 100000", None),
    ("pow(10, 400)", None),
    ("(-10) ^ 309", None),
    ("10 ^ -400", 0),
    ("0 ^ -1", None),
    ("(-8) ^ (1 / 3)", None),
    ("1 ^ Infinity", None),
    ("lcm(2 ^ 1000, 2 ^ 1000 - 1, 3 ^ 600)", None),
    ("1e308 * 10", None),
    ("0x" + "F" * 300, None),
]


@pytest.mark.parametrize(("source", "expected"), BOUNDED_WORK)
def test_huge_numbers_stay_floats_and_return_quickly(source: str, expected: Any) -> None:
    started = time.perf_counter()
    assert run(source) == expected
    assert time.perf_counter() - started < 0.5


def test_concat_results_are_capped() -> None:
    big = list(range(60_000))
    with pytest.raises(ExpressionError, match="more than 100000 items"):
        compile_mathjs("concat($$0, $$0)").evaluate({"$$0": big})
    with pytest.raises(ExpressionError, match="more than 100000 items"):
        compile_mathjs("concat($$0, $$0)").evaluate({"$$0": "x" * 60_000})


def test_property_access_never_reaches_python_attributes() -> None:
    assert run("$$3.__class__") is None
    assert run("$$3['__dict__']") is None
    with pytest.raises(ExpressionError):
        run("$$2.__class__")
    with pytest.raises(ExpressionError):
        compile_mathjs("__import__('os')")


def test_non_string_source_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        compile_mathjs(42)  # type: ignore[arg-type]
