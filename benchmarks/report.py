"""The report: rows of (scenario, figure, value), the dated section they make
in docs/performance.md, the machine they were measured on, and the arithmetic
of the figures (a least-squares slope, a series' value at a time)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.stack import BODY, CONNECTIONS
from deploy.bench.result import Result

#: One line of the report's table: (scenario, figure, value).
Row = tuple[str, str, str]
MB = 1024 * 1024


def progress(message: str) -> None:
    """What the run is doing, while it does it (stderr: stdout is the report)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def describe(
    scenario: str,
    r: Result,
    baseline: float | None,
    *,
    sustained: bool = False,
    versus: str = "baseline",
) -> list[Row]:
    ratio = f" ({r.rps / baseline:.2f} x {versus})" if baseline else ""
    non2xx = sum(n for code, n in r.statuses.items() if not code.startswith("2"))
    out = [
        (scenario, "requests/s", f"{r.rps:,.0f}{ratio}"),
        (
            scenario,
            "latency p50 / p90 / p99 / max",
            f"{r.p50_ms:.1f} / {r.p90_ms:.1f} / {r.p99_ms:.1f} / {r.max_ms:.1f} ms",
        ),
        (scenario, "non-2xx / errors", f"{non2xx} / {r.errors}"),
    ]
    if r.loss is not None:
        drained = r.loss.seconds_to_drain
        out.append(
            (
                scenario,
                "accepted → final (lost)",
                f"{r.loss.accepted:,} → {r.loss.final:,} ({r.loss.lost})",
            )
        )
        label = "end-to-end executions/s" + (" (drained in)" if sustained else "")
        value = f"{r.loss.executions_per_second:,.0f}"
        if sustained:
            value += f" ({drained:.1f} s for a {r.duration:.1f} s run)"
        out.append((scenario, label, value))
    return out


def render(
    rows: Sequence[Row],
    *,
    started: datetime,
    engine: str,
    duration: float,
    label: str = "",
) -> str:
    lines = [
        f"## Run {started:%Y-%m-%d %H:%M} UTC{' — ' + label if label else ''}",
        "",
        f"Machine: {machine()}. Load: {engine}, {CONNECTIONS} connections, "
        f"{duration:.0f} s per run, body `benchmarks/bodies/payment.json` "
        f"({BODY.stat().st_size} bytes, fresh ids per request). "
        "Server, Redis (AOF, appendfsync always), Ray and the load generator share the machine; "
        "final executions move to the SQL history (SQLite in the data folder unless a row "
        "says PostgreSQL).",
        "",
        "| scenario | figure | value |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {s} | {f} | {v} |" for s, f, v in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} x {model}, {memory:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The slope of the least-squares line through (x, y) points; None when
    fewer than two distinct x leave it undefined."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def value_at(points: Sequence[tuple[float, float]], when: float) -> float | None:
    """The value of the first sample taken at or after `when` (None: the series
    ended before)."""
    return next((y for x, y in points if x >= when), None)


def growth_mb_per_minute(
    samples: Sequence[tuple[float, float]], *, after: float = 60.0
) -> float | None:
    """How fast a byte count grows once `after` seconds have passed (the
    start-up's own growth left out): the least-squares slope of the samples
    from then on, in MB per minute. Samples are (seconds, bytes)."""
    late = [(seconds / 60, size / MB) for seconds, size in samples if seconds >= after]
    return least_squares_slope(late)
