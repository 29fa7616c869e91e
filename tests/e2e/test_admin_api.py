"""The admin API (SPEC §6): versions, validation errors, manual runs, parse."""

from __future__ import annotations

import time

import redis

from tests.conftest import REDIS_URL
from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo, seed_example


def test_create_returns_the_version_with_webhook_url(server: Server) -> None:
    version = server.create(seed_example())
    assert len(version["key"]) == 11 and version["key"].isalnum() and version["key"].islower()
    for field in (
        "id",
        "key",
        "title",
        "type",
        "sync",
        "enabled",
        "current",
        "config",
        "options",
        "nodes",
        "webhookUrl",
        "createdAt",
    ):
        assert field in version
    assert version["webhookUrl"] == f"{server.url}/api/webhook:trigger/{version['key']}"
    assert version["enabled"] is True and version["current"] is True


def test_invalid_definition_is_400_naming_node_and_field(server: Server) -> None:
    reply = server.admin.post(
        "/api/workflows:create",
        json={
            "sync": False,
            "nodes": [
                {"key": "r", "type": "response", "config": {"statusCode": 200}},
                {"key": "x", "type": "nope"},
                {
                    "key": "c",
                    "type": "calculation",
                    "config": {"engine": "math.js", "expression": "1 +"},
                },
                {
                    "key": "v",
                    "type": "variable",
                    "config": {"value": "{{$jobsMapByNodeKey.ghost}}"},
                },
                {"key": "v", "type": "output", "config": {"unknown": 1}},
            ],
        },
    )
    assert reply.status_code == 400
    messages = [e["message"] for e in reply.json()["errors"]]
    text = "\n".join(messages)
    assert 'node "r" (response)' in text and "sync webhook" in text
    assert 'node "x": unknown node type "nope"' in text
    assert 'node "c" (calculation): config.expression' in text
    assert '"ghost"' in text
    assert "duplicate node key" in text
    assert server.admin.get("/api/workflows:list").status_code == 200


def test_bad_retry_on_fail_and_sql_that_can_only_fail_are_400_naming_node_and_field(
    server: Server,
) -> None:
    reply = server.admin.post(
        "/api/workflows:create",
        json={
            "sync": False,
            "nodes": [
                {
                    "key": "call",
                    "type": "request",
                    "config": {"url": "https://example.com", "retryOnFail": {"wait": "soon"}},
                },
                {
                    "key": "save",
                    "type": "sql",
                    "config": {
                        "sql": "insert into t values (:id); select 1",
                        "variables": [{"name": "id", "value": 1}],
                    },
                },
                {"key": "sum", "type": "calculation", "config": {"retryOnFail": True}},
            ],
        },
    )
    assert reply.status_code == 400
    messages = [e["message"] for e in reply.json()["errors"]]
    assert len(messages) == 3, messages
    assert messages[0].startswith('node "call" (request): config.retryOnFail.wait: ')
    assert messages[1].startswith('node "save" (sql): config.sql: several statements')
    assert messages[2].startswith('node "sum" (calculation): config.retryOnFail: only ')


def test_waiting_node_in_sync_workflow_is_400(server: Server) -> None:
    reply = server.admin.post(
        "/api/workflows:create",
        json={"sync": True, "nodes": [{"key": "wait", "type": "delay", "config": {"duration": 1}}]},
    )
    assert reply.status_code == 400
    assert 'node "wait" (delay)' in reply.json()["errors"][0]["message"]


def test_unknown_top_level_field_is_400(server: Server) -> None:
    reply = server.admin.post("/api/workflows:create", json={"nodes": [], "colour": "red"})
    assert reply.status_code == 400
    assert "colour" in reply.json()["errors"][0]["message"]


def test_versions_one_enabled_frozen_once_run_revision_keeps_node_keys(server: Server) -> None:
    v1 = server.create(seed_example())
    key = v1["key"]
    # Never run: config and nodes may change in place.
    edited = server.admin.post(
        "/api/workflows:update",
        params={"filterByTk": v1["id"]},
        json={"title": "Paid v1", "options": {"timeout": 5000}},
    )
    assert edited.status_code == 200 and edited.json()["data"]["title"] == "Paid v1"
    assert server.hook(key, {"status": "paid", "order": "1"}).status_code == 200
    v1_now = server.admin.get("/api/workflows:get", params={"filterByTk": v1["id"]}).json()["data"]
    assert v1_now["executed"] == 1
    frozen = server.admin.post(
        "/api/workflows:update", params={"filterByTk": v1["id"]}, json={"nodes": []}
    )
    assert frozen.status_code == 400
    assert "frozen" in frozen.json()["errors"][0]["message"]
    # Title and options stay editable.
    assert (
        server.admin.post(
            "/api/workflows:update", params={"filterByTk": v1["id"]}, json={"title": "renamed"}
        ).status_code
        == 200
    )
    # A revision: same key, same node keys, disabled, editable.
    v2 = server.admin.post("/api/workflows:revision", params={"filterByTk": v1["id"]}).json()[
        "data"
    ]
    server.created.append(v2["id"])
    assert v2["key"] == key and v2["id"] != v1["id"]
    assert v2["enabled"] is False and v2["current"] is False and v2["executed"] == 0
    assert _node_keys(v2["nodes"]) == _node_keys(v1["nodes"])
    nodes = v2["nodes"]
    nodes[0]["branches"]["1"][0]["config"]["body"] = {"ok": "v2"}
    assert (
        server.admin.post(
            "/api/workflows:update",
            params={"filterByTk": v2["id"]},
            json={"nodes": nodes, "enabled": True},
        ).status_code
        == 200
    )
    versions = server.admin.get("/api/workflows:list", params={"filter[key]": key}).json()["data"]
    assert [v["id"] for v in versions if v["enabled"]] == [v2["id"]]
    assert [v["id"] for v in versions if v["current"]] == [v2["id"]]
    # The URL is stable; the enabled version serves it; each execution records its version.
    reply = _wait_for_body(server, key, {"ok": "v2"})
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["workflowId"] == v2["id"]


def test_sync_cannot_change(server: Server) -> None:
    v1 = server.create(seed_example())
    reply = server.admin.post(
        "/api/workflows:update", params={"filterByTk": v1["id"]}, json={"sync": False}
    )
    assert reply.status_code == 400


def test_list_filters_and_pagination(server: Server) -> None:
    a = server.create(async_echo(title="A"))
    b = server.create(async_echo(title="B", enabled=False))
    listing = server.admin.get("/api/workflows:list", params={"filter[key]": a["key"]}).json()
    assert [v["id"] for v in listing["data"]] == [a["id"]]
    assert listing["meta"] == {"count": 1, "page": 1, "pageSize": 20}
    current = server.admin.get("/api/workflows:list", params={"filter[current]": "true"}).json()
    ids = {v["id"] for v in current["data"]}
    assert a["id"] in ids and b["id"] not in ids
    paged = server.admin.get("/api/workflows:list", params={"pageSize": 1, "page": 2}).json()
    assert len(paged["data"]) == 1 and paged["meta"]["pageSize"] == 1


def test_a_basic_password_in_clear_is_never_shown(server: Server) -> None:
    basic = {"username": "shop", "password": "pw-in-clear"}
    created = server.create(async_echo(config={"basicAuthentication": basic}))
    got = server.admin.get("/api/workflows:get", params={"filterByTk": created["id"]})
    listed = server.admin.get("/api/workflows:list", params={"filter[key]": created["key"]})
    for reply in (created, got.json()["data"], listed.json()["data"][0]):
        assert reply["config"]["basicAuthentication"] == {
            "username": "shop",
            "password": "********",
        }
    for text in (got.text, listed.text):
        assert "pw-in-clear" not in text
    assert (
        server.hook(created["key"], {"amount": 1}, auth=("shop", "pw-in-clear")).status_code == 200
    )


def test_a_masked_password_sent_back_keeps_the_stored_one(server: Server) -> None:
    basic = {"username": "shop", "password": "pw-kept"}
    created = server.create(async_echo(config={"basicAuthentication": basic}, enabled=False))
    updated = server.admin.post(
        "/api/workflows:update",
        params={"filterByTk": created["id"]},
        json={"title": "renamed", "config": created["config"], "enabled": True},
    )
    assert updated.status_code == 200, updated.text
    assert server.hook(created["key"], {"amount": 1}, auth=("shop", "pw-kept")).status_code == 200
    # A new version of the same key, made from what the API showed, keeps it too.
    again = {**async_echo(config=created["config"]), "key": created["key"]}
    assert server.create(again)["config"]["basicAuthentication"]["password"] == "********"
    assert server.hook(created["key"], {"amount": 1}, auth=("shop", "pw-kept")).status_code == 200


def test_a_masked_password_with_nothing_stored_is_400(server: Server) -> None:
    basic = {"username": "shop", "password": "********"}
    reply = server.admin.post(
        "/api/workflows:create", json=async_echo(config={"basicAuthentication": basic})
    )
    assert reply.status_code == 400
    assert "stands for the stored password" in reply.json()["errors"][0]["message"]


def test_a_basic_password_from_env_is_shown_as_the_placeholder(server: Server) -> None:
    basic = {"username": "shop", "password": "{{$env.NOT_SET_HERE}}"}
    created = server.create(async_echo(config={"basicAuthentication": basic}))
    assert created["config"]["basicAuthentication"] == basic
    # The variable is unset on this server: nobody gets in.
    assert server.hook(created["key"], {"amount": 1}, auth=("shop", "")).status_code == 401


def test_get_missing_version_is_404(server: Server) -> None:
    assert (
        server.admin.get("/api/workflows:get", params={"filterByTk": "999999"}).status_code == 404
    )
    assert server.admin.get("/api/workflows:get").status_code == 400
    assert server.admin.get("/api/executions:get", params={"filterByTk": "nope"}).status_code == 404
    assert server.admin.get("/api/jobs:get", params={"filterByTk": "nope-1"}).status_code == 404


def test_destroy_removes_version_and_serving(server: Server) -> None:
    version = server.create(async_echo())
    assert (
        server.admin.post(
            "/api/workflows:destroy", params={"filterByTk": version["id"]}
        ).status_code
        == 200
    )
    assert (
        server.admin.get("/api/workflows:get", params={"filterByTk": version["id"]}).status_code
        == 404
    )
    assert server.hook(version["key"], {"amount": 1}).status_code == 404


def test_execute_runs_a_version_manually(server: Server) -> None:
    version = server.create(seed_example(enabled=False))
    reply = server.admin.post(
        "/api/workflows:execute",
        params={"filterByTk": version["id"]},
        json={"values": {"body": {"status": "paid", "order": "M-1"}}},
    )
    assert reply.status_code == 200
    run = reply.json()["data"]["execution"]
    assert run["status"] == 1
    execution = server.execution(run["id"])
    assert execution is not None and execution["manually"] is True
    assert execution["jobs"][-1]["result"]["body"] == {"ok": True, "order": "M-1"}


def test_executions_list_filters_by_status(server: Server) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "check",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": True,
                        "calculation": {
                            "calculator": "equal",
                            "operands": ["{{$context.body.ok}}", True],
                        },
                    },
                }
            ],
        }
    )
    server.hook(version["key"], {"ok": True})
    server.hook(version["key"], {"ok": False})
    server.hook(version["key"], {"ok": False})
    params = {"filter[workflowKey]": version["key"]}
    failed = server.admin.get(
        "/api/executions:list", params={**params, "filter[status]": "-1"}
    ).json()
    resolved = server.admin.get(
        "/api/executions:list", params={**params, "filter[status]": "1"}
    ).json()
    everything = server.admin.get("/api/executions:list", params=params).json()
    assert (failed["meta"]["count"], resolved["meta"]["count"], everything["meta"]["count"]) == (
        2,
        1,
        3,
    )
    assert (
        server.admin.get(
            "/api/executions:list", params={**params, "filter[status]": "abc"}
        ).status_code
        == 400
    )


def test_cancel_finished_execution_is_400(server: Server) -> None:
    version = server.create(seed_example())
    reply = server.hook(version["key"], {"status": "paid"})
    execution_id = reply.headers["x-rayhook-execution"]
    cancel = server.admin.post("/api/executions:cancel", params={"filterByTk": execution_id})
    assert cancel.status_code == 400
    assert (
        server.admin.post("/api/executions:cancel", params={"filterByTk": "none"}).status_code
        == 404
    )


def test_cancel_running_execution_aborts_it(server: Server) -> None:
    nodes = [
        {
            "key": f"c{i}",
            "type": "calculation",
            "config": {"engine": "math.js", "expression": "sum({{$context.body.xs}})"},
        }
        for i in range(2000)
    ]
    version = server.create({"sync": False, "enabled": True, "nodes": nodes})
    reply = server.hook(version["key"], {"xs": list(range(50_000))})
    execution_id = reply.headers["x-rayhook-execution"]
    deadline = time.monotonic() + 30
    while (server.execution(execution_id) or {}).get("status") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancel = server.admin.post("/api/executions:cancel", params={"filterByTk": execution_id})
    assert cancel.status_code == 200, cancel.text
    execution = server.wait_final(execution_id)
    assert (execution["status"], execution["reason"]) == (-3, "manual_cancel")


def test_parse_url_and_json_paths(server: Server) -> None:
    reply = server.admin.post(
        "/api/webhook:parse",
        json={"url": "http://localhost:13000/api/webhook:trigger/x?query[0][a]=1"},
    )
    assert reply.json()["data"]["paths"] == ["query", "query[0]", "query[0].a"]
    reply = server.admin.post("/api/webhook:parse", json={"json": {"a": 1, "b": {"c": 2}}})
    assert reply.json()["data"]["paths"] == ["a", "b", "b.c"]
    reply = server.admin.post("/api/webhook:parse", json={"json": '{"a": 1, "b": {"c": 2}}'})
    assert reply.json()["data"]["paths"] == ["a", "b", "b.c"]
    assert server.admin.post("/api/webhook:parse", json={}).status_code == 400


def _node_keys(nodes: list[dict]) -> list[str]:
    keys = []
    for node in nodes:
        keys.append(node["key"])
        for chain in node.get("branches", {}).values():
            keys.extend(_node_keys(chain))
    return keys


def _wait_for_body(server: Server, key: str, expected: dict):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while True:
        reply = server.hook(key, {"status": "paid", "order": "2"})
        if reply.status_code == 200 and reply.json() == expected:
            return reply
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.05)


def test_replay_runs_the_same_context_on_the_current_version(server: Server) -> None:
    v1 = server.create(async_echo())
    first = server.hook(v1["key"], {"amount": 500})
    original = server.wait_final(first.headers["x-rayhook-execution"])
    v2 = server.admin.post("/api/workflows:revision", params={"filterByTk": v1["id"]}).json()[
        "data"
    ]
    server.created.append(v2["id"])
    server.admin.post(
        "/api/workflows:update", params={"filterByTk": v2["id"]}, json={"enabled": True}
    )
    reply = server.admin.post("/api/executions:replay", params={"filterByTk": original["id"]})
    assert reply.status_code == 202, reply.text
    data = reply.json()["data"]
    assert data["replayOf"] == original["id"] and data["execution"]["status"] is None
    replayed = server.wait_final(data["execution"]["id"])
    assert replayed["replayOf"] == original["id"]
    assert replayed["workflowId"] == v2["id"]
    assert replayed["context"] == original["context"]
    assert replayed["output"] == original["output"] == {"amount": 500, "big": True}
    assert (
        server.admin.post("/api/executions:replay", params={"filterByTk": "missing"}).status_code
        == 404
    )


def test_replay_of_a_sync_execution_runs_and_reports_its_status(server: Server) -> None:
    version = server.create(seed_example())
    first = server.hook(version["key"], {"status": "paid", "order": "R-1"})
    reply = server.admin.post(
        "/api/executions:replay", params={"filterByTk": first.headers["x-rayhook-execution"]}
    )
    assert reply.status_code == 200
    run = reply.json()["data"]["execution"]
    assert run["status"] == 1
    replayed = server.execution(run["id"])
    assert replayed is not None
    assert replayed["jobs"][-1]["result"]["body"] == {"ok": True, "order": "R-1"}


def test_cancel_a_queued_execution_before_it_runs(make_server) -> None:  # type: ignore[no-untyped-def]
    # One execution at a time (one executor, one per workflow), the first one
    # slow: the next one waits in the inbox.
    server = make_server(RAYHOOK_MAX_INFLIGHT="1", RAYHOOK_EXECUTORS="1")
    nodes = [
        {
            "key": f"c{i}",
            "type": "calculation",
            "config": {"engine": "math.js", "expression": "sum({{$context.body.xs}})"},
        }
        for i in range(150)
    ]
    version = server.create({"sync": False, "enabled": True, "nodes": nodes})
    slow = server.hook(version["key"], {"xs": list(range(50_000))})
    queued = server.hook(version["key"], {"xs": [1]})
    queued_id = queued.headers["x-rayhook-execution"]
    shown = server.admin.get("/api/executions:get", params={"filterByTk": queued_id})
    assert shown.status_code == 200, shown.text  # accepted, still in the inbox
    assert (shown.json()["data"]["status"], shown.json()["data"]["jobs"]) == (None, [])
    assert shown.json()["data"]["context"]["body"] == {"xs": [1]}
    cancel = server.admin.post("/api/executions:cancel", params={"filterByTk": queued_id})
    assert cancel.status_code == 200, cancel.text
    assert (cancel.json()["data"]["status"], cancel.json()["data"]["reason"]) == (
        -3,
        "manual_cancel",
    )
    server.wait_final(slow.headers["x-rayhook-execution"], timeout=60)
    inbox = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 30
    while inbox.xlen(f"{server.namespace}:inbox:{version['key']}") > 0:  # acked, never run
        assert time.monotonic() < deadline
        time.sleep(0.1)
    execution = server.execution(queued_id)
    assert execution is not None and execution["status"] == -3 and execution["jobs"] == []
