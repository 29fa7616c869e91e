"""The integration nodes through the whole stack: one workflow per node made
through the admin API, fired by a real webhook, run by the Ray actors against
local peers (an HTTP server, PostgreSQL, an SMTP server) that the server is
pointed at by RAYHOOK_REQUEST_ALLOW and RAYHOOK_SQL_MAIN."""

from __future__ import annotations

import email
import email.policy
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server

PG_URL = os.environ.get("RAYHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


class EchoHandler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = {"path": self.path, "token": self.headers.get("X-Token"), "body": json.loads(body)}
        EchoHandler.seen.append(seen)
        answer = json.dumps({"received": seen["body"], "path": self.path}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class FlakyHandler(BaseHTTPRequestHandler):
    """`/flaky/<id>/<n>`: 503 for the first n requests of that id, then 200;
    `/down/<id>`: always 503."""

    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        FlakyHandler.seen.append(self.path)
        parts = self.path.strip("/").split("/")
        failing = parts[0] == "down" or FlakyHandler.seen.count(self.path) <= int(parts[2])
        answer = json.dumps({"try": FlakyHandler.seen.count(self.path)}).encode()
        self.send_response(503 if failing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def http_peer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def flaky_peer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def smtp_peer() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture(scope="module")
def integration_server(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the module (what `make_server` starts, shared by the four
    tests), allowed to reach 127.0.0.1 and given PostgreSQL as `main`."""
    server = start_server(
        Path(tmp_path_factory.mktemp("integration")),
        RAYHOOK_REQUEST_ALLOW="127.0.0.1",
        RAYHOOK_SQL_MAIN=PG_URL,
        RAYHOOK_ENV_PEER_TOKEN="t0ken",
    )
    yield server
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def sync_workflow(*nodes: dict[str, Any], body: Any) -> dict[str, Any]:
    """A sync webhook workflow: the nodes, then a Response with `body`."""
    response = {"key": "reply", "type": "response", "config": {"statusCode": 200, "body": body}}
    return {"type": "webhook", "sync": True, "enabled": True, "nodes": [*nodes, response]}


def jobs_of(server: Server, reply: Any) -> dict[str, dict[str, Any]]:
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    return {job["nodeKey"]: job for job in execution["jobs"]}


def test_request_node_calls_the_allowed_peer_and_refuses_others(
    integration_server: Server, http_peer: str
) -> None:
    server = integration_server
    EchoHandler.seen.clear()
    version = server.create(
        sync_workflow(
            {
                "key": "call",
                "type": "request",
                "config": {
                    "url": f"{http_peer}/orders",
                    "headers": [{"name": "X-Token", "value": "{{$env.PEER_TOKEN}}"}],
                    "data": {"order": "{{$context.body.order}}"},
                },
            },
            {
                "key": "blocked",
                "type": "request",
                "config": {"url": "http://127.0.0.2:9/", "ignoreFail": True},
            },
            body={
                "status": "{{$jobsMapByNodeKey.call.status}}",
                "echo": "{{$jobsMapByNodeKey.call.data}}",
                "blocked": "{{$jobsMapByNodeKey.blocked.code}}",
            },
        )
    )
    reply = server.hook(version["key"], {"order": "M-7"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "status": 201,
        "echo": {"received": {"order": "M-7"}, "path": "/orders"},
        "blocked": "ERR_ADDRESS_BLOCKED",
    }
    assert EchoHandler.seen == [{"path": "/orders", "token": "t0ken", "body": {"order": "M-7"}}]


def test_script_node_runs_in_the_sandbox_with_its_console_in_the_job_log(
    integration_server: Server,
) -> None:
    server = integration_server
    version = server.create(
        sync_workflow(
            {
                "key": "calc",
                "type": "script",
                "config": {
                    "content": "console.log('items', items.length);"
                    " return {total: items.reduce((s, i) => s + i.price, 0),"
                    " sandboxed: typeof require === 'undefined'}",
                    "arguments": [{"name": "items", "value": "{{$context.body.items}}"}],
                    "timeout": 2000,
                },
            },
            body="{{$jobsMapByNodeKey.calc}}",
        )
    )
    reply = server.hook(version["key"], {"items": [{"price": 2}, {"price": 3.5}]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"total": 5.5, "sandboxed": True}
    assert jobs_of(server, reply)["calc"]["log"] == "[log] items 2"


def test_sql_node_binds_webhook_values_as_parameters(integration_server: Server) -> None:
    server = integration_server
    table = f"rh_e2e_{secrets.token_hex(5)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"create table {table} (id serial primary key, email text, amount numeric)")
    try:
        version = server.create(
            sync_workflow(
                {
                    "key": "save",
                    "type": "sql",
                    "config": {
                        "sql": f"insert into {table} (email, amount) values (:email, :amount)"
                        " returning id, email, amount",
                        "variables": [
                            {"name": "email", "value": "{{$context.body.email}}"},
                            {"name": "amount", "value": "{{$context.body.amount}}"},
                        ],
                        "withMeta": True,
                    },
                },
                body={"saved": "{{$jobsMapByNodeKey.save}}"},
            )
        )
        evil = "x'); drop table " + table + "; --"
        reply = server.hook(version["key"], {"email": evil, "amount": "12.5"})
        assert reply.status_code == 200, reply.text
        rows, meta = reply.json()["saved"]
        assert rows == [{"id": 1, "email": evil, "amount": "12.5"}]
        assert meta["command"] == "INSERT" and meta["rowCount"] == 1
        with psycopg.connect(PG_URL) as conn:
            assert conn.execute(f"select email from {table}").fetchall() == [(evil,)]
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"drop table if exists {table}")


def test_mailer_node_sends_through_the_smtp_server(
    integration_server: Server, smtp_peer: tuple[Mailbox, int]
) -> None:
    server = integration_server
    mailbox, port = smtp_peer
    version = server.create(
        {
            "type": "webhook",
            "sync": False,
            "enabled": True,
            "nodes": [
                {
                    "key": "mail",
                    "type": "mailer",
                    "config": {
                        "provider": {"host": "127.0.0.1", "port": port, "secure": False},
                        "from": "Shop <shop@example.com>",
                        "to": ["{{$context.body.email}}"],
                        "subject": "Order {{$context.body.order}} paid",
                        "contentType": "text",
                        "text": "Thanks for order {{$context.body.order}}.",
                    },
                }
            ],
        }
    )
    reply = server.hook(version["key"], {"email": "ann@example.com", "order": "M-9"})
    assert reply.status_code == 200, reply.text
    job = jobs_of(server, reply)["mail"]
    assert job["status"] == 1, job
    assert job["result"]["accepted"] == ["ann@example.com"]
    (recipients, message) = mailbox.mails[-1]
    assert recipients == ["ann@example.com"]
    assert message["Subject"] == "Order M-9 paid"
    assert message.get_content().strip() == "Thanks for order M-9."
    assert message["Message-ID"] == job["result"]["messageId"]


# -- retryOnFail through the stack ------------------------------------------------------------


def calling(url: str, retry: dict[str, Any]) -> dict[str, Any]:
    return {"key": "call", "type": "request", "config": {"url": url, "retryOnFail": retry}}


def test_request_node_retries_until_the_peer_answers(
    integration_server: Server, flaky_peer: str
) -> None:
    server = integration_server
    path = f"/flaky/{secrets.token_hex(4)}/2"
    version = server.create(
        sync_workflow(
            calling(flaky_peer + path, {"maxTries": 3, "wait": "100ms"}),
            body="{{$jobsMapByNodeKey.call.data}}",
        )
    )
    reply = server.hook(version["key"], {})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"try": 3}
    job = jobs_of(server, reply)["call"]
    assert job["status"] == 1 and job["meta"]["tries"] == 3
    assert [f["code"] for f in job["meta"]["failures"]] == ["ERR_BAD_RESPONSE"] * 2
    assert FlakyHandler.seen.count(path) == 3


def test_a_retry_wait_is_cut_short_by_the_execution_timeout(
    integration_server: Server, flaky_peer: str
) -> None:
    server = integration_server
    path = f"/down/{secrets.token_hex(4)}"
    version = server.create(
        {
            **sync_workflow(calling(flaky_peer + path, {"maxTries": 5, "wait": "1m"}), body="x"),
            "options": {"timeout": 1500},
        }
    )
    started = time.monotonic()
    reply = server.hook(version["key"], {})
    assert reply.status_code == 408, reply.text
    assert time.monotonic() - started < 10
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["status"] == -3 and execution["reason"] == "timeout"
    (job,) = execution["jobs"]
    assert job["status"] == -3 and job["meta"]["tries"] == 1
    assert FlakyHandler.seen.count(path) == 1


def test_a_retry_wait_is_cut_short_by_a_cancel(integration_server: Server, flaky_peer: str) -> None:
    server = integration_server
    path = f"/down/{secrets.token_hex(4)}"
    version = server.create(
        {
            "type": "webhook",
            "sync": False,
            "enabled": True,
            "nodes": [calling(flaky_peer + path, {"maxTries": 5, "wait": "1m"})],
        }
    )
    execution_id = server.hook(version["key"], {}).headers["x-rayhook-execution"]
    deadline = time.monotonic() + 30
    while True:  # the first try failed and the job waits for the next
        execution = server.execution(execution_id)
        jobs = (execution or {}).get("jobs") or []
        if jobs and jobs[0]["status"] == 0 and (jobs[0]["meta"] or {}).get("tries") == 1:
            break
        assert time.monotonic() < deadline, execution
        time.sleep(0.05)
    cancel = server.admin.post("/api/executions:cancel", params={"filterByTk": execution_id})
    assert cancel.status_code == 200, cancel.text
    done = server.wait_final(execution_id, timeout=10)
    assert done["status"] == -3 and done["reason"] == "manual_cancel"
    assert done["jobs"][0]["status"] == -3
    assert FlakyHandler.seen.count(path) == 1
