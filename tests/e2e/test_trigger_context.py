"""`$context` as SPEC §2.2 builds it, seen through executions of real webhooks."""

from __future__ import annotations

from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo


def test_query_path_query_0_a_is_mapped_to_its_var(server: Server) -> None:
    version = server.create(
        async_echo(
            config={
                "request": {
                    "query": [{"key": "query[0].a", "alias": "First a", "_var": "query_$0"}]
                }
            }
        )
    )
    reply = server.hook(version["key"], {"amount": 1}, params={"query[0][a]": "1", "flag": ""})
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    query = execution["context"]["query"]
    assert query["query"] == [{"a": "1"}]
    assert query["query_$0"] == "1"


def test_query_string_parsed_like_qs(server: Server) -> None:
    version = server.create(async_echo())
    url = f"/api/webhook:trigger/{version['key']}?a[b]=1&c=1&c=2&flag&i[101]=x"
    reply = server.http.post(url, json={"amount": 1})
    query = server.wait_final(reply.headers["x-rayhook-execution"])["context"]["query"]
    assert query == {"a": {"b": "1"}, "c": ["1", "2"], "flag": None, "i": {"101": "x"}}


def test_query_mapping_without_var_uses_the_key(server: Server) -> None:
    version = server.create(async_echo(config={"request": {"query": [{"key": "order.id"}]}}))
    reply = server.hook(version["key"], {"amount": 1}, params={"order[id]": "77"})
    query = server.wait_final(reply.headers["x-rayhook-execution"])["context"]["query"]
    assert query["order.id"] == "77"


def test_body_path_b_c_is_mapped_and_raw_body_kept(server: Server) -> None:
    version = server.create(
        async_echo(
            config={"request": {"body": [{"key": "b.c", "_var": "body_$0"}, {"key": "missing.x"}]}}
        )
    )
    reply = server.hook(version["key"], {"amount": 1, "b": {"c": 2}})
    body = server.wait_final(reply.headers["x-rayhook-execution"])["context"]["body"]
    assert body["b"] == {"c": 2}
    assert body["body_$0"] == 2
    assert body["missing.x"] is None


def test_headers_lowercased_and_secrets_redacted(server: Server) -> None:
    version = server.create(async_echo())
    reply = server.hook(
        version["key"],
        {"amount": 1},
        headers={
            "X-Request-Id": "r-1",
            "Cookie": "session=abc",
            "Authorization": "Bearer t0ps3cret",
        },
    )
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    headers = execution["context"]["headers"]
    assert headers["x-request-id"] == "r-1"
    assert headers["cookie"] == "[redacted]"
    assert headers["authorization"] == "[redacted]"
    assert (
        "t0ps3cret"
        not in server.admin.get("/api/executions:get", params={"filterByTk": execution["id"]}).text
    )


def test_async_configured_reply_renders_context_templates(server: Server) -> None:
    version = server.create(
        async_echo(
            config={
                "response": {
                    "statusCode": 202,
                    "headers": [{"name": "X-Received", "value": "{{$context.body.id}}"}],
                    "body": {
                        "received": "{{$context.body.id}}",
                        "amount": "{{$context.body.amount}}",
                        "note": "id={{$context.body.id}}",
                    },
                }
            }
        )
    )
    reply = server.hook(version["key"], {"id": "evt_1", "amount": 12.5})
    assert reply.status_code == 202
    assert reply.headers["x-received"] == "evt_1"
    assert reply.json() == {"received": "evt_1", "amount": 12.5, "note": "id=evt_1"}


def test_async_execution_reaches_resolved_with_jobs_visible(server: Server) -> None:
    version = server.create(async_echo())
    reply = server.hook(version["key"], {"amount": 250})
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["status"] == 1
    assert execution["workflowId"] == version["id"]
    assert execution["output"] == {"amount": 250, "big": True}
    assert [(j["nodeKey"], j["status"]) for j in execution["jobs"]] == [
        ("amount", 1),
        ("big", 1),
        ("out", 1),
    ]
    job = execution["jobs"][1]
    detail = server.admin.get("/api/jobs:get", params={"filterByTk": job["id"]}).json()["data"]
    assert detail["result"] is True and detail["executionId"] == execution["id"]
    listing = server.admin.get(
        "/api/executions:list",
        params={"filter[workflowKey]": version["key"], "filter[status]": "1"},
    ).json()
    assert listing["meta"]["count"] == 1
    assert listing["data"][0]["id"] == execution["id"]
    assert "context" not in listing["data"][0]


def test_many_async_events_all_resolve_once(server: Server) -> None:
    version = server.create(async_echo())
    ids = []
    for i in range(200):
        reply = server.hook(version["key"], {"amount": i})
        assert reply.status_code == 200
        ids.append(reply.headers["x-rayhook-execution"])
    for execution_id in ids:
        assert server.wait_final(execution_id)["status"] == 1
    listing = server.admin.get(
        "/api/executions:list", params={"filter[workflowKey]": version["key"], "pageSize": 1}
    ).json()
    assert listing["meta"]["count"] == 200
