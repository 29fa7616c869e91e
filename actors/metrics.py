"""Execution and job figures of one actor process, buffered in memory and added
to Redis every few seconds (HINCRBY), so that `/metrics` shows cluster-wide
totals without scraping each actor. Counters only grow, as Prometheus expects."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections import Counter, defaultdict

from store.metrics import ClusterFigures

log = logging.getLogger("rayhook.metrics")

#: Histogram bucket bounds (seconds), shared with ingress/metrics.py.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FLUSH_SECONDS = 2.0


class MetricsBuffer:
    """Attributes: the `figures` in Redis, and the counts and sums waiting for
    the next flush, per figure name."""

    def __init__(self, figures: ClusterFigures) -> None:
        self.figures = figures
        self._counts: dict[str, Counter[str]] = {}
        self._sums: dict[str, defaultdict[str, float]] = {}
        self._histograms: dict[str, dict[str, list[int]]] = {}
        self._task: asyncio.Task[None] | None = None

    def execution(self, key: str, status: int | None, seconds: float) -> None:
        self._count("executions", f"{key}|{status}")
        self._observe("execution_seconds", key, seconds)

    def job(self, node_type: str, seconds: float) -> None:
        self._observe("job_seconds", node_type, seconds)

    def actor_started(self, actor: str, *, restarted: bool | None = None) -> None:
        """Called from an actor's constructor. Ray runs the constructor again when
        it restarts an actor that died; a start after a clean stop (`rayhook up`
        stopped then started, a deployment rolled out) is a first start of a
        new actor, not a restart. `restarted`: told by the caller, for a process
        outside Ray (the history writer); None asks Ray."""
        self._count("actor_starts", actor)
        if restarted_by_ray() if restarted is None else restarted:
            self._count("actor_restarts", actor)

    def count(self, name: str, field: str, n: int = 1) -> None:
        """Add `n` to counter `field` of the figures called `name`."""
        self._count(name, field, n)

    def _count(self, name: str, field: str, n: int = 1) -> None:
        self._counts.setdefault(name, Counter())[field] += n
        self._schedule()

    def _observe(self, name: str, label: str, seconds: float) -> None:
        # Per observation one bisect and one increment (this runs per job); the
        # cumulative bucket counts Prometheus wants are made at flush time.
        slots = self._histograms.setdefault(name, {}).get(label)
        if slots is None:
            slots = self._histograms[name][label] = [0] * (len(BUCKETS) + 1)
        slots[bisect_left(BUCKETS, seconds)] += 1
        self._sums.setdefault(name, defaultdict(float))[f"{label}|sum"] += seconds
        self._schedule()

    def _schedule(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()
        finally:
            self._task = None
            if self._counts or self._histograms:
                self._schedule()

    async def flush(self) -> None:
        for name, labels in self._histograms.items():
            buckets = self._counts.setdefault(name, Counter())
            for label, slots in labels.items():
                running = 0
                for bound, n in zip((*BUCKETS, "+Inf"), slots, strict=True):
                    running += n
                    if running:
                        buckets[f"{label}|{bound}"] += running
        self._histograms = {}
        counts, sums = self._counts, self._sums
        self._counts, self._sums = {}, {}
        if not counts and not sums:
            return
        try:
            await self.figures.add(counts, sums)
        except Exception as exc:  # figures are best effort: never fail a run for them
            log.warning("metrics flush failed: %s", exc)


def restarted_by_ray() -> bool:
    """Whether Ray restarted the actor this runs in (after it died); False
    outside an actor. Figures are best effort: never fail a start for them.
    (Ray is imported here: the history writer's process uses this module and
    never loads Ray.)"""
    try:
        import ray

        context = ray.get_runtime_context()
        return bool(context.get_actor_id() is not None and context.was_current_actor_reconstructed)
    except Exception as exc:
        log.warning("could not tell whether this actor was restarted: %s", exc)
        return False
