"""`InboxRuns`: what an execution actor does with the inbox entries its consumer
reads (`actors/consumer.py`): run them once, or settle them, or quarantine the
poison ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import msgspec

from actors.recorder import caller_resume
from actors.runs import Outcome, Runs
from engine.records import TriggerEvent, execution_of, now
from engine.status import Reason, Status, is_final
from store.inbox import Entry

log = logging.getLogger("rayhook.executor")

_decode_event = msgspec.msgpack.Decoder(TriggerEvent).decode


class InboxRuns:
    """The consumer's `Runner` over an actor's `Runs`."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    async def run_batch(
        self, entries: list[tuple[str, bytes]], *, first_delivery: bool = False
    ) -> list[int | None]:
        """Run inbox entries (stream id, msgpack event); their final statuses
        (None: not recorded, to be run again later).

        One status read for the whole batch first: an event whose execution is
        already final (a redelivery) is only acknowledged, never run again. A
        batch delivered for the first time (`first_delivery`) whose events all
        start new executions skips it, one round trip less: a start's id is
        fresh (`TriggerEvent.start`) and no consumer had its entry before, so
        nothing can have recorded that execution yet."""
        events = []
        for entry_id, payload in entries:
            event = _decode_event(payload)
            event.entry = entry_id or None
            events.append(event)
        known: Sequence[object]
        if first_delivery and all(_starts(e) for e in events):
            known = [None] * len(events)
        else:
            known = await self.runs.log.statuses([e.id for e in events])
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

    def _settle(self, event: TriggerEvent, status: object) -> Coroutine[Any, Any, Outcome]:
        if is_final(status):
            return self.runs.settled(event, status=status)
        if status == Status.STARTED and _starts(event):
            return self._unless_waiting(event)
        return self.runs.execute(event)

    async def _unless_waiting(self, event: TriggerEvent) -> Outcome:
        """A redelivered event of an execution shown as STARTED: one that waits
        (a delay, a person, a child, its next attempt) is settled, only a crashed
        run runs again."""
        execution = await self.runs.log.get(event.id)
        if execution is not None and (execution.waiting or execution.retryAt is not None):
            return await self.runs.settled(event, status=Status.STARTED)
        return await self.runs.execute(event)

    async def quarantine(self, entry: Entry, deliveries: int) -> None:
        """Finalise an entry that was delivered `deliveries` times without its
        execution being recorded: each run ended this process (a V8 abort, say).
        Running it again would crash the executor forever, so it is recorded
        ERROR with reason `crashed_executor` (replayable by a person) instead."""
        event = entry.event
        if event is None:  # unreadable: the consumer drops those itself
            return
        runs = self.runs
        waiting = await runs.log.get(event.id) if event.resume is not None else None
        execution = waiting or execution_of(event)
        if is_final(execution.status):
            await runs.inbox.ack(event.key, [entry.id])
            return
        execution.status, execution.reason = Status.ERROR, Reason.CRASHED_EXECUTOR
        execution.error = (
            f"quarantined: the executor's process ended {deliveries - 1} times while running "
            "it; it is not run again (replay it once the cause is fixed)"
        )
        execution.finishedAt = now()
        execution.waiting = []
        await runs.log.save(
            runs.mask.execution(execution),
            entry=entry.id,
            queue=[caller] if (caller := caller_resume(execution, event)) else [],
        )
        runs.metrics.count("quarantined", event.key)
        log.error(
            "execution %s of %s quarantined after %d deliveries (reason crashed_executor)",
            event.id,
            event.key,
            deliveries,
        )


def _starts(event: TriggerEvent) -> bool:
    """The event starts a new execution (not a resume, not a next attempt)."""
    return event.resume is None and event.retry is None
