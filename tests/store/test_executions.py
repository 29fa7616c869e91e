"""store.executions.ExecutionLog against real Redis: executions, jobs, status
indexes, and the atomic final-save-plus-ack (SPEC §7, exactly-once effect)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from engine.records import Execution, Job, job_id, new_execution_id, now
from engine.status import Status
from store.batching import PipelineBatcher
from store.connection import EXECUTION_SAVE, Script
from store.executions import ExecutionLog
from store.filters import ContextMatch, ExecutionFilter
from store.history_queue import MOVED_CHUNK, READ_CHUNK, HistoryQueue
from store.inbox import Inbox
from store.keys import HISTORY_GROUP, INBOX_GROUP, Keys
from tests.store.helpers import event

KEY = "hook"
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def execution(
    status: int | None = Status.STARTED,
    *,
    key: str = KEY,
    created: datetime | None = None,
    execution_id: str | None = None,
) -> Execution:
    created = created or now()
    return Execution(
        id=execution_id or new_execution_id(int(created.timestamp() * 1000)),
        key=key,
        workflowId=7,
        status=None if status is None else int(status),
        context={"body": {"a": 1}},
        createdAt=created,
        startedAt=created,
    )


def job(execution_id: str, sequence: int, status: int = Status.RESOLVED) -> Job:
    return Job(
        id=job_id(execution_id, sequence),
        executionId=execution_id,
        nodeKey=f"node{sequence}",
        nodeType="output",
        status=int(status),
        result={"n": sequence},
        startedAt=T0,
        updatedAt=T0,
    )


def finish(e: Execution, status: int, **changes) -> Execution:
    return msgspec.structs.replace(e, status=int(status), finishedAt=now(), **changes)


async def hot(log: ExecutionLog, **where: Any) -> list[str]:
    """Ids of the hot executions a filter matches, newest first."""
    return [e.id for e in await log.hot(ExecutionFilter(**where))]


async def index_members(client: aioredis.Redis, index: str) -> list[str]:
    return [m.decode() for m in await client.zrange(index, 0, -1)]


async def pending_entry(client: aioredis.Redis, keys: Keys, inbox: Inbox, key: str = KEY) -> str:
    """An inbox entry delivered to a consumer and not acknowledged."""
    await client.hset(keys.enabled, key, "7")
    entry_id = await inbox.add(event(key, 7))
    await inbox.ensure_group(key)
    (entry,) = (await inbox.read_many("c1", [key], 10, 200))[key]
    assert entry.id == entry_id
    assert (await client.xpending(keys.inbox(key), INBOX_GROUP))["pending"] == 1
    return entry_id


# -- save and the status indexes -----------------------------------------------------


async def test_save_started_then_resolved_moves_between_status_indexes(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    started = execution(Status.STARTED)
    await log.save(started)
    assert await hot(log, statuses=(0,)) == [started.id]
    assert await hot(log, statuses=(1,)) == []
    assert await log.statuses([started.id]) == [0]

    resolved = finish(started, Status.RESOLVED, output={"done": True})
    await log.save(resolved)
    assert await hot(log, statuses=(0,)) == []
    (found,) = await log.hot(ExecutionFilter(statuses=(1,)))
    assert found.id == started.id and found.status == 1 and found.output == {"done": True}
    assert await hot(log, key=KEY, statuses=(0,)) == []
    assert await hot(log, key=KEY, statuses=(1,)) == [started.id]
    assert await hot(log) == [started.id]
    assert await log.statuses([started.id]) == [1]
    assert await index_members(client, keys.executions(None, 0)) == []
    assert await index_members(client, keys.executions(KEY, 0)) == []

    got = await log.get(started.id)
    assert got is not None and got.status == 1 and got.finishedAt is not None
    stored = await log.get(started.id)
    assert stored is not None and stored.status == 1


async def test_save_of_a_queued_execution_indexes_it_as_null(log: ExecutionLog) -> None:
    queued = execution(None)
    await log.save(queued)
    assert await log.statuses([queued.id]) == [None]
    assert await hot(log, statuses=(None,)) == [queued.id]
    await log.save(msgspec.structs.replace(queued, status=0))
    assert await hot(log, statuses=(None,)) == []
    assert await hot(log, statuses=(0,)) == [queued.id]


async def test_get_of_an_unknown_execution_is_none(log: ExecutionLog) -> None:
    assert await log.get("nope") is None
    assert await log.get("nope") is None


async def test_statuses_gives_int_none_or_missing(log: ExecutionLog) -> None:
    queued, started, failed = execution(None), execution(0), execution(0)
    await log.save(queued)
    await log.save(started)
    await log.save(failed)
    await log.save(finish(failed, Status.FAILED))
    assert await log.statuses([started.id, queued.id, "never-stored", failed.id]) == [
        0,
        None,
        "missing",
        -1,
    ]
    assert await log.statuses([]) == []


async def test_hot_executions_are_listed_newest_first(log: ExecutionLog) -> None:
    saved = [execution(1, created=T0 + timedelta(seconds=i)) for i in range(5)]
    for e in reversed(saved):  # insertion order must not matter
        await log.save(e)
    newest_first = sorted((e.id for e in saved), reverse=True)
    assert await hot(log) == newest_first
    assert await hot(log, before=newest_first[1]) == newest_first[2:]


async def test_hot_executions_by_workflow_key_status_time_and_context(log: ExecutionLog) -> None:
    a_ok = execution(1, key="a", created=T0)
    a_failed = execution(-1, key="a", created=T0 + timedelta(seconds=1))
    a_ok2 = execution(1, key="a", created=T0 + timedelta(seconds=2))
    b_ok = execution(1, key="b", created=T0 + timedelta(seconds=3))
    b_ok.context = {"body": {"a": 2}}
    for e in (a_ok, a_failed, a_ok2, b_ok):
        await log.save(e)
    assert set(await hot(log, key="a")) == {a_ok2.id, a_failed.id, a_ok.id}
    assert set(await hot(log, key="a", statuses=(1,))) == {a_ok2.id, a_ok.id}
    assert await hot(log, key="a", statuses=(-1,)) == [a_failed.id]
    assert set(await hot(log, statuses=(1, -1), key="a")) == {a_ok2.id, a_ok.id, a_failed.id}
    assert await hot(log, key="b", statuses=(-1,)) == []
    assert await hot(log, key="none") == []
    second = int((T0 + timedelta(seconds=1)).timestamp() * 1000)
    assert set(await hot(log, created_from=second, created_to=second + 1000)) == {
        a_failed.id,
        a_ok2.id,
    }
    body_a = ContextMatch(("body", "a"), "2")
    assert await hot(log, context=(body_a,)) == [b_ok.id]


# -- jobs -------------------------------------------------------------------------------


async def test_jobs_are_read_back_in_order(log: ExecutionLog, batcher: PipelineBatcher) -> None:
    e = execution(0)
    saved = [job(e.id, i) for i in range(1, 13)]  # 10..12 sort after 9
    for j in reversed(saved):
        log.save_job(j)
    await log.save(e)  # awaited after the fired jobs: they are stored too
    jobs = await log.jobs(e.id)
    assert [j.id for j in jobs] == [j.id for j in saved]
    assert jobs[0].result == {"n": 1} and jobs[0].startedAt == T0
    assert jobs == saved

    assert await log.job(saved[9].id) == saved[9]
    assert await log.job(job_id(e.id, 99)) is None
    assert await log.jobs("no-such-execution") == []


async def test_save_job_overwrites_the_same_job(
    log: ExecutionLog, batcher: PipelineBatcher
) -> None:
    e = execution(0)
    log.save_job(job(e.id, 1, status=Status.STARTED))
    log.save_job(job(e.id, 1, status=Status.RESOLVED))
    await batcher.drain()
    (only,) = await log.jobs(e.id)
    assert only.status == 1


# -- final save with an inbox entry ----------------------------------------------------


async def test_final_save_with_entry_acks_and_deletes_the_entry(
    client: aioredis.Redis, keys: Keys, inbox: Inbox, log: ExecutionLog
) -> None:
    entry_id = await pending_entry(client, keys, inbox)
    e = execution(0)
    await log.save(e)
    assert await client.xlen(keys.inbox(KEY)) == 1

    await log.save(finish(e, Status.RESOLVED), entry=entry_id)
    assert (await client.xpending(keys.inbox(KEY), INBOX_GROUP))["pending"] == 0
    assert await client.xlen(keys.inbox(KEY)) == 0
    assert await log.statuses([e.id]) == [1]
    assert await inbox.read_own("c1", {KEY: "0"}, 10) == {}


async def test_save_without_entry_leaves_the_inbox_alone(
    client: aioredis.Redis, keys: Keys, inbox: Inbox, log: ExecutionLog
) -> None:
    await pending_entry(client, keys, inbox)
    await log.save(execution(Status.RESOLVED))
    assert (await client.xpending(keys.inbox(KEY), INBOX_GROUP))["pending"] == 1
    assert await client.xlen(keys.inbox(KEY)) == 1


async def test_a_final_status_is_never_overwritten(
    client: aioredis.Redis, keys: Keys, inbox: Inbox, log: ExecutionLog
) -> None:
    e = execution(0)
    await log.save(e)
    await log.save(finish(e, Status.RESOLVED, output="first"))

    # a duplicate run (redelivered entry) ends differently: the script refuses ...
    entry_id = await pending_entry(client, keys, inbox)
    duplicate = finish(e, Status.FAILED, output="second")
    script_keys, script_args = log._save_args(duplicate, None, (), False, (), (), True)
    assert await EXECUTION_SAVE(client, script_keys, script_args) == 0

    # ... and through the log it only acknowledges the duplicate's entry
    await log.save(duplicate, entry=entry_id)
    assert await log.statuses([e.id]) == [1]
    stored = await log.get(e.id)
    assert stored is not None and stored.status == 1 and stored.output == "first"
    assert await hot(log, statuses=(-1,)) == []
    assert await hot(log, statuses=(1,)) == [e.id]
    assert (await client.xpending(keys.inbox(KEY), INBOX_GROUP))["pending"] == 0
    assert await client.xlen(keys.inbox(KEY)) == 0


async def test_the_save_that_stores_a_runs_end_publishes_its_sync_reply_once(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    """A sync call's reply travels with the write of its run's end: by the time
    it is heard, the end is stored. A save that stores nothing (the end was
    recorded already) publishes nothing: the executor then answers itself."""
    channel = keys.sync_replies("caller")
    listener = client.pubsub()
    await listener.subscribe(channel)
    assert (await listener.get_message(timeout=5))["type"] == "subscribe"
    e = execution(0)
    try:
        resolved = finish(e, Status.RESOLVED, output="first")
        assert await log.save(resolved, publish=(channel, b"the reply")) is True
        heard = await listener.get_message(timeout=5)
        assert heard is not None and heard["data"] == b"the reply"
        assert await log.statuses([e.id]) == [Status.RESOLVED]

        again = finish(e, Status.FAILED, output="second")
        assert await log.save(again, publish=(channel, b"a second reply")) is False
        assert await listener.get_message(timeout=0.5) is None
        assert await log.save(execution(0), publish=None) is True  # nothing to publish
        assert await listener.get_message(timeout=0.5) is None
    finally:
        await listener.aclose()


async def test_a_restarted_run_does_not_reopen_a_final_execution(log: ExecutionLog) -> None:
    e = execution(0)
    await log.save(finish(e, Status.REJECTED))
    await log.save(e)  # STARTED again, e.g. a redelivered entry before it checks
    assert await log.statuses([e.id]) == [Status.REJECTED]
    assert await hot(log, statuses=(0,)) == []


async def test_a_started_execution_may_be_saved_again(log: ExecutionLog) -> None:
    e = execution(0)
    await log.save(e)
    await log.save(msgspec.structs.replace(e, output="progress"))
    stored = await log.get(e.id)
    assert stored is not None and stored.output == "progress"
    assert await hot(log, statuses=(0,)) == [e.id]


# -- final executions: queued for the history, or dropped ---------------------------


async def test_a_final_execution_waits_on_the_history_stream_with_all_its_jobs(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    """Its hot keys go; it stays readable (stream entry + `moving`) and listed
    until the history writer has moved it."""
    e = execution(0)
    await log.save(e)
    log.save_job(job(e.id, 1))  # written while it ran
    final = finish(e, Status.FAILED, output={"why": "x"})
    await log.save(final, jobs=[job(e.id, 2)])
    assert await client.exists(keys.execution(e.id), keys.jobs(e.id)) == 0
    ((entry_id, fields),) = await client.xrange(keys.history)
    assert await client.hget(keys.moving, e.id) == entry_id
    assert msgspec.json.decode(fields[b"x"])["status"] == -1
    assert [j["id"] for j in msgspec.json.decode(fields[b"j"])] == [
        job(e.id, 1).id,
        job(e.id, 2).id,
    ] or [j["id"] for j in msgspec.json.decode(fields[b"j"])] == [job(e.id, 2).id, job(e.id, 1).id]
    found = await log.get_with_jobs(e.id)
    assert found is not None
    assert found[0] == final
    assert [j.id for j in found[1]] == [job(e.id, 1).id, job(e.id, 2).id]
    assert await log.job(job(e.id, 2).id) == job(e.id, 2)
    assert await hot(log, statuses=(-1,)) == [e.id]
    assert await log.statuses([e.id]) == [-1]


async def test_history_moved_forgets_every_redis_copy(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    queue = HistoryQueue(client, keys)
    await queue.ensure_group()
    e = execution(1)
    await log.save(e, jobs=[job(e.id, 1)])
    (taken,) = await queue.take("w", 10, 100)
    assert taken.record.id == e.id and taken.record.status == 1
    assert await queue.moved([taken.copy]) == []
    assert await client.xlen(keys.history) == 0
    assert (await client.xpending(keys.history, HISTORY_GROUP))["pending"] == 0
    assert await client.hlen(keys.moving) == 0
    assert await log.statuses([e.id]) == ["missing"]
    assert await log.get(e.id) is None
    for index in (keys.executions(), keys.executions(KEY), keys.executions(KEY, 1)):
        assert await index_members(client, index) == []
    # forgetting it again (the call retried after its reply was lost) changes
    # nothing and names nothing gone: the writer must keep its SQL row
    assert await queue.moved([taken.copy]) == []


async def test_a_batch_larger_than_a_chunk_is_taken_and_forgotten_whole(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    """The writer reads and forgets in chunks (Redis serves the webhooks in
    between): a batch spanning several chunks is still taken up to its count,
    in order, and forgotten whole; what is beyond the count stays queued."""
    queue = HistoryQueue(client, keys)
    await queue.ensure_group()
    total = READ_CHUNK + MOVED_CHUNK + 7
    saved = [execution(1) for _ in range(total)]
    for e in saved:
        await log.save(e)
    taken = await queue.take("w", total - 3, 100)
    assert [t.record.id for t in taken] == [e.id for e in saved[: total - 3]]
    assert await queue.moved([t.copy for t in taken]) == []
    assert await client.xlen(keys.history) == 3
    assert await client.hlen(keys.moving) == 3
    rest = await queue.take("w", total, 100)
    assert [t.record.id for t in rest] == [e.id for e in saved[total - 3 :]]
    assert await queue.moved([t.copy for t in rest]) == []
    assert await client.xlen(keys.history) == 0
    assert (await client.xpending(keys.history, HISTORY_GROUP))["pending"] == 0
    assert await index_members(client, keys.executions(KEY)) == []


async def test_the_writer_learns_which_executions_were_destroyed_while_it_committed(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    queue = HistoryQueue(client, keys)
    await queue.ensure_group()
    kept, doomed = execution(1), execution(2)
    for e in (kept, doomed):
        await log.save(e, jobs=[job(e.id, 1)])
    taken = await queue.take("w", 10, 100)
    by_id = {t.record.id: t for t in taken}
    # a destroy forgets one while the writer holds both
    assert await queue.moved([by_id[doomed.id].copy], destroyed=True) == []
    assert await client.ttl(keys.destroyed(doomed.id)) > 3600
    assert sorted(await queue.moved([t.copy for t in taken])) == [doomed.id]
    assert not await client.exists(keys.destroyed(doomed.id))
    assert await queue.moved([t.copy for t in taken]) == []  # and once only


async def test_an_execution_not_kept_is_forgotten_at_once(
    client: aioredis.Redis, keys: Keys, inbox: Inbox, log: ExecutionLog
) -> None:
    entry_id = await pending_entry(client, keys, inbox)
    e = execution(0)
    await log.save(e)
    log.save_job(job(e.id, 1))
    await log.save(finish(e, Status.RESOLVED), entry=entry_id, keep=False)
    assert await log.get(e.id) is None
    assert await client.exists(keys.execution(e.id), keys.jobs(e.id)) == 0
    assert await client.xlen(keys.history) == 0
    assert await log.statuses([e.id]) == ["missing"]
    assert await hot(log) == []
    assert (await client.xpending(keys.inbox(KEY), INBOX_GROUP))["pending"] == 0
    assert await client.xlen(keys.inbox(KEY)) == 0


# -- executed counter -------------------------------------------------------------------


async def test_mark_executed_and_a_counted_final_save_increment_the_version_counter(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    assert await log.mark_executed(41) == 1
    e = execution(Status.RESOLVED)
    e.workflowId = 41
    await log.save(e, count_run=True)
    assert int(await client.get(keys.executed(41))) == 2
    uncounted = execution(Status.RESOLVED)
    uncounted.workflowId = 41
    await log.save(uncounted)
    assert int(await client.get(keys.executed(41))) == 2


async def test_a_final_save_writes_the_jobs_it_carries(log: ExecutionLog) -> None:
    e = execution(Status.RESOLVED)
    jobs = [job(e.id, n) for n in (1, 2, 3)]
    await log.save(e, jobs=jobs)
    assert await log.jobs(e.id) == jobs


# -- scripts Redis does not know yet (NOSCRIPT) --------------------------------------


def unique_script() -> Script:
    source = f"-- probe {secrets.token_hex(16)}\nreturn ARGV[1]\n".encode()
    return Script("probe", source, sha1(source).hexdigest())


async def test_batcher_loads_a_script_redis_does_not_know(
    client: aioredis.Redis, batcher: PipelineBatcher
) -> None:
    script = unique_script()
    assert await client.script_exists(script.sha) == [False]
    first = batcher.submit_script(script, [], ["hello"])
    second = batcher.submit_script(script, [], ["world"])
    other = batcher.submit("ECHO", "in between")
    assert await first == b"hello"
    assert await second == b"world"
    assert await other == b"in between"
    assert await client.script_exists(script.sha) == [True]
    assert await batcher.submit_script(script, [], ["again"]) == b"again"


async def test_script_call_loads_a_script_redis_does_not_know(client: aioredis.Redis) -> None:
    script = unique_script()
    assert await client.script_exists(script.sha) == [False]
    assert await script(client, [], ["direct"]) == b"direct"
    assert await client.script_exists(script.sha) == [True]


@pytest.mark.parametrize(
    "name", ["inbox_add", "execution_save", "version_enable", "history_moved", "timers_fire"]
)
def test_bundled_scripts_are_addressed_by_their_sha1(name: str) -> None:
    script = Script.load(name)
    assert script.sha == sha1(script.source).hexdigest()
    assert script.source.strip()
