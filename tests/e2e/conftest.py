"""End-to-end fixtures: gunicorn (`-k asgi`, 2 workers) serving the app over
real HTTP, against the session's Ray cluster and the machine's Redis."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import http_clients, processes
from engine.settings import default_history_url
from store import migrate
from tests.conftest import REDIS_URL, delete_namespace, kill_actors

FINAL = {1, -1, -2, -3, -4, -5, -6}


@dataclass
class Server:
    url: str
    token: str
    namespace: str
    log: Path
    process: Any
    history_url: str = ""
    created: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = http_clients.client(self.url)
        self.admin = http_clients.client(self.url, token=self.token, timeout=60)

    def create(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a workflow version (destroyed again when the test ends)."""
        reply = self.admin.post("/api/workflows:create", json=definition)
        assert reply.status_code == 200, reply.text
        version = reply.json()["data"]
        self.created.append(version["id"])
        return version

    def hook(self, key: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return self.http.post(f"/api/webhook:trigger/{key}", **kwargs)

    def execution(self, execution_id: str) -> dict[str, Any] | None:
        reply = self.admin.get("/api/executions:get", params={"filterByTk": execution_id})
        if reply.status_code == 404:
            return None
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    def wait_final(self, execution_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            execution = self.execution(execution_id)
            if execution is not None and execution["status"] in FINAL:
                return execution
            assert time.monotonic() < deadline, f"{execution_id} not final: {execution}"
            time.sleep(0.05)

    def cleanup(self) -> None:
        for version_id in self.created:
            self.admin.post("/api/workflows:destroy", params={"filterByTk": version_id})
        self.created.clear()

    def stop(self) -> None:
        self.http.close()
        self.admin.close()
        processes.stop(self.process, timeout=40)


def start_server(tmp: Path, *, redis_url: str = REDIS_URL, workers: int = 2, **env: str) -> Server:
    namespace = env.pop("RAYHOOK_NAMESPACE", f"e{secrets.token_hex(4)}")
    token = secrets.token_hex(16)
    port = processes.free_port()
    log = tmp / f"gunicorn-{port}.log"
    full_env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RAYHOOK_NAMESPACE": namespace,
        "RAYHOOK_ADMIN_TOKEN": token,
        "RAYHOOK_PORT": str(port),
        "RAYHOOK_WORKERS": str(workers),
        "RAYHOOK_GRACEFUL_TIMEOUT": "10",
        # its own data folder: the SQLite history (unless RAYHOOK_HISTORY_URL says)
        "RAYHOOK_DATA_DIR": str(tmp / f"data-{port}"),
        **env,
    }
    history_url = full_env.get("RAYHOOK_HISTORY_URL") or default_history_url(
        full_env["RAYHOOK_DATA_DIR"]
    )
    # Migrated first, as `rayhook up` and the Kubernetes migrate Job do: the
    # admin API reads the history from its first request.
    migrate.upgrade(history_url)
    process = processes.spawn(
        [sys.executable, "-m", "gunicorn", "-c", "python:deploy.gunicorn_conf", "ingress.asgi:app"],
        env=full_env,
        log=log,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    server = Server(f"http://127.0.0.1:{port}", token, namespace, log, process, history_url)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            if server.http.get("/readyz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server not ready in 60 s:\n" + log.read_text()[-4000:]
        time.sleep(0.1)


@pytest.fixture(scope="session")
def session_server(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


@pytest.fixture
def server(session_server: Server) -> Iterator[Server]:
    """The shared server; workflows a test creates are destroyed after it."""
    yield session_server
    session_server.cleanup()


@pytest.fixture
def make_server(
    ray_address: str, ray_driver: None, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """Start a server with its own settings (stopped and cleaned after the test)."""
    started: list[Server] = []

    def make(**kwargs: Any) -> Server:
        server = start_server(tmp_path, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.cleanup()
        server.stop()
        kill_actors(server.namespace)
        delete_namespace(server.namespace)
