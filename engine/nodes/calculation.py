"""`calculation`: evaluate an expression; its value is the job result.

The smallest complete node, and the one to copy: a `Config` struct (its fields
are NocoBase's), `prepare` compiling what can be compiled at definition time,
and `run` setting the job's status and result.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.expressions import CompiledExpression, ExpressionError, compile_expression
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
    engine: Literal["math.js", "formula.js", "string"] = "math.js"
    expression: str = ""


class Calculation(Instruction):
    node_type = "calculation"
    config_type = Config
    raw_fields = frozenset({"expression"})

    def prepare(
        self, config: Config, facts: WorkflowFacts, branches: frozenset[str]
    ) -> CompiledExpression:
        try:
            return compile_expression(config.engine, config.expression)
        except ExpressionError as exc:
            raise NodeError("expression", str(exc)) from exc

    def placeholders(self, prepared: CompiledExpression) -> list[Any]:
        return list(prepared.placeholders)

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        try:
            job.result = node.prepared.evaluate(run.scope)
        except Exception as exc:
            job.status, job.result = Status.ERROR, str(exc)
            return
        job.status = Status.RESOLVED
