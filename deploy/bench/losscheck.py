"""The loss check: after a run against an async workflow, wait until every
accepted event has a final execution, through the admin API."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import httpx

from deploy import http_clients
from deploy.bench.result import LossCheck
from deploy.bench.timeline import Recorder

NOT_FINAL = ("0", "null")  # STARTED, QUEUEING


def workflow_key(url: str) -> str:
    path = urlsplit(url).path
    marker = "/api/webhook:trigger/"
    if marker not in path:
        raise ValueError(f"{url} is not a webhook URL (…{marker}<key>)")
    return path.split(marker, 1)[1].strip("/")


class ExecutionCounter:
    """Counts the executions of the benchmarked workflows through the admin API."""

    def __init__(self, admin_url: str, token: str, keys: list[str]) -> None:
        self.keys = keys
        self.http = http_clients.client(admin_url, token=token)

    def _count(self, key: str, status: str | None = None) -> int:
        params = {"filter[workflowKey]": key, "pageSize": "1"}
        if status is not None:
            params["filter[status]"] = status
        reply = self.http.get("/api/executions:list", params=params)
        reply.raise_for_status()
        return int(reply.json()["meta"]["count"])

    def final(self) -> int:
        """Executions of the workflows in a final status."""
        return sum(
            self._count(key) - sum(self._count(key, s) for s in NOT_FINAL) for key in self.keys
        )

    def settled(self, timeout: float) -> int:
        """The final count once earlier work has stopped changing it (a baseline)."""
        deadline = time.monotonic() + timeout
        last = self.final()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.final()
            if now == last:
                return now
            last = now
        return last

    def wait(self, *, base: int, accepted: int, started: float, timeout: float) -> LossCheck:
        """Poll until at least `accepted` more executions are final than `base` and
        the count has stopped moving (a closed-loop engine stops counting the
        requests still in flight at its end, which the server did accept)."""
        deadline = time.monotonic() + timeout
        final = self.final() - base
        last_change = time.perf_counter()
        steady = 0
        while time.monotonic() < deadline and (final < accepted or steady < 3):
            time.sleep(0.1)
            now = self.final() - base
            if now != final:
                final, last_change, steady = now, time.perf_counter(), 0
            else:
                steady += 1
        seconds = max(last_change - started, 1e-9)
        return LossCheck(
            workflow_key=",".join(self.keys),
            accepted=accepted,
            final=final,
            lost=max(accepted - final, 0),
            executions_per_second=final / seconds,
            seconds_to_drain=seconds,
        )


class BacklogSampler:
    """For the report: once a second during the load, the events the server has
    accepted and not finished (2xx replies so far minus final executions), in a
    thread of its own so the load's event loop never waits on it."""

    def __init__(self, counter: ExecutionCounter, base: int, recorder: Recorder) -> None:
        # A client of its own: httpx clients are not shared across threads.
        self.counter = ExecutionCounter(
            str(counter.http.base_url), counter.http.headers["Authorization"][7:], counter.keys
        )
        self.base, self.recorder = base, recorder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.counter.http.close()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            accepted = self.recorder.accepted
            try:
                final = self.counter.final() - self.base
            except httpx.HTTPError:
                continue
            if self.recorder.started:
                when = time.perf_counter() - self.recorder.started
                self.recorder.server_backlog.append((when, max(accepted - final, 0)))
