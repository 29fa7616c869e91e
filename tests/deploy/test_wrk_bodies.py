"""wrk's Lua script (deploy/bench/lua/bench.lua) builds each body from parts it
found once: checked on what real wrk sends to a server that keeps every body."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.bench import wrk
from deploy.bench.bodies import Bodies

TEMPLATE = b'{"id": "evt_{{uuid}}", "n": {{ seq }}, "again": "{{seq}}", "keep": "{{other}}"}'
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SENT = re.compile(
    rf'\{{"id": "evt_({UUID})", "n": (\d+), "again": "(\d+)", "keep": "\{{\{{other\}}\}}"\}}'
)


@pytest.fixture
def received() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    """A local server that answers 200 and keeps each body with its content type."""
    bodies: list[tuple[bytes, str]] = []

    class Keep(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append((body, self.headers["Content-Type"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keep)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/webhook:trigger/k", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_every_body_gets_a_fresh_uuid_and_its_own_sequence_number(
    received: tuple[str, list[tuple[bytes, str]]],
) -> None:
    url, bodies = received
    result = wrk.closed_loop(url, Bodies([TEMPLATE]), concurrency=2, duration=1, threads=1)
    # the server may get a request or two that wrk stopped waiting for at the end
    assert list(result.statuses) == ["200"] and 10 < result.statuses["200"] <= len(bodies)
    matches = [SENT.fullmatch(body.decode()) for body, _type in bodies]
    assert all(matches), [body for (body, _t), m in zip(bodies, matches, strict=True) if not m][:2]
    uuids = [m.group(1) for m in matches if m]
    numbers = [int(m.group(2)) for m in matches if m]
    assert len(set(uuids)) == len(uuids)  # a fresh one per request
    assert sorted(numbers) == list(range(numbers[0], numbers[0] + len(numbers)))
    assert all(m.group(2) == m.group(3) for m in matches if m)  # one number per body
    assert {content_type for _body, content_type in bodies} == {"application/json"}


def test_bodies_without_placeholders_and_several_files_go_round_robin(
    received: tuple[str, list[tuple[bytes, str]]],
) -> None:
    url, bodies = received
    plain, form = b'{"fixed": true}', b"txn=T{{seq}}&status=Completed\n"
    wrk.closed_loop(url, Bodies([plain, form]), concurrency=1, duration=1, threads=1)
    assert len(bodies) > 10
    # wrk builds one request before the run starts: either file may come first
    first, second = (
        (bodies[0::2], bodies[1::2]) if bodies[0][0] == plain else (bodies[1::2], bodies[0::2])
    )
    assert first == [(plain, "application/json")] * len(first)
    forms = [body for body, kind in second if kind == "application/x-www-form-urlencoded"]
    assert len(forms) == len(second)
    assert all(re.fullmatch(rb"txn=T\d+&status=Completed", body) for body in forms)
