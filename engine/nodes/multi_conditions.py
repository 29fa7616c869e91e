"""`multi-conditions`: the first true condition i runs branch "i+1"; none true
runs the "0" (otherwise) branch, after which the job is FAILED unless
`continueOnNoMatch` (NocoBase's rule). `meta.conditions` keeps every result.

A branch that ends in another status than RESOLVED ends the chain around this
node with that status, as a condition's branch does: a loop or a parallel above
handles it. (NocoBase 2.2's multi-conditions still ends the whole execution
there: its fix for conditions, #8360, was not carried over to it; rayhook
treats both alike.)"""

from __future__ import annotations

from typing import Any, Literal

from engine.conditions import CompiledCondition, compile_condition
from engine.nodes.base import CompiledNode, Instruction, NodeConfig, RunContext, WorkflowFacts
from engine.records import Job
from engine.status import Status


class ConditionItem(NodeConfig):
    uid: str = ""
    title: str = ""
    engine: Literal["basic", "math.js", "formula.js"] = "basic"
    calculation: Any = None
    expression: str = ""


class Config(NodeConfig):
    conditions: list[ConditionItem] = []
    continueOnNoMatch: bool = False


class MultiConditions(Instruction):
    node_type = "multi-conditions"
    config_type = Config
    raw_fields = frozenset({"conditions"})

    def branch_indexes(self, config: Config) -> frozenset[str]:
        return frozenset(str(i) for i in range(len(config.conditions) + 1))

    def prepare(
        self, config: Config, facts: WorkflowFacts, branches: frozenset[str]
    ) -> list[CompiledCondition]:
        return [
            compile_condition(c.engine, c.calculation, c.expression, f"conditions[{i}].")
            for i, c in enumerate(config.conditions)
        ]

    def placeholders(self, prepared: list[CompiledCondition]) -> list[Any]:
        return [ph for condition in prepared for ph in condition.placeholders]

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        results: list[Any] = []
        job.meta = {"conditions": results}
        for index, condition in enumerate(node.prepared, start=1):
            try:
                outcome = condition.evaluate(run.scope)
            except Exception as exc:
                results.append(str(exc))
                job.status, job.result = Status.ERROR, str(exc)
                return
            results.append(outcome)
            job.result = outcome
            if outcome:
                job.status = Status.RESOLVED
                await self._branch(node, str(index), job, run)
                return
        job.status = Status.RESOLVED if node.config.continueOnNoMatch else Status.FAILED
        await self._branch(node, "0", job, run)

    async def _branch(self, node: CompiledNode, index: str, job: Job, run: RunContext) -> None:
        if index not in node.branches:
            return
        final = job.status
        job.status = Status.STARTED  # pending while its branch runs
        run.commit(job)
        status = await run.run_branch(node, index)
        job.status = final
        if status != Status.RESOLVED:
            run.bubble(status)
