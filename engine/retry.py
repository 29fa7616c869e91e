"""Retries of whole executions (SPEC §11, `options.retry`): whether an attempt's
end calls for another attempt, and how long to wait before it. Pure: the
executor supplies the random number that jitter takes."""

from __future__ import annotations

from collections.abc import Iterator

from engine.definition import RetryPolicy
from engine.durations import DurationError, parse_duration
from engine.status import Status

#: An attempt may end in any of these and be retried (not RESOLVED, not STARTED).
RETRYABLE = frozenset(s.value for s in Status) - {Status.RESOLVED, Status.STARTED}
MAX_ATTEMPTS = 100


def retries_after(policy: RetryPolicy | None, status: int | None, attempt: int) -> bool:
    """Whether an execution whose attempt `attempt` ended in `status` runs again."""
    return policy is not None and status in policy.on and attempt < policy.maxAttempts


def exhausted(policy: RetryPolicy | None, status: int | None, attempt: int) -> bool:
    """Whether this end is final only because the attempts ran out."""
    return policy is not None and status in policy.on and attempt >= policy.maxAttempts


def backoff_seconds(policy: RetryPolicy, attempt: int, random: float) -> float:
    """The wait before attempt `attempt + 1`; `random` is uniform in [0, 1)."""
    backoff = policy.backoff
    delay = parse_duration(backoff.initial) * backoff.multiplier ** max(0, attempt - 1)
    delay = min(delay, parse_duration(backoff.max))
    if backoff.jitter:
        delay *= 0.5 + 0.5 * random
    return delay


def retry_problems(policy: RetryPolicy, *, sync: bool) -> Iterator[str]:
    """Definition errors of `options.retry`."""
    where = "options.retry"
    if sync:
        yield (
            f"{where}: sync workflows are not retried (their caller waits for the reply, and "
            "retries itself); use retryOnFail on a node instead"
        )
    if not 1 <= policy.maxAttempts <= MAX_ATTEMPTS:
        yield f"{where}.maxAttempts: from 1 to {MAX_ATTEMPTS}"
    for name in ("initial", "max"):
        try:
            parse_duration(getattr(policy.backoff, name))
        except DurationError as exc:
            yield f"{where}.backoff.{name}: {exc}"
    if not policy.backoff.multiplier >= 1:
        yield f"{where}.backoff.multiplier: must be at least 1"
    for status in policy.on:
        if status not in RETRYABLE:
            yield (
                f"{where}.on: {status} is not a status an execution can fail with "
                f"(one of {sorted(RETRYABLE)})"
            )
