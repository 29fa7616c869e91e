"""`retryOnFail` on the integration nodes (SPEC §11): a failed try is tried again
after `wait`, up to `maxTries` tries, inside the same job; against real peers:
a local HTTP server that fails N times then succeeds, the machine's PostgreSQL,
a local aiosmtpd server, and a script that fails by its arguments."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpcore
import psycopg
import pytest
from aiosmtpd.controller import Controller

from engine.definition import DefinitionError
from engine.effects import Effects
from engine.interpreter import Interpreter
from engine.records import Execution
from engine.settings import Settings
from engine.status import PENDING, Status
from engine.validation import compile_test_node
from tests.engine.node_runs import compile_nodes, definition_error, run_nodes

PG_URL = os.environ.get("RAYHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SETTINGS = Settings(request_allow=("127.0.0.1",), sql_sources={"main": PG_URL})


# -- peers ------------------------------------------------------------------------------------


class Flaky(BaseHTTPRequestHandler):
    """`/flaky/<id>/<n>`: 503 for the first n requests of that id, then 200;
    `/down`: always 503; `/slow/<id>/<n>`: the first n requests of that id
    answer after 2 s, then at once."""

    server: FlakyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path).path.strip("/").split("/")
        with self.server.lock:
            self.server.seen.append(self.path)
            count = self.server.seen.count(self.path)
        if parts[0] == "down" or (parts[0] == "flaky" and count <= int(parts[2])):
            self._send(503, {"error": f"try {count}: busy"})
            return
        if parts[0] == "slow" and count <= int(parts[2]):
            time.sleep(2)
        self._send(200, {"ok": True, "try": count})

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FlakyServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]
    lock: threading.Lock


@pytest.fixture(scope="module")
def peer() -> Iterator[FlakyServer]:
    server = FlakyServer(("127.0.0.1", 0), Flaky)
    server.seen, server.lock = [], threading.Lock()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests never open a connection beyond the loopback interface."""
    connect = httpcore.AnyIOBackend.connect_tcp

    async def guarded(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to reach {host}"
        return await connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded)


def url(peer: FlakyServer, path: str) -> str:
    return f"http://127.0.0.1:{peer.server_address[1]}{path}"


def request(target: str, retry: Any, **config: Any) -> dict[str, Any]:
    return {
        "key": "call",
        "type": "request",
        "config": {"url": target, "retryOnFail": retry, **config},
    }


# -- request ----------------------------------------------------------------------------------


async def test_a_request_that_fails_twice_succeeds_on_the_third_try(peer: FlakyServer) -> None:
    path = f"/flaky/{secrets.token_hex(4)}/2"
    started = time.monotonic()
    run = await run_nodes(
        [request(url(peer, path), {"maxTries": 3, "wait": "200ms"})], settings=SETTINGS
    )
    assert time.monotonic() - started >= 0.4  # two waits
    assert run.status == Status.RESOLVED
    assert run.job.status == Status.RESOLVED
    assert run.job.result["data"] == {"ok": True, "try": 3}
    assert peer.seen.count(path) == 3
    assert run.job.meta["tries"] == 3
    failures = run.job.meta["failures"]
    assert [(f["try"], f["status"], f["code"]) for f in failures] == [
        (1, Status.FAILED, "ERR_BAD_RESPONSE"),
        (2, Status.FAILED, "ERR_BAD_RESPONSE"),
    ]
    assert all("503" in f["message"] for f in failures)
    assert datetime.fromisoformat(failures[0]["at"]) <= datetime.now(UTC)
    assert run.job.log is not None
    lines = run.job.log.splitlines()
    assert lines[0].startswith("[rayhook] try 1 of 3 failed (FAILED: ")
    assert lines[0].endswith("; trying again in 200ms")
    assert lines[1].startswith("[rayhook] try 2 of 3 failed")
    assert len(lines) == 2
    assert len(run.jobs) == 1  # one job, several tries


async def test_a_request_that_keeps_failing_gives_up_after_max_tries(peer: FlakyServer) -> None:
    path = f"/down/{secrets.token_hex(4)}"
    run = await run_nodes(
        [request(url(peer, path), {"maxTries": 3, "wait": 50}), {"key": "after", "type": "end"}],
        settings=SETTINGS,
    )
    assert run.status == Status.FAILED  # the execution fails with the node, as without retries
    assert run.job.status == Status.FAILED
    assert run.job.result["status"] == 503  # the last try's failure
    assert peer.seen.count(path) == 3
    assert run.job.meta["tries"] == 3
    assert [f["try"] for f in run.job.meta["failures"]] == [1, 2, 3]
    assert [j.nodeKey for j in run.jobs] == ["call"]


async def test_a_request_that_succeeds_at_once_is_tried_once(peer: FlakyServer) -> None:
    path = f"/flaky/{secrets.token_hex(4)}/0"
    run = await run_nodes([request(url(peer, path), {"maxTries": 5})], settings=SETTINGS)
    assert run.job.status == Status.RESOLVED
    assert run.job.meta == {"tries": 1, "failures": []}
    assert run.job.log is None
    assert peer.seen.count(path) == 1


async def test_a_request_that_timed_out_is_tried_again(peer: FlakyServer) -> None:
    path = f"/slow/{secrets.token_hex(4)}/1"
    run = await run_nodes(
        [request(url(peer, path), {"maxTries": 2, "wait": 0}, timeout=300)], settings=SETTINGS
    )
    assert run.job.status == Status.RESOLVED
    (failure,) = run.job.meta["failures"]
    assert failure["status"] == Status.ABORTED and failure["code"] == "ECONNABORTED"


async def test_ignore_fail_applies_to_the_last_try_only(peer: FlakyServer) -> None:
    healed = f"/flaky/{secrets.token_hex(4)}/1"
    run = await run_nodes(
        [request(url(peer, healed), {"maxTries": 3, "wait": 0}, ignoreFail=True)],
        settings=SETTINGS,
    )
    assert run.job.status == Status.RESOLVED
    assert run.job.result["data"] == {"ok": True, "try": 2}  # not the first try's failure
    down = f"/down/{secrets.token_hex(4)}"
    run = await run_nodes(
        [request(url(peer, down), {"maxTries": 2, "wait": 0}, ignoreFail=True)],
        settings=SETTINGS,
    )
    assert run.job.status == Status.RESOLVED  # the node's own ignoreFail, at the end
    assert run.job.result["status"] == 503
    assert run.job.meta["tries"] == 2 and len(run.job.meta["failures"]) == 1
    assert peer.seen.count(down) == 2


async def test_retry_on_fail_true_means_three_tries_a_second_apart(peer: FlakyServer) -> None:
    path = f"/flaky/{secrets.token_hex(4)}/1"
    started = time.monotonic()
    run = await run_nodes([request(url(peer, path), True)], settings=SETTINGS)
    assert 1.0 <= time.monotonic() - started < 5
    assert run.job.meta["tries"] == 2


# -- the execution's timeout and cancel -------------------------------------------------------


def execution() -> Execution:
    return Execution(
        id="0190aa0000000000000000000retry", key="wfkey", workflowId=1, createdAt=datetime.now(UTC)
    )


async def test_a_wait_between_tries_is_interrupted_by_a_timeout(peer: FlakyServer) -> None:
    # What the executor does on `options.timeout` (and on a cancel): stop the
    # run, then abort the jobs still open.
    compiled = compile_nodes([request(url(peer, "/down"), {"maxTries": 3, "wait": "1m"})])
    effects = Effects(SETTINGS)
    interpreter = Interpreter(compiled, execution(), env={}, sink=lambda job: None, effects=effects)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(interpreter.run(), 1.0)
    finally:
        await effects.aclose()
    interpreter.abort()
    assert time.monotonic() - started < 5
    (job,) = interpreter.jobs
    assert job.status == Status.ABORTED
    assert job.meta["tries"] == 1 and len(job.meta["failures"]) == 1
    assert "trying again in 60s" in (job.log or "")


async def test_the_job_is_pending_while_it_waits_for_its_next_try(peer: FlakyServer) -> None:
    compiled = compile_nodes([request(url(peer, "/down"), {"maxTries": 2, "wait": "1m"})])
    seen: list[tuple[int, Any]] = []
    effects = Effects(SETTINGS)
    interpreter = Interpreter(
        compiled,
        execution(),
        env={},
        sink=lambda job: seen.append((job.status, dict(job.meta or {}))),
        effects=effects,
    )
    task = asyncio.ensure_future(interpreter.run())
    try:
        while not seen:
            await asyncio.sleep(0.02)
        status, meta = seen[0]
        assert status == PENDING and meta["tries"] == 1  # visible while it waits
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await effects.aclose()


# -- sql --------------------------------------------------------------------------------------


@pytest.fixture
def sequence() -> Iterator[str]:
    name = f"rh_seq_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"create sequence {name}")
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"drop sequence if exists {name}")


def sql(sequence: str, fails: int, retry: Any) -> dict[str, Any]:
    """Divides by zero while the sequence is at most `fails` (sequences are not
    rolled back, so each try counts)."""
    text = f"select 1 / greatest(nextval('{sequence}') - :fails, 0) as ok"
    return {
        "key": "q",
        "type": "sql",
        "config": {
            "sql": text,
            "variables": [{"name": "fails", "value": fails}],
            "retryOnFail": retry,
        },
    }


async def test_a_sql_statement_that_fails_twice_succeeds_on_the_third_try(sequence: str) -> None:
    run = await run_nodes([sql(sequence, 2, {"maxTries": 3, "wait": "10ms"})], settings=SETTINGS)
    assert run.job.status == Status.RESOLVED
    assert run.job.result == [{"ok": 1}]
    assert run.job.meta["tries"] == 3
    assert [(f["status"], f["code"]) for f in run.job.meta["failures"]] == [
        (Status.ERROR, "22012"),  # division_by_zero
        (Status.ERROR, "22012"),
    ]


async def test_a_sql_statement_that_keeps_failing_ends_in_error(sequence: str) -> None:
    run = await run_nodes([sql(sequence, 5, {"maxTries": 2, "wait": 0})], settings=SETTINGS)
    assert run.status == Status.ERROR and run.job.status == Status.ERROR
    assert run.job.result["code"] == "22012"
    assert run.job.meta["tries"] == 2
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(f"select last_value from {sequence}").fetchone()
    assert row is not None and row[0] == 2  # two tries reached the database


# -- mailer -----------------------------------------------------------------------------------


class BusyMailbox:
    """Answers 451 (try again later) to the first `busy` mails, then accepts."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.tries = 0
        self.accepted: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tries += 1
        if self.tries <= self.busy:
            return "451 4.3.0 busy, try again later"
        self.accepted.extend(envelope.rcpt_tos)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[BusyMailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = BusyMailbox(busy=2)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def mail(port: int, retry: Any) -> dict[str, Any]:
    return {
        "key": "m",
        "type": "mailer",
        "config": {
            "provider": {"host": "127.0.0.1", "port": port, "secure": False},
            "from": "robot@example.com",
            "to": ["ann@example.com"],
            "subject": "Paid",
            "html": "<p>ok</p>",
            "retryOnFail": retry,
        },
    }


async def test_a_mail_refused_twice_is_sent_on_the_third_try(
    smtp: tuple[BusyMailbox, int],
) -> None:
    mailbox, port = smtp
    run = await run_nodes([mail(port, {"maxTries": 3, "wait": 0})], settings=SETTINGS)
    assert run.job.status == Status.RESOLVED
    assert run.job.result["accepted"] == ["ann@example.com"]
    assert mailbox.tries == 3 and mailbox.accepted == ["ann@example.com"]
    assert run.job.meta["tries"] == 3
    assert [f["status"] for f in run.job.meta["failures"]] == [Status.FAILED, Status.FAILED]
    assert "451" in run.job.meta["failures"][0]["message"]


async def test_a_mail_refused_every_time_fails_after_max_tries(
    smtp: tuple[BusyMailbox, int],
) -> None:
    mailbox, port = smtp
    run = await run_nodes([mail(port, {"maxTries": 2, "wait": 0})], settings=SETTINGS)
    assert run.job.status == Status.FAILED
    assert mailbox.tries == 2 and mailbox.accepted == []
    assert run.job.meta["tries"] == 2


# -- script -----------------------------------------------------------------------------------


def script(until_ms: float, retry: Any, **config: Any) -> dict[str, Any]:
    body = (
        'console.log("try at", Date.now() >= until ? "or after" : "before", "until");\n'
        'if (Date.now() < until) throw new Error("not yet");\n'
        'return "done";'
    )
    return {
        "key": "s",
        "type": "script",
        "config": {
            "content": body,
            "arguments": [{"name": "until", "value": "{{$context.until}}"}],
            "retryOnFail": retry,
            **config,
        },
    }


async def test_a_script_that_fails_by_its_arguments_succeeds_once_they_allow() -> None:
    # 3 s: the first try must come before it even when a loaded machine takes a
    # second or more to start the sandbox (300 ms was seen to pass first).
    until = time.time() * 1000 + 3_000
    run = await run_nodes(
        [script(until, {"maxTries": 10, "wait": "500ms"})], context={"until": until}
    )
    assert run.job.status == Status.RESOLVED and run.job.result == "done"
    assert 2 <= run.job.meta["tries"] <= 10
    failures = run.job.meta["failures"]
    assert len(failures) == run.job.meta["tries"] - 1
    assert all(f["status"] == Status.ERROR and "not yet" in f["message"] for f in failures)
    log = (run.job.log or "").splitlines()
    assert log[0] == "[log] try at before until"  # each try's console output is kept
    assert log[1].startswith("[rayhook] try 1 of 10 failed (ERROR: Error: not yet)")
    assert log[-1] == "[log] try at or after until"


async def test_a_script_that_keeps_failing_gives_up_and_continue_applies_last() -> None:
    until = time.time() * 1000 + 3_600_000
    run = await run_nodes([script(until, {"maxTries": 3, "wait": 0})], context={"until": until})
    assert run.job.status == Status.ERROR
    assert run.job.meta["tries"] == 3 and len(run.job.meta["failures"]) == 3
    kept = await run_nodes(
        [script(until, {"maxTries": 2, "wait": 0}, **{"continue": True})], context={"until": until}
    )
    assert kept.job.status == Status.RESOLVED
    assert "not yet" in kept.job.result["message"]
    assert kept.job.meta["tries"] == 2


# -- definition-time checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "field", "words"),
    [
        ({"maxTries": 0}, "config.retryOnFail.maxTries", "from 1 to 10"),
        ({"maxTries": 11}, "config.retryOnFail.maxTries", "from 1 to 10"),
        ({"maxTries": "3"}, "config.retryOnFail.maxTries", "Expected `int`"),
        ({"wait": "soon"}, "config.retryOnFail.wait", "is not a duration"),
        ({"wait": "{{$context.wait}}"}, "config.retryOnFail.wait", "is not a duration"),
        ({"wait": -1}, "config.retryOnFail.wait", "from 0 to 300s"),
        ({"wait": "6m"}, "config.retryOnFail.wait", "options.retry"),
        ({"tries": 3}, "config.retryOnFail", "unknown field `tries`"),
        ("3", "config.retryOnFail", "Expected `object"),
    ],
)
def test_a_bad_retry_on_fail_is_refused_naming_the_node_and_field(
    retry: Any, field: str, words: str
) -> None:
    message = definition_error("request", {"url": "https://example.com", "retryOnFail": retry})
    assert message.startswith(f'node "n" (request): {field}: '), message
    assert words in message


@pytest.mark.parametrize("node_type", ["calculation", "condition", "json-query", "output"])
def test_retry_on_fail_is_refused_on_nodes_that_do_not_reach_outside(node_type: str) -> None:
    message = definition_error(node_type, {"retryOnFail": {"maxTries": 2}})
    assert message == (
        f'node "n" ({node_type}): config.retryOnFail: only mailer, request, script, sql nodes retry'
    )


@pytest.mark.parametrize("retry", [None, False, True, {}, {"maxTries": 1, "wait": 0}])
def test_retry_on_fail_forms_that_are_accepted(retry: Any) -> None:
    (node,) = compile_nodes(
        [{"key": "n", "type": "sql", "config": {"sql": "select 1", "retryOnFail": retry}}]
    ).nodes
    expected = None if retry in (None, False) else 3 if retry in (True, {}) else 1
    assert (node.retry.max_tries if node.retry else None) == expected


def test_a_node_test_runs_the_config_once_but_checks_retry_on_fail() -> None:
    # flow_nodes:test runs one node's config once, as NocoBase's node test does.
    config = {"url": "https://example.com", "retryOnFail": {"maxTries": 5}}
    (node,) = compile_test_node("request", config, []).nodes
    assert node.retry is None
    with pytest.raises(DefinitionError, match=r"config\.retryOnFail\.maxTries"):
        compile_test_node("request", {**config, "retryOnFail": {"maxTries": 50}}, [])
