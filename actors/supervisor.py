"""`WorkflowSupervisor`: one per enabled workflow key. Consumes the key's inbox
stream in batches and hands the events to the execution-actor pool; an entry is
acknowledged by the execution's final write (or its durable wait), never before.
It also moves the key's due delay timers into that inbox, so a waiting execution
resumes like any other event.

On (re)start it first replays its own pending entries: those whose execution is
already final are acknowledged, the rest run again (the executor joins a run
still in progress). It keeps going until its workflow is disabled, its inbox is
empty and no delay timer waits, then exits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import ray

from actors import heap, pool
from actors.metrics import MetricsBuffer
from engine.logs import configure as configure_logs
from engine.settings import Settings
from engine.status import is_final
from store.batching import PipelineBatcher
from store.connection import connect
from store.executions import ExecutionLog
from store.inbox import Entry, Inbox
from store.keys import Keys

log = logging.getLogger("rayhook.supervisor")

CONSUMER = "supervisor"  # one consumer name: a restarted supervisor owns the same PEL
READ_BLOCK_MS = 1000
RECHECK_SECONDS = 2.0
RETRY_SECONDS = 0.5
STALE_MS = 30_000
TIMER_SECONDS = 0.5  # how often due delay timers are moved into the inbox
#: After a read of fewer than LINGER_BELOW entries, wait this long before the
#: next one: a trickle then travels in batches, not one Ray call per event
#: (with many workflows each one's share of the traffic is a trickle).
LINGER_SECONDS = 0.05
LINGER_BELOW = 32
MAX_QUICK_RETRIES = 5


class WorkflowSupervisor:
    """Attributes: `key` (the workflow key), `inflight` (entry ids being run),
    counters `dispatched`/`finished`, `stopping` (set by `stop` or when the
    workflow is no longer enabled; cleared by `start`) and `draining` (a
    shutdown: read nothing new)."""

    def __init__(self, settings: Settings, key: str) -> None:
        configure_logs()
        self.settings = settings
        self.key = key
        self.keys = Keys(settings.namespace)
        self.redis = connect(settings.redis_url)
        self.inbox = Inbox(self.redis, self.keys, PipelineBatcher(self.redis))
        self.log = ExecutionLog(self.redis, self.keys, self.inbox.batcher)
        self.executors = pool.executors(settings)
        self.metrics = MetricsBuffer(self.redis, self.keys)
        self.metrics.actor_started(f"WorkflowSupervisor {key}")
        self.inflight: set[str] = set()
        self.dispatched = 0
        self.finished = 0
        self.stopping = False
        self.draining = False
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._attempts: dict[str, int] = {}
        self._main = asyncio.get_running_loop().create_task(self._run())
        heap.freeze()

    # -- control (called by the ingress) ------------------------------------------

    async def start(self) -> str:
        """Keep (or resume) consuming: the workflow is enabled."""
        self.stopping = False
        return self.key

    async def stats(self) -> dict[str, int | bool]:
        return {
            "inflight": len(self.inflight),
            "dispatched": self.dispatched,
            "finished": self.finished,
            "stopping": self.stopping,
        }

    async def stop(self) -> None:
        """Finish what was accepted, then exit (the workflow was disabled)."""
        self.stopping = True

    async def drain(self, timeout: float) -> int:
        """Stop reading new entries and wait up to `timeout` s for running ones;
        the number still running. Unread entries stay in the inbox for the next
        start (used by a graceful shutdown of the whole stack)."""
        self.draining = True
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(self.inflight)

    # -- the consumer loop ----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.inbox.ensure_group(self.key)
                await self._recover()
                await self._consume()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor %s: consumer loop failed; retrying", self.key)
                await asyncio.sleep(RETRY_SECONDS)
        await self._wait_inflight()
        log.info("supervisor %s: workflow disabled and inbox drained; exiting", self.key)
        ray.actor.exit_actor()

    async def _consume(self) -> None:
        last_check = last_timers = time.monotonic()
        while True:
            if time.monotonic() - last_check > RECHECK_SECONDS:
                last_check = time.monotonic()
                await self._check_enabled()
                await self._recover_stale()
            if self.draining:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            if time.monotonic() - last_timers > TIMER_SECONDS:
                last_timers = time.monotonic()
                await self.log.fire_timers(self.key, time.time() * 1000)
            if self.stopping and not self.inflight and await self._idle():
                await self._check_enabled()
                if self.stopping:
                    return
            room = self.settings.max_inflight - len(self.inflight)
            if room <= 0:
                self._capacity.clear()
                try:
                    await asyncio.wait_for(self._capacity.wait(), RECHECK_SECONDS)
                except TimeoutError:
                    pass
                continue
            entries = await self.inbox.read_new(
                self.key, CONSUMER, min(room, self.settings.inbox_batch), READ_BLOCK_MS
            )
            if self.draining:  # drain began during the read: these run after a restart
                continue
            self._dispatch(entries)
            if 0 < len(entries) < LINGER_BELOW:
                await asyncio.sleep(LINGER_SECONDS)

    async def _idle(self) -> bool:
        """No entry to run and no timer to fire: a disabled workflow's supervisor
        may go (a waiting delay keeps it, so the delay still fires on time)."""
        if await self.inbox.backlog(self.key):
            return False
        return not await self.redis.zcard(self.keys.timers(self.key))

    async def _check_enabled(self) -> None:
        self.stopping = not await self.redis.hexists(self.keys.enabled, self.key)

    async def _recover(self) -> None:
        """After a (re)start: every entry still pending for this consumer runs
        again, unless its execution is already final."""
        after = "0"
        while True:
            entries = await self.inbox.read_pending(self.key, CONSUMER, 1000, after)
            if not entries:
                return
            after = entries[-1].id
            await self._rerun(entries)

    async def _recover_stale(self) -> None:
        """Entries pending for a long time that nobody here runs (a write that
        failed after the run), and entries left by other consumers."""
        ids = await self.inbox.stale(self.key, CONSUMER, STALE_MS, 1000)
        entries = await self.inbox.claim(
            self.key, CONSUMER, [i for i in ids if i not in self.inflight], STALE_MS
        )
        entries += await self.inbox.claim_idle(self.key, CONSUMER, STALE_MS, 1000)
        await self._rerun([e for e in entries if e.id not in self.inflight])

    async def _rerun(self, entries: list[Entry]) -> None:
        if not entries:
            return
        runnable = [e for e in entries if e.execution_id is not None]
        statuses = await self.log.statuses([e.execution_id for e in runnable if e.execution_id])
        done = [e.id for e in entries if e.execution_id is None]
        again: list[Entry] = []
        for entry, status in zip(runnable, statuses, strict=True):
            if is_final(status):
                done.append(entry.id)
            else:
                again.append(entry)
        if done:
            log.warning(
                "supervisor %s: acknowledging %d final/unreadable entries", self.key, len(done)
            )
            await self.inbox.ack(self.key, done)
        if again:
            log.info("supervisor %s: re-running %d pending entries", self.key, len(again))
            self._dispatch(again)

    def _dispatch(self, entries: list[Entry]) -> None:
        by_executor: dict[int, list[Entry]] = defaultdict(list)
        unreadable: list[str] = []
        for entry in entries:
            if entry.execution_id is None:
                unreadable.append(entry.id)
                continue
            self.inflight.add(entry.id)
            by_executor[pool.executor_index(entry.execution_id, len(self.executors))].append(entry)
        if unreadable:
            log.error("supervisor %s: dropping %d unreadable entries", self.key, len(unreadable))
            task = asyncio.get_running_loop().create_task(self.inbox.ack(self.key, unreadable))
            self._track(task)
        for index, batch in by_executor.items():
            self.dispatched += len(batch)
            task = asyncio.get_running_loop().create_task(self._run_batch(index, batch))
            self._track(task)

    async def _run_batch(self, index: int, batch: list[Entry]) -> None:
        failed: list[Entry] = []
        try:
            while batch:
                try:
                    statuses = await self.executors[index].run_batch.remote(
                        [(e.id, e.payload) for e in batch]
                    )
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                    # The executor died mid-batch and Ray is restarting it: send it
                    # again what did not finish (its entries are still pending).
                    log.warning(
                        "supervisor %s: executor %d unavailable (%s); retrying",
                        self.key,
                        index,
                        type(exc).__name__,
                    )
                    await asyncio.sleep(RETRY_SECONDS)
                    batch = await self._unfinished(batch)
                    continue
                except Exception:
                    log.exception("supervisor %s: batch failed on executor %d", self.key, index)
                    failed = batch
                    break
                # None: the execution could not be recorded; a status (final, or 0
                # for a durably waiting execution) means its entry was settled.
                self.finished += sum(1 for s in statuses if s is not None)
                failed = [e for e, s in zip(batch, statuses, strict=True) if s is None]
                break
        finally:
            for entry in batch:
                self.inflight.discard(entry.id)
            self._capacity.set()
        if failed:
            await self._retry_later(failed)

    async def _unfinished(self, batch: list[Entry]) -> list[Entry]:
        """The entries of `batch` not yet settled. An entry leaves the stream in
        the step that makes its execution final (or durably waiting), so the
        stream, not the status, says so: a final execution's status leaves
        Redis once the history writer has moved it."""
        present = await self.inbox.present(self.key, [e.id for e in batch])
        self.finished += len(batch) - len(present)
        return [e for e in batch if e.id in present]

    async def _retry_later(self, entries: list[Entry]) -> None:
        """Entries whose execution could not be finished (the store was away):
        run them again soon, a few times, then leave them to stale recovery."""
        again = []
        for entry in entries:
            attempts = self._attempts.get(entry.id, 0) + 1
            if attempts <= MAX_QUICK_RETRIES:
                self._attempts[entry.id] = attempts
                again.append(entry)
            else:
                self._attempts.pop(entry.id, None)
        if again:
            await asyncio.sleep(RETRY_SECONDS * self._attempts[again[0].id])
            self._dispatch([e for e in again if e.id not in self.inflight])

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_inflight(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


RemoteWorkflowSupervisor = ray.remote(WorkflowSupervisor)
