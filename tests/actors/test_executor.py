"""ExecutionActor against the session's real Ray and the machine's Redis: sync
replies, timeouts, idempotent starts by execution id, and cancel."""

from __future__ import annotations

import time

import msgspec

from actors import handles
from engine.records import Reply, TriggerEvent
from engine.settings import Settings
from engine.status import Reason, Status
from tests.actors.support import (
    LONG_CONTEXT,
    RESOLVED,
    Store,
    async_workflow,
    long_sync_workflow,
    slow_async_workflow,
    sync_workflow,
)

_encode = msgspec.msgpack.Encoder().encode
_decode_reply = msgspec.msgpack.Decoder(Reply).decode


def payload(event: TriggerEvent) -> bytes:
    return _encode(event)


def entry(event: TriggerEvent) -> tuple[str, bytes]:
    """What the inbox consumer hands `run_batch`: the inbox entry id and the event."""
    return event.entry or "", _encode(event)


async def test_run_sync_returns_the_response_nodes_reply_and_records_execution_and_jobs(
    settings: Settings, store: Store
) -> None:
    version = await store.create(sync_workflow())
    event = store.event(version, {"body": {"n": 21}})
    actor = handles.executor(settings, 0)

    reply = _decode_reply(await actor.run_sync.remote(payload(event)))

    assert reply.status == 201
    assert reply.headers == [("X-N", "21")]
    assert reply.body == {"double": 42}
    assert reply.executionId == event.id
    execution = await store.log.get(event.id)
    assert execution is not None
    assert (execution.status, execution.key, execution.workflowId) == (
        RESOLVED,
        version.key,
        version.id,
    )
    assert execution.context == {"body": {"n": 21}}
    assert execution.startedAt is not None and execution.finishedAt is not None
    assert await store.statuses([event]) == [RESOLVED]
    jobs = await store.log.jobs(event.id)
    assert [(j.nodeKey, j.nodeType, j.status) for j in jobs] == [
        ("double", "calculation", RESOLVED),
        ("reply", "response", RESOLVED),
    ]
    assert jobs[0].result == 42
    assert jobs[1].result["statusCode"] == 201


async def test_sync_run_past_its_timeout_replies_408_and_is_aborted_with_reason_timeout(
    settings: Settings, store: Store
) -> None:
    version = await store.create(long_sync_workflow(options={"timeout": 300}))
    event = store.event(version, LONG_CONTEXT)
    actor = handles.executor(settings, 0)
    await actor.ready.remote()

    started = time.monotonic()
    reply = _decode_reply(await actor.run_sync.remote(payload(event)))
    elapsed = time.monotonic() - started

    assert reply.status == 408, reply
    assert reply.executionId == event.id
    assert elapsed < 4.0, f"a 300 ms timeout answered after {elapsed:.2f} s"
    execution = await store.log.get(event.id)
    assert execution is not None
    assert (execution.status, execution.reason) == (Status.ABORTED, Reason.TIMEOUT)
    assert execution.finishedAt is not None
    assert await store.statuses([event]) == [Status.ABORTED]
    assert await store.count_by_status(version.key, Status.ABORTED) == 1
    assert len(await store.log.jobs(event.id)) < 300, "the run was not interrupted"


async def test_concurrent_run_batch_calls_with_the_same_event_run_it_once(
    settings: Settings, store: Store
) -> None:
    nodes = 20  # ~20 ms each with LONG_CONTEXT: the calls overlap
    version = await store.create(slow_async_workflow(nodes))
    event = store.event(version, LONG_CONTEXT)
    actor = handles.executor(settings, 0)
    await actor.ready.remote()

    first = actor.run_batch.remote([entry(event)])
    await store.wait_status(event.id, lambda e: e.status == Status.STARTED)
    second = actor.run_batch.remote([entry(event)])
    twice_in_one_batch = actor.run_batch.remote([entry(event), entry(event)])

    assert await first == [RESOLVED]
    assert await second == [RESOLVED]
    assert await twice_in_one_batch == [RESOLVED, RESOLVED]
    assert await store.executed(version.id) == 1, "the execution ran more than once"
    assert await store.count_all(version.key) == 1
    assert await store.status_index_total(version.key) == 1
    assert await store.job_count(event.id) == nodes
    jobs = await store.log.jobs(event.id)
    assert [j.nodeKey for j in jobs] == [f"sum{i}" for i in range(nodes)]


async def test_redelivered_entry_of_a_final_execution_is_acked_not_rerun(
    settings: Settings, store: Store
) -> None:
    version = await store.create(async_workflow(3))
    (event,) = await store.enqueue(version, [{"body": {"n": 1}}])
    handles.executors(settings)  # they read the inbox and run it
    assert await store.wait_final([event]) == [RESOLVED]
    first = await store.log.get(event.id)
    jobs_before = await store.log.jobs(event.id)
    assert first is not None and first.finishedAt is not None
    assert await store.executed(version.id) == 1
    assert (await store.xlen(version.key), await store.pending(version.key)) == (0, 0)

    # Redelivery: the same payload with its entry id, to the executor that owns
    # the execution id (as sync calls are routed).
    owner = handles.executor(settings, handles.executor_index(event.id, settings.executors))
    assert event.entry is not None
    assert await owner.run_batch.remote([entry(event)]) == [RESOLVED]

    again = await store.log.get(event.id)
    assert again is not None
    assert again.finishedAt == first.finishedAt
    assert again.status == RESOLVED
    assert again.context == first.context
    assert await store.executed(version.id) == 1, "a final execution ran again"
    assert await store.log.jobs(event.id) == jobs_before
    assert await store.count_all(version.key) == 1
    assert (await store.xlen(version.key), await store.pending(version.key)) == (0, 0)


async def test_redelivered_entry_of_a_final_execution_is_not_rerun_by_a_fresh_executor(
    settings: Settings, store: Store
) -> None:
    """The executor that ran it may have restarted since (its memory is empty):
    the execution log, not the process, must say the execution is over."""
    version = await store.create(async_workflow(3))
    (event,) = await store.enqueue(version, [{"body": {"n": 1}}])
    handles.executors(settings)  # they read the inbox and run it
    assert await store.wait_final([event]) == [RESOLVED]
    first = await store.log.get(event.id)
    jobs_before = await store.log.jobs(event.id)
    assert first is not None

    other = handles.executor(settings, 1 - handles.executor_index(event.id, settings.executors))
    assert await other.run_batch.remote([entry(event)]) == [RESOLVED]

    again = await store.log.get(event.id)
    assert again is not None and again.finishedAt == first.finishedAt
    assert await store.executed(version.id) == 1, "a final execution ran again"
    assert await store.log.jobs(event.id) == jobs_before, "its jobs were rewritten"


async def test_redelivered_entry_of_an_execution_deleted_on_its_status_stays_deleted(
    settings: Settings, store: Store
) -> None:
    """`options.deleteExecutionOnStatus`: a redelivery acks, it does not store the
    execution again."""
    version = await store.create(async_workflow(3, deleteExecutionOnStatus=[RESOLVED]))
    (event,) = await store.enqueue(version, [{"body": {"n": 1}}])
    actor = handles.executor(settings, 0)

    assert await actor.run_batch.remote([entry(event)]) == [RESOLVED]
    assert await store.log.get(event.id) is None
    assert await store.count_all(version.key) == 0
    assert await store.xlen(version.key) == 0

    assert await actor.run_batch.remote([entry(event)]) == [RESOLVED]
    assert await store.log.get(event.id) is None, "the deleted execution was stored again"
    assert await store.statuses([event]) == ["missing"]
    assert await store.count_all(version.key) == 0
    assert await store.executed(version.id) == 1


async def test_cancel_aborts_a_running_execution_with_reason_manual_cancel(
    settings: Settings, store: Store
) -> None:
    version = await store.create(long_sync_workflow())
    event = store.event(version, LONG_CONTEXT)
    actor = handles.executor(settings, 0)
    await actor.ready.remote()

    running = actor.run_sync.remote(payload(event))
    await store.wait_status(event.id, lambda e: e.status == Status.STARTED)
    assert await actor.cancel.remote(event.id) is True
    reply = _decode_reply(await running)

    assert reply.executionId == event.id
    assert reply.status == 500, reply
    execution = await store.log.get(event.id)
    assert execution is not None
    assert (execution.status, execution.reason) == (Status.ABORTED, Reason.MANUAL_CANCEL)
    assert execution.finishedAt is not None
    assert await store.statuses([event]) == [Status.ABORTED]
    jobs = await store.log.jobs(event.id)
    assert len(jobs) < 300, "the run was not interrupted"
    # Over: a second cancel finds nothing running.
    assert await actor.cancel.remote(event.id) is False


async def test_cancel_of_an_unknown_execution_returns_false(settings: Settings) -> None:
    actor = handles.executor(settings, 0)
    assert await actor.cancel.remote("0" * 32) is False
