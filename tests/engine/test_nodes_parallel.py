"""The `parallel` node (reference §5.4, NocoBase plugin-workflow-parallel)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.status import Status
from tests.engine.test_interpreter import compile_nodes, end, run_nodes

OK, FAIL, ERROR = "ok", "fail", "error"


def branch_node(key: str, outcome: str) -> dict[str, Any]:
    if outcome == OK:
        return {
            "key": key,
            "type": "calculation",
            "config": {"engine": "string", "expression": key},
        }
    if outcome == FAIL:
        return {
            "key": key,
            "type": "condition",
            "config": {"engine": "formula.js", "rejectOnFalse": True, "expression": "false"},
        }
    return {
        "key": key,
        "type": "calculation",
        "config": {"engine": "formula.js", "expression": "SQRT(-1)"},
    }


def parallel(mode: str | None, outcomes: list[str], **extra: Any) -> dict[str, Any]:
    config = {} if mode is None else {"mode": mode}
    branches = {str(i): [branch_node(f"b{i}", o)] for i, o in enumerate(outcomes, start=1)}
    return {"key": "P", "type": "parallel", "config": config, "branches": branches, **extra}


AFTER = {"key": "after", "type": "calculation", "config": {"engine": "string", "expression": "x"}}

# mode, branch outcomes, job status, job result, branches that ran
TABLE = [
    ("all", [OK, OK, OK], Status.RESOLVED, [1, 1, 1], ["b1", "b2", "b3"]),
    ("all", [OK, FAIL, OK], Status.FAILED, [1, -1, None], ["b1", "b2"]),
    ("all", [ERROR, OK], Status.ERROR, [-2, None], ["b1"]),
    ("any", [FAIL, OK, OK], Status.RESOLVED, [-1, 1, None], ["b1", "b2"]),
    ("any", [OK, FAIL], Status.RESOLVED, [1, None], ["b1"]),
    ("any", [FAIL, FAIL], Status.FAILED, [-1, -1], ["b1", "b2"]),
    ("any", [ERROR, ERROR], Status.FAILED, [-2, -2], ["b1", "b2"]),
    ("race", [OK, FAIL], Status.RESOLVED, [1, None], ["b1"]),
    ("race", [FAIL, OK], Status.FAILED, [-1, None], ["b1"]),
    ("race", [ERROR, OK], Status.ERROR, [-2, None], ["b1"]),
    ("allSettled", [FAIL, OK, ERROR], Status.RESOLVED, [-1, 1, -2], ["b1", "b2", "b3"]),
    ("allSettled", [OK, OK], Status.RESOLVED, [1, 1], ["b1", "b2"]),
    (None, [OK, FAIL], Status.FAILED, [1, -1], ["b1", "b2"]),  # the default mode is all
]


@pytest.mark.parametrize(("mode", "outcomes", "status", "result", "ran"), TABLE)
async def test_outcome_table(
    mode: str | None, outcomes: list[str], status: int, result: list[Any], ran: list[str]
) -> None:
    run = await run_nodes([parallel(mode, outcomes), AFTER])
    job = run.job("P")
    assert job.status == status
    assert job.result == result
    assert [key for key in run.ran() if key.startswith("b")] == ran
    if status == Status.RESOLVED:
        assert run.status == Status.RESOLVED
        assert run.ran()[-1] == "after"
    else:
        assert run.status == status  # a settled failure ends the execution with it
        assert "after" not in run.ran()


async def test_branches_run_in_numeric_index_order() -> None:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": "allSettled"},
        "branches": {
            "10": [branch_node("b10", OK)],
            "2": [branch_node("b2", OK)],
            "1": [branch_node("b1", OK)],
        },
    }
    run = await run_nodes([node])
    assert run.ran() == ["P", "b1", "b2", "b10"]


async def test_a_branch_of_several_nodes_counts_by_its_last_job() -> None:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": "all"},
        "branches": {
            "1": [branch_node("a1", OK), branch_node("a2", FAIL), branch_node("a3", OK)],
            "2": [branch_node("b", OK)],
        },
    }
    run = await run_nodes([node])
    assert run.job("P").result == [-1, None]
    assert run.ran() == ["P", "a1", "a2"]


async def test_later_branches_see_the_job_result_so_far() -> None:
    reader = {
        "key": "r",
        "type": "calculation",
        "config": {"engine": "formula.js", "expression": "{{$jobsMapByNodeKey.P}}"},
    }
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": "all"},
        "branches": {"1": [branch_node("b1", OK)], "2": [reader]},
    }
    run = await run_nodes([node])
    assert run.job("r").result == [1, None]
    assert run.job("P").result == [1, 1]


async def test_no_branches_resolves_at_once() -> None:
    run = await run_nodes([{"key": "P", "type": "parallel", "config": {"mode": "any"}}, AFTER])
    assert run.job("P").status == Status.RESOLVED
    assert run.job("P").result == []
    assert run.ran() == ["P", "after"]


async def test_empty_branch_chains_do_not_count() -> None:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": "all"},
        "branches": {"1": [], "2": [branch_node("b2", OK)]},
    }
    run = await run_nodes([node])
    assert run.job("P").result == [1]


async def test_end_node_in_a_branch_ends_the_execution() -> None:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": "allSettled"},
        "branches": {"1": [end("stop", 1)], "2": [branch_node("b2", OK)]},
    }
    run = await run_nodes([node, AFTER])
    assert run.status == Status.RESOLVED
    assert run.ran() == ["P", "stop"]


async def test_parallel_inside_a_loop() -> None:
    loop = {
        "key": "L",
        "type": "loop",
        "config": {"target": 2},
        "branches": {"0": [parallel("all", [OK, OK])]},
    }
    run = await run_nodes([loop])
    assert [job.result for job in run.jobs if job.nodeKey == "P"] == [[1, 1], [1, 1]]


def test_branch_keys_must_be_numbers() -> None:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {},
        "branches": {"left": [branch_node("b", OK)]},
    }
    with pytest.raises(DefinitionError, match=r'node "P".*"left" is not a number'):
        compile_nodes([node])


def test_unknown_mode_names_the_field() -> None:
    with pytest.raises(DefinitionError, match=r'node "P".*config\.mode'):
        compile_nodes([parallel("some", [OK])])
