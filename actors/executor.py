"""`ExecutionActor`: runs executions from start to final status, many at once as
asyncio tasks, and records them in the execution log.

Pooled and long-lived (an actor is a process: creating one per request would cap
throughput at a few per second). Starting an execution is idempotent by
execution id: a redelivered event joins the run already in progress here, and an
event whose execution is already final is not run again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import msgspec
import ray
from redis.exceptions import RedisError

from actors import heap
from actors.consumer import InboxConsumer
from actors.metrics import MetricsBuffer
from actors.pool import executor_name
from engine.definition import DefinitionError
from engine.effects import Effects, SubflowOutcome
from engine.interpreter import Interpreter, ReplayDiverged, Wait
from engine.logs import configure as configure_logs
from engine.records import (
    Execution,
    Job,
    Parent,
    Reply,
    Resume,
    TriggerEvent,
    execution_of,
    new_execution_id,
    now,
)
from engine.redaction import SecretMask
from engine.retry import backoff_seconds, exhausted, retries_after
from engine.settings import Settings
from engine.status import NAMES, PENDING, Reason, Status, is_final
from engine.trigger import sync_reply
from engine.validation import CompiledWorkflow, compile_test_node, compile_workflow
from store.batching import PipelineBatcher
from store.connection import connect, load_scripts
from store.executions import ExecutionLog, Timer
from store.inbox import Entry, Inbox
from store.keys import Keys
from store.sync_calls import SyncCalls, SyncRequest
from store.workflows import NotFound, WorkflowStore

log = logging.getLogger("rayhook.executor")

_decode_event = msgspec.msgpack.Decoder(TriggerEvent).decode
_encode = msgspec.msgpack.Encoder().encode

#: How long an execution may run before its STARTED state is written; shorter
#: ones are written once, final (most webhook workflows finish in < 1 ms).
STARTED_WRITE_DELAY = 0.05
#: How long a final write is retried while Redis is away (async / sync runs).
FINAL_WRITE_PATIENCE = 120.0
SYNC_WRITE_PATIENCE = 5.0
_CACHE_SIZE = 512
#: A node test (`flow_nodes:test`) is cut after this long.
NODE_TEST_SECONDS = 60.0
#: Finished executions remembered, to ack a redelivered entry without a rerun.
_FINISHED_MEMORY = 20_000


class StoreUnavailable(Exception):
    """Redis stayed unreachable while an execution's outcome had to be written."""


class _Journal:
    """The job records of one run. Kept here and written together with the
    execution's final state (one Redis call for a short run); a run long enough
    to be shown as STARTED also writes each job as it changes. Those writes are
    not awaited (progress marks), so the final write carries every job of the
    run again: a mark lost to a Redis hiccup never loses a job."""

    def __init__(self, log: ExecutionLog, mask: SecretMask) -> None:
        self.log = log
        self.mask = mask
        self.pending: dict[str, Job] = {}
        self.live = False

    def record(self, job: Job) -> None:
        job = self.mask.job(job)  # what is stored never holds an $env value
        self.pending[job.id] = job
        if self.live:
            self.log.save_job(job)

    def go_live(self) -> None:
        self.live = True
        for job in self.pending.values():
            self.log.save_job(job)

    def take(self) -> list[Job]:
        jobs = list(self.pending.values())
        self.pending.clear()
        return jobs


class ExecutionActor:
    """Attributes: `settings`, `index` (position in the pool), the Redis-backed
    `log` and `workflows`, a cache of compiled versions, and the executions
    running here by id."""

    def __init__(self, settings: Settings, index: int) -> None:
        configure_logs(secrets=settings.env.values())
        self.settings = settings
        self.mask = SecretMask(settings.env.values())
        self.index = index
        self.redis = connect(settings.redis_url)
        keys = Keys(settings.namespace)
        self.batcher = PipelineBatcher(self.redis)
        self.log = ExecutionLog(self.redis, keys, self.batcher)
        self.inbox = Inbox(self.redis, keys, self.batcher)
        self.effects = Effects(settings, subflows=self)
        self.metrics = MetricsBuffer(self.redis, keys)
        self.metrics.actor_started(f"ExecutionActor {executor_name(index)}")
        self.workflows = WorkflowStore(self.redis, keys)
        self._compiled: OrderedDict[int, CompiledWorkflow] = OrderedDict()
        self._running: dict[str, asyncio.Task[tuple[Execution, Reply | None]]] = {}
        self._interpreting: dict[str, asyncio.Future[int]] = {}
        self._canceled: set[str] = set()
        self._finished: OrderedDict[str, Execution] = OrderedDict()
        self.consumer = InboxConsumer(executor_name(index), settings, self.inbox, self.log, self)
        loop = asyncio.get_running_loop()
        self.calls = SyncCalls(self.redis, keys)
        self._listening = asyncio.Event()
        self._answering: set[asyncio.Task[None]] = set()
        self._started = loop.create_task(load_scripts(self.redis))
        self._consuming = loop.create_task(self._consume())
        self._serving = loop.create_task(self._serve_sync_calls())
        heap.freeze()

    async def _consume(self) -> None:
        await self._started
        await self.consumer.run()

    async def ready(self) -> int:
        """Ready: scripts loaded and listening for sync calls."""
        await self._started
        await self._listening.wait()
        return self.index

    async def drain(self, timeout: float) -> int:
        """Stop reading the inboxes and wait up to `timeout` s for the executions
        read; how many still run (a graceful shutdown of the whole stack)."""
        return await self.consumer.drain(timeout)

    async def supervisors(self) -> list[dict[str, object]]:
        """The workflow supervisors awake here (operators: `supervisors:list`)."""
        return self.consumer.stats()

    async def quarantine(self, entry: Entry, deliveries: int) -> None:
        """Finalise an entry that was delivered `deliveries` times without its
        execution being recorded: each run ended this process (a V8 abort, say).
        Running it again would crash the executor forever, so it is recorded
        ERROR with reason `crashed_executor` (replayable by a person) instead."""
        event = entry.event
        if event is None:  # unreadable: the consumer drops those itself
            return
        waiting = await self.log.get(event.id) if event.resume is not None else None
        execution = waiting or execution_of(event)
        if is_final(execution.status):
            await self.inbox.ack(event.key, [entry.id])
            return
        execution.status, execution.reason = Status.ERROR, Reason.CRASHED_EXECUTOR
        execution.error = (
            f"quarantined: the executor's process ended {deliveries - 1} times while running "
            "it; it is not run again (replay it once the cause is fixed)"
        )
        execution.finishedAt = now()
        execution.waiting = []
        await self.log.save(
            self.mask.execution(execution),
            entry=entry.id,
            resume_caller=self._caller_resume(execution, event),
        )
        self.metrics.count("quarantined", event.key)
        log.error(
            "execution %s of %s quarantined after %d deliveries (reason crashed_executor)",
            event.id,
            event.key,
            deliveries,
        )

    async def run_sync(self, payload: bytes) -> bytes:
        """Run a sync webhook's execution; the msgpack-encoded `Reply`."""
        return await self._sync_reply(_decode_event(payload))

    async def _serve_sync_calls(self) -> None:
        """Answer the sync calls published to this executor (`store.sync_calls`),
        each as soon as its execution ends. The start is announced first: the
        ingress fails the calls a previous process of this executor took with it."""
        await self._started
        await self.calls.announce_start(self.index)
        async for request in self.calls.requests(self.index, self._listening):
            task = asyncio.get_running_loop().create_task(self._answer(request))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, request: SyncRequest) -> None:
        event = _decode_event(request.event)
        reply = await self._sync_reply(event)
        for attempt in range(3):
            try:
                await self.calls.answer(request.reply_to, event.id, reply)
                return
            except (RedisError, OSError) as exc:  # the caller answers 503 after its wait
                if attempt == 2:
                    log.warning("sync reply of %s could not be sent: %s", event.id, exc)
                await asyncio.sleep(0.2)

    async def _sync_reply(self, event: TriggerEvent) -> bytes:
        try:
            execution, reply = await self._execute(event)
        except StoreUnavailable as exc:
            return _encode(Reply(status=503, message=str(exc), executionId=event.id))
        timeout = 0
        workflow = self._compiled.get(event.workflowId)
        if workflow is not None:
            timeout = workflow.options.timeout
        answer = sync_reply(execution.status or 0, execution.reason, reply, timeout)
        if execution.error and answer.status >= 500:
            answer.message = execution.error
        answer.executionId = execution.id
        return _encode(answer)

    async def run_batch(self, entries: list[tuple[str, bytes]]) -> list[int | None]:
        """Run inbox entries (stream id, msgpack event); their final statuses.

        One status read for the whole batch first: an event whose execution is
        already final (a redelivery) is only acknowledged, never run again."""
        events = []
        for entry_id, payload in entries:
            event = _decode_event(payload)
            event.entry = entry_id or None
            events.append(event)
        known = await self.log.statuses([e.id for e in events])
        runs = [self._settle(e, status) for e, status in zip(events, known, strict=True)]
        results = await asyncio.gather(*runs, return_exceptions=True)
        out: list[int | None] = []
        for result in results:
            if isinstance(result, BaseException):
                log.error("execution failed to run: %s", result)
                out.append(None)
            else:
                out.append(result[0].status)
        return out

    def _settle(
        self, event: TriggerEvent, status: object
    ) -> Coroutine[Any, Any, tuple[Execution, Reply | None]]:
        if is_final(status):
            return self._settled(event, status=status)
        if status == Status.STARTED and event.resume is None and event.retry is None:
            return self._unless_waiting(event)
        return self._execute(event)

    async def _unless_waiting(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
        """A redelivered event of an execution shown as STARTED: one that waits
        (a delay, a person, a child) is settled, only a crashed run runs again."""
        execution = await self.log.get(event.id)
        if execution is not None and (execution.waiting or execution.retryAt is not None):
            return await self._settled(event, status=Status.STARTED)
        return await self._execute(event)

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

    async def test_node(
        self, node_type: str, config: dict[str, Any], variables: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one node's config once (`flow_nodes:test`) with `variables` as its
        scope; its job's status, result and log, or the definition errors."""
        mapped = variables.get("$jobsMapByNodeKey") or {}
        try:
            workflow = compile_test_node(node_type, config, mapped.keys())
        except DefinitionError as exc:
            return {"errors": exc.messages}
        execution = Execution(
            id=f"test-{new_execution_id()}",
            key="flow_nodes:test",
            workflowId=0,
            context=variables.get("$context") or {},
            createdAt=now(),
        )
        interpreter = Interpreter(
            workflow, execution, env=self.settings.env, sink=lambda job: None, effects=self.effects
        )
        interpreter.scope["$jobsMapByNodeKey"].update(mapped)
        interpreter.scope["$scopes"].update(variables.get("$scopes") or {})
        try:
            await asyncio.wait_for(interpreter.run(), NODE_TEST_SECONDS)
        except TimeoutError:
            interpreter.abort()
        job = interpreter.jobs[0]
        return {"status": job.status, "result": job.result, "log": job.log}

    async def run_one(self, payload: bytes) -> bytes:
        """Run a manual execution (`workflows:execute`); the JSON execution."""
        execution, _ = await self._execute(_decode_event(payload))
        return msgspec.json.encode(execution)

    # -- one execution ------------------------------------------------------------

    async def _execute(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
        done = self._finished.get(event.id)
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
            task = asyncio.get_running_loop().create_task(self._execute_once(event))
            self._running[event.id] = task
            task.add_done_callback(functools.partial(self._forget, event.id, task))
        return await asyncio.shield(task)

    def _forget(self, execution_id: str, task: object, _done: object) -> None:
        if self._running.get(execution_id) is task:
            del self._running[execution_id]

    async def _execute_once(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
        if event.resume is not None:
            return await self._resume(event)
        if event.retry is not None:
            return await self._retry(event)
        execution = execution_of(event, status=Status.STARTED, startedAt=now())
        journal = _Journal(self.log, self.mask)
        try:
            workflow, count_run = await self._workflow(event.workflowId)
        except (NotFound, DefinitionError) as exc:
            execution.status, execution.error = Status.ERROR, str(exc)
            return await self._finish(execution, event, None, None, journal, False)
        if workflow.options.retry is not None:
            self.metrics.count("attempts", execution.key)
        interpreter = Interpreter(
            workflow, execution, env=self.settings.env, sink=journal.record, effects=self.effects
        )
        return await self._run(execution, event, workflow, interpreter, journal, count_run)

    async def _resume(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
        """Continue a waiting execution: its job `event.resume.jobId` has ended."""
        assert event.resume is not None
        execution, jobs = await self.log.get_with_jobs(event.id) or (None, [])
        waiting = next((j for j in jobs if j.id == event.resume.jobId), None)
        if execution is None or is_final(execution.status) or waiting is None or waiting.status:
            # Already resumed (a timer or a submission delivered twice), or gone.
            return await self._settled(event, execution)
        execution.status = Status.STARTED
        earlier = [j for j in jobs if j.attempt < execution.attempt]
        journal = _Journal(self.log, self.mask)
        try:
            workflow, _ = await self._workflow(execution.workflowId, counted=True)
        except (NotFound, DefinitionError) as exc:
            execution.status, execution.error = Status.ERROR, str(exc)
            return await self._finish(execution, event, None, None, journal, False)
        interpreter = Interpreter(
            workflow,
            execution,
            env=self.settings.env,
            sink=journal.record,
            effects=self.effects,
            history=[j for j in jobs if j.attempt == execution.attempt],
            resolutions={event.resume.jobId: (event.resume.status, event.resume.result)},
            job_offset=_last_sequence(earlier),
        )
        return await self._run(execution, event, workflow, interpreter, journal, False)

    async def _retry(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
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
            return await self._settled(event, execution)
        execution.attempt, execution.status, execution.retryAt = attempt, Status.STARTED, None
        execution.error = execution.reason = execution.output = None
        execution.waiting, execution.startedAt = [], now()
        journal = _Journal(self.log, self.mask)
        try:
            workflow, _ = await self._workflow(execution.workflowId, counted=True)
        except (NotFound, DefinitionError) as exc:
            execution.status, execution.error = Status.ERROR, str(exc)
            return await self._finish(execution, event, None, None, journal, False)
        self.metrics.count("attempts", execution.key)
        interpreter = Interpreter(
            workflow,
            execution,
            env=self.settings.env,
            sink=journal.record,
            effects=self.effects,
            job_offset=_last_sequence([j for j in jobs if j.attempt < attempt]),
        )
        return await self._run(execution, event, workflow, interpreter, journal, False)

    async def _settled(
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

    async def _run(
        self,
        execution: Execution,
        event: TriggerEvent,
        workflow: CompiledWorkflow,
        interpreter: Interpreter,
        journal: _Journal,
        count_run: bool,
    ) -> tuple[Execution, Reply | None]:
        started = asyncio.get_running_loop().call_later(
            STARTED_WRITE_DELAY, self._show_started, execution, journal
        )
        timeout = workflow.options.timeout / 1000 if workflow.options.timeout > 0 else None
        run = asyncio.ensure_future(interpreter.run())
        self._interpreting[execution.id] = run  # what `cancel` interrupts
        try:
            execution.status = await asyncio.wait_for(run, timeout)
        except TimeoutError:
            interpreter.abort()
            execution.status, execution.reason = Status.ABORTED, Reason.TIMEOUT
        except asyncio.CancelledError:
            if execution.id not in self._canceled:
                raise  # the actor is going away: the inbox entry stays pending
            self._canceled.discard(execution.id)
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
        return await self._finish(
            execution, event, workflow, interpreter.reply, journal, count_run, waits
        )

    def _show_started(self, execution: Execution, journal: _Journal) -> None:
        """A run past STARTED_WRITE_DELAY becomes visible as STARTED, with its jobs."""
        journal.go_live()
        self.log.show(self.mask.execution(execution))

    async def _finish(
        self,
        execution: Execution,
        event: TriggerEvent,
        workflow: CompiledWorkflow | None,
        reply: Reply | None,
        journal: _Journal,
        count_run: bool,
        waits: list[Wait] | None = None,
    ) -> tuple[Execution, Reply | None]:
        execution = self.mask.execution(execution)  # stored without $env values
        retry = self._retry_if_due(execution, workflow)
        final = is_final(execution.status)
        if final:
            execution.finishedAt = now()
        # A final or durably waiting execution no longer needs its inbox entry.
        entry = event.entry if final or waits or retry else None
        # Not kept (options.keep, deleteExecutionOnStatus): forgotten in the same
        # step that acks its entry and resumes its caller.
        keep = (
            workflow is None
            or execution.status is None
            or not final
            or workflow.options.keeps(execution.status)
        )
        timers = [self._timer(execution, wait) for wait in waits or () if wait.fire_at is not None]
        if retry is not None:
            timers.append(retry)
        caller = self._caller_resume(execution, event) if final else None
        # The run happened: keep trying to record it rather than run it again.
        patience = FINAL_WRITE_PATIENCE if event.entry is not None else SYNC_WRITE_PATIENCE
        deadline = time.monotonic() + patience
        jobs = journal.take()
        while True:
            try:
                await self.log.save(
                    execution,
                    entry=entry,
                    jobs=jobs,
                    count_run=count_run,
                    timers=timers,
                    resume_caller=caller,
                    keep=keep,
                )
                break
            except (RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable("the execution log is unavailable; retry later") from exc
                await asyncio.sleep(0.2)
            except (ValueError, TypeError, RecursionError) as exc:
                # A result that cannot be encoded must not make the run unrecordable
                # (it would run again, repeating its effects): record it as ERROR.
                log.error("execution %s: results could not be stored: %s", execution.id, exc)
                execution.status, execution.output = Status.ERROR, None
                execution.error = f"its results could not be stored ({type(exc).__name__})"
                for job in jobs:
                    job.result = None
        if final:
            started = execution.startedAt or execution.createdAt
            seconds = ((execution.finishedAt or now()) - started).total_seconds()
            self.metrics.execution(execution.key, execution.status, seconds)
            self._finished[execution.id] = msgspec.structs.replace(
                execution, context=None, output=None
            )
            if len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)
        return execution, reply

    def _retry_if_due(
        self, execution: Execution, workflow: CompiledWorkflow | None
    ) -> Timer | None:
        """`options.retry`: an attempt that failed in a status of `on` with
        attempts left waits for the next one (STARTED, `retryAt`, a durable
        timer like a delay's); after the last attempt it is final and
        `exhausted`."""
        policy = workflow.options.retry if workflow is not None else None
        status = execution.status
        if policy is None or not is_final(status):
            return None
        if not retries_after(policy, status, execution.attempt):
            if exhausted(policy, status, execution.attempt):
                execution.exhausted = True
                self.metrics.count("exhausted", execution.key)
            return None
        delay = backoff_seconds(policy, execution.attempt, random.random())
        fire_at = time.time() * 1000 + delay * 1000
        log.info(
            "execution %s of %s: attempt %d ended %s; attempt %d in %.1f s",
            execution.id,
            execution.key,
            execution.attempt,
            NAMES.get(status, status),
            execution.attempt + 1,
            delay,
        )
        execution.status, execution.retryAt = Status.STARTED, _from_ms(fire_at)
        event = TriggerEvent(
            id=execution.id,
            key=execution.key,
            workflowId=execution.workflowId,
            context={},
            createdAt=time.time() * 1000,
            retry=execution.attempt + 1,
        )
        member = f"{execution.id}|attempt{execution.attempt + 1}"
        return Timer(fire_at=fire_at, member=member, event=_encode(event))

    def _timer(self, execution: Execution, wait: Wait) -> Timer:
        resume = TriggerEvent(
            id=execution.id,
            key=execution.key,
            workflowId=execution.workflowId,
            context={},
            createdAt=time.time() * 1000,
            resume=Resume(jobId=wait.job, status=wait.status, result=wait.result),
        )
        assert wait.fire_at is not None
        return Timer(
            fire_at=wait.fire_at, member=f"{execution.id}|{wait.job}", event=_encode(resume)
        )

    def _caller_resume(self, execution: Execution, event: TriggerEvent) -> tuple[str, bytes] | None:
        """The event that lets an async subflow's caller continue, or None."""
        parent = event.parent
        if parent is None:
            return None
        status = execution.status
        outcome = (
            Status.RESOLVED
            if status == Status.RESOLVED
            else (status if status is not None and status < 0 else Status.FAILED)
        )
        resume = TriggerEvent(
            id=parent.executionId,
            key=parent.key,
            workflowId=parent.workflowId,
            context={},
            createdAt=time.time() * 1000,
            resume=Resume(jobId=parent.jobId, status=outcome, result=execution.output),
        )
        return parent.key, _encode(resume)

    # -- subflows (engine.effects.SubflowRunner) ----------------------------------

    async def call(self, *, key: str, context: Any, parent: Execution, job: Job) -> SubflowOutcome:
        """Start the workflow `key` as a child of `parent`: a sync child runs here
        and its end is returned; an async child is queued in its inbox."""
        version = await self.workflows.enabled_version(key)
        if version is None:
            current = [v for v in await self.workflows.versions(key=key) if v.current]
            version = current[0] if current else None
        if version is None:
            raise LookupError(f"no workflow with key {key!r}")
        limit = version.options.stackLimit
        if parent.stack.count(key) + (parent.key == key) >= limit:
            raise RuntimeError(f"workflow {key!r} would call itself deeper than stackLimit {limit}")
        caller, _ = await self._workflow(parent.workflowId, counted=True)
        if caller.sync and not version.sync:
            raise RuntimeError(f"a sync workflow can only call sync workflows; {key!r} is async")
        child = TriggerEvent.start(
            key=version.key,
            workflowId=version.id,
            context=context if isinstance(context, dict) else {"value": context},
            parent=Parent(
                executionId=parent.id, jobId=job.id, key=parent.key, workflowId=parent.workflowId
            ),
            stack=[*parent.stack, parent.key],
        )
        if version.sync:
            execution, _ = await self._execute(child)
            return SubflowOutcome(
                executionId=child.id, status=execution.status, output=execution.output
            )
        await self.inbox.add(child)
        return SubflowOutcome(executionId=child.id, queued=True)

    async def _workflow(
        self, version_id: int, *, counted: bool = False
    ) -> tuple[CompiledWorkflow, bool]:
        """The compiled version, and whether the run still has to be counted.

        On a miss the run is counted first, then the definition read: an edit
        racing with this run is refused (see WorkflowStore). A cached version is
        frozen already, so its run is counted with the final write. `counted`:
        the run was counted before (a resume)."""
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


def _from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _last_sequence(jobs: list[Job]) -> int:
    """The highest job sequence number among `jobs` (0 for none)."""
    return max((int(j.id.rpartition("-")[2]) for j in jobs), default=0)


RemoteExecutionActor = ray.remote(ExecutionActor)
