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
import time
from collections import OrderedDict
from datetime import UTC, datetime

import msgspec
import ray
from redis.exceptions import RedisError

from engine.definition import DefinitionError
from engine.effects import Effects
from engine.interpreter import Interpreter
from engine.records import Execution, Job, Reply, TriggerEvent, now
from engine.settings import Settings
from engine.status import Reason, Status, is_final
from engine.trigger import sync_reply
from engine.validation import CompiledWorkflow, compile_workflow
from store.batching import PipelineBatcher
from store.connection import connect, load_scripts
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.keys import Keys
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
#: How long a sync reply left for `reply_of` is kept if nobody fetches it.
REPLY_KEEP_SECONDS = 300.0
#: Finished executions remembered, to ack a redelivered entry without a rerun.
_FINISHED_MEMORY = 20_000


class StoreUnavailable(Exception):
    """Redis stayed unreachable while an execution's outcome had to be written."""


class _Journal:
    """The job records of one execution. Kept here and written together with
    the execution's final state (one Redis call for a short run), unless the run
    lasts long enough to be shown as STARTED: from then on each job is written
    as it changes."""

    def __init__(self, log: ExecutionLog) -> None:
        self.log = log
        self.pending: dict[str, Job] = {}
        self.live = False

    def record(self, job: Job) -> None:
        if self.live:
            self.log.save_job(job)
        else:
            self.pending[job.id] = job

    def go_live(self) -> None:
        self.live = True
        for job in self.pending.values():
            self.log.save_job(job)
        self.pending.clear()

    def take(self) -> list[Job]:
        jobs = list(self.pending.values())
        self.pending.clear()
        return jobs


class ExecutionActor:
    """Attributes: `settings`, `index` (position in the pool), the Redis-backed
    `log` and `workflows`, a cache of compiled versions, and the executions
    running here by id."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.settings = settings
        self.index = index
        self.redis = connect(settings.redis_url)
        keys = Keys(settings.namespace)
        self.batcher = PipelineBatcher(self.redis)
        self.log = ExecutionLog(self.redis, keys, self.batcher)
        self.inbox = Inbox(self.redis, keys, self.batcher)
        self.effects = Effects(settings)
        self.workflows = WorkflowStore(self.redis, keys)
        self._compiled: OrderedDict[int, CompiledWorkflow] = OrderedDict()
        self._running: dict[str, asyncio.Task[tuple[Execution, Reply | None]]] = {}
        self._interpreting: dict[str, asyncio.Future[int]] = {}
        self._canceled: set[str] = set()
        self._finished: OrderedDict[str, Execution] = OrderedDict()
        self._replies: dict[str, asyncio.Task[bytes]] = {}
        self._started = asyncio.get_running_loop().create_task(load_scripts(self.redis))

    async def ready(self) -> int:
        await self._started
        return self.index

    async def run_sync(self, payload: bytes) -> bytes:
        """Run a sync webhook's execution; the msgpack-encoded `Reply`."""
        return await self._sync_reply(_decode_event(payload))

    async def run_sync_batch(self, payloads: list[bytes], wait: float) -> list[bytes | None]:
        """Run several sync executions (a gunicorn worker's micro-batch): the
        replies of those done within `wait` seconds, None for the others, whose
        replies `reply_of` delivers when they end. A slow workflow thus never
        holds up the fast replies batched with it."""
        tasks = []
        for payload in payloads:
            event = _decode_event(payload)
            task = asyncio.get_running_loop().create_task(self._sync_reply(event))
            tasks.append((event.id, task))
        await asyncio.wait([t for _, t in tasks], timeout=wait)
        out: list[bytes | None] = []
        for execution_id, task in tasks:
            if task.done():
                out.append(task.result())
            else:
                self._replies[execution_id] = task
                task.add_done_callback(functools.partial(self._expire_reply, execution_id))
                out.append(None)
        return out

    async def reply_of(self, execution_id: str) -> bytes:
        """The reply of a sync execution `run_sync_batch` left running."""
        task = self._replies.pop(execution_id, None)
        if task is None:
            reply = Reply(status=503, message="the reply was lost; retry", executionId=execution_id)
            return _encode(reply)
        return await task

    def _expire_reply(self, execution_id: str, _task: object) -> None:
        # A reply nobody fetched (its ingress worker died) is dropped after a while.
        asyncio.get_running_loop().call_later(
            REPLY_KEEP_SECONDS, self._replies.pop, execution_id, None
        )

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
        runs = [
            self._acknowledge(e, status) if is_final(status) else self._execute(e)
            for e, status in zip(events, known, strict=True)
        ]
        results = await asyncio.gather(*runs, return_exceptions=True)
        out: list[int | None] = []
        for result in results:
            if isinstance(result, BaseException):
                log.error("execution failed to run: %s", result)
                out.append(None)
            else:
                out.append(result[0].status)
        return out

    async def _acknowledge(self, event: TriggerEvent, status: object) -> tuple[Execution, None]:
        if event.entry is not None:
            await self.inbox.ack(event.key, [event.entry])
        stub = Execution(
            id=event.id,
            key=event.key,
            workflowId=event.workflowId,
            status=status if isinstance(status, int) else None,
            createdAt=_from_ms(event.createdAt),
        )
        return stub, None

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
        if task is None:
            task = asyncio.get_running_loop().create_task(self._execute_once(event))
            self._running[event.id] = task
            task.add_done_callback(functools.partial(self._forget, event.id))
        return await asyncio.shield(task)

    def _forget(self, execution_id: str, _task: object) -> None:
        self._running.pop(execution_id, None)

    async def _execute_once(self, event: TriggerEvent) -> tuple[Execution, Reply | None]:
        execution = Execution(
            id=event.id,
            key=event.key,
            workflowId=event.workflowId,
            status=Status.STARTED,
            context=event.context,
            manually=event.manually,
            replayOf=event.replayOf,
            createdAt=_from_ms(event.createdAt),
            startedAt=now(),
        )
        journal = _Journal(self.log)
        try:
            workflow, count_run = await self._workflow(event.workflowId)
        except (NotFound, DefinitionError) as exc:
            execution.status, execution.error = Status.ERROR, str(exc)
            return await self._finish(execution, event, None, None, journal, False)
        interpreter = Interpreter(
            workflow, execution, env=self.settings.env, sink=journal.record, effects=self.effects
        )
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
        except Exception as exc:  # an engine bug must still end the execution
            log.exception("execution %s crashed", execution.id)
            interpreter.abort()
            execution.status, execution.error = Status.ERROR, f"internal error: {exc}"
        finally:
            started.cancel()
            self._interpreting.pop(execution.id, None)
        execution.output = interpreter.output
        return await self._finish(execution, event, workflow, interpreter.reply, journal, count_run)

    def _show_started(self, execution: Execution, journal: _Journal) -> None:
        """A run past STARTED_WRITE_DELAY becomes visible as STARTED, with its jobs."""
        journal.go_live()
        self.log.show(execution)

    async def _finish(
        self,
        execution: Execution,
        event: TriggerEvent,
        workflow: CompiledWorkflow | None,
        reply: Reply | None,
        journal: _Journal,
        count_run: bool,
    ) -> tuple[Execution, Reply | None]:
        final = is_final(execution.status)
        if final:
            execution.finishedAt = now()
        entry = event.entry if final else None
        delete = (
            workflow is not None
            and final
            and execution.status in workflow.options.deleteExecutionOnStatus
        )
        # The run happened: keep trying to record it rather than run it again.
        patience = FINAL_WRITE_PATIENCE if event.entry is not None else SYNC_WRITE_PATIENCE
        deadline = time.monotonic() + patience
        jobs = journal.take()
        while True:
            try:
                if delete:
                    await self.log.delete(execution, entry=entry)
                else:
                    await self.log.save(execution, entry=entry, jobs=jobs, count_run=count_run)
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
            self._finished[execution.id] = msgspec.structs.replace(
                execution, context=None, output=None
            )
            if len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)
        return execution, reply

    async def _workflow(self, version_id: int) -> tuple[CompiledWorkflow, bool]:
        """The compiled version, and whether the run still has to be counted.

        On a miss the run is counted first, then the definition read: an edit
        racing with this run is refused (see WorkflowStore). A cached version is
        frozen already, so its run is counted with the final write."""
        compiled = self._compiled.get(version_id)
        if compiled is not None:
            self._compiled.move_to_end(version_id)
            return compiled, True
        await self.log.mark_executed(version_id)
        version = await self.workflows.get(version_id)
        compiled = compile_workflow(version)
        self._compiled[version_id] = compiled
        if len(self._compiled) > _CACHE_SIZE:
            self._compiled.popitem(last=False)
        return compiled, False


def _from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


RemoteExecutionActor = ray.remote(ExecutionActor)
