"""`InboxConsumer`: an execution actor reads the inboxes of every active workflow
itself, in one XREADGROUP across their streams, and runs what it reads.

Every executor is a consumer (`executor:<i>`) of the inboxes' one consumer group,
so the workflows' events spread over the executors, and a trickle per workflow
still arrives in batches: a thousand workflows cost one blocking read per
executor, not a process each. No Ray call sits between an inbox and the run.

Per workflow, a `WorkflowSupervisor` (an object here) counts what runs and caps
it. The consumer also:
- after a (re)start, runs its own pending entries again (a crashed run). An
  entry whose executor died again after that (delivered more than
  `SUSPECT_AFTER` times) is a suspect: suspects run one at a time with nothing
  beside them, each named in Redis while it runs (`Inbox.mark_lone_run`), so
  that the next death blames exactly one entry. A blamed entry delivered more
  than `RAYHOOK_POISON_DELIVERIES` times is finalised ERROR
  (`crashed_executor`) instead of crashing its executor forever; the entries
  that merely shared its batches run on;
- keeps its long runs' entries from looking idle, and takes over entries other
  consumers left idle for `RAYHOOK_STALE_AFTER` (a dead executor, a pool that
  shrank);
- moves due delay and retry timers into their inboxes (`timers:due`);
- stops reading a disabled workflow's inbox once it has drained.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from actors.supervisor import WorkflowSupervisor
from engine.settings import Settings
from store.errors import GroupMissing
from store.executions import ExecutionLog
from store.inbox import BlockingReader, Entry, Inbox

log = logging.getLogger("rayhook.consumer")

#: How long one read waits for an entry. Long, to keep an idle executor (and
#: Redis, which parses a read naming every inbox) quiet: the chores wake the read
#: as soon as what it should name changes (a new inbox, freed capacity).
READ_BLOCK_MS = 5000
CHORE_SECONDS = 0.5  # the chores' tick: due timers, the inboxes-changed counter
#: The tick at rest (no supervisor awake): each tick wakes the executor and Redis,
#: and the chores were most of an idle executor's own CPU. A timer due sooner
#: cuts the wait short, so timers stay on time; a new workflow's inbox is found
#: within this.
QUIET_CHORE_SECONDS = 1.0
REFRESH_SECONDS = 10.0  # the set of inboxes is read again this often regardless
MAINTAIN_SECONDS = 5.0  # keep-alives, claims of idle entries, drained inboxes
KEEP_ALIVE_AFTER = 10.0  # a run longer than this has its entry's idle time reset
RETRY_SECONDS = 0.5
MAX_QUICK_RETRIES = 5
#: Executions one executor runs at once from the inboxes, all workflows together.
TOTAL_INFLIGHT = 8000
#: A pending entry delivered more times than this was run again after its
#: executor died, and the executor died again: it runs alone from then on.
SUSPECT_AFTER = 2


class Runner(Protocol):
    """What runs the entries read (the ExecutionActor)."""

    async def run_batch(
        self, entries: list[tuple[str, bytes]], *, first_delivery: bool = False
    ) -> list[int | None]: ...

    async def quarantine(self, entry: Entry, deliveries: int) -> None: ...


class InboxConsumer:
    """Attributes: `name` (its consumer name), `keys` (the inboxes it reads: the
    enabled workflows' and the draining ones'), `supervisors` (awake, by key),
    `draining` (a shutdown: read nothing new)."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        inbox: Inbox,
        log: ExecutionLog,
        runner: Runner,
    ) -> None:
        self.name = name
        self.settings = settings
        self.inbox = inbox
        self.log = log
        self.runner = runner
        self.keys: list[str] = []
        self._enabled: set[str] = set()
        self.supervisors: dict[str, WorkflowSupervisor] = {}
        self.draining = False
        self._grouped: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._attempts: dict[str, int] = {}
        self.reader = BlockingReader(inbox)
        self._room = asyncio.Event()  # a run ended, or the inboxes changed
        self._changes = 0  # the inboxes-changed counter at the last refresh
        self._refresh_due = False
        self._read_stale = False  # the waiting read names the wrong inboxes
        self._read_partial = False  # the waiting read left out full inboxes
        self._waking = False
        self._alone: list[tuple[str, Entry]] = []  # suspects, to run one at a time
        self._alone_ids: set[tuple[str, str]] = set()
        self._alone_task: asyncio.Task[None] | None = None

    # -- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Consume until the actor goes away: the reads here, the chores (timers,
        the set of inboxes, maintenance) in a task of their own, so a long read
        never delays a timer. A failed round is retried."""
        while True:
            try:
                await self._refresh()
                await self._recover()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: consumer start failed; retrying", self.name)
                self._grouped.clear()
                await asyncio.sleep(RETRY_SECONDS)
        chores = asyncio.ensure_future(self._chores())
        try:
            await self._reads()
        finally:
            chores.cancel()
            await asyncio.gather(chores, return_exceptions=True)
            await self.reader.close()

    async def _reads(self) -> None:
        while True:
            try:
                if self.draining:
                    await self._wait_for_room(CHORE_SECONDS)
                    continue
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: consumer read failed; retrying", self.name)
                self._grouped.clear()  # an inbox may have been dropped (NOGROUP)
                self._refresh_due = True
                await asyncio.sleep(RETRY_SECONDS)

    async def _chores(self) -> None:
        clock = _Clock()
        clock.mark("refresh")
        while True:
            pause = CHORE_SECONDS
            try:
                now_ms = time.time() * 1000
                glance = await self.inbox.glance(now_ms)
                await self._check_changes(clock, glance.changes)
                for key in glance.due:
                    await self.log.fire_timers(key, now_ms)
                if clock.due("maintain", MAINTAIN_SECONDS):
                    await self._maintain()
                await self._wake_stale_read()
                if not glance.due:
                    pause = self._pause(glance.next_due_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: consumer chores failed; retrying", self.name)
                self._grouped.clear()
                self._refresh_due = True
            await asyncio.sleep(pause)

    def _pause(self, next_due_ms: float | None) -> float:
        """Until the next tick: CHORE_SECONDS while supervisors are awake (or a
        read must be woken), else QUIET_CHORE_SECONDS or until the next timer
        is due, whichever is sooner."""
        if self.supervisors or self._alone or self._read_stale or self.draining:
            return CHORE_SECONDS
        pause = QUIET_CHORE_SECONDS
        if next_due_ms is not None:
            pause = min(pause, max(0.01, next_due_ms / 1000 - time.time()))
        return pause

    async def drain(self, timeout: float) -> int:
        """Stop reading and wait up to `timeout` s for what runs; how many still
        run. Unread entries stay in their inboxes for the next start."""
        self.draining = True
        deadline = time.monotonic() + timeout
        while self._inflight() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self._inflight()

    def stats(self) -> list[dict[str, object]]:
        return [s.stats() for s in self.supervisors.values()]

    # -- reading ------------------------------------------------------------------------

    async def _check_changes(self, clock: _Clock, changes: int) -> None:
        """Read the set of inboxes again when the inboxes-changed counter moved
        (or every REFRESH_SECONDS, should a write have bypassed the scripts)."""
        periodic = clock.due("refresh", REFRESH_SECONDS)
        if self._refresh_due or periodic or changes != self._changes:
            self._refresh_due = False
            self._changes = changes
            await self._refresh()

    async def _refresh(self) -> None:
        enabled, draining = await self.inbox.active_keys()
        keys = sorted(enabled | draining)
        self._enabled = enabled
        fresh = [k for k in keys if k not in self._grouped]
        if fresh:
            await self.inbox.ensure_groups(fresh)
            self._grouped.update(fresh)
        if keys != self.keys:
            self.keys = keys
            self._read_stale = True
            self._room.set()

    async def _read(self) -> None:
        if self._alone:  # suspects run alone: read nothing new until they are done
            await self._wait_for_room(CHORE_SECONDS)
            return
        cap = self.settings.max_inflight
        readable = [k for k in self.keys if self._supervisor_room(k, cap) > 0]
        self._read_stale = False
        if not readable or self._inflight() >= TOTAL_INFLIGHT:
            await self._wait_for_room(READ_BLOCK_MS / 1000)
            return
        self._read_partial = len(readable) < len(self.keys)
        count = max(1, min(self.settings.inbox_batch, cap))
        try:
            found = await self.reader.read(self.name, readable, count, READ_BLOCK_MS)
        except GroupMissing:
            self._grouped.clear()  # an inbox was dropped and created again
            await self._refresh()
            return
        finally:
            self._read_partial = False
        if self.draining:  # the drain began during the read: these run after a restart
            return
        for key, entries in found.items():
            self._dispatch(key, entries, first_delivery=True)

    async def _wait_for_room(self, timeout: float) -> None:
        """Nothing to read (every inbox at its cap, or a drain): wait until a
        run ends or the inboxes change."""
        self._room.clear()
        try:
            await asyncio.wait_for(self._room.wait(), timeout)
        except TimeoutError:
            pass

    def _room_freed(self) -> None:
        self._room.set()
        if self._read_partial:  # the waiting read left out an inbox that was full
            self._read_stale = True
            if not self._waking:
                self._spawn(self._wake_stale_read())

    async def _wake_stale_read(self) -> None:
        """Cut the waiting read short if it names the wrong inboxes (the set
        changed, or one it left out has room again). Called again every chore
        tick, so a read that began just after a change is woken at the next."""
        if not self._read_stale or self.reader.blocked_since is None or self._waking:
            return
        self._waking = True
        try:
            waited = time.monotonic() - self.reader.blocked_since
            if not await self.reader.wake() and waited > 2 * CHORE_SECONDS:
                self.reader.forget()  # reconnected meanwhile: another id
        finally:
            self._waking = False

    def _supervisor_room(self, key: str, cap: int) -> int:
        supervisor = self.supervisors.get(key)
        return cap if supervisor is None else supervisor.room(cap)

    def _wake(self, key: str) -> WorkflowSupervisor:
        supervisor = self.supervisors.get(key)
        if supervisor is None:
            supervisor = self.supervisors[key] = WorkflowSupervisor(key)
            log.debug("%s woke (on %s)", supervisor.name, self.name)
        return supervisor

    def _dispatch(self, key: str, entries: list[Entry], *, first_delivery: bool = False) -> None:
        """Run entries under their workflow's supervisor. `first_delivery`: read
        as new (`>`), never handed to any consumer before."""
        supervisor = self._wake(key)
        unreadable = [e.id for e in entries if e.execution_id is None]
        if unreadable:
            log.error("%s: dropping %d unreadable entries", supervisor.name, len(unreadable))
            self._spawn(self.inbox.ack(key, unreadable))
        batch = [
            e for e in entries if e.execution_id is not None and e.id not in supervisor.inflight
        ]
        if batch:
            supervisor.started([e.id for e in batch])
            self._spawn(self._run(key, batch, first_delivery))

    async def _run(self, key: str, batch: list[Entry], first_delivery: bool = False) -> None:
        supervisor = self._wake(key)
        failed: list[Entry] = []
        finished = 0
        try:
            statuses = await self.runner.run_batch(
                [(e.id, e.payload or b"") for e in batch], first_delivery=first_delivery
            )
            # None: the execution could not be recorded; a status (final, or 0 for
            # a durably waiting execution) means its entry was settled.
            finished = sum(1 for s in statuses if s is not None)
            failed = [e for e, s in zip(batch, statuses, strict=True) if s is None]
        finally:
            supervisor.ended([e.id for e in batch], finished=finished)
            self._room_freed()
        if failed:
            await self._retry_later(key, failed)

    async def _retry_later(self, key: str, entries: list[Entry]) -> None:
        """Entries whose execution could not be recorded (the store was away):
        run them again soon, a few times, then leave them to idle claims."""
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
            self._dispatch(key, again)

    # -- recovery ---------------------------------------------------------------------

    async def _recover(self) -> None:
        """After a (re)start: this consumer's pending entries, in every inbox it
        reads, run again (the executor joins or skips what is settled)."""
        after = dict.fromkeys(self.keys, "0")
        while after:
            found = await self.inbox.read_own(self.name, after, 1000)
            for key in list(after):
                entries = found.get(key, [])
                if not entries:
                    del after[key]
                    continue
                after[key] = entries[-1].id
                log.info("%s: running %d pending entries of %s again", self.name, len(entries), key)
                await self._rerun(key, entries)

    async def _rerun(self, key: str, entries: list[Entry]) -> None:
        """Entries delivered before (their executor died, or stalled): a poison
        one is quarantined, suspects queue to run alone, the rest run now."""
        counts = await self.inbox.deliveries(key, [e.id for e in entries])
        blamed = await self.inbox.lone_runs()
        runnable = []
        for entry in entries:
            if entry.id not in counts or (key, entry.id) in self._alone_ids:
                continue  # settled meanwhile, or queued here already
            deliveries = counts[entry.id]
            crashed_alone = (key, entry.id) in blamed
            if entry.execution_id is None:
                runnable.append(entry)  # unreadable: dropped by _dispatch
            elif crashed_alone and deliveries > self.settings.poison_deliveries:
                await self.runner.quarantine(entry, deliveries)
                self._wake(key).quarantined += 1
            elif crashed_alone or deliveries > SUSPECT_AFTER:
                self._queue_alone(key, entry)
            else:
                runnable.append(entry)
        if runnable:
            self._dispatch(key, runnable)

    def _queue_alone(self, key: str, entry: Entry) -> None:
        self._alone.append((key, entry))
        self._alone_ids.add((key, entry.id))
        if self._alone_task is None or self._alone_task.done():
            self._alone_task = asyncio.ensure_future(self._run_alone())

    async def _run_alone(self) -> None:
        """Run the suspects one by one once nothing else runs (reads wait
        meanwhile), each named in Redis for the time of its run: should this
        process end, the next start knows which entry it was running."""
        try:
            while self._alone and not self.draining:
                if self._inflight():
                    await self._wait_for_room(CHORE_SECONDS)
                    continue
                key, entry = self._alone[0]
                try:
                    await self.inbox.mark_lone_run(self.name, key, entry.id)
                except Exception:
                    log.exception("%s: cannot mark a lone run; retrying", self.name)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self._wake(key).started([entry.id])
                try:
                    await self._run(key, [entry])
                    await self.inbox.clear_lone_run(self.name)
                except Exception:  # left pending: an idle claim runs it later
                    log.exception("%s: lone run of %s failed", self.name, entry.id)
                self._alone.pop(0)
                self._alone_ids.discard((key, entry.id))
        finally:
            self._room.set()

    async def _maintain(self) -> None:
        """Keep-alives of long runs and of queued suspects, claims of idle
        entries, drained inboxes, retired supervisors."""
        for key, supervisor in list(self.supervisors.items()):
            long_runs = supervisor.running_longer_than(KEEP_ALIVE_AFTER)
            if long_runs:
                await self.inbox.keep_alive(key, self.name, long_runs)
            if supervisor.may_retire(self.settings.supervisor_linger):
                del self.supervisors[key]
                log.debug("%s retired (on %s)", supervisor.name, self.name)
        queued: dict[str, list[str]] = {}
        for key, entry in self._alone:  # suspects waiting for their lone run
            queued.setdefault(key, []).append(entry.id)
        for key, ids in queued.items():
            await self.inbox.keep_alive(key, self.name, ids)
        if not self.draining:
            stale = self.settings.stale_ms
            claimed = await self.inbox.claim_idle_many(self.keys, self.name, stale, 100)
            for key, entries in claimed.items():
                running = self.supervisors.get(key)
                entries = [e for e in entries if running is None or e.id not in running.inflight]
                if entries:
                    log.warning("%s: took over %d idle entries of %s", self.name, len(entries), key)
                    await self._rerun(key, entries)
        await self._drop_drained()

    async def _drop_drained(self) -> None:
        # The enabled set as last read: fresh enough, since drain_done.lua checks
        # it again, and a disable moves the inboxes-changed counter (a refresh).
        for key in self.keys:
            if key in self._enabled or self._inflight(key):
                continue
            if await self.inbox.drain_done(key):
                log.info("inbox of %s drained; no longer read", key)

    # -- bookkeeping --------------------------------------------------------------------

    def _inflight(self, key: str | None = None) -> int:
        if key is not None:
            supervisor = self.supervisors.get(key)
            return len(supervisor.inflight) if supervisor else 0
        return sum(len(s.inflight) for s in self.supervisors.values())

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Clock:
    """When each periodic chore last ran."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def due(self, chore: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(chore, 0.0) >= every:
            self._last[chore] = now
            return True
        return False

    def mark(self, chore: str) -> None:
        """`chore` was just done."""
        self._last[chore] = time.monotonic()
