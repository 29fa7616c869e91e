"""Loss of a Ray worker node under load (SPEC §7; issue 4 fault (e), issue 6).

A real multi-node Ray cluster on this machine, every socket on 127.0.0.1:
- a lean head (`deploy.ray_node --head --num-cpus=0`);
- two exec worker nodes (`--num-cpus=1 --resources={"rayhook_exec": 16}`), the
  only nodes rayhook's actors may use (`RAYHOOK_ACTOR_RESOURCE=rayhook_exec`);
- an ingress node started by `deploy/ray-node-start.sh` itself (a zero-CPU Ray
  node with the `ingress` marker, then gunicorn), on a private Redis with AOF.

Each node runs in its own session (`deploy.processes.spawn`), so "the node" is
every process of that session: the test SIGKILLs all of them at once, the way a
machine or a pod disappears. Every event that got a 2xx must still reach a final
status once, and the actors of the lost node must come back on the other one.

The module uses none of the session fixtures (`ray_address`, `ray_driver`): this
process may be a driver of the session cluster, and Ray's state API prefers
`RAY_ADDRESS` over its `address` argument, so every look at this cluster runs in
a subprocess with this cluster's address.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import processes
from engine.settings import default_history_url
from tests.e2e.conftest import Server
from tests.e2e.redis_server import RedisServer
from tests.e2e.workflows import async_echo, seed_example
from tests.faults.check import settle
from tests.faults.load import Load

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EXEC_RESOURCE = "rayhook_exec"
ACTOR_CLASSES = ("ExecutionActor",)

BEFORE = 4.0  # seconds of load before the kill
AFTER = 3.0  # seconds of load once the lost actors run again
ANSWER_BOUND = 10.0  # async webhooks are answered 2xx again within this after the kill
FAILOVER_BOUND = 60.0  # the lost node's actors are ALIVE on the other worker within this
SYNC_BOUND = 60.0  # a sync webhook answers 200 again within this
DRAIN_BOUND = 90.0  # every accepted event is final within this after the kill

# Ray's environment for every process of this cluster (the test harness sets the
# same for the session cluster): loopback only, auth explicit, no 30 s drain.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
NODE_OPTIONS = [
    "--block",
    "--node-ip-address=127.0.0.1",
    "--disable-usage-stats",
    "--include-log-monitor=false",
    "--object-store-memory=100000000",
]

# Run with this cluster's address: the nodes and rayhook's actors, as JSON.
SNAPSHOT = """
import json
from ray.util.state import list_actors, list_nodes, list_workers
nodes = [
    {"node_id": n.node_id, "head": n.is_head_node, "state": n.state,
     "resources": n.resources_total}
    for n in list_nodes(limit=100, detail=True)
]
actors = [
    {"class": a.class_name, "name": a.name, "state": a.state, "node_id": a.node_id,
     "pid": a.pid, "restarts": a.num_restarts}
    for cls in ("ExecutionActor",)
    for a in list_actors(filters=[("class_name", "=", cls)], limit=1000, detail=True)
]
# Ingress workers are drivers only while they use Ray, so dead drivers pile up;
# Ray counts them against a filtered list and reports "truncation" that is not.
drivers = [
    {"node_id": w.node_id, "pid": w.pid}
    for w in list_workers(filters=[("worker_type", "=", "DRIVER"), ("is_alive", "=", "True")],
                          limit=1000, detail=True, raise_on_missing_output=False)
]
print(json.dumps({"nodes": nodes, "actors": actors, "drivers": drivers}))
"""


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`: a node's whole process tree,
    actor workers included (Ray gives each its own process group, not session)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session until none is left."""
    for _ in range(50):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"processes of session {sid} survive SIGKILL: {session_pids(sid)}")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


@dataclass
class Node:
    """One Ray node: the session leader we spawned and where it logs."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def sid(self) -> int:
        return self.process.pid

    def node_id(self) -> str:
        """The raylet's `--node_id` (wait for it: the raylet starts late)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for pid in session_pids(self.sid):
                args = cmdline(pid)
                if args and args[0].endswith("/raylet"):
                    for arg in args:
                        if arg.startswith("--node_id="):
                            return arg.split("=", 1)[1]
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no raylet in {self.name}: {self.log.read_text()[-3000:]}")

    def wait_started(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in self.log.read_bytes():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"{self.name} not up: {self.log.read_text()[-3000:]}"
            )
            time.sleep(0.2)

    def kill(self) -> None:
        kill_session(self.sid)
        self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        processes.stop(self.process, timeout=timeout)
        kill_session(self.sid)  # agents whose head went first may linger


@dataclass
class Cluster:
    """The whole deployment of this test; `stop` ends every process it started."""

    base: Path
    redis: RedisServer
    gcs_port: int = 0
    dashboard_port: int = 0
    head: Node | None = None
    workers: list[Node] = field(default_factory=list)
    ingress: Node | None = None
    server: Server | None = None
    worker_ports: Iterator[int] = field(default_factory=lambda: iter(()))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RAY_ADDRESS", "REDIS_URL", "RAY_TMPDIR", "TMPDIR")
            and not k.startswith("RAYHOOK_")
            and not k.startswith("RAY_AUTH_TOKEN")
        }
        return {**inherited, **RAY_ENV, **extra}

    def port_range(self) -> list[str]:
        """A worker-port range of its own per node: nodes on one host must not
        hand out the same worker ports."""
        low = next(self.worker_ports)
        return [f"--min-worker-port={low}", f"--max-worker-port={low + 199}"]

    def node(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Node:
        log = self.base / f"{name}.log"
        log.write_bytes(b"")
        command = [sys.executable, "-m", "deploy.ray_node", *args]
        process = processes.spawn(command, env=env or self.env(), log=log, cwd=str(ROOT))
        return Node(name, process, log)

    def start(self) -> None:
        self.redis.start()
        self.gcs_port = processes.free_port()
        self.dashboard_port = processes.free_port()
        first = random.randrange(30000, 31600, 200)  # below the ephemeral ports (32768+)
        self.worker_ports = iter(range(first, first + 4 * 200, 200))
        self.head = self.node(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--dashboard-agent-listen-port={processes.free_port()}",
                "--num-cpus=0",
                f"--temp-dir={self.base / 'h'}",
                *self.port_range(),
                *NODE_OPTIONS,
            ],
        )
        self.head.wait_started()
        for i in (1, 2):
            self.workers.append(
                self.node(
                    f"worker{i}",
                    [
                        f"--address={self.address}",
                        "--num-cpus=1",
                        f"--resources={json.dumps({EXEC_RESOURCE: 16})}",
                        f"--dashboard-agent-listen-port={processes.free_port()}",
                        f"--temp-dir={self.base / f'w{i}'}",
                        *self.port_range(),
                        *NODE_OPTIONS,
                    ],
                )
            )
        for worker in self.workers:
            worker.wait_started()
        self.start_ingress()

    def start_ingress(self) -> None:
        """The ingress pod's entry point, outside KubeRay: RAY_HEAD_ADDRESS mode."""
        folder = self.base / "in"
        folder.mkdir()
        port, token = processes.free_port(), f"tok{random.getrandbits(64):x}"
        ray_args = [
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={folder / 'ray'}",  # where the script looks for the address file
            f"--dashboard-agent-listen-port={processes.free_port()}",
            *self.port_range(),
            "--include-log-monitor=false",
            "--object-store-memory=100000000",
        ]
        env = self.env(
            RAY_HEAD_ADDRESS=self.address,
            RAYHOOK_RAY_START_ARGS=" ".join(ray_args),
            RAY_TMPDIR=str(folder),
            RAYHOOK_ACTOR_RESOURCE=EXEC_RESOURCE,
            REDIS_URL=self.redis.url,
            RAYHOOK_PORT=str(port),
            RAYHOOK_ADMIN_TOKEN=token,
            RAYHOOK_NAMESPACE="nodeloss",
            RAYHOOK_EXECUTORS="2",
            RAYHOOK_WORKERS="2",
            RAYHOOK_GRACEFUL_TIMEOUT="10",
            RAYHOOK_DATA_DIR=str(folder / "data"),
            RAYHOOK_PYTHON=sys.executable,
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        log = self.base / "ingress.log"
        process = processes.spawn(
            ["bash", str(ROOT / "deploy" / "ray-node-start.sh")], env=env, log=log, cwd=str(ROOT)
        )
        self.ingress = Node("ingress", process, log)
        history_url = default_history_url(str(folder / "data"))
        self.server = Server(
            f"http://127.0.0.1:{port}", token, "nodeloss", log, process, history_url
        )
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-4000:]
            try:
                if self.server.http.get("/readyz", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ingress not ready:\n" + log.read_text()[-4000:]
            time.sleep(0.2)

    def snapshot(self) -> dict[str, Any]:
        """Nodes, rayhook's actors and the drivers, from Ray's state API."""
        env = self.env(RAY_ADDRESS=self.address)
        done = subprocess.run(
            [sys.executable, "-c", SNAPSHOT],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(ROOT),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def sessions(self) -> list[int]:
        nodes = [self.head, *self.workers, self.ingress]
        return [n.sid for n in nodes if n is not None]

    def stop(self) -> None:
        if self.server is not None:
            self.server.http.close()
            self.server.admin.close()
        # The ingress first (gunicorn drains, then its Ray node), the head last.
        for node in [self.ingress, *reversed(self.workers), self.head]:
            if node is not None:
                node.stop()
        self.redis.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # A short folder: Ray's unix sockets live under each node's --temp-dir.
    base = Path(tempfile.mkdtemp(prefix="rhnl", dir="/tmp"))
    cluster = Cluster(base, RedisServer(base / "redis", appendonly=True, fsync="always"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        left = {sid: session_pids(sid) for sid in cluster.sessions()}
        assert not any(left.values()), f"processes left behind: {left}"


def listening_sockets() -> list[tuple[str, int]]:
    """(local address, pid) of every listening TCP and bound UDP socket (`ss`)."""
    out = subprocess.run(["ss", "-Hltunp"], capture_output=True, text=True, check=True).stdout
    sockets = []
    for line in out.splitlines():
        local = line.split()[4]  # Netid State Recv-Q Send-Q Local Peer Process
        for pid in re.findall(r"pid=(\d+)", line):
            sockets.append((local, int(pid)))
    return sockets


def assert_loopback_only(cluster: Cluster) -> int:
    """No socket of this deployment listens beyond 127.0.0.1; how many listen."""
    ours = {pid for sid in cluster.sessions() for pid in session_pids(sid)}
    assert cluster.redis.process is not None
    ours.add(cluster.redis.process.pid)
    mine = [(local, pid) for local, pid in listening_sockets() if pid in ours]
    assert mine, "ss shows no socket of this cluster (is ss allowed to see the pids?)"
    exposed = [(local, pid, cmdline(pid)[:1]) for local, pid in mine if not is_loopback(local)]
    assert not exposed, exposed
    return len(mine)


def is_loopback(local: str) -> bool:
    host = local.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


def rayhook_actors(snapshot: dict[str, Any], state: str = "ALIVE") -> list[dict[str, Any]]:
    return [a for a in snapshot["actors"] if a["class"] in ACTOR_CLASSES and a["state"] == state]


def test_a_worker_node_sigkilled_mid_load_loses_nothing(cluster: Cluster) -> None:
    server = cluster.server
    assert server is not None and cluster.head is not None and cluster.ingress is not None
    workflow = server.create(async_echo(title="node loss"))
    sync_workflow = server.create(seed_example(title="node loss sync"))
    key = workflow["key"]
    # the executors (which read the inboxes; executor:0 also moves the history):
    # no process per workflow, none for the history writer
    expected = ["executor:0", "executor:1"]
    url = f"{server.url}/api/webhook:trigger/{key}"
    assert server.hook(sync_workflow["key"], {"status": "paid", "order": "A-1"}).status_code == 200

    head_id, ingress_id = cluster.head.node_id(), cluster.ingress.node_id()
    worker_ids = {w.node_id(): w for w in cluster.workers}

    # Everything this deployment started listens on loopback only.
    listening = assert_loopback_only(cluster)

    with Load(url) as load:
        time.sleep(BEFORE)
        before = cluster.snapshot()
        nodes = {n["node_id"]: n for n in before["nodes"]}
        # The ingress node advertises no CPU and the marker; the head no CPU either.
        ingress_resources = nodes[ingress_id]["resources"]
        assert ingress_resources.get("CPU", 0) == 0 and ingress_resources.get("ingress") == 1
        assert nodes[head_id]["resources"].get("CPU", 0) == 0
        assert (
            EXEC_RESOURCE not in ingress_resources
            and EXEC_RESOURCE not in nodes[head_id]["resources"]
        )
        alive = rayhook_actors(before)
        assert sorted(a["name"] for a in alive) == expected, before["actors"]
        # Pinned by RAYHOOK_ACTOR_RESOURCE: never on the head or the ingress node.
        assert {a["node_id"] for a in alive} <= set(worker_ids), before
        executor_nodes = {a["node_id"] for a in alive if a["class"] == "ExecutionActor"}
        spread = len(executor_nodes) == 2
        print(
            f"executors on {len(executor_nodes)} of 2 worker nodes"
            + ("" if spread else " (Ray packed them: actors/handles.py sets no SPREAD strategy)")
        )
        print(
            "ingress drivers attach to",
            sorted(
                {"head" if d["node_id"] == head_id else d["node_id"][:8] for d in before["drivers"]}
            ),
        )
        # The victim: the worker running executor:0 (and whatever else runs there).
        victim_id = next(a["node_id"] for a in alive if a["name"] == "executor:0")
        survivor_id = next(i for i in worker_ids if i != victim_id)
        lost = sorted(a["name"] for a in alive if a["node_id"] == victim_id)
        victim = worker_ids[victim_id]

        fault_at = time.monotonic()
        victim.kill()
        killed_after = time.monotonic() - fault_at
        sync_probe = SyncProbe(server, sync_workflow["key"], fault_at)

        # The lost actors come back, on the surviving worker.
        while True:
            now = cluster.snapshot()
            back = {a["name"]: a for a in rayhook_actors(now)}
            if all(name in back and back[name]["node_id"] == survivor_id for name in lost):
                break
            assert time.monotonic() - fault_at < FAILOVER_BOUND, now["actors"]
            time.sleep(0.5)
        failover_s = time.monotonic() - fault_at
        time.sleep(AFTER)
    outcome = load.outcome

    sync_back_s = sync_probe.result()
    verdict = settle(
        cluster.redis.url,
        server.namespace,
        key,
        workflow["id"],
        outcome,
        fault="ray worker node SIGKILL",
        fault_at=fault_at,
        timeout=DRAIN_BOUND,
        history_url=server.history_url,
    )
    after = cluster.snapshot()
    listening_after = assert_loopback_only(cluster)  # the restarted actors too
    print(f"sockets listening, all on loopback: {listening} before, {listening_after} after")
    print(
        f"node SIGKILLed in {killed_after:.2f} s; lost actors {lost} ALIVE on the other "
        f"worker after {failover_s:.1f} s; sync webhook 200 again after {sync_back_s:.1f} s "
        f"(replies before: {sync_probe.replies})"
    )
    assert verdict.accepted > 100, verdict
    assert verdict.lost == 0, verdict
    assert verdict.duplicated == 0, verdict
    assert verdict.answering_again_s <= ANSWER_BOUND, verdict
    assert verdict.drained_s <= DRAIN_BOUND, verdict

    nodes = {n["node_id"]: n for n in after["nodes"]}
    assert nodes[victim_id]["state"] == "DEAD", nodes[victim_id]
    alive = rayhook_actors(after)
    assert sorted(a["name"] for a in alive) == expected, after["actors"]
    assert {a["node_id"] for a in alive} == {survivor_id}, after["actors"]
    for actor in alive:
        if actor["name"] in lost:
            assert actor["restarts"] >= 1, actor


class SyncProbe:
    """From the fault on, a sync webhook (a Ray round trip to an executor) every
    0.2 s: the seconds until one answers 200."""

    def __init__(self, server: Server, key: str, fault_at: float) -> None:
        self.url = f"{server.url}/api/webhook:trigger/{key}"
        self.fault_at = fault_at
        self.answered_after: float | None = None
        self.replies: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() - self.fault_at < SYNC_BOUND:
                try:
                    status = client.post(
                        self.url, json={"status": "paid", "order": "B"}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                self.replies[status] = self.replies.get(status, 0) + 1
                if status == 200:
                    self.answered_after = time.monotonic() - self.fault_at
                    return
                time.sleep(0.2)

    def result(self) -> float:
        self._thread.join(SYNC_BOUND + 15)
        assert self.answered_after is not None, f"no sync 200 after the fault: {self.replies}"
        return self.answered_after
