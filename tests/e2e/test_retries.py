"""Retries of whole executions over real HTTP (SPEC §11, `options.retry`): a
`request` node calls a real local HTTP server that fails a given number of
times, then succeeds. An execution retried is one execution (its `attempt`
grows, earlier attempts' jobs stay); one whose attempts ran out is final and
`exhausted`, found with `filter[exhausted]=true` and replayed in bulk."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import Server

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


class Flaky:
    """A local HTTP server that answers 500 to the first `failures` requests of
    each path, then 200; it counts every request per path."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = self.path
                flaky.calls[path] = flaky.calls.get(path, 0) + 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                ok = flaky.calls[path] > flaky.failures.get(path, 0)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"paid": true}' if ok else b'{"error": "down"}')

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def path(self, name: str, failures: int) -> str:
        self.failures[f"/{name}"] = failures
        return f"{self.base}/{name}"


@pytest.fixture(scope="module")
def flaky() -> Iterator[Flaky]:
    server = Flaky()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def retry_server(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    from tests.conftest import delete_namespace, kill_actors
    from tests.e2e.conftest import start_server

    server = start_server(tmp_path_factory.mktemp("retries"), RAYHOOK_REQUEST_ALLOW="127.0.0.1")
    yield server
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


@pytest.fixture
def rs(retry_server: Server) -> Iterator[Server]:
    yield retry_server
    retry_server.cleanup()


def calling(
    url: str, *, max_attempts: int = 4, initial: str = "200ms", **policy: Any
) -> dict[str, Any]:
    return {
        "sync": False,
        "enabled": True,
        "options": {
            "retry": {
                "maxAttempts": max_attempts,
                "backoff": {"initial": initial, "multiplier": 2, "max": "1s", "jitter": False},
                **policy,
            }
        },
        "nodes": [{"key": "pay", "type": "request", "config": {"url": url, "method": "POST"}}],
    }


def test_a_failing_request_is_retried_until_it_succeeds(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("succeeds-third", failures=2)
    key = rs.create(calling(url))["key"]
    execution_id = rs.hook(key, {"order": 1}).headers["x-rayhook-execution"]
    execution = rs.wait_final(execution_id, timeout=60)
    assert execution["status"] == 1
    assert execution["attempt"] == 3 and execution["exhausted"] is False
    assert [(j["nodeKey"], j["status"], j["attempt"]) for j in execution["jobs"]] == [
        ("pay", -1, 1),
        ("pay", -1, 2),
        ("pay", 1, 3),
    ]
    assert len({j["id"] for j in execution["jobs"]}) == 3  # each attempt's job kept
    assert flaky.calls["/succeeds-third"] == 3
    listed = rs.admin.get("/api/executions:list", params={"filter[workflowKey]": key}).json()
    assert listed["meta"]["count"] == 1  # the attempts are one execution


def test_between_attempts_it_is_started_and_says_when_it_retries(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("slow-backoff", failures=1)
    key = rs.create(calling(url, initial="3s"))["key"]
    execution_id = rs.hook(key, {}).headers["x-rayhook-execution"]
    deadline = time.monotonic() + 30
    while (shown := rs.execution(execution_id)) is None or shown.get("retryAt") is None:
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert shown["status"] == 0 and shown["attempt"] == 1
    assert [j["status"] for j in shown["jobs"]] == [-1]
    assert rs.wait_final(execution_id, timeout=60)["attempt"] == 2


def test_an_execution_whose_attempts_ran_out_is_exhausted(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("always-down", failures=1000)
    key = rs.create(calling(url, max_attempts=3, initial="100ms"))["key"]
    execution_id = rs.hook(key, {}).headers["x-rayhook-execution"]
    execution = rs.wait_final(execution_id, timeout=60)
    assert (execution["status"], execution["attempt"], execution["exhausted"]) == (-1, 3, True)
    assert flaky.calls["/always-down"] == 3
    exhausted = rs.admin.get(
        "/api/executions:list", params={"filter[workflowKey]": key, "filter[exhausted]": "true"}
    ).json()
    assert [e["id"] for e in exhausted["data"]] == [execution_id]
    wanted = [
        f'rayhook_executions_exhausted_total{{key="{key}"}} 1.0',
        f'rayhook_execution_attempts_total{{key="{key}"}} 3.0',
    ]
    deadline = time.monotonic() + 15  # the actors add their counts up every 2 s
    while not all(w in (metrics := scrape(rs)) for w in wanted):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.3)


def scrape(server: Server) -> str:
    return server.http.get("/metrics", headers={"Authorization": f"Bearer {server.token}"}).text


def test_a_status_not_listed_in_on_is_not_retried(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("fails-once", failures=1)
    key = rs.create(calling(url, on=[-2]))["key"]  # a failed request is FAILED (-1)
    execution = rs.wait_final(rs.hook(key, {}).headers["x-rayhook-execution"], timeout=60)
    assert (execution["status"], execution["attempt"], execution["exhausted"]) == (-1, 1, False)


def test_a_cancel_between_attempts_ends_it(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("cancel-me", failures=1000)
    key = rs.create(calling(url, initial="2s"))["key"]
    execution_id = rs.hook(key, {}).headers["x-rayhook-execution"]
    deadline = time.monotonic() + 30
    while (rs.execution(execution_id) or {}).get("retryAt") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    canceled = rs.admin.post("/api/executions:cancel", params={"filterByTk": execution_id})
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == -3
    time.sleep(3.0)  # past the retry's timer: it fires, finds it final, runs nothing
    assert flaky.calls["/cancel-me"] == 1
    assert rs.execution(execution_id)["status"] == -3  # type: ignore[index]


def test_bulk_replay_runs_every_exhausted_execution_again(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("down-then-up", failures=4)
    key = rs.create(calling(url, max_attempts=2, initial="100ms"))["key"]
    failed = [rs.hook(key, {"n": n}).headers["x-rayhook-execution"] for n in range(2)]
    for execution_id in failed:
        assert rs.wait_final(execution_id, timeout=60)["exhausted"] is True
    no_filter = rs.admin.post("/api/executions:replay")
    assert no_filter.status_code == 400
    reply = rs.admin.post(
        "/api/executions:replay",
        params={"filter[workflowKey]": key, "filter[exhausted]": "true"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"] == {"count": 2, "skipped": 0}
    deadline = time.monotonic() + 60
    while True:
        rows = rs.admin.get(
            "/api/executions:list", params={"filter[workflowKey]": key, "filter[status]": "1"}
        ).json()["data"]
        if len(rows) == 2:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    assert {r["replayOf"] for r in rows} == set(failed)


def test_rayhook_replay_by_workflow_status_and_age(rs: Server, flaky: Flaky) -> None:
    url = flaky.path("cli-replay", failures=1)
    key = rs.create(calling(url, max_attempts=1))["key"]
    failed = rs.wait_final(rs.hook(key, {}).headers["x-rayhook-execution"], timeout=60)
    assert failed["status"] == -1
    command = [
        sys.executable,
        "-m",
        "deploy.cli",
        "replay",
        "--workflow",
        key,
        "--status",
        "-1",
        "--since",
        "1h",
        "--url",
        rs.url,
        "--token",
        rs.token,
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 executions replayed"
    nothing = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "replay", "--url", rs.url, "--token", rs.token],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert nothing.returncode == 1 and "--workflow" in nothing.stderr
    bad = subprocess.run(
        [*command[:-4], "--since", "an hour", "--url", rs.url, "--token", rs.token],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 1 and "--since" in bad.stderr


@pytest.mark.parametrize(
    ("retry", "sync", "problem"),
    [
        ({"maxAttempts": 3}, True, "options.retry: sync workflows are not retried"),
        ({"maxAttempts": 0}, False, "options.retry.maxAttempts"),
        ({"maxAttempts": 500}, False, "options.retry.maxAttempts"),
        ({"backoff": {"initial": "soon"}}, False, "options.retry.backoff.initial"),
        ({"backoff": {"max": "-1s"}}, False, "options.retry.backoff.max"),
        ({"backoff": {"multiplier": 0.5}}, False, "options.retry.backoff.multiplier"),
        ({"on": [1]}, False, "options.retry.on: 1"),
        ({"on": [0]}, False, "options.retry.on: 0"),
        ({"tries": 3}, False, "options.retry"),
    ],
)
def test_a_bad_retry_policy_is_a_400_naming_the_field(
    rs: Server, retry: dict[str, Any], sync: bool, problem: str
) -> None:
    reply = rs.admin.post(
        "/api/workflows:create",
        json={"sync": sync, "options": {"retry": retry}, "nodes": []},
    )
    assert reply.status_code == 400, reply.text
    assert any(problem in e["message"] for e in reply.json()["errors"]), reply.text
