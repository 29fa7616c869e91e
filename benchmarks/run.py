"""Run the benchmark scenarios and append a dated section to docs/performance.md.

    python -m benchmarks.run [--duration 20] [--scenarios baseline,async,sync,memory,scaling]

Scenarios (issue "Throughput"), all with 64 connections and the payment-sized
body in benchmarks/bodies/payment.json:
1. baseline: a bare Falcon ASGI app (read + decode JSON, answer `ok`) on the
   same gunicorn settings: every other figure is also given as a ratio to it;
2. async: the 3-node async workflow: accept rate and p99, then end-to-end
   executions/s and loss; the accept path alone (Ray actors paused, the
   backlog run after); plus a sustained open-loop run at --sustain-rate;
3. sync: condition → Response: round trips/s and p99;
4. memory: idle stack RSS/PSS, per supervisor actor, per execution actor, and
   `rayhook up`'s time to ready;
5. scaling: 1, 10 and 100 enabled workflows receiving traffic at once;
6. signed: the async workflow unsigned and, beside it in the same run, the
   same workflow checking a Stripe signature (`config.signature`), every
   request signed with a fresh timestamp by the load generator: the cost of
   the check (and of signing, which the load generator pays).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import uvloop
import yaml

from deploy import processes
from deploy.bench import client, wrk
from deploy.bench.arrivals import Constant
from deploy.bench.bodies import Bodies
from deploy.bench.losscheck import ExecutionCounter
from deploy.bench.result import Result
from deploy.bench.signing import Signer

ROOT = Path(__file__).resolve().parents[1]
BODY = ROOT / "benchmarks" / "bodies" / "payment.json"
WORKFLOWS = ROOT / "benchmarks" / "workflows"
REPORT = ROOT / "docs" / "performance.md"
CONNECTIONS = 64
#: The signed scenario's Stripe endpoint secret (a benchmark's own, not a real one).
STRIPE_SECRET = "whsec_rayhook_benchmark_secret"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load run")
    parser.add_argument(
        "--scenarios",
        default="baseline,async,sync,memory,scaling,signed",
        help="comma-separated subset of: baseline,async,sync,memory,scaling,signed",
    )
    parser.add_argument(
        "--sustain-rate",
        type=float,
        default=2000.0,
        help="open-loop rate of the sustained end-to-end run (events/s)",
    )
    parser.add_argument("--scales", default="1,10,100", help="workflow counts for scaling")
    parser.add_argument(
        "--engine",
        choices=("wrk", "python"),
        default=None,
        help="load engine (default: wrk when installed)",
    )
    parser.add_argument("--label", default="", help="a note for this run's heading")
    parser.add_argument("--no-write", action="store_true", help="print, do not append the report")
    args = parser.parse_args(argv)
    wanted = set(args.scenarios.split(","))
    engine = args.engine or ("wrk" if wrk.available() else "python")
    bench = Bench(engine=engine, duration=args.duration)
    rows: list[tuple[str, str, str]] = []  # (scenario, figure, value)
    baseline: float | None = None
    started = datetime.now(UTC)
    if "baseline" in wanted or wanted & {"async", "sync", "scaling", "signed"}:
        result = bench.baseline()
        baseline = result.rps
        rows += describe("1 raw baseline (bare Falcon)", result, None)
    if wanted & {"async", "sync", "memory", "scaling", "signed"}:
        with Stack() as stack:
            if "memory" in wanted:
                rows += idle_memory(stack)
            stack.apply(WORKFLOWS / "async-3-node.yaml")
            stack.apply(WORKFLOWS / "sync-response.yaml")
            if "memory" in wanted:
                rows += supervisor_memory(stack)
            if "async" in wanted:
                url = stack.url("bench-async")
                result = with_loss_check(stack, ["bench-async"], lambda: bench.closed(url))
                rows += describe("2 async 3-node, closed loop", result, baseline)
                result = with_loss_check(
                    stack, ["bench-async"], lambda: stack.actors_paused(lambda: bench.closed(url))
                )
                rows += describe("2 async 3-node, ingress alone (actors paused)", result, baseline)
                rate = args.sustain_rate
                result = with_loss_check(stack, ["bench-async"], lambda: bench.open(url, rate))
                rows += describe(
                    f"2 async 3-node, open loop {rate:.0f}/s", result, baseline, sustained=True
                )
            if "sync" in wanted:
                result = bench.closed(stack.url("bench-sync"))
                rows += describe("3 sync condition → Response", result, baseline)
            if "scaling" in wanted:
                for count in (int(n) for n in args.scales.split(",")):
                    keys = stack.apply_copies(WORKFLOWS / "async-3-node.yaml", f"bs{count}", count)
                    urls = [stack.url(k) for k in keys]
                    result = with_loss_check(stack, keys, partial(bench.closed, urls))
                    rows += describe(f"5 scaling: {count} workflows", result, baseline)
                    stack.disable(keys)
            if "signed" in wanted:
                rows += signed(stack, bench, baseline)
    report = render(rows, started, engine, args)
    print(report)
    if not args.no_write:
        with REPORT.open("a") as out:
            out.write("\n" + report)
        print(f"appended to {REPORT}")
    return 0


def with_loss_check(stack: Stack, keys: list[str], load: Callable[[], Result]) -> Result:
    """Run a load, then wait until every accepted event's execution is final."""
    counter = stack.counter(keys)
    base = counter.settled(60)
    started = time.perf_counter()
    result = load()
    result.loss = counter.wait(base=base, accepted=result.accepted, started=started, timeout=600)
    return result


def signed(stack: Stack, bench: Bench, baseline: float | None) -> list[tuple[str, str, str]]:
    """The async workflow without and with a Stripe signature check, one after
    the other under the same load; the signed one's ratio is to the unsigned."""
    signature = {"scheme": "stripe", "secret": "{{$env.BENCH_STRIPE_SECRET}}"}
    stack.apply(
        WORKFLOWS / "async-3-node.yaml", key="bench-signed", config={"signature": signature}
    )
    unsigned = with_loss_check(
        stack, ["bench-async"], lambda: bench.closed(stack.url("bench-async"))
    )
    signer = Signer.parse(f"stripe:{STRIPE_SECRET}")
    result = with_loss_check(
        stack, ["bench-signed"], lambda: bench.closed(stack.url("bench-signed"), signer)
    )
    return [
        *describe("6 signed: async 3-node, unsigned", unsigned, baseline),
        *describe("6 signed: async 3-node, Stripe-signed", result, unsigned.rps, versus="unsigned"),
    ]


def idle_memory(stack: Stack) -> list[tuple[str, str, str]]:
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


def supervisor_memory(stack: Stack, count: int = 10) -> list[tuple[str, str, str]]:
    before = stack.memory()
    keys = stack.apply_copies(WORKFLOWS / "async-3-node.yaml", "bench-mem", count)
    time.sleep(2)
    after = stack.memory()
    stack.disable(keys)
    rss, pss = (after[0] - before[0]) / count, (after[1] - before[1]) / count
    return [
        (
            "4 memory",
            f"per supervisor actor ({count} enabled) RSS / PSS",
            f"{rss:.0f} / {pss:.0f} MB",
        )
    ]


def describe(
    scenario: str,
    r: Result,
    baseline: float | None,
    *,
    sustained: bool = False,
    versus: str = "baseline",
) -> list[tuple[str, str, str]]:
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


def render(rows: list[tuple[str, str, str]], started: datetime, engine: str, args: Any) -> str:
    lines = [
        f"## Run {started:%Y-%m-%d %H:%M} UTC{' — ' + args.label if args.label else ''}",
        "",
        f"Machine: {machine()}. Load: {engine}, {CONNECTIONS} connections, "
        f"{args.duration:.0f} s per run, body `benchmarks/bodies/payment.json` "
        f"({BODY.stat().st_size} bytes, fresh ids per request). "
        "Server, Redis (AOF, appendfsync always), Ray and the load generator share the machine.",
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


class Bench:
    def __init__(self, *, engine: str, duration: float) -> None:
        self.engine, self.duration = engine, duration
        self.bodies = Bodies.from_files([str(BODY)])

    def closed(self, urls: str | list[str], signer: Signer | None = None) -> Result:
        if self.engine == "wrk":
            return wrk.closed_loop(
                urls,
                self.bodies,
                concurrency=CONNECTIONS,
                duration=self.duration,
                threads=2,
                signer=signer,
            )
        uvloop.install()
        return asyncio.run(
            client.closed_loop(
                client.Target.parse(urls, signer=signer),
                self.bodies,
                concurrency=CONNECTIONS,
                duration=self.duration,
            )
        )

    def open(self, url: str, rate: float) -> Result:
        uvloop.install()
        return asyncio.run(
            client.open_loop(
                client.Target.parse(url),
                self.bodies,
                arrivals=Constant(rate),
                duration=self.duration,
                max_connections=256,
            )
        )

    def baseline(self) -> Result:
        port = processes.free_port()
        log = Path(tempfile.mkdtemp(prefix="rayhook-baseline-")) / "gunicorn.log"
        env = {**os.environ, "RAYHOOK_PORT": str(port), "RAYHOOK_WORKERS": "2"}
        server = processes.spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:benchmarks.baseline_gunicorn",
                "benchmarks.baseline_app:app",
            ],
            env=env,
            log=log,
            cwd=str(ROOT),
        )
        try:
            processes.wait_for_port(port, 30, server)
            time.sleep(1)
            return self.closed(f"http://127.0.0.1:{port}/api/webhook:trigger/baseline")
        finally:
            processes.stop(server, timeout=30)


class Stack:
    """`rayhook up` in a fresh data folder, for the duration of the benchmarks."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rayhook-bench-"))
        self.port = processes.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after = 0.0

    def __enter__(self) -> Stack:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RAY_ADDRESS", "REDIS_URL", "RAYHOOK_ADMIN_TOKEN")
        }
        env["RAYHOOK_WORKERS"] = "2"
        env["RAYHOOK_ENV_BENCH_STRIPE_SECRET"] = STRIPE_SECRET  # scenario 6
        out = self.folder / "up.out"
        started = time.monotonic()
        self.process = processes.spawn(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "up",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.folder / "data"),
            ],
            env=env,
            log=out,
            cwd=str(ROOT),
        )
        while b"rayhook ready at" not in out.read_bytes():
            if self.process.poll() is not None or time.monotonic() - started > 180:
                raise RuntimeError(f"rayhook up did not start:\n{out.read_text()[-3000:]}")
            time.sleep(0.1)
        self.ready_after = time.monotonic() - started
        self.token = (self.folder / "data" / "admin-token").read_text().strip()
        self.admin = httpx.Client(
            base_url=self.base, timeout=120, headers={"Authorization": f"Bearer {self.token}"}
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(120)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, key: str) -> str:
        return f"{self.base}/api/webhook:trigger/{key}"

    def counter(self, keys: list[str]) -> ExecutionCounter:
        return ExecutionCounter(self.base, self.token, keys)

    def apply(self, path: Path, **override: Any) -> dict[str, Any]:
        definition = {**yaml.safe_load(path.read_text()), **override}
        reply = self.admin.post("/api/workflows:create", json=definition)
        reply.raise_for_status()
        return reply.json()["data"]

    def apply_copies(self, path: Path, prefix: str, count: int) -> list[str]:
        keys = [f"{prefix}-{i}" for i in range(count)]
        for key in keys:
            self.apply(path, key=key)
        return keys

    def disable(self, keys: list[str]) -> None:
        for key in keys:
            versions = self.admin.get("/api/workflows:list", params={"filter[key]": key}).json()[
                "data"
            ]
            for version in versions:
                self.admin.post(
                    "/api/workflows:update",
                    params={"filterByTk": version["id"]},
                    json={"enabled": False},
                )

    def actors_paused(self, load: Callable[[], Result]) -> Result:
        """Run `load` with every Ray actor process stopped (SIGSTOP): the
        accept path alone, as during a burst the inbox absorbs. The events
        accepted meanwhile run once the actors continue."""
        actors = []
        for pid in self.pids():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                    actors.append(pid)
            except OSError:
                continue
        for pid in actors:
            os.kill(pid, signal.SIGSTOP)
        try:
            return load()
        finally:
            for pid in actors:
                os.kill(pid, signal.SIGCONT)

    def pids(self) -> list[int]:
        assert self.process is not None
        return _tree(self.process.pid)

    def memory(self) -> tuple[float, float]:
        """RSS and PSS (MB) summed over every process of the stack."""
        totals = [_memory(pid) for pid in self.pids()]
        return sum(r for r, _ in totals), sum(p for _, p in totals)

    def actor_memory(self, title: str) -> dict[int, tuple[float, float]]:
        out = {}
        for pid in self.pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(title.encode()):
                out[pid] = _memory(pid)
        return out


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += _tree(int(child))
    return out


def _memory(pid: int) -> tuple[float, float]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss / 1024, pss / 1024


if __name__ == "__main__":
    sys.exit(main())
