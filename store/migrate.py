"""Bring a history database's schema up to date (`rayhook migrate`, `rayhook up`,
and the history writer at its start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.history import sync_url


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "store:migrations")
    # ConfigParser interpolates %: a password may hold one.
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> str:
    """Apply every migration not yet applied; the revision the database is at."""
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_config(url), "head")
    return head()


def head() -> str:
    """The newest migration this code knows."""
    return str(ScriptDirectory.from_config(_config("sqlite://")).get_current_head())


def current(url: str) -> str | None:
    """The revision a database is at (None: never migrated)."""
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
