"""Run the benchmark scenarios and append a dated section to docs/performance.md.

    python -m benchmarks.run [--duration 20] [--scenarios baseline,async,...]

Scenarios, all with 64 connections and the payment-sized body in
benchmarks/bodies/payment.json; every run includes the raw baseline:
1. baseline: a bare Falcon ASGI app (read + decode JSON, answer `ok`) on the
   same gunicorn settings: every other figure is also given as a ratio to it;
2. async: the 3-node async workflow: accept rate and p99, then end-to-end
   executions/s and loss; the accept path alone (Ray actors paused, the
   backlog run after); plus a sustained open-loop run at --sustain-rate;
3. sync: condition → Response: round trips/s and p50/p90/p99;
4. memory: idle stack RSS/PSS, per execution actor, per enabled workflow, and
   `rayhook up`'s time to ready;
5. scaling: 1, 10 and 100 enabled workflows receiving traffic at once, and
   each count's executions/s as a share of one workflow's;
6. signed: the async workflow unsigned and, beside it in the same run, the
   same workflow checking a Stripe signature (`config.signature`), every
   request signed with a fresh timestamp by the load generator;
7. soak (opt-in): --soak-minutes of the async workflow at full closed-loop
   speed, Redis used_memory every 10 s (its slope after the first minute),
   loss, and every accepted event in the history store;
8. history: end-to-end executions/s with the history on SQLite and on
   PostgreSQL (a fresh stack each), loss, stored bytes per execution;
9. search (opt-in): a context-path search among --search-rows stored
   executions on SQLite and on PostgreSQL, through the admin API;
10. idle: --idle-workflows enabled workflows without traffic: the stack's
   RSS/PSS and CPU, beside the same figures before they existed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks import history, memory, scaling, search, soak, throughput
from benchmarks.report import Row, describe, progress, render
from benchmarks.stack import ROOT, WORKFLOWS, Bench, Stack
from deploy.bench import wrk

SCENARIOS = (
    "baseline",
    "async",
    "sync",
    "memory",
    "scaling",
    "signed",
    "soak",
    "history",
    "search",
    "idle",
)
#: A plain `benchmarks/run`: about 15 minutes on the 2-core machine (soak and
#: search take long: they are asked for by name).
DEFAULT_SCENARIOS = "baseline,async,sync,memory,scaling,signed,history,idle"
REPORT = ROOT / "docs" / "performance.md"
#: The scenarios that share one stack (the others start stacks of their own).
MAIN_STACK = {"async", "sync", "memory", "scaling", "signed"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run")
    parser.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        help=f"comma-separated subset of: {','.join(SCENARIOS)}, or all "
        f"(default: {DEFAULT_SCENARIOS})",
    )
    parser.add_argument(
        "--sustain-rate",
        type=float,
        default=2000.0,
        help="open-loop rate of the sustained end-to-end run (events/s)",
    )
    parser.add_argument("--scales", default="1,10,100", help="workflow counts for scaling")
    parser.add_argument(
        "--soak-minutes", type=float, default=10.0, help="length of the soak's load (minutes)"
    )
    parser.add_argument(
        "--search-rows",
        type=int,
        default=1_000_000,
        help="executions stored in each history store before the search",
    )
    parser.add_argument("--search-queries", type=int, default=50, help="timed searches per store")
    parser.add_argument(
        "--idle-workflows", type=int, default=1000, help="enabled workflows of the idle scenario"
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=60.0,
        help="idle scenario: seconds without traffic before measuring, and the CPU window",
    )
    parser.add_argument(
        "--engine",
        choices=("wrk", "python"),
        default=None,
        help="load engine (default: wrk when installed)",
    )
    parser.add_argument("--label", default="", help="a note for this run's heading")
    parser.add_argument("--no-write", action="store_true", help="print, do not append the report")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.scenarios.split(",") if name.strip()}
    if "all" in wanted:
        wanted = (wanted - {"all"}) | set(SCENARIOS)
    unknown = wanted - set(SCENARIOS)
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}"
        )
    for option in ("soak_minutes", "search_rows", "search_queries", "idle_workflows"):
        if getattr(args, option) <= 0:
            parser.error(f"--{option.replace('_', '-')} must be positive")
    if args.idle_seconds < 1:
        parser.error("--idle-seconds must be at least 1 (the CPU window)")
    engine = args.engine or ("wrk" if wrk.available() else "python")
    bench = Bench(engine=engine, duration=args.duration)
    started = datetime.now(UTC)
    rows: list[Row] = []
    failed = False

    def run(name: str, scenario: Callable[[], list[Row]]) -> None:
        """Run one scenario; a failure is a row of the report (the others still run)."""
        nonlocal failed
        progress(f"scenario {name}")
        try:
            found = scenario()
        except Exception as exc:
            traceback.print_exc()
            failed = True
            found = [(name, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])]
        for row in found:
            progress(" | ".join(row))
        rows.extend(found)

    # Every run carries the raw baseline measured in it (each figure's ratio).
    result = bench.baseline()
    baseline = result.rps
    rows += describe("1 raw baseline (bare Falcon)", result, None)

    def main_stack() -> list[Row]:
        with Stack() as stack:
            if "memory" in wanted:
                run("memory", lambda: memory.idle_memory(stack))
            stack.apply(WORKFLOWS / "async-3-node.yaml")
            stack.apply(WORKFLOWS / "sync-response.yaml")
            if "memory" in wanted:
                run("memory", lambda: memory.per_workflow_memory(stack))
            if "async" in wanted:
                run(
                    "async",
                    lambda: throughput.async_payment(stack, bench, baseline, args.sustain_rate),
                )
            if "sync" in wanted:
                run("sync", lambda: throughput.sync_round_trip(stack, bench, baseline))
            if "scaling" in wanted:
                scales = [int(n) for n in args.scales.split(",")]
                run("scaling", lambda: scaling.scaling(stack, bench, baseline, scales))
            if "signed" in wanted:
                run("signed", lambda: throughput.signed(stack, bench, baseline))
        return []

    if wanted & MAIN_STACK:
        run("main stack", main_stack)
    if "history" in wanted:
        run("history", lambda: history.history(bench, baseline))
    if "idle" in wanted:
        run("idle", lambda: scaling.idle(args.idle_workflows, args.idle_seconds))
    if "soak" in wanted:
        run("soak", lambda: soak.soak(bench, baseline, args.soak_minutes))
    if "search" in wanted:
        run("search", lambda: search.search(args.search_rows, args.search_queries))
    report = render(rows, started=started, engine=engine, duration=args.duration, label=args.label)
    print(report)
    if not args.no_write:
        with REPORT.open("a") as out:
            out.write("\n" + report)
        print(f"appended to {REPORT}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
