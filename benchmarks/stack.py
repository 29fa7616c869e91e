"""What every scenario runs on: `rayhook up` in a fresh data folder (`Stack`),
the load generator (`Bench`: the raw Falcon baseline, closed and open loops),
and the loss check around a load (`with_loss_check`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import uvloop
import yaml

from benchmarks import procfs
from deploy import http_clients, processes
from deploy.bench import client, wrk
from deploy.bench.arrivals import Constant
from deploy.bench.bodies import Bodies
from deploy.bench.losscheck import ExecutionCounter
from deploy.bench.result import Result
from deploy.bench.signing import Signer
from engine.settings import default_history_url
from store.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
BODY = ROOT / "benchmarks" / "bodies" / "payment.json"
WORKFLOWS = ROOT / "benchmarks" / "workflows"
ASYNC_WORKFLOW = WORKFLOWS / "async-3-node.yaml"
CONNECTIONS = 64
#: The signed scenario's Stripe endpoint secret (a benchmark's own, not a real one).
STRIPE_SECRET = "whsec_rayhook_benchmark_secret"
#: Inherited settings a stack must not take from the caller's shell: each stack
#: has its own Ray, Redis, admin token and (unless a scenario says) history.
_NOT_INHERITED = ("RAY_ADDRESS", "REDIS_URL", "RAYHOOK_ADMIN_TOKEN", "RAYHOOK_HISTORY_URL")


def with_loss_check(stack: Stack, keys: list[str], load: Callable[[], Result]) -> Result:
    """Run a load on a quiet stack, then wait until every accepted event's
    execution is final."""
    counter = stack.counter(keys)
    base = counter.settled(60)
    stack.wait_history_moved()
    started = time.perf_counter()
    result = load()
    result.loss = counter.wait(base=base, accepted=result.accepted, started=started, timeout=600)
    return result


class Bench:
    """The load generator: `engine` (wrk or python), seconds per run."""

    def __init__(self, *, engine: str, duration: float) -> None:
        self.engine, self.duration = engine, duration
        self.bodies = Bodies.from_files([str(BODY)])

    def closed(
        self,
        urls: str | list[str],
        signer: Signer | None = None,
        *,
        duration: float | None = None,
    ) -> Result:
        """A closed loop of 64 connections for `duration` (default: the run's)."""
        seconds = self.duration if duration is None else duration
        if self.engine == "wrk":
            return wrk.closed_loop(
                urls,
                self.bodies,
                concurrency=CONNECTIONS,
                duration=seconds,
                threads=2,
                signer=signer,
            )
        uvloop.install()
        return asyncio.run(
            client.closed_loop(
                client.Target.parse(urls, signer=signer),
                self.bodies,
                concurrency=CONNECTIONS,
                duration=seconds,
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
            shutil.rmtree(log.parent, ignore_errors=True)


class Stack:
    """`rayhook up` in a fresh data folder, for the duration of a scenario.

    Attributes: `folder` (removed at the end), `data` (the data folder, created
    before the start so a scenario can put a history.db there), `env` (settings
    given to this stack only, e.g. `RAYHOOK_HISTORY_URL`), `base` (its URL),
    `ready_after` (seconds `rayhook up` took), and once started `token` and
    `admin` (an httpx client of the admin API)."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rayhook-bench-"))
        self.data = self.folder / "data"
        self.data.mkdir()
        self.env = dict(env or {})
        self.port = processes.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after = 0.0
        inherited = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self._environ = {
            **inherited,
            "RAYHOOK_WORKERS": "2",
            "RAYHOOK_ENV_BENCH_STRIPE_SECRET": STRIPE_SECRET,  # the signed scenario
            **self.env,
        }

    def __enter__(self) -> Stack:
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
                str(self.data),
            ],
            env=self._environ,
            log=out,
            cwd=str(ROOT),
        )
        while b"rayhook ready at" not in out.read_bytes():
            if self.process.poll() is not None or time.monotonic() - started > 180:
                told = out.read_text()[-3000:]
                self.__exit__()
                raise RuntimeError(f"rayhook up did not start:\n{told}")
            time.sleep(0.1)
        self.ready_after = time.monotonic() - started
        self.token = (self.data / "admin-token").read_text().strip()
        self.admin = http_clients.client(self.base, token=self.token, timeout=600)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(120)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- what it runs -------------------------------------------------------------------

    @property
    def history_url(self) -> str:
        """Where this stack keeps its history (the data folder's SQLite file unless
        `RAYHOOK_HISTORY_URL` was given)."""
        return self.env.get("RAYHOOK_HISTORY_URL") or default_history_url(str(self.data))

    @property
    def store_name(self) -> str:
        return "PostgreSQL" if self.history_url.startswith("postgres") else "SQLite"

    @property
    def keys(self) -> Keys:
        return Keys(self._environ.get("RAYHOOK_NAMESPACE") or "rayhook")

    def redis(self) -> redis.Redis:
        """A client of the stack's private Redis, over its Unix socket."""
        socket = self.data / "redis" / "redis.sock"
        if not socket.exists():
            raise RuntimeError(
                f"{socket} does not exist: the data folder's path is too long for a Unix "
                "socket; run with a shorter TMPDIR"
            )
        return redis.Redis(unix_socket_path=str(socket))

    def wait_history_moved(self, timeout: float = 1800) -> float:
        """Wait until the history writer has moved every final execution to
        SQL (the history stream is empty); when it was seen empty
        (`time.perf_counter()`). A load starts on a quiet stack: otherwise it
        shares the cores with the writer catching up with the previous
        scenario's executions."""
        client = self.redis()
        deadline = time.monotonic() + timeout
        try:
            while client.xlen(self.keys.history):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the history queue was not empty after {timeout:.0f} s")
                time.sleep(0.2)
            return time.perf_counter()
        finally:
            client.close()

    def url(self, key: str) -> str:
        return f"{self.base}/api/webhook:trigger/{key}"

    def counter(self, keys: list[str]) -> ExecutionCounter:
        return ExecutionCounter(self.base, self.token, keys)

    # -- workflows ----------------------------------------------------------------------

    def apply(self, path: Path, **override: Any) -> dict[str, Any]:
        definition = {**yaml.safe_load(path.read_text()), **override}
        reply = self.admin.post("/api/workflows:create", json=definition)
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()["data"]
        return data

    def apply_copies(
        self, path: Path, prefix: str, count: int, *, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        keys = [f"{prefix}-{i}" for i in range(count)]
        for done, key in enumerate(keys, 1):
            self.apply(path, key=key)
            if progress is not None:
                progress(done)
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

    # -- its processes ------------------------------------------------------------------

    def actors_paused(self, load: Callable[[], Result]) -> Result:
        """Run `load` with every Ray actor process stopped (SIGSTOP): the
        accept path alone, as during a burst the inbox absorbs. The events
        accepted meanwhile run once the actors continue."""
        actors = [pid for pid in self.pids() if procfs.command(pid).startswith("ray::")]
        for pid in actors:
            os.kill(pid, signal.SIGSTOP)
        try:
            return load()
        finally:
            for pid in actors:
                os.kill(pid, signal.SIGCONT)

    def pids(self) -> list[int]:
        assert self.process is not None
        return procfs.process_tree(self.process.pid)

    def memory(self) -> tuple[float, float]:
        """RSS and PSS (MB) summed over every process of the stack."""
        totals = [procfs.memory_mb(pid) for pid in self.pids()]
        return sum(r for r, _ in totals), sum(p for _, p in totals)

    def actor_memory(self, title: str) -> dict[int, tuple[float, float]]:
        return {
            pid: procfs.memory_mb(pid)
            for pid in self.pids()
            if procfs.command(pid).startswith(title)
        }

    def cpu_use(self, seconds: float) -> procfs.CpuUse:
        """CPU every process of the stack uses over the next `seconds`."""
        before = procfs.cpu_seconds(self.pids())
        started = time.monotonic()
        time.sleep(seconds)
        after = procfs.cpu_seconds(self.pids())
        return procfs.cpu_use(before, after, time.monotonic() - started)
