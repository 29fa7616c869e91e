"""`rayhook up`: the whole local stack in the foreground.

Starts, in order, a private Redis with AOF under the data folder (unless
`REDIS_URL` is set), a Ray head bound to 127.0.0.1 (unless `RAY_ADDRESS` is set),
and gunicorn serving the Falcon app; prints one line with `ready` and the URL.
On SIGTERM/SIGINT it stops them in reverse order: gunicorn first (in-flight
requests finish), then it lets every executor finish its running executions
(unread inbox entries stay in Redis for the next start), then Ray, then Redis.
What it wrote outside the data folder (Ray's session folder under /tmp) is
removed once Ray has stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path

import httpx

from deploy import processes
from engine.settings import Settings
from store import migrate
from store.history import redacted_url

RAY_GCS_PORT = 6380  # not 6379: that is Redis's
REDIS_PORT = 16379
DRAIN_SECONDS = 10.0


def ray_temp_dir(data_dir: Path) -> str:
    """Ray's sockets must fit in a unix socket path: a short folder per data folder."""
    return f"/tmp/rayhook-{blake2b(str(data_dir).encode(), digest_size=4).hexdigest()}"


@dataclass
class LocalStack:
    """Attributes: the data folder, where to listen, the environment the children
    inherit, and the children started (each stopped only if we started it)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 13000
    workers: int = 2
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    redis: subprocess.Popen[bytes] | None = None
    ray: subprocess.Popen[bytes] | None = None
    gunicorn: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        env = dict(self.environ)
        env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        env["RAYHOOK_DATA_DIR"] = str(self.data_dir)
        env["RAYHOOK_ADMIN_TOKEN"] = env.get("RAYHOOK_ADMIN_TOKEN") or self._secret("admin-token")
        if "RAY_AUTH_MODE" not in env:
            env["RAY_AUTH_MODE"] = "token"
            env["RAY_AUTH_TOKEN_PATH"] = str(self.data_dir / "ray-token")
            self._secret("ray-token")
        env["RAYHOOK_HOST"], env["RAYHOOK_PORT"] = self.host, str(self.port)
        env["RAYHOOK_WORKERS"] = str(self.workers)
        self.env = env
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = self._start_redis()
        if not env.get("RAY_ADDRESS"):
            env["RAY_ADDRESS"] = self._start_ray(timeout)
        self._migrate()
        self._start_gunicorn(timeout)

    def _secret(self, name: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _migrate(self) -> None:
        """The history's schema is current before anything reads it (a bad
        RAYHOOK_HISTORY_URL fails the start here, with the database's words)."""
        url = Settings.from_env(self.env).history_database
        try:
            migrate.upgrade(url)
        except Exception as exc:
            raise RuntimeError(f"history store {redacted_url(url)}: {exc}") from exc

    def _start_redis(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed; install it or set REDIS_URL")
        folder = self.data_dir / "redis"
        folder.mkdir(exist_ok=True)
        port = processes.free_port(REDIS_PORT)
        # Every process of this stack is on this machine: they talk to Redis over
        # a Unix socket, which saves the TCP stack's work on every round trip
        # (the TCP port stays, for redis-cli and tools). A socket path must fit
        # in 107 bytes; a deeper data folder keeps TCP.
        socket = folder / "redis.sock"
        unix = len(str(socket)) < 100
        # appendfsync always: a 2xx for an async webhook means "on disk", and the
        # ingress group-commits its writes so the fsync is shared (ARCHITECTURE.md).
        self.redis = processes.spawn(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                # Bounded: past the high watermark the ingress refuses async
                # webhooks (503); noeviction keeps Redis from dropping accepted
                # work to make room (SPEC §9).
                "--maxmemory",
                Settings.from_env(self.env).redis_maxmemory,
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
                *(["--unixsocket", str(socket), "--unixsocketperm", "700"] if unix else []),
            ],
            env=self.env,
            log=self.logs / "redis.log",
        )
        processes.wait_for_port(port, 30, self.redis)
        if unix:
            return f"unix://{socket}?db=0"
        return f"redis://127.0.0.1:{port}/0"

    def _start_ray(self, timeout: float) -> str:
        gcs = processes.free_port(RAY_GCS_PORT)
        log_path = self.logs / "ray.log"
        log_path.write_bytes(b"")
        # We drain the executors ourselves; Ray's own SIGTERM drain would wait its full
        # 30 s for detached actors that never finish.
        # Ray's own metrics (exported through its dashboard agent every few seconds)
        # feed nothing here: rayhook's are on /metrics. Off, an idle stack spends
        # ~0.3 % of a core less (docs/performance.md, "Idle cost"). The agent's
        # sweep of every worker's CPU and memory (for the dashboard's node view,
        # which `ray list actors` does not read) every 30 s instead of 5 s, and
        # its parent check every 2 s instead of 0.4 s: ~0.35 % less. The dashboard's
        # records of its own CPU and memory (read from /proc every 5 s, for Ray's
        # metrics, which are off) and its node view's stats (every 15 s) once a
        # minute; raylet's memory monitor (the OOM killer) every 1 s instead of
        # 0.25 s and its check for a due garbage collection every 1 s instead of
        # 0.1 s: ~0.35 % less (docs/performance.md, "the idle floor").
        env = {
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_enable_metrics_collection": "0",
            "REPORTER_UPDATE_INTERVAL_MS": "30000",
            "RAY_DASHBOARD_AGENT_CHECK_PARENT_INTERVAL_S": "2",
            "METRICS_RECORD_INTERVAL_S": "60",
            "NODE_STATS_UPDATE_INTERVAL_SECONDS": "60",
            "RAY_memory_monitor_refresh_ms": "1000",
            "RAY_raylet_check_gc_period_milliseconds": "1000",
            **self.env,
        }
        self.ray = processes.spawn(
            [
                sys.executable,
                "-m",
                "deploy.ray_node",
                "--head",
                "--block",
                f"--port={gcs}",
                "--node-ip-address=127.0.0.1",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={processes.free_port(8265)}",
                f"--dashboard-agent-listen-port={processes.free_port(52365)}",
                "--min-worker-port=20000",
                "--max-worker-port=24999",
                f"--num-cpus={os.cpu_count() or 1}",
                f"--temp-dir={ray_temp_dir(self.data_dir)}",
                "--disable-usage-stats",
                "--include-log-monitor=false",
            ],
            env=env,
            log=log_path,
        )
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in log_path.read_bytes():
            if self.ray.poll() is not None:
                raise RuntimeError(f"ray start failed; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ray did not start within {timeout:.0f} s; see {log_path}")
            time.sleep(0.2)
        return f"127.0.0.1:{gcs}"

    def _start_gunicorn(self, timeout: float) -> None:
        if not processes.port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is in use; pick another with --port")
        # The workers' metric files live with the rest of the stack's state
        # (set for gunicorn only: in Ray's processes prometheus_client would
        # write there too).
        env = {"PROMETHEUS_MULTIPROC_DIR": str(self.data_dir / "prometheus"), **self.env}
        self.gunicorn = processes.spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:deploy.gunicorn_conf",
                "ingress.asgi:app",
            ],
            env=env,
            log=self.logs / "gunicorn.log",
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.logs / 'gunicorn.log'}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready within {timeout:.0f} s; see {self.logs}")
            time.sleep(0.2)

    def wait(self, stop: threading.Event) -> str | None:
        """Block until `stop` is set or a child dies; the name of a dead child."""
        while not stop.wait(0.5):
            for name in ("redis", "ray", "gunicorn"):
                child = getattr(self, name)
                if child is not None and child.poll() is not None:
                    return name
        return None

    def stop(self) -> None:
        # gunicorn stops accepting and finishes in-flight requests while the
        # executors stop taking new inbox entries and finish running executions.
        draining = None
        if self.ray is not None and self.ray.poll() is None:
            draining = self._drain_executors()
        if self.gunicorn is not None:
            graceful = float(self.env.get("RAYHOOK_GRACEFUL_TIMEOUT", "30"))
            processes.stop(self.gunicorn, timeout=graceful + 5)
        if draining is not None:
            try:
                draining.wait(DRAIN_SECONDS + 30)
            except subprocess.TimeoutExpired:
                draining.kill()
        if self.ray is not None:
            processes.stop(self.ray, timeout=30)
            _remove_folder(Path(ray_temp_dir(self.data_dir)))
        if self.redis is not None:
            processes.stop(self.redis, timeout=30)  # SIGTERM: Redis flushes its AOF

    def _drain_executors(self) -> subprocess.Popen[bytes]:
        """Let running async executions finish (bounded) before Ray goes away:
        the executors stop reading the inboxes; unread entries stay for the
        next start."""
        code = (
            "import os, ray\n"
            "ray.init(address=os.environ['RAY_ADDRESS'], namespace=os.environ.get("
            "'RAYHOOK_NAMESPACE', 'rayhook'), log_to_driver=False)\n"
            "names = [a['name'] for a in ray.util.list_named_actors(all_namespaces=True)\n"
            "         if a['name'].startswith('executor:')\n"
            "         and a['namespace'] == os.environ.get('RAYHOOK_NAMESPACE', 'rayhook')]\n"
            "handles = [ray.get_actor(n) for n in names]\n"
            f"print(ray.get([h.drain.remote({DRAIN_SECONDS}) for h in handles], "
            f"timeout={DRAIN_SECONDS + 5}))\n"
        )
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _remove_folder(folder: Path, attempts: int = 10) -> None:
    """Remove `folder`; Ray's last workers may still be writing their logs
    there for a moment after the head stopped."""
    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.5)
    print(f"rayhook: could not remove {folder}", file=sys.stderr, flush=True)


def run(stack: LocalStack) -> int:
    """`rayhook up` in the foreground until SIGINT/SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stack.start()
    except Exception as exc:
        print(f"rayhook: could not start: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        return 1
    token_file = stack.data_dir / "admin-token"
    print(f"rayhook ready at {stack.url}", flush=True)
    print(f"console: {stack.url}/console/ (sign in with the admin token)", flush=True)
    if token_file.exists() and not stack.environ.get("RAYHOOK_ADMIN_TOKEN"):
        print(
            f"admin token: {stack.env['RAYHOOK_ADMIN_TOKEN']} (stored in {token_file})", flush=True
        )
    if stack.ray is not None:
        print(f"ray: RAY_ADDRESS={stack.env['RAY_ADDRESS']}", flush=True)
    print(f"logs: {stack.logs}; stop with Ctrl-C", flush=True)
    dead = stack.wait(stop)
    if dead:
        print(
            f"rayhook: {dead} exited unexpectedly; stopping (logs: {stack.logs})", file=sys.stderr
        )
    print("rayhook: stopping", flush=True)
    stack.stop()
    print("rayhook: stopped", flush=True)
    return 1 if dead else 0
