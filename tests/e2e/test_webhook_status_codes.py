"""Every row of SPEC §2's status table, over real HTTP through gunicorn."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo, seed_example


def test_unknown_key_is_404_with_json_error(server: Server) -> None:
    reply = server.hook("nosuchkey00", {"a": 1})
    assert reply.status_code == 404
    assert reply.json()["errors"][0]["message"]


def test_disabled_workflow_is_404(server: Server) -> None:
    version = server.create(async_echo(enabled=False))
    assert server.hook(version["key"], {"amount": 1}).status_code == 404
    server.admin.post(
        "/api/workflows:update", params={"filterByTk": version["id"]}, json={"enabled": True}
    )
    assert server.hook(version["key"], {"amount": 1}).status_code == 200
    server.admin.post(
        "/api/workflows:update", params={"filterByTk": version["id"]}, json={"enabled": False}
    )
    assert server.hook(version["key"], {"amount": 1}).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_are_405_with_allow_post(server: Server, method: str) -> None:
    version = server.create(async_echo())
    reply = server.http.request(method, f"/api/webhook:trigger/{version['key']}")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "POST"
    if method != "HEAD":
        assert reply.json()["errors"][0]["message"]


def test_basic_auth_missing_or_wrong_is_401_with_challenge(server: Server) -> None:
    version = server.create(
        async_echo(config={"basicAuthentication": {"username": "shop", "password": "s3cret"}})
    )
    key = version["key"]
    for auth in (None, ("shop", "wrong"), ("other", "s3cret")):
        reply = server.hook(key, {"amount": 1}, auth=auth)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == 'Basic realm="rayhook"'
        assert "errors" in reply.json()
    assert server.hook(key, {"amount": 1}, auth=("shop", "s3cret")).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_body_with_non_json_content_type_is_415(server: Server, content_type: str | None) -> None:
    version = server.create(async_echo())
    headers = {"content-type": content_type} if content_type else {}
    reply = server.hook(version["key"], content=b'{"amount": 1}', headers=headers)
    assert reply.status_code == 415
    assert reply.json()["errors"][0]["message"]


def test_vendor_json_content_type_is_accepted(server: Server) -> None:
    version = server.create(async_echo())
    reply = server.hook(
        version["key"],
        content=b'{"amount": 1}',
        headers={"content-type": "application/vnd.shop+json"},
    )
    assert reply.status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1', b"\xff\xfe{}", b'"\xc3\x28"'])
def test_invalid_json_or_utf8_is_400(server: Server, body: bytes) -> None:
    version = server.create(async_echo())
    reply = server.hook(version["key"], content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["message"]


def test_body_over_the_limit_is_413(server: Server) -> None:
    version = server.create(async_echo())
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    reply = server.hook(version["key"], content=big, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["errors"][0]["message"]


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    version = server.create(async_echo())

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    reply = server.hook(
        version["key"], content=chunks(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413


def test_json_nested_deeper_than_the_limit_is_400(server: Server) -> None:
    version = server.create(async_echo())
    deep = b"[" * 65 + b"]" * 65
    reply = server.hook(version["key"], content=deep, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert "deeper" in reply.json()["errors"][0]["message"]
    ok = b'{"amount": ' + b"[" * 62 + b"]" * 62 + b"}"
    assert (
        server.hook(
            version["key"], content=ok, headers={"content-type": "application/json"}
        ).status_code
        == 200
    )


def test_empty_body_is_allowed_and_means_an_empty_object(server: Server) -> None:
    version = server.create(async_echo())
    reply = server.hook(version["key"])
    assert reply.status_code == 200
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["context"]["body"] == {}
    assert execution["status"] == 1


def test_async_accepted_default_reply_is_200_ok(server: Server) -> None:
    version = server.create(async_echo())
    reply = server.hook(version["key"], {"amount": 5})
    assert reply.status_code == 200
    assert reply.text == "ok"
    assert reply.headers["content-type"].startswith("text/plain")


def test_sync_response_node_sets_status_headers_and_body(server: Server) -> None:
    version = server.create(seed_example())
    reply = server.hook(version["key"], {"status": "paid", "order": "A-17"})
    assert reply.status_code == 200
    assert reply.json() == {"ok": True, "order": "A-17"}
    assert reply.headers["x-order"] == "A-17"
    reply = server.hook(version["key"], {"status": "refused", "order": "A-18"})
    assert reply.status_code == 400
    assert reply.json() == {"ok": False}


def test_sync_workflow_exported_with_config_response_answers_with_its_response_node(
    server: Server,
) -> None:
    # NocoBase ignores config.response in a sync workflow; an exported one carries it.
    version = server.create(seed_example(config={"response": {"statusCode": 202, "body": "q"}}))
    reply = server.hook(version["key"], {"status": "paid", "order": "A-19"})
    assert reply.status_code == 200
    assert reply.json() == {"ok": True, "order": "A-19"}


def test_async_reply_with_a_1xx_status_is_refused_with_400(server: Server) -> None:
    reply = server.admin.post(
        "/api/workflows:create",
        json={**async_echo(), "config": {"response": {"statusCode": 102, "body": "wait"}}},
    )
    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {"message": "config.response.statusCode: must be from 200 to 599"}
    ]


def test_sync_resolved_without_response_node_is_200_ok(server: Server) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "calc",
                    "type": "calculation",
                    "config": {"engine": "math.js", "expression": "1 + 1"},
                }
            ],
        }
    )
    reply = server.hook(version["key"], {})
    assert (reply.status_code, reply.text) == (200, "ok")


@pytest.mark.parametrize("end_status", [-1])
def test_sync_ending_in_another_status_is_500_json_error(server: Server, end_status: int) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [{"key": "stop", "type": "end", "config": {"endStatus": end_status}}],
        }
    )
    reply = server.hook(version["key"], {})
    assert reply.status_code == 500
    message = reply.json()["errors"][0]["message"]
    assert "FAILED" in message and "Traceback" not in message


def test_sync_error_in_a_node_is_500_without_internals(server: Server) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "calc",
                    "type": "calculation",
                    "config": {"engine": "math.js", "expression": "{{$context.body.x}} * 2"},
                }
            ],
        }
    )
    reply = server.hook(version["key"], {"x": "not a number"})
    assert reply.status_code == 500
    assert reply.json() == {"errors": [{"message": "the workflow ended with status ERROR"}]}


def test_sync_timeout_is_408_and_execution_aborted(server: Server) -> None:
    # Each node sums 50,000 numbers from the body (a few ms); 300 of them run far
    # longer than the 100 ms timeout.
    nodes = [
        {
            "key": f"c{i}",
            "type": "calculation",
            "config": {"engine": "math.js", "expression": "sum({{$context.body.xs}})"},
        }
        for i in range(300)
    ]
    version = server.create(
        {"sync": True, "enabled": True, "options": {"timeout": 100}, "nodes": nodes}
    )
    reply = server.hook(version["key"], {"xs": list(range(50_000))})
    assert reply.status_code == 408
    assert "100 ms" in reply.json()["errors"][0]["message"]
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["status"] == -3
    assert execution["reason"] == "timeout"
    assert len(execution["jobs"]) < 300
    # Cancellation lands between nodes or inside one; either way no job is left
    # pending, and one caught running is ABORTED.
    assert {job["status"] for job in execution["jobs"]} <= {1, -3}


def test_store_unavailable_is_503_and_recovers(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.redis_server import RedisServer

    with RedisServer(tmp_path / "redis", appendonly=True) as redis_server:
        server = make_server(redis_url=redis_server.url)
        version = server.create(async_echo())
        assert server.hook(version["key"], {"amount": 1}).status_code == 200
        redis_server.stop()
        reply = server.hook(version["key"], {"amount": 2})
        assert reply.status_code == 503
        assert reply.json()["errors"][0]["message"]
        assert server.http.get("/readyz").status_code == 503
        redis_server.start()
        # The route cache survived; the store is back: accepted again, and run.
        deadline = 30
        for _ in range(deadline * 10):
            reply = server.hook(version["key"], {"amount": 3})
            if reply.status_code == 200:
                break
            import time

            time.sleep(0.1)
        assert reply.status_code == 200
        assert server.wait_final(reply.headers["x-rayhook-execution"])["status"] == 1


def test_admin_api_without_token_is_401(server: Server) -> None:
    for method, action in [
        ("GET", "workflows:list"),
        ("POST", "workflows:create"),
        ("GET", "executions:list"),
        ("POST", "webhook:parse"),
    ]:
        reply = server.http.request(method, f"/api/{action}", json={})
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"].startswith("Bearer")
        wrong = server.http.request(
            method, f"/api/{action}", json={}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401


def test_unknown_route_is_404_json(server: Server) -> None:
    reply = server.http.get("/api/nothing:here")
    assert reply.status_code == 404
    assert "errors" in reply.json()


def test_health_and_readiness(server: Server) -> None:
    assert server.http.get("/healthz").status_code == 200
    ready = server.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["data"] == {"redis": True, "ray": True, "history": True}


def test_request_timeout_client_side_is_not_needed(server: Server) -> None:
    """Sanity: the hot path answers an async webhook quickly (no Ray hop)."""
    version = server.create(async_echo())
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(20):
            assert (
                client.post(
                    f"/api/webhook:trigger/{version['key']}", json={"amount": 1}
                ).status_code
                == 200
            )
