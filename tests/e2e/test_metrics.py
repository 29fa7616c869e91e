"""`/metrics` (SPEC §6, issue "Run it on Kubernetes"): the Prometheus page has
requests by key and status, accept latency, inbox lag, executions by final
status, execution and node durations, actor restarts."""

from __future__ import annotations

import time

import ray
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo, seed_example


def scrape(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
    reply = server.admin.get("/metrics")  # with the token: series by workflow key
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(
        v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


def test_metrics_cover_requests_latency_lag_executions_durations_restarts(server: Server) -> None:
    version = server.create(async_echo())
    sync = server.create(seed_example())
    ids = [
        server.hook(version["key"], {"amount": n}).headers["x-rayhook-execution"] for n in range(5)
    ]
    server.hook(version["key"], content=b"{bad", headers={"content-type": "application/json"})
    server.hook(sync["key"], {"status": "paid", "order": "1"})
    server.hook("unknownkey00", {})
    for execution_id in ids:
        server.wait_final(execution_id)
    deadline = time.monotonic() + 30
    while (
        value(samples := scrape(server), "rayhook_executions_total", key=version["key"], status="1")
        < 5
    ):  # actors add up every ~2 s
        assert time.monotonic() < deadline
        time.sleep(0.3)
    # Kill an executor: Ray restarts it, and /metrics counts the restart.
    before = value(samples, "rayhook_actor_restarts_total", actor="ExecutionActor executor:1")
    ray.kill(ray.get_actor("executor:1", namespace=server.namespace), no_restart=False)
    while (
        value(scrape(server), "rayhook_actor_restarts_total", actor="ExecutionActor executor:1")
        <= before
    ):
        try:  # a call on the restarted actor: it starts (and counts itself)
            ray.get(
                ray.get_actor("executor:1", namespace=server.namespace).ready.remote(), timeout=30
            )
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
            pass
        assert time.monotonic() < deadline + 60
        time.sleep(0.5)
    assert value(samples, "rayhook_webhook_requests_total", key=version["key"], status="200") >= 5
    assert value(samples, "rayhook_webhook_requests_total", key=version["key"], status="400") == 1
    assert value(samples, "rayhook_webhook_requests_total", key="", status="404") >= 1
    assert value(samples, "rayhook_webhook_seconds_count", mode="async") >= 6
    assert value(samples, "rayhook_webhook_seconds_count", mode="sync") >= 1
    assert ("key", version["key"]) in {
        (k, v) for labels, _ in samples["rayhook_inbox_backlog"] for k, v in labels.items()
    }
    assert value(samples, "rayhook_inbox_backlog", key=version["key"]) == 0
    assert value(samples, "rayhook_execution_duration_seconds_count", key=version["key"]) >= 5
    assert value(samples, "rayhook_job_duration_seconds_count", type="condition") >= 5
    assert "rayhook_inbox_pending" in samples
