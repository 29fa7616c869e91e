"""store.history.HistoryStore on both stores (SPEC §9): an SQLite file and the
machine's PostgreSQL (a fresh database per test), migrated by store.migrate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import sqlalchemy as sa

from engine.records import Execution, Job, job_id, new_execution_id
from engine.status import Status
from store import migrate
from store.filters import ContextMatch, ExecutionFilter
from store.history import HistoryStore, HistoryUnavailable, archived, sync_url
from store.history_schema import executions
from tests.conftest import fresh_database

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
_encode = msgspec.json.Encoder().encode


def make(
    status: int = Status.RESOLVED,
    *,
    key: str = "hook",
    at: datetime = NOW,
    body: object = None,
    exhausted: bool = False,
    jobs: int = 2,
) -> tuple[Execution, list[Job]]:
    ms = int(at.timestamp() * 1000)
    execution = Execution(
        id=new_execution_id(ms),
        key=key,
        workflowId=3,
        status=status,
        context={"headers": {"x": "1"}, "query": {}, "body": body if body is not None else {}},
        output={"total": 12.5, "items": [1, 2]},
        exhausted=exhausted,
        attempt=2 if exhausted else 1,
        createdAt=at,
        startedAt=at,
        finishedAt=at + timedelta(milliseconds=3),
    )
    job_list = [
        Job(
            id=job_id(execution.id, n),
            executionId=execution.id,
            nodeKey=f"n{n}",
            nodeType="calculation",
            status=Status.RESOLVED,
            result={"n": n},
            startedAt=at,
            updatedAt=at,
        )
        for n in range(1, jobs + 1)
    ]
    return execution, job_list


async def store_all(history: HistoryStore, *runs: tuple[Execution, list[Job]]) -> None:
    await history.upsert([archived(_encode(e), _encode(j)) for e, j in runs])


@pytest.fixture
async def history(history_url: str) -> AsyncIterator[HistoryStore]:
    migrate.upgrade(history_url)
    store = HistoryStore(history_url)
    await store.prepare(NOW)
    yield store
    await store.close()


async def test_a_stored_execution_reads_back_whole_with_its_jobs(history: HistoryStore) -> None:
    execution, jobs = make(body={"data": {"object": {"id": "pi_123", "amount": 1999}}})
    await store_all(history, (execution, jobs))
    found = await history.get(execution.id)
    assert found is not None
    assert found[0] == execution
    assert found[1] == jobs
    assert found[0].createdAt.tzinfo is not None
    assert await history.job(jobs[1].id) == jobs[1]
    assert await history.job(job_id(execution.id, 9)) is None
    assert await history.get(new_execution_id()) is None


async def test_every_column_reads_back_into_its_own_field(history: HistoryStore) -> None:
    """The writer hands the driver plain tuples in the table's column order: a
    value in the wrong place would read back into another field."""
    execution, jobs = make(Status.FAILED, at=NOW.replace(microsecond=123456), exhausted=True)
    execution.reason = "node_failed"
    execution.error = "boom"
    execution.manually = True
    execution.replayOf = new_execution_id()
    execution.parentExecutionId = new_execution_id()
    execution.stack = [new_execution_id()]
    execution.startedAt = NOW + timedelta(seconds=1, microseconds=7)
    execution.finishedAt = None
    await store_all(history, (execution, jobs))
    found = await history.get(execution.id)
    assert found is not None
    assert found[0] == execution
    assert found[0].createdAt.microsecond == 123456
    listed = await history.page(ExecutionFilter(exhausted=True))
    assert [e.id for e in listed] == [execution.id]


async def test_a_time_with_an_offset_or_without_a_fraction_reads_back_as_the_same_instant(
    history: HistoryStore,
) -> None:
    """SQLite keeps times as UTC text: an offset is converted, not dropped, and a
    whole second keeps its (zero) fraction."""
    execution, jobs = make(at=NOW)
    execution.startedAt = NOW.astimezone(timezone(timedelta(hours=2))) + timedelta(seconds=1)
    execution.finishedAt = NOW + timedelta(seconds=2, microseconds=1)
    await store_all(history, (execution, jobs))
    found = await history.get(execution.id)
    assert found is not None
    assert found[0].createdAt == NOW and found[0].createdAt.microsecond == 0
    assert found[0].startedAt == NOW + timedelta(seconds=1)
    assert found[0].startedAt is not None and found[0].startedAt.utcoffset() == timedelta(0)
    assert found[0].finishedAt == NOW + timedelta(seconds=2, microseconds=1)


@pytest.mark.parametrize("output", [3, 1.0, 2.5, "7", "x", None, True, [1, "a"], {"k": None}])
async def test_every_json_value_reads_back_as_it_was(history: HistoryStore, output: object) -> None:
    """SQLite gives a column declared JSON numeric affinity: the text `3` would
    come back as the integer 3 and `1.0` as 1. The columns are TEXT there."""
    execution, jobs = make()
    execution.output = output
    execution.context = {"body": output}
    await store_all(history, (execution, jobs))
    found = await history.get(execution.id)
    assert found is not None
    assert found[0].output == output and type(found[0].output) is type(output)
    assert found[0].context == {"body": output}


async def test_storing_an_execution_again_keeps_one_row(history: HistoryStore) -> None:
    """The writer may commit a batch, crash before deleting the Redis copy, and
    commit it again: the upsert by id leaves one row."""
    execution, jobs = make()
    await store_all(history, (execution, jobs))
    await store_all(history, (execution, jobs))
    assert await history.count(ExecutionFilter()) == 1
    again = msgspec.structs.replace(execution, status=Status.FAILED)
    await store_all(history, (again, jobs))
    assert await history.count(ExecutionFilter()) == 1
    found = await history.get(execution.id)
    assert found is not None and found[0].status == Status.FAILED


async def test_pages_are_newest_first_with_a_count_of_every_match(history: HistoryStore) -> None:
    runs = [make(at=NOW + timedelta(seconds=i)) for i in range(7)]
    await store_all(history, *runs)
    ids = [e.id for e, _ in reversed(runs)]
    page = await history.page(ExecutionFilter(), offset=0, limit=3)
    assert [e.id for e in page] == ids[:3]
    assert [e.id for e in await history.page(ExecutionFilter(), offset=3, limit=3)] == ids[3:6]
    assert page[0].context is None and page[0].output is None  # list rows are summaries
    assert await history.count(ExecutionFilter()) == 7
    after_cursor = await history.page(ExecutionFilter(before=ids[2]), limit=10)
    assert [e.id for e in after_cursor] == ids[3:]


async def test_filters_by_key_status_exhausted_and_time(history: HistoryStore) -> None:
    a1 = make(key="a", at=NOW)
    a2 = make(Status.FAILED, key="a", at=NOW + timedelta(minutes=1), exhausted=True)
    b1 = make(Status.ERROR, key="b", at=NOW + timedelta(minutes=2))
    await store_all(history, a1, a2, b1)

    async def ids(where: ExecutionFilter) -> set[str]:
        found = {e.id for e in await history.page(where, limit=100)}
        assert len(found) == await history.count(where)
        return found

    assert await ids(ExecutionFilter(key="a")) == {a1[0].id, a2[0].id}
    assert await ids(ExecutionFilter(statuses=(-1, -2))) == {a2[0].id, b1[0].id}
    assert await ids(ExecutionFilter(key="a", statuses=(1,))) == {a1[0].id}
    assert await ids(ExecutionFilter(exhausted=True)) == {a2[0].id}
    assert await ids(ExecutionFilter(statuses=(None, 0))) == set()  # never in history
    minute = int((NOW + timedelta(minutes=1)).timestamp() * 1000)
    assert await ids(ExecutionFilter(created_from=minute)) == {a2[0].id, b1[0].id}
    assert await ids(ExecutionFilter(created_to=minute)) == {a1[0].id, a2[0].id}
    assert await ids(ExecutionFilter(created_from=minute, created_to=minute)) == {a2[0].id}


async def test_a_context_path_matches_the_text_form_of_its_value(history: HistoryStore) -> None:
    paid = make(body={"data": {"object": {"id": "pi_123", "amount": 1999, "live": True}}})
    other = make(body={"data": {"object": {"id": "pi_456", "amount": 25.5, "live": False}}})
    listed = make(body={"items": [{"sku": "A-1"}, {"sku": "B-2"}], "data": {"object": {}}})
    await store_all(history, paid, other, listed)

    async def ids(path: tuple[str | int, ...], value: str) -> set[str]:
        where = ExecutionFilter(context=(ContextMatch(path, value),))
        found = {e.id for e in await history.page(where, limit=100)}
        assert len(found) == await history.count(where)
        return found

    obj = ("body", "data", "object")
    assert await ids((*obj, "id"), "pi_123") == {paid[0].id}
    assert await ids((*obj, "amount"), "1999") == {paid[0].id}
    assert await ids((*obj, "amount"), "25.5") == {other[0].id}
    assert await ids((*obj, "live"), "false") == {other[0].id}
    assert await ids((*obj, "id"), "pi_999") == set()
    assert await ids(("body", "items", 1, "sku"), "B-2") == {listed[0].id}
    assert await ids(("body", "items", 0, "sku"), "B-2") == set()  # that index, not any
    assert await ids(("body", "data"), "{}") == set()  # objects match nothing
    assert await ids(("headers", "x"), "1") == {paid[0].id, other[0].id, listed[0].id}


async def test_delete_by_ids_and_by_filter(history: HistoryStore) -> None:
    runs = [make(key="a") for _ in range(3)] + [make(key="b") for _ in range(2)]
    await store_all(history, *runs)
    assert await history.delete([runs[0][0].id, new_execution_id()]) == 1
    assert await history.delete(ExecutionFilter(key="b"), limit=1) == 2
    assert {e.id for e in await history.page(ExecutionFilter(), limit=10)} == {
        runs[1][0].id,
        runs[2][0].id,
    }


async def test_prune_removes_what_is_older_than_the_max_age(history: HistoryStore) -> None:
    old = [make(at=NOW - timedelta(days=15, minutes=i)) for i in range(5)]
    young = [make(at=NOW - timedelta(days=13)), make(at=NOW)]
    await store_all(history, *old, *young)
    pruned = await history.prune(max_age=14 * 86400, max_count=0, now=NOW, batch=2)
    assert pruned == 5
    left = {e.id for e in await history.page(ExecutionFilter(), limit=10)}
    assert left == {e.id for e, _ in young}


async def test_prune_keeps_only_the_newest_max_count(history: HistoryStore) -> None:
    runs = [make(at=NOW - timedelta(seconds=i)) for i in range(6)]
    await store_all(history, *runs)
    assert await history.prune(max_age=0, max_count=4, now=NOW, batch=1) == 2
    left = [e.id for e in await history.page(ExecutionFilter(), limit=10)]
    assert left == [e.id for e, _ in runs[:4]]
    assert await history.prune(max_age=0, max_count=4, now=NOW) == 0
    assert await history.prune(max_age=0, max_count=0, now=NOW) == 0


async def test_postgresql_drops_whole_days_past_the_max_age() -> None:
    """Day partitions (by the time in the execution id) are dropped whole, not
    deleted row by row; what straddles the cut is deleted in batches."""
    with fresh_database() as url:
        await _drop_whole_days(url)


async def _drop_whole_days(history_url: str) -> None:
    migrate.upgrade(history_url)
    history = HistoryStore(history_url)
    try:
        old_day = NOW - timedelta(days=20)
        await history.prepare(old_day)  # that day's partition, as the writer did then
        await history.prepare(NOW)
        old = [make(at=old_day + timedelta(minutes=i)) for i in range(3)]
        recent = [make(at=NOW)]
        await store_all(history, *old, *recent)
        async with history.engine.connect() as conn:
            partition = f"executions_p{old_day:%Y%m%d}"
            before = await conn.exec_driver_sql(
                f"SELECT count(*) FROM {partition}"  # the rows really live there
            )
            assert before.scalar_one() == 3
        await history.prune(max_age=14 * 86400, max_count=0, now=NOW)
        async with history.engine.connect() as conn:
            names = {
                row[0]
                for row in await conn.exec_driver_sql(
                    "SELECT relname FROM pg_class WHERE relname LIKE 'executions_p%%'"
                )
            }
        assert partition not in names
        assert f"executions_p{NOW:%Y%m%d}" in names
        assert await history.count(ExecutionFilter()) == 1
    finally:
        await history.close()


async def test_an_unmigrated_or_unreachable_store_says_it_is_unavailable(
    history_url: str,
) -> None:
    unmigrated = HistoryStore(history_url)
    try:
        assert not await unmigrated.ping()
        with pytest.raises(HistoryUnavailable):
            await unmigrated.get(new_execution_id())
    finally:
        await unmigrated.close()
    nowhere = HistoryStore("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
    try:
        with pytest.raises(HistoryUnavailable):
            await nowhere.count(ExecutionFilter())
    finally:
        await nowhere.close()


async def test_the_queries_table_matches_the_migrated_schema(history: HistoryStore) -> None:
    """The table the queries use names exactly the columns the migrations made."""
    engine = sa.create_engine(sync_url(history.url))  # reflection wants plain JSON decoding
    try:
        migrated = {c["name"] for c in sa.inspect(engine).get_columns("executions")}
    finally:
        engine.dispose()
    assert migrated == {c.name for c in executions.columns}


async def test_count_and_present_answer_from_one_snapshot(history: HistoryStore) -> None:
    """What a merged list needs to count an execution moving meanwhile once."""
    runs = [make(key="a") for _ in range(3)]
    await store_all(history, *runs[:2])
    elsewhere = make(key="b")
    await store_all(history, elsewhere)
    ids = [e.id for e, _ in runs] + [new_execution_id()]
    count, present = await history.count_and_present(ExecutionFilter(key="a"), ids)
    assert count == 2 and present == {runs[0][0].id, runs[1][0].id}
    assert await history.count_and_present(ExecutionFilter(key="c"), []) == (0, set())
