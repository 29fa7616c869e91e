"""Scenario 8 (issue 9): end-to-end executions/s with the SQL history on, on
SQLite (the default stack) and on PostgreSQL, each with its loss check, and
what a stored execution costs in each store. Also what the other history
scenarios measure a store with: a fresh PostgreSQL database, the wait until
the history queue is empty, the count of a workflow's stored executions and
the store's bytes."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from benchmarks.report import Row, describe, progress
from benchmarks.stack import ASYNC_WORKFLOW, Bench, Stack, with_loss_check
from deploy.bench.result import Result
from store.filters import ExecutionFilter
from store.history import HistoryStore

#: The PostgreSQL server whose fresh databases the scenarios use (the machine's).
POSTGRES_URL = os.environ.get(
    "RAYHOOK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: The workflow the history scenario loads (a copy of `bench-async`).
KEY = "bench-history"


def history(bench: Bench, baseline: float | None) -> list[Row]:
    """The same closed loop on a fresh stack per store: SQLite, then PostgreSQL."""
    rows: list[Row] = []
    with Stack() as stack:
        rows += throughput_into_history(stack, bench, baseline)
    with postgres_database() as url, Stack(env={"RAYHOOK_HISTORY_URL": url}) as stack:
        rows += throughput_into_history(stack, bench, baseline)
    return rows


def throughput_into_history(stack: Stack, bench: Bench, baseline: float | None) -> list[Row]:
    scenario = f"8 history on {stack.store_name}: async 3-node, closed loop"
    progress(f"{scenario}: {bench.duration:.0f} s")
    stack.apply(ASYNC_WORKFLOW, key=KEY)
    started = time.perf_counter()
    result = with_loss_check(stack, [KEY], lambda: bench.closed(stack.url(KEY)))
    rows = describe(scenario, result, baseline)
    moved_after = stack.wait_history_moved() - started
    stored = stored_count(stack.history_url, KEY)
    rows += history_rows(scenario, result, stored)
    rows.append(
        (
            scenario,
            "executions/s into the history store",
            f"{stored / moved_after:,.0f} (queue empty {moved_after:.1f} s after the load began)",
        )
    )
    parts, count = stored_bytes(stack.history_url)
    rows.append((scenario, "stored bytes per execution", bytes_per_execution(parts, count)))
    return rows


def history_rows(scenario: str, result: Result, stored: int) -> list[Row]:
    """Every accepted event is in the history store once its queue is empty."""
    accepted = result.accepted
    return [
        (
            scenario,
            "accepted → in the history store (missing)",
            f"{accepted:,} → {stored:,} ({max(accepted - stored, 0)})",
        )
    ]


def bytes_per_execution(parts: dict[str, int], count: int) -> str:
    """The store's bytes over its executions, with what the bytes are."""
    size = sum(parts.values())
    shown = " + ".join(f"{name} {n / 1e6:,.1f} MB" for name, n in parts.items())
    if not count:
        return f"n/a (no execution stored; {shown})"
    return f"{size / count:,.0f} B ({shown} over {count:,} executions)"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped after."""
    name = f"rh_bench_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def stored_count(url: str, key: str | None = None) -> int:
    """Executions in the history store (of one workflow key)."""

    async def count() -> int:
        store = HistoryStore(url)
        try:
            return await store.count(ExecutionFilter(key=key))
        finally:
            await store.close()

    return asyncio.run(count())


def stored_bytes(url: str) -> tuple[dict[str, int], int]:
    """The history store's bytes (by part) and its row count. SQLite: the
    database file and its WAL (which keeps the size of the largest recent
    transactions until a checkpoint truncates it). PostgreSQL: every partition
    of `executions` with its indexes and TOAST (`pg_total_relation_size`)."""
    count = stored_count(url)
    if url.startswith("sqlite"):
        path = Path(url.partition(":///")[2])
        wal = path.with_name(path.name + "-wal")
        return {
            "database": path.stat().st_size,
            "WAL": wal.stat().st_size if wal.exists() else 0,
        }, count
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'executions'::regclass"
        ).fetchone()
    return {"partitions": int(row[0]) if row else 0}, count
