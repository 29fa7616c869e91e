"""Templates and expression engines on hostile text and values.

- `parse_placeholders` and `compile_template` on any text or JSON value either
  succeed or raise `TemplateError`; a compiled template renders against any
  scope without raising.
- `compile_expression` (math.js, formula.js, string) on any text either succeeds
  or raises `ExpressionError`; a compiled expression evaluates against any
  values without raising anything else, within a CPU bound."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.expressions import ExpressionError, compile_expression
from engine.expressions.formulajs import SUPPORTED_FUNCTIONS as FORMULA_FUNCTIONS
from engine.expressions.mathjs import SUPPORTED_FUNCTIONS as MATH_FUNCTIONS
from engine.paths import get_request_path, parse_request_path
from engine.templates import TemplateError, compile_template, parse_placeholders
from tests.fuzz.conftest import examples

ROOTS = ["$context", "$jobsMapByNodeKey", "$scopes", "$system", "$env"]
CPU_LIMIT = 1.0

# -- values ---------------------------------------------------------------------------

#: Path segments and keys, a numeric one past Python's int-from-text limit among them.
_NAMES = st.sampled_from(
    ["a", "b", "0", "1", "length", "items", "id", "", "x y", "ключ", "٣", "9" * 5000]
)
#: Integers a JSON body may hold, beyond the float range too (JS reads 1e400 as Infinity).
_BIG = st.sampled_from(
    [2**53 + 1, 2**64, 10**30, -(10**30), 10**308, -(10**308), 10**400, -(10**400)]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _BIG,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
#: What a decoded JSON body can hold (msgspec keeps integers of any size).
json_values = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(_NAMES, st.text(max_size=5)), children, max_size=4)
    ),
    max_leaves=20,
)
#: What a scope can hold besides: results of nodes (NaN and ±Infinity included).
scope_values = st.recursive(
    st.one_of(_SCALARS, st.floats()),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(_NAMES, st.text(max_size=5)), children, max_size=4)
    ),
    max_leaves=20,
)
scopes = st.dictionaries(st.sampled_from(ROOTS), scope_values, max_size=5)

# -- texts ----------------------------------------------------------------------------

_PATHS = st.lists(st.one_of(st.sampled_from(ROOTS), _NAMES, st.text(max_size=3)), max_size=4).map(
    ".".join
)
_TEMPLATE_TOKENS = st.one_of(
    st.sampled_from(["{{", "}}", "{", "}", ".", ":", " ", "$", "-", "\n", "default", "{{ }}"]),
    _PATHS.map(lambda p: "{{" + p + "}}"),
    st.tuples(_PATHS, st.text(max_size=4)).map(lambda pd: "{{" + pd[0] + ":" + pd[1] + "}}"),
    st.text(max_size=4),
)
template_texts = st.lists(_TEMPLATE_TOKENS, max_size=12).map("".join)

_EXPRESSION_TOKENS = st.one_of(
    st.sampled_from(
        [
            "+",
            "-",
            "*",
            "/",
            "^",
            "%",
            "(",
            ")",
            ",",
            "==",
            "!=",
            "<",
            ">",
            "<=",
            ">=",
            "=",
            "and",
            "or",
            "not",
            "xor",
            "?",
            ":",
            "[",
            "]",
            "{",
            "}",
            ".",
            "!",
            "&",
            "&&",
            "'",
            '"',
            "'a'",
            '"b"',
            "true",
            "false",
            "null",
            "TRUE",
            "1e308",
            "1e309",
            "0x1F",
            "9007199254740993",
            "-0",
            ".5",
            "NaN",
            "Infinity",
            "pi",
            "e",
            " ",
            ";",
            "@",
            "#",
            "²",
            "٣",
            "①",
        ]
    ),
    st.sampled_from(sorted({*MATH_FUNCTIONS, *FORMULA_FUNCTIONS})).map(lambda f: f + "("),
    st.integers().map(str),
    st.floats().map(repr),
    _PATHS.map(lambda p: "{{" + p + "}}"),
    st.sampled_from(["{{$context.a}}", "{{$context.b}}", "{{$jobsMapByNodeKey.n}}"]),
    st.text(max_size=3),
)
expression_texts = st.lists(_EXPRESSION_TOKENS, max_size=16).map(" ".join) | st.lists(
    _EXPRESSION_TOKENS, max_size=16
).map("".join)
#: Scopes whose paths the expression texts above refer to.
expression_scopes = st.fixed_dictionaries(
    {
        "$context": st.fixed_dictionaries({"a": scope_values, "b": scope_values}),
        "$jobsMapByNodeKey": st.fixed_dictionaries({"n": scope_values}),
    }
)

# -- templates ------------------------------------------------------------------------


@settings(max_examples=examples(300))
@given(st.one_of(st.text(), template_texts))
@example("{{")
@example("{{$context.a:}}}")
@example("{{ $context.a : x }}{{")
def test_parse_placeholders_succeeds_or_raises_template_error(text: str) -> None:
    try:
        found = parse_placeholders(text)
    except TemplateError:
        return
    assert all(ph.text in text for ph in found)


templated_values = st.recursive(
    st.one_of(_SCALARS, template_texts),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(template_texts, _NAMES), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=examples(300))
@given(templated_values, scopes)
@example("{{$context.a.99999999999999999999}}", {"$context": {"a": [1]}})
@example({"{{$context.a}}": 1}, {"$context": {"a": {"b": float("nan")}}})
def test_compiled_templates_render_against_any_scope(value: Any, scope: dict[str, Any]) -> None:
    try:
        renderer = compile_template(value)
    except TemplateError:
        return
    started = time.process_time()
    renderer.render(scope)
    assert time.process_time() - started < CPU_LIMIT


# -- expressions ----------------------------------------------------------------------


def compile_and_evaluate(engine: str, text: str, scope: dict[str, Any]) -> None:
    try:
        compiled = compile_expression(engine, text)
    except ExpressionError:
        return
    started = time.process_time()
    try:
        compiled.evaluate(scope)
    except ExpressionError:
        pass
    assert time.process_time() - started < CPU_LIMIT, f"{engine}: {text!r}"


@settings(max_examples=examples(400))
@given(expression_texts, expression_scopes)
@example("{{$context.a}} + 1", {"$context": {"a": 10**400, "b": 0}, "$jobsMapByNodeKey": {}})
@example("factorial(170) * factorial(170)", {"$context": {}, "$jobsMapByNodeKey": {}})
def test_mathjs_compiles_and_evaluates_or_raises_expression_error(
    text: str, scope: dict[str, Any]
) -> None:
    compile_and_evaluate("math.js", text, scope)


@settings(max_examples=examples(400))
@given(expression_texts, expression_scopes)
@example('REPT("x", 1e9)', {"$context": {}, "$jobsMapByNodeKey": {}})
def test_formulajs_compiles_and_evaluates_or_raises_expression_error(
    text: str, scope: dict[str, Any]
) -> None:
    compile_and_evaluate("formula.js", text, scope)


@settings(max_examples=examples(300))
@given(st.one_of(expression_texts, template_texts), expression_scopes)
def test_string_engine_compiles_and_evaluates_or_raises_expression_error(
    text: str, scope: dict[str, Any]
) -> None:
    compile_and_evaluate("string", text, scope)


@settings(max_examples=examples(100))
@given(st.text(), expression_texts)
def test_unknown_engines_are_expression_errors(engine: str, text: str) -> None:
    if engine not in ("math.js", "formula.js", "string"):
        try:
            compile_expression(engine, text)
        except ExpressionError:
            return
        raise AssertionError(f"engine {engine!r} was accepted")


# -- fixed findings (docs/reliability.md, "Fuzzing") -----------------------------------


@pytest.mark.parametrize(("number", "text"), [(10**400, "Infinity"), (-(10**400), "-Infinity")])
def test_interpolating_an_integer_beyond_the_float_range_renders_like_js(
    number: int, text: str
) -> None:
    # F2. A JSON body may hold 1 followed by 400 zeros; msgspec decodes it as an int.
    rendered = compile_template("x{{$context.a}}").render({"$context": {"a": number}})
    assert rendered == "x" + text  # JS: String(Number("1e400"))


def test_string_engine_substitutes_an_integer_beyond_the_float_range() -> None:
    # F2.
    compiled = compile_expression("string", "{{$context.a}}!")
    assert compiled.evaluate({"$context": {"a": 10**400}}) == "Infinity!"


def test_formulajs_reads_an_integer_beyond_the_float_range_as_infinity() -> None:
    # F2.
    compiled = compile_expression("formula.js", "{{$context.a}} > 1e308")
    assert compiled.evaluate({"$context": {"a": 10**400}}) is True


def test_a_template_path_with_a_huge_numeric_segment_renders_as_missing() -> None:
    # F3.
    renderer = compile_template("{{$context.a." + "9" * 5000 + "}}")
    assert renderer.render({"$context": {"a": [1], "b": "text"}}) is None
    assert (
        compile_template("{{$context.b." + "9" * 5000 + "}}").render({"$context": {"b": "x"}})
        is None
    )


def test_a_request_path_with_a_huge_index_reads_as_missing() -> None:
    # F3: lodash reads the index as text, which no list has.
    path = parse_request_path("a[" + "9" * 5000 + "]")
    assert get_request_path({"a": [1]}, path) is None
    assert get_request_path({"a": {"9" * 5000: 1}}, path) == 1


@pytest.mark.parametrize("text", ["²", "①", "1 + ³", "٣", "1٣", ".٣"])
def test_formulajs_rejects_non_ascii_digits_as_expression_errors(text: str) -> None:
    # F4: JavaScript numbers are ASCII digits only.
    with pytest.raises(ExpressionError):
        compile_expression("formula.js", text)
