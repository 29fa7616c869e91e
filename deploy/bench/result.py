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
