"""Test harness: one real local Ray cluster per session (loopback only, its own
ports, a private HOME), the machine's Redis with a fresh key namespace per test,
and real gunicorn servers for end-to-end tests."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis

from deploy import processes
from integrations.wiring import install as install_integrations
from tests.flaky_server import Flaky

REDIS_URL = os.environ.get("RAYHOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("RAYHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# Every process the tests start inherits these: Ray bound to 127.0.0.1, auth mode
# explicit (2.60 would otherwise turn token auth on from ~/.ray), no ~/.ray shared
# with the machine, and no 30 s node drain on shutdown.
_HOME = tempfile.mkdtemp(prefix="rayhook-test-home-")
os.environ.update(
    HOME=_HOME,
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    RAY_AUTH_MODE="disabled",
    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
    RAY_USAGE_STATS_ENABLED="0",
)
# The node tests validate and run workflows in this process, as an executor does.
install_integrations()


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A Ray head for the whole session (started once: ~2 s and ~1 GB)."""
    folder = Path(tempfile.mkdtemp(prefix="rh-ray-", dir="/tmp"))
    gcs = processes.free_port(6390)
    worker_ports = 25000 + 500 * secrets.randbelow(10)
    log = folder / "ray.log"
    log.write_bytes(b"")
    head = processes.spawn(
        [
            sys.executable,
            "-m",
            "deploy.ray_node",  # `ray start` without the parts rayhook does not use
            "--head",
            "--block",
            f"--port={gcs}",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={processes.free_port()}",
            f"--dashboard-agent-listen-port={processes.free_port()}",
            # A window of its own: test sessions may run side by side on one host.
            f"--min-worker-port={worker_ports}",
            f"--max-worker-port={worker_ports + 499}",
            "--num-cpus=2",
            f"--temp-dir={folder / 'r'}",
            "--disable-usage-stats",
            "--include-log-monitor=false",
        ],
        env=os.environ,
        log=log,
    )
    deadline = time.monotonic() + 120
    while b"Ray runtime started" not in log.read_bytes():
        assert head.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "ray did not start in 120 s"
        time.sleep(0.2)
    address = f"127.0.0.1:{gcs}"
    os.environ["RAY_ADDRESS"] = address
    yield address
    processes.stop(head, timeout=30)


@pytest.fixture(scope="session")
def ray_driver(ray_address: str) -> Iterator[None]:
    """This test process as a Ray driver (for actor-level tests)."""
    import ray

    ray.init(address=ray_address, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh Redis key prefix and Ray namespace; its keys are deleted after."""
    ns = f"t{secrets.token_hex(4)}"
    yield ns
    delete_namespace(ns)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A PostgreSQL database of its own on the machine's server (dropped after):
    history tests need a schema nobody else writes to."""
    name = f"rh_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every history path runs on both stores: an SQLite file, and a fresh
    database on the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def flaky() -> Iterator[Flaky]:
    """A local HTTP server failing a set number of times per path (tests/flaky_server.py)."""
    server = Flaky()
    yield server
    server.httpd.shutdown()


def process_state(pid: int) -> tuple[str, int] | None:
    """A process's state letter (`Z`: a zombie) and its parent's pid, from /proc;
    None once it is gone (reaped, even while this reads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(parent)


def delete_namespace(ns: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


def kill_actors(ns: str) -> None:
    """Kill the named actors of a namespace (each is a process of ~100 MB)."""
    import ray

    if not ray.is_initialized():
        return
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == ns:
            try:
                ray.kill(ray.get_actor(actor["name"], namespace=ns), no_restart=True)
            except ValueError:
                pass
