"""`parse_query_string` on hostile query strings: it never raises, its result is
plain JSON (objects and arrays whose leaves are strings or null), its size is
linear in the input's, and a call takes well under a second of CPU for any
input up to 1 MiB (query-string bombs included)."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from qs_codec import decode

from ingress.querystring import _OPTIONS, FormError, parse_form, parse_query_string
from tests.fuzz.conftest import examples

MIB = 1 << 20
#: CPU seconds one call may take, for any input up to 1 MiB.
CPU_LIMIT = 1.0
#: CPU seconds a request line's worth of repeats of one key may take (finding F1:
#: it took 0.25-0.4 s while qs-codec merged repeats in quadratic time).
REPEATS_CPU_LIMIT = 0.05


def check(query: str) -> Any:
    started = time.process_time()
    result = parse_query_string(query)
    spent = time.process_time() - started
    assert spent < CPU_LIMIT, f"{spent:.2f} s of CPU for {len(query)} characters"
    assert isinstance(result, dict)
    encoded = json.dumps(result, ensure_ascii=False)  # plain JSON, no other types inside
    assert len(encoded) <= 10 * len(query) + 16, (len(encoded), len(query))
    assert_leaves_are_text(result)
    return result


def assert_leaves_are_text(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            assert all(isinstance(k, str) for k in item), item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            assert item is None or isinstance(item, str), repr(item)


# Query strings made of the tokens qs treats specially (brackets, dots,
# separators, escapes, list indexes around its limit of 100, huge numbers), so
# random draws hit its parsing paths far more often than plain text does.
_TOKENS = st.one_of(
    st.sampled_from(
        [
            "a",
            "b",
            "query",
            "__proto__",
            "[",
            "]",
            "[]",
            "[0]",
            "[1]",
            "[100]",
            "[101]",
            "[-1]",
            ".",
            "=",
            "&",
            "&&",
            ";",
            "+",
            "?",
            "%",
            "%%",
            "%2",
            "%zz",
            "%E0%A4%A",
            "%C3%28",
            "%FF",
            "%00",
            "%5B",
            "%5D",
            "%26",
            "%3D",
        ]
    ),
    st.integers(min_value=0, max_value=10**30).map(lambda n: f"[{n}]"),
    st.text(max_size=3),
)
query_strings = st.lists(_TOKENS, max_size=80).map("".join)


@settings(max_examples=examples(300))
@given(st.text())
@example("%")
@example("a[b]=%zz&a[b]=%E0%A4%A&%ff=%c3%28")
@example("\ud800=\udfff")
def test_any_text_parses_to_plain_json(query: str) -> None:
    check(query)


@settings(max_examples=examples(300))
@given(query_strings)
@example("a[999999999]=1&a[0]=2")
@example("a[0]=1&a[b]=2&a=3&a[0][c]=4")
@example("query[0][a]=1&query[0][a]=2&query[]=x")
def test_qs_shaped_text_parses_to_plain_json(query: str) -> None:
    check(query)


BOMBS = {
    "1e5 parameters": "&".join(f"a{i}=1" for i in range(100_000)),
    "1e5 repeats of one key": "&".join(["a=1"] * 100_000),
    "1e5 array pushes": "&".join(["a[]=1"] * 100_000),
    "1e5 indexes": "&".join(f"a[{i}]=1" for i in range(100_000)),
    "4 KiB of repeats (fits a request line)": "&".join(["a=1"] * 1000),
    "deep brackets": "a" + "[b]" * 100_000 + "=1",
    "deep dots": "a" + ".b" * 300_000 + "=1",
    "empty brackets": "a" + "[]" * 500_000 + "=1",
    "huge index": "a[999999999]=1",
    "huge index as a number": "a[" + "9" * 5000 + "]=1",
    "invalid escapes": "%zz%" * 250_000,
    "escaped brackets": "a%5Bb%5D%5Bc%5D=1&" * 50_000,
    "unicode keys": "&".join(f"ключ{i}[日本]=值" for i in range(30_000)),
    "1 MiB value": "a=" + "x" * MIB,
    "1 MiB of separators": "&" * MIB,
    "1 MiB of equals": "=" * MIB,
}


@pytest.mark.parametrize("query", BOMBS.values(), ids=BOMBS.keys())
def test_query_string_bombs_parse_within_bounds(query: str) -> None:
    assert len(query) <= 2 * MIB
    check(query)
    tracemalloc.start()  # measured apart: tracing slows the parse several times over
    try:
        parse_query_string(query)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Memory stays a small multiple of the input (a str of 1 MiB is ~1 MiB).
    assert peak <= 64 * len(query) + MIB, f"{peak / MIB:.1f} MiB peak for {len(query)} characters"


@pytest.mark.parametrize("pair", ["a=1", "a[]=1", "a[b]=1", "a", "%61=1"])
def test_a_request_line_of_repeats_parses_in_linear_time(pair: str) -> None:
    query = "&".join([pair] * 1000)
    started = time.process_time()
    parse_query_string(query)
    spent = time.process_time() - started
    assert spent < REPEATS_CPU_LIMIT, f"{spent * 1000:.0f} ms of CPU for 1,000 repeats of {pair}"


# Repeats of a few keys, past the list limit and mixed with indexes and nested
# keys: the linear merge must give what qs-codec's own (quadratic) one gives.
_REPEATED_PARTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "%61", "a[]", "a[b]", "a[0]", "a[101]", "b", "[]", "a[b][]"]),
        st.sampled_from(["=1", "=x%20y", "", "=", "=%zz"]),
        st.integers(min_value=1, max_value=150),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=examples(100))
@given(_REPEATED_PARTS)
def test_repeated_keys_merge_as_qs_codec_does(parts: list[tuple[str, str, int]]) -> None:
    query = "&".join("&".join([key + value] * count) for key, value, count in parts)
    assert parse_query_string(query) == decode(query, _OPTIONS)


# -- form bodies: the query's parse, or a FormError; never anything else -----------------


def check_form(text: str) -> None:
    started = time.process_time()
    try:
        result = parse_form(text)
    except FormError:
        return
    finally:
        spent = time.process_time() - started
        assert spent < CPU_LIMIT, f"{spent:.2f} s of CPU for {len(text)} characters"
    # What it accepts, it reads exactly as the query string parse does (a query's
    # leading `?` is the URL's, a body's is part of its first key).
    assert result == parse_query_string(text) or text.startswith("?")


@settings(max_examples=examples(300))
@given(st.one_of(st.text(), query_strings))
@example("a[b][c][d][e][f]=1&a[b][c][d][e][f][g]=2")
@example("%zz=1")
def test_any_form_body_parses_like_the_query_or_is_refused(text: str) -> None:
    check_form(text)


@pytest.mark.parametrize("text", BOMBS.values(), ids=BOMBS.keys())
def test_form_body_bombs_are_refused_or_parsed_within_bounds(text: str) -> None:
    check_form(text)
