"""ingress.body: JSON media types (415) and body decoding (400), SPEC §2 table."""

from __future__ import annotations

import falcon
import pytest

from ingress.body import decode_json, depth_of, huge_ints_as_doubles, is_json_media

# -- is_json_media ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json; charset=utf8",
        "Application/JSON",
        "application/vnd.x+json",
        "application/merge-patch+json; charset=utf-8",
    ],
)
def test_json_media_types_are_accepted(content_type):
    assert is_json_media(content_type) is True


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json; charset=latin-1",
        "application/json; charset=iso-8859-1",
        None,
        "",
        "application/jsonp",
        "application/x-www-form-urlencoded",
        "text/json",
        "multipart/form-data; boundary=x",
    ],
)
def test_non_json_media_types_are_refused(content_type):
    assert is_json_media(content_type) is False


# -- decode_json -----------------------------------------------------------------------


def test_decode_json_object():
    assert decode_json(b'{"a": [1, {"b": null}]}', 64) == {"a": [1, {"b": None}]}


def test_decode_json_top_level_scalars_and_lists():
    assert decode_json(b"[1]", 64) == [1]
    assert decode_json(b"5", 64) == 5
    assert decode_json(b"null", 64) is None


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\t \r\n"])
def test_empty_or_whitespace_body_is_empty_object(data):
    assert decode_json(data, 64) == {}


@pytest.mark.parametrize("data", [b"{", b"{'a': 1}", b"nope", b'{"a": 1,}', b"[1] [2]"])
def test_invalid_json_is_bad_request(data):
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(data, 64)


@pytest.mark.parametrize("data", [b'"\xff"', b'{"a": "\xc3\x28"}', b"\xff"])
def test_invalid_utf8_is_bad_request(data):
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(data, 64)


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_nesting_exactly_at_the_limit_is_accepted():
    assert depth_of(decode_json(nested_lists(64), 64)) == 64
    assert depth_of(decode_json(nested_objects(64), 64)) == 64


def test_nesting_over_the_limit_is_bad_request():
    with pytest.raises(falcon.HTTPBadRequest) as info:
        decode_json(nested_lists(65), 64)
    assert "64" in (info.value.description or "")
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(nested_objects(65), 64)


def test_small_limit_is_respected():
    assert decode_json(b'{"a": [1]}', 2) == {"a": [1]}
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(b'{"a": [[1]]}', 2)


def test_brackets_inside_strings_do_not_count_as_nesting():
    data = b'["' + b"[{" * 100 + b'"]'
    assert decode_json(data, 2) == ["[{" * 100]


def test_very_deep_nesting_is_bad_request_not_recursion_error():
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(nested_lists(100_000), 64)


def test_very_deep_object_nesting_is_bad_request_not_recursion_error():
    data = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(data, 64)


def test_moderately_deep_nesting_over_the_limit_is_bad_request():
    # Deep enough to be past the limit, shallow enough for the parser itself.
    with pytest.raises(falcon.HTTPBadRequest):
        decode_json(nested_lists(500), 64)


# -- depth_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("x", 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 1),
        ({"a": []}, 2),
        ([[1], [[2]]], 3),
        ({"a": {"b": {"c": {}}}, "d": []}, 4),
    ],
)
def test_depth_of(value, depth):
    assert depth_of(value) == depth


def test_depth_of_very_deep_value_does_not_recurse():
    value: list = []
    for _ in range(50_000):
        value = [value]
    assert depth_of(value) == 50_001


# -- huge_ints_as_doubles ------------------------------------------------------------


def test_integers_beyond_msgpack_become_doubles_in_place():
    body = {"a": [2**64, {"b": -(2**63) - 1}], "c": 2**64 - 1, "d": -(2**63), "e": "2**64"}
    assert huge_ints_as_doubles(body) is body
    assert body == {
        "a": [float(2**64), {"b": float(-(2**63) - 1)}],
        "c": 2**64 - 1,
        "d": -(2**63),
        "e": "2**64",
    }
    assert type(body["c"]) is int


def test_integers_beyond_a_double_become_infinity():
    assert huge_ints_as_doubles([10**400, -(10**400)]) == [float("inf"), float("-inf")]


@pytest.mark.parametrize("value", [2**64, 1, 1.5, "x", None, True])
def test_a_scalar_body_is_converted_too(value):
    assert huge_ints_as_doubles(value) == (float(value) if value == 2**64 else value)
