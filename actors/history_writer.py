"""`HistoryWriter`: moves final executions from Redis to the SQL history
(SPEC §9), in batches, and applies retention.

One per deployment: a child process of execution actor 0 (`executor:0`),
`rayhook::HistoryWriter` in `ps` (`WriterProcess`). Ray restarts it with that
actor, it dies with it, and neither a SQL stall nor its own work holds up the
executor's loop or GIL. It was a Ray actor of its own until every Ray actor
process was measured to cost ~0.7 % of a core while idle (Ray's core worker
wakes every 10 ms) and ~100 MB (docs/performance.md, "Idle cost"); a plain
process costs neither.
Its loop takes entries from the history stream, upserts them in one SQL
transaction, and only then forgets their Redis copies; a crash between the two
leaves the entries pending and the next start writes them again (the upsert
makes that harmless). While the database is down it keeps retrying: executions
wait in Redis and stay visible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import setproctitle
import uvloop

from actors import heap
from actors.metrics import MetricsBuffer, restarted_by_ray
from deploy.processes import die_with
from engine.logs import configure as configure_logs
from engine.settings import Settings
from store import migrate
from store.connection import connect
from store.errors import GroupMissing, StoreError
from store.history import HistoryStore, HistoryUnavailable
from store.history_queue import HistoryQueue, QueuedExecution
from store.keys import Keys
from store.metrics import ClusterFigures

log = logging.getLogger("rayhook.history")
T = TypeVar("T")

CONSUMER = "writer"  # one name: a restarted writer owns the same pending entries
BATCH = 1000
READ_BLOCK_MS = 1000
CLAIM_IDLE_MS = 60_000
OWN_PENDING_SECONDS = 5.0
RETENTION_SECONDS = 60.0
PARTITIONS_SECONDS = 3600.0
MAX_BACKOFF = 5.0
PROCESS_TITLE = "rayhook::HistoryWriter"  # as `ps` shows it
#: After a read that found less than half a batch, the next waits this long, so
#: that under load a batch holds hundreds of executions: each SQL transaction
#: and Redis round trip is then shared by more of them (docs/performance.md).
GATHER_SECONDS = 0.2


class HistoryWriter:
    """Attributes: `settings`, the Redis-side `queue`, the SQL `history`, `up`
    (the last SQL write succeeded) and `last_error` (logged once per outage);
    what it moves and prunes is counted in the cluster's metrics."""

    def __init__(self, settings: Settings, *, restarted: bool = False) -> None:
        self.settings = settings
        self.redis = connect(settings.redis_url)
        self.keys = Keys(settings.namespace)
        self.queue = HistoryQueue(self.redis, self.keys)
        self.history = HistoryStore(settings.history_database)
        self.metrics = MetricsBuffer(ClusterFigures(self.redis, self.keys))
        self.metrics.actor_started("HistoryWriter", restarted=restarted)
        self.up = False
        self.last_error: str | None = None
        heap.freeze()

    async def run(self) -> None:
        """Move and retain until cancelled (or an unexpected error, which the
        caller logs and starts again from)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._run())
            tasks.create_task(self._retain())

    # -- the move -------------------------------------------------------------------

    async def _run(self) -> None:
        await self._migrated()
        await self._retry_redis(self.queue.ensure_group)
        last_own, last_claim = 0.0, time.monotonic()
        while True:
            try:
                # What this writer took and did not finish: after a (re)start, and
                # now and then, for a read whose reply never arrived (the client
                # retried it on a fresh connection, leaving its entries pending).
                if time.monotonic() - last_own > OWN_PENDING_SECONDS:
                    last_own = time.monotonic()
                    while pending := await self.queue.pending(CONSUMER, BATCH):
                        await self._move(pending)
                if time.monotonic() - last_claim > CLAIM_IDLE_MS / 1000:
                    last_claim = time.monotonic()
                    await self._move(await self.queue.claim_idle(CONSUMER, CLAIM_IDLE_MS, BATCH))
                taken = await self.queue.take(CONSUMER, BATCH, READ_BLOCK_MS)
                await self._move(taken)
                if taken and len(taken) < BATCH // 2:
                    await asyncio.sleep(GATHER_SECONDS)
            except asyncio.CancelledError:
                raise
            except GroupMissing:  # Redis came back without its data
                await self._retry_redis(self.queue.ensure_group)
            except (StoreError, OSError) as exc:
                log.warning("history writer: redis unavailable (%s); retrying", exc)
                last_own = 0.0
                await asyncio.sleep(1.0)

    async def _move(self, items: list[QueuedExecution]) -> None:
        if not items:
            return
        await self._until_written(lambda: self.history.upsert([i.record for i in items]))
        gone = await self._retry_redis(lambda: self.queue.moved([i.copy for i in items]))
        if gone:  # destroyed while we wrote them: they must not come back
            await self._until_written(lambda: self.history.delete(gone))
        self.metrics.count("history", "moved", len(items))

    async def _until_written(self, write: Callable[[], Awaitable[Any]]) -> None:
        """Run an SQL write until it succeeds: the executions wait in Redis."""
        backoff = 0.2
        while True:
            try:
                await write()
                if not self.up:
                    log.info("history writer: the history store answers again")
                self.up, self.last_error = True, None
                return
            except HistoryUnavailable as exc:
                if self.up or self.last_error != str(exc):
                    log.error("history writer: the history store is unavailable: %s", exc)
                self.up, self.last_error = False, str(exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    async def _retry_redis(self, call: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await call()
            except (StoreError, OSError) as exc:
                log.warning("history writer: redis unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _migrated(self) -> None:
        """The schema is up to date before the first write (retried while the
        database is down; `rayhook migrate` may have done it already)."""
        backoff = 0.5
        while True:
            try:
                revision = await asyncio.to_thread(migrate.upgrade, self.settings.history_database)
                log.info("history writer: schema at revision %s", revision)
                await self.history.prepare(datetime.now(UTC))
                return
            except Exception as exc:
                self.up, self.last_error = False, str(exc).splitlines()[0]
                log.error("history writer: cannot migrate the history store: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF * 6, backoff * 2)

    # -- retention ------------------------------------------------------------------

    async def _retain(self) -> None:
        """Every minute, prune what retention no longer keeps; every hour, make
        sure the coming days' partitions exist (PostgreSQL)."""
        settings = self.settings
        last_partitions = time.monotonic()
        while True:
            await asyncio.sleep(RETENTION_SECONDS)
            try:
                now = datetime.now(UTC)
                if time.monotonic() - last_partitions > PARTITIONS_SECONDS:
                    last_partitions = time.monotonic()
                    await self.history.prepare(now)
                pruned = await self.history.prune(
                    max_age=settings.history_max_age,
                    max_count=settings.history_max_count,
                    now=now,
                )
                if pruned:
                    self.metrics.count("history", "pruned", pruned)
                    log.info("history: pruned %d executions", pruned)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("history: retention failed: %s", exc)


class WriterProcess:
    """Execution actor 0's child process that runs the `HistoryWriter`
    (`python -m actors.history_writer`), started again a second after it exits.
    It gets the settings on its stdin (they hold secrets: never on a command
    line) and dies with the actor (PR_SET_PDEATHSIG). Attribute: `pid` of the
    running process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid: int | None = None
        self._task = asyncio.get_running_loop().create_task(self._keep_running())

    async def _keep_running(self) -> None:
        restarted = restarted_by_ray()  # the writer died with this actor
        while True:
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "actors.history_writer",
                    str(os.getpid()),
                    "restart" if restarted else "start",
                    stdin=asyncio.subprocess.PIPE,
                    start_new_session=True,  # a terminal's Ctrl-C is for the executor
                )
                assert process.stdin is not None
                # One line, read as such: a process this actor forks without exec
                # (a sandbox) may hold the pipe open, so EOF cannot mark the end.
                process.stdin.write(msgspec.json.encode(self.settings) + b"\n")
                process.stdin.close()
                self.pid = process.pid
                code = await process.wait()
                log.error(
                    "history writer (pid %d) exited with %s; starting it again", process.pid, code
                )
            except OSError as exc:
                log.error("history writer could not start: %s; trying again", exc)
            self.pid, restarted = None, True
            await asyncio.sleep(1.0)


def main(argv: list[str]) -> None:
    """The writer's process: `python -m actors.history_writer PARENT start|restart`,
    the settings as one line of JSON on stdin."""
    parent, how = int(argv[1]), argv[2]
    die_with(parent)
    settings = msgspec.json.decode(sys.stdin.buffer.readline(), type=Settings)
    configure_logs(secrets=settings.env.values())
    setproctitle.setproctitle(PROCESS_TITLE)  # the kernel's name too (`top`)

    async def serve() -> None:
        writer = HistoryWriter(settings, restarted=how == "restart")
        await writer.run()

    try:
        uvloop.run(serve())  # its thread hops (aiosqlite) cost less than asyncio's
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
