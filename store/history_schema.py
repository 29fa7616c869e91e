"""The SQL history's table, as the queries see it (SPEC §9). The DDL itself is in
the migrations (`store/migrations/versions/`): on PostgreSQL the table is
partitioned by day of its id, which these queries need not know.

One row per final execution. Its jobs travel with it as one JSON array (they are
read and pruned together, and one row per execution keeps the writer's cost per
execution low). `context` is JSONB on PostgreSQL, with a GIN index that answers
context-path searches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timestamps in UTC on every dialect (SQLite keeps no zone: it is UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


metadata = sa.MetaData()

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("workflow_key", sa.String(64), nullable=False),
    sa.Column("workflow_id", sa.Integer, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("exhausted", sa.Boolean, nullable=False),
    sa.Column("manually", sa.Boolean, nullable=False),
    sa.Column("replay_of", sa.String(32)),
    sa.Column("parent_execution_id", sa.String(32)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("stack", sa.JSON),
    sa.Column("context", sa.JSON().with_variant(JSONB(), "postgresql")),
    sa.Column("output", sa.JSON),
    sa.Column("jobs", sa.JSON, nullable=False),
)

#: What a list shows of each execution: everything but the (large) JSON parts.
SUMMARY_COLUMNS = (
    executions.c.id,
    executions.c.workflow_key,
    executions.c.workflow_id,
    executions.c.status,
    executions.c.reason,
    executions.c.error,
    executions.c.attempt,
    executions.c.exhausted,
    executions.c.manually,
    executions.c.replay_of,
    executions.c.parent_execution_id,
    executions.c.created_at,
    executions.c.started_at,
    executions.c.finished_at,
)
