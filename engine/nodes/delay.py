"""`delay`: wait `duration` times `unit` milliseconds, then end the job with
`endStatus` (1 resolved, -1 failed). Async workflows only.

As in NocoBase (`node.config.duration || 1`), a duration of 0 (or none) in the
config waits one unit; a placeholder is read at run time, and one that gives 0
does not wait.

The wait is durable: the timer is stored with the execution (in Redis), fires
once even if every process restarts meanwhile, and the execution then resumes
from this node (see `Interpreter`'s replay)."""

from __future__ import annotations

import time
from typing import Any, Literal

from engine.jsvalues import to_number
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
from engine.templates import Single, compile_template

UNITS = (1000, 60000, 3600000, 86400000, 604800000)  # second … week


class Config(NodeConfig):
    duration: Any = 1
    unit: Literal[1000, 60000, 3600000, 86400000, 604800000] = 1000
    endStatus: Literal[1, -1] = 1


class Delay(Instruction):
    node_type = "delay"
    config_type = Config
    waits = True

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        duration = config.duration
        if duration is None or duration == "":
            return  # one unit
        if isinstance(duration, str) and isinstance(compile_template(duration), Single):
            return
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
            raise NodeError("duration", "must be a number ≥ 0 or one {{...}} placeholder")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        duration = to_number(run.render(node).get("duration") if node.config.duration else 1)
        if not duration >= 0:  # NaN too
            job.status, job.result = Status.ERROR, "duration must be a number ≥ 0"
            return
        job.result = duration * node.config.unit
        run.wait(job, fire_at=time.time() * 1000 + job.result, status=node.config.endStatus)
