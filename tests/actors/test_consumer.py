"""The executors consume the inboxes themselves (actors/consumer.py), against the
session's real Ray and the machine's Redis: every event runs to a final status
exactly once, also when an executor is killed, a disabled workflow drains, a
supervisor wakes and retires, entries a dead consumer left are taken over, a
poison entry is quarantined, and a drain stops reading."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import ray

from actors import handles
from engine.records import TriggerEvent
from engine.settings import Settings
from engine.status import Reason, Status
from store.keys import INBOX_GROUP
from tests.actors.support import (
    LONG_CONTEXT,
    RESOLVED,
    Store,
    async_workflow,
    eventually,
    slow_async_workflow,
)

#: Recovery scenarios: 300 events of a few CPU-heavy nodes each (~1-2 s in all),
#: so that the kill lands while most of them are still queued or running.
MANY = 300
HEAVY_NODES = 3
HEAVY_CONTEXT = {"body": {"xs": list(range(5000))}}


async def holds_for(seconds: float, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Assert that `check` stays true for `seconds` (for what must NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await check(), what
        await asyncio.sleep(0.1)
    assert await check(), what


async def assert_each_final_once(store: Store, key: str, events: list[TriggerEvent]) -> None:
    """Every event has exactly one execution, RESOLVED, with one job per node, and
    the inbox is empty."""
    assert await store.statuses(events) == [RESOLVED] * len(events)
    assert await store.count_by_status(key, RESOLVED) == len(events)
    assert await store.count_all(key) == len(events)
    assert await store.status_index_total(key) == len(events), "an execution in two indexes"
    job_counts = [await store.job_count(event.id) for event in events]
    assert set(job_counts) == {HEAVY_NODES}, "an execution with missing or extra jobs"
    await eventually(lambda: _inbox_state(store, key), lambda s: s == (0, 0), what="an empty inbox")


async def _inbox_state(store: Store, key: str) -> tuple[int, int]:
    return await store.xlen(key), await store.pending(key)


async def supervisors(settings: Settings) -> dict[str, dict[str, Any]]:
    """The supervisors awake in the pool, by workflow key (summed over executors)."""
    rows: dict[str, dict[str, Any]] = {}
    for executor in handles.executors(settings):
        for row in await executor.supervisors.remote():
            merged = rows.setdefault(row["key"], {"inflight": 0, "dispatched": 0, "finished": 0})
            for counter in merged:
                merged[counter] += row[counter]
    return rows


async def wait_started(store: Store, events: list[TriggerEvent]) -> None:
    """Until the first executions have been recorded (the executors are at work)."""
    await eventually(
        lambda: store.statuses(events),
        lambda statuses: any(s != "missing" for s in statuses),
        interval=0.01,
        what="a first execution",
    )


async def test_executors_run_every_queued_event_to_resolved_and_empty_the_inbox(
    settings: Settings, store: Store
) -> None:
    version = await store.create(async_workflow(4))
    queued_before = await store.enqueue(version, [{"body": {"n": i}} for i in range(150)])
    for executor in handles.executors(settings):
        await executor.ready.remote()
    queued_after = await store.enqueue(version, [{"body": {"n": i}} for i in range(150, 300)])
    events = queued_before + queued_after

    assert await store.wait_final(events) == [RESOLVED] * len(events)
    assert await store.count_by_status(version.key, RESOLVED) == len(events)
    assert await store.status_index_total(version.key) == len(events)
    execution = await store.log.get(queued_before[7].id)
    assert execution is not None and execution.output == {"n": 7}
    assert [j.nodeKey for j in await store.log.jobs(queued_after[0].id)] == ["n", "c0", "c1", "out"]
    await eventually(
        lambda: _inbox_state(store, version.key), lambda s: s == (0, 0), what="an empty inbox"
    )
    awake = await eventually(
        lambda: supervisors(settings),
        lambda rows: rows.get(version.key, {}).get("inflight", 1) == 0,
        what="no execution in flight",
    )
    assert awake[version.key]["dispatched"] == awake[version.key]["finished"] == len(events)
    assert await store.executed(version.id) == len(events)


async def test_killed_executor_is_restarted_and_every_event_still_finishes_exactly_once(
    settings: Settings, store: Store
) -> None:
    version = await store.create(slow_async_workflow(HEAVY_NODES))
    executors = handles.executors(settings)
    for executor in executors:
        await executor.ready.remote()
    events = await store.enqueue(version, [HEAVY_CONTEXT] * MANY)
    await wait_started(store, events)

    ray.kill(executors[0], no_restart=False)
    at_kill = await store.statuses(events)
    assert sum(1 for s in at_kill if s == RESOLVED) < MANY, "all done before the kill"

    await store.wait_final(events)
    await assert_each_final_once(store, version.key, events)
    # Runs the dead executor had started ran again (its pending entries, read by
    # the restarted process); nothing ran more than twice.
    assert MANY <= await store.executed(version.id) < 2 * MANY
    assert await executors[0].ready.remote() == 0  # Ray restarted it under its name


async def test_a_disabled_workflow_drains_what_was_queued_then_its_inbox_is_not_read(
    settings: Settings, store: Store
) -> None:
    version = await store.create(async_workflow(3))
    events = await store.enqueue(version, [{"body": {"n": i}} for i in range(200)])
    await store.workflows.disable(version)
    assert await store.client.hget(store.keys.enabled, version.key) is None
    assert await store.client.sismember(store.keys.draining, version.key)

    for executor in handles.executors(settings):
        await executor.ready.remote()
    assert await store.wait_final(events) == [RESOLVED] * len(events)
    await eventually(
        lambda: store.client.sismember(store.keys.draining, version.key),
        lambda member: not member,
        timeout=30,
        what="the drained inbox left the draining set",
    )
    assert await _inbox_state(store, version.key) == (0, 0)


async def test_a_resume_of_a_disabled_workflow_is_read_again(
    settings: Settings, store: Store
) -> None:
    """A push (a person's submission, a child's end) to a disabled workflow's inbox
    puts it back among the inboxes read, in the same step as its XADD."""
    version = await store.create(async_workflow(3))
    await store.workflows.disable(version)
    for executor in handles.executors(settings):
        await executor.ready.remote()
    await eventually(
        lambda: store.client.sismember(store.keys.draining, version.key),
        lambda member: not member,
        timeout=30,
        what="the empty inbox left the draining set",
    )
    event = store.event(version, {"body": {"n": 5}})
    await store.inbox.push(event)
    assert await store.client.sismember(store.keys.draining, version.key)
    assert await store.wait_final([event]) == [RESOLVED]


async def test_a_supervisor_wakes_on_its_workflows_first_event_and_retires_after_its_linger(
    store: Store,
) -> None:
    settings = msgspec.structs.replace(store.settings, supervisor_linger=1.0)
    version = await store.create(async_workflow(3))
    executors = handles.executors(settings)
    for executor in executors:
        await executor.ready.remote()
    assert version.key not in await supervisors(settings)
    events = await store.enqueue(version, [{"body": {"n": i}} for i in range(20)])
    await store.wait_final(events)
    awake = await supervisors(settings)
    assert awake[version.key]["finished"] == 20
    # nothing runs for longer than the linger: retired at the next maintenance round
    await eventually(
        lambda: supervisors(settings),
        lambda rows: version.key not in rows,
        timeout=20,
        what="the supervisor's retirement",
    )
    # and woken again by the next event, which runs once
    (later,) = await store.enqueue(version, [{"body": {"n": 99}}])
    assert await store.wait_final([later]) == [RESOLVED]
    assert (await supervisors(settings))[version.key]["finished"] == 1
    assert await store.executed(version.id) == 21


async def test_entries_a_dead_consumer_left_pending_are_taken_over_and_run_once(
    store: Store,
) -> None:
    settings = msgspec.structs.replace(store.settings, stale_ms=1000)
    version = await store.create(async_workflow(3))
    await store.inbox.ensure_group(version.key)
    events = await store.enqueue(version, [{"body": {"n": i}} for i in range(5)])
    # a consumer that read them and died (a pool that shrank from 8 executors)
    taken = await store.inbox.read_many("executor:7", [version.key], 100, 100)
    assert len(taken[version.key]) == 5
    for executor in handles.executors(settings):
        await executor.ready.remote()
    assert await store.wait_final(events, timeout=30) == [RESOLVED] * 5
    assert await store.executed(version.id) == 5
    await eventually(
        lambda: _inbox_state(store, version.key), lambda s: s == (0, 0), what="an empty inbox"
    )


async def _delivered(store: Store, key: str, consumer: str, times: int) -> list[str]:
    """Read every entry of `key`'s inbox as `consumer`, `times` times in all (as
    an executor that died with them and restarted `times - 1` times would): their
    delivery counts are Redis's own."""
    stream = store.keys.inbox(key)
    reply = await store.client.xreadgroup(INBOX_GROUP, consumer, {stream: ">"}, count=100)
    for _ in range(times - 1):
        await store.client.xreadgroup(INBOX_GROUP, consumer, {stream: "0"}, count=100)
    return [entry_id.decode() for entry_id, _ in reply[0][1]]


async def test_an_entry_its_executor_died_running_alone_is_quarantined_past_the_limit(
    settings: Settings, store: Store
) -> None:
    """An entry delivered more than the poison limit, whose executor was running
    it alone when it died (the lone-run mark names it), is recorded ERROR,
    reason `crashed_executor`, and acknowledged: it never runs again."""
    version = await store.create(async_workflow(3))
    await store.inbox.ensure_group(version.key)
    (poison,) = await store.enqueue(version, [{"body": {"n": 1}}])
    (entry_id,) = await _delivered(store, version.key, "executor:0", settings.poison_deliveries + 1)
    await store.inbox.mark_lone_run("executor:0", version.key, entry_id)
    healthy = await store.enqueue(version, [{"body": {"n": 2}}])

    for executor in handles.executors(settings):
        await executor.ready.remote()
    (status,) = await store.wait_final([poison])
    assert status == Status.ERROR
    execution = await store.log.get(poison.id)
    assert execution is not None and execution.reason == Reason.CRASHED_EXECUTOR
    assert "quarantined" in (execution.error or "")
    assert await store.log.jobs(poison.id) == []  # it never ran
    assert await store.wait_final(healthy) == [RESOLVED]
    await eventually(
        lambda: _inbox_state(store, version.key), lambda s: s == (0, 0), what="an empty inbox"
    )


async def test_entries_delivered_past_the_limit_but_never_blamed_run_alone_and_succeed(
    settings: Settings, store: Store
) -> None:
    """Entries that shared the batches of a poison entry were delivered as often
    as it was, but no executor died while running one of them alone: they are
    suspects, each run with nothing beside it (marked while it runs), and all
    succeed; none is quarantined and the marks are gone afterwards."""
    version = await store.create(async_workflow(3))
    await store.inbox.ensure_group(version.key)
    mates = await store.enqueue(version, [{"body": {"n": i}} for i in range(5)])
    ids = await _delivered(store, version.key, "executor:0", settings.poison_deliveries + 1)
    await store.inbox.mark_lone_run("executor:0", "another-workflow", ids[0])  # not theirs
    assert await store.inbox.lone_runs() == {("another-workflow", ids[0])}

    for executor in handles.executors(settings):
        await executor.ready.remote()
    assert await store.wait_final(mates) == [RESOLVED] * 5
    assert await store.executed(version.id) == 5
    assert await store.inbox.lone_runs() == set()
    await eventually(
        lambda: _inbox_state(store, version.key), lambda s: s == (0, 0), what="an empty inbox"
    )


async def test_drain_waits_for_running_events_returns_0_and_leaves_unread_entries(
    store: Store,
) -> None:
    # One executor, one event at a time: while the slow one runs nothing else is
    # read, so the drain below starts with no read in flight.
    settings = msgspec.structs.replace(store.settings, max_inflight=1, executors=1)
    version = await store.create(slow_async_workflow(30))  # ~0.6 s with LONG_CONTEXT
    (slow,) = await store.enqueue(version, [LONG_CONTEXT])
    unread = await store.enqueue(version, [{"body": {"xs": [i]}} for i in range(20)])
    (executor,) = handles.executors(settings)
    await eventually(
        lambda: supervisors(settings),
        lambda rows: rows.get(version.key, {}).get("inflight") == 1,
        what="a running event",
    )

    assert await executor.drain.remote(20.0) == 0
    assert await store.statuses([slow]) == [RESOLVED]
    started = time.monotonic()
    assert await executor.drain.remote(20.0) == 0  # nothing runs: at once
    assert time.monotonic() - started < 5.0

    async def untouched() -> bool:
        never_run = await store.statuses(unread) == ["missing"] * len(unread)
        never_read = await _inbox_state(store, version.key) == (len(unread), 0)
        return never_run and never_read

    await holds_for(2.5, untouched, "a draining executor read or ran a new entry")


async def test_entries_queued_right_after_drain_returned_are_not_run(
    settings: Settings, store: Store
) -> None:
    """A graceful shutdown drains, then stops the actors: nothing may start after
    `drain` said nothing runs (not even what a read already in flight returns)."""
    version = await store.create(async_workflow(3))
    (first,) = await store.enqueue(version, [{"body": {"n": 0}}])
    executors = handles.executors(settings)
    await store.wait_final([first])  # idle now: blocked in their inbox reads

    for executor in executors:
        assert await executor.drain.remote(5.0) == 0
    queued = await store.enqueue(version, [{"body": {"n": i}} for i in range(20)])

    async def not_run() -> bool:
        never_run = await store.statuses(queued) == ["missing"] * len(queued)
        still_queued = await store.xlen(version.key) == len(queued)
        return never_run and still_queued

    await holds_for(2.5, not_run, "an entry queued after drain() returned 0 was run")


# -- wake-ups: a read blocks for READ_BLOCK_MS (5 s), yet nothing waits for it -----------


async def _blocking_pool(settings: Settings, store: Store) -> None:
    """Executors at rest, their reads blocked on an existing workflow's inbox."""
    await store.create(async_workflow(3))
    for executor in handles.executors(settings):
        await executor.ready.remote()
    await asyncio.sleep(1.5)  # past the first reads: each blocks now


async def test_a_workflow_enabled_while_the_reads_block_is_read_within_a_second(
    settings: Settings, store: Store
) -> None:
    await _blocking_pool(settings, store)
    for n in range(3):
        version = await store.create(async_workflow(3))
        started = time.monotonic()
        events = await store.enqueue(version, [{"body": {"n": n}}])
        assert await store.wait_final(events) == [RESOLVED]
        waited = time.monotonic() - started
        assert waited < 2.0, f"a new workflow's first event waited {waited:.1f} s"


async def test_a_workflow_at_its_cap_is_read_again_as_soon_as_a_run_ends(store: Store) -> None:
    """With room for one execution, each next event of the workflow is read when
    the previous run ends, not when the read (which left the full inbox out) times
    out."""
    settings = msgspec.structs.replace(store.settings, max_inflight=1)
    await _blocking_pool(settings, store)
    version = await store.create(async_workflow(3))
    await asyncio.sleep(1.0)  # the reads name the new inbox
    started = time.monotonic()
    events = await store.enqueue(version, [{"body": {"n": i}} for i in range(8)])
    assert await store.wait_final(events) == [RESOLVED] * len(events)
    took = time.monotonic() - started
    assert took < 5.0, f"8 events one at a time took {took:.1f} s"


def delay_workflow(seconds: float) -> dict[str, Any]:
    return {
        "title": "actors test (delay)",
        "sync": False,
        "enabled": True,
        "nodes": [
            {"key": "wait", "type": "delay", "config": {"duration": seconds, "unit": 1000}},
            {"key": "out", "type": "output", "config": {"value": 1}},
        ],
    }


async def test_a_delay_timer_fires_on_time_while_the_reads_block(
    settings: Settings, store: Store
) -> None:
    await _blocking_pool(settings, store)
    version = await store.create(delay_workflow(2))
    started = time.monotonic()
    events = await store.enqueue(version, [{}])
    assert await store.wait_final(events) == [RESOLVED]
    took = time.monotonic() - started
    assert 2.0 <= took < 3.5, f"a 2 s delay ended after {took:.1f} s"
