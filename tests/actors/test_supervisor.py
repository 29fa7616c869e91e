"""WorkflowSupervisor against the session's real Ray and the machine's Redis: it
drains its workflow's inbox through the executor pool, survives its own and an
executor's death with every event final exactly once, exits after a disable,
and drains on request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import ray

from actors import pool
from engine.records import TriggerEvent
from engine.settings import Settings
from tests.actors.support import (
    LONG_CONTEXT,
    RESOLVED,
    Store,
    actor_exists,
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


async def wait_started(store: Store, events: list[TriggerEvent]) -> None:
    """Until the first executions have been recorded (the supervisor is at work)."""
    await eventually(
        lambda: store.statuses(events),
        lambda statuses: any(s != "missing" for s in statuses),
        interval=0.01,
        what="a first execution",
    )


async def test_supervisor_runs_every_queued_event_to_resolved_and_empties_the_inbox(
    settings: Settings, store: Store
) -> None:
    version = await store.create(async_workflow(4))
    queued_before = await store.enqueue(version, [{"body": {"n": i}} for i in range(150)])

    supervisor = pool.supervisor(settings, version.key)
    assert await supervisor.start.remote() == version.key
    queued_after = await store.enqueue(version, [{"body": {"n": i}} for i in range(150, 300)])
    events = queued_before + queued_after

    assert await store.wait_final(events) == [RESOLVED] * len(events)
    assert await store.count_by_status(version.key, RESOLVED) == len(events)
    assert await store.status_index_total(version.key) == len(events)
    execution = await store.log.get(queued_before[7].id)
    assert execution is not None and execution.output == {"n": 7}
    assert [j.nodeKey for j in await store.log.jobs(queued_after[0].id)] == [
        "n",
        "c0",
        "c1",
        "out",
    ]
    await eventually(
        lambda: _inbox_state(store, version.key), lambda s: s == (0, 0), what="an empty inbox"
    )
    # Its batch calls return a moment after their executions' final writes.
    stats = await eventually(
        supervisor.stats.remote, lambda s: s["inflight"] == 0, what="no batch in flight"
    )
    assert stats["stopping"] is False
    assert stats["dispatched"] == stats["finished"] == len(events)


async def test_killed_supervisor_is_restarted_and_every_event_finishes_exactly_once(
    settings: Settings, store: Store
) -> None:
    version = await store.create(slow_async_workflow(HEAVY_NODES))
    events = await store.enqueue(version, [HEAVY_CONTEXT] * MANY)
    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()
    await wait_started(store, events)

    ray.kill(supervisor, no_restart=False)
    at_kill = await store.statuses(events)
    assert sum(1 for s in at_kill if s == RESOLVED) < MANY, "all done before the kill"

    await store.wait_final(events)
    await assert_each_final_once(store, version.key, events)
    # The executors outlived the supervisor: a redelivered event joined its run.
    assert await store.executed(version.id) == MANY, "an event ran more than once"
    # The same name answers, from a new process: its counters started from zero and
    # it never dispatched the event(s) already final at the kill.
    handle = pool.supervisor(settings, version.key)

    async def stats() -> dict[str, Any]:
        try:
            return await handle.stats.remote()
        except ray.exceptions.ActorUnavailableError:  # still restarting
            return {"inflight": -1}

    counters = await eventually(stats, lambda s: s["inflight"] == 0, what="no batch in flight")
    assert counters["dispatched"] < MANY


async def test_killed_executor_is_restarted_and_every_event_still_finishes_exactly_once(
    settings: Settings, store: Store
) -> None:
    version = await store.create(slow_async_workflow(HEAVY_NODES))
    events = await store.enqueue(version, [HEAVY_CONTEXT] * MANY)
    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()
    await wait_started(store, events)

    victim = ray.get_actor(pool.executor_name(0), namespace=settings.namespace)
    ray.kill(victim, no_restart=False)
    at_kill = await store.statuses(events)
    assert sum(1 for s in at_kill if s == RESOLVED) < MANY, "all done before the kill"

    await store.wait_final(events)
    await assert_each_final_once(store, version.key, events)
    # Runs the dead executor had started ran again; nothing ran more than twice.
    assert MANY <= await store.executed(version.id) < 2 * MANY
    assert await victim.ready.remote() == 0  # Ray restarted it under its name


async def test_disabled_workflow_supervisor_drains_what_was_queued_then_exits(
    settings: Settings, store: Store
) -> None:
    version = await store.create(async_workflow(3))
    events = await store.enqueue(version, [{"body": {"n": i}} for i in range(200)])
    await store.workflows.disable(version)
    assert await store.client.hget(store.keys.enabled, version.key) is None

    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()

    assert await store.wait_final(events) == [RESOLVED] * len(events)
    name = pool.supervisor_name(version.key)
    await eventually(
        lambda: asyncio.to_thread(actor_exists, name, settings.namespace),
        lambda exists: not exists,
        what="the supervisor's exit",
    )
    assert pool.existing_supervisor(settings, version.key) is None
    assert await _inbox_state(store, version.key) == (0, 0)


async def test_start_keeps_a_stopping_supervisor_alive_when_its_key_is_enabled_again(
    settings: Settings, store: Store
) -> None:
    version = await store.create(slow_async_workflow(40))  # ~0.7 s per event
    slow = await store.enqueue(version, [LONG_CONTEXT] * 3)
    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()
    await eventually(supervisor.stats.remote, lambda s: s["inflight"] > 0, what="a running event")

    await store.workflows.disable(version)
    await supervisor.stop.remote()
    stats = await supervisor.stats.remote()
    assert stats["stopping"] is True and stats["inflight"] > 0

    await store.workflows.enable(version)
    assert await supervisor.start.remote() == version.key
    assert (await supervisor.stats.remote())["stopping"] is False

    await store.wait_final(slow)
    # Past the point where a stopping supervisor exits (nothing running or
    # queued): it still consumes what comes in.
    later = await store.enqueue(version, [{"body": {"xs": [1, 2, 3]}}])
    assert await store.wait_final(later) == [RESOLVED]
    assert actor_exists(pool.supervisor_name(version.key), settings.namespace)
    assert (await supervisor.stats.remote())["stopping"] is False


async def test_drain_waits_for_running_events_returns_0_and_leaves_unread_entries(
    store: Store,
) -> None:
    # One event at a time: while the slow one runs the supervisor reads nothing,
    # so the drain below starts with no read in flight.
    settings = msgspec.structs.replace(store.settings, max_inflight=1)
    version = await store.create(slow_async_workflow(30))  # ~0.6 s with LONG_CONTEXT
    (slow,) = await store.enqueue(version, [LONG_CONTEXT])
    unread = await store.enqueue(version, [{"body": {"xs": [i]}} for i in range(20)])
    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()
    await eventually(supervisor.stats.remote, lambda s: s["inflight"] == 1, what="a running event")

    assert await supervisor.drain.remote(20.0) == 0
    assert await store.statuses([slow]) == [RESOLVED]
    started = time.monotonic()
    assert await supervisor.drain.remote(20.0) == 0  # nothing runs: at once
    assert time.monotonic() - started < 5.0

    async def untouched() -> bool:
        never_run = await store.statuses(unread) == ["missing"] * len(unread)
        never_read = await _inbox_state(store, version.key) == (len(unread), 0)
        return never_run and never_read

    await holds_for(2.5, untouched, "a draining supervisor read or ran a new entry")


async def test_entries_queued_right_after_drain_returned_are_not_run(
    settings: Settings, store: Store
) -> None:
    """A graceful shutdown drains, then stops the actors: nothing may start after
    `drain` said nothing runs (not even what a read already in flight returns)."""
    version = await store.create(async_workflow(3))
    (first,) = await store.enqueue(version, [{"body": {"n": 0}}])
    supervisor = pool.supervisor(settings, version.key)
    await supervisor.start.remote()
    await store.wait_final([first])  # idle now: blocked in its inbox read

    assert await supervisor.drain.remote(5.0) == 0
    queued = await store.enqueue(version, [{"body": {"n": i}} for i in range(20)])

    async def not_run() -> bool:
        never_run = await store.statuses(queued) == ["missing"] * len(queued)
        still_queued = await store.xlen(version.key) == len(queued)
        return never_run and still_queued

    await holds_for(2.5, not_run, "an entry queued after drain() returned 0 was run")
