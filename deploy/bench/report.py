"""`rayhook bench --report FILE.html`: one self-contained page (inline SVG, no
script, nothing fetched) with the run's throughput, latency percentiles, status
codes and backlog over time, and its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from deploy.bench.result import Result, Timeline

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 36
COLOURS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
#: Status colours people expect: 2xx green, 4xx orange, 5xx red, no reply grey.
_STATUS_COLOURS = {"2": "#16a34a", "3": "#0891b2", "4": "#ea580c", "5": "#dc2626"}


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]  # (seconds from the start, value)
    colour: str


def render(result: Result, urls: list[str], started: datetime | None = None) -> str:
    """The whole page for one run."""
    timeline = result.timeline
    if timeline is None:
        raise ValueError("the run has no timeline (the wrk engine records none)")
    seconds = len(timeline.answered)
    marker = None
    if result.saturation is not None and result.saturation.second is not None:
        marker = result.saturation.second + 0.5
    charts = [
        chart("Throughput", "requests/s", _throughput(timeline), seconds, marker),
        chart("Latency percentiles", "ms", _latency(timeline), seconds, marker),
        chart("Replies by status", "replies/s", _statuses(timeline), seconds, marker),
    ]
    backlog = _backlog(timeline)
    if backlog:
        charts.append(chart("Backlog", "requests", backlog, seconds, marker))
    when = (started or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _PAGE.format(
        title=escape(f"rayhook bench: {result.load or result.mode}"),
        heading=escape(f"rayhook bench — {result.load or result.mode}, {result.engine} engine"),
        when=escape(when),
        targets="".join(f"<li><code>{escape(url)}</code></li>" for url in urls),
        summary=_summary(result),
        charts="\n".join(charts),
    )


def chart(title: str, unit: str, series: list[Series], seconds: int, marker: float | None) -> str:
    """A line chart as an inline `<svg>`: one polyline per series, a y axis from
    0 to a round maximum, seconds along x, an optional dashed marker."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(seconds, 1)
    peak = max((v for s in series for _, v in s.points if math.isfinite(v)), default=0.0)
    top = _round_up(peak)

    def x(t: float) -> float:
        return LEFT + min(max(t, 0.0), span) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="20" class="title">{escape(title)} ({escape(unit)})</text>',
    ]
    for i in range(5):
        value = top * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_number(value)}</text>"
        )
    step = max(1, math.ceil(span / 10))
    for t in range(0, span + 1, step):
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" '
            f'text-anchor="middle">{t}s</text>'
        )
    if marker is not None:
        parts.append(
            f'<line x1="{x(marker):.1f}" x2="{x(marker):.1f}" y1="{TOP}" '
            f'y2="{TOP + plot_h}" class="marker"><title>saturation</title></line>'
        )
    legend_x = LEFT + 8
    for s in series:
        if not s.points:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points if math.isfinite(v))
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2">'
            f"<title>{escape(s.name)}</title></polyline>"
        )
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 14}" width="10" height="10" fill="{s.colour}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT - 5}" class="legend">{escape(s.name)}</text>'
        )
        legend_x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return "\n".join(parts)


def _per_second(values: list[float] | list[int]) -> list[tuple[float, float]]:
    return [(s + 0.5, float(v)) for s, v in enumerate(values)]


def _throughput(t: Timeline) -> list[Series]:
    out = []
    if t.offered is not None:
        out.append(Series("offered", _per_second(t.offered), COLOURS[6]))
    out.append(Series("answered", _per_second(t.answered), COLOURS[0]))
    ok = [
        sum(v[s] for code, v in t.statuses.items() if code.startswith("2"))
        for s in range(len(t.answered))
    ]
    out.append(Series("2xx", _per_second(ok), COLOURS[1]))
    return out


def _latency(t: Timeline) -> list[Series]:
    return [
        Series("p50", _per_second(t.p50_ms), COLOURS[0]),
        Series("p90", _per_second(t.p90_ms), COLOURS[4]),
        Series("p99", _per_second(t.p99_ms), COLOURS[2]),
    ]


def _statuses(t: Timeline) -> list[Series]:
    out = []
    for i, (code, counts) in enumerate(t.statuses.items()):
        colour = _STATUS_COLOURS.get(code[:1], COLOURS[6]) if code != "error" else "#111827"
        if sum(1 for c in t.statuses if c[:1] == code[:1]) > 1:  # several of one class
            colour = COLOURS[i % len(COLOURS)]
        out.append(Series(code, _per_second(counts), colour))
    return out


def _backlog(t: Timeline) -> list[Series]:
    out = []
    if t.backlog is not None:
        out.append(Series("client: due, not answered", _per_second(t.backlog), COLOURS[3]))
    if t.server_backlog:
        points = [(when, float(n)) for when, n in t.server_backlog]
        out.append(Series("server: accepted, not final", points, COLOURS[4]))
    return out


def _summary(r: Result) -> str:
    rows = [
        ("load", r.load or f"{r.mode} {r.target:g}"),
        ("engine", r.engine),
        ("duration", f"{r.duration:.1f} s"),
        ("requests", f"{r.requests:,}"),
        ("requests/s", f"{r.rps:,.0f}"),
        ("errors (no reply)", f"{r.errors:,}"),
        (
            "latency p50 / p90 / p99 / max",
            f"{r.p50_ms:.1f} / {r.p90_ms:.1f} / {r.p99_ms:.1f} / {r.max_ms:.1f} ms",
        ),
    ]
    rows += [(f"status {code}", f"{n:,}") for code, n in r.statuses.items()]
    if r.saturation is not None:
        s = r.saturation
        value = f"{s.rate:,.0f}/s at {s.second} s ({s.reason})" if s.rate is not None else s.reason
        rows.append(("saturation", value))
    if r.loss is not None:
        rows.append(
            ("accepted → final (lost)", f"{r.loss.accepted:,} → {r.loss.final:,} ({r.loss.lost})")
        )
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)


def _round_up(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value` (and above 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return float(factor * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:.2g}"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; }}
table {{ border-collapse: collapse; margin: 12px 0 20px; }}
th, td {{ text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #e5e7eb; }}
th {{ font-weight: 600; }}
.chart {{ width: 100%; max-width: 760px; display: block; margin: 12px 0 24px; }}
.chart .title {{ font-size: 14px; font-weight: 600; fill: #111827; }}
.chart .tick, .chart .legend {{ font-size: 11px; fill: #4b5563; }}
.chart .grid {{ stroke: #e5e7eb; }}
.chart .marker {{ stroke: #dc2626; stroke-dasharray: 4 3; }}
</style>
</head>
<body>
<h1>{heading}</h1>
<p>{when}</p>
<ul>{targets}</ul>
<table>{summary}</table>
{charts}
</body>
</html>
"""
