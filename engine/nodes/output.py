"""`output`: set the execution's output (the last output node run wins); a
calling workflow's subflow node receives it as its result."""

from __future__ import annotations

from typing import Any

from engine.nodes.base import CompiledNode, Instruction, NodeConfig, RunContext
from engine.records import Job
from engine.status import Status


class Config(NodeConfig):
    value: Any = None


class Output(Instruction):
    node_type = "output"
    config_type = Config

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        value = run.render(node).get("value")
        run.set_output(value)
        job.status, job.result = Status.RESOLVED, value

    def replay(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        run.set_output(job.result)
