"""`rayhook up` as a user runs it: its own Redis (AOF) and Ray head, gunicorn;
a restart keeps the workflows and finishes the async events still queued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from actors.history_writer import PROCESS_TITLE
from deploy import http_clients, processes
from deploy.launcher import ray_temp_dir
from tests.conftest import process_state

ROOT = Path(__file__).resolve().parents[2]


class Up:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.data_dir, self.port, self.env = data_dir, port, env
        self.runs = 0
        self.output = data_dir.parent / "up.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> float:
        started = time.monotonic()
        self.runs += 1
        self.output = self.data_dir.parent / f"up-{self.runs}.out"
        self.process = processes.spawn(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "up",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            log=self.output,
            cwd=str(ROOT),
        )
        while b"rayhook ready at" not in self.output.read_bytes():
            assert self.process.poll() is None, self.output.read_text()
            assert time.monotonic() - started < timeout, self.output.read_text()
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self) -> int:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(90)


def test_up_serves_and_a_restart_finishes_queued_events(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "REDIS_URL", "RAYHOOK_ADMIN_TOKEN")
    }
    # Few executions at a time, so that most events are still unread at the stop.
    env["RAYHOOK_MAX_INFLIGHT"] = "4"
    port = processes.free_port()
    up = Up(tmp_path / "data", port, env)
    ready_after = up.start()
    try:
        line = next(ln for ln in up.output.read_text().splitlines() if "ready" in ln)
        assert line == f"rayhook ready at http://127.0.0.1:{port}"
        console = f"http://127.0.0.1:{port}/console/"
        assert f"console: {console} (sign in with the admin token)" in up.output.read_text()
        assert "Content-Security-Policy" in httpx.get(console).headers
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        applied = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "apply",
                "-f",
                "examples/order-events.yaml",
                "--url",
                f"http://127.0.0.1:{port}",
                "--token",
                token,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert applied.returncode == 0, applied.stderr
        assert_operators_find_the_actors(tmp_path / "data", env)
        url = f"http://127.0.0.1:{port}/api/webhook:trigger/order-events"
        accepted = []
        with httpx.Client(timeout=10) as client:
            for i in range(300):
                reply = client.post(url, json={"id": f"evt_{i}", "data": {"amount": i * 10}})
                assert reply.status_code == 202
                accepted.append(reply.headers["x-rayhook-execution"])
    finally:
        assert up.stop() == 0
    assert "rayhook: stopped" in up.output.read_text()
    for marker in (str(tmp_path / "data"), ray_temp_dir(tmp_path / "data")):
        leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True)
        assert leftovers.stdout == b"", f"processes of the stopped stack still run ({marker})"
    assert_nothing_left_outside_the_data_folder(tmp_path / "data")

    up.start()
    try:
        admin = http_clients.client(f"http://127.0.0.1:{port}", token=token)
        versions = admin.get("/api/workflows:list").json()["data"]
        assert [(v["key"], v["enabled"]) for v in versions] == [("order-events", True)]
        deadline = time.monotonic() + 120
        while True:
            done = admin.get(
                "/api/executions:list",
                params={
                    "filter[workflowKey]": "order-events",
                    "filter[status]": "1",
                    "pageSize": 1,
                },
            ).json()["meta"]["count"]
            if done == len(accepted):
                break
            assert time.monotonic() < deadline, f"{done} of {len(accepted)} resolved"
            time.sleep(0.2)
        total = admin.get(
            "/api/executions:list", params={"filter[workflowKey]": "order-events", "pageSize": 1}
        ).json()["meta"]["count"]
        assert total == len(accepted)  # every accepted event ran, none twice
        sample = admin.get("/api/executions:get", params={"filterByTk": accepted[-1]}).json()[
            "data"
        ]
        assert sample["output"]["event"] == "evt_299" and sample["output"]["large"] is True
        # A workflow supervisor is an object inside an execution actor (no process
        # per workflow), awake while its workflow runs: operators find it by name.
        woke = httpx.post(
            f"http://127.0.0.1:{port}/api/webhook:trigger/order-events",
            json={"id": "evt_wake", "amount": 1},
            timeout=30,
        )
        assert woke.status_code == 202, woke.text
        deadline = time.monotonic() + 30
        while True:
            supervisors = subprocess.run(
                [
                    str(Path(sys.executable).with_name("rayhook")),
                    "supervisors",
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--data-dir",
                    str(tmp_path / "data"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert supervisors.returncode == 0, supervisors.stderr
            if "supervisor:order-events" in supervisors.stdout:
                break
            assert time.monotonic() < deadline, supervisors.stdout
            time.sleep(0.2)
    finally:
        assert up.stop() == 0
    assert_nothing_left_outside_the_data_folder(tmp_path / "data")
    print(f"rayhook up ready after {ready_after:.1f} s")


def assert_nothing_left_outside_the_data_folder(data_dir: Path) -> None:
    """A clean stop removes Ray's /tmp/rayhook-* session folder; the ingress's
    metric files are kept under the data folder, not in /tmp."""
    assert not Path(ray_temp_dir(data_dir)).exists(), "Ray's session folder was left behind"
    assert (data_dir / "prometheus").is_dir()


def test_the_ingress_removes_the_metrics_folder_it_made(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Without PROMETHEUS_MULTIPROC_DIR, gunicorn's master makes a temporary
    # folder for the workers' metric files; it is its own to remove at exit.
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = make_server(TMPDIR=str(temp), PROMETHEUS_MULTIPROC_DIR="")
    assert server.hook("nosuchkey00", {}).status_code == 404  # counted by a worker
    (made,) = [p for p in temp.iterdir() if p.name.startswith("rayhook-metrics-")]
    assert any(made.iterdir())  # the workers' files
    processes.stop(server.process, timeout=40)  # gunicorn's master exits
    assert not made.exists()


def assert_operators_find_the_actors(data_dir: Path, env: dict[str, str]) -> None:
    """SPEC §7: `ray list actors` and `ps` show the actors by class name."""
    address = next(
        line.split("RAY_ADDRESS=", 1)[1].strip()
        for line in (data_dir.parent / "up-1.out").read_text().splitlines()
        if "RAY_ADDRESS=" in line
    )
    ray_env = {
        **env,
        "RAY_ADDRESS": address,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(data_dir / "ray-token"),
    }
    ray_list = [str(Path(sys.executable).with_name("ray")), "list", "actors"]
    listed = subprocess.run(
        ray_list,
        capture_output=True,
        text=True,
        timeout=120,
        env=ray_env,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "ExecutionActor" in listed.stdout
    ps = subprocess.run(["ps", "-eo", "cmd"], capture_output=True, text=True).stdout
    assert "ray::ExecutionActor" in ps
    # The history writer is a child process of execution actor 0, named in `ps`.
    detail = subprocess.run(
        [*ray_list, "--detail", "--format=json", "--filter", "class_name=ExecutionActor"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ray_env,
    )
    assert detail.returncode == 0, detail.stderr[-2000:]
    executors = {
        actor["pid"]: actor["name"]
        for actor in json.loads(detail.stdout)
        if actor["state"] == "ALIVE"
    }
    # (The test session's own Ray runs other stacks' executors, with their writers.)
    listed_writers = [
        int(line.split()[0])
        for line in subprocess.run(
            ["ps", "-eo", "pid,cmd"], capture_output=True, text=True
        ).stdout.splitlines()
        if PROCESS_TITLE in line
    ]
    parents = [state[1] for pid in listed_writers if (state := process_state(pid))]
    writers = [executors[parent] for parent in parents if parent in executors]
    assert writers == ["executor:0"], (parents, executors)


def test_delay_timers_survive_a_restart_of_every_process_and_fire_once(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "REDIS_URL", "RAYHOOK_ADMIN_TOKEN")
    }
    port = processes.free_port()
    up = Up(tmp_path / "data", port, env)
    up.start()
    token = (tmp_path / "data" / "admin-token").read_text().strip()
    admin = http_clients.client(f"http://127.0.0.1:{port}", token=token)
    try:
        created = admin.post(
            "/api/workflows:create",
            json={
                "key": "later",
                "sync": False,
                "enabled": True,
                "nodes": [
                    {"key": "wait", "type": "delay", "config": {"duration": 4, "unit": 1000}},
                    {"key": "out", "type": "output", "config": {"value": "{{$context.body.n}}"}},
                ],
            },
        )
        assert created.status_code == 200, created.text
        ids = [
            httpx.post(f"http://127.0.0.1:{port}/api/webhook:trigger/later", json={"n": n}).headers[
                "x-rayhook-execution"
            ]
            for n in range(5)
        ]
        deadline = time.monotonic() + 30
        while any(
            admin.get("/api/executions:get", params={"filterByTk": i}).json()["data"]["status"] != 0
            for i in ids
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        assert up.stop() == 0  # every process goes while the timers wait
    time.sleep(5)  # the timers are due while nothing runs
    up.start()
    try:
        admin = http_clients.client(f"http://127.0.0.1:{port}", token=token)
        deadline = time.monotonic() + 60
        for n, execution_id in enumerate(ids):
            while True:
                execution = admin.get(
                    "/api/executions:get", params={"filterByTk": execution_id}
                ).json()["data"]
                if execution["status"] == 1:
                    break
                assert time.monotonic() < deadline, execution
                time.sleep(0.2)
            assert execution["output"] == n
            assert [(j["nodeKey"], j["status"]) for j in execution["jobs"]] == [
                ("wait", 1),
                ("out", 1),
            ]
        version = admin.get("/api/workflows:list", params={"filter[key]": "later"}).json()["data"][
            0
        ]
        assert version["executed"] == 5  # no execution ran twice
    finally:
        assert up.stop() == 0
