"""`end`: end the whole execution at once, with `endStatus` (1 resolved, -1 failed),
even from inside a branch."""

from __future__ import annotations

from typing import Literal

from engine.nodes.base import CompiledNode, Instruction, NodeConfig, RunContext
from engine.records import Job


class Config(NodeConfig):
    endStatus: Literal[1, -1] = 1


class End(Instruction):
    node_type = "end"
    config_type = Config

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        job.status = node.config.endStatus
        run.commit(job)
        run.exit(node.config.endStatus)
