"""Every execution, wherever it is (SPEC §9): hot in Redis (running, waiting,
final on its way to SQL) or in the SQL history. The admin API reads through
here, so an execution is visible at every moment of its move: Redis is read
first, and its copy is deleted only after the SQL commit."""

from __future__ import annotations

from collections.abc import Sequence

from engine.records import Execution, Job, execution_id_of_job
from engine.status import is_final
from store.executions import ExecutionLog
from store.filters import ExecutionFilter
from store.history import HistoryStore
from store.history_queue import HistoryQueue, RedisCopy


class StillRunning(Exception):
    """A destroy named an execution that is not final (cancel it first)."""


class ExecutionSearch:
    def __init__(self, log: ExecutionLog, history: HistoryStore, queue: HistoryQueue) -> None:
        self.log = log
        self.history = history
        self.queue = queue

    async def get(self, execution_id: str) -> tuple[Execution, list[Job]] | None:
        """The execution with its jobs; None when no store has it. Raises
        `HistoryUnavailable` when Redis does not have it and SQL cannot answer."""
        hot = await self.log.get_with_jobs(execution_id)
        if hot is not None:
            return hot
        return await self.history.get(execution_id)

    async def job(self, job_id: str) -> Job | None:
        found = await self.get(execution_id_of_job(job_id))
        return next((j for j in found[1] if j.id == job_id), None) if found else None

    async def page(
        self, where: ExecutionFilter, *, offset: int = 0, limit: int = 20
    ) -> tuple[list[Execution], int]:
        """Newest first: the executions at positions [offset, offset + limit) of
        every match in both stores, and the count of every match.

        The hot matches are few (bounded by the backlog and the writer's lag),
        so all of them are read; from SQL only the rows that can fall into the
        window: of the merged order's first `offset` rows, at least
        `offset - len(hot)` come from SQL, so those are skipped there."""
        hot = await self.log.hot(where)
        if where.only_hot:
            return hot[offset : offset + limit], len(hot)
        # Final executions in both stores for an instant (committed, not yet
        # forgotten in Redis) count once: the SQL count and the check of which
        # hot ones SQL holds come from one snapshot.
        final = [e.id for e in hot if is_final(e.status)]
        stored, committed = await self.history.count_and_present(where, final)
        hot = [e for e in hot if e.id not in committed]
        skip = max(0, offset - len(hot))
        rows = await self.history.page(where, offset=skip, limit=offset + limit - skip)
        merged = {e.id: e for e in (*rows, *hot)}  # one committed since shows once
        ordered = sorted(merged.values(), key=lambda e: e.id, reverse=True)
        start = offset - skip
        return ordered[start : start + limit], len(hot) + stored

    async def destroy(self, where: ExecutionFilter | str) -> int:
        """Delete final executions from both stores: one by id (StillRunning if
        it is not final), or every final one a filter matches; how many.

        Redis copies go first. A copy the writer is committing meanwhile comes
        back as an SQL row, which the writer deletes itself: it finds the copy
        marked destroyed when it forgets it (`HistoryQueue.moved`)."""
        if isinstance(where, str):
            found = await self.get(where)
            if found is None:
                return 0
            if not is_final(found[0].status):
                raise StillRunning(where)
            await self._forget([found[0]])
            await self.history.delete([where])
            return 1
        hot = [e for e in await self.log.hot(where) if is_final(e.status)]
        in_sql = await self.history.present([e.id for e in hot])
        await self._forget(hot)
        deleted = 0 if where.only_hot else await self.history.delete(where)
        return deleted + sum(1 for e in hot if e.id not in in_sql)

    async def _forget(self, hot: Sequence[Execution]) -> None:
        entries = await self.log.moving_entries([e.id for e in hot])
        await self.queue.moved(
            [
                RedisCopy(e.id, entry, e.key, int(e.status or 0))
                for e, entry in zip(hot, entries, strict=True)
                if entry
            ],
            destroyed=True,
        )
