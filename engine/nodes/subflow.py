"""`subflow`: call another workflow by key with `context` as its trigger
variables; the child's output becomes this job's result.

A sync child runs inline and the node waits for it; an async child is queued in
its own inbox and this execution waits (STARTED) until the child ends, then
resumes here. A sync workflow may call only sync ones. The child records
`parentExecutionId`; `stackLimit` bounds how deep a workflow calls itself."""

from __future__ import annotations

from typing import Any

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
    workflow: str
    context: Any = {}


class Subflow(Instruction):
    node_type = "subflow"
    config_type = Config

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        if not config.workflow.strip():
            raise NodeError("workflow", "name the key of the workflow to call")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        rendered = run.render(node)
        runner = run.effects.subflows
        if runner is None:
            raise RuntimeError("calling workflows needs an executor")
        outcome = await runner.call(
            key=str(rendered.get("workflow") or ""),
            context=rendered.get("context") or {},
            parent=run.execution_record,
            job=job,
        )
        job.meta = {"childExecutionId": outcome.executionId}
        if outcome.queued:
            run.wait(job)
            return
        job.result = outcome.output
        job.status = (
            Status.RESOLVED
            if outcome.status == Status.RESOLVED
            else (
                outcome.status
                if outcome.status is not None and outcome.status < 0
                else Status.FAILED
            )
        )
