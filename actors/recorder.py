"""`Recorder`: the write that ends a run of an execution. In one atomic step
(`store/scripts/execution_save.lua`) it stores the execution's state with its
jobs, acknowledges its inbox entry, arms its timers (a delay, the next attempt
of `options.retry`), starts its async subflows and wakes its caller (when it is
one). A run that happened
is recorded rather than run again: the write is retried while Redis is away."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from datetime import UTC, datetime

import msgspec

from actors.journal import Journal
from actors.metrics import MetricsBuffer
from engine import sync_replies
from engine.interpreter import Wait
from engine.records import Execution, Reply, Resume, TriggerEvent, now
from engine.redaction import SecretMask
from engine.retry import backoff_seconds, exhausted, retries_after
from engine.status import NAMES, Status, is_final
from engine.validation import CompiledWorkflow
from store.errors import StoreError
from store.executions import ExecutionLog, Timer, encode
from store.sync_calls import ReplyTo

log = logging.getLogger("rayhook.executor")

_encode = msgspec.msgpack.Encoder().encode

#: How long a final write is retried while Redis is away (async / sync runs).
FINAL_WRITE_PATIENCE = 120.0
SYNC_WRITE_PATIENCE = 5.0
#: Finished executions remembered, to ack a redelivered entry without a rerun.
FINISHED_MEMORY = 20_000


class StoreUnavailable(Exception):
    """Redis stayed unreachable while an execution's outcome had to be written."""


class Recorder:
    """Attributes: the execution `log`, the `mask` of `$env` values, the actor's
    `metrics`, and `finished` (the executions recorded final here lately)."""

    def __init__(self, log: ExecutionLog, mask: SecretMask, metrics: MetricsBuffer) -> None:
        self.log = log
        self.mask = mask
        self.metrics = metrics
        self.finished: OrderedDict[str, Execution] = OrderedDict()

    def show(self, execution: Execution, journal: Journal) -> None:
        """A run long enough becomes visible as STARTED, with its jobs."""
        journal.go_live()
        self.log.show(self.mask.execution(execution))

    async def finish(
        self,
        execution: Execution,
        event: TriggerEvent,
        workflow: CompiledWorkflow | None,
        reply: Reply | None,
        journal: Journal,
        count_run: bool,
        waits: list[Wait] | None = None,
        starts: list[tuple[str, bytes]] | None = None,
        reply_to: ReplyTo | None = None,
    ) -> tuple[Execution, Reply | None]:
        """Write the run's end; `starts` are the async subflows it started,
        queued only now, with the wait that expects their end. A sync call's
        reply is published to `reply_to` by the same write."""
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
        execution, encoded = (
            self._stored(execution) if keep else (self.mask.execution(execution), None)
        )
        timers = [_timer(execution, wait) for wait in waits or () if wait.fire_at is not None]
        if retry is not None:
            timers.append(retry)
        caller = caller_resume(execution, event) if final else None
        queue = [*(starts or ()), *([caller] if caller else [])]
        patience = FINAL_WRITE_PATIENCE if event.entry is not None else SYNC_WRITE_PATIENCE
        deadline = time.monotonic() + patience
        jobs = journal.take()
        while True:
            publish = None
            if reply_to is not None:
                timeout = workflow.options.timeout if workflow is not None else 0
                answer = _encode(sync_replies.finished(execution, reply, timeout))
                publish = (reply_to.channel, reply_to.message(answer))
            try:
                stored = await self.log.save(
                    execution,
                    entry=entry,
                    jobs=jobs,
                    count_run=count_run,
                    timers=timers,
                    queue=queue,
                    keep=keep,
                    publish=publish,
                    encoded=encoded,
                )
                if reply_to is not None:
                    reply_to.sent = stored
                break
            except (StoreError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable("the execution log is unavailable; retry later") from exc
                await asyncio.sleep(0.2)
            except (ValueError, TypeError, RecursionError) as exc:
                # A result that cannot be encoded must not make the run unrecordable
                # (it would run again, repeating its effects): record it as ERROR.
                log.error("execution %s: results could not be stored: %s", execution.id, exc)
                execution.status, execution.output, encoded = Status.ERROR, None, None
                execution.error = f"its results could not be stored ({type(exc).__name__})"
                for job in jobs:
                    job.result = None
        if final:
            started = execution.startedAt or execution.createdAt
            seconds = ((execution.finishedAt or now()) - started).total_seconds()
            self.metrics.execution(execution.key, execution.status, seconds)
            self.finished[execution.id] = msgspec.structs.replace(
                execution, context=None, output=None
            )
            if len(self.finished) > FINISHED_MEMORY:
                self.finished.popitem(last=False)
        return execution, reply

    def _stored(self, execution: Execution) -> tuple[Execution, bytes | None]:
        """The execution as stored (kept), without `$env` values, and its JSON. It is
        encoded once and that JSON searched for the secrets: only one holding
        some is walked (and its JSON left to the save). A context is a few KB,
        encoding it twice was a measurable part of an execution's CPU."""
        try:
            data = encode(execution)
        except (ValueError, TypeError, OverflowError, RecursionError):
            return self.mask.execution(execution), None  # the save reports it
        if self.mask.found_in(data):
            return self.mask.execution(execution), None
        return execution, data

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
        execution.status = Status.STARTED
        execution.retryAt = datetime.fromtimestamp(fire_at / 1000, UTC)
        event = _later(execution.id, execution.key, execution.workflowId)
        event.retry = execution.attempt + 1
        member = f"{execution.id}|attempt{execution.attempt + 1}"
        return Timer(fire_at=fire_at, member=member, event=_encode(event))


def _timer(execution: Execution, wait: Wait) -> Timer:
    """The durable timer of a waiting delay job."""
    resume = _later(execution.id, execution.key, execution.workflowId)
    resume.resume = Resume(jobId=wait.job, status=wait.status, result=wait.result)
    assert wait.fire_at is not None
    return Timer(fire_at=wait.fire_at, member=f"{execution.id}|{wait.job}", event=_encode(resume))


def caller_resume(execution: Execution, event: TriggerEvent) -> tuple[str, bytes] | None:
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
    resume = _later(parent.executionId, parent.key, parent.workflowId)
    resume.resume = Resume(jobId=parent.jobId, status=outcome, result=execution.output)
    return parent.key, _encode(resume)


def _later(execution_id: str, key: str, workflow_id: int) -> TriggerEvent:
    """An event that continues an existing execution (a resume, a retry)."""
    return TriggerEvent(
        id=execution_id,
        key=key,
        workflowId=workflow_id,
        context={},
        createdAt=time.time() * 1000,
    )
