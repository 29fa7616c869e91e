"""The `formula.js` expression engine (engine/expressions/formulajs.py) and the
calculation/condition nodes using it (reference §4.3, SPEC §5)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.expressions import ENGINE_NAMES, ExpressionError, compile_expression
from engine.expressions.formulajs import SUPPORTED_FUNCTIONS, compile_formulajs
from engine.expressions.language import MAX_DEPTH
from engine.status import Status
from tests.engine.test_interpreter import compile_nodes, run_nodes

DOCS = Path(__file__).resolve().parents[2] / "docs" / "nodes.md"


def ev(expression: str, scope: dict[str, Any] | None = None) -> Any:
    return compile_expression("formula.js", expression).evaluate(scope or {})


def body(**values: Any) -> dict[str, Any]:
    return {"$context": {"body": values}}


# -- NocoBase's own evaluator tests ------------------------------------------------------------


def test_newline_escape_in_string_literal() -> None:
    assert ev("CONCATENATE('a', '\\n', 'b')") == "a\nb"


def test_null_plus_number_is_the_number() -> None:
    assert ev("null + 1") == 1


def test_results_are_rounded_to_nine_decimals() -> None:
    assert ev("100*2.3") == 230
    assert ev("0.1 + 0.2") == 0.3
    assert ev("1/3") == 0.333333333


def test_nan_and_infinity_results_are_null() -> None:
    assert ev("1/0") is None
    assert ev("0/0") is None
    assert ev("-1/0") is None


def test_engine_is_registered() -> None:
    assert "formula.js" in ENGINE_NAMES


# -- JavaScript syntax and value semantics --------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('IF({{$context.body.a}} > 1, "big", "small")', "big"),
        ('"a" + 1 + 2', "a12"),
        ('1 + 2 + "a"', "3a"),
        ('"n=" + null', "n=null"),
        ('"x" + [1, 2]', "x1,2"),
        ("{{$context.body.s}} == 10", True),
        ("{{$context.body.s}} === 10", False),
        ("1 === 1.0", True),
        ("null == undefined", True),
        ("null === undefined", False),
        ('true && "x" || "y"', "x"),
        ('0 || "fallback"', "fallback"),
        ('null ?? "d"', "d"),
        ("0 ?? 5", 0),
        ("!0", True),
        ("!!{{$context.body.name}}", True),
        ("2 * 3 + 4 * 5", 26),
        ("2 + 3 * 4 - 1", 13),
        ("(2 + 3) * 4", 20),
        ("10 - 4 - 3", 3),
        ("5 % 3", 2),
        ("-5 % 3", -2),
        ("2 ** 3 ** 2", 512),
        ("(-2) ** 2", 4),
        ("2 ** -1", 0.5),
        ("1 < 2 < 3", True),
        ("3 > 2 > 1", False),
        ('"10" < "9"', True),
        ('"10" < 9', False),
        ("1 ? 2 : 3", 2),
        ('0 ? "a" : 1 ? "b" : "c"', "b"),
        ("typeof {{$context.body.a}}", "number"),
        ("typeof {{$context.body.name}}", "string"),
        ("typeof {{$context.body.missing}}", "object"),
        ("typeof SUM", "function"),
        ("{{$context.body.items}}[0]", 1),
        ("{{$context.body.items}}[2]", 3),
        ("{{$context.body.items}}[3]", None),
        ("{{$context.body.items}}.length", 3),
        ("{{$context.body.name}}.length", 3),
        ("{{$context.body.name}}[0]", "b"),
        ("{{$context.body.obj}}.k", "v"),
        ('{{$context.body.obj}}["k"]', "v"),
        ("{{$context.body.missing}}?.x", None),
        ("[1, 2, 3][1]", 2),
        ("{a: 1, 'b': 2}.b", 2),
        ("5 & 3", 1),
        ("5 | 3", 7),
        ("5 ^ 3", 6),
        ("~5", -6),
        ("1 << 4", 16),
        ("-16 >> 2", -4),
        ("-1 >>> 28", 15),
        ("0x10 + 0b11 + 0o7", 26),
        ("1e3", 1000),
        ('"\\u0041\\x42"', "AB"),
        ("NaN", None),
        ("undefined", None),
        ("// comment\n 1 + /* inline */ 2", 3),
    ],
)
def test_javascript_semantics(expression: str, expected: Any) -> None:
    scope = body(a=5, s="10", name="bob", items=[1, 2, 3], obj={"k": "v"})
    assert ev(expression, scope) == expected


def test_placeholders_keep_their_types() -> None:
    scope = body(when=datetime(2024, 1, 2, tzinfo=UTC), list=[{"x": 1}])
    assert ev("{{$context.body.list}}", scope) == [{"x": 1}]
    assert ev("{{$context.body.when}}", scope) == datetime(2024, 1, 2, tzinfo=UTC)


def test_missing_placeholder_is_null() -> None:
    assert ev("{{$context.body.nothing}} == null", body()) is True


def test_array_path_maps_over_items() -> None:
    scope = body(orders=[{"total": 2}, {"total": 3}])
    assert ev("SUM({{$context.body.orders.total}})", scope) == 5


# -- functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('IF(1 > 2, "a", "b")', "b"),
        ("IF(true, null, 1)", 0),
        ("IF(false, 1)", False),
        ('IF("true", 1, 2)', 1),
        ('IFS(1 > 2, "a", 2 > 1, "b")', "b"),
        ('AND(true, 1, "ignored")', True),
        ("AND(true, 0)", False),
        ("OR(false, 0, 1)", True),
        ("XOR(true, true)", False),
        ("XOR(true, false, false)", True),
        ("NOT(0)", True),
        ("TRUE()", True),
        ("FALSE()", False),
        ('SWITCH(2, 1, "one", 2, "two", "other")', "two"),
        ('SWITCH(9, 1, "one", "other")', "other"),
        ("IFERROR(SQRT(-1), 0)", 0),
        ("IFERROR(4, 0)", 4),
        ("ISERROR(SQRT(-1))", True),
        ("ISERROR(1)", False),
        ('SUM(1, "2", [3, [4]], true, null)', 10),
        ("SUMPRODUCT([1, 2], [3, 4])", 11),
        ('PRODUCT(2, "3", [4])', 24),
        ('AVERAGE(1, 2, "x", 3)', 2),
        ("MEDIAN(3, 1, 2, 10)", 2.5),
        ("MIN(3, [1, 2])", 1),
        ("MAX(3, [1, 7])", 7),
        ("MAX()", 0),
        ('COUNT(1, "2", 3, null)', 2),
        ('COUNTA(1, "", null, "a")', 2),
        ("ROUND(2.345, 2)", 2.35),
        ("ROUND(1.005, 2)", 1.01),
        ("ROUND(-2.5)", -3),
        ("ROUND(1234, -2)", 1200),
        ("ROUNDUP(1.21, 1)", 1.3),
        ("ROUNDUP(-1.21, 1)", -1.3),
        ("ROUNDDOWN(-1.29, 1)", -1.2),
        ("TRUNC(8.9)", 8),
        ("INT(-1.5)", -2),
        ("ABS(-3)", 3),
        ("SIGN(-0.5)", -1),
        ("CEILING(4.3, 0.5)", 4.5),
        ("CEILING(4.3)", 5),
        ("CEILING(-4.3)", -4),
        ("FLOOR(4.7, 0.5)", 4.5),
        ("FLOOR(-2.5)", -3),
        ("MOD(10, 3)", 1),
        ("MOD(-4, 3)", 2),
        ("MOD(3, -2)", -1),
        ("POWER(2, 10)", 1024),
        ("SQRT(16)", 4),
        ("EXP(0)", 1),
        ("LN(1)", 0),
        ("LOG10(1000)", 3),
        ("LOG(8, 2)", 3),
        ("ROUND(PI(), 4)", 3.1416),
        ('CONCATENATE("a", 1, true, null, [2, 3])', "a1TRUE23"),
        ('CONCAT("x", "y")', "xy"),
        ('TEXTJOIN("-", true, "a", "", ["b", "c"])', "a-b-c"),
        ('LEN("hello")', 5),
        ("LEN(12345)", 5),
        ('UPPER("abc")', "ABC"),
        ('LOWER("ABC")', "abc"),
        ('PROPER("hello wORLD")', "Hello World"),
        ('TRIM("  a   b ")', "a b"),
        ('LEFT("hello", 2)', "he"),
        ('LEFT("hello")', "h"),
        ('RIGHT("hello", 3)', "llo"),
        ('RIGHT("hi", 5)', "hi"),
        ('MID("hello", 2, 3)', "ell"),
        ('SUBSTITUTE("a-b-c", "-", "+")', "a+b+c"),
        ('SUBSTITUTE("a-b-c", "-", "+", 2)', "a-b+c"),
        ('SUBSTITUTE("-a", "-", "+", 1)', "+a"),
        ('REPLACE("abcdef", 2, 3, "X")', "aXef"),
        ('FIND("l", "hello")', 3),
        ('FIND("l", "hello", 4)', 4),
        ('SEARCH("L", "hello")', 3),
        ('TEXT(1234.567, "$#,##0.00")', "$1,234.57"),
        ('TEXT(0.256, "0.0%")', "25.6%"),
        ('TEXT(-1234.5, "#,##0")', "-1,235"),
        ('TEXT(DATE(2024, 7, 15), "yyyy")', "2024-07-15"),
        ('VALUE("1,234.5")', 1234.5),
        ('VALUE("50%")', 0.5),
        ('VALUE("$12")', 12),
        ('EXACT("a", "A")', False),
        ('EXACT(1, "1")', True),
        ('REPT("ab", 3)', "ababab"),
        ('T("x")', "x"),
        ("T(1)", ""),
        ("ISBLANK(null)", True),
        ('ISBLANK("")', False),
        ("ISNUMBER(1)", True),
        ('ISNUMBER("1")', False),
        ('ISTEXT("1")', True),
        ("ISLOGICAL(false)", True),
        ("ISEVEN(4)", True),
        ("ISODD(4)", False),
        ("YEAR(DATE(2024, 7, 15))", 2024),
        ('MONTH("2024-07-15")', 7),
        ('DAY("15/07/2024")', 15),
        ('HOUR("2024-07-15T10:20:30Z")', 10),
        ('MINUTE("2024-07-15T10:20:30Z")', 20),
        ('SECOND("2024-07-15T10:20:30Z")', 30),
        ("YEAR(45000)", 2023),
        ("WEEKDAY(DATE(2024, 7, 14))", 1),
        ("WEEKDAY(DATE(2024, 7, 14), 2)", 7),
        ("DAYS(DATE(2024, 3, 1), DATE(2024, 2, 1))", 29),
    ],
)
def test_functions(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_date_builds_a_utc_midnight_and_overflows_like_js() -> None:
    assert ev("DATE(2024, 2, 30)") == datetime(2024, 3, 1, tzinfo=UTC)
    assert ev("DATE(2024, 13, 1)") == datetime(2025, 1, 1, tzinfo=UTC)
    assert ev("DATE(99, 1, 1)") == datetime(1999, 1, 1, tzinfo=UTC)


def test_now_and_today() -> None:
    now = ev("NOW()")
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
    today = ev("TODAY()")
    assert today.hour == today.minute == 0
    assert ev("NOW() > DATE(2020, 1, 1)") is True


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("SQRT(-1)", "#NUM!"),
        ("MOD(1, 0)", "#DIV/0!"),
        ('SUM(1) + VALUE("abc")', "#VALUE!"),
        ('FIND("z", "abc")', "#VALUE!"),
        ('IFS(1 > 2, "a")', "#N/A"),
        ("AVERAGE([])", "#DIV/0!"),
        ('MID("abc", 0, 1)', "#VALUE!"),
        ('NOT("x")', "#VALUE!"),
        ('IF("maybe", 1, 2)', "#VALUE!"),
    ],
)
def test_formula_error_values_fail_the_evaluation_with_their_code(
    expression: str, code: str
) -> None:
    with pytest.raises(ExpressionError, match=re.escape(code)):
        ev(expression)


def test_error_names_the_function_and_column() -> None:
    with pytest.raises(ExpressionError, match=r"SQRT\(\): #NUM! .*column 5"):
        ev("SUM(SQRT(-1))")


def test_reading_a_property_of_null_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="Cannot read properties of null"):
        ev("{{$context.body.x}}.y", body())


# -- rejected at definition time ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("sum(1, 2)", 'unknown function "sum" at column 1 (function names are upper case: "SUM")'),
        ("VLOOKUP(1, 2, 3)", 'unknown function "VLOOKUP" at column 1; supported functions: IF,'),
        ("Math.max(1, 2)", 'unknown name "Math"'),
        ("foo + 1", 'unknown name "foo"'),
        ('"a".toUpperCase()', "calling methods is not supported"),
        ("a = 1", "assignment"),
        ("1; 2", '";"'),
        ("`x`", "template literals"),
        ("(x) => x", "arrow functions"),
        ("x++", '"++"'),
        ("-2 ** 2", "parentheses"),
        ("IF(1)", 'function "IF" takes 2 to 3 argument(s), got 1'),
        ("TRUE(1)", 'function "TRUE" takes 0 argument(s)'),
        ("1 +", "unexpected end of expression"),
        ("(1", 'expected ")"'),
        ("1 2", "an operator or a comma is missing"),
        ('"open', "unterminated string"),
        ("new Date()", '"new" is not supported'),
        ("1 in [1]", '"in" is not supported'),
        ("(1, 2)", "comma operator"),
        ("#", 'unexpected "#"'),
    ],
)
def test_unsupported_syntax_is_rejected_when_compiled(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        compile_expression("formula.js", expression)


def test_work_is_bounded() -> None:
    with pytest.raises(ExpressionError, match="too long"):
        compile_formulajs("1+" * 6000 + "1")
    with pytest.raises(ExpressionError, match="nested more than"):
        compile_formulajs("(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5))
    assert compile_formulajs("+".join(["1"] * 2000)).evaluate({}) == 2000  # long chains stay flat
    with pytest.raises(ExpressionError, match="longer than"):
        ev('REPT("abc", 1e9)')
    with pytest.raises(ExpressionError, match="longer than"):
        ev('REPT("a", 600000) + REPT("b", 600000)')


def test_compiled_formula_is_picklable() -> None:
    import pickle

    compiled = compile_formulajs("SUM($$0, 1)")
    assert pickle.loads(pickle.dumps(compiled)).evaluate({"$$0": 2}) == 3


def test_every_supported_function_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in SUPPORTED_FUNCTIONS if f"`{name}`" not in text]
    assert not missing, f"docs/nodes.md does not list {missing}"


def test_no_nan_leaks_into_nested_results() -> None:
    result = ev("[1/0, 2, 0/0]")
    assert result == [None, 2, None]
    assert not any(isinstance(v, float) and math.isnan(v) for v in result)


# -- nodes using the engine -------------------------------------------------------------------


def calculation(key: str, expression: str) -> dict[str, Any]:
    return {
        "key": key,
        "type": "calculation",
        "config": {"engine": "formula.js", "expression": expression},
    }


async def test_calculation_node_with_formula_js() -> None:
    run = await run_nodes(
        [calculation("total", "ROUND(SUM({{$context.body.items.price}}) * 1.2, 2)")],
        {"body": {"items": [{"price": 10}, {"price": 5.5}]}},
    )
    assert run.status == Status.RESOLVED
    assert run.job("total").result == 18.6


async def test_calculation_error_at_run_time_is_job_error() -> None:
    run = await run_nodes([calculation("c", "SQRT({{$context.body.n}})")], {"body": {"n": -4}})
    assert run.status == Status.ERROR
    assert "#NUM!" in run.job("c").result


async def test_condition_node_with_formula_js_follows_branches() -> None:
    nodes = [
        {
            "key": "check",
            "type": "condition",
            "config": {
                "engine": "formula.js",
                "rejectOnFalse": False,
                "expression": (
                    'AND({{$context.body.amount}} > 100, {{$context.body.currency}} === "EUR")'
                ),
            },
            "branches": {"1": [calculation("yes", "1")], "0": [calculation("no", "0")]},
        }
    ]
    big = await run_nodes(nodes, {"body": {"amount": 150, "currency": "EUR"}})
    assert big.ran() == ["check", "yes"]
    small = await run_nodes(nodes, {"body": {"amount": 150, "currency": "USD"}})
    assert small.ran() == ["check", "no"]


async def test_multi_conditions_with_formula_js() -> None:
    nodes = [
        {
            "key": "m",
            "type": "multi-conditions",
            "config": {
                "conditions": [
                    {"engine": "formula.js", "expression": '{{$context.body.t}} == "a"'},
                    {"engine": "formula.js", "expression": 'LEFT({{$context.body.t}}, 1) == "b"'},
                ]
            },
            "branches": {"1": [calculation("a", "1")], "2": [calculation("b", "2")]},
        }
    ]
    run = await run_nodes(nodes, {"body": {"t": "bee"}})
    assert run.ran() == ["m", "b"]


def test_unsupported_function_is_a_validation_error_naming_node_and_field() -> None:
    with pytest.raises(DefinitionError) as info:
        compile_nodes([calculation("calc1", "VLOOKUP({{$context.body.a}}, 1, 2)")])
    message = str(info.value)
    assert 'node "calc1"' in message
    assert "config.expression" in message
    assert "VLOOKUP" in message


def test_condition_with_unsupported_formula_is_rejected() -> None:
    node = {
        "key": "c1",
        "type": "condition",
        "config": {"engine": "formula.js", "rejectOnFalse": False, "expression": "foo()"},
    }
    with pytest.raises(DefinitionError, match=r'node "c1".*config\.expression'):
        compile_nodes([node])


def test_formula_placeholders_are_validated() -> None:
    with pytest.raises(DefinitionError, match="ghost"):
        compile_nodes([calculation("c", "{{$jobsMapByNodeKey.ghost}} + 1")])
