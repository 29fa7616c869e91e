"""Many workflows, supervisors retiring and waking (issue 11): twenty workflows
share a load that comes in bursts with pauses longer than the supervisors'
linger, so every supervisor retires and wakes again several times, and an
execution actor is killed mid-burst. Every accepted event is final exactly
once; between the bursts no supervisor is awake."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import ray

from engine.status import is_final
from tests.conftest import REDIS_URL, delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.e2e.workflows import async_echo
from tests.faults.check import executions_of
from tests.faults.load import Load

WORKFLOWS = 20
BURST = 2.5
#: Retiring takes the linger (1 s) plus up to a maintenance round (5 s); after
#: the kill, the restarted executor first runs what it had pending.
PAUSE_BOUND = 40.0


@pytest.fixture(scope="module")
def many(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, list[str]]]:
    server = start_server(tmp_path_factory.mktemp("many"), RAYHOOK_SUPERVISOR_LINGER="1s")
    keys = [server.create(async_echo(title=f"w{i}"))["key"] for i in range(WORKFLOWS)]
    yield server, keys
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def awake(server: Server) -> list[str]:
    reply = server.admin.get("/api/supervisors:list")
    assert reply.status_code == 200, reply.text
    return [row["key"] for row in reply.json()["data"]]


def kill_executor(server: Server, name: str) -> None:
    handle = ray.get_actor(name, namespace=server.namespace)
    pid = ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()), timeout=60)
    os.kill(pid, signal.SIGKILL)


def test_supervisors_retire_and_wake_between_bursts_and_nothing_is_lost_or_run_twice(
    many: tuple[Server, list[str]],
) -> None:
    server, keys = many
    urls = [f"{server.url}/api/webhook:trigger/{k}" for k in keys]
    with Load(urls, connections=8, pause=0.01) as load:
        for burst in range(3):
            time.sleep(BURST)
            assert set(awake(server)) & set(keys), "no supervisor awake during a burst"
            if burst == 1:
                kill_executor(server, "executor:0")
            load.paused.set()
            # all retire once nothing ran for the linger (at a maintenance round)
            deadline = time.monotonic() + PAUSE_BOUND
            while still := awake(server):
                assert time.monotonic() < deadline, f"still awake after a pause: {still}"
                time.sleep(0.5)
            load.paused.clear()
    outcome = load.outcome
    accepted = set(outcome.accepted.values())
    assert len(accepted) > 200, outcome.refused
    deadline = time.monotonic() + 180
    while True:
        runs = [
            e
            for key in keys
            for e in asyncio.run(
                executions_of(REDIS_URL, server.namespace, server.history_url, key)
            )
        ]
        final = {e.id for e in runs if is_final(e.status)}
        if accepted <= final or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert accepted <= final, f"{len(accepted - final)} accepted events not final"
    per_event = Counter(str((e.context or {}).get("body", {}).get("id")) for e in runs)
    assert max(per_event.values()) == 1, "an event ran into two executions"
    assert Counter(e.id for e in runs).most_common(1)[0][1] == 1
