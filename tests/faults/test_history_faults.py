"""Crashes around the move of final executions to the SQL history (SPEC §9):
the history writer, Redis and the SQL server are each killed under load. After
each, every accepted event is final, stored exactly once in SQL (by execution
id and by event id), and Redis holds no execution any more (its memory does not
keep what has moved).

The SQL server is a private PostgreSQL (the machine's shared one must stay up),
killed with `pg_ctl -m immediate` (no shutdown checkpoint: crash recovery at the
next start)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from engine.status import is_final
from store.keys import HISTORY_GROUP, Keys
from tests.conftest import delete_namespace, kill_actors, process_state
from tests.e2e.conftest import Server, start_server
from tests.e2e.postgres_server import PostgresServer
from tests.e2e.redis_server import RedisServer
from tests.faults.check import Verdict, executions_of
from tests.faults.conftest import Stack


class HistoryStack(Stack):
    """The fault stack (private Redis with AOF) with its history in a private
    PostgreSQL."""

    def __init__(self, server: Server, redis_server: RedisServer, pg: PostgresServer) -> None:
        super().__init__(server, redis_server)
        self.pg = pg

    def hot(self) -> dict[str, int]:
        client = redis.Redis.from_url(self.redis.url)
        keys = Keys(self.server.namespace)
        try:
            return {
                "statuses": client.hlen(keys.execution_statuses),
                "moving": client.hlen(keys.moving),
                "history stream": client.xlen(keys.history),
                "inbox": client.xlen(keys.inbox(self.key)),
            }
        finally:
            client.close()

    def wait_moved(self, timeout: float = 120) -> float:
        started = time.monotonic()
        while any(self.hot().values()):
            assert time.monotonic() - started < timeout, self.hot()
            time.sleep(0.2)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def hstack(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HistoryStack]:
    folder = tmp_path_factory.mktemp("history-faults")
    redis_server = RedisServer(folder / "redis", appendonly=True, fsync="always")
    redis_server.start()
    pg = PostgresServer()
    pg.start()
    server = start_server(folder, redis_url=redis_server.url, RAYHOOK_HISTORY_URL=pg.url)
    stack = HistoryStack(server, redis_server, pg)
    yield stack
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    redis_server.stop()
    pg.remove()
    delete_namespace(server.namespace)


def run_with_fault(stack: HistoryStack, fault: str, inject: Callable[[], None]) -> Verdict:
    verdict = stack.run_with_fault(fault, inject, timeout=180)
    stack.wait_moved()
    stored_once(stack, stack.accepted)
    return verdict


def stored_once(stack: HistoryStack, accepted: set[str]) -> None:
    """Every accepted execution is a row of the history, and only once (its id
    is the key; its event id appears once)."""
    runs = asyncio.run(
        executions_of(stack.redis.url, stack.server.namespace, stack.server.history_url, stack.key)
    )
    ids = Counter(e.id for e in runs)
    assert accepted <= set(ids), f"{len(accepted - set(ids))} accepted executions not stored"
    assert max(ids.values()) == 1
    assert all(is_final(e.status) for e in runs)


def test_kill_the_history_writer(hstack: HistoryStack) -> None:
    """The writer is a child process of execution actor 0 (`rayhook::HistoryWriter`):
    killed mid-move, it loses nothing, stores nothing twice, and is started again."""
    before = hstack.writer_pid()
    state = process_state(before)
    assert state is not None and state[1] == hstack.actor_pid("executor:0")
    run_with_fault(hstack, "history writer SIGKILL", lambda: os.kill(before, signal.SIGKILL))
    assert hstack.writer_pid() != before


def test_kill_execution_actor_0_with_its_history_writer(hstack: HistoryStack) -> None:
    """Killing execution actor 0 ends its writer too (PR_SET_PDEATHSIG: no orphan
    moves executions beside the new one), and Ray's restart starts a new one."""
    before = hstack.writer_pid()
    run_with_fault(
        hstack,
        "executor 0 (parent of the history writer) SIGKILL",
        lambda: hstack.kill_actor_process("executor:0"),
    )
    gone = process_state(before)
    assert gone is None or gone[0] == "Z"
    after = process_state(hstack.writer_pid())
    assert after is not None and after[1] == hstack.actor_pid("executor:0")


def test_kill_redis_while_executions_move(hstack: HistoryStack) -> None:
    def crash_and_restart() -> None:
        hstack.redis.kill()
        time.sleep(1.0)
        hstack.redis.start()

    run_with_fault(hstack, "Redis SIGKILL + restart, history moving", crash_and_restart)
    hstack.wait_ready()


def test_the_sql_server_crashes_and_comes_back(hstack: HistoryStack) -> None:
    """While the history database is down, webhooks are still accepted (the
    executions wait in Redis), /readyz stays 200 and says so, and /metrics shows
    the waiting executions; once it is back, they all move."""
    seen: dict[str, object] = {}

    def crash_wait_and_restart() -> None:
        hstack.pg.kill()
        time.sleep(3.0)
        ready = hstack.server.http.get("/readyz")
        seen["ready"] = (ready.status_code, ready.json()["data"])
        seen["metrics"] = hstack.server.http.get(
            "/metrics", headers={"Authorization": f"Bearer {hstack.server.token}"}
        ).text
        hstack.pg.start()

    with httpx.Client():
        verdict = run_with_fault(
            hstack, "history PostgreSQL crash + restart", crash_wait_and_restart
        )
    assert seen["ready"] == (200, {"redis": True, "ray": True, "history": False})
    metrics = str(seen["metrics"])
    assert "rayhook_history_up 0.0" in metrics
    waiting = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("rayhook_history_queue ")
    )
    assert waiting > 0
    assert verdict.answering_again_s < 1.0  # webhooks never stopped being accepted


def test_entries_the_writer_took_but_never_received_move_within_seconds(
    hstack: HistoryStack,
) -> None:
    """A read whose reply is lost (the client retries it on a fresh connection)
    leaves its entries pending to the writer, which reads nothing it did not
    receive: it looks at its own pending entries every few seconds, well before
    idle entries are claimed (60 s). Staged: the writer is stopped, final
    executions are taken in its name, and it continues."""
    hstack.wait_moved()
    pid = hstack.writer_pid()
    client = redis.Redis.from_url(hstack.redis.url)
    keys = Keys(hstack.server.namespace)
    os.kill(pid, signal.SIGSTOP)
    try:
        sent = [hstack.server.http.post(hstack.url, json={"n": n}).status_code for n in range(20)]
        assert set(sent) <= {200, 202}, sent
        deadline = time.monotonic() + 60
        while client.xlen(keys.history) < len(sent):
            assert time.monotonic() < deadline, hstack.hot()
            time.sleep(0.1)
        # (the writer's own read, blocked when it stopped, may hold the first)
        taken = client.xreadgroup(HISTORY_GROUP, "writer", {keys.history: ">"}, count=100)
        assert sum(len(items) for _, items in taken) >= len(sent) - 1
        assert client.xpending(keys.history, HISTORY_GROUP)["pending"] == len(sent)
    finally:
        os.kill(pid, signal.SIGCONT)
        client.close()
    assert hstack.wait_moved(timeout=30) < 30
