"""What a run looked like second by second (for `--report`), and where an
open-model ramp saturated the server.

The client records each request once: when it was due, when its reply (or
failure) came, its latency and status. Seconds are counted from the start of
the run; throughput, statuses and latency are binned by when the reply came,
the saturation windows by when the request was due (its offered rate)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

from deploy.bench.result import NON_2XX_LIMIT, Saturation, Timeline, percentile

#: The status recorded for a request that got no reply (connection error, timeout, unsent).
FAILED = 0


class Recorder:
    """Collects every request of a run (parallel arrays: cheap per request)."""

    def __init__(self) -> None:
        self.started = 0.0  # the run's start (perf_counter), set by the engine
        self.accepted = 0  # 2xx replies so far: a plain int other threads may read
        self.due = array("d")
        self.done = array("d")
        self.latency = array("d")
        self.status = array("H")
        self.server_backlog: list[tuple[float, int]] = []

    def record(self, due: float, done: float, status: int) -> None:
        """Offsets in seconds from the start of the run."""
        self.due.append(due)
        self.done.append(done)
        self.latency.append(done - due if status != FAILED else math.nan)
        self.status.append(status)
        if 200 <= status < 300:
            self.accepted += 1

    def timeline(self, duration: float, offered: Callable[[float], float] | None) -> Timeline:
        seconds = max(1, math.ceil(duration - 1e-9))
        answered = [0] * seconds
        statuses: dict[str, list[int]] = {}
        latencies: list[list[float]] = [[] for _ in range(seconds)]
        finished = [0] * seconds
        for done, latency, status in zip(self.done, self.latency, self.status, strict=True):
            second = min(int(done), seconds - 1)
            finished[second] += 1
            code = "error" if status == FAILED else str(status)
            statuses.setdefault(code, [0] * seconds)[second] += 1
            if status != FAILED:
                answered[second] += 1
                latencies[second].append(latency)
        ordered = [sorted(values) for values in latencies]
        timeline = Timeline(
            offered=None,
            answered=answered,
            statuses=dict(sorted(statuses.items())),
            p50_ms=[percentile(v, 0.50) * 1000 for v in ordered],
            p90_ms=[percentile(v, 0.90) * 1000 for v in ordered],
            p99_ms=[percentile(v, 0.99) * 1000 for v in ordered],
            backlog=None,
            server_backlog=self.server_backlog or None,
        )
        if offered is not None:
            total = len(self.due)
            timeline.offered = [offered(s + 1) - offered(s) for s in range(seconds)]
            backlog, completed = [], 0
            for s in range(seconds):
                completed += finished[s]
                backlog.append(max(0, min(total, math.floor(offered(s + 1))) - completed))
            timeline.backlog = backlog
        return timeline

    def saturation(
        self, duration: float, offered: Callable[[float], float], p99_bound_ms: float | None
    ) -> Saturation:
        seconds = max(1, math.ceil(duration - 1e-9))
        due = [0] * seconds
        bad = [0] * seconds
        latencies: list[list[float]] = [[] for _ in range(seconds)]
        for when, latency, status in zip(self.due, self.latency, self.status, strict=True):
            second = min(int(when), seconds - 1)
            due[second] += 1
            if not 200 <= status < 300:
                bad[second] += 1
            if status != FAILED:
                latencies[second].append(latency)
        reasons: list[str | None] = []
        for s in range(seconds):
            reason = None
            p99 = percentile(sorted(latencies[s]), 0.99) * 1000
            if due[s] and bad[s] / due[s] > NON_2XX_LIMIT:
                reason = f"non-2xx {100 * bad[s] / due[s]:.1f} % > {100 * NON_2XX_LIMIT:g} %"
            elif p99_bound_ms is not None and latencies[s] and p99 > p99_bound_ms:
                reason = f"p99 {p99:.0f} ms > {p99_bound_ms:g} ms"
            reasons.append(reason)
        for s, reason in enumerate(reasons):
            if reason is not None and (s + 1 == seconds or reasons[s + 1] is not None):
                rate = offered(s + 1) - offered(s)
                return Saturation(rate=rate, second=s, reason=reason, p99_bound_ms=p99_bound_ms)
        top = offered(seconds) - offered(seconds - 1)
        return Saturation(
            rate=None,
            second=None,
            reason=f"not reached up to {top:,.0f}/s",
            p99_bound_ms=p99_bound_ms,
        )
