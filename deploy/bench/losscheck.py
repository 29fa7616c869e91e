"""The loss check: after a run against an async workflow, wait until every
accepted event has a final execution, through the admin API."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from deploy.bench.result import LossCheck

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
        self.http = httpx.Client(
            base_url=admin_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

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
        """Poll until `accepted` more executions are final than `base` (or timeout)."""
        deadline = time.monotonic() + timeout
        final = self.final() - base
        last_change, last_final = time.perf_counter(), final
        while final < accepted and time.monotonic() < deadline:
            time.sleep(0.1)
            final = self.final() - base
            if final != last_final:
                last_change, last_final = time.perf_counter(), final
        drained = last_change if final >= accepted else time.perf_counter()
        seconds = max(drained - started, 1e-9)
        return LossCheck(
            workflow_key=",".join(self.keys),
            accepted=accepted,
            final=final,
            lost=max(accepted - final, 0),
            executions_per_second=final / seconds,
            seconds_to_drain=seconds,
        )
