"""`rayhook bench`: argument handling, engine choice, live progress, the table,
the HTML report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import uvloop
from rich.console import Console
from rich.live import Live
from rich.table import Table

from deploy.bench import client, report, wrk
from deploy.bench.arrivals import Arrivals, Burst, Constant, Ramp, parse_rates
from deploy.bench.bodies import Bodies
from deploy.bench.losscheck import BacklogSampler, ExecutionCounter, workflow_key
from deploy.bench.result import Result
from deploy.bench.signing import SCHEMES, Signer
from deploy.bench.timeline import Recorder

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


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
    load.add_argument(
        "--ramp",
        metavar="START:END",
        help="open loop: the rate climbs linearly from START to END per second over "
        "--duration; reports the saturation rate",
    )
    load.add_argument(
        "--burst",
        metavar="BASE:PEAK:SECONDS",
        help="open loop: BASE per second, PEAK for SECONDS from a third of the run "
        "(a provider replaying its backlog), then BASE again",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--body",
        action="append",
        default=[],
        metavar="FILE",
        help="a JSON or form (a=1&b=2) body; repeat for several (round-robin); "
        "{{seq}} and {{uuid}} are substituted per request",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header sent with every request; repeatable (a Content-Type here "
        "applies to every body)",
    )
    parser.add_argument("--basic", metavar="USER:PASS", help="Basic auth credentials")
    parser.add_argument(
        "--sign",
        metavar="SCHEME:SECRET",
        help=f"sign every request with a fresh timestamp; SCHEME is one of {', '.join(SCHEMES)}",
    )
    parser.add_argument(
        "--sign-header",
        metavar="NAME",
        help="hmac-sha256: the header carrying the hex digest (default X-Signature)",
    )
    parser.add_argument(
        "--p99-bound",
        type=float,
        metavar="MS",
        help="--ramp: saturated also once p99 latency passes MS milliseconds",
    )
    parser.add_argument(
        "--report", metavar="FILE.html", help="write a self-contained HTML page of charts"
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk for --concurrency when installed (and no --report), else python",
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


@dataclass(frozen=True)
class Plan:
    """The parsed options a load needs (see `plan`)."""

    headers: list[tuple[str, str]]
    content_type: str | None
    signer: Signer | None
    arrivals: Arrivals | None
    engine: str


def plan(args: argparse.Namespace) -> Plan:
    """Check the options that go together; ValueError names the one to fix."""
    headers: list[tuple[str, str]] = []
    content_type = None
    for text in args.header:
        name, colon, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
            raise ValueError(f"--header takes 'Name: value', not {text!r}")
        if name.lower() == "content-type":
            content_type = value
        elif name.lower() in ("content-length", "host", "transfer-encoding"):
            raise ValueError(f"--header: {name} is set by the load generator")
        else:
            headers.append((name, value))
    signer = Signer.parse(args.sign, args.sign_header) if args.sign else None
    arrivals: Arrivals | None = None
    if args.rate is not None:
        if args.rate <= 0:
            raise ValueError("--rate must be above 0")
        arrivals = Constant(args.rate)
    elif args.ramp is not None:
        start, end = parse_rates(args.ramp, 2, "--ramp")
        if start == end == 0:
            raise ValueError("--ramp: START and END cannot both be 0")
        arrivals = Ramp(start, end, args.duration)
    elif args.burst is not None:
        base, peak, seconds = parse_rates(args.burst, 3, "--burst")
        if peak <= 0 or seconds <= 0:
            raise ValueError("--burst: PEAK and SECONDS must be above 0")
        arrivals = Burst.within(base, peak, seconds, args.duration)
    if args.p99_bound is not None and args.ramp is None:
        raise ValueError("--p99-bound applies to --ramp")
    engine = args.engine
    if engine == "auto":
        engine = "wrk" if arrivals is None and not args.report and wrk.available() else "python"
    if engine == "wrk":
        if arrivals is not None:
            raise ValueError("wrk runs closed loop only; use --engine python for an open loop")
        if args.report:
            raise ValueError("--report needs the python engine (wrk keeps no timeline)")
    return Plan(
        headers=headers,
        content_type=content_type,
        signer=signer,
        arrivals=arrivals,
        engine=engine,
    )


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        chosen = plan(args)
    except ValueError as exc:
        console.print(f"rayhook bench: {exc}")
        return 2
    bodies = Bodies.from_files(args.body, chosen.content_type)
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
    recorder = Recorder()
    sampler = None
    if counter is not None and args.report:
        sampler = BacklogSampler(counter, base, recorder)
    started = time.perf_counter()
    try:
        if sampler is not None:
            sampler.start()
        result = load(args, chosen, bodies, console, recorder)
    finally:
        if sampler is not None:
            sampler.stop()
    if counter is not None:
        with console.status("waiting for every accepted event to reach a final status…"):
            result.loss = counter.wait(
                base=base, accepted=result.accepted, started=started, timeout=args.loss_timeout
            )
    if args.report:
        Path(args.report).write_text(report.render(result, args.urls))
        console.print(f"report written to {args.report}")
    if args.json:
        print(json.dumps(msgspec.to_builtins(result), indent=2))
    else:
        Console().print(table(result))
    return 0 if result.loss is None or result.loss.lost == 0 else 1


def load(
    args: argparse.Namespace, chosen: Plan, bodies: Bodies, console: Console, recorder: Recorder
) -> Result:
    if chosen.engine == "wrk":
        with console.status(f"wrk: {args.concurrency or 64} connections for {args.duration:.0f} s"):
            return wrk.closed_loop(
                args.urls,
                bodies,
                concurrency=args.concurrency or 64,
                duration=args.duration,
                threads=args.threads,
                basic=args.basic,
                headers=chosen.headers,
                signer=chosen.signer,
            )
    target = client.Target.parse(args.urls, args.basic, chosen.headers, chosen.signer)
    live = _Progress(console, args.duration)
    uvloop.install()
    with live:
        if chosen.arrivals is not None:
            coro = client.open_loop(
                target,
                bodies,
                arrivals=chosen.arrivals,
                duration=args.duration,
                max_connections=args.max_connections,
                progress=live.update,
                recorder=recorder,
                p99_bound_ms=args.p99_bound,
            )
        else:
            coro = client.closed_loop(
                target,
                bodies,
                concurrency=args.concurrency or 64,
                duration=args.duration,
                progress=live.update,
                recorder=recorder,
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
    load = result.load or f"{result.mode} {result.target:g}"
    out = Table(title=f"rayhook bench ({result.engine}, {load})")
    out.add_column("metric")
    out.add_column("value", justify="right")
    out.add_row("requests/s", f"{result.rps:,.0f}")
    out.add_row("requests", f"{result.requests:,}")
    out.add_row("errors", f"{result.errors:,}")
    for name in ("p50", "p90", "p99", "max"):
        out.add_row(f"{name} latency", f"{getattr(result, name + '_ms'):.2f} ms")
    for code, n in result.statuses.items():
        out.add_row(f"status {code}", f"{n:,}")
    if result.saturation is not None:
        sat = result.saturation
        value = f"{sat.rate:,.0f}/s ({sat.reason})" if sat.rate is not None else sat.reason
        out.add_row("saturation", value)
    if result.loss is not None:
        loss = result.loss
        out.add_row("accepted", f"{loss.accepted:,}")
        out.add_row("final executions", f"{loss.final:,}")
        out.add_row("lost", f"{loss.lost:,}")
        out.add_row("end-to-end executions/s", f"{loss.executions_per_second:,.0f}")
    return out
