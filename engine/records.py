"""Execution and job records, the trigger event that starts an execution, and
the reply a sync execution produces. These cross every boundary: the ingress
builds events, actors run them, the store keeps records, the admin API shows them."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import msgspec


def now() -> datetime:
    return datetime.now(UTC)


def new_execution_id(ms: int | None = None) -> str:
    """A time-ordered, globally unique id: 48-bit milliseconds (`ms`, default now)
    + 80 random bits, in hex.

    Generated where an event is accepted so that a redelivered inbox entry maps to
    the same execution (the exactly-once effect rests on it). Its first 12 hex
    digits are its creation time: ids sort newest last, and a time range is an id
    range (the history store pages and partitions by it)."""
    if ms is None:
        ms = time.time_ns() // 1_000_000
    return f"{ms:012x}{int.from_bytes(os.urandom(10), 'big'):020x}"


def id_bound(ms: int) -> str:
    """The smallest execution id created at or after `ms`."""
    return f"{max(0, ms):012x}"


def job_id(execution_id: str, sequence: int) -> str:
    return f"{execution_id}-{sequence}"


def execution_id_of_job(jid: str) -> str:
    return jid.rpartition("-")[0]


def in_run_order(jobs: list[Job]) -> list[Job]:
    """Jobs in the order they started (by the sequence number in their id)."""
    jobs.sort(key=lambda j: int(j.id.rpartition("-")[2]))
    return jobs


class Resume(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The outcome a waiting job was given (a delay fired, a person submitted, a
    called workflow ended): its execution continues from there."""

    jobId: str
    status: int
    result: Any = None


class Parent(msgspec.Struct, kw_only=True):
    """The execution (and its subflow job) that called this one."""

    executionId: str
    jobId: str
    key: str
    workflowId: int


class TriggerEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One accepted webhook (or manual run): what an execution starts from.

    `context` is already redacted. `entry` is the inbox stream entry id, set by the
    supervisor when the event came through the inbox."""

    id: str
    key: str
    workflowId: int
    context: dict[str, Any]
    createdAt: float
    manually: bool = False
    entry: str | None = None
    replayOf: str | None = None  # the execution whose context this one replays
    resume: Resume | None = None  # set: continue a waiting execution (same id)
    parent: Parent | None = None  # set: a subflow call
    retry: int | None = None  # set: run this attempt of a waiting execution (same id)
    stack: list[str] = []  # workflow keys of the calling executions, outermost first

    @classmethod
    def start(
        cls, *, key: str, workflowId: int, context: dict[str, Any], **fields: Any
    ) -> TriggerEvent:
        """An event that starts a new execution: its id and `createdAt` come from
        one clock reading, so the id's time prefix is its creation time."""
        ms = time.time_ns() // 1_000_000
        return cls(
            id=new_execution_id(ms),
            key=key,
            workflowId=workflowId,
            context=context,
            createdAt=float(ms),
            **fields,
        )


class Job(msgspec.Struct, kw_only=True):
    """One node run: a row of the execution log (NocoBase `jobs`)."""

    id: str
    executionId: str
    nodeKey: str
    nodeType: str
    status: int
    result: Any = None
    meta: Any = None
    log: str | None = None
    attempt: int = 1  # the execution's attempt that ran it (options.retry)
    startedAt: datetime
    updatedAt: datetime


class Execution(msgspec.Struct, kw_only=True):
    """One run of one workflow version (NocoBase `executions`)."""

    id: str
    key: str
    workflowId: int
    status: int | None = None
    reason: str | None = None
    context: Any = None
    output: Any = None
    error: str | None = None  # why the engine could not run it (not a node's failure)
    manually: bool = False
    replayOf: str | None = None
    parentExecutionId: str | None = None
    stack: list[str] = []
    waiting: list[str] = []  # ids of the jobs a STARTED execution waits on
    attempt: int = 1  # runs of this execution so far (options.retry, SPEC §11)
    exhausted: bool = False  # final after its last attempt failed
    retryAt: datetime | None = None  # STARTED, waiting for its next attempt
    createdAt: datetime
    startedAt: datetime | None = None
    finishedAt: datetime | None = None


class Reply(msgspec.Struct, kw_only=True):
    """The HTTP answer a sync execution gives (or the default it falls back to)."""

    status: int
    headers: list[tuple[str, str]] = []
    body: Any = None
    executionId: str | None = None
    message: str | None = None  # error text for the 500/408 error body
