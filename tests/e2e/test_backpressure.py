"""Backpressure over real HTTP (SPEC §9): a webhook that cannot be kept safely is
refused with 503, `Retry-After` and a JSON error naming the cause, and counted
by cause in /metrics; what was accepted before keeps running; once there is
room again, webhooks are accepted again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import Server
from tests.e2e.redis_server import RedisServer
from tests.e2e.workflows import async_echo, seed_example


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(3.0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_url() -> Iterator[str]:
    """A local HTTP server that answers after 3 s (the request node waits on it)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/slow"
    httpd.shutdown()


def slow_workflow(url: str) -> dict[str, object]:
    """An async workflow whose one node waits on `url` (the 3 s server above),
    so its events stay in the inbox while a test sends more."""
    return {
        "sync": False,
        "enabled": True,
        "nodes": [{"key": "call", "type": "request", "config": {"url": url, "timeout": 30000}}],
    }


def refused_by(reply: httpx.Response, cause: str) -> bool:
    return (
        reply.status_code == 503
        and reply.headers.get("retry-after") == "5"
        and reply.json()["errors"][0].get("cause") == cause
    )


def metric(server: Server, name: str) -> float:
    text = server.http.get("/metrics", headers={"Authorization": f"Bearer {server.token}"}).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_full_backlog_refuses_that_workflow_only(
    make_server: Callable[..., Server], slow_url: str
) -> None:
    server = make_server(RAYHOOK_MAX_BACKLOG="3", RAYHOOK_REQUEST_ALLOW="127.0.0.1")
    slow = server.create(slow_workflow(slow_url))
    other = server.create(async_echo())
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda n: server.hook(slow["key"], {"n": n}), range(6)))
    accepted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 503]
    assert len(accepted) == 3 and len(refused) == 3, [r.status_code for r in replies]
    assert all(refused_by(r, "backlog") for r in refused), refused[0].text
    assert "backlog" in refused[0].json()["errors"][0]["message"]
    # another workflow's backlog is its own
    assert server.hook(other["key"], {"amount": 1}).status_code == 200
    # what was accepted runs to its end; then there is room again
    for reply in accepted:
        execution = server.wait_final(reply.headers["x-rayhook-execution"])
        assert execution["status"] == 1, execution["jobs"][0]["result"]
    assert server.hook(slow["key"], {"n": 7}).status_code == 200
    assert metric(server, 'rayhook_webhook_refused_total{reason="backlog"}') == 3


def test_a_workflow_behind_its_pace_is_answered_later_and_loses_nothing(
    make_server: Callable[..., Server], slow_url: str
) -> None:
    """Above RAYHOOK_PACE_BACKLOG entries the reply waits (ingress/pacing.py):
    2 entries in, the third event waits 125 ms, the fourth 250 ms; every one is
    stored before its reply and runs, and /metrics counts the paced replies."""
    server = make_server(RAYHOOK_PACE_BACKLOG="2", RAYHOOK_REQUEST_ALLOW="127.0.0.1")
    slow = server.create(slow_workflow(slow_url))
    other = server.create(async_echo())
    took = []
    replies = []
    for n in range(4):  # one at a time: each joins a known backlog (0, 1, 2, 3)
        started = time.monotonic()
        replies.append(server.hook(slow["key"], {"n": n}))
        took.append(time.monotonic() - started)
    assert [r.status_code for r in replies] == [200] * 4, replies[-1].text
    assert took[2] >= 0.125 and took[3] >= 0.25, took
    assert metric(server, "rayhook_webhook_paced_total") == 2
    assert metric(server, "rayhook_webhook_paced_seconds_total") == pytest.approx(0.375)
    # another workflow's backlog is its own: not paced
    assert server.hook(other["key"], {"amount": 1}).status_code == 200
    assert metric(server, "rayhook_webhook_paced_total") == 2
    for reply in replies:
        execution = server.wait_final(reply.headers["x-rayhook-execution"])
        assert execution["status"] == 1, execution["jobs"][0]["result"]


def test_redis_above_its_high_watermark_refuses_webhooks_until_it_has_room(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis", maxmemory="64mb") as private:
        server = make_server(redis_url=private.url, RAYHOOK_REDIS_HIGH_WATERMARK="0.5")
        async_key = server.create(async_echo())["key"]
        sync_key = server.create(seed_example())["key"]
        (execution_id,) = [server.hook(async_key, {"amount": 1}).headers["x-rayhook-execution"]]
        assert server.wait_final(execution_id)["status"] == 1
        client = redis.Redis.from_url(private.url)
        try:
            # ballast above half of 64 MB, in 1 MB values (one 40 MB value would be
            # refused: its query buffer alone counts as used memory)
            for n in range(40):
                client.set(f"ballast:{n}", b"x" * (1024 * 1024))
            deadline = time.monotonic() + 10
            while (reply := server.hook(async_key, {"amount": 2})).status_code != 503:
                assert time.monotonic() < deadline, "never refused"
                time.sleep(0.1)
            assert refused_by(reply, "redis_memory"), reply.text
            assert refused_by(server.hook(sync_key, {"status": "paid"}), "redis_memory")
            # reads still answer, and what was accepted before is untouched
            assert server.execution(execution_id)["status"] == 1  # type: ignore[index]
            assert metric(server, "rayhook_redis_memory_used_bytes") > 32 * 1024 * 1024
            assert metric(server, "rayhook_redis_memory_max_bytes") == 64 * 1024 * 1024
            client.delete(*(f"ballast:{n}" for n in range(40)))
            deadline = time.monotonic() + 10
            while server.hook(async_key, {"amount": 3}).status_code != 200:
                assert time.monotonic() < deadline, "never accepted again"
                time.sleep(0.1)
        finally:
            client.close()
        refused = metric(server, 'rayhook_webhook_refused_total{reason="redis_memory"}')
        assert refused >= 2
