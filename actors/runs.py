"""`Runs`: the runs of executions in one execution actor, from start (or resume,
or the next attempt) to the write that ends them, many at once as asyncio
tasks.

Starting a run is idempotent by execution id: a redelivered event joins the run
already in progress here, and one whose execution this actor recorded final is
only acknowledged."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from typing import Any

from actors.journal import Journal
from actors.metrics import MetricsBuffer
from actors.recorder import Recorder
from engine.definition import DefinitionError
from engine.effects import Effects
from engine.interpreter import Interpreter, ReplayDiverged
from engine.records import Execution, Job, Reply, TriggerEvent, execution_of, now
from engine.redaction import SecretMask
from engine.settings import Settings
from engine.status import PENDING, Reason, Status, is_final
from engine.validation import CompiledWorkflow, compile_workflow
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.sync_calls import ReplyTo
from store.workflows import NotFound, WorkflowStore

log = logging.getLogger("rayhook.executor")

#: How long an execution may run before its STARTED state is written; shorter
#: ones are written once, final (most webhook workflows finish in < 1 ms).
STARTED_WRITE_DELAY = 0.05
_CACHE_SIZE = 512

Outcome = tuple[Execution, Reply | None]


class Runs:
    """Attributes: `settings`, the stores, the `effects` nodes reach the world
    through, the `recorder` that ends runs, a cache of compiled versions, and
    the executions running here by id."""

    def __init__(
        self,
        settings: Settings,
        *,
        log: ExecutionLog,
        inbox: Inbox,
        workflows: WorkflowStore,
        effects: Effects,
        metrics: MetricsBuffer,
        mask: SecretMask,
    ) -> None:
        self.settings = settings
        self.log = log
        self.inbox = inbox
        self.workflows = workflows
        self.effects = effects
        self.metrics = metrics
        self.mask = mask
        self.recorder = Recorder(log, mask, metrics)
        self._compiled: OrderedDict[int, CompiledWorkflow] = OrderedDict()
        self._running: dict[str, asyncio.Task[Outcome]] = {}
        #: the task of each execution while it interprets: what `cancel` interrupts
        self._interpreting: dict[str, asyncio.Task[Any]] = {}
        self._canceled: set[str] = set()
        #: async subflows each run started: queued with the run's end, by parent id
        self.starts: dict[str, list[tuple[str, bytes]]] = {}

    async def execute(self, event: TriggerEvent, reply_to: ReplyTo | None = None) -> Outcome:
        """Run the execution an event starts (or continues); its end. A sync
        call's reply goes to `reply_to` with the write of that end."""
        done = self.recorder.finished.get(event.id)
        if done is not None and event.entry is not None:
            # A redelivered inbox entry of an execution finished here (possibly
            # deleted since, by deleteExecutionOnStatus): only ack it.
            await self.inbox.ack(event.key, [event.entry])
            return done, None
        task = self._running.get(event.id)
        if task is not None and event.resume is not None:
            # An execution resumes only once its previous run has been recorded.
            await asyncio.wait([task])
            task = None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._execute_once(event, reply_to))
            self._running[event.id] = task
            task.add_done_callback(functools.partial(self._forget, event.id, task))
        return await asyncio.shield(task)

    async def cancel(self, execution_id: str) -> bool:
        """Abort a running execution (reason `manual_cancel`); False if it is not
        running here. One already finishing is let finish (its end is recorded)."""
        task = self._running.get(execution_id)
        if task is None:
            return False
        interpreting = self._interpreting.get(execution_id)
        if interpreting is not None:
            self._canceled.add(execution_id)
            interpreting.cancel()
        await asyncio.wait([task])
        return True

    async def settled(
        self, event: TriggerEvent, execution: Execution | None = None, status: object = None
    ) -> tuple[Execution, None]:
        """An event with nothing (left) to do: acknowledged. The execution as
        known, or a stub in `status`."""
        if event.entry is not None:
            await self.inbox.ack(event.key, [event.entry])
        if execution is None:
            known = status if isinstance(status, int) else None
            execution = execution_of(event, context=None, status=known)
        return execution, None

    def compiled(self, version_id: int) -> CompiledWorkflow | None:
        return self._compiled.get(version_id)

    async def workflow(
        self, version_id: int, *, counted: bool = False
    ) -> tuple[CompiledWorkflow, bool]:
        """The compiled version, and whether the run still has to be counted.

        On a miss the run is counted first, then the definition read: an edit
        racing with this run is refused (see WorkflowStore). A cached version is
        frozen already, so its run is counted with the final write. `counted`:
        the run was counted before (a resume, a retry, a subflow's caller)."""
        compiled = self._compiled.get(version_id)
        if compiled is not None:
            self._compiled.move_to_end(version_id)
            return compiled, not counted
        if not counted:
            await self.log.mark_executed(version_id)
        version = await self.workflows.get(version_id)
        compiled = compile_workflow(version)
        self._compiled[version_id] = compiled
        if len(self._compiled) > _CACHE_SIZE:
            self._compiled.popitem(last=False)
        return compiled, False

    # -- the three ways a run starts ------------------------------------------------

    def _forget(self, execution_id: str, task: object, _done: object) -> None:
        if self._running.get(execution_id) is task:
            del self._running[execution_id]

    async def _unrunnable(
        self,
        execution: Execution,
        event: TriggerEvent,
        journal: Journal,
        exc: Exception,
        reply_to: ReplyTo | None = None,
    ) -> Outcome:
        """Record ERROR for a run whose version is gone or no longer valid."""
        execution.status, execution.error = Status.ERROR, str(exc)
        return await self.recorder.finish(
            execution, event, None, None, journal, False, reply_to=reply_to
        )

    async def _execute_once(self, event: TriggerEvent, reply_to: ReplyTo | None) -> Outcome:
        if event.resume is not None:
            return await self._resume(event)
        if event.retry is not None:
            return await self._retry(event)
        execution = execution_of(event, status=Status.STARTED, startedAt=now())
        journal = Journal(self.log, self.mask)
        try:
            workflow, count_run = await self.workflow(event.workflowId)
        except (NotFound, DefinitionError) as exc:
            return await self._unrunnable(execution, event, journal, exc, reply_to)
        if workflow.options.retry is not None:
            self.metrics.count("attempts", execution.key)
        interpreter = self._interpreter(workflow, execution, journal)
        return await self._run(
            execution, event, workflow, interpreter, journal, count_run, reply_to
        )

    async def _resume(self, event: TriggerEvent) -> Outcome:
        """Continue a waiting execution: its job `event.resume.jobId` has ended."""
        assert event.resume is not None
        execution, jobs = await self.log.get_with_jobs(event.id) or (None, [])
        waiting = next((j for j in jobs if j.id == event.resume.jobId), None)
        if execution is None or is_final(execution.status) or waiting is None or waiting.status:
            # Already resumed (a timer or a submission delivered twice), or gone.
            return await self.settled(event, execution)
        execution.status = Status.STARTED
        earlier = [j for j in jobs if j.attempt < execution.attempt]
        journal = Journal(self.log, self.mask)
        try:
            workflow, _ = await self.workflow(execution.workflowId, counted=True)
        except (NotFound, DefinitionError) as exc:
            return await self._unrunnable(execution, event, journal, exc)
        interpreter = self._interpreter(
            workflow,
            execution,
            journal,
            history=[j for j in jobs if j.attempt == execution.attempt],
            resolutions={event.resume.jobId: (event.resume.status, event.resume.result)},
            job_offset=_last_sequence(earlier),
        )
        return await self._run(execution, event, workflow, interpreter, journal, False)

    async def _retry(self, event: TriggerEvent) -> Outcome:
        """Run attempt `event.retry` of an execution whose previous attempt failed
        (`options.retry`): from its first node, on the same context; its earlier
        attempts' jobs stay. The attempt runs once: only an execution waiting for
        it (or whose run of it crashed) runs it."""
        assert event.retry is not None
        attempt = event.retry
        execution, jobs = await self.log.get_with_jobs(event.id) or (None, [])
        waiting_for_it = execution is not None and (
            (execution.attempt == attempt - 1 and execution.retryAt is not None)
            or (execution.attempt == attempt and execution.retryAt is None)  # crashed in it
        )
        if execution is None or is_final(execution.status) or not waiting_for_it:
            return await self.settled(event, execution)
        execution.attempt, execution.status, execution.retryAt = attempt, Status.STARTED, None
        execution.error = execution.reason = execution.output = None
        execution.waiting, execution.startedAt = [], now()
        journal = Journal(self.log, self.mask)
        try:
            workflow, _ = await self.workflow(execution.workflowId, counted=True)
        except (NotFound, DefinitionError) as exc:
            return await self._unrunnable(execution, event, journal, exc)
        self.metrics.count("attempts", execution.key)
        earlier = [j for j in jobs if j.attempt < attempt]
        interpreter = self._interpreter(
            workflow, execution, journal, job_offset=_last_sequence(earlier)
        )
        return await self._run(execution, event, workflow, interpreter, journal, False)

    def _interpreter(
        self,
        workflow: CompiledWorkflow,
        execution: Execution,
        journal: Journal,
        *,
        history: list[Job] | None = None,
        resolutions: dict[str, tuple[int, Any]] | None = None,
        job_offset: int = 0,
    ) -> Interpreter:
        return Interpreter(
            workflow,
            execution,
            env=self.settings.env,
            sink=journal.record,
            effects=self.effects,
            history=history,
            resolutions=resolutions,
            job_offset=job_offset,
        )

    # -- running it -------------------------------------------------------------------

    async def _run(
        self,
        execution: Execution,
        event: TriggerEvent,
        workflow: CompiledWorkflow,
        interpreter: Interpreter,
        journal: Journal,
        count_run: bool,
        reply_to: ReplyTo | None = None,
    ) -> Outcome:
        started = asyncio.get_running_loop().call_later(
            STARTED_WRITE_DELAY, self.recorder.show, execution, journal
        )
        timeout = workflow.options.timeout / 1000 if workflow.options.timeout > 0 else None
        # The interpreter runs in this task, not a task of its own (a task per
        # execution less): `cancel` and the timeout interrupt this task while it
        # interprets, and only then.
        this = asyncio.current_task()
        assert this is not None
        self._interpreting[execution.id] = this
        try:
            async with asyncio.timeout(timeout):
                execution.status = await interpreter.run()
        except TimeoutError:
            interpreter.abort()
            execution.status, execution.reason = Status.ABORTED, Reason.TIMEOUT
        except asyncio.CancelledError:
            if execution.id not in self._canceled:
                raise  # the actor is going away: the inbox entry stays pending
            self._canceled.discard(execution.id)
            this.uncancel()  # handled: the end is recorded as usual
            interpreter.abort()
            execution.status, execution.reason = Status.ABORTED, Reason.MANUAL_CANCEL
        except ReplayDiverged as exc:
            interpreter.abort()
            execution.status, execution.error = Status.ERROR, str(exc)
        except Exception as exc:  # an engine bug must still end the execution
            log.exception("execution %s crashed", execution.id)
            interpreter.abort()
            execution.status, execution.error = Status.ERROR, f"internal error: {exc}"
        finally:
            started.cancel()
            self._interpreting.pop(execution.id, None)
        execution.output = interpreter.output  # a resumed run replayed earlier outputs
        for job in interpreter.jobs:
            if job.status != PENDING and not interpreter.replayed(job):
                self.metrics.job(job.nodeType, (job.updatedAt - job.startedAt).total_seconds())
        waits = interpreter.waits if execution.status == Status.STARTED else []
        execution.waiting = [wait.job for wait in waits]
        return await self.recorder.finish(
            execution,
            event,
            workflow,
            interpreter.reply,
            journal,
            count_run,
            waits,
            self.starts.pop(execution.id, None),
            reply_to,
        )


def _last_sequence(jobs: list[Job]) -> int:
    """The highest job sequence number among `jobs` (0 for none)."""
    return max((int(j.id.rpartition("-")[2]) for j in jobs), default=0)
