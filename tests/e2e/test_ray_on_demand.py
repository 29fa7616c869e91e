"""A gunicorn worker is a Ray driver only while a request needs Ray
(actors/ray_session.py): at rest it holds no Ray connection (whose threads cost
CPU even idle), an admin request that needs Ray connects, and the worker
disconnects again after RAYHOOK_RAY_IDLE_SECONDS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.util.state import list_workers

from tests.e2e.conftest import Server


def worker_pids(server: Server) -> set[int]:
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def drivers(pids: set[int]) -> set[int]:
    """Which of `pids` are live Ray drivers now."""
    rows = list_workers(
        filters=[("worker_type", "=", "DRIVER"), ("is_alive", "=", "True")],
        limit=10_000,
        raise_on_missing_output=False,
    )
    return {int(row.pid) for row in rows} & pids


def until(probe: Any, done: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value}"
        time.sleep(0.25)


def test_workers_connect_to_ray_only_while_a_request_needs_it(make_server: Any) -> None:
    server = make_server(RAYHOOK_RAY_IDLE_SECONDS="2")
    workers = until(lambda: worker_pids(server), lambda p: len(p) == 2, 30, "two workers")
    # Each worker created the actors at startup, then disconnected.
    until(lambda: drivers(workers), lambda d: not d, 30, "drivers at rest")
    ready = server.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["data"]["ray"] is True
    assert not drivers(workers), "a readiness probe made a worker a Ray driver"

    for _ in range(2):  # connects on demand, and again after it disconnected
        reply = server.admin.get("/api/supervisors:list")
        assert reply.status_code == 200, reply.text
        until(lambda: drivers(workers), lambda d: not d, 30, "drivers after the idle time")
    assert worker_pids(server) == workers
