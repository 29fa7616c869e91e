"""Microbenchmark: what running a script in a sandbox process costs per call,
against running it on a thread of the calling process (RAYHOOK_SCRIPT_SANDBOX=
process vs inline). Prints the latency percentiles of each mode and the
difference of their medians (the target: at most 2 ms).

    .venv/bin/python -m benchmarks.script_sandbox [--calls 500] [--gap-ms 5]

Calls are made one at a time, `--gap-ms` apart (a webhook's scripts rarely come
back to back; the gap lets a sandbox prepare its next isolate, which it does
after answering). `--gap-ms 0` measures back-to-back calls too."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from integrations.sandbox.inline import InlineSandbox
from integrations.sandbox.pool import SandboxPool
from integrations.sandbox.protocol import SandboxLimits, ScriptRun

LIMITS = SandboxLimits(heap_bytes=128 << 20, buffer_bytes=128 << 20, output_bytes=1 << 20)
SCRIPT = ScriptRun(
    content="return {total: items.reduce((s, i) => s + i.price, 0)}",
    names=["items"],
    arguments='[[{"price": 1}, {"price": 2}, {"price": 3}]]',
    timeout_ms=1000,
)
WARMUP = 30


async def measure(
    kind: type[SandboxPool] | type[InlineSandbox], calls: int, gap: float
) -> list[float]:
    sandbox = kind(LIMITS, size=1, share=1, cpu_ms=0)
    try:
        for _ in range(WARMUP):
            await sandbox.run("bench", "e", SCRIPT)
        took = []
        for _ in range(calls):
            await asyncio.sleep(gap)
            started = time.perf_counter()
            outcome = await sandbox.run("bench", "e", SCRIPT)
            took.append((time.perf_counter() - started) * 1000)
            assert outcome.value == '{"total":6}', outcome
        return sorted(took)
    finally:
        await sandbox.aclose()


def percentiles(ms: list[float]) -> str:
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"p50 {statistics.median(ms):.2f} / p90 {pick(0.9):.2f} / p99 {pick(0.99):.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    args = parser.parse_args()
    gap = args.gap_ms / 1000
    results: dict[str, list[float]] = {}
    for kind in (InlineSandbox, SandboxPool, InlineSandbox, SandboxPool):  # interleaved
        results.setdefault(kind.__name__, []).extend(await measure(kind, args.calls // 2, gap))
    for name, ms in results.items():
        print(f"{name:14} {percentiles(sorted(ms))}")
    overhead = statistics.median(results["SandboxPool"]) - statistics.median(
        results["InlineSandbox"]
    )
    print(f"process - inline, p50: {overhead:+.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
