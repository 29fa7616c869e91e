"""One stack for the fault scenarios: gunicorn on the session's Ray cluster and
a private Redis with AOF (`appendfsync always`) that a scenario may kill."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray

from actors.history_writer import PROCESS_TITLE
from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.e2e.redis_server import RedisServer
from tests.e2e.workflows import async_echo
from tests.faults.check import Verdict, settle
from tests.faults.load import Load

#: Seconds of load before and after a fault.
BEFORE, AFTER = 2.0, 4.0


class Stack:
    def __init__(self, server: Server, redis_server: RedisServer) -> None:
        self.server, self.redis = server, redis_server
        self.version = server.create(async_echo(title="faults"))
        self.key = self.version["key"]
        self.accepted: set[str] = set()  # the executions of the last run_with_fault

    @property
    def url(self) -> str:
        return f"{self.server.url}/api/webhook:trigger/{self.key}"

    def run_with_fault(
        self,
        fault: str,
        inject: Callable[[], None],
        *,
        answer_bound: float = float("inf"),
        timeout: float = 120.0,
    ) -> Verdict:
        """A steady load on the workflow, `inject` the fault in its middle, then
        settle: every accepted event final once, the service answering again
        within `answer_bound` s."""
        with Load(self.url) as load:
            time.sleep(BEFORE)
            fault_at = time.monotonic()
            inject()
            time.sleep(AFTER)
        verdict = settle(
            self.redis.url,
            self.server.namespace,
            self.key,
            self.version["id"],
            load.outcome,
            fault=fault,
            fault_at=fault_at,
            history_url=self.server.history_url,
            timeout=timeout,
        )
        assert verdict.accepted > 100, verdict
        assert verdict.lost == 0, verdict
        assert verdict.duplicated == 0, verdict
        assert verdict.answering_again_s <= answer_bound, verdict
        self.accepted = set(load.outcome.accepted.values())
        return verdict

    def actor_pid(self, name: str) -> int:
        handle = ray.get_actor(name, namespace=self.server.namespace)
        return int(ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()), timeout=60))

    def kill_actor_process(self, name: str) -> None:
        os.kill(self.actor_pid(name), signal.SIGKILL)

    def writer_pid(self, timeout: float = 60) -> int:
        """The history writer's process (a child of execution actor 0), once it
        runs: after a kill, the next one's."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                handle = ray.get_actor("executor:0", namespace=self.server.namespace)
                pid = ray.get(handle.history_writer_pid.remote(), timeout=30)
            except Exception:  # executor 0 is being restarted
                pid = None
            if pid is not None and _titled(pid):  # started, not just forked
                return int(pid)
            assert time.monotonic() < deadline, "no history writer runs"
            time.sleep(0.2)

    def gunicorn_workers(self) -> list[int]:
        path = Path(f"/proc/{self.server.process.pid}/task/{self.server.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until /readyz answers 200 again."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if self.server.http.get("/readyz").status_code == 200:
                    return time.monotonic() - started
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError("the service did not become ready again")


def _titled(pid: int) -> bool:
    try:
        return PROCESS_TITLE in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("faults")
    redis_server = RedisServer(folder / "redis", appendonly=True, fsync="always")
    redis_server.start()
    server = start_server(folder, redis_url=redis_server.url)
    yield Stack(server, redis_server)
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    redis_server.stop()
    delete_namespace(server.namespace)
