"""Planned stops (SIGTERM) and restarts (SIGTERM then start again) under load
(SPEC §7, README "rayhook up"): a stop lets in-flight requests finish, leaves
the events it has not started in Redis, and the next start runs each of them
once.

- `rayhook up` restarted mid-load finishes the backlog;
- SIGTERM to gunicorn during slow sync requests: each gets its reply, and new
  connections are refused from the signal on;
- SIGTERM to `rayhook up` with a backlog: it exits in a bounded time, the
  executors stop consuming, the unread events stay in the inbox and run once
  after a restart.

The `rayhook up` scenarios use a private Redis with AOF (`REDIS_URL`), so that
the test reads the inbox and the execution log itself, and `rayhook up` starts
its own Ray head as a user's would. Each writes its verdict row via `settle()`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from deploy import http_clients, processes
from deploy.launcher import ray_temp_dir
from engine.settings import default_history_url
from engine.status import is_final
from store.keys import Keys
from tests.conftest import REDIS_URL, delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.e2e.redis_server import RedisServer
from tests.e2e.test_up import Up
from tests.faults.check import executions_of, settle
from tests.faults.load import Load, Outcome

UP_NAMESPACE = "rayhook"  # `rayhook up`'s default namespace, on a private Redis
STOP_BOUND = 60.0  # `rayhook up` exits within this after SIGTERM (graceful 10 s + drain 10 s + Ray)
START_BOUND = 120.0  # ... and is ready again within this
DRAIN_BOUND = 120.0  # every accepted event is final within this after the restart


def slow_async(wait_ms: int, **extra: Any) -> dict[str, Any]:
    """An async workflow whose run waits `wait_ms` (a script timer: I/O-like,
    no CPU), so that a small RAYHOOK_MAX_INFLIGHT leaves a backlog."""
    return {
        "title": f"slow async ({wait_ms} ms)",
        "sync": False,
        "enabled": True,
        "nodes": [
            {
                "key": "wait",
                "type": "script",
                "config": {
                    "content": f"await new Promise(r => setTimeout(r, {wait_ms})); return amount;",
                    "arguments": [{"name": "amount", "value": "{{$context.body.amount}}"}],
                },
            },
            {
                "key": "out",
                "type": "output",
                "config": {
                    "value": {"id": "{{$context.body.id}}", "amount": "{{$jobsMapByNodeKey.wait}}"}
                },
            },
        ],
        **extra,
    }


def heavy_sync(nodes: int) -> dict[str, Any]:
    """A sync workflow that computes for a while: `nodes` sums of the body's `xs`."""
    chain: list[dict[str, Any]] = [
        {
            "key": f"sum{i}",
            "type": "calculation",
            "config": {"expression": "sum({{$context.body.xs}})"},
        }
        for i in range(nodes)
    ]
    chain.append(
        {
            "key": "reply",
            "type": "response",
            "config": {
                "statusCode": 200,
                "body": {
                    "id": "{{$context.body.id}}",
                    "total": f"{{{{$jobsMapByNodeKey.sum{nodes - 1}}}}}",
                },
            },
        }
    )
    return {"title": "heavy sync", "sync": True, "enabled": True, "nodes": chain}


class UpStack:
    """`rayhook up` (own data folder, own Ray head) on a private Redis with AOF."""

    def __init__(self, folder: Path, **settings: str) -> None:
        self.redis = RedisServer(folder / "redis", appendonly=True, fsync="always")
        self.redis.start()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "REDIS_URL", "RAYHOOK_ADMIN_TOKEN")
            and not k.startswith("RAYHOOK_")
        }
        env.update(REDIS_URL=self.redis.url, RAYHOOK_GRACEFUL_TIMEOUT="10", **settings)
        self.port = processes.free_port()
        self.data_dir = folder / "data"
        self.up = Up(self.data_dir, self.port, env)
        self.keys = Keys(UP_NAMESPACE)
        self.client = redis.Redis.from_url(self.redis.url)
        self.http = httpx.Client()

    def start(self) -> float:
        ready_after = self.up.start(timeout=START_BOUND)
        token = (self.data_dir / "admin-token").read_text().strip()
        self.http = http_clients.client(f"http://127.0.0.1:{self.port}", token=token)
        return ready_after

    def stop(self) -> float:
        """SIGTERM; the seconds until `rayhook up` exited (status 0)."""
        self.http.close()  # an idle keep-alive connection holds gunicorn's stop (graceful_timeout)
        started = time.monotonic()
        assert self.up.stop() == 0, self.up.output.read_text()[-3000:]
        stopped_after = time.monotonic() - started
        assert "rayhook: stopped" in self.up.output.read_text()
        for marker in (str(self.data_dir), ray_temp_dir(self.data_dir)):
            leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True)
            assert leftovers.stdout == b"", f"processes of the stopped stack still run ({marker})"
        return stopped_after

    def create(self, definition: dict[str, Any]) -> dict[str, Any]:
        reply = self.http.post("/api/workflows:create", json=definition)
        assert reply.status_code == 200, reply.text
        return dict(reply.json()["data"])

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhook:trigger/{key}"

    def backlog(self, key: str) -> int:
        return int(self.client.xlen(self.keys.inbox(key)))

    def final(self, key: str, execution_ids: list[str]) -> int:
        """How many of these executions are final, hot in Redis or in the history."""
        runs = asyncio.run(
            executions_of(
                self.redis.url, UP_NAMESPACE, default_history_url(str(self.data_dir)), key
            )
        )
        final = {e.id for e in runs if is_final(e.status)}
        return sum(1 for i in execution_ids if i in final)

    def close(self) -> None:
        if self.up.process is not None and self.up.process.poll() is None:
            processes.stop(self.up.process, timeout=60)
        self.http.close()
        self.client.close()
        self.redis.stop()


@pytest.fixture
def up_stack(tmp_path: Path) -> Iterator[Any]:
    stacks: list[UpStack] = []

    def make(**settings: str) -> UpStack:
        stack = UpStack(tmp_path, **settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


def test_rayhook_up_restarted_mid_load_finishes_the_backlog(up_stack: Any) -> None:
    stack: UpStack = up_stack(RAYHOOK_MAX_INFLIGHT="4")
    stack.start()
    version = stack.create(slow_async(20, title="restart mid-load"))
    key = version["key"]
    with Load(stack.url(key), connections=4, pause=0.01) as load:
        time.sleep(3.0)
        backlog_at_stop = stack.backlog(key)
        stopped_after = stack.stop()
        down_at = time.monotonic()  # the whole stack is gone: nothing answers now
        accepted_before = len(load.outcome.accepted)
        ready_after = stack.start()
        time.sleep(3.0)
    outcome = load.outcome
    verdict = settle(
        stack.redis.url,
        UP_NAMESPACE,
        key,
        version["id"],
        outcome,
        fault="rayhook up restart mid-load",
        fault_at=down_at,
        timeout=DRAIN_BOUND,
        history_url=default_history_url(str(stack.data_dir)),
    )
    print(
        f"backlog at SIGTERM {backlog_at_stop}; stopped in {stopped_after:.1f} s; ready again "
        f"{ready_after:.1f} s later; refused meanwhile {outcome.refused}; "
        f"accepted {accepted_before} before, {verdict.accepted - accepted_before} after"
    )
    assert backlog_at_stop > 0, "no backlog: the scenario would not test it"
    assert stopped_after < STOP_BOUND
    assert verdict.accepted > accepted_before > 100, verdict
    assert verdict.lost == 0, verdict
    assert verdict.duplicated == 0, verdict
    assert verdict.answering_again_s <= START_BOUND, verdict
    assert stack.backlog(key) == 0


def test_sigterm_lets_in_flight_sync_requests_finish(
    ray_address: str, ray_driver: None, tmp_path: Path
) -> None:
    server = start_server(tmp_path, RAYHOOK_GRACEFUL_TIMEOUT="40")
    try:
        run_sync_drain(server)
    finally:
        server.http.close()
        server.admin.close()
        processes.stop(server.process, timeout=40)
        kill_actors(server.namespace)
        delete_namespace(server.namespace)


def run_sync_drain(server: Server) -> None:
    requests, nodes = 10, 70
    xs = list(range(50_000))
    version = server.create(heavy_sync(nodes))
    key = version["key"]
    host, port = server.url.removeprefix("http://").split(":")
    client = redis.Redis.from_url(REDIS_URL)
    outcome = Outcome()
    replies: dict[str, tuple[int, Any, float]] = {}

    def call(event_id: str) -> None:
        with httpx.Client(timeout=60) as http:
            try:
                reply = http.post(
                    f"{server.url}/api/webhook:trigger/{key}", json={"id": event_id, "xs": xs}
                )
            except httpx.HTTPError as exc:
                replies[event_id] = (0, repr(exc), time.monotonic())
                return
        replies[event_id] = (reply.status_code, reply.json(), time.monotonic())
        outcome.answers.append((time.monotonic(), reply.status_code == 200))
        if reply.status_code == 200:
            outcome.accepted[event_id] = reply.headers["x-rayhook-execution"]

    ids = [f"drain-{i}" for i in range(requests)]
    # Our idle keep-alive connections (readiness, admin) would hold gunicorn's stop
    # for its whole graceful_timeout: its ASGI worker waits for idle connections
    # as for busy ones. Only the requests under test stay connected.
    server.http.close()
    server.admin.close()
    with ThreadPoolExecutor(requests) as pool:
        started = time.monotonic()
        futures = [pool.submit(call, event_id) for event_id in ids]
        outcome.sent = requests
        # Every request is in the app: its connection accepted (nothing left in the
        # listen queue) and its body read (nothing left in its receive queue).
        deadline = time.monotonic() + 30
        while not all_read(int(port), requests):
            assert time.monotonic() < deadline, "the requests did not all reach the app"
            time.sleep(0.02)
        time.sleep(0.3)
        assert not replies, f"a request ended before the signal: {replies}"
        fault_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        refused_after = wait_refused(host, int(port), fault_at)
        outcome.answers.append((time.monotonic(), False))
        outcome.refused[0] = 1
        still_running = requests - len(replies)
        for future in futures:
            future.result(timeout=90)
    exited = server.process.wait(60)
    exited_after = time.monotonic() - fault_at
    total = sum(xs)
    verdict = settle(
        REDIS_URL,
        server.namespace,
        key,
        version["id"],
        outcome,
        fault="SIGTERM during sync requests",
        fault_at=fault_at,
        timeout=30,
        history_url=server.history_url,
    )
    client.close()
    last = max(at for _, _, at in replies.values())
    print(
        f"{requests} sync requests; SIGTERM {fault_at - started:.1f} s after sending them; "
        f"new connections refused {refused_after:.2f} s after SIGTERM "
        f"while {still_running} were running; "
        f"last reply {last - fault_at:.1f} s after SIGTERM; gunicorn exited ({exited}) "
        f"{exited_after:.1f} s after SIGTERM"
    )
    for event_id in ids:
        status, body, _ = replies[event_id]
        assert status == 200, (event_id, status, body)
        assert body == {"id": event_id, "total": total}
    # Every reply came after the signal (the drain), whatever finished while the
    # port was still being found closed.
    early = [at for _, _, at in replies.values() if at <= fault_at]
    assert not early, "requests finished before the signal: not a drain test"
    assert exited == 0
    assert verdict.lost == 0 and verdict.duplicated == 0, verdict


def all_read(port: int, connections: int) -> bool:
    """Whether `connections` connections to `port` are accepted and their bytes
    read by the server (`ss`: the listen queue and their receive queues empty)."""
    out = subprocess.run(["ss", "-Htn"], capture_output=True, text=True, check=True).stdout
    read = 0
    for line in out.splitlines():
        state, recv_q, _, local, _ = line.split()[:5]
        if state == "ESTAB" and local.endswith(f":{port}") and recv_q == "0":
            read += 1
    listen = subprocess.run(
        ["ss", "-Hltn", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout.split()
    return read >= connections and bool(listen) and listen[1] == "0"


def wait_refused(host: str, port: int, since: float, bound: float = 3.0) -> float:
    """Seconds from `since` until a new TCP connection is refused (gunicorn's
    workers notice the signal within about a second, then close their sockets)."""
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except ConnectionRefusedError:
            return time.monotonic() - since
        except OSError:
            pass
        assert time.monotonic() - since < bound, "gunicorn still accepts connections after SIGTERM"
        time.sleep(0.02)


def test_shutdown_with_a_backlog_keeps_the_unread_events(up_stack: Any) -> None:
    stack: UpStack = up_stack(RAYHOOK_MAX_INFLIGHT="2")
    stack.start()
    version = stack.create(slow_async(500, title="shutdown backlog"))
    key = version["key"]
    outcome = Outcome()
    # One connection per request: an idle keep-alive connection would hold
    # gunicorn's stop for its whole graceful_timeout, while the executors still
    # consumes (it is drained only once gunicorn has stopped).
    with httpx.Client(timeout=30, headers={"Connection": "close"}) as http:

        def post(event_id: str, amount: int) -> None:
            reply = http.post(stack.url(key), json={"id": event_id, "amount": amount})
            outcome.sent += 1
            outcome.answers.append((time.monotonic(), reply.is_success))
            assert reply.is_success, reply.text
            outcome.accepted[event_id] = reply.headers["x-rayhook-execution"]

        for i in range(50):
            post(f"backlog-{i}", i)
        time.sleep(0.5)  # a couple of executions are running
        fault_at = time.monotonic()
        stopped_after = stack.stop()
        wanted = list(outcome.accepted.values())
        final_at_stop = stack.final(key, wanted)
        backlog_at_stop = stack.backlog(key)
        pending_at_stop = int(
            stack.client.xpending(stack.keys.inbox(key), "supervisors")["pending"]
        )
        ready_after = stack.start()
        post("backlog-after-restart", 50)
    verdict = settle(
        stack.redis.url,
        UP_NAMESPACE,
        key,
        version["id"],
        outcome,
        fault="shutdown with a backlog",
        fault_at=fault_at,
        timeout=DRAIN_BOUND,
        history_url=default_history_url(str(stack.data_dir)),
    )
    print(
        f"stopped in {stopped_after:.1f} s with {final_at_stop} of 50 final, {backlog_at_stop} "
        f"in the inbox ({pending_at_stop} delivered, not acked); ready again after "
        f"{ready_after:.1f} s"
    )
    assert stopped_after < STOP_BOUND
    # The executors stopped consuming: most events were left unread ...
    assert final_at_stop < 50 and backlog_at_stop > 0
    # ... and none was lost on the way: each is either final or still in the inbox.
    assert final_at_stop + backlog_at_stop == 50
    assert verdict.accepted == 51 and verdict.lost == 0 and verdict.duplicated == 0, verdict
    assert stack.backlog(key) == 0
