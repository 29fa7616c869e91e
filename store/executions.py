"""The execution log: executions and their jobs, indexed by workflow key and
status. Writes go through the process's `PipelineBatcher`; job writes are fired
and forgotten, execution writes are awaited (their order in the pipeline means
the jobs before them are stored too)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis

from engine.jsvalues import iso_datetime
from engine.records import Execution, Job, execution_id_of_job
from store.batching import PipelineBatcher
from store.connection import EXECUTION_SAVE, TIMERS_FIRE
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


class ExecutionLog:
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
        resume_caller: tuple[str, bytes] | None = None,
    ) -> None:
        """Store the execution's current state, with `jobs` not yet written.

        With `entry`, also XACK+XDEL that inbox entry in the same atomic step (the
        execution is final, or durably waiting); with `count_run`, count a run of
        its version; `timers` are its waiting delay jobs; `resume_caller` is
        (caller's workflow key, event) for a subflow's end. A final status already
        stored is kept: the call then only acks."""
        await self.batcher.submit_script(
            EXECUTION_SAVE,
            *self._save_args(
                execution, encode(execution), entry, jobs, count_run, timers, resume_caller
            ),
        )

    def show(self, execution: Execution) -> None:
        """Store a running execution's state without waiting (a progress mark)."""
        self.batcher.fire_script(
            EXECUTION_SAVE, *self._save_args(execution, encode(execution), None, (), False)
        )

    async def delete(self, execution: Execution, *, entry: str | None = None) -> None:
        """Forget an execution and its jobs (`deleteExecutionOnStatus`)."""
        await self.batcher.submit_script(
            EXECUTION_SAVE, *self._save_args(execution, b"", entry, (), False)
        )

    def _save_args(
        self,
        execution: Execution,
        payload: bytes,
        entry: str | None,
        jobs: Sequence[Job],
        count_run: bool,
        timers: Sequence[Timer] = (),
        resume_caller: tuple[str, bytes] | None = None,
    ) -> tuple[list[str], list[Any]]:
        k = self.keys
        score = int(execution.createdAt.timestamp() * 1000)
        keys = [
            k.execution(execution.id),
            k.jobs(execution.id),
            k.execution_statuses,
            k.inbox(execution.key),
            k.executed(execution.workflowId),
            k.timers(execution.key),
            k.timer_events(execution.key),
            k.inbox(resume_caller[0] if resume_caller else execution.key),
        ]
        args: list[Any] = [
            execution.id,
            payload,
            _status_text(execution.status),
            score,
            k.executions(),
            entry or "",
            INBOX_GROUP,
            k.executions(execution.key),
            "1" if count_run else "0",
            len(timers),
        ]
        for timer in timers:
            args += [int(timer.fire_at), timer.member, timer.event]
        args.append(resume_caller[1] if resume_caller else "")
        for job in jobs:
            args.append(job.id)
            args.append(encode(job))
        return keys, args

    async def fire_timers(self, key: str, now_ms: float, limit: int = 100) -> int:
        """Move due timers of `key` into its inbox; how many fired."""
        fired = await self.batcher.submit_script(
            TIMERS_FIRE,
            [self.keys.timers(key), self.keys.timer_events(key), self.keys.inbox(key)],
            [int(now_ms), limit],
        )
        return int(fired)

    def mark_executed(self, version_id: int) -> asyncio.Future[Any]:
        """Count a started execution of a version (which freezes the version)."""
        return self.batcher.submit("INCR", self.keys.executed(version_id))

    # -- reads --------------------------------------------------------------------

    async def get(self, execution_id: str) -> Execution | None:
        raw = await self.client.get(self.keys.execution(execution_id))
        return _decode_execution(raw) if raw else None

    async def jobs(self, execution_id: str) -> list[Job]:
        raw = await self.client.hvals(self.keys.jobs(execution_id))
        jobs = [_decode_job(item) for item in raw]
        jobs.sort(key=lambda j: int(j.id.rpartition("-")[2]))
        return jobs

    async def job(self, jid: str) -> Job | None:
        raw = await self.client.hget(self.keys.jobs(execution_id_of_job(jid)), jid)
        return _decode_job(raw) if raw else None

    async def statuses(self, execution_ids: Sequence[str]) -> list[int | str | None]:
        """Each id's status; `"missing"` for an id never stored."""
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

    async def page(
        self,
        *,
        key: str | None = None,
        status: int | str | None = "any",
        page: int = 1,
        page_size: int = 20,
    ) -> tuple[list[Execution], int]:
        """Newest first; the page and the count of every matching execution."""
        index = self.keys.executions(key, status)
        start = (page - 1) * page_size
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zrevrange(index, start, start + page_size - 1)
        count, ids = await pipe.execute()
        if not ids:
            return [], int(count)
        raws = await self.client.mget([self.keys.execution(i.decode()) for i in ids])
        return [_decode_execution(r) for r in raws if r], int(count)
