"""Open-model load: when each request is due, whatever the server does.

A shape gives the offered rate at each moment and, for the n-th request, the
time it is due (the inverse of the cumulative count), so the client can send
it then and count its latency from then (no coordinated omission)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    """`--rate R`: R requests per second throughout."""

    per_second: float

    def rate(self, t: float) -> float:
        return self.per_second

    def due(self, t: float) -> float:
        return self.per_second * t

    def time_of(self, n: int) -> float:
        return n / self.per_second

    def label(self) -> str:
        return f"rate {self.per_second:g}/s"


@dataclass(frozen=True)
class Ramp:
    """`--ramp START:END`: the rate climbs linearly from START to END over the run."""

    start: float
    end: float
    duration: float

    @property
    def slope(self) -> float:
        return (self.end - self.start) / self.duration

    def rate(self, t: float) -> float:
        return self.start + self.slope * t

    def due(self, t: float) -> float:
        return self.start * t + self.slope * t * t / 2

    def time_of(self, n: int) -> float:
        # Solve start*t + slope*t^2/2 = n for t >= 0.
        a, b = self.slope / 2, self.start
        if abs(a) < 1e-12:
            return n / b if b > 0 else math.inf
        root = b * b + 4 * a * n
        if root < 0:  # a falling ramp that never reaches n requests
            return math.inf
        return (-b + math.sqrt(root)) / (2 * a)

    def label(self) -> str:
        return f"ramp {self.start:g}→{self.end:g}/s"


@dataclass(frozen=True)
class Burst:
    """`--burst BASE:PEAK:SECONDS`: BASE per second, then PEAK for SECONDS (a
    provider replaying its backlog), then BASE again. The burst starts a third
    of the way into the run, so the report shows the calm before and the
    recovery after."""

    base: float
    peak: float
    seconds: float
    starts_at: float

    @classmethod
    def within(cls, base: float, peak: float, seconds: float, duration: float) -> Burst:
        return cls(base, peak, seconds, duration / 3)

    def rate(self, t: float) -> float:
        return self.peak if self.starts_at <= t < self.starts_at + self.seconds else self.base

    def due(self, t: float) -> float:
        in_burst = min(max(t - self.starts_at, 0.0), self.seconds)
        return self.base * (t - in_burst) + self.peak * in_burst

    def time_of(self, n: int) -> float:
        before = self.base * self.starts_at
        if n <= before:
            return n / self.base
        during = before + self.peak * self.seconds
        if n <= during:
            return self.starts_at + (n - before) / self.peak
        if self.base <= 0:
            return math.inf
        return self.starts_at + self.seconds + (n - during) / self.base

    def label(self) -> str:
        return f"burst {self.base:g}→{self.peak:g}/s for {self.seconds:g} s"


Arrivals = Constant | Ramp | Burst


def parse_rates(text: str, count: int, option: str) -> list[float]:
    """`A:B[:C]` into floats, each >= 0 (the first and last may not both be 0)."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or any(v < 0 or not math.isfinite(v) for v in values):
        shape = ":".join(("START", "END") if count == 2 else ("BASE", "PEAK", "SECONDS"))
        raise ValueError(f"{option} takes {shape} (numbers >= 0), not {text!r}")
    return values
