"""Alembic migrations of the SQL history (`rayhook migrate`, `store.migrate`)."""
