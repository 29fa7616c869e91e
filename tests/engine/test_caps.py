"""engine/caps.py through the interpreter and the response node (issue 10,
findings 3 and 5): a job result, a reply's headers and its body have caps, and
going past one is a clear job ERROR, never a record or a reply nobody can take."""

from __future__ import annotations

from typing import Any

from engine.caps import Caps
from engine.records import Reply
from engine.settings import Settings
from engine.status import Status
from tests.engine.node_runs import run_nodes

BIG = list(range(200_000))  # about 1.3 MB as JSON, 1.3 MB as display text


def calculation(key: str = "calc") -> dict[str, Any]:
    return {
        "key": key,
        "type": "calculation",
        "config": {"engine": "string", "expression": "{{$context.items}}"},
    }


def response(headers: list[dict[str, str]] | None = None, body: Any = "ok") -> dict[str, Any]:
    return {
        "key": "reply",
        "type": "response",
        "config": {"statusCode": 200, "headers": headers or [], "body": body},
    }


async def test_a_job_result_above_the_cap_is_an_error_and_ends_the_chain() -> None:
    run = await run_nodes([calculation(), response()], context={"items": BIG})
    assert run.status == Status.ERROR
    (job,) = run.jobs
    assert job.status == Status.ERROR
    assert job.result["code"] == "ERR_RESULT_TOO_LARGE"
    assert "RAYHOOK_MAX_RESULT_BYTES" in job.result["message"]


async def test_the_result_cap_is_a_setting() -> None:
    small = Settings(max_result_bytes=20)
    run = await run_nodes([calculation()], context={"items": [1, 2, 3]}, settings=small)
    assert run.job.status == Status.RESOLVED
    run = await run_nodes([calculation()], context={"items": list(range(50))}, settings=small)
    assert run.job.status == Status.ERROR
    assert run.job.result["code"] == "ERR_RESULT_TOO_LARGE"


async def test_a_sync_reply_header_above_the_cap_is_an_error_not_a_5_mb_reply() -> None:
    run = await run_nodes(
        [response(headers=[{"name": "X-Echo", "value": "{{$context.items}}"}])],
        context={"items": BIG},
    )
    assert run.status == Status.ERROR
    assert run.job.status == Status.ERROR
    assert run.job.result["code"] == "ERR_REPLY_TOO_LARGE"
    assert "RAYHOOK_MAX_REPLY_HEADER_BYTES" in run.job.result["message"]


async def test_a_sync_reply_body_above_the_cap_is_an_error() -> None:
    run = await run_nodes(
        [response(body="{{$context.items}}")],
        context={"items": list(range(100))},
        settings=Settings(max_reply_body_bytes=100),
    )
    assert run.job.status == Status.ERROR
    assert "RAYHOOK_MAX_REPLY_BODY_BYTES" in run.job.result["message"]
    fits = await run_nodes(
        [response(body="{{$context.items}}")],
        context={"items": [1, 2]},
        settings=Settings(max_reply_body_bytes=100),
    )
    assert fits.status == Status.RESOLVED


def test_an_async_reply_keeps_what_fits_and_stays_sendable() -> None:
    caps = Caps(result_bytes=1000, reply_header_bytes=60, reply_body_bytes=10)
    reply = Reply(
        status=202,
        headers=[("X-Id", "evt_1"), ("X-Echo", "x" * 100), ("X-Kind", "paid")],
        body={"items": list(range(10))},
    )
    fitted = caps.fit_async_reply(reply, "wf")
    assert fitted.status == 202
    assert fitted.headers == [("X-Id", "evt_1"), ("X-Kind", "paid")]
    assert fitted.body == "ok"
    unchanged = caps.fit_async_reply(Reply(status=200, headers=[("A", "b")], body="hi"), "wf")
    assert unchanged.headers == [("A", "b")] and unchanged.body == "hi"
