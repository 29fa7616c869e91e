"""ingress.querystring.parse_query_string: Node `qs` with NocoBase's options
(`strictNullHandling`, `arrayLimit: 100`), SPEC §2.2."""

from __future__ import annotations

import pytest

from ingress.querystring import FormError, parse_form, parse_query_string


def test_indexed_object_in_list():
    assert parse_query_string("query[0][a]=1") == {"query": [{"a": "1"}]}


def test_leading_question_mark_is_ignored():
    assert parse_query_string("?query[0][a]=1") == {"query": [{"a": "1"}]}


def test_bracket_key_makes_nested_object():
    assert parse_query_string("a[b]=1") == {"a": {"b": "1"}}


def test_repeated_key_makes_list():
    assert parse_query_string("a=1&a=2") == {"a": ["1", "2"]}


def test_empty_brackets_append_to_list():
    assert parse_query_string("a[]=1&a[]=2") == {"a": ["1", "2"]}


@pytest.mark.parametrize("query", ["flag", "?flag"])
def test_key_without_equals_is_null(query):
    assert parse_query_string(query) == {"flag": None}


def test_key_with_empty_value_is_empty_string():
    assert parse_query_string("flag=") == {"flag": ""}


def test_index_100_stays_a_list_index():
    assert parse_query_string("a[100]=x") == {"a": ["x"]}


def test_index_101_becomes_an_object_key():
    assert parse_query_string("a[101]=x") == {"a": {"101": "x"}}


def test_mixing_index_0_and_101_makes_an_object():
    assert parse_query_string("a[0]=x&a[101]=y") == {"a": {"0": "x", "101": "y"}}


def test_sparse_indices_up_to_100_compact_into_a_list():
    assert parse_query_string("a[0]=x&a[100]=y") == {"a": ["x", "y"]}


def test_leaves_are_strings():
    assert parse_query_string("n=5&b=true&z=null&f=1.5") == {
        "n": "5",
        "b": "true",
        "z": "null",
        "f": "1.5",
    }


def test_values_are_percent_decoded_and_plus_is_space():
    assert parse_query_string("q=%E2%9C%93&s=a%20b+c") == {"q": "✓", "s": "a b c"}


def test_keys_are_percent_decoded_before_brackets():
    assert parse_query_string("a%5Bb%5D=1") == {"a": {"b": "1"}}


def test_invalid_percent_escape_is_kept_as_is():
    # qs: decodeURIComponent throws on malformed UTF-8 and qs keeps the raw text.
    assert parse_query_string("a=%ff") == {"a": "%ff"}


def test_equals_in_value_is_kept():
    assert parse_query_string("a=b=c") == {"a": "b=c"}


def test_empty_pairs_are_skipped():
    assert parse_query_string("&&a=1&&") == {"a": "1"}


def test_empty_key_is_skipped():
    assert parse_query_string("=x&a=1") == {"a": "1"}


@pytest.mark.parametrize("query", ["", "?"])
def test_empty_query_is_empty_dict(query):
    assert parse_query_string(query) == {}


def test_nesting_beyond_depth_5_keeps_the_rest_as_one_key():
    assert parse_query_string("a[b][c][d][e][f][g]=1") == {
        "a": {"b": {"c": {"d": {"e": {"f": {"[g]": "1"}}}}}}
    }


def test_repeated_null_and_value():
    assert parse_query_string("a=1&a") == {"a": ["1", None]}


# -- form bodies ----------------------------------------------------------------------


def test_form_body_parses_as_the_query_string_does():
    text = "a[b]=1&a[c][]=2&a[c][]=3&r=1&r=2&flag&sp=x+y%21"
    assert parse_form(text) == parse_query_string(text)
    assert parse_form(text) == {
        "a": {"b": "1", "c": ["2", "3"]},
        "r": ["1", "2"],
        "flag": None,
        "sp": "x y!",
    }


def test_form_repeats_past_the_list_limit_become_an_object_as_in_the_query():
    text = "&".join(["a=1"] * 150)
    assert parse_form(text) == parse_query_string(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=%zz", "malformed percent escape '%zz' at character 2"),
        ("a=%4", "malformed percent escape '%4'"),
        ("%=1", "malformed percent escape '%=1' at character 0"),
        ("&".join(["a=1"] * 1001), "more than 1000 parameters"),
        ("a[b][c][d][e][f][g]=1", "a key is nested deeper than 5 levels"),
        ("&".join(["a[b][c][d][e][f][g]=1"] * 200), "a key is nested deeper than 5 levels"),
    ],
)
def test_what_the_query_would_drop_or_garble_is_a_form_error(text, message):
    with pytest.raises(FormError) as raised:
        parse_form(text)
    assert message in str(raised.value)


def test_escapes_that_are_not_utf8_stay_as_written_as_in_the_query():
    assert parse_form("name=%E9t%E9") == {"name": "%E9t%E9"}
