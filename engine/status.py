"""Execution and job statuses, with NocoBase's numbers (one source of truth)."""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Status(IntEnum):
    """Final and running statuses shared by executions and jobs.

    QUEUEING is `None` and so is not a member: an execution waiting in the inbox
    has no number yet. Jobs use 0 for PENDING where executions say STARTED.
    """

    STARTED = 0
    RESOLVED = 1
    FAILED = -1
    ERROR = -2
    ABORTED = -3
    CANCELED = -4
    REJECTED = -5
    RETRY_NEEDED = -6


QUEUEING: Final = None
PENDING: Final = Status.STARTED  # the job-side name of 0

NAMES: Final[dict[int | None, str]] = {
    None: "QUEUEING",
    **{s.value: s.name for s in Status},
}


def is_final(status: object) -> bool:
    """Whether an execution in this status will never run again (anything that
    is not a status number, such as "missing", is not final)."""
    return isinstance(status, int) and status != Status.STARTED


class Reason:
    """Why an execution ended the way it did (`execution.reason`)."""

    TIMEOUT: Final = "timeout"
    MANUAL_CANCEL: Final = "manual_cancel"
    PARENT_ABORTED: Final = "parent_aborted"
    CRASHED_EXECUTOR: Final = "crashed_executor"  # quarantined: its runs killed the executor
