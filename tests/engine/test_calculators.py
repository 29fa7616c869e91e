"""engine.calculators: the 18 basic-engine calculators with JavaScript semantics
(NocoBase `logicCalculate.ts`, reference §5.1) and and/or calculation groups."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from engine.calculators import (
    CALCULATORS,
    CalculationError,
    Comparison,
    Group,
    calculation_placeholders,
    compile_calculation,
)

NAN = math.nan
DAY = datetime(2024, 1, 1, tzinfo=UTC)


def calc(name, a, b):
    return CALCULATORS[name](a, b)


def test_there_are_exactly_the_18_nocobase_calculators():
    assert set(CALCULATORS) == {
        "equal",
        "notEqual",
        "gt",
        "gte",
        "lt",
        "lte",
        "==",
        "!=",
        ">",
        ">=",
        "<",
        "<=",
        "includes",
        "notIncludes",
        "startsWith",
        "notStartsWith",
        "endsWith",
        "notEndsWith",
    }


@pytest.mark.parametrize(
    ("alias", "name"),
    [("==", "equal"), ("!=", "notEqual"), (">", "gt"), (">=", "gte"), ("<", "lt"), ("<=", "lte")],
)
def test_symbol_aliases_are_the_named_calculators(alias, name):
    assert CALCULATORS[alias] is CALCULATORS[name]


# -- loose equality (JS ==) ---------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, "1"),
        (0, ""),
        (None, None),
        (True, 1),
        (False, 0),
        (True, "1"),
        (False, "0"),
        ("", False),
        (False, []),
        (1.0, 1),
        ("a", "a"),
        (" 1 ", 1),
        ("0x10", 16),
        ("1e3", 1000),
        ("Infinity", math.inf),
        ("1", [1]),
        ([1, 2], "1,2"),
        ([], ""),
        ([None], ""),
        ({}, "[object Object]"),
    ],
)
def test_equal_is_js_loose_equality_true_cases(a, b):
    assert calc("equal", a, b) is True
    assert calc("equal", b, a) is True
    assert calc("notEqual", a, b) is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (None, 0),
        (None, ""),
        (None, False),
        (True, "true"),
        ("a", "b"),
        (1, 2),
        ("infinity", math.inf),
        ("1_000", 1000),
        ([1], [1]),  # arrays compare by identity
        ({}, {}),  # objects compare by identity
        ({"a": 1}, {"a": 1}),
    ],
)
def test_equal_is_js_loose_equality_false_cases(a, b):
    assert calc("equal", a, b) is False
    assert calc("notEqual", a, b) is True


def test_same_array_object_is_equal_to_itself():
    same = [1, 2]
    assert calc("equal", same, same) is True


def test_nan_is_not_equal_to_nan():
    assert calc("equal", NAN, NAN) is False
    assert calc("notEqual", NAN, NAN) is True


# -- relational comparisons (JS <, >, <=, >=) ---------------------------------


def test_two_numeric_strings_compare_as_text():
    assert calc("gt", "10", "9") is False
    assert calc("lt", "10", "9") is True


def test_number_against_numeric_string_compares_numerically():
    assert calc("gt", 10, "9") is True
    assert calc("lt", "10", 9) is False


def test_strings_compare_by_code_point():
    assert calc("gt", "b", "a") is True
    assert calc("lt", "", "a") is True
    assert calc("lte", "a", "b") is True


@pytest.mark.parametrize("name", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize(("a", "b"), [(NAN, 1), (1, NAN), (NAN, NAN), ("abc", 1), (1, "abc")])
def test_comparisons_with_nan_are_false(name, a, b):
    assert calc(name, a, b) is False


def test_gte_and_lte_on_equal_values_are_true():
    assert calc("gte", 1, 1) is True
    assert calc("lte", 2, 2) is True
    assert calc("gt", 2, 2) is False
    assert calc("lt", 2, 2) is False


def test_null_compares_as_zero_in_relations():
    # JS: null >= 0 and null <= 0 are true, null < 1 is true.
    assert calc("gte", None, 0) is True
    assert calc("lte", None, 0) is True
    assert calc("lt", None, 1) is True
    assert calc("gt", None, 0) is False


def test_booleans_compare_as_numbers():
    assert calc("gt", True, 0) is True
    assert calc("lt", False, True) is True


def test_arrays_compare_through_their_text():
    assert calc("gt", [2], 1) is True
    assert calc("lt", [1, 2], 3) is False  # "1,2" is NaN


def test_empty_string_compares_as_zero_against_number():
    assert calc("gte", "", 0) is True


# -- date rules -----------------------------------------------------------------


def test_datetime_equals_iso_string_of_same_instant():
    assert calc("equal", DAY, "2024-01-01T00:00:00Z") is True
    assert calc("equal", "2024-01-01T00:00:00.000Z", DAY) is True
    assert calc("notEqual", DAY, "2024-01-01T00:00:00Z") is False


def test_datetime_equals_epoch_milliseconds():
    assert calc("equal", DAY, 1_704_067_200_000) is True


def test_datetime_not_equal_to_different_instant():
    assert calc("equal", DAY, "2024-01-02T00:00:00Z") is False
    assert calc("notEqual", DAY, "2024-01-02T00:00:00Z") is True


@pytest.mark.parametrize("other", [True, False, None])
def test_datetime_against_bool_or_null_is_never_equal(other):
    assert calc("equal", DAY, other) is False
    assert calc("equal", other, DAY) is False
    assert calc("notEqual", DAY, other) is True
    assert calc("notEqual", other, DAY) is True


@pytest.mark.parametrize("name", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("other", [True, None])
def test_datetime_relations_against_bool_or_null_are_false(name, other):
    assert calc(name, DAY, other) is False


def test_datetime_relations_against_iso_string():
    assert calc("gt", DAY, "2023-12-31") is True
    assert calc("lt", DAY, "2023-12-31") is False
    assert calc("lte", "2023-12-31T23:59:59Z", DAY) is True
    assert calc("gte", DAY, DAY) is True


def test_datetime_against_unparsable_string_is_unequal():
    assert calc("equal", DAY, "garbage") is False
    assert calc("notEqual", DAY, "garbage") is True
    assert calc("gt", DAY, "garbage") is False


# -- includes -------------------------------------------------------------------


def test_includes_on_string_is_substring():
    assert calc("includes", "hello", "ell") is True
    assert calc("includes", "hello", "xyz") is False
    assert calc("notIncludes", "abc", "z") is True
    assert calc("notIncludes", "abc", "b") is False


def test_includes_on_string_coerces_needle_to_text():
    assert calc("includes", "a1", 1) is True
    assert calc("includes", "null", None) is True


def test_includes_on_array_is_strict_membership():
    assert calc("includes", [1, 2], 2) is True
    assert calc("includes", [1, 2], "2") is False
    assert calc("includes", [1], True) is False
    assert calc("notIncludes", [1, 2], 3) is True


def test_includes_on_array_finds_nan():
    # Array.prototype.includes uses SameValueZero.
    assert calc("includes", [NAN], NAN) is True


@pytest.mark.parametrize("haystack", [123, 1.5, None, True, {"a": 1}])
def test_includes_on_non_string_non_array_raises_type_error(haystack):
    with pytest.raises(TypeError):
        calc("includes", haystack, 1)
    with pytest.raises(TypeError):
        calc("notIncludes", haystack, 1)


# -- startsWith / endsWith --------------------------------------------------------


def test_starts_and_ends_with_on_strings():
    assert calc("startsWith", "abc", "ab") is True
    assert calc("startsWith", "abc", "bc") is False
    assert calc("endsWith", "abc", "bc") is True
    assert calc("endsWith", "abc", "ab") is False
    assert calc("notStartsWith", "abc", "b") is True
    assert calc("notStartsWith", "abc", "a") is False
    assert calc("notEndsWith", "abc", "c") is False
    assert calc("notEndsWith", "abc", "b") is True


def test_starts_with_coerces_number_to_text():
    assert calc("startsWith", 123, "12") is True
    assert calc("endsWith", 123, 23) is True
    assert calc("startsWith", 1.0, "1") is True


def test_ends_with_coerces_boolean_and_array_to_text():
    assert calc("endsWith", True, "ue") is True
    assert calc("startsWith", [1, 2], "1,") is True


@pytest.mark.parametrize("name", ["startsWith", "notStartsWith", "endsWith", "notEndsWith"])
def test_null_operand_in_starts_or_ends_with_raises(name):
    with pytest.raises(TypeError):
        calc(name, None, "a")
    with pytest.raises(TypeError):
        calc(name, "a", None)


# -- compile_calculation: groups --------------------------------------------------


def item(name, a, b):
    return {"calculator": name, "operands": [a, b]}


def group(kind, *items):
    return {"group": {"type": kind, "calculations": list(items)}}


def evaluate(raw, scope=None):
    return compile_calculation(raw).evaluate(scope or {})


def test_and_group_requires_every_item():
    assert evaluate(group("and", item("equal", 1, 1), item("lt", 1, 2))) is True
    assert evaluate(group("and", item("equal", 1, 1), item("lt", 3, 2))) is False


def test_or_group_requires_some_item():
    assert evaluate(group("or", item("equal", 1, 2), item("lt", 1, 2))) is True
    assert evaluate(group("or", item("equal", 1, 2), item("lt", 3, 2))) is False


def test_group_type_defaults_to_and():
    raw = {"group": {"calculations": [item("equal", 1, 1), item("equal", 1, 2)]}}
    assert evaluate(raw) is False


def test_nested_groups():
    inner_true = group("or", item("equal", 1, 2), item("equal", 2, 2))
    inner_false = group("and", item("equal", 1, 1), item("equal", 1, 2))
    assert evaluate(group("and", inner_true, item("gt", 2, 1))) is True
    assert evaluate(group("and", inner_true, inner_false)) is False
    assert evaluate(group("or", inner_false, inner_true)) is True


def test_single_item_without_group():
    assert evaluate(item("equal", "x", "x")) is True
    assert evaluate(item("notEqual", "x", "x")) is False


def test_empty_item_is_true():
    assert evaluate({}) is True
    assert evaluate({"calculator": None, "operands": []}) is True


def test_item_without_operands_is_true():
    assert evaluate({"calculator": "equal"}) is True


def test_empty_and_group_is_true():
    assert evaluate(group("and")) is True


def test_empty_or_group_is_false():
    assert evaluate(group("or")) is False


def test_missing_calculation_is_true():
    assert evaluate(None) is True


def test_empty_item_inside_an_or_group_counts_as_true():
    assert evaluate(group("or", item("equal", 1, 2), {})) is True


def test_compiled_shapes():
    compiled = compile_calculation(group("or", item("equal", 1, 1)))
    assert isinstance(compiled, Group)
    assert compiled.any_of is True
    assert isinstance(compiled.items[0], Comparison)


# -- compile_calculation: errors name the field path -----------------------------


def test_unknown_calculator_names_the_field_path():
    with pytest.raises(CalculationError) as info:
        compile_calculation(item("bogus", 1, 2))
    assert info.value.field == "calculation.calculator"
    assert "bogus" in str(info.value)
    assert "equal" in str(info.value)  # lists the known ones


def test_unknown_calculator_in_nested_group_names_the_full_path():
    raw = group("and", item("equal", 1, 1), group("or", item("nope", 1, 2)))
    with pytest.raises(CalculationError) as info:
        compile_calculation(raw)
    assert info.value.field == "calculation.group.calculations[1].group.calculations[0].calculator"
    assert str(info.value).startswith(info.value.field + ":")


def test_field_prefix_is_used_in_paths():
    with pytest.raises(CalculationError) as info:
        compile_calculation(item("bogus", 1, 2), "conditions[0].calculation")
    assert info.value.field == "conditions[0].calculation.calculator"


def test_unknown_field_in_item_is_rejected():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"calculator": "equal", "operands": [1, 2], "extra": 1})
    assert info.value.field == "calculation"
    assert "extra" in info.value.message


def test_unknown_field_beside_group_is_rejected():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"group": {"type": "and"}, "extra": 1})
    assert "extra" in info.value.message


def test_unknown_field_inside_group_is_rejected():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"group": {"type": "and", "calculations": [], "extra": 1}})
    assert info.value.field == "calculation.group"
    assert "extra" in info.value.message


def test_unknown_group_type_is_rejected():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"group": {"type": "xor", "calculations": []}})
    assert info.value.field == "calculation.group.type"


def test_more_than_two_operands_is_rejected():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"calculator": "equal", "operands": [1, 2, 3]})
    assert info.value.field == "calculation.operands"


def test_operands_must_be_a_list():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"calculator": "equal", "operands": "{{$context.a}}"})
    assert info.value.field == "calculation.operands"


def test_calculation_must_be_an_object():
    with pytest.raises(CalculationError):
        compile_calculation("equal")


def test_calculations_must_be_a_list():
    with pytest.raises(CalculationError) as info:
        compile_calculation({"group": {"type": "and", "calculations": {"a": 1}}})
    assert info.value.field == "calculation.group.calculations"


# -- operand templates ---------------------------------------------------------------


def test_comparison_renders_operand_templates_against_scope():
    raw = item("equal", "{{$context.body.status}}", "paid")
    assert evaluate(raw, {"$context": {"body": {"status": "paid"}}}) is True
    assert evaluate(raw, {"$context": {"body": {"status": "open"}}}) is False


def test_comparison_renders_typed_operands():
    raw = item("gt", "{{$context.a}}", "{{$context.b}}")
    # Two strings compare as text; numbers numerically.
    assert evaluate(raw, {"$context": {"a": "10", "b": "9"}}) is False
    assert evaluate(raw, {"$context": {"a": 10, "b": "9"}}) is True


def test_comparison_operand_with_mixed_text_is_a_string():
    raw = item("equal", "id-{{$context.n}}", "id-5")
    assert evaluate(raw, {"$context": {"n": 5}}) is True


def test_comparison_reads_job_results():
    raw = item("includes", "{{$jobsMapByNodeKey.q.title}}", "T2")
    scope = {"$jobsMapByNodeKey": {"q": [{"title": "T1"}, {"title": "T2"}]}}
    assert evaluate(raw, scope) is True


@pytest.mark.parametrize("name", ["gte", "lte", "lt"])
def test_relation_with_missing_operand_path_is_false(name):
    # A missing path is `undefined` in NocoBase, and `undefined <= 100`,
    # `undefined >= 0`, `undefined < 1` are all false in JS (unlike null).
    raw = item(name, "{{$context.body.amount}}", 0 if name == "gte" else 100)
    assert evaluate(raw, {"$context": {"body": {}}}) is False


def test_missing_second_operand_in_relation_is_false():
    # JS: 1 > undefined is false.
    assert evaluate({"calculator": "gt", "operands": [1]}) is False


def test_calculation_placeholders_collects_operand_paths():
    raw = group(
        "and",
        item("equal", "{{$context.a}}", 1),
        group("or", item("lt", 1, "{{$jobsMapByNodeKey.n.v}}")),
    )
    keys = sorted(ph.key for ph in calculation_placeholders(compile_calculation(raw)))
    assert keys == ["$context.a", "$jobsMapByNodeKey.n.v"]
