"""What a load run measured, whichever engine ran it."""

from __future__ import annotations

from collections import Counter

import msgspec


class Result(msgspec.Struct, kw_only=True):
    """Attributes: the engine, the mode (`concurrency` or `rate`), requests sent
    and answered, errors (connection failures, timeouts), seconds, requests per
    second, latency percentiles in milliseconds, and the count of each status."""

    engine: str
    mode: str
    target: float
    duration: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    loss: LossCheck | None = None
    load: str = ""  # what was offered: "concurrency 64", "ramp 10→500/s", ...
    timeline: Timeline | None = None
    saturation: Saturation | None = None

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.statuses.items() if code.startswith("2"))


class LossCheck(msgspec.Struct, kw_only=True):
    """The async workflow's side of the run: every accepted event must reach a
    final execution status; `final` of them did within the wait."""

    workflow_key: str
    accepted: int
    final: int
    lost: int
    executions_per_second: float
    seconds_to_drain: float


#: Non-2xx share of a second's requests past which the server is saturated.
NON_2XX_LIMIT = 0.01


class Timeline(msgspec.Struct, kw_only=True):
    """One entry per second of the run. `offered`: requests due in that second
    (open model only); `answered`: replies that came in it; `statuses`: those
    replies per status (`error` for no reply); latency percentiles of those
    replies; `backlog`: requests due but not yet answered at the end of the
    second (open model); `server_backlog`: events the server accepted and has
    not finished yet (async workflows, when the loss check samples it)."""

    offered: list[float] | None
    answered: list[int]
    statuses: dict[str, list[int]]
    p50_ms: list[float]
    p90_ms: list[float]
    p99_ms: list[float]
    backlog: list[int] | None
    server_backlog: list[tuple[float, int]] | None = None


class Saturation(msgspec.Struct, kw_only=True):
    """Where a ramp stopped being served: the offered rate of the first second
    (and the one after it, so one blip is not taken for it) in which non-2xx
    replies passed 1 % of the requests due or p99 passed `p99_bound_ms`.
    `rate` is None when the run never got there."""

    rate: float | None
    second: int | None
    reason: str
    p99_bound_ms: float | None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(
    *,
    engine: str,
    mode: str,
    target: float,
    duration: float,
    latencies: list[float],
    statuses: Counter[int],
    errors: int,
) -> Result:
    ordered = sorted(latencies)
    answered = len(latencies)
    return Result(
        engine=engine,
        mode=mode,
        target=target,
        duration=duration,
        requests=answered + errors,
        errors=errors,
        rps=answered / duration if duration > 0 else 0.0,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p90_ms=percentile(ordered, 0.90) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
        statuses={str(code): n for code, n in sorted(statuses.items())},
    )
