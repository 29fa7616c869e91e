"""`examples/payment-callback.yaml` for real: the file as it is, applied through
the admin API (YAML body), called as a plain webhook; the merchant's API is a
local HTTP server that records its calls, the payments go to the machine's
PostgreSQL, in a schema of the test's own (the example's SQL names the table
`payments`; the data source's `search_path` points at that schema), with the
table created from the DDL the example documents."""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payment-callback.yaml"
PG_URL = os.environ.get("RAYHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MERCHANT_TOKEN = "m3rchant-t0ken"


@dataclass
class Merchant:
    """The merchant's API: records every call and answers `status`."""

    url: str = ""
    status: int = 200
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    merchant = Merchant()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            merchant.calls.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "content-type": self.headers.get("Content-Type"),
                    "body": json.loads(body),
                }
            )
            answer = json.dumps({"ok": merchant.status == 200}).encode()
            self.send_response(merchant.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    merchant.url = f"http://127.0.0.1:{http.server_address[1]}"
    yield merchant
    http.shutdown()
    http.server_close()


def documented_ddl() -> str:
    """The `create table payments (...)` the example's comments give."""
    comments = [line[1:] for line in EXAMPLE.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(comments)
    match = re.search(r"create table payments \(.*?\n\s*\);", text, re.S)
    assert match, "the example documents its table"
    return match.group(0)


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema holding an empty `payments` table, dropped after the test."""
    name = f"rh_pay_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"create schema {name}")
        conn.execute(f"set search_path to {name}")
        conn.execute(documented_ddl())
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"drop schema {name} cascade")


def payments(schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_URL) as conn:
        return conn.execute(
            f"select id, intent_id, order_id, amount, currency from {schema}.payments order by id"
        ).fetchall()


@pytest.fixture
def callback(
    make_server: Callable[..., Server], merchant: Merchant, schema: str
) -> tuple[Server, str]:
    """A server configured as the example says, with the example applied."""
    sql_url = f"{PG_URL}?options={quote(f'-c search_path={schema}')}"
    server = make_server(
        RAYHOOK_SQL_MAIN=sql_url,
        RAYHOOK_REQUEST_ALLOW="127.0.0.1",
        RAYHOOK_ENV_MERCHANT_URL=merchant.url,
        RAYHOOK_ENV_MERCHANT_TOKEN=MERCHANT_TOKEN,
    )
    reply = server.admin.post(
        "/api/workflows:create",
        content=EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/yaml"},
    )
    assert reply.status_code == 200, reply.text
    version = reply.json()["data"]
    server.created.append(version["id"])
    assert version["key"] == "payment-callback" and version["enabled"] is True
    return server, version["key"]


def event(kind: str, *, intent: str = "pi_3Nq", order: str = "A-17") -> dict[str, Any]:
    """A Stripe-like event."""
    return {
        "id": f"evt_{secrets.token_hex(6)}",
        "type": kind,
        "data": {
            "object": {
                "id": intent,
                "amount": 2500,
                "currency": "eur",
                "metadata": {"order_id": order},
            }
        },
    }


def jobs_of(server: Server, reply: httpx.Response) -> tuple[dict[str, Any], dict[str, Any]]:
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    return execution, {job["nodeKey"]: job for job in execution["jobs"]}


def test_a_succeeded_payment_is_told_to_the_merchant_and_recorded(
    callback: tuple[Server, str], merchant: Merchant, schema: str
) -> None:
    server, key = callback
    reply = server.hook(key, event("payment_intent.succeeded"))

    assert reply.status_code == 200, reply.text
    ((payment_id, *row),) = payments(schema)
    assert row == ["pi_3Nq", "A-17", 2500, "eur"]
    assert reply.json() == {"paymentId": payment_id}
    assert merchant.calls == [
        {
            "path": "/orders/A-17/paid",
            "authorization": f"Bearer {MERCHANT_TOKEN}",
            "content-type": "application/json",
            "body": {"payment": "pi_3Nq", "amount": 2500, "currency": "eur"},
        }
    ]
    execution, jobs = jobs_of(server, reply)
    assert execution["status"] == 1
    assert list(jobs) == ["succeeded", "payment", "notify", "save", "recorded"]
    assert all(job["status"] == 1 for job in jobs.values()), jobs
    assert jobs["succeeded"]["result"] is True
    assert jobs["payment"]["result"] == {
        "intent": "pi_3Nq",
        "amount": 2500,
        "currency": "eur",
        "order": "A-17",
    }
    assert jobs["notify"]["result"]["status"] == 200
    assert jobs["notify"]["result"]["data"] == {"ok": True}
    assert jobs["save"]["result"] == [{"id": payment_id}]


def test_another_event_type_is_ignored_with_202(
    callback: tuple[Server, str], merchant: Merchant, schema: str
) -> None:
    server, key = callback
    reply = server.hook(key, event("payment_intent.payment_failed"))

    assert reply.status_code == 202, reply.text
    assert reply.json() == {"ignored": True}
    assert merchant.calls == []
    assert payments(schema) == []
    execution, jobs = jobs_of(server, reply)
    assert execution["status"] == 1
    assert list(jobs) == ["succeeded", "ignored"]
    assert jobs["succeeded"]["result"] is False


def test_a_merchant_failure_answers_500_and_the_providers_retry_records_it_once(
    callback: tuple[Server, str], merchant: Merchant, schema: str
) -> None:
    server, key = callback
    delivery = event("payment_intent.succeeded", intent="pi_retry", order="B-2")
    merchant.status = 503
    failed = server.hook(key, delivery)

    assert failed.status_code == 500, failed.text
    assert payments(schema) == []  # nothing recorded: the provider retries
    execution, jobs = jobs_of(server, failed)
    assert execution["status"] == -1 and jobs["notify"]["status"] == -1
    assert jobs["notify"]["result"]["status"] == 503 and "save" not in jobs

    merchant.status = 200
    retried = server.hook(key, delivery)
    again = server.hook(key, delivery)  # a duplicate delivery after the success

    ((payment_id, *row),) = payments(schema)
    assert row == ["pi_retry", "B-2", 2500, "eur"]
    assert retried.status_code == again.status_code == 200
    assert retried.json() == again.json() == {"paymentId": payment_id}
    assert [call["path"] for call in merchant.calls] == ["/orders/B-2/paid"] * 3
