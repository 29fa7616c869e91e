"""store.executions.ExecutionLog against real Redis: executions, jobs, status
indexes, and the atomic final-save-plus-ack (SPEC §7, exactly-once effect)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from hashlib import sha1

import msgspec
import pytest
import redis.asyncio as aioredis

from engine.records import Execution, Job, job_id, new_execution_id, now
from engine.status import Status
from store.batching import PipelineBatcher
from store.connection import EXECUTION_SAVE, Script
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.keys import INBOX_GROUP, Keys
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
        id=execution_id or new_execution_id(),
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


async def index_members(client: aioredis.Redis, index: str) -> list[str]:
    return [m.decode() for m in await client.zrange(index, 0, -1)]


async def pending_entry(client: aioredis.Redis, keys: Keys, inbox: Inbox, key: str = KEY) -> str:
    """An inbox entry delivered to a consumer and not acknowledged."""
    await client.hset(keys.enabled, key, "7")
    entry_id = await inbox.add(event(key, 7))
    await inbox.ensure_group(key)
    (entry,) = await inbox.read_new(key, "c1", count=10, block_ms=200)
    assert entry.id == entry_id
    assert (await client.xpending(keys.inbox(key), INBOX_GROUP))["pending"] == 1
    return entry_id


# -- save and the status indexes -----------------------------------------------------


async def test_save_started_then_resolved_moves_between_status_indexes(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    started = execution(Status.STARTED)
    await log.save(started)
    page, count = await log.page(status=0)
    assert [e.id for e in page] == [started.id] and count == 1
    assert await log.page(status=1) == ([], 0)
    assert await log.statuses([started.id]) == [0]

    resolved = finish(started, Status.RESOLVED, output={"done": True})
    await log.save(resolved)
    assert await log.page(status=0) == ([], 0)
    page, count = await log.page(status=1)
    assert [e.id for e in page] == [started.id] and count == 1
    assert page[0].status == 1 and page[0].output == {"done": True}
    assert (await log.page(key=KEY, status=0))[1] == 0
    assert (await log.page(key=KEY, status=1))[1] == 1
    page, count = await log.page()
    assert [e.id for e in page] == [started.id] and count == 1
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
    page, count = await log.page(status=None)
    assert [e.id for e in page] == [queued.id] and count == 1
    assert page[0].status is None
    await log.save(msgspec.structs.replace(queued, status=0))
    assert await log.page(status=None) == ([], 0)
    assert (await log.page(status=0))[1] == 1


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


async def test_page_is_newest_first_with_paging_and_total_count(log: ExecutionLog) -> None:
    saved = [execution(1, created=T0 + timedelta(seconds=i)) for i in range(5)]
    for e in reversed(saved):  # insertion order must not matter
        await log.save(e)
    newest_first = [e.id for e in reversed(saved)]

    page, count = await log.page(page_size=2)
    assert count == 5 and [e.id for e in page] == newest_first[0:2]
    page, count = await log.page(page=2, page_size=2)
    assert count == 5 and [e.id for e in page] == newest_first[2:4]
    page, count = await log.page(page=3, page_size=2)
    assert count == 5 and [e.id for e in page] == newest_first[4:5]
    page, count = await log.page(page=4, page_size=2)
    assert count == 5 and page == []
    page, count = await log.page()
    assert count == 5 and [e.id for e in page] == newest_first


async def test_page_by_workflow_key_and_status(log: ExecutionLog) -> None:
    a_ok = execution(1, key="a", created=T0)
    a_failed = execution(-1, key="a", created=T0 + timedelta(seconds=1))
    a_ok2 = execution(1, key="a", created=T0 + timedelta(seconds=2))
    b_ok = execution(1, key="b", created=T0 + timedelta(seconds=3))
    for e in (a_ok, a_failed, a_ok2, b_ok):
        await log.save(e)

    def ids(result: tuple[list[Execution], int]) -> tuple[list[str], int]:
        return [e.id for e in result[0]], result[1]

    assert ids(await log.page(key="a")) == ([a_ok2.id, a_failed.id, a_ok.id], 3)
    assert ids(await log.page(key="a", status=1)) == ([a_ok2.id, a_ok.id], 2)
    assert ids(await log.page(key="a", status=-1)) == ([a_failed.id], 1)
    assert ids(await log.page(key="b")) == ([b_ok.id], 1)
    assert ids(await log.page(key="b", status=-1)) == ([], 0)
    assert ids(await log.page(status=1)) == ([b_ok.id, a_ok2.id, a_ok.id], 3)
    assert ids(await log.page(status="1")) == ([b_ok.id, a_ok2.id, a_ok.id], 3)
    assert ids(await log.page(status=Status.RESOLVED)) == ([b_ok.id, a_ok2.id, a_ok.id], 3)
    assert ids(await log.page(key="a", status=1, page=2, page_size=1)) == ([a_ok.id], 2)
    assert ids(await log.page(key="none")) == ([], 0)


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
    assert await inbox.read_pending(KEY, "c1", count=10) == []


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
    payload = msgspec.json.encode(duplicate)
    script_keys, script_args = log._save_args(duplicate, payload, "", (), False)
    assert await EXECUTION_SAVE(client, script_keys, script_args) == 0

    # ... and through the log it only acknowledges the duplicate's entry
    await log.save(duplicate, entry=entry_id)
    assert await log.statuses([e.id]) == [1]
    stored = await log.get(e.id)
    assert stored is not None and stored.status == 1 and stored.output == "first"
    assert (await log.page(status=-1))[1] == 0
    assert (await log.page(status=1))[1] == 1
    assert (await client.xpending(keys.inbox(KEY), INBOX_GROUP))["pending"] == 0
    assert await client.xlen(keys.inbox(KEY)) == 0


async def test_a_restarted_run_does_not_reopen_a_final_execution(log: ExecutionLog) -> None:
    e = execution(0)
    await log.save(finish(e, Status.REJECTED))
    await log.save(e)  # STARTED again, e.g. a redelivered entry before it checks
    assert await log.statuses([e.id]) == [Status.REJECTED]
    assert (await log.page(status=0))[1] == 0


async def test_a_started_execution_may_be_saved_again(log: ExecutionLog) -> None:
    e = execution(0)
    await log.save(e)
    await log.save(msgspec.structs.replace(e, output="progress"))
    stored = await log.get(e.id)
    assert stored is not None and stored.output == "progress"
    assert (await log.page(status=0))[1] == 1


# -- delete -----------------------------------------------------------------------------


async def test_delete_removes_the_execution_its_jobs_and_every_index_entry(
    client: aioredis.Redis, keys: Keys, log: ExecutionLog
) -> None:
    keep = execution(1, created=T0)
    e = execution(0, created=T0 + timedelta(seconds=1))
    await log.save(keep)
    await log.save(e)
    log.save_job(job(e.id, 1))
    log.save_job(job(e.id, 2))
    final = finish(e, Status.FAILED)
    await log.save(final)
    assert len(await log.jobs(e.id)) == 2

    await log.delete(final)
    assert await log.get(e.id) is None
    assert await log.jobs(e.id) == []
    assert await client.exists(keys.execution(e.id), keys.jobs(e.id)) == 0
    assert await log.statuses([e.id]) == ["missing"]
    for index in (
        keys.executions(),
        keys.executions(KEY),
        *(keys.executions(None, s) for s in (None, 0, 1, -1)),
        *(keys.executions(KEY, s) for s in (None, 0, 1, -1)),
    ):
        assert e.id not in await index_members(client, index), index
    assert [x.id for x in (await log.page())[0]] == [keep.id]
    assert (await log.page(status=-1))[1] == 0


async def test_delete_with_entry_acks_the_entry(
    client: aioredis.Redis, keys: Keys, inbox: Inbox, log: ExecutionLog
) -> None:
    entry_id = await pending_entry(client, keys, inbox)
    e = execution(0)
    await log.save(e)
    await log.delete(finish(e, Status.RESOLVED), entry=entry_id)
    assert await log.statuses([e.id]) == ["missing"]
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
    assert [j.id for j in await log.jobs(e.id)] == [j.id for j in jobs]


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


@pytest.mark.parametrize("name", ["inbox_add", "execution_save", "version_enable"])
def test_bundled_scripts_are_addressed_by_their_sha1(name: str) -> None:
    script = Script.load(name)
    assert script.sha == sha1(script.source).hexdigest()
    assert script.source.strip()
