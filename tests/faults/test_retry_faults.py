"""Restarts in the middle of a retry's backoff (SPEC §11): the backoff timer is
durable like a delay's, so after the execution actors, or Redis (AOF, appendfsync
always), are killed while executions wait for their next attempt, each of them
still runs that attempt once, never twice: the flaky server counts the calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import start_server
from tests.e2e.redis_server import RedisServer
from tests.e2e.test_retries import Flaky, calling
from tests.faults.conftest import Stack

EVENTS = 20


@pytest.fixture(scope="module")
def flaky() -> Iterator[Flaky]:
    server = Flaky()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def rstack(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("retry-faults")
    redis_server = RedisServer(folder / "redis", appendonly=True, fsync="always")
    redis_server.start()
    server = start_server(folder, redis_url=redis_server.url, RAYHOOK_REQUEST_ALLOW="127.0.0.1")
    stack = Stack(server, redis_server)
    yield stack
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    redis_server.stop()
    delete_namespace(server.namespace)


def backoff_interrupted(stack: Stack, flaky: Flaky, name: str, restart: Callable[[], None]) -> None:
    url = flaky.path(name, failures=EVENTS)  # every first attempt fails, every second works
    key = stack.server.create(calling(url, max_attempts=3, initial="4s"))["key"]
    ids = [stack.server.hook(key, {"n": n}).headers["x-rayhook-execution"] for n in range(EVENTS)]
    deadline = time.monotonic() + 60
    while flaky.calls.get(f"/{name}", 0) < EVENTS or not all(
        (stack.server.execution(i) or {}).get("retryAt") for i in ids
    ):
        assert time.monotonic() < deadline, "not all waiting for their second attempt"
        time.sleep(0.1)
    restart()  # within the 4 s backoff
    for execution_id in ids:
        execution = stack.server.wait_final(execution_id, timeout=120)
        assert (execution["status"], execution["attempt"]) == (1, 2), execution
        assert [j["attempt"] for j in execution["jobs"]] == [1, 2], execution
    time.sleep(5.0)  # nothing late: a second timer, a redelivered retry event
    assert flaky.calls[f"/{name}"] == 2 * EVENTS, "an attempt ran twice"


def test_execution_actors_killed_during_a_backoff(rstack: Stack, flaky: Flaky) -> None:
    def kill_both() -> None:
        for actor in ("executor:0", "executor:1"):
            rstack.kill_actor_process(actor)

    backoff_interrupted(rstack, flaky, "executors-killed", kill_both)


def test_redis_killed_during_a_backoff(rstack: Stack, flaky: Flaky) -> None:
    def crash_and_restart() -> None:
        rstack.redis.kill()
        time.sleep(1.0)
        rstack.redis.start()

    backoff_interrupted(rstack, flaky, "redis-killed", crash_and_restart)
    rstack.wait_ready()
