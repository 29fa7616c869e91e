"""`engine` is workflow logic only: importing it, every submodule included,
loads no network or database client (those are `integrations/`'s and
`store/`'s), so a gunicorn worker that validates definitions does not carry
them. Each check runs in a fresh interpreter: this test process has them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The client libraries of the project (pyproject.toml), by top-level module.
CLIENTS = (
    "aiosmtplib",
    "aiosqlite",
    "alembic",
    "httpcore",
    "httpx",
    "psycopg",
    "psycopg_pool",
    "py_mini_racer",
    "redis",
    "sqlalchemy",
)


def loaded_after(code: str) -> list[str]:
    """The top-level modules of `CLIENTS` (and `integrations`) that a fresh
    interpreter has loaded after running `code`."""
    report = f"""
import json, sys
watched = {(*CLIENTS, "integrations")!r}
print(json.dumps(sorted({{n.split(".")[0] for n in sys.modules}} & set(watched))))
"""
    done = subprocess.run(
        [sys.executable, "-c", code + report],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_every_engine_module_loads_no_client() -> None:
    loaded = loaded_after(
        """
import importlib, pkgutil
import engine, engine.validation  # the order the package imports itself in
names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
assert len(names) > 20, names
for name in names:
    importlib.import_module(name)
"""
    )
    assert loaded == []


def test_validating_integration_nodes_loads_only_the_clients_their_checks_need() -> None:
    # What a gunicorn worker does: install the integrations, validate definitions.
    loaded = loaded_after(
        """
from engine.definition import decode_definitions
from engine.validation import compile_workflow
from integrations.wiring import install
install()
nodes = [
    {"key": "q", "type": "sql", "config": {"sql": "select 1"}},
    {"key": "m", "type": "mailer", "config": {"provider": {"host": "smtp.example.com"},
                                             "from": "a@example.com", "to": ["b@example.com"]}},
]
import json
(definition,) = decode_definitions(json.dumps({"key": "k", "nodes": nodes}))
compile_workflow(definition)
"""
    )
    assert loaded == ["integrations"]
