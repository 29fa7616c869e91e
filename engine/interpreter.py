"""The interpreter: walks a compiled workflow for one execution.

Chains run in order; a branching node runs a branch chain through
`run_branch` and decides what its outcome means; only a RESOLVED job lets a
chain continue, any other status ends the chain with that status (and so the
execution, unless a branching node handles it: a loop by its `exit`, a
parallel by its `mode`). A condition whose branch did not resolve passes that
status up to the chain around it (`bubble`), as NocoBase's condition does.
`end` and `response` end the whole execution at once by raising
`ExecutionExit`. Every job change goes to the `sink` the caller supplies;
persisting it is the caller's effect, not ours.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, NoReturn

import msgspec

from engine.caps import DEFAULT_CAPS, Caps
from engine.effects import Effects
from engine.nodes.base import CompiledNode
from engine.records import Execution, Job, Reply, job_id, now
from engine.retry_on_fail import RETRIED, Tries
from engine.scope import SYSTEM
from engine.status import PENDING, Status
from engine.validation import CompiledWorkflow

JobSink = Callable[[Job], None]


def _assigned_by(job: Job) -> str | None:
    return job.meta.get("assignedBy") if isinstance(job.meta, dict) else None


#: How long the interpreter runs nodes before yielding to the event loop.
SLICE_SECONDS = 0.002
#: Loop iterations per loop node when neither the caller nor its settings say.
DEFAULT_LOOP_LIMIT = 10_000


class ReplayDiverged(Exception):
    """A resumed execution took another path than its recorded jobs (a condition
    that depends on the time, say): it cannot continue faithfully."""


class Wait(msgspec.Struct, kw_only=True, frozen=True):
    """What a waiting execution waits for: a timer (`fire_at`, epoch ms, after
    which `job` gets `status` and `result`) or an outside event (a person, a
    called workflow) for `job`."""

    job: str
    fire_at: float | None = None
    status: int = Status.RESOLVED
    result: Any = None


class ExecutionExit(Exception):
    """Raised by `end`/`response` (through `exit`) to stop the whole execution."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BranchEnded(Exception):
    """Raised by a branching node (through `bubble`) whose job is settled but
    whose branch ended in another status: the chain around it ends with that
    status, for the node above (a loop, a parallel) or the execution to handle."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _sequence(jid: str) -> int:
    return int(jid.rpartition("-")[2])


class _Recorded:
    """The jobs an earlier run of this execution recorded, met again on resume.

    Each node takes its recorded jobs in order (a node in a loop has one per
    iteration). Up to the first job given a new outcome (the frontier) the walk
    is the one the earlier run made, so those jobs are taken in their recorded
    order: one left behind means the run took another path. Past it parallel
    branches may interleave differently: a branch that waited goes on before
    the next branch's recorded jobs are met again. A job a `variable` node
    recorded for another node (`assignedBy`) is taken with that node's job.
    """

    def __init__(self, jobs: list[Job], resolved: set[str]) -> None:
        self.jobs = jobs
        self._index = {job.id: i for i, job in enumerate(jobs)}
        self.taken = [False] * len(jobs)
        self._lowest = 0  # no untaken job below this index
        self._by_node: dict[str, deque[int]] = {}
        for index, job in enumerate(jobs):
            if _assigned_by(job) is None:
                self._by_node.setdefault(job.nodeKey, deque()).append(index)
        self.frontier = min(
            (i for i, job in enumerate(jobs) if job.id in resolved), default=len(jobs)
        )
        self.last_sequence = max((_sequence(job.id) for job in jobs), default=0)

    def take(self, node_key: str) -> Job | None:
        """The next recorded job of `node_key`, or None when it has to run anew."""
        queue = self._by_node.get(node_key)
        index = queue[0] if queue else None
        lowest = self._lowest_untaken()
        if lowest is not None and lowest < min(
            self.frontier, len(self.jobs) if index is None else index
        ):
            raise ReplayDiverged(
                f"on resume, node {node_key!r} came where {self.jobs[lowest].nodeKey!r} ran before"
            )
        if queue is None or index is None:
            return None
        queue.popleft()
        self.taken[index] = True
        return self.jobs[index]

    def take_assigned(self, job: Job, by: str) -> list[Job]:
        """The jobs `by` recorded for other nodes right after its own `job`."""
        out: list[Job] = []
        index = self._index[job.id] + 1
        while index < len(self.jobs) and not self.taken[index]:
            side = self.jobs[index]
            if _assigned_by(side) != by:
                break
            self.taken[index] = True
            out.append(side)
            index += 1
        return out

    def _lowest_untaken(self) -> int | None:
        while self._lowest < len(self.jobs) and self.taken[self._lowest]:
            self._lowest += 1
        return self._lowest if self._lowest < len(self.jobs) else None


class Interpreter:
    """Runs one execution of one compiled workflow version.

    Attributes after `run`: `reply` (what a Response node built, if any),
    `output` (the last Output node's value), `jobs` (every job, in order),
    `waits` (what a STARTED execution waits for).

    Resuming a waiting execution replays it: the workflow is walked again and
    each node meets its recorded job of this attempt in `history` (see
    `_Recorded`); a leaf node already recorded keeps its outcome and is not run
    again (no effect repeats), branching nodes decide again from the same
    outcomes, and a job in `resolutions` takes the outcome it was given. New
    jobs are numbered after the recorded ones, and after `job_offset`: the jobs
    of the execution's earlier attempts (`options.retry`).

    A node with `retryOnFail` runs again after a failed try, inside its job
    (`engine/retry_on_fail.py`).
    """

    def __init__(
        self,
        workflow: CompiledWorkflow,
        execution: Execution,
        *,
        env: Mapping[str, str],
        sink: JobSink,
        effects: Effects | None = None,
        loop_limit: int | None = None,
        history: list[Job] | None = None,
        resolutions: Mapping[str, tuple[int, Any]] | None = None,
        job_offset: int = 0,
    ) -> None:
        self.workflow = workflow
        self._resolutions = dict(resolutions or {})
        self._history = _Recorded(history or [], set(self._resolutions))
        self._sequence = max(self._history.last_sequence, job_offset)
        self._replayed: set[str] = set()
        self._resolved: set[str] = set()
        self.waits: list[Wait] = []
        self._effects = effects
        if loop_limit is None:  # the executor's settings reach us through its effects
            loop_limit = getattr(getattr(effects, "settings", None), "loop_limit", None)
        self._loop_limit = DEFAULT_LOOP_LIMIT if loop_limit is None else loop_limit
        settings = getattr(effects, "settings", None)
        self.caps = DEFAULT_CAPS if settings is None else Caps.from_settings(settings)
        self._scopes: dict[str, Any] = {}
        self.execution = execution
        self.sink = sink
        self.reply: Reply | None = None
        self.output: Any = None
        self.jobs: list[Job] = []
        self._results: dict[str, Any] = {}
        self._open: dict[str, Job] = {}
        self._slice_start = perf_counter()
        self._strict: set[str] = set()  # nodes in a try that is not their last
        self.scope: dict[str, Any] = {
            "$context": execution.context,
            "$jobsMapByNodeKey": self._results,
            "$scopes": self._scopes,
            "$system": SYSTEM,
            "$env": env,
        }

    async def run(self) -> int:
        """Run to the end; the execution's final status (STARTED: it waits)."""
        try:
            return await self.run_chain(self.workflow.nodes)
        except ExecutionExit as stop:
            return stop.status

    async def run_chain(self, chain: tuple[CompiledNode, ...]) -> int:
        for node in chain:
            if perf_counter() - self._slice_start > SLICE_SECONDS:
                # Long CPU-bound runs give the loop a turn: other executions
                # progress and a timeout can interrupt this one.
                await asyncio.sleep(0)
                self._slice_start = perf_counter()
            job = self._new_job(node.key, node.type)
            if job.id in self._replayed:
                outcome = self._replay(node, job)
                if outcome is not None:
                    if outcome != Status.RESOLVED:
                        return outcome
                    continue
            try:
                if node.retry is None:
                    await self._try(node, job)
                else:
                    await self._retrying(node, job, Tries(node.retry))
            except ExecutionExit:
                if job.id in self._open:  # not yet recorded in its final state
                    self.commit(job)
                raise
            except BranchEnded as ended:
                if job.id in self._open:
                    self.commit(job)
                return ended.status
            self.commit(job)
            if job.status != Status.RESOLVED:
                # PENDING here means the node waits: the execution stays STARTED.
                return int(job.status)
        return Status.RESOLVED

    async def _try(self, node: CompiledNode, job: Job) -> None:
        """Run the node once; an exception of its own makes the job ERROR."""
        try:
            await node.instruction.run(node, job, self)
        except (ExecutionExit, BranchEnded, ReplayDiverged):
            raise
        except Exception as exc:  # a node bug or failed effect: the job errs
            job.status, job.result = Status.ERROR, {"message": str(exc) or type(exc).__name__}

    async def _retrying(self, node: CompiledNode, job: Job, tries: Tries) -> None:
        """`retryOnFail`: run the node until a try does not fail or none is left,
        waiting between tries (a timeout or cancel interrupts the wait)."""
        while True:
            tries.begin(job)
            last = tries.count >= tries.policy.max_tries
            if not last:
                self._strict.add(node.key)  # its ignoreFail waits for the last try
            try:
                await self._try(node, job)
            finally:
                self._strict.discard(node.key)
            if last or job.status not in RETRIED:
                tries.ended(job)
                return
            tries.failed(job)
            job.status = PENDING
            self.commit(job)
            await asyncio.sleep(tries.policy.wait)

    def _replay(self, node: CompiledNode, job: Job) -> int | None:
        """A node met again on resume: the status its recorded (or newly given)
        outcome says, or None when its instruction has to run again (a branching
        node deciding from its branches' recorded jobs)."""
        resolution = self._resolutions.pop(job.id, None)
        if resolution is not None:
            self._resolved.add(job.id)
            job.status, job.result = resolution
            self.commit(job)
            return int(job.status)
        if node.branches:
            return None
        self._results[job.nodeKey] = job.result
        node.instruction.replay(node, job, self)
        for side in self._history.take_assigned(job, node.key):
            self._take_history(side)
            self._results[side.nodeKey] = side.result
        if job.status == PENDING:  # still waiting
            self._keep_waiting(job)
        else:
            self._open.pop(job.id, None)
        return int(job.status)

    def replayed(self, job: Job) -> bool:
        """Whether `job` was recorded by an earlier run of this execution."""
        return job.id in self._replayed and job.id not in self._resolved

    def _take_history(self, job: Job) -> None:
        self.jobs.append(job)
        self._replayed.add(job.id)

    def _keep_waiting(self, job: Job) -> None:
        meta = job.meta if isinstance(job.meta, dict) else {}
        self.waits.append(
            Wait(
                job=job.id,
                fire_at=meta.get("fireAt"),
                status=meta.get("endStatus", Status.RESOLVED),
                result=job.result,
            )
        )

    # -- what instructions may call (engine.nodes.base.RunContext) --------------

    def wait(
        self, job: Job, *, fire_at: float | None = None, status: int = Status.RESOLVED
    ) -> None:
        """The node in `job` waits: the execution stops here, STARTED, until a
        timer fires (`fire_at`, epoch ms; the job then gets `status` and keeps its
        result) or an outside event resolves it."""
        job.status = PENDING
        if fire_at is not None:
            job.meta = {**(job.meta or {}), "fireAt": fire_at, "endStatus": status}
        self._keep_waiting(job)

    @property
    def execution_record(self) -> Execution:
        return self.execution

    @property
    def effects(self) -> Effects:
        if self._effects is None:
            raise RuntimeError("this node needs integrations, which this run was not given")
        return self._effects

    def render(self, node: CompiledNode) -> dict[str, Any]:
        config: dict[str, Any] = node.template.render(self.scope)
        field = node.instruction.ignore_fail_field
        if field is not None and node.key in self._strict:
            config = {**config, field: False}  # a try that is not the last fails
        return config

    def commit(self, job: Job) -> None:
        job.updatedAt = now()
        if job.status != PENDING and (oversized := self.caps.oversized_result(job.result)):
            job.status, job.result = Status.ERROR, oversized
        self._results[job.nodeKey] = job.result
        if job.status == PENDING:
            self._open[job.id] = job
        else:
            self._open.pop(job.id, None)
        self.sink(job)

    async def run_branch(self, node: CompiledNode, index: str) -> int:
        return await self.run_chain(node.branches[index])

    def exit(self, status: int) -> NoReturn:
        raise ExecutionExit(status)

    def bubble(self, status: int) -> NoReturn:
        raise BranchEnded(status)

    def respond(self, reply: Reply) -> None:
        if self.reply is None:
            self.reply = reply

    def set_output(self, value: Any) -> None:
        self.output = value

    def assign(self, node_key: str, value: Any, by: str | None = None) -> None:
        target = self.workflow.node(node_key)
        job = self._new_job(target.key, target.type, recorded=False)
        job.status, job.result = Status.RESOLVED, value
        if by is not None:
            job.meta = {"assignedBy": by}  # replay knows it belongs to `by`
        self.commit(job)

    @property
    def loop_limit(self) -> int:
        return self._loop_limit

    def set_scope(self, node_key: str, values: Mapping[str, Any]) -> None:
        self._scopes[node_key] = values

    def clear_scope(self, node_key: str) -> None:
        self._scopes.pop(node_key, None)

    # -- for the caller -----------------------------------------------------------

    def abort(self) -> None:
        """Mark every job still running ABORTED (timeout, cancel)."""
        for job in list(self._open.values()):
            job.status = Status.ABORTED
            self.commit(job)

    def _new_job(self, node_key: str, node_type: str, *, recorded: bool = True) -> Job:
        """The job of `node_key` met now: its recorded one on resume, else a new one.
        (`recorded=False`: a job a node adds for another one, always new.)"""
        earlier = self._history.take(node_key) if recorded else None
        if earlier is not None:
            self._take_history(earlier)
            self._open[earlier.id] = earlier
            return earlier
        stamp = now()
        self._sequence += 1
        job = Job(
            id=job_id(self.execution.id, self._sequence),
            executionId=self.execution.id,
            nodeKey=node_key,
            nodeType=node_type,
            status=PENDING,
            attempt=self.execution.attempt,
            startedAt=stamp,
            updatedAt=stamp,
        )
        self.jobs.append(job)
        self._open[job.id] = job
        return job
