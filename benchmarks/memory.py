"""Scenario 4 on the main stack: the idle stack's memory, each execution
actor's, what each enabled workflow adds, and `rayhook up`'s time to ready."""

from __future__ import annotations

import time

from benchmarks.report import Row
from benchmarks.stack import ASYNC_WORKFLOW, Stack


def idle_memory(stack: Stack) -> list[Row]:
    """Before any workflow exists."""
    time.sleep(3)
    rss, pss = stack.memory()
    rows = [
        ("4 memory", "`rayhook up` ready after", f"{stack.ready_after:.1f} s"),
        ("4 memory", "idle stack RSS / PSS", f"{rss:.0f} MB / {pss:.0f} MB"),
    ]
    for pid, (rss, pss) in stack.actor_memory("ray::ExecutionActor").items():
        rows.append(
            ("4 memory", f"execution actor (pid {pid}) RSS / PSS", f"{rss:.0f} / {pss:.0f} MB")
        )
    return rows


def per_workflow_memory(stack: Stack, count: int = 10) -> list[Row]:
    """The stack's growth when `count` workflows are enabled, per workflow (a
    process each while supervisors were Ray actors; an object now)."""
    before = stack.memory()
    keys = stack.apply_copies(ASYNC_WORKFLOW, "bench-mem", count)
    time.sleep(2)
    after = stack.memory()
    stack.disable(keys)
    rss, pss = (after[0] - before[0]) / count, (after[1] - before[1]) / count
    return [
        (
            "4 memory",
            f"per enabled workflow ({count} enabled) RSS / PSS",
            f"{rss:.0f} / {pss:.0f} MB",
        )
    ]
