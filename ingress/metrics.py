"""`GET /metrics` in Prometheus's text format.

Two sources, one page:
- this worker's own figures (webhook requests by workflow key and status, accept
  latency), kept by prometheus_client in multiprocess mode so every gunicorn
  worker's counts add up (PROMETHEUS_MULTIPROC_DIR, set up in
  deploy/gunicorn_conf.py);
- cluster-wide figures read from Redis at scrape time: inbox backlog and pending
  entries per enabled workflow, executions by final status and their duration,
  node job durations by type, actor restarts by Ray after a crash (the actors
  add these up in Redis, see actors/metrics.py). Every ingress pod reports the
  same cluster-wide values: aggregate them with max, not sum.

Workflow keys are the secret part of an unauthenticated webhook's URL: the
per-workflow series are shown only to a scrape with `Authorization: Bearer`
RAYHOOK_METRICS_TOKEN (or the admin token). Any other scrape gets the same
figures added up over the workflows, without a `key` label (and supervisors
without their key); a wrong token gets 401.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from time import perf_counter
from typing import Any

import falcon
import falcon.asgi
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from actors.metrics import BUCKETS
from ingress.auth import BEARER_CHALLENGE, bearer_matches
from ingress.services import Services

#: Labels that name a workflow, dropped from an unauthenticated scrape.
KEY_LABEL = "key"
SUPERVISOR = "WorkflowSupervisor"

REQUESTS = Counter(
    "rayhook_webhook_requests", "Webhook requests by workflow key and status.", ["key", "status"]
)
REFUSED = Counter(
    "rayhook_webhook_refused",
    "Webhooks refused with 503, by cause (redis_memory, backlog, store_unavailable, ...).",
    ["reason"],
)
PACED = Counter(
    "rayhook_webhook_paced",
    "Async webhooks answered late because their workflow's backlog was above "
    "RAYHOOK_PACE_BACKLOG (ingress/pacing.py).",
)
PACED_SECONDS = Counter(
    "rayhook_webhook_paced_seconds", "Time paced webhooks' replies were held back."
)
ACCEPT_SECONDS = Histogram(
    "rayhook_webhook_seconds",
    "Time to answer a webhook (async: accepted and stored; sync: the reply).",
    ["mode"],
    buckets=BUCKETS,
)


class WebhookMetrics:
    """Middleware: counts and times every request routed to the webhook.

    The labelled series it updates are kept at hand: prometheus_client's
    `labels()` takes a lock and builds its key on every call, about half of
    the ~8 µs each request's figures cost (docs/performance.md). There are as
    many as prometheus_client keeps anyway: one per known workflow key and status."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], Any] = {}
        self._seconds: dict[str, Any] = {}

    async def process_resource(self, req: Any, resp: Any, resource: object, params: Any) -> None:
        req.context.metrics_started = perf_counter()

    async def process_response(
        self, req: Any, resp: Any, resource: object, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "metrics_started", None)
        key = getattr(req.context, "workflow_key", None)
        if started is None or not req.path.startswith("/api/webhook:trigger/"):
            return
        status = resp.status if isinstance(resp.status, int) else int(str(resp.status)[:3])
        # Unknown keys share one label value: random keys must not grow the series.
        label = (key or "", status)
        counter = self._requests.get(label)
        if counter is None:
            counter = self._requests[label] = REQUESTS.labels(key=label[0], status=str(status))
        counter.inc()
        mode = getattr(req.context, "mode", "") or "none"
        timing = self._seconds.get(mode)
        if timing is None:
            timing = self._seconds[mode] = ACCEPT_SECONDS.labels(mode=mode)
        timing.observe(perf_counter() - started)
        refused = getattr(req.context, "refused", None)
        if refused is not None:
            REFUSED.labels(reason=refused).inc()
        paced = getattr(req.context, "paced", None)
        if paced is not None:
            PACED.inc()
            PACED_SECONDS.inc(paced)


class MetricsResource:
    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.tokens = [t for t in (settings.metrics_token, settings.admin_token) if t]

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        header = req.get_header("Authorization")
        full = any(bearer_matches(header, token) for token in self.tokens)
        if header is not None and not full:
            raise falcon.HTTPUnauthorized(
                description="send Authorization: Bearer <RAYHOOK_METRICS_TOKEN>, or no "
                "Authorization for the figures without workflow keys",
                challenges=[BEARER_CHALLENGE],
            )
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        families = list(registry.collect())
        try:
            families += await self._cluster()
        except Exception:  # Redis away: this worker's figures still answer
            pass
        if not full:
            families = [_without_keys(family) for family in families]
        resp.data = generate_latest(_Static(families))
        resp.content_type = CONTENT_TYPE_LATEST

    async def _cluster(self) -> list[Any]:
        services = self.services
        enabled = list(await services.workflows.enabled_ids())
        read = await services.figures.read(enabled, _FIGURES)
        history = await self._history()
        backlog = GaugeMetricFamily(
            "rayhook_inbox_backlog",
            "Accepted async events not yet final, per workflow.",
            labels=["key"],
        )
        pending = GaugeMetricFamily(
            "rayhook_inbox_pending", "Events handed to executions, not yet final.", labels=["key"]
        )
        for key in enabled:
            if key in read.backlog:
                backlog.add_metric([key], read.backlog[key])
            if key in read.pending:
                pending.add_metric([key], read.pending[key])
        executions, durations, jobs, restarted, moves, *by_key = (
            read.figures[name] for name in _FIGURES
        )
        by_status = CounterMetricFamily(
            "rayhook_executions",
            "Executions that ended, by workflow key and status.",
            labels=["key", "status"],
        )
        for field, count in executions.items():
            key, _, status = field.rpartition("|")
            by_status.add_metric([key, status], float(count))
        restarts = CounterMetricFamily(
            "rayhook_actor_restarts",
            "Restarts of rayhook actors by Ray after they died (not starts after a clean stop).",
            labels=["actor"],
        )
        for actor, count in restarted.items():
            restarts.add_metric([actor], float(count))
        return [
            backlog,
            pending,
            by_status,
            _histogram(
                "rayhook_execution_duration_seconds", "Execution run time.", "key", durations
            ),
            _histogram("rayhook_job_duration_seconds", "Node job run time.", "type", jobs),
            restarts,
            *history,
            *_counters("rayhook_history", "Executions the history writer", moves),
            *(
                _per_key(_BY_KEY[name], counts)
                for name, counts in zip(_BY_KEY, by_key, strict=True)
            ),
        ]

    async def _history(self) -> list[Any]:
        """The history store and the way to it (SPEC §9), and Redis's memory."""
        services = self.services
        memory = services.memory
        used = GaugeMetricFamily("rayhook_redis_memory_used_bytes", "Redis used_memory.")
        used.add_metric([], memory.used)
        limit = GaugeMetricFamily(
            "rayhook_redis_memory_max_bytes", "Redis maxmemory (0: none set)."
        )
        limit.add_metric([], memory.limit)
        up = GaugeMetricFamily(
            "rayhook_history_up", "1 when the history database answers (0: executions wait)."
        )
        up.add_metric([], 1.0 if await services.history.ping() else 0.0)
        waiting = GaugeMetricFamily(
            "rayhook_history_queue", "Final executions in Redis, not yet in the history store."
        )
        oldest_age = GaugeMetricFamily(
            "rayhook_history_queue_oldest_seconds",
            "How long the oldest final execution has waited to be moved.",
        )
        queue = services.history_queue
        waiting.add_metric([], await queue.length())
        oldest = await queue.oldest_ms()
        oldest_age.add_metric([], max(0.0, time.time() - oldest / 1000) if oldest else 0.0)
        return [used, limit, up, waiting, oldest_age]


class _Static:
    """A one-off collector over metric families already built."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def _without_keys(family: Any) -> Any:
    """`family` added up over workflow keys: samples that differ only by `key`
    are summed (counts, bucket counts, sums and gauges all add up), and a
    supervisor's restarts count as one `WorkflowSupervisor`."""
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != KEY_LABEL}
        if labels.get("actor", "").startswith(SUPERVISOR):
            labels["actor"] = SUPERVISOR
        index = (sample.name, tuple(sorted(labels.items())))
        totals[index] = totals.get(index, 0.0) + sample.value
    out = Metric(family.name, family.documentation, family.type)
    for (name, pairs), total in totals.items():
        out.add_sample(name, dict(pairs), total)
    return out


#: Counters the actors keep per workflow key: metrics hash → (metric, help).
_BY_KEY = {
    "attempts": (
        "rayhook_execution_attempts",
        "Attempts run by executions of workflows with options.retry, the first included.",
    ),
    "exhausted": (
        "rayhook_executions_exhausted",
        "Executions final after their last attempt failed (options.retry).",
    ),
    "quarantined": (
        "rayhook_executions_quarantined",
        "Executions recorded ERROR (crashed_executor) instead of crashing their executor again.",
    ),
}


#: The figures a scrape reads, in the order `_cluster` unpacks them.
_FIGURES = (
    "executions",
    "execution_seconds",
    "job_seconds",
    "actor_restarts",
    "history",
    *_BY_KEY,
)


def _per_key(meta: tuple[str, str], counts: dict[str, str]) -> Any:
    family = CounterMetricFamily(meta[0], meta[1], labels=["key"])
    for key, value in sorted(counts.items()):
        family.add_metric([key], float(value))
    return family


def _counters(name: str, doc: str, fields: dict[str, str]) -> list[Any]:
    """`<name>_<field>_total` counters from one hash (history: moved, pruned)."""
    families = []
    for field, value in sorted(fields.items()):
        family = CounterMetricFamily(f"{name}_{field}", f"{doc} {field}.")
        family.add_metric([], float(value))
        families.append(family)
    return families


def _histogram(name: str, doc: str, label: str, fields: dict[str, str]) -> HistogramMetricFamily:
    """Rebuild histograms from `<label>|<bound>` counts and `<label>|sum` totals."""
    buckets: dict[str, dict[str, float]] = defaultdict(dict)
    sums: dict[str, float] = {}
    for field, value in fields.items():
        value_label, _, bound = field.rpartition("|")
        if bound == "sum":
            sums[value_label] = float(value)
        else:
            buckets[value_label][bound] = float(value)
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value_label, counts in buckets.items():
        ordered = [(str(b), counts.get(str(b), 0.0)) for b in BUCKETS]
        ordered.append(("+Inf", counts.get("+Inf", 0.0)))
        family.add_metric([value_label], ordered, sum_value=sums.get(value_label, 0.0))
    return family
