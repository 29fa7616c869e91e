"""`retryOnFail` on a node that reaches outside (`request`, `sql`, `mailer`,
`script`): a failed try is tried again after `wait`, up to `maxTries` tries in
all, inside the same job (n8n's "Retry On Fail").

    "config": {..., "retryOnFail": {"maxTries": 3, "wait": "1s"}}

- A try fails when the node's job would end FAILED, ERROR or ABORTED (a request
  that timed out). A node's own `ignoreFail` (`continue` for `script`) applies
  to the last try only, so the tries before it are not mistaken for successes.
- The wait is text in the units of every rayhook duration (`500ms`, `1s`, `2m`;
  `engine/durations.py`) or a number of milliseconds, as every other time in a
  node's config. It is at most `MAX_WAIT_SECONDS`: a longer pause belongs to the
  workflow's own retries (`options.retry`), whose timers survive restarts.
- The job records its tries: `meta.tries` (how many ran) and `meta.failures`
  (`{try, status, message, code?, at}` for each failed try), and a line in its
  `log` for each try that is tried again.
- Waiting happens inside the execution: its timeout and a cancel interrupt it
  (the job then ends ABORTED). An execution interrupted by a crash runs again
  from its first node, so its tries start over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from engine.durations import DurationError, parse_duration
from engine.jsvalues import iso_datetime
from engine.nodes.base import NodeError
from engine.records import Job
from engine.status import NAMES, Status

FIELD: Final = "retryOnFail"
MAX_TRIES: Final = 10
MAX_WAIT_SECONDS: Final = 300.0
#: Job statuses that count as a failed try.
RETRIED: Final = frozenset({Status.FAILED, Status.ERROR, Status.ABORTED})
_MESSAGE_CHARS = 500


class RetryOnFailConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    maxTries: int = 3
    wait: str | int | float = "1s"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A node's compiled `retryOnFail`: tries in all, and seconds between two."""

    max_tries: int
    wait: float

    @property
    def wait_text(self) -> str:
        return f"{self.wait * 1000:g}ms" if self.wait < 1 else f"{self.wait:g}s"


def compile_retry(raw: Any) -> RetryPolicy | None:
    """The policy a node's `retryOnFail` asks for (None: no retries); NodeError
    names the field that is wrong."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    try:
        config = msgspec.convert(raw, RetryOnFailConfig)
    except msgspec.ValidationError as exc:
        message, found, where = str(exc).rpartition(" - at `$")
        if not found:
            message, where = str(exc), ""
        raise NodeError(FIELD + where.rstrip("`"), message) from None
    if not 1 <= config.maxTries <= MAX_TRIES:
        raise NodeError(f"{FIELD}.maxTries", f"must be a whole number from 1 to {MAX_TRIES}")
    return RetryPolicy(config.maxTries, _wait_seconds(config.wait))


def _wait_seconds(wait: str | int | float) -> float:
    field = f"{FIELD}.wait"
    try:
        seconds = wait / 1000 if isinstance(wait, int | float) else parse_duration(wait)
    except DurationError as exc:
        raise NodeError(field, str(exc)) from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise NodeError(
            field,
            f"must be from 0 to {MAX_WAIT_SECONDS:g}s (a number is milliseconds); for longer "
            "pauses retry the whole execution (options.retry)",
        )
    return seconds


class Tries:
    """What one job's tries leave in it: `meta.tries`, `meta.failures`, and the
    log lines of the tries that were tried again."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.count = 0
        self.failures: list[dict[str, Any]] = []
        self._log: list[str] = []

    def begin(self, job: Job) -> None:
        """A try starts: its log is its own (the notes so far are kept here)."""
        self.count += 1
        job.log = None

    def failed(self, job: Job) -> None:
        """The try just run failed and is tried again: note it, clear the job."""
        failure = self._failure(job)
        self.failures.append(failure)
        if job.log:
            self._log.append(job.log)
        self._log.append(
            f"[rayhook] try {self.count} of {self.policy.max_tries} failed "
            f"({NAMES.get(failure['status'], failure['status'])}: {failure['message']}); "
            f"trying again in {self.policy.wait_text}"
        )
        self.record(job)
        job.log = "\n".join(self._log)

    def ended(self, job: Job) -> None:
        """The last try ran (it succeeded, or the node gives up)."""
        if job.status in RETRIED:
            self.failures.append(self._failure(job))
        own = job.log
        self.record(job)
        job.log = "\n".join([*self._log, own] if own else self._log) or None

    def record(self, job: Job) -> None:
        meta = job.meta if isinstance(job.meta, dict) else {}
        job.meta = {**meta, "tries": self.count, "failures": list(self.failures)}

    def _failure(self, job: Job) -> dict[str, Any]:
        result = job.result
        message = result.get("message") if isinstance(result, dict) else result
        failure: dict[str, Any] = {
            "try": self.count,
            "status": int(job.status),
            "message": str(message)[:_MESSAGE_CHARS],
        }
        if isinstance(result, dict) and result.get("code") is not None:
            failure["code"] = result["code"]
        failure["at"] = iso_datetime(datetime.now(UTC))
        return failure
