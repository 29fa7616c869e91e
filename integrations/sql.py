"""The sql node's databases (psycopg 3): one connection pool per configured
data source (`RAYHOOK_SQL_<NAME>=postgresql://...`), kept in the process's
`Effects`.

Values go in as bound parameters (objects as jsonb); what comes back is JSON:
numeric as text (as node-postgres gives it), timestamps as ISO 8601 text, bytea
as `\\x` hex. A database error is `EffectFailed` with `{message, code}` (code:
the SQLSTATE).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.effects import EffectFailed, Effects
from engine.jsvalues import iso_datetime
from engine.settings import Settings

POOL_MAX_SIZE = 10
#: How long a query waits for a free connection before it fails.
POOL_TIMEOUT_S = 10.0


class SqlQueries:
    """The `engine.effects.SqlQueries` port over psycopg pools."""

    async def execute(
        self, effects: Effects, source: str, text: str, params: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        bound = {n: _parameter(v) for n, v in params.items()} if params is not None else None
        opener = functools.partial(open_pool, source)
        try:
            pool = await effects.client(f"sql:{source}", opener, close_pool)
            return await execute(pool, text, bound)
        except (psycopg.Error, PoolTimeout) as exc:
            result: dict[str, Any] = {"message": _message(exc, source)}
            if getattr(exc, "sqlstate", None):
                result["code"] = exc.sqlstate  # type: ignore[union-attr]
            raise EffectFailed(result) from exc


async def open_pool(name: str, settings: Settings) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        settings.sql_sources[name],
        min_size=1,
        max_size=POOL_MAX_SIZE,
        timeout=POOL_TIMEOUT_S,
        # A connection broken since its last use (a database restart) is
        # replaced rather than handed to a query.
        check=AsyncConnectionPool.check_connection,
        name=f"rayhook-sql-{name}",
        open=False,
    )
    await pool.open()
    return pool


async def close_pool(pool: AsyncConnectionPool) -> None:
    await pool.close()


async def execute(
    pool: AsyncConnectionPool, text: str, params: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the statement(s) in one transaction; the last result's rows and meta."""
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.execute(text, params)
        while cursor.nextset():  # several statements (no parameters): keep the last
            pass
        rows: list[dict[str, Any]] = []
        fields: list[dict[str, Any]] = []
        if cursor.description is not None:
            names = [column.name for column in cursor.description]
            fields = [{"name": c.name, "dataTypeID": c.type_code} for c in cursor.description]
            rows = [
                {k: json_value(v) for k, v in zip(names, row, strict=True)}
                for row in await cursor.fetchall()
            ]
        status = cursor.statusmessage or ""
        meta = {
            "command": status.split(" ", 1)[0] or None,
            "rowCount": cursor.rowcount if cursor.rowcount >= 0 else len(rows),
            "fields": fields,
        }
    return rows, meta


def _parameter(value: Any) -> Any:
    """A templated value as a query parameter: objects (and arrays holding
    objects) as jsonb, other arrays as PostgreSQL arrays, text as text of
    unknown type (the server casts it to what the SQL needs)."""
    if isinstance(value, dict):
        return Jsonb(value)
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return Jsonb(value)
    return value


def json_value(value: Any) -> Any:
    """A database value as JSON (numbers as node-postgres gives them: exact
    numerics as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_datetime(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


def _message(exc: BaseException, source: str) -> str:
    if isinstance(exc, PoolTimeout):
        return f'no connection to data source "{source}" within {POOL_TIMEOUT_S:g} s'
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    return str(primary or exc).strip() or type(exc).__name__
