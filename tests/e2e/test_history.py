"""The execution history over real HTTP (SPEC §9), on both stores: gunicorn and
the session's Ray with the SQLite default, and again with the machine's
PostgreSQL (a fresh database). Final executions leave Redis for SQL; the admin
API reads both, with the new filters, cursor paging and destroy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from store.keys import Keys
from tests.conftest import REDIS_URL, delete_namespace, fresh_database, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.e2e.workflows import async_echo

FINAL = {1, -1, -2, -3, -4, -5, -6}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_server(
    request: pytest.FixtureRequest,
    ray_address: str,
    ray_driver: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"history-{request.param}")
    if request.param == "sqlite":
        server = start_server(folder)
        yield server
        _stop(server)
        return
    with fresh_database() as url:
        server = start_server(folder, RAYHOOK_HISTORY_URL=url)
        yield server
        _stop(server)


def _stop(server: Server) -> None:
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


@pytest.fixture
def hs(store_server: Server) -> Iterator[Server]:
    yield store_server
    store_server.cleanup()


def hot_state(server: Server) -> dict[str, int]:
    """What Redis holds of executions: it must empty once they have moved."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = Keys(server.namespace)
    try:
        return {
            "statuses": client.hlen(keys.execution_statuses),
            "moving": client.hlen(keys.moving),
            "stream": client.xlen(keys.history),
            "records": len(list(client.scan_iter(match=f"{server.namespace}:exec:*"))),
            "indexed": client.zcard(keys.executions()),
        }
    finally:
        client.close()


def wait_moved(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(hot_state(server).values()):
        assert time.monotonic() < deadline, hot_state(server)
        time.sleep(0.1)


def send(server: Server, key: str, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        reply = server.hook(key, body)
        assert reply.status_code == 200, reply.text
        ids.append(reply.headers["x-rayhook-execution"])
    return ids


def listing(server: Server, **params: Any) -> dict[str, Any]:
    reply = server.admin.get("/api/executions:list", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def all_final(server: Server, ids: list[str]) -> None:
    for execution_id in ids:
        server.wait_final(execution_id)


def test_final_executions_move_to_the_history_and_leave_redis(hs: Server) -> None:
    key = hs.create(async_echo())["key"]
    ids = send(hs, key, [{"amount": n, "id": f"ev-{n}"} for n in range(20)])
    all_final(hs, ids)
    wait_moved(hs)
    found = listing(hs, **{"filter[workflowKey]": key, "pageSize": 100})
    assert found["meta"]["count"] == 20
    assert {e["id"] for e in found["data"]} == set(ids)
    execution = hs.execution(ids[3])
    assert execution is not None and execution["status"] == 1
    assert execution["context"]["body"] == {"amount": 3, "id": "ev-3"}
    assert [j["nodeKey"] for j in execution["jobs"]] == ["amount", "big", "out"]
    assert execution["output"] == {"amount": 3, "big": False}
    job = hs.admin.get("/api/jobs:get", params={"filterByTk": execution["jobs"][2]["id"]})
    assert job.status_code == 200 and job.json()["data"]["nodeKey"] == "out"


def test_an_execution_is_visible_at_every_moment_of_its_move(hs: Server) -> None:
    """From its 2xx on, `executions:get` always finds it: queued (inbox), running,
    final in Redis, in both stores for an instant, then in SQL only."""
    key = hs.create(async_echo())["key"]
    for n in range(5):
        (execution_id,) = send(hs, key, [{"amount": n}])
        seen: list[Any] = []
        deadline = time.monotonic() + 30
        while True:
            reply = hs.admin.get("/api/executions:get", params={"filterByTk": execution_id})
            assert reply.status_code == 200, (seen, reply.text)
            seen.append(reply.json()["data"]["status"])
            if seen[-1] in FINAL and not any(hot_state(hs).values()):
                break
            assert time.monotonic() < deadline, seen
        assert seen[-1] == 1


def test_the_list_filters_by_status_time_and_context_path(hs: Server) -> None:
    key = hs.create(async_echo())["key"]
    other = hs.create(async_echo())["key"]
    before = time.time()
    ids = send(hs, key, [{"amount": n, "data": {"object": {"id": f"pi_{n}"}}} for n in range(6)])
    send(hs, other, [{"amount": 1, "data": {"object": {"id": "pi_1"}}}])
    after = time.time()
    all_final(hs, ids)
    wait_moved(hs)
    by_payment = listing(hs, **{"filter[context.body.data.object.id]": "pi_1"})
    assert by_payment["meta"]["count"] == 2
    narrowed = listing(
        hs, **{"filter[context.body.data.object.id]": "pi_1", "filter[workflowKey]": key}
    )
    assert [e["id"] for e in narrowed["data"]] == [ids[1]]
    by_amount = listing(hs, **{"filter[context.body.amount]": "4", "filter[workflowKey]": key})
    assert [e["id"] for e in by_amount["data"]] == [ids[4]]
    statuses = hs.admin.get(
        "/api/executions:list",
        params=[("filter[workflowKey]", key), ("filter[status]", "1"), ("filter[status]", "-1")],
    ).json()
    assert statuses["meta"]["count"] == 6
    assert listing(hs, **{"filter[workflowKey]": key, "filter[status]": "-2"})["meta"]["count"] == 0
    window = {
        "filter[workflowKey]": key,
        "filter[createdAt][$gte]": _iso(before - 1),
        "filter[createdAt][$lte]": _iso(after + 1),
    }
    assert listing(hs, **window)["meta"]["count"] == 6
    later = {"filter[workflowKey]": key, "filter[createdAt][$gte]": _iso(after + 60)}
    assert listing(hs, **later)["meta"]["count"] == 0
    newest_first = [e["id"] for e in listing(hs, **{"filter[workflowKey]": key})["data"]]
    # Newest first is by id: its milliseconds, then random bits, so two requests
    # accepted in the same millisecond may come in either order.
    assert sorted(newest_first) == sorted(ids)
    assert newest_first == sorted(newest_first, reverse=True)
    assert [i[:12] for i in newest_first] == [i[:12] for i in reversed(ids)]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"filter[amount]": "1"}, "filter[amount]"),
        ({"filter[createdAt][$gte]": "yesterday"}, "filter[createdAt][$gte]"),
        ({"filter[createdAt][$after]": "2026-01-01"}, "filter[createdAt][$after]"),
        ({"filter[createdAt]": "2026-01-01"}, "filter[createdAt]"),
        ({"filter[status]": "paid"}, "filter[status]"),
        ({"filter[exhausted]": "maybe"}, "filter[exhausted]"),
        ({"filter[context.payload.id]": "x"}, "filter[context.payload.id]"),
        ({'filter[context.body.a"b]': "x"}, 'filter[context.body.a"b]'),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"pageSize": "0"}, "pageSize"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(hs: Server, params: dict[str, str], names: str) -> None:
    reply = hs.admin.get("/api/executions:list", params=params)
    assert reply.status_code == 400, reply.text
    assert names in reply.json()["errors"][0]["message"]


def test_cursor_paging_is_stable_while_new_executions_arrive(hs: Server) -> None:
    key = hs.create(async_echo())["key"]
    ids = send(hs, key, [{"amount": n} for n in range(9)])
    all_final(hs, ids)
    # Newest first is by id; ids made in one millisecond order by their random tail.
    newest_first = sorted(ids, reverse=True)
    first = listing(hs, **{"filter[workflowKey]": key, "pageSize": 4})
    assert [e["id"] for e in first["data"]] == newest_first[:4]
    newer = send(hs, key, [{"amount": 100 + n} for n in range(3)])  # arrive meanwhile
    cursor = first["meta"]["nextCursor"]
    second = listing(hs, **{"filter[workflowKey]": key, "pageSize": 4, "cursor": cursor})
    assert [e["id"] for e in second["data"]] == newest_first[4:8]
    third = listing(
        hs, **{"filter[workflowKey]": key, "pageSize": 4, "cursor": second["meta"]["nextCursor"]}
    )
    assert [e["id"] for e in third["data"]] == newest_first[8:]
    assert third["meta"]["nextCursor"] is None
    all_final(hs, newer)
    page = listing(hs, **{"filter[workflowKey]": key, "pageSize": 5, "page": 2})
    assert [e["id"] for e in page["data"]] == sorted(ids + newer, reverse=True)[5:10]
    assert page["meta"]["count"] == 12


def test_destroy_by_id_and_by_filter(hs: Server) -> None:
    key = hs.create(async_echo())["key"]
    ids = send(hs, key, [{"amount": n} for n in range(6)])
    all_final(hs, ids)
    one = hs.admin.post("/api/executions:destroy", params={"filterByTk": ids[0]})
    assert one.status_code == 200 and one.json()["data"] == {"count": 1}
    assert hs.execution(ids[0]) is None
    again = hs.admin.post("/api/executions:destroy", params={"filterByTk": ids[0]})
    assert again.status_code == 404
    wait_moved(hs)
    some = hs.admin.post(
        "/api/executions:destroy",
        params={"filter[workflowKey]": key, "filter[context.body.amount]": "3"},
    )
    assert some.json()["data"] == {"count": 1}
    rest = hs.admin.post("/api/executions:destroy", params={"filter[workflowKey]": key})
    assert rest.json()["data"] == {"count": 4}
    assert listing(hs, **{"filter[workflowKey]": key})["meta"]["count"] == 0
    everything = hs.admin.post("/api/executions:destroy")
    assert everything.status_code == 400
    assert "filter" in everything.json()["errors"][0]["message"]


def test_destroy_refuses_an_execution_that_has_not_finished(hs: Server) -> None:
    version = hs.create(
        {
            "sync": False,
            "enabled": True,
            "nodes": [{"key": "wait", "type": "manual", "config": {"assignees": ["ann"]}}],
        }
    )
    (execution_id,) = send(hs, version["key"], [{}])
    deadline = time.monotonic() + 30
    while (hs.execution(execution_id) or {}).get("status") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reply = hs.admin.post("/api/executions:destroy", params={"filterByTk": execution_id})
    assert reply.status_code == 400
    assert "cancel it first" in reply.json()["errors"][0]["message"]
    assert hs.execution(execution_id) is not None
    canceled = hs.admin.post("/api/executions:cancel", params={"filterByTk": execution_id})
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == -3
    wait_moved(hs)
    destroyed = hs.admin.post("/api/executions:destroy", params={"filterByTk": execution_id})
    assert destroyed.json()["data"] == {"count": 1}


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        ({"keep": "all"}, {1, -1}),
        ({"keep": "failed"}, {-1}),
        ({"keep": "none"}, set()),
        ({"deleteExecutionOnStatus": [-1]}, {1}),
    ],
)
def test_what_a_workflow_keeps(hs: Server, options: dict[str, Any], kept: set[int]) -> None:
    """options.keep (all, failed, none) and NocoBase's deleteExecutionOnStatus."""
    version = hs.create(
        {
            "sync": False,
            "enabled": True,
            "options": options,
            "nodes": [
                {
                    "key": "which",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": False,
                        "calculation": {
                            "calculator": "equal",
                            "operands": ["{{$context.body.ok}}", True],
                        },
                    },
                    "branches": {
                        "0": [{"key": "fail", "type": "end", "config": {"endStatus": -1}}]
                    },
                }
            ],
        }
    )
    key = version["key"]
    send(hs, key, [{"ok": True}, {"ok": False}])
    deadline = time.monotonic() + 30
    while (
        int(
            hs.admin.get("/api/workflows:get", params={"filterByTk": version["id"]}).json()["data"][
                "executed"
            ]
        )
        < 2
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    wait_moved(hs)
    statuses = {e["status"] for e in listing(hs, **{"filter[workflowKey]": key})["data"]}
    assert statuses == kept


def test_replay_of_a_moved_execution_runs_its_context_again(hs: Server) -> None:
    key = hs.create(async_echo())["key"]
    (original,) = send(hs, key, [{"amount": 500}])
    hs.wait_final(original)
    wait_moved(hs)
    reply = hs.admin.post("/api/executions:replay", params={"filterByTk": original})
    assert reply.status_code == 202, reply.text
    replayed = hs.wait_final(reply.json()["data"]["execution"]["id"])
    assert replayed["replayOf"] == original
    assert replayed["output"] == {"amount": 500, "big": True}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + "Z"
