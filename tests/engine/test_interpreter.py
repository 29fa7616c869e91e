"""engine.interpreter.Interpreter over compiled definitions (SPEC §3, §5;
reference §3.6 engine loop and §5 node semantics)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.definition import decode_definitions
from engine.interpreter import Interpreter
from engine.nodes.base import CompiledNode, Instruction, RunContext
from engine.records import Execution, Job, Reply
from engine.status import PENDING, Status
from engine.validation import compile_workflow

EXECUTION_ID = "0190aa00000000000000000000abcd"


@dataclass
class Run:
    status: int
    interpreter: Interpreter
    sunk: list[tuple[str, str, int, Any]] = field(default_factory=list)

    @property
    def reply(self) -> Reply | None:
        return self.interpreter.reply

    @property
    def output(self) -> Any:
        return self.interpreter.output

    @property
    def jobs(self) -> list[Job]:
        return self.interpreter.jobs

    def job(self, key: str) -> Job:
        found = [j for j in self.jobs if j.nodeKey == key]
        assert found, f"no job for {key}"
        return found[-1]

    def ran(self) -> list[str]:
        return [j.nodeKey for j in self.jobs]


def compile_nodes(nodes: list[dict], *, sync: bool = True):
    text = json.dumps({"key": "wfkey", "sync": sync, "nodes": nodes})
    (definition,) = decode_definitions(text)
    return compile_workflow(definition)


async def run_workflow(compiled, context: Any = None, env: dict[str, str] | None = None) -> Run:
    execution = Execution(
        id=EXECUTION_ID,
        key="wfkey",
        workflowId=1,
        context=context if context is not None else {},
        createdAt=datetime.now(UTC),
    )
    sunk: list[tuple[str, str, int, Any]] = []
    interpreter = Interpreter(
        compiled,
        execution,
        env=env or {},
        sink=lambda job: sunk.append((job.id, job.nodeKey, job.status, job.result)),
    )
    status = await interpreter.run()
    return Run(status, interpreter, sunk)


async def run_nodes(
    nodes: list[dict], context: Any = None, env: dict[str, str] | None = None, sync: bool = True
) -> Run:
    return await run_workflow(compile_nodes(nodes, sync=sync), context, env)


# -- node builders -----------------------------------------------------------------


def output(key: str, value: Any = None) -> dict:
    return {"key": key, "type": "output", "config": {"value": value}}


def response(key: str, status: Any = 200, body: Any = None, headers: list | None = None) -> dict:
    config: dict[str, Any] = {"statusCode": status}
    if body is not None:
        config["body"] = body
    if headers is not None:
        config["headers"] = headers
    return {"key": key, "type": "response", "config": config}


def end(key: str, status: int = 1) -> dict:
    return {"key": key, "type": "end", "config": {"endStatus": status}}


def equal(a: Any, b: Any) -> dict:
    return {"calculator": "equal", "operands": [a, b]}


def condition(key: str, calc: dict, branches: dict | None = None, reject: bool = False) -> dict:
    return {
        "key": key,
        "type": "condition",
        "config": {"rejectOnFalse": reject, "calculation": calc},
        "branches": branches or {},
    }


def calculation(key: str, expression: str, engine: str = "string") -> dict:
    return {
        "key": key,
        "type": "calculation",
        "config": {"engine": engine, "expression": expression},
    }


PAID = {"group": {"type": "and", "calculations": [equal("{{$context.body.status}}", "paid")]}}

SEED = [
    condition(
        "check",
        PAID,
        {
            "1": [response("ok", 200, {"ok": True})],
            "0": [response("bad", 400, {"ok": False})],
        },
    )
]


# -- the seed example ---------------------------------------------------------------


async def test_seed_example_true_outcome_replies_200():
    run = await run_nodes(SEED, {"body": {"status": "paid"}})
    assert run.status == Status.RESOLVED
    assert run.reply is not None
    assert run.reply.status == 200
    assert run.reply.body == {"ok": True}
    assert run.ran() == ["check", "ok"]
    assert run.job("check").status == Status.RESOLVED
    assert run.job("check").result is True
    assert run.job("ok").status == Status.RESOLVED
    assert run.job("ok").result == {"statusCode": 200, "headers": {}, "body": {"ok": True}}


async def test_seed_example_false_outcome_replies_400():
    run = await run_nodes(SEED, {"body": {"status": "open"}})
    assert run.status == Status.RESOLVED
    assert run.reply is not None
    assert run.reply.status == 400
    assert run.reply.body == {"ok": False}
    assert run.ran() == ["check", "bad"]
    assert run.job("check").result is False


async def test_every_job_reaches_the_sink_with_its_final_state():
    run = await run_nodes(SEED, {"body": {"status": "paid"}})
    final = {}
    for job_id, key, status, result in run.sunk:
        final[job_id] = (key, status, result)
    assert final == {
        f"{EXECUTION_ID}-1": ("check", Status.RESOLVED, True),
        f"{EXECUTION_ID}-2": (
            "ok",
            Status.RESOLVED,
            {"statusCode": 200, "headers": {}, "body": {"ok": True}},
        ),
    }


async def test_job_ids_are_execution_id_dash_sequence():
    run = await run_nodes([output("a", 1), output("b", 2), output("c", 3)])
    assert [j.id for j in run.jobs] == [f"{EXECUTION_ID}-{n}" for n in (1, 2, 3)]
    assert all(j.executionId == EXECUTION_ID for j in run.jobs)
    assert [j.nodeType for j in run.jobs] == ["output"] * 3


async def test_empty_workflow_resolves():
    run = await run_nodes([])
    assert run.status == Status.RESOLVED
    assert run.jobs == []
    assert run.reply is None


# -- branches ------------------------------------------------------------------------


async def test_after_branch_flow_continues_with_the_node_after_the_branching_node():
    nodes = [
        condition("c", PAID, {"1": [output("inside", "in")], "0": [output("other", "no")]}),
        output("after", "after"),
    ]
    run = await run_nodes(nodes, {"body": {"status": "paid"}})
    assert run.status == Status.RESOLVED
    assert run.ran() == ["c", "inside", "after"]
    assert run.output == "after"


async def test_missing_branch_for_the_result_continues_downstream():
    nodes = [condition("c", PAID, {"1": [output("inside")]}), output("after", 2)]
    run = await run_nodes(nodes, {"body": {"status": "open"}})
    assert run.status == Status.RESOLVED
    assert run.ran() == ["c", "after"]


async def test_failing_branch_ends_the_execution_with_its_status():
    branch = [condition("inner", equal(1, 2), reject=True), output("not_reached")]
    nodes = [condition("c", PAID, {"1": branch}), output("after")]
    run = await run_nodes(nodes, {"body": {"status": "paid"}})
    assert run.status == Status.FAILED
    assert run.ran() == ["c", "inner"]
    assert run.job("inner").status == Status.FAILED


async def test_error_in_branch_ends_the_execution_with_error():
    nodes = [
        condition("c", PAID, {"1": [calculation("boom", "{{$context.n}} * 2", "math.js")]}),
        output("after"),
    ]
    run = await run_nodes(nodes, {"body": {"status": "paid"}, "n": "abc"})
    assert run.status == Status.ERROR
    assert run.ran() == ["c", "boom"]


async def test_reject_on_false_fails_the_job_and_nothing_after_runs():
    nodes = [condition("c", PAID, reject=True), output("after", 1)]
    run = await run_nodes(nodes, {"body": {"status": "open"}})
    assert run.status == Status.FAILED
    assert run.job("c").status == Status.FAILED
    assert run.job("c").result is False
    assert run.ran() == ["c"]
    assert run.output is None


async def test_reject_on_false_true_result_continues():
    nodes = [condition("c", PAID, {"1": [output("in", 1)]}, reject=True), output("after", 2)]
    run = await run_nodes(nodes, {"body": {"status": "paid"}})
    assert run.status == Status.RESOLVED
    assert run.ran() == ["c", "in", "after"]


async def test_nested_branches_continue_outward():
    nodes = [
        condition(
            "outer",
            equal(1, 1),
            {
                "1": [
                    condition("inner", equal(1, 1), {"1": [output("deep", "d")]}),
                    output("mid", "m"),
                ]
            },
        ),
        output("last", "l"),
    ]
    run = await run_nodes(nodes)
    assert run.status == Status.RESOLVED
    assert run.ran() == ["outer", "inner", "deep", "mid", "last"]


# -- end -------------------------------------------------------------------------------


async def test_end_failed_inside_a_branch_ends_everything():
    nodes = [
        condition("c", PAID, {"1": [end("stop", -1), output("in_after", 1)]}),
        output("after", 2),
    ]
    run = await run_nodes(nodes, {"body": {"status": "paid"}})
    assert run.status == Status.FAILED
    assert run.ran() == ["c", "stop"]
    assert run.job("stop").status == Status.FAILED
    assert run.output is None


async def test_end_resolved_ends_the_execution_resolved():
    run = await run_nodes([end("stop", 1), output("after", 2)])
    assert run.status == Status.RESOLVED
    assert run.ran() == ["stop"]
    assert run.job("stop").status == Status.RESOLVED


async def test_end_resolved_inside_branch_skips_nodes_after_the_branching_node():
    nodes = [condition("c", equal(1, 1), {"1": [end("stop")]}), output("after", 2)]
    run = await run_nodes(nodes)
    assert run.status == Status.RESOLVED
    assert run.ran() == ["c", "stop"]


async def test_end_defaults_to_resolved():
    run = await run_nodes([{"key": "stop", "type": "end"}, output("after")])
    assert run.status == Status.RESOLVED
    assert run.ran() == ["stop"]


# -- response --------------------------------------------------------------------------


async def test_response_ends_the_execution():
    run = await run_nodes([response("r", 201, {"a": 1}), output("after", 1)])
    assert run.status == Status.RESOLVED
    assert run.ran() == ["r"]
    assert run.reply is not None
    assert run.reply.status == 201
    assert run.output is None


async def test_first_response_wins():
    run = await run_nodes([response("r1", 201, "first"), response("r2", 202, "second")])
    assert run.reply is not None
    assert run.reply.status == 201
    assert run.reply.body == "first"
    assert "r2" not in run.ran()


async def test_response_in_branch_wins_over_a_later_response():
    nodes = [condition("c", equal(1, 1), {"1": [response("r1", 203)]}), response("r2", 204)]
    run = await run_nodes(nodes)
    assert run.reply is not None
    assert run.reply.status == 203
    assert run.ran() == ["c", "r1"]


async def test_response_renders_templates_in_status_headers_and_body():
    node = response(
        "r",
        "{{$context.code}}",
        {"id": "{{$context.id}}", "text": "id={{$context.id}}"},
        [{"name": "X-Id", "value": "{{$context.id}}"}],
    )
    run = await run_nodes([node], {"code": "202", "id": 7})
    assert run.reply is not None
    assert run.reply.status == 202
    assert run.reply.headers == [("X-Id", "7")]
    assert run.reply.body == {"id": 7, "text": "id=7"}


async def test_response_body_defaults_to_empty_object():
    run = await run_nodes([response("r", 200)])
    assert run.reply is not None
    assert run.reply.body == {}


async def test_response_status_template_out_of_range_is_a_job_error():
    run = await run_nodes([response("r", "{{$context.code}}")], {"code": 999})
    assert run.status == Status.ERROR
    assert run.job("r").status == Status.ERROR
    assert run.reply is None


# -- output --------------------------------------------------------------------------


async def test_output_sets_the_interpreter_output_last_wins():
    run = await run_nodes([output("o1", "first"), output("o2", {"v": "{{$context.v}}"})], {"v": 3})
    assert run.status == Status.RESOLVED
    assert run.output == {"v": 3}
    assert run.job("o1").result == "first"
    assert run.job("o2").result == {"v": 3}


# -- variable -----------------------------------------------------------------------


async def test_variable_declare_then_assign_updates_the_declaring_key():
    nodes = [
        {"key": "v", "type": "variable", "config": {"value": 1}},
        output("before", "{{$jobsMapByNodeKey.v}}"),
        {"key": "set", "type": "variable", "config": {"target": "v", "value": "{{$context.n}}"}},
        output("after", "{{$jobsMapByNodeKey.v}}"),
    ]
    run = await run_nodes(nodes, {"n": 5})
    assert run.status == Status.RESOLVED
    assert run.job("before").result == 1
    assert run.job("after").result == 5
    assert run.job("set").result == 5
    # the assignment is recorded as a resolved job of the declaring node
    v_jobs = [j for j in run.jobs if j.nodeKey == "v"]
    assert [j.result for j in v_jobs] == [1, 5]
    assert all(j.status == Status.RESOLVED for j in v_jobs)


async def test_variable_declare_keeps_typed_value():
    nodes = [
        {"key": "v", "type": "variable", "config": {"value": "{{$context.obj}}"}},
        output("o", "{{$jobsMapByNodeKey.v.a}}"),
    ]
    run = await run_nodes(nodes, {"obj": {"a": [1, 2]}})
    assert run.output == [1, 2]


# -- calculation -------------------------------------------------------------------


async def test_calculation_with_string_engine_interpolates():
    nodes = [
        calculation("c", "hi {{$context.name}}, n={{$context.n}}"),
        output("o", "{{$jobsMapByNodeKey.c}}"),
    ]
    run = await run_nodes(nodes, {"name": "Ann", "n": 1.0})
    assert run.status == Status.RESOLVED
    assert run.job("c").result == "hi Ann, n=1"
    assert run.output == "hi Ann, n=1"


async def test_calculation_string_engine_renders_null_and_nan_as_empty():
    run = await run_nodes(
        [calculation("c", "[{{$context.a}}|{{$context.b}}]")], {"a": None, "b": float("nan")}
    )
    assert run.job("c").result == "[|]"


async def test_calculation_string_engine_does_not_resubstitute_values():
    # The value of the first placeholder happens to look like the internal name
    # of the second; values must be inserted literally.
    run = await run_nodes(
        [calculation("c", "{{$context.a}} and {{$context.b}}")], {"a": "$$1", "b": "X"}
    )
    assert run.job("c").result == "$$1 and X"


async def test_calculation_string_engine_keeps_literal_dollar_text():
    run = await run_nodes([calculation("c", "cost $$0 for {{$context.b}}")], {"b": "X"})
    assert run.job("c").result == "cost $$0 for X"


async def test_calculation_with_empty_expression_gives_null():
    # NocoBase: an empty expression gives `result: null`, whatever the engine.
    run = await run_nodes([calculation("s", ""), calculation("m", "", engine="math.js")])
    assert run.status == Status.RESOLVED
    assert run.job("m").result is None
    assert run.job("s").result is None


async def test_calculation_math_engine_result():
    run = await run_nodes([calculation("c", "{{$context.a}} * 2 + 1", "math.js")], {"a": 4})
    assert run.job("c").result == 9


async def test_calculation_evaluation_error_is_job_error_and_execution_error():
    nodes = [calculation("c", "{{$context.n}} * 2", "math.js"), output("after", 1)]
    run = await run_nodes(nodes, {"n": "not a number"})
    assert run.status == Status.ERROR
    assert run.job("c").status == Status.ERROR
    assert isinstance(run.job("c").result, str) and run.job("c").result
    assert run.ran() == ["c"]


async def test_condition_evaluation_error_is_job_error_and_execution_error():
    nodes = [
        condition("c", {"calculator": "includes", "operands": ["{{$context.n}}", 1]}),
        output("after", 1),
    ]
    run = await run_nodes(nodes, {"n": 5})
    assert run.status == Status.ERROR
    assert run.job("c").status == Status.ERROR
    assert "includes" in run.job("c").result
    assert run.ran() == ["c"]


async def test_condition_with_mathjs_engine_uses_truthiness():
    nodes = [
        {
            "key": "c",
            "type": "condition",
            "config": {
                "engine": "math.js",
                "expression": "{{$context.n}} > 3",
                "rejectOnFalse": False,
            },
            "branches": {"1": [output("yes", 1)], "0": [output("no", 0)]},
        }
    ]
    assert (await run_nodes(nodes, {"n": 5})).ran() == ["c", "yes"]
    assert (await run_nodes(nodes, {"n": 1})).ran() == ["c", "no"]


# -- multi-conditions ------------------------------------------------------------------


def multi(continue_on_no_match: bool = False, branches: dict | None = None) -> dict:
    return {
        "key": "m",
        "type": "multi-conditions",
        "config": {
            "continueOnNoMatch": continue_on_no_match,
            "conditions": [
                {"calculation": equal("{{$context.n}}", 1)},
                {"calculation": equal("{{$context.n}}", 2)},
                {"calculation": equal("{{$context.n}}", 2)},
            ],
        },
        "branches": branches
        if branches is not None
        else {
            "1": [output("b1", "one")],
            "2": [output("b2", "two")],
            "3": [output("b3", "three")],
            "0": [output("b0", "otherwise")],
        },
    }


async def test_multi_conditions_first_true_condition_runs_branch_i_plus_one():
    run = await run_nodes([multi(), output("after", "after")], {"n": 2})
    assert run.status == Status.RESOLVED
    assert run.ran() == ["m", "b2", "after"]
    job = run.job("m")
    assert job.status == Status.RESOLVED
    assert job.result is True


async def test_multi_conditions_meta_keeps_every_evaluated_result():
    run = await run_nodes([multi()], {"n": 2})
    assert run.job("m").meta == {"conditions": [False, True]}


async def test_multi_conditions_first_condition_runs_branch_one():
    run = await run_nodes([multi()], {"n": 1})
    assert run.ran() == ["m", "b1"]
    assert run.job("m").meta == {"conditions": [True]}


async def test_multi_conditions_no_match_runs_otherwise_then_fails():
    run = await run_nodes([multi(), output("after", "after")], {"n": 9})
    assert run.ran() == ["m", "b0"]
    assert run.job("m").status == Status.FAILED
    assert run.job("m").result is False
    assert run.job("m").meta == {"conditions": [False, False, False]}
    assert run.status == Status.FAILED


async def test_multi_conditions_no_match_with_continue_resolves_and_continues():
    run = await run_nodes([multi(True), output("after", "after")], {"n": 9})
    assert run.ran() == ["m", "b0", "after"]
    assert run.job("m").status == Status.RESOLVED
    assert run.status == Status.RESOLVED


async def test_multi_conditions_no_match_without_otherwise_branch_fails():
    run = await run_nodes([multi(False, {}), output("after")], {"n": 9})
    assert run.status == Status.FAILED
    assert run.ran() == ["m"]


async def test_multi_conditions_failing_branch_ends_execution_with_its_status():
    branches = {"1": [end("stop", -1)], "0": []}
    run = await run_nodes([multi(False, branches), output("after")], {"n": 1})
    assert run.status == Status.FAILED
    assert run.ran() == ["m", "stop"]


async def test_multi_conditions_evaluation_error_is_job_error():
    node = {
        "key": "m",
        "type": "multi-conditions",
        "config": {
            "conditions": [
                {"calculation": {"calculator": "startsWith", "operands": ["{{$context.x}}", "a"]}}
            ]
        },
    }
    run = await run_nodes([node, output("after")], {"x": None})
    assert run.status == Status.ERROR
    assert run.job("m").status == Status.ERROR
    assert run.ran() == ["m"]


# -- unexpected exceptions --------------------------------------------------------


class Boom(Instruction):
    type = "boom"

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        raise RuntimeError("kaboom")


class SilentBoom(Instruction):
    type = "silent"

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        raise KeyError()


async def test_node_raising_unexpected_exception_is_job_error_with_message():
    compiled = compile_nodes([output("x"), output("after", 1)])
    compiled.node("x").instruction = Boom()
    run = await run_workflow(compiled)
    assert run.status == Status.ERROR
    assert run.job("x").status == Status.ERROR
    assert run.job("x").result == {"message": "kaboom"}
    assert run.ran() == ["x"]
    assert run.sunk[-1][1:] == ("x", Status.ERROR, {"message": "kaboom"})


async def test_exception_without_text_reports_its_type_name():
    compiled = compile_nodes([output("x")])
    compiled.node("x").instruction = SilentBoom()
    run = await run_workflow(compiled)
    assert run.job("x").result == {"message": "KeyError"}


# -- scope -------------------------------------------------------------------------


async def test_env_values_are_visible_to_templates():
    run = await run_nodes([output("o", "Bearer {{$env.TOKEN}}")], env={"TOKEN": "s3"})
    assert run.output == "Bearer s3"


async def test_context_values_are_visible_to_templates():
    run = await run_nodes(
        [output("o", "{{$context.body.items.sku}}")],
        {"body": {"items": [{"sku": "a"}, {"sku": "b"}]}},
    )
    assert run.output == ["a", "b"]


async def test_system_now_is_a_datetime():
    run = await run_nodes([output("o", "{{$system.now}}")])
    assert isinstance(run.output, datetime)


async def test_job_results_of_earlier_nodes_are_visible():
    run = await run_nodes([output("a", {"x": [1, 2]}), output("b", "{{$jobsMapByNodeKey.a.x.1}}")])
    assert run.output == 2


async def test_no_job_is_left_pending_after_a_finished_run():
    run = await run_nodes(SEED, {"body": {"status": "paid"}})
    assert all(j.status != PENDING for j in run.jobs)


async def test_interpreter_is_reusable_for_separate_executions():
    compiled = compile_nodes(SEED)
    first = await run_workflow(compiled, {"body": {"status": "paid"}})
    second = await run_workflow(compiled, {"body": {"status": "open"}})
    assert first.reply is not None and first.reply.status == 200
    assert second.reply is not None and second.reply.status == 400
