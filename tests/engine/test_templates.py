"""engine.templates: NocoBase `json-templates` rules (SPEC §4, reference §4.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from engine.scope import SYSTEM
from engine.templates import (
    Const,
    Single,
    TemplateError,
    compile_template,
    parse_placeholders,
    template_keys,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)

SCOPE = {
    "$context": {
        "int": 42,
        "obj": {"x": 1, "y": [1, 2]},
        "list": [1, "two", None],
        "null": None,
        "true": True,
        "float_one": 1.0,
        "half": 0.5,
        "when": WHEN,
        "text": "hello",
        "zero": 0,
        "empty": "",
        "items": [
            {"t": "a", "sub": [{"s": 1}, {"s": 2}]},
            {"t": "b", "sub": [{"s": 3}]},
        ],
        "grid": [[1, 2], [3]],
        "rows": [{"tags": ["x", "y"]}, {"tags": ["z"]}],
    },
    "$jobsMapByNodeKey": {"q": [{"title": "T1"}, {"title": "T2"}]},
    "$system": SYSTEM,
    "$env": {"TOKEN": "s3cret"},
}


def render(template, scope=SCOPE):
    return compile_template(template).render(scope)


# -- a single placeholder yields the raw typed value --------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{$context.int}}", 42),
        ("{{$context.obj}}", {"x": 1, "y": [1, 2]}),
        ("{{$context.list}}", [1, "two", None]),
        ("{{$context.true}}", True),
        ("{{$context.float_one}}", 1.0),
        ("{{$env.TOKEN}}", "s3cret"),
    ],
)
def test_single_placeholder_yields_raw_typed_value(template, expected):
    value = render(template)
    assert value == expected
    assert type(value) is type(expected)


def test_single_placeholder_yields_none_for_null():
    assert render("{{$context.null}}") is None


def test_single_placeholder_yields_datetime_object():
    assert render("{{$context.when}}") is WHEN


def test_single_placeholder_compiles_to_single_renderer():
    assert isinstance(compile_template("{{$context.int}}"), Single)


def test_single_placeholder_for_missing_path_yields_none():
    assert render("{{$context.nope.deeper}}") is None


# -- mixed strings interpolate ----------------------------------------------


def test_mixed_string_interpolates_int():
    assert render("n={{$context.int}}!") == "n=42!"


def test_mixed_string_renders_null_as_empty_text():
    assert render("[{{$context.null}}]") == "[]"


def test_mixed_string_renders_missing_as_empty_text():
    assert render("[{{$context.nope}}]") == "[]"


def test_mixed_string_renders_true_and_false_as_js_text():
    assert render("{{$context.true}}/{{$context.obj.x}}") == "true/1"
    assert render("v={{$context.f}}", {"$context": {"f": False}}) == "v=false"


def test_mixed_string_renders_integral_float_without_decimal_point():
    assert render("{{$context.float_one}} item") == "1 item"


def test_mixed_string_renders_fraction_as_js_number_text():
    assert render("{{$context.half}}x") == "0.5x"


def test_mixed_string_renders_zero_and_empty_string():
    assert render("a{{$context.zero}}b{{$context.empty}}c") == "a0bc"


def test_mixed_string_renders_small_float_like_js_string():
    # JS: String(0.00001) === "0.00001" (exponent form only below 1e-6).
    assert render("v={{$context.v}}", {"$context": {"v": 0.00001}}) == "v=0.00001"


def test_mixed_string_renders_large_integral_float_like_js_string():
    # JS: String(2 ** 64) === "18446744073709552000" (shortest round-trip digits).
    assert render("v={{$context.v}}", {"$context": {"v": 2.0**64}}) == "v=18446744073709552000"


def test_mixed_string_renders_tiny_float_in_js_exponent_form():
    assert render("v={{$context.v}}", {"$context": {"v": 1e-7}}) == "v=1e-7"


def test_mixed_string_renders_datetime_as_iso_8601_with_ms_and_z():
    assert render("at {{$context.when}}") == "at 2024-01-02T03:04:05.678Z"


def test_mixed_string_converts_aware_datetime_to_utc():
    local = datetime(2024, 1, 2, 7, 4, 5, 678_000, tzinfo=timezone(timedelta(hours=2)))
    assert render("at {{$context.d}}", {"$context": {"d": local}}) == "at 2024-01-02T05:04:05.678Z"


def test_mixed_string_renders_dict_as_json():
    assert render("obj: {{$context.obj}}") == 'obj: {"x":1,"y":[1,2]}'


def test_mixed_string_renders_list_as_json():
    assert render("list: {{$context.list}}") == 'list: [1,"two",null]'


def test_mixed_string_with_two_placeholders_and_repeats():
    assert render("{{$context.text}}-{{$context.int}}-{{$context.text}}") == "hello-42-hello"


def test_surrounding_text_makes_a_string_even_for_a_dict_value():
    assert isinstance(render("x{{$context.obj}}"), str)


# -- defaults -----------------------------------------------------------------


def test_default_used_when_path_is_missing():
    assert render("{{$context.nope:fallback}}") == "fallback"


def test_default_used_in_mixed_string_when_path_is_missing():
    assert render("a {{$context.nope:5}} b") == "a 5 b"


def test_default_is_text_even_when_it_looks_like_a_number():
    assert render("{{$context.nope:5}}") == "5"


def test_default_not_used_when_value_present():
    assert render("{{$context.int:7}}") == 42


def test_default_not_used_when_value_is_null():
    # NocoBase replaces only `undefined` (a missing path) by the default.
    assert render("{{$context.null:fallback}}") is None


def test_default_not_used_when_value_is_falsy():
    assert render("{{$context.zero:9}}") == 0
    assert render("{{$context.empty:9}}") == ""


def test_default_used_when_intermediate_segment_is_null():
    assert render("{{$context.null.x:dflt}}") == "dflt"


def test_empty_default_in_mixed_string_gives_empty_text_when_missing():
    assert render("a{{$context.nope:}}b") == "ab"


def test_default_may_contain_spaces():
    assert render("{{$context.nope:hello world}}") == "hello world"


def test_parse_placeholders_records_key_segments_and_default():
    (ph,) = parse_placeholders("x {{ $context.a.b:dflt}} y")
    assert ph.key == "$context.a.b"
    assert ph.segments == ("$context", "a", "b")
    assert ph.default == "dflt"
    assert ph.text == "{{ $context.a.b:dflt}}"


# -- whitespace inside braces -------------------------------------------------


def test_whitespace_inside_braces_is_ignored():
    assert render("{{ $context.int }}") == 42
    assert render("{{  $context.int}}") == 42
    assert render("{{$context.int  }}") == 42


def test_whitespace_inside_braces_in_mixed_string():
    assert render("n={{ $context.int }}") == "n=42"


def test_hyphenated_segment_is_a_valid_path():
    scope = {"$context": {"headers": {"x-signature": "abc"}}}
    assert render("{{$context.headers.x-signature}}", scope) == "abc"


def test_dollar_in_segment_is_a_valid_path():
    scope = {"$context": {"query": {"query_$0": "v"}}}
    assert render("{{$context.query.query_$0}}", scope) == "v"


# -- recursion into dicts, lists and keys --------------------------------------


def test_templates_apply_to_dict_keys():
    assert render({"k_{{$context.text}}": 1}) == {"k_hello": 1}


def test_dict_key_placeholder_renders_as_string():
    # JSON object keys are strings; JS coerces a property key with String(value),
    # so `{"{{$context.int}}": ...}` has the key "42" and is reachable as `.42`.
    rendered = render({"{{$context.int}}": "v"})
    assert rendered == {"42": "v"}


def test_dict_key_placeholder_with_null_value_is_still_json_encodable():
    rendered = render({"{{$context.null}}": 1})
    assert all(isinstance(k, str) for k in rendered)
    msgspec.json.encode(rendered)


def test_templates_apply_to_nested_lists_and_dicts():
    template = {
        "a": ["{{$context.int}}", {"b": "x{{$context.text}}", "c": ["{{$context.obj}}"]}],
        "plain": [1, 2, {"n": None}],
    }
    assert render(template) == {
        "a": [42, {"b": "xhello", "c": [{"x": 1, "y": [1, 2]}]}],
        "plain": [1, 2, {"n": None}],
    }


def test_non_string_scalars_pass_through():
    assert render({"n": 5, "f": 1.5, "b": False, "z": None}) == {
        "n": 5,
        "f": 1.5,
        "b": False,
        "z": None,
    }


# -- Const for values without placeholders ------------------------------------


@pytest.mark.parametrize(
    "value",
    ["plain text", 5, None, True, [1, "x", {"y": 2}], {"a": {"b": ["c"]}}, "a } b {"],
)
def test_values_without_placeholders_compile_to_const(value):
    compiled = compile_template(value)
    assert isinstance(compiled, Const)
    assert compiled.render({}) == value
    assert compiled.placeholders == ()


def test_value_with_a_placeholder_is_not_const():
    assert not isinstance(compile_template({"a": ["x", "{{$context.int}}"]}), Const)


def test_template_keys_lists_every_placeholder_in_keys_and_values():
    keys = [
        ph.key for ph in template_keys({"{{$context.k}}": ["{{$env.A}}", {"b": "{{$context.c}}"}]})
    ]
    assert sorted(keys) == ["$context.c", "$context.k", "$env.A"]


# -- array mapping / flattening ----------------------------------------------


def test_path_through_list_of_dicts_maps_to_list():
    assert render("{{$jobsMapByNodeKey.q.title}}") == ["T1", "T2"]


def test_path_through_nested_lists_flattens_one_level():
    assert render("{{$context.items.sub.s}}") == [1, 2, 3]


def test_mapped_field_that_is_a_list_is_flattened():
    assert render("{{$context.rows.tags}}") == ["x", "y", "z"]


def test_mapped_list_of_dicts_flattens_into_dicts():
    assert render("{{$context.items.sub}}") == [{"s": 1}, {"s": 2}, {"s": 3}]


def test_mapping_items_without_the_field_gives_none_entries():
    assert render("{{$context.grid.x}}") == [None, None]


def test_numeric_segment_indexes_a_list():
    assert render("{{$context.list.1}}") == "two"
    assert render("{{$context.items.1.t}}") == "b"


def test_numeric_segment_out_of_range_is_missing():
    assert render("{{$context.list.9:none}}") == "none"


def test_length_of_a_list():
    assert render("{{$context.list.length}}") == 3


def test_length_of_a_string():
    assert render("{{$context.text.length}}") == 5


def test_mapped_values_in_mixed_string_render_as_json():
    assert render("titles: {{$jobsMapByNodeKey.q.title}}") == 'titles: ["T1","T2"]'


# -- functions are called ------------------------------------------------------


def test_system_now_is_called_and_yields_a_datetime():
    before = datetime.now(UTC)
    value = render("{{$system.now}}")
    after = datetime.now(UTC)
    assert isinstance(value, datetime)
    assert before <= value <= after


def test_system_now_in_mixed_string_is_iso_text():
    text = render("at {{$system.now}}")
    assert text.startswith("at ")
    parsed = datetime.fromisoformat(text[3:].replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=1)
    assert text.endswith("Z")


def test_function_value_in_scope_is_called():
    assert render("{{$context.f}}", {"$context": {"f": lambda: 17}}) == 17


# -- malformed templates -------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{a[0]}}",
        "{{$context.a[0].b}}",
        "{{}}",
        "{{ }}",
        "{{a",
        "x {{$context.a}} {{",
        "{{a b}}",
    ],
)
def test_malformed_template_raises_template_error(template):
    with pytest.raises(TemplateError):
        compile_template(template)


def test_template_error_message_names_the_bad_text():
    with pytest.raises(TemplateError, match=r"\{\{a\[0\]\}\}"):
        compile_template("value {{a[0]}}")


def test_unclosed_template_error_says_unclosed():
    with pytest.raises(TemplateError, match="unclosed"):
        compile_template("{{a")


def test_malformed_template_in_nested_value_raises():
    with pytest.raises(TemplateError):
        compile_template({"a": [{"b": "{{x[1]}}"}]})


def test_malformed_template_in_dict_key_raises():
    with pytest.raises(TemplateError):
        compile_template({"{{}}": 1})


def test_closing_braces_alone_are_plain_text():
    assert render("a }} b") == "a }} b"
