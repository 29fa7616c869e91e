"""Alembic's entry point: run the history's migrations on the configured URL.

On PostgreSQL an advisory lock serializes migrators, so several pods (or a Job
and a pod) starting at once apply each migration once."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

#: pg_advisory_xact_lock key of rayhook's migrations (any fixed number).
LOCK_KEY = 7_013_000


def run() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            context.run_migrations()
    engine.dispose()


run()
