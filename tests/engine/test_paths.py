"""engine.paths: the `webhook:parse` path listing (SPEC §2.2) and lodash-style
request paths (`query[0].a`)."""

from __future__ import annotations

import pytest

from engine.paths import MISSING, get_request_path, list_paths, lookup, parse_request_path
from ingress.querystring import parse_query_string

# -- list_paths -----------------------------------------------------------------------


def test_list_paths_of_spec_json_example():
    assert list_paths({"a": 1, "b": {"c": 2}}) == ["a", "b", "b.c"]


def test_list_paths_of_spec_query_example():
    assert list_paths(parse_query_string("query[0][a]=1")) == ["query", "query[0]", "query[0].a"]


def test_list_paths_addresses_list_items_with_brackets():
    value = {"items": [{"sku": "a"}, {"sku": "b", "tags": ["x"]}]}
    assert list_paths(value) == [
        "items",
        "items[0]",
        "items[0].sku",
        "items[1]",
        "items[1].sku",
        "items[1].tags",
        "items[1].tags[0]",
    ]


def test_list_paths_of_nested_lists():
    assert list_paths({"m": [[1, 2]]}) == ["m", "m[0]", "m[0][0]", "m[0][1]"]


def test_list_paths_of_top_level_list():
    assert list_paths([{"a": 1}]) == ["[0]", "[0].a"]


def test_list_paths_lists_empty_containers_but_not_their_children():
    assert list_paths({"a": [], "b": {}}) == ["a", "b"]


@pytest.mark.parametrize("value", [{}, [], 1, "x", None])
def test_list_paths_of_empty_or_scalar_is_empty(value):
    assert list_paths(value) == []


def test_list_paths_stops_at_the_limit():
    value = {f"k{i}": i for i in range(50)}
    assert len(list_paths(value, limit=10)) == 10
    assert list_paths(value, limit=3) == ["k0", "k1", "k2"]


# -- parse_request_path --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("query[0].a", ("query", 0, "a")),
        ("a.b", ("a", "b")),
        ('a["x.y"]', ("a", "x.y")),
        ("a['x.y'].c", ("a", "x.y", "c")),
        ("a[0][1]", ("a", 0, 1)),
        ("data.object.amount", ("data", "object", "amount")),
        ("x-signature", ("x-signature",)),
        ("", ()),
    ],
)
def test_parse_request_path(path, expected):
    assert parse_request_path(path) == expected


# -- get_request_path ------------------------------------------------------------------


def test_get_request_path_through_list_index():
    root = {"query": [{"a": "1"}]}
    assert get_request_path(root, parse_request_path("query[0].a")) == "1"


def test_get_request_path_dotted():
    assert get_request_path({"a": {"b": 2}}, parse_request_path("a.b")) == 2


def test_get_request_path_quoted_key_with_dot():
    root = {"a": {"x.y": 3, "x": {"y": 4}}}
    assert get_request_path(root, parse_request_path('a["x.y"]')) == 3
    assert get_request_path(root, parse_request_path("a.x.y")) == 4


def test_get_request_path_numeric_key_of_an_object():
    # qs turns indices above 100 into object keys, so `a[101]` must still read them.
    root = parse_query_string("a[101]=x")
    assert get_request_path(root, parse_request_path("a[101]")) == "x"


@pytest.mark.parametrize(
    "path",
    ["nope", "a.nope", "a.b.c", "list[5]", "list[0].x", "a[0]", "list.x"],
)
def test_get_request_path_missing_gives_none(path):
    root = {"a": {"b": 2}, "list": [1]}
    assert get_request_path(root, parse_request_path(path)) is None


def test_get_request_path_keeps_falsy_values():
    root = {"zero": 0, "no": False, "empty": ""}
    assert get_request_path(root, ("zero",)) == 0
    assert get_request_path(root, ("no",)) is False
    assert get_request_path(root, ("empty",)) == ""


def test_get_request_path_does_not_map_over_lists():
    root = {"items": [{"sku": "a"}, {"sku": "b"}]}
    assert get_request_path(root, parse_request_path("items.sku")) is None


# -- lookup (template paths) -----------------------------------------------------------


def test_lookup_missing_is_the_missing_sentinel():
    assert lookup({"a": {}}, ("a", "b")) is MISSING
    assert lookup({"a": None}, ("a", "b")) is MISSING


def test_lookup_null_value_is_none_not_missing():
    assert lookup({"a": None}, ("a",)) is None


def test_lookup_maps_over_lists_and_flattens_one_level():
    root = {"o": [{"i": [{"s": 1}, {"s": 2}]}, {"i": [{"s": 3}]}]}
    assert lookup(root, ("o", "i", "s")) == [1, 2, 3]


def test_lookup_indexes_lists_with_numeric_segments():
    assert lookup({"l": ["a", "b"]}, ("l", "1")) == "b"
    assert lookup({"l": ["a", "b"]}, ("l", "2")) is MISSING
