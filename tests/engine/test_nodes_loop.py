"""The `loop` node (reference §5.3, NocoBase plugin-workflow-loop)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.definition import DefinitionError
from engine.effects import Effects
from engine.interpreter import DEFAULT_LOOP_LIMIT, Interpreter
from engine.records import Execution
from engine.settings import Settings
from engine.status import Status
from tests.engine.test_interpreter import (
    EXECUTION_ID,
    Run,
    compile_nodes,
    end,
    run_nodes,
    run_workflow,
)
from tests.engine.test_nodes_parallel import resume

SCOPE = "{{$scopes.L.item}}|{{$scopes.L.index}}|{{$scopes.L.sequence}}|{{$scopes.L.length}}"


def seen(key: str, expression: str = SCOPE, engine: str = "string") -> dict[str, Any]:
    return {
        "key": key,
        "type": "calculation",
        "config": {"engine": engine, "expression": expression},
    }


def fail(key: str) -> dict[str, Any]:
    """A node that FAILs (a condition with rejectOnFalse that is false)."""
    return {
        "key": key,
        "type": "condition",
        "config": {"engine": "formula.js", "rejectOnFalse": True, "expression": "false"},
    }


def fail_when(key: str, expression: str) -> dict[str, Any]:
    return {
        "key": key,
        "type": "condition",
        "config": {"engine": "formula.js", "rejectOnFalse": True, "expression": f"!({expression})"},
    }


def loop(target: Any, body: list[dict[str, Any]] | None = None, **config: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"key": "L", "type": "loop", "config": {"target": target, **config}}
    if body is not None:
        node["branches"] = {"0": body}
    return node


def results(run: Run, key: str) -> list[Any]:
    return [job.result for job in run.jobs if job.nodeKey == key]


# -- target kinds -------------------------------------------------------------------------------


async def test_number_target_runs_floor_n_times_with_the_index_as_item() -> None:
    run = await run_nodes([loop(2.5, [seen("s")]), seen("after", "done")])
    assert run.status == Status.RESOLVED
    assert results(run, "s") == ["0|0|1|2", "1|1|2|2"]
    assert run.job("L").result == {"looped": 2, "done": 2}
    assert run.ran()[-1] == "after"


async def test_array_target_runs_once_per_element_with_scope() -> None:
    run = await run_nodes(
        [loop("{{$context.body.items}}", [seen("s")])], {"body": {"items": ["a", "b", "c"]}}
    )
    assert results(run, "s") == ["a|0|1|3", "b|1|2|3", "c|2|3|3"]
    assert run.job("L").result == {"looped": 3, "done": 3}


async def test_array_items_are_raw_values() -> None:
    body = [seen("s", "{{$scopes.L.item.sku}}x{{$scopes.L.item.qty}}")]
    run = await run_nodes(
        [loop("{{$context.body.lines}}", body)],
        {"body": {"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}},
    )
    assert results(run, "s") == ["Ax2", "Bx1"]


async def test_a_string_target_is_one_item_as_in_nocobase_code() -> None:
    run = await run_nodes([loop("{{$context.body.text}}", [seen("s")])], {"body": {"text": "abc"}})
    assert results(run, "s") == ["abc|0|1|1"]


@pytest.mark.parametrize("target", [{"a": 1}, True, False, "x"])
async def test_any_other_target_is_one_item(target: Any) -> None:
    run = await run_nodes([loop(target, [seen("s", "{{$scopes.L.index}}")])])
    assert results(run, "s") == ["0"]
    assert run.job("L").result == {"looped": 1, "done": 1}


@pytest.mark.parametrize("target", [None, [], 0, 0.5, "{{$context.body.missing}}"])
async def test_empty_targets_resolve_at_once(target: Any) -> None:
    run = await run_nodes([loop(target, [seen("s")]), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert run.ran() == ["L", "after"]
    assert run.job("L").result == {"looped": 0, "done": 0}


async def test_missing_target_runs_nothing() -> None:
    run = await run_nodes([{"key": "L", "type": "loop", "branches": {"0": [seen("s")]}}])
    assert run.ran() == ["L"]
    assert run.job("L").status == Status.RESOLVED


async def test_negative_number_target_is_an_error() -> None:
    run = await run_nodes([loop(-1, [seen("s")])])
    assert run.status == Status.ERROR
    assert "must be greater than 0" in run.job("L").result["message"]


async def test_array_with_nulls_keeps_its_length_but_items_skip_nulls() -> None:
    """NocoBase counts every element but reads items from the array without nulls."""
    run = await run_nodes([loop([1, None, 2], [seen("s")])])
    assert results(run, "s") == ["1|0|1|3", "2|1|2|3", "|2|3|3"]


async def test_no_body_resolves_and_continues() -> None:
    run = await run_nodes([loop(3), seen("after", "x")])
    assert run.ran() == ["L", "after"]
    assert run.job("L").result == {"looped": 0, "done": 0}


async def test_target_is_read_again_before_each_iteration() -> None:
    """A body that changes the variable the target reads changes the loop."""
    nodes = [
        {"key": "v", "type": "variable", "config": {"value": "{{$context.body.items}}"}},
        loop(
            "{{$jobsMapByNodeKey.v}}",
            [
                seen("s"),
                {"key": "shrink", "type": "variable", "config": {"target": "v", "value": [9]}},
            ],
        ),
    ]
    run = await run_nodes(nodes, {"body": {"items": [1, 2, 3, 4]}})
    assert results(run, "s") == ["1|0|1|4"]
    assert run.job("L").result == {"looped": 1, "done": 1}


# -- condition and checkpoints -------------------------------------------------------------------


def condition(expression: str, **extra: Any) -> dict[str, Any]:
    return {"engine": "formula.js", "expression": expression, **extra}


async def test_checkpoint_0_checks_before_the_first_iteration() -> None:
    run = await run_nodes([loop(3, [seen("s")], condition=condition("{{$scopes.L.index}} > 5"))])
    assert results(run, "s") == []
    assert run.job("L").status == Status.RESOLVED
    assert run.job("L").result == {"looped": 1, "done": 0, "broken": True}


async def test_condition_false_breaks_before_the_next_iteration() -> None:
    run = await run_nodes(
        [
            loop(
                5,
                [seen("s", "{{$scopes.L.index}}")],
                condition=condition("{{$scopes.L.index}} < 2"),
            )
        ]
    )
    assert results(run, "s") == ["0", "1"]
    assert run.job("L").result == {"looped": 2, "done": 2, "broken": True}


async def test_checkpoint_1_skips_only_the_first_check() -> None:
    cond = condition("{{$scopes.L.index}} > 5", checkpoint=1)
    run = await run_nodes([loop(3, [seen("s", "{{$scopes.L.index}}")], condition=cond)])
    assert results(run, "s") == ["0"]
    assert run.job("L").result == {"looped": 1, "done": 1, "broken": True}


async def test_continue_on_false_skips_items() -> None:
    cond = condition("ISEVEN({{$scopes.L.item}})", continueOnFalse=True)
    run = await run_nodes(
        [loop([1, 2, 3, 4, 5], [seen("s", "{{$scopes.L.item}}")], condition=cond)]
    )
    assert results(run, "s") == ["2", "4"]
    assert run.job("L").result == {"looped": 5, "done": 2}
    assert run.job("L").status == Status.RESOLVED


async def test_basic_condition_reads_the_loop_scope() -> None:
    cond = {
        "calculation": {"calculator": "lt", "operands": ["{{$scopes.L.item}}", 3]},
    }
    run = await run_nodes([loop([1, 2, 3, 1], [seen("s", "{{$scopes.L.item}}")], condition=cond)])
    assert results(run, "s") == ["1", "2"]
    assert run.job("L").result["broken"] is True


async def test_condition_false_or_empty_means_no_check() -> None:
    for cond in (False, None, {"checkpoint": 0}):
        run = await run_nodes([loop(2, [seen("s")], condition=cond)])
        assert run.job("L").result == {"looped": 2, "done": 2}


async def test_condition_error_ends_the_loop_in_error() -> None:
    cond = condition("SQRT(-1) > 0")
    run = await run_nodes([loop(2, [seen("s")], condition=cond)])
    assert run.status == Status.ERROR
    assert run.job("L").status == Status.ERROR


# -- exit modes ---------------------------------------------------------------------------------


async def test_exit_0_return_ends_the_execution_with_the_body_status() -> None:
    body = [seen("s", "{{$scopes.L.index}}"), fail_when("f", "{{$scopes.L.index}} == 1")]
    run = await run_nodes([loop(3, body, exit=0), seen("after", "x")])
    assert run.status == Status.FAILED
    assert results(run, "s") == ["0", "1"]
    assert run.job("L").status == Status.FAILED
    assert run.job("L").result == {"looped": 2, "done": 1}
    assert "after" not in run.ran()


async def test_exit_defaults_to_return() -> None:
    run = await run_nodes([loop(3, [fail("f")])])
    assert run.status == Status.FAILED
    assert run.job("L").result == {"looped": 1, "done": 0}


async def test_exit_1_break_resolves_the_loop_and_continues() -> None:
    body = [seen("s", "{{$scopes.L.index}}"), fail_when("f", "{{$scopes.L.index}} == 1")]
    run = await run_nodes([loop(3, body, exit=1), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert results(run, "s") == ["0", "1"]
    assert run.job("L").status == Status.RESOLVED
    assert run.job("L").result == {"looped": 2, "done": 1, "broken": True}
    assert run.ran()[-1] == "after"


async def test_exit_2_continue_goes_on_to_the_next_item() -> None:
    body = [seen("s", "{{$scopes.L.index}}"), fail_when("f", "{{$scopes.L.index}} == 1")]
    run = await run_nodes([loop(3, body, exit=2), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert results(run, "s") == ["0", "1", "2"]
    assert run.job("L").result == {"looped": 3, "done": 3}


async def test_error_in_body_with_continue() -> None:
    body = [seen("s", "SQRT({{$scopes.L.item}})", engine="formula.js")]
    run = await run_nodes([loop([4, -1, 9], body, exit=2)])
    assert run.status == Status.RESOLVED
    statuses = [job.status for job in run.jobs if job.nodeKey == "s"]
    assert statuses == [Status.RESOLVED, Status.ERROR, Status.RESOLVED]


# -- a failure inside a branch of the body (NocoBase #8360) ------------------------------------


def branching(key: str, branch: list[dict[str, Any]], kind: str = "condition") -> dict[str, Any]:
    """A condition (or multi-conditions) that is true and runs `branch`."""
    if kind == "condition":
        config: dict[str, Any] = {"engine": "formula.js", "rejectOnFalse": False}
        config["expression"] = "true"
    else:
        config = {"conditions": [{"engine": "formula.js", "expression": "true"}]}
    return {"key": key, "type": kind, "config": config, "branches": {"1": branch}}


def erring(key: str) -> dict[str, Any]:
    return seen(key, "SQRT(-1)", engine="formula.js")  # ERROR


async def test_loop_exits_when_condition_branch_fails_under_break_mode() -> None:
    # NocoBase plugin-workflow-loop's test of the same name: the condition passes
    # its branch's failure up to the loop, which breaks; the workflow goes on.
    run = await run_nodes([loop(3, [branching("c", [erring("e")])], exit=1), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert run.job("L").status == Status.RESOLVED
    assert run.job("L").result == {"looped": 1, "done": 0, "broken": True}
    assert run.job("e").status == Status.ERROR
    assert run.job("c").status == Status.RESOLVED  # the condition itself decided fine
    assert run.job("after").status == Status.RESOLVED


async def test_loop_goes_on_when_condition_branch_fails_under_continue_mode() -> None:
    body = [branching("c", [fail_when("f", "{{$scopes.L.index}} == 1")]), seen("s", "x")]
    run = await run_nodes([loop(3, body, exit=2), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert run.job("L").result == {"looped": 3, "done": 3}
    assert len(results(run, "s")) == 2  # the failed iteration skipped the rest of its body
    assert run.ran()[-1] == "after"


async def test_loop_returns_the_status_when_condition_branch_fails_under_return_mode() -> None:
    run = await run_nodes([loop(3, [branching("c", [erring("e")])], exit=0), seen("after", "x")])
    assert run.status == Status.ERROR
    assert run.job("L").status == Status.ERROR
    assert run.job("L").result == {"looped": 1, "done": 0}
    assert "after" not in run.ran()


async def test_loop_exits_when_a_nested_condition_branch_fails_under_break_mode() -> None:
    inner = branching("inner", [erring("e")])
    run = await run_nodes([loop(3, [branching("outer", [inner])], exit=1), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert run.job("L").result == {"looped": 1, "done": 0, "broken": True}
    assert [run.job(k).status for k in ("outer", "inner")] == [Status.RESOLVED] * 2


async def test_loop_exits_when_multi_conditions_branch_fails_under_break_mode() -> None:
    body = [branching("m", [erring("e")], kind="multi-conditions")]
    run = await run_nodes([loop(3, body, exit=1), seen("after", "x")])
    assert run.status == Status.RESOLVED
    assert run.job("L").result == {"looped": 1, "done": 0, "broken": True}
    assert run.job("m").status == Status.RESOLVED


async def test_end_node_in_body_ends_the_execution() -> None:
    run = await run_nodes([loop(3, [seen("s", "x"), end("stop", -1)]), seen("after", "x")])
    assert run.status == Status.FAILED
    assert run.ran() == ["L", "s", "stop"]


# -- the limit ----------------------------------------------------------------------------------


async def run_with(nodes: list[dict[str, Any]], **kwargs: Any) -> Run:
    execution = Execution(
        id=EXECUTION_ID, key="wfkey", workflowId=1, context={}, createdAt=datetime.now(UTC)
    )
    interpreter = Interpreter(
        compile_nodes(nodes), execution, env={}, sink=lambda job: None, **kwargs
    )
    return Run(await interpreter.run(), interpreter)


async def test_limit_exceeded_is_an_error_with_exceeded() -> None:
    run = await run_with([loop(10, [seen("s", "x")])], loop_limit=1)
    assert run.status == Status.ERROR
    assert run.job("L").status == Status.ERROR
    assert run.job("L").result == {"looped": 1, "done": 1, "exceeded": True}
    assert len(results(run, "s")) == 1


async def test_limit_reached_exactly_resolves() -> None:
    run = await run_with([loop(3, [seen("s", "x")])], loop_limit=3)
    assert run.status == Status.RESOLVED
    assert run.job("L").result == {"looped": 3, "done": 3}


async def test_limit_zero_means_no_limit() -> None:
    run = await run_with([loop(25, [seen("s", "x")])], loop_limit=0)
    assert run.job("L").result == {"looped": 25, "done": 25}


async def test_limit_comes_from_settings_through_effects() -> None:
    effects = Effects(Settings(loop_limit=2))
    run = await run_with([loop(5, [seen("s", "x")])], effects=effects)
    assert run.job("L").result == {"looped": 2, "done": 2, "exceeded": True}


async def test_default_limit() -> None:
    run = await run_with([loop(1, [seen("s", "x")])])
    assert run.interpreter.loop_limit == DEFAULT_LOOP_LIMIT == Settings().loop_limit


def test_limit_setting_from_environment() -> None:
    assert Settings.from_env({"RAYHOOK_LOOP_LIMIT": "50"}).loop_limit == 50
    assert Settings.from_env({"RAYHOOK_LOOP_LIMIT": "0"}).loop_limit == 0
    assert Settings.from_env({}).loop_limit == 10000


# -- scopes and validation ----------------------------------------------------------------------


async def test_nested_loops_see_both_scopes() -> None:
    inner = {
        "key": "M",
        "type": "loop",
        "config": {"target": 2},
        "branches": {"0": [seen("s", "{{$scopes.L.item}}{{$scopes.M.index}}")]},
    }
    run = await run_nodes([loop(["a", "b"], [inner])])
    assert results(run, "s") == ["a0", "a1", "b0", "b1"]


async def test_loop_job_result_is_readable_inside_the_body() -> None:
    run = await run_nodes([loop(2, [seen("s", "{{$jobsMapByNodeKey.L.looped}}")])])
    assert results(run, "s") == ["0", "1"]


async def test_scope_is_gone_after_the_loop() -> None:
    run = await run_nodes([loop(1, [seen("s", "x")])])
    assert run.interpreter.scope["$scopes"] == {}


def test_scopes_outside_the_loop_are_rejected() -> None:
    with pytest.raises(DefinitionError, match="no enclosing loop"):
        compile_nodes([loop(1, [seen("s", "x")]), seen("after", "{{$scopes.L.item}}")])


def test_loop_target_cannot_read_its_own_scope() -> None:
    with pytest.raises(DefinitionError, match="no enclosing loop"):
        compile_nodes([loop("{{$scopes.L.item}}", [seen("s", "x")])])


def test_loop_condition_may_read_its_own_scope() -> None:
    compile_nodes([loop(1, [seen("s", "x")], condition=condition("{{$scopes.L.index}} < 3"))])


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"target": 1, "exit": 3}, "config.exit"),
        ({"target": 1, "condition": {"engine": "python", "expression": "1"}}, "config.condition"),
        (
            {"target": 1, "condition": {"engine": "formula.js", "expression": "nope()"}},
            "config.condition.expression",
        ),
        ({"target": 1, "condition": {"checkpoint": 2, "expression": "1"}}, "config.condition"),
        ({"target": 1, "mode": "x"}, "config"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError) as info:
        compile_nodes([{"key": "L", "type": "loop", "config": config}])
    assert 'node "L"' in str(info.value)
    assert field in str(info.value)


def test_only_branch_0_is_the_body() -> None:
    with pytest.raises(DefinitionError, match='"1" is not a branch'):
        compile_nodes(
            [{"key": "L", "type": "loop", "config": {"target": 1}, "branches": {"1": []}}]
        )


# -- a body that waits --------------------------------------------------------------------------


async def test_a_waiting_body_resumes_each_iteration_with_assignments_replayed() -> None:
    count = {"key": "count", "type": "variable", "config": {"value": 0}}
    bump = {
        "key": "bump",
        "type": "variable",
        "config": {"target": "count", "value": "{{$scopes.L.sequence}}"},
    }
    pause = {"key": "d", "type": "delay", "config": {"duration": 1}}
    compiled = compile_nodes([count, loop(3, [bump, pause]), seen("after", "x")], sync=False)
    run = await run_workflow(compiled)
    for iteration in (1, 2, 3):
        assert run.status == Status.STARTED
        assert run.interpreter.scope["$jobsMapByNodeKey"]["count"] == iteration
        run = await resume(compiled, run, "d")
    assert run.status == Status.RESOLVED
    assert run.job("L").result == {"looped": 3, "done": 3}
    assert [j.nodeKey for j in run.jobs].count("count") == 4  # declared, then one per iteration
