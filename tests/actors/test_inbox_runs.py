"""`InboxRuns.run_batch` decides, per batch, whether to read the executions'
statuses before running them. What is tested is that decision, so `Runs` is a
recorder of the calls it gets; the runs themselves, against real Ray and Redis,
are in test_executor.py and test_consumer.py."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.inbox_runs import InboxRuns
from engine.records import Resume, TriggerEvent, execution_of
from engine.status import Status

_encode = msgspec.msgpack.Encoder().encode


class Calls:
    """Stands for `Runs` and its execution log: records what `run_batch` asks."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses_read: list[list[str]] = []
        self.executed: list[str] = []
        self.settled_ids: list[str] = []
        self._statuses = statuses
        self.log = self

    async def statuses(self, ids: list[str]) -> list[int | None]:
        self.statuses_read.append(list(ids))
        return [self._statuses.get(i) for i in ids]

    async def execute(self, event: TriggerEvent) -> tuple[Any, None]:
        self.executed.append(event.id)
        return execution_of(event, status=Status.RESOLVED), None

    async def settled(self, event: TriggerEvent, status: object = None) -> tuple[Any, None]:
        self.settled_ids.append(event.id)
        return execution_of(event, status=status if isinstance(status, int) else None), None


def start(n: int) -> TriggerEvent:
    return TriggerEvent.start(key="k", workflowId=1, context={"body": {"n": n}})


def entries(*events: TriggerEvent) -> list[tuple[str, bytes]]:
    return [(f"1-{i}", _encode(e)) for i, e in enumerate(events)]


async def test_a_first_delivery_of_starts_runs_without_reading_statuses() -> None:
    calls = Calls({})
    events = [start(1), start(2)]
    statuses = await InboxRuns(calls).run_batch(entries(*events), first_delivery=True)  # type: ignore[arg-type]
    assert statuses == [Status.RESOLVED, Status.RESOLVED]
    assert calls.statuses_read == []
    assert calls.executed == [e.id for e in events]


async def test_a_redelivery_reads_statuses_and_only_settles_what_is_final() -> None:
    done, new = start(1), start(2)
    calls = Calls({done.id: Status.RESOLVED})
    statuses = await InboxRuns(calls).run_batch(entries(done, new))  # type: ignore[arg-type]
    assert calls.statuses_read == [[done.id, new.id]]
    assert calls.settled_ids == [done.id] and calls.executed == [new.id]
    assert statuses == [Status.RESOLVED, Status.RESOLVED]


async def test_a_first_delivery_holding_a_resume_still_reads_statuses() -> None:
    waiting = start(1)
    resume = msgspec.structs.replace(waiting, resume=Resume(jobId="j-1", status=1))
    calls = Calls({waiting.id: Status.RESOLVED})  # resumed already: a second resume
    await InboxRuns(calls).run_batch(entries(start(2), resume), first_delivery=True)  # type: ignore[arg-type]
    assert len(calls.statuses_read) == 1
    assert calls.settled_ids == [waiting.id]
