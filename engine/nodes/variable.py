"""`variable`: declare a value (`target` null) or assign a new value to the
variable that another `variable` node declared (`target` = its node key), so
`{{$jobsMapByNodeKey.<declaring key>}}` reads the latest value."""

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
    target: str | None = None
    value: Any = None


class Variable(Instruction):
    node_type = "variable"
    config_type = Config

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        if config.target is None:
            return
        kind = facts.node_types.get(config.target)
        if kind is None:
            raise NodeError("target", f'no node with key "{config.target}" in this workflow')
        if kind != self.node_type:
            raise NodeError("target", f'"{config.target}" is a {kind} node, not a variable node')

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        value = run.render(node).get("value")
        job.status, job.result = Status.RESOLVED, value
        if node.config.target is not None:
            run.assign(node.config.target, value, by=node.key)
