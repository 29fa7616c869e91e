"""Secrets are never logged or stored (SPEC §2.2, STYLE "Logs ... never contain
secrets"): a server with `RAYHOOK_ENV_SHOP_SECRET` serves workflows that use
`{{$env.SHOP_SECRET}}` (a signature secret, a condition operand, an outbound
request's Authorization header) and Basic auth with a `{{$env.HOOK_PASSWORD}}`
password, and gets requests carrying Basic credentials, a bearer token and a
cookie, right and wrong signatures, at debug log level. Then none of those
values may appear in the gunicorn log, the Ray session's logs, any Redis key of
the namespace, or any execution or workflow the admin API returns; and a
password given in clear is stored but never shown by the admin API.

The workflows never output the secret on purpose (that would be the user's
choice); they only use it."""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.e2e.conftest import FINAL, Server

USER = "shop"


class _Merchant(BaseHTTPRequestHandler):
    """A loopback API the request node calls with the secret as its bearer token."""

    seen: list[str] = []

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def merchant() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Merchant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def uses_the_secret(*, sync: bool, password: str, merchant: str) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {
            "key": "check",
            "type": "condition",
            "config": {
                "rejectOnFalse": False,
                "calculation": {
                    "calculator": "equal",
                    "operands": ["{{$env.SHOP_SECRET}}", "{{$context.body.guess}}"],
                },
            },
        },
        {
            "key": "notify",
            "type": "request",
            "config": {
                "method": "POST",
                "url": f"{merchant}/paid",
                "headers": [{"name": "Authorization", "value": "Bearer {{$env.SHOP_SECRET}}"}],
                "data": {"order": "{{$context.body.order}}"},
                "timeout": 5000,
            },
        },
    ]
    if sync:
        nodes.append(
            {
                "key": "reply",
                "type": "response",
                "config": {"statusCode": 200, "body": {"matched": "{{$jobsMapByNodeKey.check}}"}},
            }
        )
    return {
        "title": f"secret user ({'sync' if sync else 'async'})",
        "sync": sync,
        "enabled": True,
        "config": {
            "basicAuthentication": {"username": USER, "password": password},
            "signature": {
                "scheme": "hmac-sha256",
                "secret": "{{$env.SHOP_SECRET}}",
                "header": "x-shop-signature",
                "prefix": "sha256=",
            },
        },
        "nodes": nodes,
    }


def open_workflow() -> dict[str, Any]:
    """No auth: the place where callers' own Authorization and Cookie headers land."""
    return {
        "title": "open",
        "sync": False,
        "enabled": True,
        "nodes": [
            {"key": "seen", "type": "variable", "config": {"value": "{{$context.headers}}"}},
        ],
    }


def test_secrets_never_reach_logs_redis_or_executions(
    make_server: Callable[..., Server], merchant: str
) -> None:
    secret = f"shop-secret-{secrets.token_hex(12)}"
    password = f"basic-pw-{secrets.token_hex(12)}"
    bearer = f"bearer-{secrets.token_hex(12)}"
    cookie = f"cookie-{secrets.token_hex(12)}"
    started = time.time()
    server = make_server(
        RAYHOOK_ENV_SHOP_SECRET=secret,
        RAYHOOK_ENV_HOOK_PASSWORD=password,
        RAYHOOK_LOG_LEVEL="debug",
        RAYHOOK_REQUEST_ALLOW="127.0.0.1",
    )
    from_env = "{{$env.HOOK_PASSWORD}}"
    sync = server.create(uses_the_secret(sync=True, password=from_env, merchant=merchant))
    async_ = server.create(uses_the_secret(sync=False, password=from_env, merchant=merchant))
    open_ = server.create(open_workflow())
    in_clear = f"clear-pw-{secrets.token_hex(12)}"
    clear = server.create(uses_the_secret(sync=False, password=in_clear, merchant=merchant))

    basic = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
    wrong_basic = "Basic " + base64.b64encode(f"{USER}:{password}x".encode()).decode()
    executions: list[str] = []
    for version in (sync, async_):
        for guess in (secret[:-1], "not-it"):  # never the secret: the body is stored
            body = json.dumps({"guess": guess, "order": "A-1"}).encode()
            signed = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            good = {
                "content-type": "application/json",
                "authorization": basic,
                "cookie": f"session={cookie}",
                "x-shop-signature": f"sha256={signed}",
            }
            reply = server.hook(version["key"], content=body, headers=good)
            assert reply.status_code in (200, 202), reply.text
            executions.append(reply.headers["x-rayhook-execution"])
            for bad in (
                {**good, "authorization": wrong_basic},
                {**good, "x-shop-signature": "sha256=" + "0" * 64},
                {**good, "x-shop-signature": f"sha256={secret}"},
                {k: v for k, v in good.items() if k != "authorization"},
            ):
                assert server.hook(version["key"], content=body, headers=bad).status_code == 401
    for headers in (
        {"authorization": f"Bearer {bearer}", "cookie": f"session={cookie}; other={bearer}"},
        {"Authorization": basic, "Cookie": cookie, "X-Forwarded-Authorization": "redacted"},
    ):
        reply = server.hook(open_["key"], {"hello": "world"}, headers=headers)
        assert reply.status_code == 200, reply.text
        executions.append(reply.headers["x-rayhook-execution"])
    # A bearer token aimed at the admin API, wrong, and one in the query string.
    bad_admin = server.http.get(
        "/api/workflows:list", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert bad_admin.status_code == 401
    for execution_id in executions:
        assert server.wait_final(execution_id)["status"] in FINAL
    assert _Merchant.seen.count(f"Bearer {secret}") == 4  # the node did use the secret

    needles = {
        "the $env secret": secret,
        "the Basic password": password,
        "the Basic header": basic.split()[1],
        "the wrong Basic header": wrong_basic.split()[1],
        "the bearer token": bearer,
        "the cookie": cookie,
    }
    leaks: list[str] = []

    def search(where: str, data: bytes, *, skip: tuple[str, ...] = ()) -> None:
        for what, value in needles.items():
            if what not in skip and value.encode() in data:
                leaks.append(f"{what} in {where}")

    # 1. The gunicorn log (both workers, the master, every Python logger).
    log = server.log.read_bytes()
    assert b"Booting worker" in log  # the right file, and written to
    search(f"the gunicorn log {server.log}", log)

    # 2. The Ray session's logs: actors' stdout/stderr, raylet, GCS, workers.
    ray_logs = [
        Path(p)
        for p in glob.glob("/tmp/rh-ray-*/r/session_latest/logs/**/*", recursive=True)
        if Path(p).is_file()
    ]
    fresh = [p for p in ray_logs if _modified_after(p, started)]
    assert fresh, "no Ray log was written during the test: wrong folder?"
    for path in ray_logs:
        try:
            search(f"the Ray log {path}", path.read_bytes())
        except OSError:  # another session's folder, removed meanwhile
            continue

    # 3. Every Redis key of the namespace. A password given in clear is stored
    #    (the webhook compares it): it proves the version records are read.
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{server.namespace}:*", count=1000))
    configured = 0
    for key in keys:
        value = _redis_value(client, key)
        configured += in_clear.encode() in value
        search(f"redis key {key.decode()}", value)
    client.close()
    assert configured == 1

    # 3b. The history store (SQLite here): the database file and its WAL, byte for
    #     byte, once the final executions have moved there.
    history = Path(server.history_url.removeprefix("sqlite:///"))
    deadline = time.monotonic() + 30
    while True:
        stored = b"".join(
            p.read_bytes() for p in history.parent.glob(history.name + "*") if p.is_file()
        )
        if all(e.encode() in stored for e in executions) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(e.encode() in stored for e in executions), "executions not in the history file"
    search(f"the history database {history}", stored)

    # 4. Every execution (with its jobs) the admin API returns.
    for version in (sync, async_, open_):
        listed = server.admin.get(
            "/api/executions:list",
            params={"filter[workflowKey]": version["key"], "pageSize": 1000},
        )
        assert listed.status_code == 200, listed.text
        for row in listed.json()["data"]:
            full = server.admin.get("/api/executions:get", params={"filterByTk": row["id"]})
            search(f"execution {row['id']} ({version['key']})", full.content)
    context = server.execution(executions[-1])
    assert context is not None
    assert context["context"]["headers"]["authorization"] == "[redacted]"

    # 5. Every workflow the admin API returns: the clear password is masked.
    needles["the Basic password in clear"] = in_clear
    assert clear["config"]["basicAuthentication"]["password"] == "********"
    search("the workflows:create reply", json.dumps(clear).encode())
    for version in (sync, async_, open_, clear):
        got = server.admin.get("/api/workflows:get", params={"filterByTk": version["id"]})
        search(f"workflows:get of {version['key']}", got.content)
    listed = server.admin.get("/api/workflows:list", params={"paginate": "false"})
    assert listed.status_code == 200 and len(listed.json()["data"]) >= 4
    search("workflows:list", listed.content)

    assert not leaks, "\n".join(sorted(set(leaks)))


def _modified_after(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime >= moment
    except OSError:
        return False


def _redis_value(client: redis.Redis, key: bytes) -> bytes:
    """The whole value of a key, whatever its type, as bytes to search."""
    kind = client.type(key).decode()
    parts: list[Any]
    if kind == "string":
        parts = [client.get(key)]
    elif kind == "hash":
        parts = [x for pair in client.hgetall(key).items() for x in pair]
    elif kind == "list":
        parts = client.lrange(key, 0, -1)
    elif kind == "set":
        parts = list(client.smembers(key))
    elif kind == "zset":
        parts = client.zrange(key, 0, -1)
    elif kind == "stream":
        parts = [x for _, fields in client.xrange(key) for pair in fields.items() for x in pair]
    else:
        parts = []
    return b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts if p)
