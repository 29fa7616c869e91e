"""The history of final executions (SPEC §9).

Revision ID: 0001
Revises:
Create Date: 2026-12-04

One row per execution, its jobs as a JSON array. On PostgreSQL the table is
partitioned by range of the execution id, whose first 12 hex digits are its
creation time in ms: a day is a partition, and retention drops whole days
(`store.history.HistoryStore.prune`). `executions_default` takes any id no day
partition covers. The context is JSONB with a GIN index (jsonb_path_ops) for
context-path searches.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

POSTGRESQL = [
    """
    CREATE TABLE executions (
        id varchar(32) COLLATE "C" NOT NULL,
        workflow_key varchar(64) NOT NULL,
        workflow_id integer NOT NULL,
        status smallint NOT NULL,
        reason varchar(64),
        error text,
        attempt integer NOT NULL DEFAULT 1,
        exhausted boolean NOT NULL DEFAULT false,
        manually boolean NOT NULL DEFAULT false,
        replay_of varchar(32),
        parent_execution_id varchar(32),
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        stack json,
        context jsonb,
        output json,
        jobs json NOT NULL,
        PRIMARY KEY (id)
    ) PARTITION BY RANGE (id)
    """,
    "CREATE TABLE executions_default PARTITION OF executions DEFAULT",
    "CREATE INDEX executions_key_status ON executions (workflow_key, status, id)",
    "CREATE INDEX executions_status ON executions (status, id)",
    "CREATE INDEX executions_exhausted ON executions (id) WHERE exhausted",
    "CREATE INDEX executions_context ON executions USING gin (context jsonb_path_ops)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL:
            op.execute(statement)
        return
    op.create_table(
        "executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workflow_key", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.Integer, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("exhausted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("manually", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("replay_of", sa.String(32)),
        sa.Column("parent_execution_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        # JSON as TEXT: a column declared JSON has numeric affinity in SQLite,
        # which would turn the JSON text `3` into the integer 3.
        sa.Column("stack", sa.Text),
        sa.Column("context", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("jobs", sa.Text, nullable=False),
    )
    op.create_index("executions_key_status", "executions", ["workflow_key", "status", "id"])
    op.create_index("executions_status", "executions", ["status", "id"])
    op.create_index("executions_exhausted", "executions", ["id"], sqlite_where=sa.text("exhausted"))


def downgrade() -> None:
    op.drop_table("executions")
