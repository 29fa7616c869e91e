"""The `json-query` node (reference §5.9): each engine, the model mapping and
error handling, with NocoBase's own test cases."""

from __future__ import annotations

from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.status import Status
from tests.engine.test_interpreter import compile_nodes, run_nodes

CATEGORY = {
    "id": 1,
    "title": "c1",
    "posts": [
        {"title": "tech", "published": True},
        {"title": "self"},
        {"title": "life", "published": True},
        {"title": "school", "published": True},
    ],
}


def query(
    engine: str | None, expression: str, source: Any = "{{$context.body}}", **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {"source": source, "expression": expression, **extra}
    if engine is not None:
        config["engine"] = engine
    return {"key": "q", "type": "json-query", "config": config}


async def result(node: dict[str, Any], body: Any = CATEGORY) -> Any:
    run = await run_nodes([node], {"body": body})
    job = run.job("q")
    assert job.status == Status.RESOLVED, job.log
    return job.result


async def test_jmespath_from_trigger_context() -> None:
    expression = "posts[?published].title | sort(@) | { categoryPosts: join(', ', @)}"
    assert await result(query("jmespath", expression)) == {"categoryPosts": "life, school, tech"}


async def test_jmespath_is_the_default_engine() -> None:
    assert await result(query(None, "posts[0].title")) == "tech"


async def test_source_from_a_node_result() -> None:
    nodes = [
        {"key": "v", "type": "variable", "config": {"value": {"data": [1, 2, 3, 4, 5]}}},
        query("jmespath", "data", source="{{$jobsMapByNodeKey.v}}"),
    ]
    run = await run_nodes(nodes)
    assert run.job("q").result == [1, 2, 3, 4, 5]


async def test_jsonpathplus_filter() -> None:
    expression = "$.posts[?(@.published == true)].title"
    assert await result(query("jsonpathplus", expression)) == ["tech", "life", "school"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$", {"a": 1, "b": [1, 2]}),  # wrap: false, a single match is the value itself
        ("$.a", 1),
        ("$.b[0]", 1),
        ("$.b[*]", [1, 2]),
        ("$.b[?(@ > 1)]", [2]),  # a filter can match many: a list even with one match
        ("$..a", [1]),
        ("$.missing", None),  # no match: undefined, stored as null
    ],
)
async def test_jsonpathplus_without_wrap(expression: str, expected: Any) -> None:
    assert await result(query("jsonpathplus", expression), {"a": 1, "b": [1, 2]}) == expected


async def test_jsonpath_existence_filter_follows_rfc_9535() -> None:
    body = {"posts": [{"t": "a", "p": True}, {"t": "b", "p": False}, {"t": "c"}]}
    assert await result(query("jsonpathplus", "$.posts[?(@.p)].t"), body) == ["a", "b"]


async def test_jsonata() -> None:
    assert await result(query("jsonata", "posts[published=true].title")) == [
        "tech",
        "life",
        "school",
    ]


async def test_jsonata_expression_is_templated_first() -> None:
    expression = "posts[published=true][{{$context.body.id}}].title"
    assert await result(query("jsonata", expression)) == "life"


async def test_jsonata_functions_and_constructors() -> None:
    expression = '{"count": $count(posts), "titles": $join(posts.title, "/")}'
    assert await result(query("jsonata", expression)) == {
        "count": 4,
        "titles": "tech/self/life/school",
    }


# -- model --------------------------------------------------------------------------------------


async def test_model_maps_each_item_of_an_array() -> None:
    node = query("jsonata", "posts[published=true]", model=[{"path": "title"}])
    assert await result(node) == [{"title": "tech"}, {"title": "life"}, {"title": "school"}]


async def test_model_alias_nested_path_and_missing_path() -> None:
    body = {"orders": [{"id": 1, "customer": {"name": "Ann"}}, {"id": 2, "customer": {}}]}
    model = [{"path": "id", "alias": "orderId"}, {"path": "customer.name", "label": "Name"}]
    node = query("jmespath", "orders", model=model)
    assert await result(node, body) == [
        {"orderId": 1, "customer_name": "Ann"},
        {"orderId": 2},  # a missing path leaves its key out, like undefined in JSON
    ]


async def test_model_maps_an_object_result() -> None:
    node = query("jmespath", "@", model=[{"path": "posts[1].title", "alias": "second"}])
    assert await result(node) == {"second": "self"}


async def test_model_ignores_scalars_and_maps_non_objects_to_empty() -> None:
    assert await result(query("jmespath", "title", model=[{"path": "x"}])) == "c1"
    assert await result(query("jmespath", "posts[].title", model=[{"path": "x"}])) == [
        {},
        {},
        {},
        {},
    ]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "expression"),
    [("jmespath", "posts[?"), ("jsonpathplus", "$.posts[?(@.t === 1)]"), ("jsonata", "posts[")],
)
def test_syntax_errors_are_validation_errors(engine: str, expression: str) -> None:
    with pytest.raises(DefinitionError, match=rf'node "q".*config\.expression.*{engine}'):
        compile_nodes([query(engine, expression)])


def test_empty_expression_is_a_validation_error() -> None:
    with pytest.raises(DefinitionError, match=r"config\.expression"):
        compile_nodes([query("jmespath", "")])


def test_unknown_engine_is_a_validation_error() -> None:
    with pytest.raises(DefinitionError, match=r"config\.engine"):
        compile_nodes([query("xpath", "a")])


async def test_runtime_error_is_job_error_with_log() -> None:
    run = await run_nodes([query("jmespath", "abs(title)")], {"body": CATEGORY})
    job = run.job("q")
    assert run.status == Status.ERROR
    assert job.status == Status.ERROR
    assert job.result is None
    assert "abs" in job.log


async def test_templated_expression_that_does_not_compile_is_job_error() -> None:
    run = await run_nodes([query("jsonata", "posts[{{$context.body.bad}}")], {"body": {"bad": "x"}})
    assert run.job("q").status == Status.ERROR
    assert run.job("q").log


async def test_runaway_jsonata_is_stopped() -> None:
    expression = "($f := function($n){ $f($n + 1) }; $f(0))"
    run = await run_nodes([query("jsonata", expression)], {"body": {}})
    assert run.job("q").status == Status.ERROR


async def test_jsonata_lambda_result_is_null() -> None:
    assert await result(query("jsonata", "function($x){$x}"), {}) is None
