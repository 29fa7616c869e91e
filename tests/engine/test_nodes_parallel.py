"""The `parallel` node (reference §5.4, NocoBase plugin-workflow-parallel)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from engine.definition import DefinitionError
from engine.interpreter import Interpreter, ReplayDiverged
from engine.status import PENDING, Status
from tests.engine.test_interpreter import Run, compile_nodes, end, run_nodes, run_workflow

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


def failing_condition_branch(key: str, outcome: str) -> dict[str, Any]:
    """A condition that is true and whose branch ends with `outcome`."""
    return {
        "key": key,
        "type": "condition",
        "config": {"engine": "formula.js", "rejectOnFalse": False, "expression": "true"},
        "branches": {"1": [branch_node(f"{key}_inner", outcome)]},
    }


@pytest.mark.parametrize(
    ("mode", "status", "result"),
    [
        ("allSettled", Status.RESOLVED, [-2, 1]),
        ("any", Status.RESOLVED, [-2, 1]),
        ("all", Status.ERROR, [-2, None]),
        ("race", Status.ERROR, [-2, None]),
    ],
)
async def test_a_condition_branch_failure_goes_to_the_parallel_mode(
    mode: str, status: int, result: list[Any]
) -> None:
    # NocoBase's condition passes its branch's failure up to the parallel
    # (#8360), which applies its mode instead of the execution ending.
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": mode},
        "branches": {
            "1": [failing_condition_branch("c", ERROR)],
            "2": [branch_node("b2", OK)],
        },
    }
    run = await run_nodes([node, AFTER])
    assert run.job("P").status == status
    assert run.job("P").result == result
    assert run.job("c").status == Status.RESOLVED
    assert run.status == status
    assert ("after" in run.ran()) == (status == Status.RESOLVED)


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


# -- a branch that waits (delay, manual) -------------------------------------------------------


def delay(key: str) -> dict[str, Any]:
    return {"key": key, "type": "delay", "config": {"duration": 1, "unit": 60000}}


def waiting_parallel(mode: str, *branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = {
        "key": "P",
        "type": "parallel",
        "config": {"mode": mode},
        "branches": {str(i): chain for i, chain in enumerate(branches, start=1)},
    }
    return [node, AFTER]


async def resume(compiled: Any, earlier: Run, key: str, status: int = Status.RESOLVED) -> Run:
    """Run the execution again as the executor does when the job of `key` ends."""
    waiting = next(j for j in earlier.jobs if j.nodeKey == key and j.status == PENDING)
    history = sorted(earlier.jobs, key=lambda j: int(j.id.rpartition("-")[2]))
    sunk: list[tuple[str, str, int, Any]] = []
    interpreter = Interpreter(
        compiled,
        earlier.interpreter.execution,
        env={},
        sink=lambda job: sunk.append((job.id, job.nodeKey, job.status, job.result)),
        history=[msgspec.structs.replace(j) for j in history],
        resolutions={waiting.id: (status, waiting.result)},
    )
    return Run(await interpreter.run(), interpreter, sunk)


async def test_a_waiting_branch_lets_the_next_start_and_the_parallel_waits() -> None:
    compiled = compile_nodes(
        waiting_parallel("all", [delay("d"), branch_node("after_d", OK)], [branch_node("b2", OK)]),
        sync=False,
    )
    first = await run_workflow(compiled)
    assert first.status == PENDING  # the execution waits (STARTED)
    assert first.ran() == ["P", "d", "b2"]
    assert first.job("P").status == PENDING and first.job("P").result == [0, 1]
    done = await resume(compiled, first, "d")
    assert done.status == Status.RESOLVED
    assert done.job("P").status == Status.RESOLVED and done.job("P").result == [1, 1]
    assert sorted(done.ran()) == sorted(["P", "d", "after_d", "b2", "after"])
    assert done.interpreter.replayed(done.job("b2"))  # recorded, not run again
    ids = [job.id for job in done.jobs]
    assert len(set(ids)) == len(ids)


async def test_two_waiting_branches_resume_in_any_order() -> None:
    compiled = compile_nodes(
        waiting_parallel(
            "all",
            [delay("d1"), branch_node("x1", OK)],
            [delay("d2"), branch_node("x2", OK)],
        ),
        sync=False,
    )
    first = await run_workflow(compiled)
    assert first.job("P").result == [0, 0]
    second = await resume(compiled, first, "d2")
    assert second.status == PENDING and second.job("P").result == [0, 1]
    done = await resume(compiled, second, "d1")
    assert done.status == Status.RESOLVED and done.job("P").result == [1, 1]
    assert sorted(done.ran()) == sorted(["P", "d1", "x1", "d2", "x2", "after"])


async def test_any_mode_settles_on_a_later_branch_while_one_waits() -> None:
    compiled = compile_nodes(
        waiting_parallel("any", [delay("d")], [branch_node("b2", OK)]), sync=False
    )
    run = await run_workflow(compiled)
    assert run.status == Status.RESOLVED
    assert run.job("P").status == Status.RESOLVED and run.job("P").result == [0, 1]
    assert run.ran()[-1] == "after"


async def test_a_waiting_branch_under_a_condition_lets_the_next_branch_start() -> None:
    condition = {
        "key": "c",
        "type": "condition",
        "config": {"engine": "formula.js", "rejectOnFalse": False, "expression": "true"},
        "branches": {"1": [delay("d")]},
    }
    compiled = compile_nodes(
        waiting_parallel("allSettled", [condition], [branch_node("b2", OK)]), sync=False
    )
    first = await run_workflow(compiled)
    assert first.status == PENDING and first.job("P").result == [0, 1]
    done = await resume(compiled, first, "d", Status.FAILED)
    assert done.status == Status.RESOLVED and done.job("P").result == [-1, 1]


async def test_a_resumed_run_that_takes_another_path_is_refused() -> None:
    def flow(expression: str) -> Any:
        condition = {
            "key": "c",
            "type": "condition",
            "config": {"engine": "formula.js", "rejectOnFalse": False, "expression": expression},
            "branches": {"1": [branch_node("yes", OK)], "0": [branch_node("no", OK)]},
        }
        return compile_nodes([condition, delay("d"), AFTER], sync=False)

    first = await run_workflow(flow("true"))
    assert first.ran() == ["c", "yes", "d"]
    with pytest.raises(ReplayDiverged, match="'no' came where 'yes' ran before"):
        await resume(flow("false"), first, "d")  # as a condition reading the clock would


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
