"""`parallel`: run branches "1".."n" and combine their outcomes by `mode`.

As in NocoBase's `plugin-workflow-parallel`, the branches run one after another,
in index order, inside this execution; whether the next branch starts depends on
how the previous one ended (`all`: not failed; `any`: not resolved; `race`: still
pending; `allSettled`: always). A branch that reaches a waiting node (delay,
manual, an async subflow) is pending: the next branch starts (in every mode),
and when no branch settles the job, the job stays PENDING and the execution
waits. When a waiting job ends, the execution is resumed: the parallel decides
again from its branches, the branch that waited goes on from there, and the
branches already run keep their recorded jobs. A failure that a condition
inside a branch passes up counts as that branch's status. The job result is the
array of branch statuses (0 for a pending branch, null for one that did not
run); its status:

| mode         | RESOLVED when              | fails when (with that status)   |
| ------------ | -------------------------- | ------------------------------- |
| `all`        | every branch resolved      | the first negative status       |
| `any`        | a branch resolved          | every branch negative (FAILED)  |
| `race`       | the first settled resolved | the first settled is negative   |
| `allSettled` | every branch has a status  | never                           |

Once the job is settled no later branch runs, and a branch still waiting is
left as it is (its job stays PENDING). A branch is a non-empty chain; with no
branch at all the job resolves at once with `[]`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import PENDING, Status

Statuses = Sequence[int | None]


class Config(NodeConfig):
    mode: Literal["all", "any", "race", "allSettled"] = "all"


def _all(statuses: Statuses) -> int:
    failed = next((s for s in statuses if s is not None and s < PENDING), None)
    if failed is not None:
        return failed
    if all(s == Status.RESOLVED for s in statuses):
        return Status.RESOLVED
    return PENDING


def _any(statuses: Statuses) -> int:
    if any(s == Status.RESOLVED for s in statuses):
        return Status.RESOLVED
    if any(s is None or s == PENDING for s in statuses):
        return PENDING
    return Status.FAILED


def _race(statuses: Statuses) -> int:
    if any(s == Status.RESOLVED for s in statuses):
        return Status.RESOLVED
    failed = next((s for s in statuses if s is not None and s < PENDING), None)
    return PENDING if failed is None else failed


def _all_settled(statuses: Statuses) -> int:
    return PENDING if any(not s for s in statuses) else Status.RESOLVED


class _Mode:
    def __init__(self, next_: Callable[[int], bool], status: Callable[[Statuses], int]) -> None:
        self.next = next_  # whether the branch after one that ended so may start
        self.status = status  # the job's status for the branch statuses so far


MODES: dict[str, _Mode] = {
    "all": _Mode(lambda previous: previous >= PENDING, _all),
    "any": _Mode(lambda previous: previous <= PENDING, _any),
    "race": _Mode(lambda previous: previous == PENDING, _race),
    "allSettled": _Mode(lambda previous: True, _all_settled),
}


class Parallel(Instruction):
    node_type = "parallel"
    config_type = Config

    def branch_indexes(self, config: Config) -> frozenset[str] | None:
        return None  # "1".."n", checked in prepare

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        for index in sorted(branches):
            if not index.isdigit():
                raise NodeError(
                    "", f'branch "{index}" is not a number; parallel branches are "1".."n"'
                )

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        mode = MODES[node.config.mode]
        indexes = sorted((i for i, chain in node.branches.items() if chain), key=int)
        statuses: list[int | None] = [None] * len(indexes)
        if not indexes:
            job.status, job.result = Status.RESOLVED, []
            return
        job.status, job.result = PENDING, list(statuses)
        run.commit(job)
        for position, index in enumerate(indexes):
            status = int(await run.run_branch(node, index))
            statuses[position] = status
            job.result = list(statuses)
            outcome = mode.status(statuses)
            if outcome != PENDING:
                job.status = outcome
                return
            run.commit(job)
            if not mode.next(status):
                break
        job.status = PENDING  # a branch waits: so does the job (and the execution)
