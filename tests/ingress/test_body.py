"""ingress.body: JSON media types (415) and body decoding (400), SPEC §2 table."""

from __future__ import annotations

import falcon
import pytest

from ingress.body import (
    body_type,
    decode_json,
    decode_other,
    depth_of,
    huge_ints_as_doubles,
    is_json_media,
)

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


# -- body_type and decode_other (SPEC §12) ------------------------------------------------

ALL = frozenset({"json", "form", "text"})


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", "json"),
        ("application/vnd.x+json", "json"),
        ("application/x-www-form-urlencoded", "form"),
        ("Application/X-WWW-Form-Urlencoded; charset=UTF-8", "form"),
        # a form's charset is not looked at: the body is percent-escaped ASCII
        ("application/x-www-form-urlencoded; charset=windows-1252", "form"),
        ("text/plain", "text"),
        ("text/plain; charset=utf-8", "text"),
        ("text/csv; charset=us-ascii", "text"),
        ("text/xml", "text"),
        ("application/xml", "text"),
        ("application/soap+xml; charset=utf-8", "text"),
    ],
)
def test_body_type_of_each_accepted_media_type(content_type, kind):
    assert body_type(content_type, ALL) == kind


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/plain; charset=latin-1",
        "application/json; charset=latin-1",
        "image/png",
    ],
)
def test_other_media_types_are_415_whatever_is_accepted(content_type):
    with pytest.raises(falcon.HTTPUnsupportedMediaType):
        body_type(content_type, ALL)


def test_json_only_by_default_with_the_same_message():
    with pytest.raises(falcon.HTTPUnsupportedMediaType) as raised:
        body_type("application/x-www-form-urlencoded", frozenset({"json"}))
    assert raised.value.description == "the body must be JSON (Content-Type: application/json)"


def test_415_names_the_accepted_types():
    with pytest.raises(falcon.HTTPUnsupportedMediaType) as raised:
        body_type("application/json", frozenset({"form", "text"}))
    assert raised.value.description == (
        "the body must be a form (application/x-www-form-urlencoded) "
        "or text (text/*, application/xml)"
    )


def test_form_body_is_parsed_like_the_query_string():
    body = (
        b"payment_status=Completed&item[0][sku]=A-1&item[0][qty]=2&tag=a&tag=b&flag&name=J+D%C3%A9"
    )
    assert decode_other("form", body) == {
        "payment_status": "Completed",
        "item": [{"sku": "A-1", "qty": "2"}],
        "tag": ["a", "b"],
        "flag": None,
        "name": "J Dé",
    }


def test_text_body_is_the_string():
    xml = '<?xml version="1.0"?><note>héllo</note>'
    assert decode_other("text", xml.encode()) == xml


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a=%zz", "malformed percent escape '%zz'"),
        (b"a=1&b=50%", "malformed percent escape '%'"),
        (b"&".join(b"k%d=1" % i for i in range(10_000)), "more than 1000 parameters"),
        (b"a[b][c][d][e][f][g]=1", "nested deeper than 5 levels"),
        (b"a=\xff", "not valid UTF-8"),
    ],
)
def test_malformed_form_bodies_are_400(body, message):
    with pytest.raises(falcon.HTTPBadRequest) as raised:
        decode_other("form", body)
    assert message in raised.value.description


def test_form_at_the_limits_is_accepted():
    assert len(decode_other("form", b"&".join(b"k%d=1" % i for i in range(1000)))) == 1000
    assert decode_other("form", b"a[b][c][d][e][f]=1") == {
        "a": {"b": {"c": {"d": {"e": {"f": "1"}}}}}
    }


def test_text_body_that_is_not_utf8_is_400():
    with pytest.raises(falcon.HTTPBadRequest) as raised:
        decode_other("text", b"caf\xe9")
    assert raised.value.description == "request body is not valid UTF-8"
