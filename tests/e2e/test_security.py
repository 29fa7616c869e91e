"""Signatures (401 before parsing, secrets from $env only) and deduplication
(a repeated delivery is answered like the first and starts nothing; two at
once still make one execution), over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo, seed_example

SECRET = "shop-signing-secret"


def github(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}


def test_signature_checked_over_raw_body_before_parsing(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(RAYHOOK_ENV_GH_SECRET=SECRET)
    version = server.create(
        async_echo(config={"signature": {"scheme": "github", "secret": "{{$env.GH_SECRET}}"}})
    )
    body = b'{"amount": 5}'
    ok = server.hook(version["key"], content=body, headers=github(body))
    assert ok.status_code == 200
    for headers in ({"content-type": "application/json"}, github(body, "wrong"), github(b"{}")):
        reply = server.hook(version["key"], content=body, headers=headers)
        assert reply.status_code == 401
        assert reply.json() == {"errors": [{"message": "invalid or missing signature"}]}
    # Not JSON at all, but unsigned: rejected by the signature, never parsed (401, not 400).
    garbage = b"{not json"
    assert (
        server.hook(
            version["key"], content=garbage, headers={"content-type": "application/json"}
        ).status_code
        == 401
    )
    # The secret is nowhere in what rayhook stored or logged.
    execution = server.wait_final(ok.headers["x-rayhook-execution"])
    version_text = server.admin.get("/api/workflows:get", params={"filterByTk": version["id"]}).text
    assert SECRET not in str(execution) and SECRET not in version_text
    assert SECRET not in server.log.read_text()


def test_literal_secret_in_definition_is_rejected(server: Server) -> None:
    reply = server.admin.post(
        "/api/workflows:create",
        json=async_echo(config={"signature": {"scheme": "github", "secret": SECRET}}),
    )
    assert reply.status_code == 400
    assert "$env" in reply.json()["errors"][0]["message"]


def test_async_repeated_delivery_gets_same_reply_and_no_second_execution(server: Server) -> None:
    version = server.create(
        async_echo(
            config={
                "dedupe": {"id": "{{$context.body.id}}", "window": 600},
                "response": {"statusCode": 202, "body": {"got": "{{$context.body.id}}"}},
            }
        )
    )
    first = server.hook(version["key"], {"id": "evt_42", "amount": 1})
    again = server.hook(version["key"], {"id": "evt_42", "amount": 1})
    other = server.hook(version["key"], {"id": "evt_43", "amount": 1})
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 202)
    assert first.json() == again.json() == {"got": "evt_42"}
    assert first.headers["x-rayhook-execution"] == again.headers["x-rayhook-execution"]
    assert other.headers["x-rayhook-execution"] != first.headers["x-rayhook-execution"]
    server.wait_final(first.headers["x-rayhook-execution"])
    server.wait_final(other.headers["x-rayhook-execution"])
    assert count(server, version["key"]) == 2
    # No id in the request: no deduplication for it.
    a = server.hook(version["key"], {"amount": 1})
    b = server.hook(version["key"], {"amount": 1})
    assert a.headers["x-rayhook-execution"] != b.headers["x-rayhook-execution"]


def test_async_concurrent_duplicates_make_one_execution(server: Server) -> None:
    version = server.create(async_echo(config={"dedupe": {"id": "{{$context.body.id}}"}}))
    replies = concurrently(server, version["key"], {"id": "evt_same", "amount": 1}, 20)
    assert {r.status_code for r in replies} == {200}
    assert len({r.headers["x-rayhook-execution"] for r in replies}) == 1
    server.wait_final(replies[0].headers["x-rayhook-execution"])
    time.sleep(0.5)
    assert count(server, version["key"]) == 1


def test_sync_repeated_delivery_gets_the_stored_reply_of_the_first(server: Server) -> None:
    version = server.create(seed_example(config={"dedupe": {"id": "{{$context.body.order}}"}}))
    first = server.hook(version["key"], {"status": "paid", "order": "A-1"})
    # Same order id, different body: still the first reply, no second execution.
    again = server.hook(version["key"], {"status": "refused", "order": "A-1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"ok": True, "order": "A-1"}
    assert again.headers["x-rayhook-execution"] == first.headers["x-rayhook-execution"]
    assert count(server, version["key"]) == 1


def test_sync_concurrent_duplicates_make_one_execution(server: Server) -> None:
    version = server.create(seed_example(config={"dedupe": {"id": "{{$context.body.order}}"}}))
    replies = concurrently(server, version["key"], {"status": "paid", "order": "B-7"}, 12)
    assert {r.status_code for r in replies} == {200}
    assert {r.text for r in replies} == {'{"ok":true,"order":"B-7"}'}
    assert count(server, version["key"]) == 1


def concurrently(server: Server, key: str, body: Any, n: int) -> list[httpx.Response]:
    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return client.post(f"/api/webhook:trigger/{key}", json=body)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(post, range(n)))


def count(server: Server, key: str) -> int:
    reply = server.admin.get(
        "/api/executions:list", params={"filter[workflowKey]": key, "pageSize": 1}
    )
    return int(reply.json()["meta"]["count"])


def test_sync_failed_delivery_is_not_replayed_to_the_retry(server: Server) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "config": {"dedupe": {"id": "{{$context.body.id}}", "window": 600}},
            "nodes": [
                {
                    "key": "check",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": False,
                        "calculation": {
                            "calculator": "equal",
                            "operands": ["{{$context.body.fail}}", True],
                        },
                    },
                    "branches": {
                        "1": [{"key": "stop", "type": "end", "config": {"endStatus": -1}}]
                    },
                },
                {
                    "key": "ok",
                    "type": "response",
                    "config": {"statusCode": 200, "body": {"ok": True}},
                },
            ],
        }
    )
    first = server.hook(version["key"], {"id": "evt_1", "fail": True})
    assert first.status_code == 500
    retry = server.hook(version["key"], {"id": "evt_1", "fail": False})
    assert (retry.status_code, retry.json()) == (200, {"ok": True})
    assert retry.headers["x-rayhook-execution"] != first.headers["x-rayhook-execution"]
    again = server.hook(version["key"], {"id": "evt_1", "fail": True})  # now served: stored
    assert (again.status_code, again.json()) == (200, {"ok": True})
