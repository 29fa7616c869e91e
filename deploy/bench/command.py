"""`rayhook bench`: argument handling, engine choice, live progress, the table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import uvloop
from rich.console import Console
from rich.live import Live
from rich.table import Table

from deploy.bench import client, wrk
from deploy.bench.bodies import Bodies
from deploy.bench.losscheck import ExecutionCounter, workflow_key
from deploy.bench.result import Result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "urls",
        nargs="+",
        metavar="URL",
        help="webhook URL(s), http://host:port/api/webhook:trigger/<key>; "
        "several are used round-robin",
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, help="open loop: requests per second")
    load.add_argument("--concurrency", type=int, help="closed loop: connections (default 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--body",
        action="append",
        default=[],
        metavar="FILE",
        help="a JSON body; repeat for several (round-robin); "
        "{{seq}} and {{uuid}} are substituted per request",
    )
    parser.add_argument("--basic", metavar="USER:PASS", help="Basic auth credentials")
    parser.add_argument(
        "--engine",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk for --concurrency when installed, else python",
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=256,
        help="open loop: connections at most (default 256)",
    )
    parser.add_argument(
        "--check-loss",
        action="store_true",
        help="wait until every accepted event of the async workflow is final",
    )
    parser.add_argument("--token", help="admin token for --check-loss (default: env or data dir)")
    parser.add_argument("--data-dir", default=os.environ.get("RAYHOOK_DATA_DIR", ".rayhook"))
    parser.add_argument(
        "--loss-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the last execution (default 300)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    bodies = Bodies.from_files(args.body)
    console = Console(stderr=True)
    counter = None
    if args.check_loss:
        token = args.token or os.environ.get("RAYHOOK_ADMIN_TOKEN")
        token_file = Path(args.data_dir) / "admin-token"
        if not token and token_file.exists():
            token = token_file.read_text().strip()
        if not token:
            console.print("--check-loss needs the admin token (--token or RAYHOOK_ADMIN_TOKEN)")
            return 2
        parts = urlsplit(args.urls[0])
        origin = f"{parts.scheme}://{parts.netloc}"
        counter = ExecutionCounter(origin, token, [workflow_key(u) for u in args.urls])
        base = counter.settled(timeout=60)
    started = time.perf_counter()
    result = load(args, bodies, console)
    if counter is not None:
        with console.status("waiting for every accepted event to reach a final status…"):
            result.loss = counter.wait(
                base=base, accepted=result.accepted, started=started, timeout=args.loss_timeout
            )
    if args.json:
        print(json.dumps(msgspec.to_builtins(result), indent=2))
    else:
        Console().print(table(result))
    return 0 if result.loss is None or result.loss.lost == 0 else 1


def load(args: argparse.Namespace, bodies: Bodies, console: Console) -> Result:
    engine = args.engine
    if engine == "auto":
        engine = "wrk" if args.rate is None and wrk.available() else "python"
    if engine == "wrk":
        if args.rate is not None:
            raise SystemExit("wrk runs closed loop only; use --engine python with --rate")
        with console.status(f"wrk: {args.concurrency or 64} connections for {args.duration:.0f} s"):
            return wrk.closed_loop(
                args.urls,
                bodies,
                concurrency=args.concurrency or 64,
                duration=args.duration,
                threads=args.threads,
                basic=args.basic,
            )
    target = client.Target.parse(args.urls, args.basic)
    live = _Progress(console, args.duration)
    uvloop.install()
    with live:
        if args.rate is not None:
            coro = client.open_loop(
                target,
                bodies,
                rate=args.rate,
                duration=args.duration,
                max_connections=args.max_connections,
                progress=live.update,
            )
        else:
            coro = client.closed_loop(
                target,
                bodies,
                concurrency=args.concurrency or 64,
                duration=args.duration,
                progress=live.update,
            )
        return asyncio.run(coro)


class _Progress:
    """Live progress line: elapsed time, answered, rate, errors, statuses."""

    def __init__(self, console: Console, duration: float) -> None:
        self.console, self.duration = console, duration
        self.started = time.perf_counter()
        self.live = Live(console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> _Progress:
        self.started = time.perf_counter()
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, answered: int, errors: int, statuses: Counter[int]) -> None:
        elapsed = time.perf_counter() - self.started
        codes = " ".join(f"{code}:{n}" for code, n in sorted(statuses.items()))
        self.live.update(
            f"{elapsed:5.1f}/{self.duration:.0f} s  {answered} answered "
            f"({answered / max(elapsed, 1e-9):,.0f}/s)  errors {errors}  {codes}"
        )


def table(result: Result) -> Table:
    out = Table(title=f"rayhook bench ({result.engine}, {result.mode} {result.target:g})")
    out.add_column("metric")
    out.add_column("value", justify="right")
    out.add_row("requests/s", f"{result.rps:,.0f}")
    out.add_row("requests", f"{result.requests:,}")
    out.add_row("errors", f"{result.errors:,}")
    for name in ("p50", "p90", "p99", "max"):
        out.add_row(f"{name} latency", f"{getattr(result, name + '_ms'):.2f} ms")
    for code, n in result.statuses.items():
        out.add_row(f"status {code}", f"{n:,}")
    if result.loss is not None:
        loss = result.loss
        out.add_row("accepted", f"{loss.accepted:,}")
        out.add_row("final executions", f"{loss.final:,}")
        out.add_row("lost", f"{loss.lost:,}")
        out.add_row("end-to-end executions/s", f"{loss.executions_per_second:,.0f}")
    return out
