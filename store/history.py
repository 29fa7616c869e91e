"""The SQL history of final executions (SPEC §9): SQLite (embedded default) or
PostgreSQL, through SQLAlchemy Core (async).

Written only by the history writer, in batches, as an idempotent upsert by
execution id (a batch written twice after a crash leaves one row each); read by
the admin API beside the hot executions in Redis (`store.execution_search`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from engine.records import Execution, Job, execution_id_of_job, id_bound, in_run_order
from store.filters import ExecutionFilter
from store.history_schema import SUMMARY_COLUMNS, executions

log = logging.getLogger("rayhook.history")

#: Name prefix of PostgreSQL's day partitions: executions_p20261204.
_PARTITION = "executions_p"

_jobs = msgspec.json.Decoder(list[Job])
_value = msgspec.json.Decoder()


class HistoryUnavailable(Exception):
    """The history database did not answer (down, unreachable, not migrated)."""


class ArchivedExecution(msgspec.Struct, kw_only=True):
    """A final execution as the history writer receives it from Redis: the
    execution's JSON with its large parts left as raw JSON (they go to SQL as
    they are, never decoded and encoded again), and its jobs' JSON array."""

    id: str
    key: str
    workflowId: int
    status: int
    reason: str | None = None
    context: msgspec.Raw = msgspec.Raw(b"null")
    output: msgspec.Raw = msgspec.Raw(b"null")
    error: str | None = None
    manually: bool = False
    replayOf: str | None = None
    parentExecutionId: str | None = None
    stack: msgspec.Raw = msgspec.Raw(b"[]")
    attempt: int = 1
    exhausted: bool = False
    createdAt: datetime
    startedAt: datetime | None = None
    finishedAt: datetime | None = None
    jobs: msgspec.Raw = msgspec.Raw(b"[]")


_archived = msgspec.json.Decoder(ArchivedExecution)


def archived(execution_json: bytes, jobs_json: bytes) -> ArchivedExecution:
    """Decode a history stream entry (see `store/scripts/execution_save.lua`)."""
    record = _archived.decode(execution_json)
    record.jobs = msgspec.Raw(jobs_json)
    return record


def async_url(url: str) -> str:
    """The SQLAlchemy URL of the async driver for a `sqlite:` or `postgresql:` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"RAYHOOK_HISTORY_URL {url!r}: expected sqlite:///PATH or postgresql://..."
        )
    base = scheme.split("+")[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"RAYHOOK_HISTORY_URL {url!r}: only sqlite and postgresql are supported")


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an invalid URL)"


def sync_url(url: str) -> str:
    """The same database through a blocking driver (migrations): psycopg 3 is
    both; SQLite's is the standard library's."""
    return async_url(url).replace("sqlite+aiosqlite://", "sqlite://")


def _dumps(value: Any) -> str:
    if isinstance(value, msgspec.Raw):
        return bytes(value).decode()
    return msgspec.json.encode(value).decode()


def _raw(data: str | bytes) -> msgspec.Raw:
    """JSON columns come back as raw JSON, decoded by the reader into its types."""
    return msgspec.Raw(data)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url), json_serializer=_dumps, json_deserializer=_raw, **options
    )
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL: readers (the admin API) never block the writer. FULL: a commit
            # is on disk before the Redis copy is deleted.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine


def _upsert_statement(placeholder: str) -> str:
    """INSERT ... ON CONFLICT (id) DO UPDATE over every column, in the table's
    column order (both SQLite and PostgreSQL speak this form)."""
    names = [c.name for c in executions.columns]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
    return (
        f"INSERT INTO executions ({', '.join(names)}) "
        f"VALUES ({', '.join([placeholder] * len(names))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def _sqlite_time(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME storage format, in UTC (what `UTCDateTime`
    reads back)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat, not strftime: a third of the cost, and three per row were 14 %
    # of the writer's samples (docs/performance.md).
    return value.isoformat(" ", "microseconds")[:26]


def _values(
    r: ArchivedExecution,
    when: Callable[[datetime | None], Any],
    flag: Callable[[bool], Any],
) -> tuple[Any, ...]:
    """One row in the table's column order; `when` and `flag` put timestamps and
    booleans in the dialect's form. JSON goes as text (PostgreSQL reads an
    untyped text parameter as the column's json/jsonb)."""
    return (
        r.id, r.key, r.workflowId, r.status, r.reason, r.error, r.attempt,
        flag(r.exhausted), flag(r.manually), r.replayOf, r.parentExecutionId,
        when(r.createdAt), when(r.startedAt), when(r.finishedAt),
        bytes(r.stack).decode(), bytes(r.context).decode(), bytes(r.output).decode(),
        bytes(r.jobs).decode(),
    )  # fmt: skip


def _as_is(value: Any) -> Any:
    return value


_UPSERTS: dict[str, tuple[str, Callable[[ArchivedExecution], tuple[Any, ...]]]] = {
    "sqlite": (_upsert_statement("?"), lambda r: _values(r, _sqlite_time, int)),
    "postgresql": (_upsert_statement("%s"), lambda r: _values(r, _as_is, _as_is)),
}


class HistoryStore:
    """Attributes: the SQLAlchemy `engine` and its `dialect` name."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **options)
        self.dialect = self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        """Whether the database answers and holds the table."""
        try:
            async with self._connect() as conn:
                await conn.execute(sa.select(executions.c.id).limit(1))
            return True
        except HistoryUnavailable:
            return False

    # -- writes ---------------------------------------------------------------------

    async def upsert(self, records: Sequence[ArchivedExecution]) -> None:
        """Store final executions; one already stored is replaced (idempotent).

        The statement goes to the driver as it is, with plain tuples: SQLAlchemy's
        per-value bind processing was two thirds of the writer's CPU per execution,
        and the writer must keep pace with the executors at full speed."""
        if not records:
            return
        statement, values = _UPSERTS[self.dialect]
        async with self._begin() as conn:
            await conn.exec_driver_sql(statement, [values(r) for r in records])

    async def delete(self, where: ExecutionFilter | Sequence[str], *, limit: int = 5000) -> int:
        """Delete executions matching a filter (or these ids), in batches of
        `limit` rows; how many went."""
        deleted = 0
        while True:
            if isinstance(where, ExecutionFilter):
                chosen = sa.select(executions.c.id).where(*self._conditions(where)).limit(limit)
            else:
                chosen = sa.select(executions.c.id).where(executions.c.id.in_(list(where)))
            async with self._begin() as conn:
                result = await conn.execute(
                    sa.delete(executions).where(executions.c.id.in_(chosen.scalar_subquery()))
                )
            count = result.rowcount or 0
            deleted += count
            if count < limit or not isinstance(where, ExecutionFilter):
                return deleted

    # -- retention ------------------------------------------------------------------

    async def prepare(self, now: datetime) -> None:
        """PostgreSQL: the day partitions from yesterday to the day after
        tomorrow exist (ids of a day then never land in the default partition,
        which would keep that day's partition from being created)."""
        if self.dialect != "postgresql":
            return
        today = now.astimezone(UTC).date()
        async with self._begin() as conn:
            for offset in (-1, 0, 1, 2):
                day = today + timedelta(days=offset)
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                low = id_bound(int(start.timestamp() * 1000))
                high = id_bound(int((start + timedelta(days=1)).timestamp() * 1000))
                await conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {_PARTITION}{day:%Y%m%d} PARTITION OF "
                    f"executions FOR VALUES FROM ('{low}') TO ('{high}')"
                )

    async def prune(
        self, *, max_age: float, max_count: int, now: datetime, batch: int = 2000
    ) -> int:
        """Delete what retention no longer keeps (SPEC §9): executions created
        more than `max_age` seconds ago (0: keep all), and the oldest beyond
        `max_count` (0: no limit). Whole days go at once on PostgreSQL
        (a partition dropped); the rest in batches of `batch` rows, each its own
        short transaction, so the writer's commits interleave. How many went
        (estimated for dropped partitions)."""
        cut: str | None = None
        if max_age > 0:
            cut = id_bound(int((now.timestamp() - max_age) * 1000))
        if max_count > 0:
            query = (
                sa.select(executions.c.id)
                .order_by(executions.c.id.desc())
                .offset(max_count)
                .limit(1)
            )
            async with self._connect() as conn:
                oldest_kept = (await conn.execute(query)).scalar_one_or_none()
            if oldest_kept is not None:
                # It goes too: cut just above it (no fixed-length id lies between
                # an id and the id followed by "0").
                above = oldest_kept + "0"
                cut = above if cut is None else max(cut, above)
        if cut is None:
            return 0
        pruned = await self._drop_days_before(cut)
        while True:
            doomed = (
                sa.select(executions.c.id)
                .where(executions.c.id < cut)
                .order_by(executions.c.id)
                .limit(batch)
            )
            async with self._begin() as conn:
                result = await conn.execute(
                    sa.delete(executions).where(executions.c.id.in_(doomed.scalar_subquery()))
                )
            count = result.rowcount or 0
            pruned += count
            if count < batch:
                return pruned
            await asyncio.sleep(0.05)  # room for the writer's next commit

    async def _drop_days_before(self, cut: str) -> int:
        """PostgreSQL: drop the day partitions whose every id is below `cut`."""
        if self.dialect != "postgresql":
            return 0
        async with self._connect() as conn:
            rows = (
                await conn.exec_driver_sql(
                    "SELECT c.relname, c.reltuples FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'executions'::regclass"
                )
            ).all()
        dropped = 0
        for row in rows:
            name, estimate = str(row._mapping["relname"]), float(row._mapping["reltuples"])
            match = re.fullmatch(_PARTITION + r"(\d{8})", name)
            if match is None:
                continue
            day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
            high = id_bound(int((day + timedelta(days=1)).timestamp() * 1000))
            if high <= cut:
                async with self._begin() as conn:
                    await conn.exec_driver_sql(f"ALTER TABLE executions DETACH PARTITION {name}")
                    await conn.exec_driver_sql(f"DROP TABLE {name}")
                dropped += max(0, int(estimate))
                log.info("history: dropped partition %s (about %d executions)", name, estimate)
        return dropped

    # -- reads ----------------------------------------------------------------------

    async def get(self, execution_id: str) -> tuple[Execution, list[Job]] | None:
        async with self._connect() as conn:
            row = (
                await conn.execute(sa.select(executions).where(executions.c.id == execution_id))
            ).first()
        if row is None:
            return None
        return execution_of_row(row), in_run_order(_jobs.decode(row.jobs))

    async def job(self, job_id: str) -> Job | None:
        found = await self.get(execution_id_of_job(job_id))
        if found is None:
            return None
        return next((j for j in found[1] if j.id == job_id), None)

    async def page(
        self, where: ExecutionFilter, *, offset: int = 0, limit: int = 20
    ) -> list[Execution]:
        """Newest first, without context, output and jobs (a list row)."""
        query = (
            sa.select(*SUMMARY_COLUMNS)
            .where(*self._conditions(where))
            .order_by(executions.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [execution_of_row(row) for row in rows]

    async def count(self, where: ExecutionFilter) -> int:
        query = sa.select(sa.func.count()).select_from(executions).where(*self._conditions(where))
        async with self._connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def count_and_present(
        self, where: ExecutionFilter, ids: Sequence[str]
    ) -> tuple[int, set[str]]:
        """The count of `where`'s matches and which of `ids` are stored, from one
        statement, hence one snapshot: an execution committed meanwhile is in
        both answers or in neither (a merged list counts it once)."""
        counted = (
            sa.select(sa.cast(sa.func.count(), sa.String).label("v"), sa.literal(1).label("kind"))
            .select_from(executions)
            .where(*self._conditions(where))
        )
        statement: Any = counted
        if ids:
            stored = sa.select(executions.c.id.label("v"), sa.literal(0).label("kind")).where(
                executions.c.id.in_(list(ids))
            )
            statement = sa.union_all(counted, stored)
        async with self._connect() as conn:
            rows = (await conn.execute(statement)).all()
        count = next(int(row.v) for row in rows if row.kind == 1)
        return count, {row.v for row in rows if row.kind == 0}

    async def present(self, ids: Iterable[str]) -> set[str]:
        """Which of these executions are stored."""
        wanted = list(ids)
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            query = sa.select(executions.c.id).where(executions.c.id.in_(wanted[i : i + 500]))
            async with self._connect() as conn:
                found.update((await conn.execute(query)).scalars())
        return found

    async def statuses(self, ids: Sequence[str]) -> dict[str, int]:
        query = sa.select(executions.c.id, executions.c.status).where(
            executions.c.id.in_(list(ids))
        )
        async with self._connect() as conn:
            return {row.id: row.status for row in (await conn.execute(query)).all()}

    # -- the WHERE clause of a filter -----------------------------------------------------

    def _conditions(self, where: ExecutionFilter) -> list[sa.ColumnElement[bool]]:
        c = executions.c
        conditions: list[sa.ColumnElement[bool]] = []
        if where.key is not None:
            conditions.append(c.workflow_key == where.key)
        if where.statuses:
            final = [s for s in where.statuses if s is not None and s != 0]
            conditions.append(c.status.in_(final) if final else sa.false())
        if where.exhausted is not None:
            conditions.append(c.exhausted == where.exhausted)
        if (low := where.id_low) is not None:
            conditions.append(c.id >= low)
        if (high := where.id_high) is not None:
            conditions.append(c.id < high)
        for match in where.context:
            conditions.append(self._context_equals(match.path, match.value))
        return conditions

    def _context_equals(self, path: tuple[str | int, ...], value: str) -> sa.ColumnElement[bool]:
        """The context's value at `path`, in its text form (`store.filters.text_form`),
        equals `value`."""
        context = executions.c.context
        if self.dialect == "postgresql":
            segments = tuple(str(p) for p in path)
            at = context[segments]
            exact = sa.and_(
                sa.func.jsonb_typeof(at).in_(("string", "number", "boolean")),
                at.as_string() == value,
            )
            # Containment uses the GIN index; the exact test above rechecks it
            # (an index inside an array matches any item in containment).
            probes = [
                sa.cast(sa.literal(_contained(path, candidate)), postgresql.JSONB)
                for candidate in _scalar_candidates(value)
            ]
            return sa.and_(sa.or_(*(context.op("@>")(p) for p in probes)), exact)
        json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in path)
        kind = sa.func.json_type(context, json_path)
        text = sa.case(
            (kind == "true", "true"),
            (kind == "false", "false"),
            (
                kind.in_(("text", "integer", "real")),
                sa.cast(sa.func.json_extract(context, json_path), sa.Text),
            ),
            else_=None,
        )
        return text == value

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> _Guarded:
        return _Guarded(self.engine, begin=False)

    def _begin(self) -> _Guarded:
        return _Guarded(self.engine, begin=True)


#: Errors that mean "the database cannot answer now" (down, unreachable, not
#: migrated yet, locked too long), as opposed to a bug in a query.
_UNAVAILABLE = (sa.exc.DBAPIError, OSError, TimeoutError)


class _Guarded:
    """A connection (or a transaction) whose database errors surface as
    `HistoryUnavailable`: callers decide between 503 and a later retry."""

    def __init__(self, engine: AsyncEngine, *, begin: bool) -> None:
        self._context = engine.begin() if begin else engine.connect()

    async def __aenter__(self) -> AsyncConnection:
        try:
            return await self._context.__aenter__()
        except _UNAVAILABLE as exc:
            raise HistoryUnavailable(_first_line(exc)) from exc

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._context.__aexit__(*exc_info)
        except _UNAVAILABLE as exc:
            raise HistoryUnavailable(_first_line(exc)) from exc
        if isinstance(exc_info[1], _UNAVAILABLE):
            raise HistoryUnavailable(_first_line(exc_info[1])) from exc_info[1]


def _first_line(exc: BaseException) -> str:
    """The database's own words, without SQLAlchemy's statement dump."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _scalar_candidates(value: str) -> list[Any]:
    """The JSON scalars whose text form can be `value`."""
    candidates: list[Any] = [value]
    if value in ("true", "false"):
        candidates.append(value == "true")
    else:
        try:
            number = msgspec.json.decode(value)
        except msgspec.DecodeError:
            number = None
        if isinstance(number, int | float) and not isinstance(number, bool):
            candidates.append(number)
    return candidates


def _contained(path: tuple[str | int, ...], value: Any) -> str:
    doc: Any = value
    for segment in reversed(path):
        doc = [doc] if isinstance(segment, int) else {segment: doc}
    return msgspec.json.encode(doc).decode()


def execution_of_row(row: Any) -> Execution:
    mapping = row._mapping
    return Execution(
        id=row.id,
        key=row.workflow_key,
        workflowId=row.workflow_id,
        status=row.status,
        reason=row.reason,
        context=_decoded(mapping.get("context")),
        output=_decoded(mapping.get("output")),
        error=row.error,
        manually=bool(row.manually),
        replayOf=row.replay_of,
        parentExecutionId=row.parent_execution_id,
        stack=_decoded(mapping.get("stack")) or [],
        attempt=row.attempt,
        exhausted=bool(row.exhausted),
        createdAt=row.created_at,
        startedAt=row.started_at,
        finishedAt=row.finished_at,
    )


def _decoded(raw: msgspec.Raw | None) -> Any:
    return None if raw is None else _value.decode(raw)
