"""`delay` and `manual`: nodes that pause an execution.

Their durable runtime (timers that survive restarts, `jobs:resume`) is not in
this release; they are registered so that definitions using them get a precise
error — always for sync workflows, where waiting is never allowed — instead of
"unknown node type"."""

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


class DelayConfig(NodeConfig):
    duration: Any = 1
    unit: int = 60000
    endStatus: int = 1


class ManualConfig(NodeConfig):
    assignees: list[Any] = []
    title: str = ""
    mode: int = 0
    schema: Any = None
    forms: Any = None


class _Waiting(Instruction):
    waits = True

    def prepare(self, config: Any, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        raise NodeError("", f"the {self.node_type} node is not available yet in this release")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        raise RuntimeError(f"{self.node_type} is not available")


class Delay(_Waiting):
    node_type = "delay"
    config_type = DelayConfig


class Manual(_Waiting):
    node_type = "manual"
    config_type = ManualConfig
