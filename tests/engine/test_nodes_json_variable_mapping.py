"""The `json-variable-mapping` node (reference §5.10), with NocoBase's own cases."""

from __future__ import annotations

from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.nodes.json_variable_mapping import ARRAY_MARKER as ARR
from engine.status import Status
from tests.engine.test_interpreter import compile_nodes, run_nodes


def variable(key: str, *paths: str) -> dict[str, Any]:
    return {
        "key": key,
        "path": ".".join("_" if p == ARR else p for p in paths),
        "paths": list(paths),
    }


def mapping(
    variables: list[dict[str, Any]], source: Any = "{{$context.body}}", **extra: Any
) -> dict[str, Any]:
    return {
        "key": "m",
        "type": "json-variable-mapping",
        "config": {"dataSource": source, "variables": variables, **extra},
    }


async def mapped(variables: list[dict[str, Any]], body: Any, **extra: Any) -> dict[str, Any]:
    run = await run_nodes([mapping(variables, **extra)], {"body": body})
    assert run.job("m").status == Status.RESOLVED, run.job("m").result
    return run.job("m").result


@pytest.mark.parametrize("source", [None, "{{$context.body.missing}}", "text", 5])
async def test_input_that_is_not_an_object_fails(source: Any) -> None:
    run = await run_nodes([mapping([variable("a", "nnn")], source=source)], {"body": {}})
    assert run.status == Status.FAILED
    assert run.job("m").status == Status.FAILED
    assert run.job("m").result == "The input data is not an object nor an array"


async def test_a_missing_property_leaves_its_key_out() -> None:
    body = {
        "nnn": "mm",
        "ccc": {"vv": ["234"], "dd": {"aa": "34"}, "dd.aa": "56"},
        "cc": [{"dd": 90}],
    }
    result = await mapped([variable("k1", "nnn"), variable("k2", "nnn", "ccc")], body)
    assert result == {"k1": "mm"}


SIMPLE = {"a": {"b": [{"c": "123", "d": "789"}, {"c": "456", "d": "789"}], "e": "990"}}


async def test_simple_object() -> None:
    variables = [
        variable("a", "a"),
        variable("b", "a", "b"),
        variable("c", "a", "b", ARR, "c"),
        variable("d", "a", "b", ARR, "d"),
        variable("e", "a", "e"),
    ]
    result = await mapped(variables, SIMPLE, parseArray=False)
    assert result == {
        "a": SIMPLE["a"],
        "b": SIMPLE["a"]["b"],
        "c": ["123", "456"],
        "d": ["789", "789"],
        "e": "990",
    }


COMPLEX = {
    "a": {
        "b": [
            {"c": "123", "d": "789"},
            {"c": "456"},
            ["ddd"],
            [{"c": "aaa"}, {"c": "ccc", "f": "bbb"}, ["eee"]],
        ],
        "e": "990",
    }
}


async def test_complex_object() -> None:
    variables = [
        variable("a", "a"),
        variable("b", "a", "b"),
        variable("c", "a", "b", ARR, "c"),
        variable("d", "a", "b", ARR, "d"),
        variable("cc", "a", "b", ARR, ARR, "c"),
        variable("ff", "a", "b", ARR, ARR, "f"),
        variable("e", "a", "e"),
    ]
    result = await mapped(variables, COMPLEX, parseArray=False)
    assert result == {
        "a": COMPLEX["a"],
        "b": COMPLEX["a"]["b"],
        "c": ["123", "456"],
        "d": ["789"],
        "cc": ["aaa", "ccc"],
        "ff": ["bbb"],
        "e": "990",
    }


async def test_simple_object_with_parsing_array() -> None:
    variables = [
        variable("a", "a"),
        variable("b0", "a", "b", "0"),
        variable("b0c", "a", "b", "0", "c"),
        variable("b0d", "a", "b", "0", "d"),
        variable("e", "a", "e"),
    ]
    result = await mapped(variables, SIMPLE, parseArray=True)
    assert result == {
        "a": SIMPLE["a"],
        "b0": SIMPLE["a"]["b"][0],
        "b0c": "123",
        "b0d": "789",
        "e": "990",
    }


async def test_complex_object_with_indexes() -> None:
    variables = [
        variable("b1c", "a", "b", "1", "c"),
        variable("b2_0", "a", "b", "2", "0"),
        variable("b3_0c", "a", "b", "3", "0", "c"),
        variable("b3_1f", "a", "b", "3", "1", "f"),
        variable("b3_2_0", "a", "b", "3", "2", "0"),
        variable("b1d", "a", "b", "1", "d"),
    ]
    result = await mapped(variables, COMPLEX, parseArray=False)
    assert result == {"b1c": "456", "b2_0": "ddd", "b3_0c": "aaa", "b3_1f": "bbb", "b3_2_0": "eee"}


async def test_array_marker_with_parse_array_is_skipped() -> None:
    result = await mapped([variable("c", "a", "b", ARR, "0", "c")], SIMPLE, parseArray=True)
    assert result == {"c": "123"}


async def test_arrays_keep_only_truthy_values() -> None:
    body = {"items": [{"n": 1}, {"n": 0}, {"n": ""}, {"n": None}, {}, {"n": 3}]}
    assert await mapped([variable("n", "items", ARR, "n")], body) == {"n": [1, 3]}


async def test_top_level_array_source() -> None:
    body = [{"id": 1}, {"id": 2}]
    assert await mapped([variable("ids", ARR, "id")], body) == {"ids": [1, 2]}


async def test_null_item_in_an_array_is_an_error() -> None:
    run = await run_nodes(
        [mapping([variable("x", "items", ARR, "n")])], {"body": {"items": [None]}}
    )
    assert run.job("m").status == Status.ERROR
    assert "Cannot read properties of null" in run.job("m").result["message"]


async def test_falsy_value_stops_the_path() -> None:
    body = {"a": 0, "b": {"c": False}}
    assert await mapped([variable("a", "a", "x"), variable("c", "b", "c")], body) == {
        "a": 0,
        "c": False,
    }


async def test_variables_are_read_by_key_downstream() -> None:
    nodes = [
        mapping([variable("amountKey", "order", "amount")]),
        {
            "key": "double",
            "type": "calculation",
            "config": {
                "engine": "formula.js",
                "expression": "{{$jobsMapByNodeKey.m.amountKey}} * 2",
            },
        },
    ]
    run = await run_nodes(nodes, {"body": {"order": {"amount": 21}}})
    assert run.job("double").result == 42


def test_example_and_alias_are_accepted() -> None:
    var = {**variable("k", "a"), "alias": "A", "name": "a", "title": "A"}
    compile_nodes([mapping([var], example={"a": 1})])


@pytest.mark.parametrize(
    ("var", "field"),
    [
        ({"key": "k", "path": "a"}, "paths"),
        ({"key": "", "path": "a", "paths": ["a"]}, "variables[0].key"),
        ({"key": "k", "path": "a", "paths": []}, "variables[0].paths"),
        ({"key": "k", "paths": ["a"], "children": []}, "children"),
    ],
)
def test_bad_variables_name_the_field(var: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError) as info:
        compile_nodes([mapping([var])])
    assert 'node "m"' in str(info.value)
    assert field in str(info.value)
