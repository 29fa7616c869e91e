"""Many workflows (issue 11). Scenario 5, on the main stack: 1, 10 and 100
enabled workflows receiving the load at once, and each count's end-to-end
executions/s as a share of one workflow's. Scenario 10, on a fresh stack: a
thousand enabled workflows with no traffic, the stack's memory and CPU beside
the same figures before they existed."""

from __future__ import annotations

import time
from functools import partial

from benchmarks import procfs
from benchmarks.report import Row, describe, progress
from benchmarks.stack import ASYNC_WORKFLOW, Bench, Stack, with_loss_check

#: Issue 11's targets.
SHARE_TARGET = 0.5  # N workflows sharing the load vs one workflow, executions/s
IDLE_RSS_TARGET_MB = 2048.0
IDLE_CPU_TARGET = 5.0  # % of one core


def scaling(stack: Stack, bench: Bench, baseline: float | None, scales: list[int]) -> list[Row]:
    rows: list[Row] = []
    rates: dict[int, float] = {}
    for count in scales:
        progress(f"5 scaling: {count} workflows")
        keys = stack.apply_copies(ASYNC_WORKFLOW, f"bs{count}", count)
        urls = [stack.url(k) for k in keys]
        result = with_loss_check(stack, keys, partial(bench.closed, urls))
        rows += describe(f"5 scaling: {count} workflows", result, baseline)
        if result.loss is not None:
            rates[count] = result.loss.executions_per_second
        stack.disable(keys)
    return rows + share_rows(rates)


def share_rows(rates: dict[int, float]) -> list[Row]:
    """Each count's end-to-end executions/s over one workflow's (same run)."""
    one = rates.get(1)
    if not one:
        return []
    return [
        (
            "5 scaling",
            f"{count} workflows / 1 workflow",
            f"{rate / one:.0%} of the executions/s (target ≥ {SHARE_TARGET:.0%})",
        )
        for count, rate in sorted(rates.items())
        if count != 1
    ]


def idle(workflows: int, seconds: float) -> list[Row]:
    """A fresh stack: `seconds` of quiet after its start, then its memory and its
    CPU over `seconds`; the same once `workflows` enabled async workflows exist
    (created through the admin API) and `seconds` without traffic have passed."""
    with Stack() as stack:
        progress(f"10 idle: {seconds:.0f} s of quiet, then CPU over {seconds:.0f} s")
        time.sleep(seconds)
        rows = footprint_rows(stack, "10 idle: no workflow", seconds, target=False)
        started = time.monotonic()

        def created(done: int) -> None:
            if done % 100 == 0 or done == workflows:
                progress(f"10 idle: {done:,} of {workflows:,} workflows created")

        stack.apply_copies(ASYNC_WORKFLOW, "idle", workflows, progress=created)
        creation = time.monotonic() - started
        progress(f"10 idle: {seconds:.0f} s without traffic, then CPU over {seconds:.0f} s")
        time.sleep(seconds)
        scenario = f"10 idle: {workflows:,} enabled workflows"
        rows.append(
            (scenario, "created through the admin API in", f"{creation:,.1f} s"),
        )
        rows += footprint_rows(stack, scenario, seconds, target=True)
    return rows


def footprint_rows(stack: Stack, scenario: str, seconds: float, *, target: bool) -> list[Row]:
    """The stack's RSS/PSS now, then its CPU over `seconds`, with the busiest
    processes (where the CPU goes)."""
    rss, pss = stack.memory()
    cpu = stack.cpu_use(seconds)
    busiest = sorted(cpu.by_process.items(), key=lambda item: item[1], reverse=True)[:3]
    rss_target = f" (target ≤ {IDLE_RSS_TARGET_MB / 1024:.0f} GB RSS)" if target else ""
    cpu_target = f" (target ≤ {IDLE_CPU_TARGET:.0f} %)" if target else ""
    return [
        (scenario, "stack RSS / PSS (every process)", f"{rss:,.0f} MB / {pss:,.0f} MB{rss_target}"),
        (
            scenario,
            f"stack CPU over {cpu.seconds:.0f} s (utime + stime, every process)",
            f"{cpu.percent:.1f} % of one core{cpu_target}",
        ),
        (
            scenario,
            "busiest processes (% of one core)",
            ", ".join(f"{_name(pid)} {share:.1f}" for pid, share in busiest) or "none",
        ),
    ]


def _name(pid: int) -> str:
    """A short name for a process of the stack: `ray::ExecutionActor`, `raylet`,
    `gunicorn`, `redis-server`..."""
    words = procfs.command(pid).split()
    if not words:
        return f"pid {pid} (gone)"
    first = words[0].rsplit("/", 1)[-1]
    if first.startswith("python") and len(words) > 1:
        # python -m module: the module; python script.py: the script
        first = words[2] if words[1] == "-m" and len(words) > 2 else words[1].rsplit("/", 1)[-1]
    return f"{first} ({pid})"
