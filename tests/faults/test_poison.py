"""A poison event among 3,000 normal ones under load (issue 10): with scripts run
inside the executor (`RAYHOOK_SCRIPT_SANDBOX=inline`, the operator's choice that
trades isolation for speed), a script that V8 cannot allocate for aborts the
whole execution actor, again at each redelivery. After
`RAYHOOK_POISON_DELIVERIES` deliveries the event is quarantined (ERROR,
`crashed_executor`); every other event succeeds, and no executor restarts after
the quarantine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.e2e.test_blast_radius import OOM_SCRIPT, executor_pids, script_workflow

NORMAL = 3000


@pytest.fixture(scope="module")
def inline(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("poison"), RAYHOOK_SCRIPT_SANDBOX="inline")
    yield server
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def test_a_poison_event_is_quarantined_and_the_others_all_succeed(inline: Server) -> None:
    key = inline.create(script_workflow(OOM_SCRIPT, sync=False))["key"]
    url = f"{inline.url}/api/webhook:trigger/{key}"
    accepted: list[str] = []
    poison: dict[str, Any] = {}

    def send(n: int) -> None:
        with httpx.Client(timeout=30) as http:
            for i in range(n, NORMAL, 8):
                if i == 500 and not poison:
                    reply = http.post(url, json={"n": 1_000_000_000})
                    assert reply.status_code == 200, reply.text
                    poison["id"] = reply.headers["x-rayhook-execution"]
                while True:
                    reply = http.post(url, json={"n": 3})
                    if reply.status_code == 200:
                        accepted.append(reply.headers["x-rayhook-execution"])
                        break
                    time.sleep(0.05)  # a 503 while Redis or the actors were away: retry

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(8)))
    assert len(accepted) == NORMAL

    execution = inline.wait_final(poison["id"], timeout=300)
    assert (execution["status"], execution["reason"]) == (-2, "crashed_executor")
    assert "quarantined" in execution["error"]
    for execution_id in accepted:
        done = inline.wait_final(execution_id, timeout=120)
        assert done["status"] == 1, done
        assert done["output"] is None or done["jobs"][0]["result"] == 3
    pids = executor_pids(inline)  # a restart would change them
    time.sleep(15.0)  # nothing runs the poison again: no more restarts
    assert executor_pids(inline) == pids
