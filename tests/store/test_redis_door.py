"""`store/` is the only door to Redis: no module of engine/, integrations/, ingress/, actors/
or deploy/ imports redis-py. They speak to store objects, and catch `StoreError`
(store/errors.py) rather than redis-py's exceptions. (benchmarks/ and tests/
may reach Redis directly: they measure and check what is stored.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_STORE = ("engine", "integrations", "ingress", "actors", "deploy")


def redis_imports(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: statement` for each import of `redis` (or a submodule) in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "redis" or name.startswith("redis.") for name in names):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_store_imports_redis() -> None:
    found = [
        line
        for package in OUTSIDE_STORE
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in redis_imports(path)
    ]
    assert not found, (
        "these modules reach Redis without store/; move the Redis calls into a store "
        "object and catch store.errors.StoreError instead:\n" + "\n".join(found)
    )


def test_the_guard_sees_an_import_of_redis(tmp_path: Path) -> None:
    module = tmp_path / "ingress" / "probe.py"
    module.parent.mkdir()
    module.write_text(
        "import json\nimport redis.asyncio as aioredis\nfrom redis import exceptions\n"
    )
    assert redis_imports(module, tmp_path) == [
        "ingress/probe.py:2: import redis.asyncio as aioredis",
        "ingress/probe.py:3: from redis import exceptions",
    ]
