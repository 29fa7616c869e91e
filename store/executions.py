"""The execution log's hot part: executions and their jobs in Redis, indexed by
workflow key and status, until the history writer moves the final ones to SQL.
Writes go through the process's `PipelineBatcher`; job writes are fired and
forgotten, execution writes are awaited (their order in the pipeline means the
jobs before them are stored too)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from engine.jsvalues import iso_datetime
from engine.records import Execution, Job, execution_id_of_job, in_run_order
from engine.status import is_final
from store.batching import PipelineBatcher
from store.connection import EXECUTION_SAVE, TIMERS_FIRE
from store.errors import raises_store_error
from store.filters import ExecutionFilter
from store.keys import INBOX_GROUP, Keys


def _enc_hook(obj: Any) -> Any:
    """JSON for what nodes may leave in results besides JSON values. Anything else
    is stored as its text: a result must never make an execution unrecordable
    (it would be run again, repeating its effects)."""
    if isinstance(obj, datetime):
        return iso_datetime(obj)
    if isinstance(obj, bytes | bytearray):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
_decode_execution = msgspec.json.Decoder(Execution).decode
_decode_job = msgspec.json.Decoder(Job).decode
_decode_jobs = msgspec.json.Decoder(list[Job]).decode


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


@dataclass(frozen=True, slots=True)
class Timer:
    """A waiting delay job's wake-up: when, its id in the timer set, and the
    inbox event that resumes its execution."""

    fire_at: float
    member: str
    event: bytes


def _status_text(status: int | None) -> str:
    return "null" if status is None else str(int(status))


@raises_store_error
class ExecutionLog:
    """The hot executions in Redis (SPEC §9): running and waiting ones under
    their own keys, final ones on the history stream until the history writer
    has moved them to SQL (`store.history`). `store.execution_search` reads
    both stores together."""

    def __init__(self, client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher) -> None:
        self.client = client
        self.keys = keys
        self.batcher = batcher

    # -- writes -------------------------------------------------------------------

    def save_job(self, job: Job) -> None:
        self.batcher.fire("HSET", self.keys.jobs(job.executionId), job.id, encode(job))

    async def save(
        self,
        execution: Execution,
        *,
        entry: str | None = None,
        jobs: Sequence[Job] = (),
        count_run: bool = False,
        timers: Sequence[Timer] = (),
        queue: Sequence[tuple[str, bytes]] = (),
        keep: bool = True,
        publish: tuple[str, bytes] | None = None,
        encoded: bytes | None = None,
    ) -> bool:
        """Store the execution's current state, with `jobs` not yet written;
        False when a final status was stored already (the call only acked).

        A final execution goes to the history stream with all its jobs (or, with
        `keep=False`, is forgotten: `options.keep`, `deleteExecutionOnStatus`).
        With `entry`, also XACK+XDEL that inbox entry in the same atomic step (the
        execution is final, or durably waiting); with `count_run`, count a run of
        its version; `timers` are its waiting delay jobs; `queue` holds the
        events it puts in other inboxes, as (workflow key, event): a subflow's
        end for its caller, the starts of its async subflows. A final status already
        stored is kept: the call then only acks. `publish` (channel, message) is
        a sync call's reply, published in the same step when this call stores;
        `encoded`: the execution's JSON, when the caller has it already."""
        stored = await self.batcher.submit_script(
            EXECUTION_SAVE,
            *self._save_args(
                execution, entry, jobs, count_run, timers, queue, keep, publish, encoded
            ),
        )
        return int(stored) == 1

    async def update_job(self, job_id: str, change: Callable[[Job | None], Job]) -> Job | None:
        """Write what `change` makes of job `job_id` (None: no such job) unless
        the execution's jobs were written meanwhile: the job written, or None
        when another write came first (read again and retry). `change` may
        raise to write nothing. Optimistic (WATCH/MULTI), for a person's
        submissions to a manual job landing at once."""
        jobs_key = self.keys.jobs(execution_id_of_job(job_id))
        async with self.client.pipeline(transaction=True) as pipe:
            await pipe.watch(jobs_key)
            job = change(await self.job(job_id))
            pipe.multi()
            pipe.hset(jobs_key, job.id, encode(job))
            try:
                await pipe.execute()
            except WatchError:
                return None
        return job

    def show(self, execution: Execution) -> None:
        """Store a running execution's state without waiting (a progress mark)."""
        self.batcher.fire_script(
            EXECUTION_SAVE, *self._save_args(execution, None, (), False, (), (), True)
        )

    def _save_args(
        self,
        execution: Execution,
        entry: str | None,
        jobs: Sequence[Job],
        count_run: bool,
        timers: Sequence[Timer],
        queue: Sequence[tuple[str, bytes]],
        keep: bool,
        publish: tuple[str, bytes] | None = None,
        encoded: bytes | None = None,
    ) -> tuple[list[str], list[Any]]:
        k = self.keys
        final = is_final(execution.status)
        mode = ("final" if keep else "drop") if final else "hot"
        score = int(execution.createdAt.timestamp() * 1000)
        keys = [
            k.execution(execution.id),
            k.jobs(execution.id),
            k.execution_statuses,
            k.inbox(execution.key),
            k.executed(execution.workflowId),
            k.timers(execution.key),
            k.timer_events(execution.key),
            k.inboxes_changed,
            k.history,
            k.moving,
            k.timers_due,
            k.draining,
        ]
        args: list[Any] = [
            execution.id,
            mode,
            b"" if mode == "drop" else encoded or encode(execution),
            _status_text(execution.status),
            score,
            k.executions(),
            entry or "",
            INBOX_GROUP,
            k.executions(execution.key),
            "1" if count_run else "0",
            len(timers),
            *(publish or ("", b"")),
        ]
        for timer in timers:
            args += [int(timer.fire_at), timer.member, timer.event]
        args.append(execution.key)
        args.append(len(queue))
        for key, event in queue:
            args += [k.inbox(key), key, event]
        for job in jobs:
            args.append(job.id)
            args.append(encode(job))
        return keys, args

    async def fire_timers(self, key: str, now_ms: float, limit: int = 100) -> int:
        """Move due timers of `key` into its inbox; how many fired."""
        k = self.keys
        fired = await self.batcher.submit_script(
            TIMERS_FIRE,
            [
                k.timers(key),
                k.timer_events(key),
                k.inbox(key),
                k.timers_due,
                k.draining,
                k.inboxes_changed,
            ],
            [int(now_ms), limit, key],
        )
        return int(fired)

    async def mark_executed(self, version_id: int) -> int:
        """Count a started execution of a version (which freezes the version);
        the count."""
        return int(await self.batcher.submit("INCR", self.keys.executed(version_id)))

    # -- reads --------------------------------------------------------------------

    async def get(self, execution_id: str) -> Execution | None:
        found = await self.get_with_jobs(execution_id, with_jobs=False)
        return found[0] if found else None

    async def get_with_jobs(
        self, execution_id: str, *, with_jobs: bool = True
    ) -> tuple[Execution, list[Job]] | None:
        """A hot execution (and its jobs), wherever it is in Redis; None when
        Redis does not hold it (never stored, or moved to the history)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.execution(execution_id))
        pipe.hget(self.keys.moving, execution_id)
        if with_jobs:
            pipe.hvals(self.keys.jobs(execution_id))
        replies = await pipe.execute()
        raw, entry = replies[0], replies[1]
        if raw:
            return _decode_execution(raw), _sorted_jobs(replies[2]) if with_jobs else []
        if entry:
            moving = await self._moving([entry.decode()])
            if moving:
                execution, jobs_json = moving[0]
                return execution, in_run_order(_decode_jobs(jobs_json)) if with_jobs else []
        return None

    async def jobs(self, execution_id: str) -> list[Job]:
        written = await self.client.hvals(self.keys.jobs(execution_id))
        if written:
            return _sorted_jobs(written)
        found = await self.get_with_jobs(execution_id)
        return found[1] if found else []

    async def job(self, jid: str) -> Job | None:
        raw = await self.client.hget(self.keys.jobs(execution_id_of_job(jid)), jid)
        if raw:
            return _decode_job(raw)
        found = await self.get_with_jobs(execution_id_of_job(jid))
        return next((j for j in found[1] if j.id == jid), None) if found else None

    async def statuses(self, execution_ids: Sequence[str]) -> list[int | str | None]:
        """Each id's status; `"missing"` for an id Redis does not hold."""
        if not execution_ids:
            return []
        raw = await self.client.hmget(self.keys.execution_statuses, list(execution_ids))
        out: list[int | str | None] = []
        for value in raw:
            if value is None:
                out.append("missing")
            elif value == b"null":
                out.append(None)
            else:
                out.append(int(value))
        return out

    async def moving_entries(self, execution_ids: Sequence[str]) -> list[str | None]:
        """The history stream entry of each final execution still in Redis."""
        if not execution_ids:
            return []
        raw = await self.client.hmget(self.keys.moving, list(execution_ids))
        return [r.decode() if r else None for r in raw]

    async def hot(self, where: ExecutionFilter) -> list[Execution]:
        """Every hot execution `where` matches, newest first (a hot set is
        bounded by the backlog and the writer's lag, never by uptime)."""
        indexes = [self.keys.executions(where.key, s) for s in where.statuses] or [
            self.keys.executions(where.key)
        ]
        low = "-inf" if where.created_from is None else where.created_from
        high = "+inf" if where.created_to is None else where.created_to
        pipe = self.client.pipeline(transaction=False)
        for index in indexes:
            pipe.zrangebyscore(index, low, high)
        ids = sorted({i.decode() for reply in await pipe.execute() for i in reply}, reverse=True)
        if where.before:
            ids = [i for i in ids if i < where.before]
        found: list[Execution] = []
        for start in range(0, len(ids), 1000):
            found += await self._records(ids[start : start + 1000])
        return [e for e in found if where.matches(e)]

    async def _records(self, ids: list[str]) -> list[Execution]:
        """The records of these hot executions, in order; gone ones are skipped."""
        pipe = self.client.pipeline(transaction=False)
        pipe.mget([self.keys.execution(i) for i in ids])
        pipe.hmget(self.keys.moving, ids)
        raws, entries = await pipe.execute()
        moving = {
            e.id: e for e, _ in await self._moving([m.decode() for m in entries if m is not None])
        }
        out: list[Execution] = []
        for execution_id, raw in zip(ids, raws, strict=True):
            if raw:
                out.append(_decode_execution(raw))
            elif execution_id in moving:
                out.append(moving[execution_id])
        return out

    async def _moving(self, entries: list[str]) -> list[tuple[Execution, bytes]]:
        """Final executions waiting on the history stream: (record, jobs JSON)."""
        if not entries:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.xrange(self.keys.history, entry, entry)
        out = []
        for reply in await pipe.execute():
            for _entry_id, fields in reply:
                out.append((_decode_execution(fields[b"x"]), fields[b"j"]))
        return out


def _sorted_jobs(raw: list[bytes]) -> list[Job]:
    return in_run_order([_decode_job(item) for item in raw])
