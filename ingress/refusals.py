"""Every 503 the service raises, in one place: what it says and, for a
webhook's refusals, the `cause` its error body names, how long the sender should
wait (`Retry-After`), and the count of refusals by cause
(`rayhook_webhook_refused_total`).

A sync call's own 503 replies (its run could not be recorded; a repeated
delivery whose first one still runs) are replies, not refusals: they are
decided with the call's other replies in engine/sync_replies.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import falcon
import falcon.asgi

from store.history import HistoryUnavailable

#: What a sender refused for lack of room is told to wait before it retries.
RETRY_AFTER_SECONDS = 5


class Unavailable(falcon.HTTPServiceUnavailable):
    """503 with `Retry-After` and a machine-readable `cause` (`redis_memory`,
    `backlog`, `history_unavailable`, ...) in the error body."""

    def __init__(self, description: str, *, cause: str, retry_after: int = 1) -> None:
        super().__init__(description=description, retry_after=retry_after)
        self.cause = cause


@asynccontextmanager
async def history_errors() -> AsyncIterator[None]:
    """The history database could not answer: 503, the caller may retry."""
    try:
        yield
    except HistoryUnavailable as exc:
        raise Unavailable(
            f"the execution history is unavailable; retry later ({exc})",
            cause="history_unavailable",
            retry_after=5,
        ) from None


def refuse(req: falcon.asgi.Request, refusal: Unavailable) -> NoReturn:
    """Answer a webhook with 503, noting the cause for the metrics."""
    req.context.refused = refusal.cause
    raise refusal


def redis_memory_high(watermark: float) -> Unavailable:
    return Unavailable(
        f"rayhook is at capacity (its store is above {watermark:.0%} of its memory); retry later",
        cause="redis_memory",
        retry_after=RETRY_AFTER_SECONDS,
    )


def backlog_full(backlog: int, cap: int) -> Unavailable:
    return Unavailable(
        f"this workflow's backlog is full ({backlog} events waiting, the cap is {cap}); "
        "retry later",
        cause="backlog",
        retry_after=RETRY_AFTER_SECONDS,
    )


def store_unavailable() -> Unavailable:
    return Unavailable("the event store is unavailable; retry later", cause="store_unavailable")


def executors_unavailable() -> Unavailable:
    return Unavailable(
        "the execution service is unavailable; retry later", cause="executors_unavailable"
    )


def workflow_changing() -> Unavailable:
    return Unavailable("the workflow is changing; retry", cause="workflow_changing")


def workflow_store_unavailable() -> falcon.HTTPServiceUnavailable:
    """A webhook's route could not be read (Redis away): raised before the key
    is known to name a workflow, so no `cause` and not counted as a refusal."""
    return falcon.HTTPServiceUnavailable(
        description="the workflow store is unavailable; retry later"
    )


# -- the admin API -----------------------------------------------------------------


def execution_service_unavailable() -> falcon.HTTPServiceUnavailable:
    """A manual run or a node test found no execution actor to run it."""
    return falcon.HTTPServiceUnavailable(
        description="the execution service is unavailable; retry later"
    )


def executor_unavailable() -> falcon.HTTPServiceUnavailable:
    """A cancel could not reach the execution actor that runs the execution."""
    return falcon.HTTPServiceUnavailable(description="executor unavailable; retry")
