"""Scenario 7 (issue 9): the async payment workflow at full closed-loop speed
for many minutes, on a fresh stack, with Redis's `used_memory` sampled every
10 s. Redis keeps hot state only (final executions move to SQL), so after the
first minute its memory must stay flat however long the run."""

from __future__ import annotations

import threading
import time

import redis

from benchmarks.history import history_rows, stored_count
from benchmarks.report import MB, Row, describe, growth_mb_per_minute, progress, value_at
from benchmarks.stack import ASYNC_WORKFLOW, Bench, Stack, with_loss_check
from deploy.bench.result import Result
from store.keys import Keys

KEY = "bench-soak"
SAMPLE_SECONDS = 10.0


class RedisMemorySampler:
    """`used_memory` (INFO memory) every `interval` seconds in a thread of its
    own, from `start` to `stop` (and once at `stop`): `samples` holds
    (seconds since start, bytes). Beside each, `queues` holds the lengths of
    the two streams work can wait on, the workflow's inbox and the history
    queue: where a growth of memory sits."""

    def __init__(
        self, client: redis.Redis, keys: Keys, key: str, interval: float = SAMPLE_SECONDS
    ) -> None:
        self.client, self.interval = client, interval
        self.streams = (keys.inbox(key), keys.history)
        self.samples: list[tuple[float, float]] = []
        self.queues: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-memory", daemon=True)

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def used_memory(self) -> float:
        return float(self.client.info("memory")["used_memory"])

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                self._sample()  # the last sample is the end of the load, wherever it falls
                return

    def _sample(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xlen(stream)
        inbox, history = pipe.execute()
        self.samples.append((time.monotonic() - self._started, self.used_memory()))
        self.queues.append((int(inbox), int(history)))


def soak(bench: Bench, baseline: float | None, minutes: float) -> list[Row]:
    scenario = f"7 soak: async 3-node, closed loop, {minutes:g} min"
    with Stack() as stack:
        stack.apply(ASYNC_WORKFLOW, key=KEY)
        client = stack.redis()
        sampler = RedisMemorySampler(client, stack.keys, KEY)

        def load() -> Result:
            sampler.start()
            try:
                return bench.closed(stack.url(KEY), duration=minutes * 60)
            finally:
                sampler.stop()

        progress(f"{scenario}: Redis used_memory every {SAMPLE_SECONDS:.0f} s")
        result = with_loss_check(stack, [KEY], load)
        stack.wait_history_moved()
        stored = stored_count(stack.history_url, KEY)
        settled = sampler.used_memory()
        paced = paced_rows(scenario, stack, result.requests)
        client.close()
    return [
        *describe(scenario, result, baseline),
        *history_rows(scenario, result, stored),
        *memory_rows(scenario, sampler.samples, settled),
        *queue_rows(scenario, sampler),
        *paced,
    ]


def paced_rows(scenario: str, stack: Stack, requests: int) -> list[Row]:
    """How many replies pacing held back (RAYHOOK_PACE_BACKLOG), and for how
    long on average, from the stack's /metrics."""
    lines = stack.admin.get("/metrics").text.splitlines()

    def total(name: str) -> float:
        return sum(float(line.split()[-1]) for line in lines if line.startswith(name))

    count, seconds = (
        total("rayhook_webhook_paced_total"),
        total("rayhook_webhook_paced_seconds_total"),
    )
    mean = f", {1000 * seconds / count:.1f} ms each on average" if count else ""
    share = f" ({count / requests:.1%} of the replies{mean})" if requests else ""
    return [
        (scenario, "replies paced (held back after the event was stored)", f"{count:,.0f}{share}")
    ]


def queue_rows(scenario: str, sampler: RedisMemorySampler) -> list[Row]:
    """What waited in Redis at 1 min and at the end: inbox entries not yet
    final, and final executions not yet in SQL."""
    if not sampler.queues:
        return []
    timed = zip(sampler.samples, sampler.queues, strict=True)
    first = next((q for (seconds, _), q in timed if seconds >= 60.0), sampler.queues[-1])
    last = sampler.queues[-1]
    most = max(inbox + history for inbox, history in sampler.queues)
    return [
        (
            scenario,
            "waiting in Redis at 1 min / at the end: inbox entries, history queue",
            f"{first[0]:,} + {first[1]:,} / {last[0]:,} + {last[1]:,} (most at once {most:,})",
        )
    ]


def memory_rows(scenario: str, samples: list[tuple[float, float]], settled: float) -> list[Row]:
    """Redis's memory during the run: at 1 min, at the end, the most, its slope
    after the first minute; and once the history queue was empty."""
    at_minute = value_at(samples, 60.0)
    end = samples[-1][1] if samples else None
    most = max((size for _, size in samples), default=None)
    slope = growth_mb_per_minute(samples)
    late = sum(1 for seconds, _ in samples if seconds >= 60.0)

    def mb(size: float | None) -> str:
        return "n/a" if size is None else f"{size / MB:,.1f}"

    return [
        (
            scenario,
            "Redis used_memory at 1 min / at the end / max",
            f"{mb(at_minute)} / {mb(end)} / {mb(most)} MB ({len(samples)} samples)",
        ),
        (
            scenario,
            "Redis used_memory slope after the first minute",
            "n/a (fewer than two samples after the first minute)"
            if slope is None
            else f"{slope:+,.2f} MB/min (least squares over {late} samples)",
        ),
        (scenario, "Redis used_memory once the history queue was empty", f"{mb(settled)} MB"),
    ]
