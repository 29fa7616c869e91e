"""`condition`: evaluate one condition, follow branch "1" (true) or "0" (false).

With `rejectOnFalse` a false result fails the job, which ends the execution.
After the branch, flow continues with the node after this one. A branch that
ends in another status than RESOLVED leaves this job RESOLVED and ends the
chain around it with that status, as NocoBase's condition does (#8360: "bubble
rejected status to parent scope so that caller (loop, etc.) can decide"): in a
loop the loop's `exit` applies, in a parallel its `mode`, on the main chain the
execution ends with it.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.conditions import CompiledCondition, compile_condition
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import Status


class Config(NodeConfig):
    engine: Literal["basic", "math.js", "formula.js"] = "basic"
    rejectOnFalse: bool = True
    calculation: Any = None
    expression: str = ""


class Condition(Instruction):
    node_type = "condition"
    config_type = Config
    raw_fields = frozenset({"calculation", "expression"})

    def branch_indexes(self, config: Config) -> frozenset[str]:
        return frozenset({"0", "1"})

    def prepare(
        self, config: Config, facts: WorkflowFacts, branches: frozenset[str]
    ) -> CompiledCondition:
        if config.rejectOnFalse and "0" in branches:
            raise NodeError(
                "rejectOnFalse",
                'is true, so branch "0" (false) can never run; set rejectOnFalse: false',
            )
        return compile_condition(config.engine, config.calculation, config.expression)

    def placeholders(self, prepared: CompiledCondition) -> list[Any]:
        return prepared.placeholders

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        try:
            result = node.prepared.evaluate(run.scope)
        except Exception as exc:
            job.status, job.result = Status.ERROR, str(exc)
            return
        job.result = result
        if not result and node.config.rejectOnFalse:
            job.status = Status.FAILED
            return
        job.status = Status.RESOLVED
        branch = "1" if result else "0"
        if branch in node.branches:
            run.commit(job)
            status = await run.run_branch(node, branch)
            if status != Status.RESOLVED:
                run.bubble(status)
