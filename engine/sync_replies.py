"""What a sync webhook call answers, decided in one place (SPEC §2 table).

- The executor turns the execution's end into the reply (`finished`: the
  Response node's reply, else 200 `ok`, 408 past `options.timeout`, 500), or a
  503 when the run could not be recorded (`unrecorded`).
- The ingress answers 408 when no reply came within `options.timeout` and its
  grace (`timed_out`).
- A repeated delivery (`config.dedupe`) gets the first delivery's reply once
  that reply is `served`, or a 503 while the first still runs
  (`first_still_running`).

A call refused before it runs (Redis above its watermark, no executor, ...)
is an HTTP error, not a reply: ingress/refusals.py."""

from __future__ import annotations

from engine.records import Execution, Reply
from engine.status import NAMES, Reason, Status


def for_status(status: int, reason: str | None, reply: Reply | None, timeout_ms: int) -> Reply:
    """What a sync webhook answers once its execution is over (SPEC §2 table)."""
    if reply is not None:
        return reply
    if status == Status.RESOLVED:
        return Reply(status=200, body="ok")
    if status == Status.ABORTED and reason == Reason.TIMEOUT:
        return Reply(status=408, message=f"the workflow did not finish within {timeout_ms} ms")
    return Reply(status=500, message=f"the workflow ended with status {NAMES.get(status, status)}")


def finished(execution: Execution, reply: Reply | None, timeout_ms: int) -> Reply:
    """`for_status` of the ended `execution`, naming it; a 5xx carries the
    execution's error when it has one."""
    answer = for_status(execution.status or 0, execution.reason, reply, timeout_ms)
    if execution.error and answer.status >= 500:
        answer.message = execution.error
    answer.executionId = execution.id
    return answer


def unrecorded(execution_id: str, why: str) -> Reply:
    """The executor ran the call but could not record it (Redis away): 503."""
    return Reply(status=503, message=why, executionId=execution_id)


def timed_out(execution_id: str, timeout_ms: int) -> Reply:
    """No reply from the executor within `options.timeout` (and its grace): 408."""
    return Reply(
        status=408,
        message=f"the workflow did not finish within {timeout_ms} ms",
        executionId=execution_id,
    )


def first_still_running(first_execution_id: str) -> Reply:
    """A repeated delivery whose first delivery has not replied in time: 503."""
    return Reply(
        status=503,
        message="a delivery with the same id is still being processed; retry later",
        executionId=first_execution_id,
    )


def served(reply: Reply) -> bool:
    """Whether a repeat of the delivery may be answered with `reply` for the
    dedupe window. A failure (5xx) or a timeout (408) is not: the provider's
    retry must run the workflow again."""
    return not (reply.status >= 500 or reply.status == 408)
