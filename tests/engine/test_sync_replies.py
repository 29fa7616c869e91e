"""engine.sync_replies: what a sync webhook call answers (SPEC §2 table)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import sync_replies
from engine.records import Execution, Reply
from engine.status import Reason, Status
from engine.sync_replies import for_status


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.FAILED, Status.ERROR, Status.ABORTED])
def test_sync_reply_from_response_node_wins(status):
    built = Reply(status=418, headers=[("X-A", "1")], body={"a": 1})
    reply = for_status(int(status), Reason.TIMEOUT if status == Status.ABORTED else None, built, 10)
    assert reply is built


def test_sync_reply_resolved_without_response_is_200_ok():
    reply = for_status(Status.RESOLVED, None, None, 0)
    assert reply.status == 200
    assert reply.body == "ok"


def test_sync_reply_aborted_by_timeout_is_408():
    reply = for_status(Status.ABORTED, Reason.TIMEOUT, None, 1500)
    assert reply.status == 408
    assert "1500" in (reply.message or "")


def test_sync_reply_aborted_for_another_reason_is_500():
    reply = for_status(Status.ABORTED, Reason.MANUAL_CANCEL, None, 1500)
    assert reply.status == 500
    assert "ABORTED" in (reply.message or "")


@pytest.mark.parametrize(
    "status",
    [Status.FAILED, Status.ERROR, Status.CANCELED, Status.REJECTED, Status.RETRY_NEEDED],
)
def test_sync_reply_other_status_is_500_naming_the_status(status):
    reply = for_status(int(status), None, None, 0)
    assert reply.status == 500
    assert status.name in (reply.message or "")


def execution(status: int, error: str | None = None) -> Execution:
    return Execution(
        id="e1", key="wf", workflowId=1, status=status, error=error, createdAt=datetime.now(UTC)
    )


def test_a_finished_execution_names_itself_and_a_5xx_carries_its_error():
    assert sync_replies.finished(execution(Status.RESOLVED), None, 0).executionId == "e1"
    failed = sync_replies.finished(execution(Status.ERROR, "the engine broke"), None, 0)
    assert (failed.status, failed.message, failed.executionId) == (500, "the engine broke", "e1")
    built = Reply(status=201, body={"a": 1})
    kept = sync_replies.finished(execution(Status.ERROR, "the engine broke"), built, 0)
    assert (kept.status, kept.message, kept.executionId) == (201, None, "e1")


def test_a_failure_or_a_timeout_is_not_served_to_a_repeat():
    assert sync_replies.served(Reply(status=200))
    assert sync_replies.served(Reply(status=404))
    assert not sync_replies.served(Reply(status=408))
    assert not sync_replies.served(Reply(status=500))
    assert not sync_replies.served(sync_replies.first_still_running("e0"))
    assert not sync_replies.served(sync_replies.unrecorded("e1", "the execution log is away"))
    assert not sync_replies.served(sync_replies.timed_out("e1", 1500))
